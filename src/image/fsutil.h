/* Small filesystem helpers shared by the image modules. */
#ifndef ORCH_FSUTIL_H
#define ORCH_FSUTIL_H
#include <stdbool.h>

/* mkdir -p with mode for the directories it creates. */
int fs_mkdir_p(const char *path, unsigned mode, char *err);
/* rm -rf that never follows symlinks and never descends into another mount
 * (a still-mounted rootfs is left alone rather than emptied). 0 or -errno. */
int fs_rm_rf(const char *path);
/* The same below an open directory fd. */
int fs_rm_at(int dfd, const char *name);
bool fs_is_dir(const char *path);

#endif
