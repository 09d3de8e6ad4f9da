#include "metrics/scaling.h"
#include "metrics/cluster_stats.h"
#include "node/daemon.h"
#include "orchestrator/autoscale.h"
#include "util/log.h"
#include <stdlib.h>

/* Heartbeats carry the figures: right after an election wait until every node had time
 * to send some, so a partial view is not mistaken for low load. */
#define WARMUP_MS 3000

static bool inflight;

static void scaled(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)d;
	(void)data;
	inflight = false;
	if (rc && rc != E_EXISTS)
		log_warn("autoscaler: scale rejected: %s", res->msg);
}

void scaling_tick(struct daemon *d)
{
	uint64_t now = clock_now(d->clock);
	node_stats_tick(d);
	cstats_put(d->ident.id, node_stats_latest(), now);
	if (inflight || now - d->leader.leader_since < WARMUP_MS)
		return;
	struct as_load *loads = NULL;
	size_t nl = cstats_loads(&d->store, now, &loads);
	struct as_decision dec;
	uint64_t wall = clock_wall(d->clock);
	if (autoscale_decide(&d->store, loads, nl, wall, &dec, 1)) {
		char err[ERR_LEN];
		struct mpw w;
		mpw_init(&w);
		autoscale_body(&dec, wall, &w);
		log_info("autoscaler: %s %llu -> %llu (%s)", dec.service, (unsigned long long)dec.from,
			 (unsigned long long)dec.to, dec.reason);
		inflight = !daemon_submit(d, "service.scale", w.sb.data, w.sb.size, scaled, NULL, err);
		if (!inflight)
			log_warn("autoscaler: %s", err);
		mpw_free(&w);
	}
	free(loads);
}
