/* Unpacks one image layer (a tar, plain or gzip'd) into a directory usable as an
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
 * real base images). Modes, owners, symlinks, hardlinks and mtimes are preserved; pax
 * xattrs (e.g. file capabilities) are not applied yet. */
#ifndef ORCH_UNPACK_H
#define ORCH_UNPACK_H

int layer_unpack(const char *blob_path, const char *dest_dir, char *err);

/* <layers_root>/sha256/<hex> for a digest; malloc'd, NULL if the digest is invalid. */
char *layer_dir(const char *layers_root, const char *digest);

#endif
