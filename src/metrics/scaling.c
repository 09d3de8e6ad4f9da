#include "metrics/scaling.h"
#include "orchestrator/autoscale.h"
#include "util/log.h"
#include <stdlib.h>

/* Heartbeats carry the figures: right after an election wait until every node had time
 * to send some, so a partial view is not mistaken for low load. */
#define WARMUP_MS 3000

void scaling_init(struct scaling *sc, const struct host *host, struct cstats *view, struct node_stats_sampler *own)
{
	sc->host = host;
	sc->view = view;
	sc->own = own;
	sc->inflight = false;
}

static void scaled(void *data, int rc, const struct apply_res *res)
{
	struct scaling *sc = data;
	sc->inflight = false;
	if (rc && rc != E_EXISTS)
		log_warn(sc->host->ident->name, sc->host->clock, "autoscaler: scale rejected: %s", res->msg);
}

void scaling_tick(struct scaling *sc, uint64_t leader_since)
{
	const struct host *h = sc->host;
	uint64_t now = clock_now(h->clock);
	node_stats_tick(sc->own, now);
	cstats_put(sc->view, h->ident->id, &sc->own->latest, now);
	/* loads come from every task's figures: gathered only when a service autoscales */
	if (sc->inflight || now - leader_since < WARMUP_MS || !autoscale_wanted(h->store))
		return;
	struct as_load *loads = NULL;
	size_t nl = cstats_loads(sc->view, h->store, now, &loads);
	struct as_decision dec;
	uint64_t wall = clock_wall(h->clock);
	if (autoscale_decide(h->store, loads, nl, wall, &dec, 1)) {
		char err[ERR_LEN];
		struct mpw w;
		mpw_init(&w);
		autoscale_body(&dec, wall, &w);
		log_info(h->ident->name, h->clock, "autoscaler: %s %llu -> %llu (%s)", dec.service, (unsigned long long)dec.from,
			 (unsigned long long)dec.to, dec.reason);
		sc->inflight = !host_submit(h, CMD_SERVICE_SCALE, w.sb.data, w.sb.size, scaled, sc, err);
		if (!sc->inflight)
			log_warn(h->ident->name, h->clock, "autoscaler: %s", err);
		mpw_free(&w);
	}
	free(loads);
}
