/* Read your writes through a follower, for the requests a follower relays to the leader
 * (ops run on the leader: deploy's service.put, volume rm, node rm, ...). Relayed at once,
 * the leader's reply could reach the client before the follower itself applied the write,
 * and the client's next read on the same node (`orch volume rm` then `orch volume ls`)
 * would still see the old state.
 *
 * So the leader stamps every reply it sends on a member node's connection with its commit
 * index ("ri", net/rpc_reply.h; at least the index of the write it answers), and the
 * follower holds a successful reply for a client until its own applied index reaches it —
 * at most RYWAIT_MAX_MS, after which it relays anyway (a follower far behind answers late
 * rather than never). Nodes that hold no log (workers, spares) relay at once: they read
 * through the leader anyway.
 *
 * Not for writes a follower submits as entries it built (kv set, scale, rm: daemon_submit):
 * libraft tells a follower the new commit index only with its next append or heartbeat, so
 * waiting would add up to a heartbeat interval to each such write (measured: one kv write at
 * a time through a follower fell from ~1000/s to 5/s). Those reads may lag by that much;
 * orch(8) says so. */
#ifndef ORCH_RYWAIT_H
#define ORCH_RYWAIT_H
#include <stdbool.h>
#include "codec/mp.h"

#define RYWAIT_MAX_MS 1000

struct daemon;
struct pending;
struct peer;

/* Takes a successful resp for p (a request relayed for a client) when this node must apply
 * more before relaying it (then it is relayed and p freed later, here); false: relay now. */
bool rywait_park(struct daemon *d, struct pending *p, const msgpack_object *resp);
/* The stamp the leader puts on a reply sent on conn: its commit index for a member node's
 * connection, else 0 (none). */
uint64_t rywait_stamp(struct daemon *d, const struct peer *peer);
/* At stop: what is still held is dropped (its clients are gone with the node). */
void rywait_drop(struct daemon *d);

#endif
