/* Unpacks one image layer (a tar: plain, gzip'd or zstd'd, told apart by its first bytes) into a directory usable as an
 * overlayfs lower layer. Unpacking happens in a temp directory beside dest_dir that is
 * renamed into place only when complete, so dest_dir either exists whole or not at all;
 * an existing dest_dir means "already unpacked" and is left alone.
 *
 * OCI whiteouts become overlayfs ones: ".wh.NAME" → a 0/0 character device NAME,
 * ".wh..wh..opq" → xattr trusted.overlay.opaque=y on its directory.
 *
 * Rejected with an error (and nothing left behind): absolute paths, ".." components,
 * entries reached through a symlink (every component is opened with O_NOFOLLOW),
 * hardlinks to outside the layer or to a missing target, character/block devices other
 * than 0/0 whiteouts, unsupported entry types. FIFOs are allowed (harmless, and found in
 * real base images). Modes, owners, symlinks, hardlinks and mtimes are preserved; sparse
 * files keep their holes; pax xattrs (e.g. file capabilities) are not applied yet. */
#ifndef ORCH_UNPACK_H
#define ORCH_UNPACK_H

#include "image/zsrc.h"

int layer_unpack(const char *blob_path, const char *dest_dir, char *err);

/* The same from a stream (a layer body as it arrives): fn is pulled until it returns 0,
 * past the tar's end marker, and dest_dir appears only if every read succeeded — so a
 * source that checks the blob digest and fails at its end leaves nothing behind.
 * diff_id (may be NULL; DIGEST_LEN bytes) receives the sha256 of the uncompressed tar,
 * to compare with the image config's rootfs.diff_ids. An existing dest_dir is E_EXISTS. */
int layer_unpack_stream(zsrc_read_fn fn, void *ctx, const char *label, const char *dest_dir, char *diff_id, char *err);

/* <layers_root>/sha256/<hex> for a digest; malloc'd, NULL if the digest is invalid. */
char *layer_dir(const char *layers_root, const char *digest);

#endif
