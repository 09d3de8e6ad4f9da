/* Replies on the RPC protocol: a map {id, rc, ...} echoing the request's id. Shared by the
 * node's handlers and the parts that answer requests themselves (agent, metrics). */
#ifndef ORCH_RPC_REPLY_H
#define ORCH_RPC_REPLY_H
#include <stdint.h>
#include "codec/mp.h"

struct conn;

/* Starts a reply map {id, rc, ...}: the caller adds `extra` more key/value pairs. */
void rpc_reply_begin(struct mpw *w, uint64_t id, int rc, uint32_t extra);
/* Sends {id, rc, err: msg} (nothing when c is NULL). */
void rpc_reply_err(struct conn *c, uint64_t id, int rc, const char *msg);

#endif
