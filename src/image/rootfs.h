/* A task's root filesystem from unpacked layers: an overlayfs mount at
 * <task_dir>/rootfs (lower = layers, top first; upper and work in task_dir), or, where
 * overlayfs is unavailable, a plain copy of the layers applied in order with their
 * whiteouts honoured. ORCH_ROOTFS=copy forces the copy, ORCH_ROOTFS=overlay forbids it. */
#ifndef ORCH_ROOTFS_H
#define ORCH_ROOTFS_H
#include <stddef.h>
#include <stdint.h>

#define ROOTFS_PATH_LEN 4096

/* layer_dirs: unpacked layer directories, base layer FIRST (image order). */
int rootfs_mount(const char **layer_dirs, size_t n, const char *task_dir, char *rootfs_out, char *err);
/* Unmounts <task_dir>/rootfs (if mounted) and removes rootfs, upper, work. Never removes
 * anything below a mount that is still in place. */
int rootfs_unmount(const char *task_dir, char *err);
/* Copies the tree below directory sdir into directory ddir (owners, modes, times, links;
 * never following a symlink), as the layer copy does. */
int rootfs_copy_tree(int sdir, int ddir, char *err);

/* An unpacked layer copied to dst (created whole or not at all) with every owner moved
 * up by base, whiteouts and opaque marks kept: the lower layer of a task in a user
 * namespace that maps its ids 0..count-1 to host ids base.. (orch(8) SECURITY). An owner
 * at or above count is an error. */
int rootfs_shift_layer(const char *src, const char *dst, uint32_t base, uint32_t count, char *err);

#endif
