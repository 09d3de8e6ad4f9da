#include "orchestrator/sched.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool live(const struct task *t)
{
	return !task_terminal(t) && t->node_id && t->desired == TD_RUNNING;
}

/* Reservations of a task, from its service's spec (tasks of removed services reserve
 * nothing: they are being stopped). */
static void reserved(const struct store *s, const struct task *t, uint64_t *cpu, uint64_t *mem)
{
	*cpu = *mem = 0;
	const struct service *v = table_get_u64(&s->services, t->service_id);
	const struct svc_spec *sp = v ? service_spec(v) : NULL;
	if (sp) {
		*cpu = sp->deploy.reservations.cpus_milli;
		*mem = sp->deploy.reservations.memory_bytes;
	}
}

void sched_init(struct sched_ctx *c, const struct store *s)
{
	c->nnodes = s->nodes.n;
	c->reachable = NULL;
	c->reachable_arg = NULL;
	c->nodes = xcalloc(c->nnodes ? c->nnodes : 1, sizeof *c->nodes);
	for (size_t i = 0; i < s->nodes.n; i++)
		c->nodes[i].n = s->nodes.items[i];
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (!live(t))
			continue;
		for (size_t i = 0; i < c->nnodes; i++) {
			if (c->nodes[i].n->id != t->node_id)
				continue;
			uint64_t cpu, mem;
			reserved(s, t, &cpu, &mem);
			c->nodes[i].cpu_used += cpu;
			c->nodes[i].mem_used += mem;
			c->nodes[i].tasks++;
		}
	}
}

void sched_free(struct sched_ctx *c)
{
	free(c->nodes);
	c->nodes = NULL;
}

uint64_t sched_service_on(const struct store *s, uint64_t service_id, uint64_t node_id)
{
	uint64_t n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (t->service_id == service_id && t->node_id == node_id && live(t))
			n++;
	return n;
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

uint64_t sched_place(struct sched_ctx *c, const struct store *s, const struct svc_spec *spec, uint64_t service_id,
		     const uint64_t *extra_ids, size_t nextra, char *reason, size_t rlen)
{
	uint64_t best = 0, best_same = 0, best_load = 0;
	size_t checked = 0, not_ready = 0, by_constraint = 0, by_cpu = 0, by_mem = 0, by_max = 0;
	uint64_t want_cpu = spec->deploy.reservations.cpus_milli, want_mem = spec->deploy.reservations.memory_bytes;
	for (size_t i = 0; i < c->nnodes; i++) {
		const struct sched_node *sn = &c->nodes[i];
		const struct node *n = sn->n;
		checked++;
		if (n->state != NS_READY || n->availability != NA_ACTIVE ||
		    (c->reachable && !c->reachable(n->id, c->reachable_arg))) {
			not_ready++;
			continue;
		}
		bool ok = true;
		for (size_t k = 0; k < spec->deploy.placement.constraints.n && ok; k++)
			ok = constraint_ok(&spec->deploy.placement.constraints.v[k], n);
		if (!ok) {
			by_constraint++;
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
		uint64_t same = sched_service_on(s, service_id, n->id);
		for (size_t k = 0; k < nextra; k++)
			if (extra_ids[k] == n->id)
				same++;
		if (spec->deploy.placement.max_replicas_per_node && same >= spec->deploy.placement.max_replicas_per_node) {
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
			 (unsigned long long)spec->deploy.placement.max_replicas_per_node, checked);
	else if (by_constraint)
		snprintf(reason, rlen, "no node satisfies the placement constraints: %zu nodes checked", checked);
	else if (checked)
		snprintf(reason, rlen, "no node is ready and active: %zu nodes checked", checked);
	else
		snprintf(reason, rlen, "no nodes");
	(void)not_ready;
	return 0;
}

void sched_commit(struct sched_ctx *c, uint64_t node_id, const struct svc_spec *spec)
{
	for (size_t i = 0; i < c->nnodes; i++)
		if (c->nodes[i].n->id == node_id) {
			c->nodes[i].cpu_used += spec->deploy.reservations.cpus_milli;
			c->nodes[i].mem_used += spec->deploy.reservations.memory_bytes;
			c->nodes[i].tasks++;
		}
}
