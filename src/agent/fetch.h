/* Fetching a missing blob from a peer over the node port (blocking; worker threads). */
#ifndef ORCH_FETCH_H
#define ORCH_FETCH_H
#include <stddef.h>
#include <stdint.h>
#include "image/blobstore.h"
#include "net/tls.h"

struct run_peer;
#define FETCH_CHUNK (1u << 20)

/* Tries `first` (a node id, 0 = none) and then every other peer. The blob is written
 * through the blob store, so it only appears once its sha256 matched. */
int fetch_blob(const struct blobstore *bs, const char *digest, const struct run_peer *peers, size_t npeers,
	       uint64_t first, const struct tlsctx *tls, char *err);

#endif
