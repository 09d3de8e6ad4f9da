/* The leader's in-memory view of every node's figures: the latest node_stats each node
 * sent with its heartbeat (the leader's own sample is put directly). Not replicated: a new
 * leader has a full view again within a heartbeat or two. Entries older than
 * CSTATS_FRESH_MS count as unknown. */
#ifndef ORCH_CLUSTER_STATS_H
#define ORCH_CLUSTER_STATS_H
#include "metrics/node_stats.h"
#include "orchestrator/autoscale.h"
#include "state/store.h"

#define CSTATS_FRESH_MS 3000

struct cstats_entry {
	uint64_t node, recv;
	struct node_stats st;
};

/* The view (zero-initialised is empty). */
struct cstats {
	struct cstats_entry *entries;
	size_t n;
};

/* Keeps a copy of ns as node's latest figures, received at now. */
void cstats_put(struct cstats *cs, uint64_t node, const struct node_stats *ns, uint64_t now);
/* The heartbeat's "stats" map; E_INVAL (nothing kept) when malformed. */
int cstats_put_msg(struct cstats *cs, uint64_t node, const msgpack_object *o, uint64_t now, char *err);
/* Fresh figures of a node, or NULL. */
const struct node_stats *cstats_node(const struct cstats *cs, uint64_t node, uint64_t now);
/* Per-service load for the autoscaler: requests/s summed over the nodes that report the
 * service, CPU summed over its running tasks (per the store). *out is malloc'd. */
size_t cstats_loads(const struct cstats *cs, const struct store *s, uint64_t now, struct as_load **out);
void cstats_free(struct cstats *cs);

#endif
