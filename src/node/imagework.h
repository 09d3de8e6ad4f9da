/* One node's share of the cluster's image work (op image.node, asked by node/imagefan.c
 * of every ready node, this one included):
 *   pull   the pinned image from its registry into the blob store, layers unpacked, the
 *          image recorded for the other nodes (node/imgrec.h); progress frames
 *          {more, phase, done, total, layers_done, layers_total} until the answer
 *          {digest, size, layers}
 *   gc     blobs and layers no kept image uses removed (image/imagegc.h): those older
 *          than grace_s; images named in drop count as not kept; answers what it freed
 *   disk   what the images take here: {blob_bytes, layer_bytes, images: [{name, bytes}]}
 * and the node's own collector (imagework_tick): every few minutes, unused blobs and
 * layers older than the node's --image-gc-grace go; while leading, the records of pulled
 * images no service (current or previous version) has used for that long are removed. */
#ifndef ORCH_IMAGEWORK_H
#define ORCH_IMAGEWORK_H
#include <stdint.h>

#include <stdbool.h>
#include <stddef.h>

struct daemon;

/* The collector's memory, a field of the node. */
struct imagework_state {
	uint64_t last_ms;       /* last pass (the node's monotonic clock) */
	bool busy;              /* a gc job is in flight */
	unsigned pulls;         /* image.node pulls in flight */
	char **unused;          /* pulled image records seen unused (while leading), */
	uint64_t *unused_since; /* since when (wall clock, ms) */
	size_t nunused;
};

/* Called on the node's tick. */
void imagework_tick(struct daemon *d);
/* Frees what the collector keeps between ticks. */
void imagework_free(struct daemon *d);

/* Whether an image record names a pulled image (a name pinned to a digest). */
struct image;
int imagework_pulled(const struct image *im);
/* Whether any service uses the image record (current or previous version). */
struct store;
int imagework_used(const struct store *s, const struct image *im);

#endif
