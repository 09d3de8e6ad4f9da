/* The leader's autoscaling loop (the I/O shell around orchestrator/autoscale.h): on each
 * tick it folds its own figures into the cluster view, asks the pure autoscaler for
 * decisions and commits them one at a time as service.scale commands with their event. */
#ifndef ORCH_SCALING_H
#define ORCH_SCALING_H
#include <stdbool.h>
#include <stdint.h>
#include "metrics/cluster_stats.h"
#include "metrics/node_stats.h"
#include "node/host.h"

struct scaling {
	const struct host *host;
	struct cstats *view;              /* every node's figures (heartbeats) */
	struct node_stats_sampler *own;   /* this node's */
	bool inflight;                    /* a service.scale not answered yet */
};

void scaling_init(struct scaling *sc, const struct host *host, struct cstats *view, struct node_stats_sampler *own);
/* leader_since: monotonic ms when this node became leader. */
void scaling_tick(struct scaling *sc, uint64_t leader_since);

#endif
