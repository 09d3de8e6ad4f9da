/* The state hash agreement the console's cluster page shows: every node that holds the
 * replicated state (the raft voters and standbys; spares and workers hold none) is asked
 * for its status over the node port, with this node's certificate, and answers with its
 * applied index and the hash of its state at that index (orch status). Nodes at the same
 * index must have the same hash; the page says whether they do. */
#ifndef ORCH_HASHES_H
#define ORCH_HASHES_H
#include "util/mem.h"

#define HASHES_TIMEOUT_MS 3000
#define HASHES_MAX 16

struct daemon;
struct hashask;

/* cb(arg, json) once every node answered or the time is up: json is
 * {"nodes": [{"name", "addr", "applied", "hash"} or {"name", "addr", "err"}, ...]}. */
typedef void (*hashes_cb)(void *arg, const struct buf *json);
struct hashask *hashes_ask(struct daemon *d, hashes_cb cb, void *arg);
/* cb is not called (its arg is going away); the ask frees itself once its conns closed. */
void hashes_cancel(struct hashask *a);

#endif
