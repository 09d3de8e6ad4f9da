/* Replies on the RPC protocol: a map {id, rc, ...} echoing the request's id. Shared by the
 * node's handlers and the parts that answer requests themselves (agent, metrics). */
#ifndef ORCH_RPC_REPLY_H
#define ORCH_RPC_REPLY_H
#include <stdint.h>
#include "codec/mp.h"

struct conn;

/* Starts a reply map {id, rc, ...} in a fresh writer: the caller adds its entries, then
 * rpc_reply_send. */
void rpc_reply_begin(struct mpw *w, uint64_t id, int rc);
/* Closes the reply map, sends it on c (nothing when c is NULL) and frees w. */
void rpc_reply_send(struct conn *c, struct mpw *w);
/* Sends {id, rc, err: msg} (nothing when c is NULL). */
void rpc_reply_err(struct conn *c, uint64_t id, int rc, const char *msg);
/* Sends {id, rc: 0}. */
void rpc_reply_ok(struct conn *c, uint64_t id);

#endif
