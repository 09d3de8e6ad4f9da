#include "orchestrator/rebalance.h"
#include "orchestrator/volplace.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rebalance_parse(const char *v, uint64_t *out)
{
	char *end;
	if (!v || !*v || *v < '0' || *v > '9')
		return -1;
	unsigned long long n = strtoull(v, &end, 10);
	if (*end || n > REBALANCE_MOVES_MAX)
		return -1;
	*out = n;
	return 0;
}

uint64_t rebalance_budget(const struct store *s)
{
	const struct kv *kv = table_get_str(&s->kv, REBALANCE_KEY);
	uint64_t n;
	return kv && !rebalance_parse(kv->value, &n) ? n : REBALANCE_MOVES_DEFAULT;
}

/* The service's tasks on the nodes sharing node i's value of the preference's label
 * (nodes without it are a group of their own, as the scheduler counts them). */
static uint64_t group_count(const struct sched_ctx *c, const uint32_t *on, const struct pref *p, size_t i)
{
	const char *key = p->spread + 12; /* after "node.labels." (spec_table.c) */
	const char *mine = labels_get(&c->nodes[i].n->labels, key);
	uint64_t sum = 0;
	for (size_t j = 0; j < c->nnodes; j++) {
		const char *v = labels_get(&c->nodes[j].n->labels, key);
		if ((!v && !mine) || (v && mine && !strcmp(v, mine)))
			sum += on[j];
	}
	return sum;
}

/* Does moving one task from node index f to node index t lower the imbalance strictly?
 * adj tasks counted on t are the move's own (taken off to see the state before it). At
 * each level (each preference, then nodes) where f and t differ, the squared sum changes
 * by 2 (count(t) - count(f) + 1): the first level where it changes decides. */
static bool lowers(const struct sched_ctx *c, const uint32_t *on, const struct svc_spec *sp, size_t f, size_t t, uint64_t adj)
{
	if (f == t)
		return false;
	const struct pref_list *prefs = &sp->deploy.placement.preferences;
	for (size_t p = 0; p < prefs->n; p++) {
		uint64_t gf = group_count(c, on, &prefs->v[p], f), gt = group_count(c, on, &prefs->v[p], t);
		const char *key = prefs->v[p].spread + 12;
		const char *vf = labels_get(&c->nodes[f].n->labels, key), *vt = labels_get(&c->nodes[t].n->labels, key);
		if ((!vf && !vt) || (vf && vt && !strcmp(vf, vt)))
			continue; /* one group: this level does not change */
		gt -= adj < gt ? adj : gt;
		if (gf >= gt + 2)
			return true;
		if (gf < gt + 1)
			return false;
	}
	uint64_t cf = on[f], ct = on[t];
	ct -= adj < ct ? adj : ct;
	return cf >= ct + 2;
}

static const uint32_t *service_counts(const struct sched_ctx *c, uint64_t service_id)
{
	long si = table_index_u64(&c->s->services, service_id);
	return si < 0 ? NULL : c->svcs[si].on;
}

bool rebalance_improves(const struct sched_ctx *c, const struct svc_spec *sp, uint64_t service_id, uint64_t from,
			uint64_t to)
{
	const uint32_t *on = service_counts(c, service_id);
	long f = table_index_u64(&c->s->nodes, from), t = table_index_u64(&c->s->nodes, to);
	return on && f >= 0 && t >= 0 && lowers(c, on, sp, (size_t)f, (size_t)t, 1);
}

/* A published port in host mode binds the node's own port: two tasks of the service
 * cannot share a node. */
static bool host_ports(const struct svc_spec *sp)
{
	for (size_t i = 0; i < sp->ports.n; i++)
		if (sp->ports.v[i].published && (sp->ports.v[i].mode == PORT_MODE_HOST || sp->network_mode == NET_HOST))
			return true;
	return false;
}

bool rebalance_pick(struct sched_ctx *sc, const struct store *s, const struct service *v, const struct svc_spec *sp,
		    const struct task *const *ts, size_t nts, const struct volplace *vp, uint64_t now,
		    struct rebalance_pick *out)
{
	if (!sp->deploy.rebalance || sp->deploy.mode == DEPLOY_GLOBAL || nts < 2)
		return false;
	const uint32_t *on = service_counts(sc, v->id);
	if (!on)
		return false;
	char reason[ERR_LEN];
	uint64_t to = sched_place(sc, sp, v->id, reason, sizeof reason);
	long ti = to ? table_index_u64(&s->nodes, to) : -1;
	if (ti < 0)
		return false;
	const struct node *tn = sc->nodes[ti].n;
	if (tn->state_at + REBALANCE_SETTLE_MS > now || (on[ti] && host_ports(sp)))
		return false;
	const struct task *best = NULL;
	uint64_t best_count = 0;
	/* per source node, whether a move from it lowers the imbalance: 0 not asked yet, 1
	 * yes, 2 no (with spread preferences, asking counts over every node) */
	unsigned char *from_ok = xcalloc(sc->nnodes + 1, 1);
	for (size_t k = 0; k < nts; k++) {
		const struct task *t = ts[k];
		if (t->desired != TD_RUNNING || t->state != TS_RUNNING || !t->node_id || t->node_id == to ||
		    t->generation != v->generation)
			continue;
		long fi = table_index_u64(&s->nodes, t->node_id);
		if (fi < 0 || from_ok[fi] == 2)
			continue;
		if (!from_ok[fi])
			from_ok[fi] = lowers(sc, on, sp, (size_t)fi, (size_t)ti, 0) ? 1 : 2;
		uint64_t pin = 0;
		if (from_ok[fi] == 2 || volplace_pin(vp, s, sp, t->slot, &pin, reason, sizeof reason) || pin)
			continue; /* no better, or its volume lives on its node */
		/* the fullest node first, then the newest task (the least settled) */
		if (!best || on[fi] > best_count || (on[fi] == best_count && t->id > best->id)) {
			best = t;
			best_count = on[fi];
		}
	}
	free(from_ok);
	if (!best)
		return false;
	*out = (struct rebalance_pick){.t = best, .to = to, .from_count = best_count, .to_count = on[ti]};
	return true;
}
