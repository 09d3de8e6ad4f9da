/* Access control on the node port and the local socket: which peer (net/peer.h) may call
 * which op, from the need column of the protocol table (net/proto.h). The node's dispatch
 * asks before any handler runs; nothing else decides.
 *
 *   the local socket   everything (file permissions: root on this machine)
 *   a node             everything; a request it forwards on someone's behalf carries that
 *                      someone (the origin) and is checked again as them
 *   a user             ops whose need is at most the role in its certificate; never an op
 *                      between nodes
 *   anyone             only ops open to anyone (join, which proves a token)
 *
 * Roles are checked on every node for what it serves itself (reads) and again on the
 * leader for what a follower forwards (writes). */
#ifndef ORCH_ACCESS_H
#define ORCH_ACCESS_H
#include "codec/mp.h"
#include "net/peer.h"
#include "net/proto.h"

/* What op needs for these decoded args: the table's need, raised to admin for registry
 * credentials (secret.create/secret.rm of kind registry: they open every image pull). */
enum proto_need access_need(enum op op, const void *args);
/* 0 when p may call op with that need, else E_AUTH and a message that names the op, the
 * role it needs and who the caller is. */
int access_check(enum op op, enum proto_need need, const struct peer *p, char *err);
/* "viewer (user alice)", "a node", "the local socket", ... for messages. */
void access_describe(const struct peer *p, char *buf, size_t n);

/* The origin a node sends along with a request it forwards (or an entry it submits) on
 * behalf of the caller of op: key "origin" of the request map. */
void access_origin_put(struct mpw *w, const struct peer *p, enum op op);
/* The origin of a request: 0 and *p, *op filled; -1 when it carries none or a malformed
 * one (then the request is the sending node's own). Trust it only from a node. */
int access_origin_get(const msgpack_object *req, struct peer *p, enum op *op);

#endif
