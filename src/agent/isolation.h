/* Compose networks on the node's bridge: two tasks of this node whose services share no
 * network (traffic/scope.h) do not reach each other directly, by an nft set of address
 * pairs (runtime/net.h net_isolate) kept equal to what the state says, one nft run at a
 * time on the thread pool. Traffic through the host (service addresses, published ports)
 * is routed, not bridged, and is not this set's business: the mesh scopes service
 * addresses itself. Tasks on other nodes are reached through their node's host ports,
 * masqueraded: they are not told apart here. */
#ifndef ORCH_ISOLATION_H
#define ORCH_ISOLATION_H

struct agent;

/* From the tick: recomputes the pairs, and applies them when they changed. */
void isolation_sync(struct agent *a);
void isolation_free(struct agent *a);

#endif
