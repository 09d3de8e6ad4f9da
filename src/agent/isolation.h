/* Compose networks on the node's bridge: two tasks of this node whose services share no
 * network (traffic/scope.h) do not reach each other directly, by an nft set of address
 * pairs (runtime/net.h net_isolate) kept equal to what the state says, one nft run at a
 * time on the thread pool. The set is checked for frames bridged between the two and for
 * packets routed between them through the gateway (runtime/nat.h). Published ports (DNAT)
 * stay open to every task, and service addresses go through the mesh, which scopes them
 * itself. Tasks on other nodes are reached through their node's host ports, masqueraded:
 * they are not told apart here. */
#ifndef ORCH_ISOLATION_H
#define ORCH_ISOLATION_H

struct agent;

/* From the tick: recomputes the pairs, and applies them when they changed. */
void isolation_sync(struct agent *a);
void isolation_free(struct agent *a);

#endif
