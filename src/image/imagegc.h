/* A node's image garbage: blobs (<data-dir>/blobs/sha256) and unpacked layers
 * (<data-dir>/layers/sha256, and their --userns-remap copies in layers/userns-BASE/sha256)
 * that no image the cluster records uses. Removed once they
 * have been left alone longer than the grace period (by modification time), so a pull
 * still in progress, a rollback to the previous version or a quick redeploy finds them
 * still there; `orch image prune` runs it with no grace. The same scan measures what the
 * node's images take on disk (orch images). Blocking: worker threads only. */
#ifndef ORCH_IMAGEGC_H
#define ORCH_IMAGEGC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imagegc_res {
	uint64_t blob_bytes, layer_bytes;        /* what is left */
	uint64_t freed_bytes, freed_blobs, freed_layers;
};

/* keep: the digests in use, sorted by strcmp (imagegc_sort). remove false: measure only.
 * A blob or layer counts as unused only when its mtime is at least grace_s before now_s. */
int imagegc_run(const char *data_dir, char *const *keep, size_t nkeep, bool remove, uint64_t grace_s, uint64_t now_s,
		struct imagegc_res *res, char *err);
void imagegc_sort(char **keep, size_t n);
/* Bytes on disk of a blob and of its unpacked layer (0 for what is absent). */
uint64_t imagegc_blob_bytes(const char *data_dir, const char *digest);

#endif
