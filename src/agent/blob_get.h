/* blob.get: a chunk of an image blob of this node for a peer that fetches it, read in the
 * thread pool; the requesting connection may close meanwhile. */
#ifndef ORCH_AGENT_BLOB_GET_H
#define ORCH_AGENT_BLOB_GET_H
#include "agent/agent_state.h"
#include "net/proto.h"

struct conn;

void blob_get_op(struct agent *a, struct conn *c, const struct req_blob_get *q);
/* The connection closed: the reads in flight for it answer nobody. */
void blob_get_conn_gone(struct agent *a, struct conn *c);

#endif
