#include "orchestrator/sched.h"
#include "orchestrator/volplace.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool live(const struct task *t)
{
	return !task_terminal(t) && t->node_id && t->desired == TD_RUNNING;
}

/* The service at position i of the services table, with its reservations known. */
static struct sched_svc *svc_at(struct sched_ctx *c, size_t i)
{
	struct sched_svc *sv = &c->svcs[i];
	if (!sv->reserved_known) {
		sv->reserved_known = true;
		const struct svc_spec *sp = service_spec(c->s->services.items[i]);
		if (sp) {
			sv->cpu = sp->deploy.reservations.cpus_milli;
			sv->mem = sp->deploy.reservations.memory_bytes;
		}
	}
	return sv;
}

static void count_on(struct sched_ctx *c, struct sched_svc *sv, size_t node)
{
	if (!sv->on)
		sv->on = xcalloc(c->nnodes + 1, sizeof *sv->on);
	sv->on[node]++;
}

void sched_init(struct sched_ctx *c, const struct store *s)
{
	memset(c, 0, sizeof *c);
	c->s = s;
	c->nnodes = s->nodes.n;
	c->nodes = xcalloc(c->nnodes + 1, sizeof *c->nodes);
	for (size_t i = 0; i < s->nodes.n; i++)
		c->nodes[i].n = s->nodes.items[i];
	c->nsvcs = s->services.n;
	c->svcs = xcalloc(c->nsvcs + 1, sizeof *c->svcs);
	/* Reservations of each live task come from its service's spec (tasks of removed
	 * services reserve nothing: they are being stopped). */
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (!live(t))
			continue;
		long ni = table_index_u64(&s->nodes, t->node_id);
		if (ni < 0)
			continue;
		struct sched_node *sn = &c->nodes[ni];
		sn->tasks++;
		long si = table_index_u64(&s->services, t->service_id);
		if (si < 0)
			continue;
		struct sched_svc *sv = svc_at(c, (size_t)si);
		sn->cpu_used += sv->cpu;
		sn->mem_used += sv->mem;
		count_on(c, sv, (size_t)ni);
	}
}

void sched_free(struct sched_ctx *c)
{
	for (size_t i = 0; i < c->nsvcs; i++) {
		free(c->svcs[i].on);
		free(c->svcs[i].fits);
	}
	free(c->svcs);
	free(c->nodes);
	c->svcs = NULL;
	c->nodes = NULL;
}

static bool constraint_ok(const struct constraint *k, const struct node *n)
{
	const char *have = NULL;
	switch (k->what) {
	case CON_NODE_NAME:
	case CON_NODE_HOSTNAME: have = n->name; break;
	case CON_NODE_LABEL: have = labels_get(&n->labels, k->label); break;
	default: return false;
	}
	bool eq = have && k->value && !strcmp(have, k->value);
	return k->eq ? eq : !eq;
}

static void human(uint64_t b, char *out, size_t n)
{
	if (b >= (1ull << 30))
		snprintf(out, n, "%.1f GiB", (double)b / (double)(1ull << 30));
	else
		snprintf(out, n, "%llu MiB", (unsigned long long)(b >> 20));
}

/* Which nodes take new tasks at all: once per pass (reachability asks the leader). */
static void eligibility(struct sched_ctx *c)
{
	if (c->eligible_known)
		return;
	c->eligible_known = true;
	for (size_t i = 0; i < c->nnodes; i++) {
		const struct node *n = c->nodes[i].n;
		c->nodes[i].eligible = n->state == NS_READY && n->availability == NA_ACTIVE &&
				       (!c->reachable || c->reachable(n->id, c->reachable_arg));
	}
}

static bool fits(struct sched_ctx *c, struct sched_svc *sv, const struct svc_spec *spec, size_t i)
{
	if (!sv->fits)
		sv->fits = xcalloc(c->nnodes + 1, 1);
	if (!sv->fits[i]) {
		bool ok = true;
		for (size_t k = 0; k < spec->deploy.placement.constraints.n && ok; k++)
			ok = constraint_ok(&spec->deploy.placement.constraints.v[k], c->nodes[i].n);
		sv->fits[i] = ok ? 1 : 2;
	}
	return sv->fits[i] == 1;
}

uint64_t sched_place(struct sched_ctx *c, const struct svc_spec *spec, uint64_t service_id, char *reason, size_t rlen)
{
	eligibility(c);
	long si = table_index_u64(&c->s->services, service_id);
	struct sched_svc none = {0}, *sv = si < 0 ? &none : &c->svcs[si];
	uint64_t best = 0, best_same = 0, best_load = 0;
	size_t checked = 0, by_constraint = 0, by_cpu = 0, by_mem = 0, by_max = 0, by_bind = 0;
	uint64_t want_cpu = spec->deploy.reservations.cpus_milli, want_mem = spec->deploy.reservations.memory_bytes;
	uint64_t max = spec->deploy.placement.max_replicas_per_node;
	for (size_t i = 0; i < c->nnodes; i++) {
		const struct sched_node *sn = &c->nodes[i];
		const struct node *n = sn->n;
		checked++;
		if (!sn->eligible || (c->pin && n->id != c->pin))
			continue;
		if (!fits(c, sv, spec, i)) {
			by_constraint++;
			continue;
		}
		if (spec->mounts.n && !volplace_binds_ok(spec, n)) {
			by_bind++;
			continue;
		}
		if (want_cpu && sn->cpu_used + want_cpu > n->cpus_milli) {
			by_cpu++;
			continue;
		}
		if (want_mem && sn->mem_used + want_mem > n->memory) {
			by_mem++;
			continue;
		}
		uint64_t same = sv->on ? sv->on[i] : 0;
		if (max && same >= max) {
			by_max++;
			continue;
		}
		/* load in thousandths of the node's capacity, the larger of cpu and memory, with
		 * the task count as a tie-breaker */
		uint64_t lc = n->cpus_milli ? sn->cpu_used * 1000 / n->cpus_milli : 0;
		uint64_t lm = n->memory ? (uint64_t)((double)sn->mem_used * 1000.0 / (double)n->memory) : 0;
		uint64_t load = (lc > lm ? lc : lm) * 1000 + sn->tasks;
		if (!best || same < best_same || (same == best_same && load < best_load)) {
			best = n->id;
			best_same = same;
			best_load = load;
		}
	}
	free(none.fits);
	if (best)
		return best;
	char need[64] = "";
	if (by_mem && by_mem >= by_cpu) {
		human(want_mem, need, sizeof need);
		snprintf(reason, rlen, "no node with %s of memory free: %zu nodes checked", need, checked);
	} else if (by_cpu)
		snprintf(reason, rlen, "no node with %.1f CPUs free: %zu nodes checked", (double)want_cpu / 1000, checked);
	else if (by_max)
		snprintf(reason, rlen, "max_replicas_per_node %llu reached on every eligible node: %zu nodes checked",
			 (unsigned long long)max, checked);
	else if (by_bind)
		snprintf(reason, rlen, "no node allows the service's bind mounts (--allow-bind, orch(8)): %zu nodes checked", checked);
	else if (by_constraint)
		snprintf(reason, rlen, "no node satisfies the placement constraints: %zu nodes checked", checked);
	else if (checked)
		snprintf(reason, rlen, "no node is ready and active: %zu nodes checked", checked);
	else
		snprintf(reason, rlen, "no nodes");
	return 0;
}

void sched_commit(struct sched_ctx *c, uint64_t node_id, uint64_t service_id, const struct svc_spec *spec)
{
	long ni = table_index_u64(&c->s->nodes, node_id);
	if (ni < 0)
		return;
	c->nodes[ni].cpu_used += spec->deploy.reservations.cpus_milli;
	c->nodes[ni].mem_used += spec->deploy.reservations.memory_bytes;
	c->nodes[ni].tasks++;
	long si = table_index_u64(&c->s->services, service_id);
	if (si >= 0)
		count_on(c, &c->svcs[si], (size_t)ni);
}
