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

/* The architecture this binary was built for, in the names Docker uses. */
static const char *build_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__arm__)
	return "arm";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#elif defined(__powerpc64__)
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__i386__)
	return "386";
#else
	return "unknown";
#endif
}

static bool constraint_ok(const struct sched_ctx *c, const struct constraint *k, const struct node *n)
{
	const char *have = NULL;
	char hex[17];
	switch (k->what) {
	case CON_NODE_NAME:
	case CON_NODE_HOSTNAME: have = n->name; break;
	case CON_NODE_LABEL: have = labels_get(&n->labels, k->label); break;
	case CON_NODE_ID: {
		snprintf(hex, sizeof hex, "%016llx", (unsigned long long)n->id);
		bool eq = k->value && strlen(k->value) >= 4 && !strncasecmp(hex, k->value, strlen(k->value));
		return k->eq ? eq : !eq;
	}
	case CON_NODE_ROLE: have = c->manager && c->manager(n->id, c->reachable_arg) ? "manager" : "worker"; break;
	case CON_NODE_OS: have = "linux"; break;
	case CON_NODE_ARCH: have = build_arch(); break;
	default: return false;
	}
	bool eq = have && k->value && !strcmp(have, k->value);
	return k->eq ? eq : !eq;
}

bool sched_constraints_ok(const struct sched_ctx *c, const struct svc_spec *spec, const struct node *n)
{
	for (size_t k = 0; k < spec->deploy.placement.constraints.n; k++)
		if (!constraint_ok(c, &spec->deploy.placement.constraints.v[k], n))
			return false;
	return true;
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
		c->nodes[i].eligible = n->state == NS_READY && n->availability == NA_ACTIVE && !n->disk_alarm_at &&
				       (!c->reachable || c->reachable(n->id, c->reachable_arg));
	}
}

static bool fits(struct sched_ctx *c, struct sched_svc *sv, const struct svc_spec *spec, size_t i)
{
	if (!sv->fits)
		sv->fits = xcalloc(c->nnodes + 1, 1);
	if (!sv->fits[i])
		sv->fits[i] = sched_constraints_ok(c, spec, c->nodes[i].n) ? 1 : 2;
	return sv->fits[i] == 1;
}

/* Why node i cannot take one more task of the service (NO_FIT_NONE: it can). */
enum no_fit { NO_FIT_NONE, NO_FIT_INELIGIBLE, NO_FIT_PIN, NO_FIT_CONSTRAINT, NO_FIT_BIND, NO_FIT_PRIV, NO_FIT_USERNS, NO_FIT_CPU, NO_FIT_MEM, NO_FIT_MAX };

static enum no_fit node_check(struct sched_ctx *c, struct sched_svc *sv, const struct svc_spec *spec, size_t i)
{
	const struct sched_node *sn = &c->nodes[i];
	uint64_t want_cpu = spec->deploy.reservations.cpus_milli, want_mem = spec->deploy.reservations.memory_bytes;
	uint64_t max = spec->deploy.placement.max_replicas_per_node;
	if (!sn->eligible)
		return NO_FIT_INELIGIBLE;
	if (c->pin && sn->n->id != c->pin)
		return NO_FIT_PIN;
	if (!fits(c, sv, spec, i))
		return NO_FIT_CONSTRAINT;
	if (spec->mounts.n && !volplace_binds_ok(spec, sn->n))
		return NO_FIT_BIND;
	if (spec->privileged && !node_allows(sn->n, NODE_ALLOW_PRIVILEGED))
		return NO_FIT_PRIV;
	if (spec->network_mode == NET_HOST && node_allows(sn->n, NODE_USERNS_REMAP))
		return NO_FIT_USERNS;
	if (want_cpu && sn->cpu_used + want_cpu > sn->n->cpus_milli)
		return NO_FIT_CPU;
	if (want_mem && sn->mem_used + want_mem > sn->n->memory)
		return NO_FIT_MEM;
	if (max && sv->on && sv->on[i] >= max)
		return NO_FIT_MAX;
	return NO_FIT_NONE;
}

struct spread_item {
	const char *v; /* the node's value of the label, NULL: none */
	size_t i;
};

static int by_value(const void *a, const void *b)
{
	const char *x = ((const struct spread_item *)a)->v, *y = ((const struct spread_item *)b)->v;
	if (!x || !y) /* no value sorts first */
		return x ? 1 : y ? -1 : 0;
	return strcmp(x, y);
}

/* Spread preferences: for each preference, the service's tasks on the nodes that share
 * node i's value of the label (nodes without it are a group of their own, as in Swarm),
 * counted over the nodes that can take the task (ok). Fewer is better. Sorting by value
 * keeps it n log n per placement: a label with as many values as nodes is allowed. */
static void spread_counts(const struct sched_ctx *c, const struct sched_svc *sv, const struct pref_list *prefs,
			  const bool *ok, uint64_t *out /* [prefs->n * nnodes] */)
{
	struct spread_item *it = xcalloc(c->nnodes + 1, sizeof *it);
	for (size_t p = 0; p < prefs->n; p++) {
		const char *key = prefs->v[p].spread + 12; /* after "node.labels." (spec_table.c) */
		uint64_t *g = out + p * c->nnodes;
		size_t n = 0;
		for (size_t i = 0; i < c->nnodes; i++)
			if (ok[i])
				it[n++] = (struct spread_item){labels_get(&c->nodes[i].n->labels, key), i};
		if (n)
			qsort(it, n, sizeof *it, by_value);
		for (size_t a = 0; a < n;) {
			size_t b = a;
			uint64_t sum = 0;
			for (; b < n && !by_value(&it[a], &it[b]); b++)
				sum += sv->on ? sv->on[it[b].i] : 0;
			for (; a < b; a++)
				g[it[a].i] = sum;
		}
	}
	free(it);
}

/* A service's platform: that of the image it runs, which every node must match. The nodes
 * of a cluster run one build (node records hold no architecture), so this is a property of
 * the cluster: a task that could never start is left pending with the reason instead of
 * failing on every node in turn. */
static bool platform_unmet(const struct svc_spec *spec, char *reason, size_t rlen)
{
	char here[64];
	if (!spec->platform || spec_platform_matches(spec->platform, build_arch(), here, sizeof here))
		return false;
	snprintf(reason, rlen, "no node runs %s (the cluster's nodes are %s)", spec->platform, here);
	return true;
}

uint64_t sched_place_on(struct sched_ctx *c, const struct svc_spec *spec, uint64_t service_id, uint64_t node_id,
			char *reason, size_t rlen)
{
	if (platform_unmet(spec, reason, rlen))
		return 0;
	eligibility(c);
	long si = table_index_u64(&c->s->services, service_id), ni = table_index_u64(&c->s->nodes, node_id);
	if (ni < 0) {
		snprintf(reason, rlen, "its node left the cluster");
		return 0;
	}
	struct sched_svc none = {0}, *sv = si < 0 ? &none : &c->svcs[si];
	enum no_fit why = node_check(c, sv, spec, (size_t)ni);
	free(none.fits);
	char need[64];
	switch (why) {
	case NO_FIT_NONE: return node_id;
	case NO_FIT_INELIGIBLE: snprintf(reason, rlen, "node %s is not ready and active", c->nodes[ni].n->name); break;
	case NO_FIT_CONSTRAINT: snprintf(reason, rlen, "node %s does not satisfy the placement constraints", c->nodes[ni].n->name); break;
	case NO_FIT_CPU:
		snprintf(reason, rlen, "node %s has not %.1f CPUs free", c->nodes[ni].n->name,
			 (double)spec->deploy.reservations.cpus_milli / 1000);
		break;
	case NO_FIT_MEM:
		human(spec->deploy.reservations.memory_bytes, need, sizeof need);
		snprintf(reason, rlen, "node %s has not %s of memory free", c->nodes[ni].n->name, need);
		break;
	case NO_FIT_MAX: snprintf(reason, rlen, "max_replicas_per_node reached on node %s", c->nodes[ni].n->name); break;
	case NO_FIT_PIN: snprintf(reason, rlen, "its volume is on another node than %s", c->nodes[ni].n->name); break;
	case NO_FIT_PRIV:
		snprintf(reason, rlen, "node %s does not run privileged tasks (--allow-privileged, orch(8))", c->nodes[ni].n->name);
		break;
	case NO_FIT_USERNS:
		snprintf(reason, rlen, "node %s remaps user ids (--userns-remap), which network_mode: host cannot", c->nodes[ni].n->name);
		break;
	case NO_FIT_BIND:
		snprintf(reason, rlen, "node %s does not allow the service's bind mounts (--allow-bind, orch(8))", c->nodes[ni].n->name);
		break;
	}
	return 0;
}

uint64_t sched_place(struct sched_ctx *c, const struct svc_spec *spec, uint64_t service_id, char *reason, size_t rlen)
{
	if (platform_unmet(spec, reason, rlen))
		return 0;
	eligibility(c);
	long si = table_index_u64(&c->s->services, service_id);
	struct sched_svc none = {0}, *sv = si < 0 ? &none : &c->svcs[si];
	uint64_t best = 0, best_same = 0, best_load = 0;
	size_t best_i = 0, checked = 0, by_constraint = 0, by_cpu = 0, by_mem = 0, by_max = 0, by_bind = 0, by_priv = 0, by_userns = 0;
	uint64_t want_cpu = spec->deploy.reservations.cpus_milli, want_mem = spec->deploy.reservations.memory_bytes;
	uint64_t max = spec->deploy.placement.max_replicas_per_node;
	const struct pref_list *prefs = &spec->deploy.placement.preferences;
	/* with preferences, a first pass finds the nodes that can take the task (ok, and why
	 * not), the groups are counted over them, and the second pass picks */
	bool *ok = prefs->n ? xcalloc(c->nnodes + 1, sizeof *ok) : NULL;
	unsigned char *why_not = prefs->n ? xcalloc(c->nnodes + 1, 1) : NULL;
	uint64_t *groups = NULL;
	for (int pass = prefs->n ? 0 : 1; pass < 2; pass++) {
		if (pass == 1 && ok) {
			groups = xcalloc(prefs->n * c->nnodes + 1, sizeof *groups);
			spread_counts(c, sv, prefs, ok, groups);
		}
		for (size_t i = 0; i < c->nnodes; i++) {
			const struct sched_node *sn = &c->nodes[i];
			const struct node *n = sn->n;
			enum no_fit why = ok && pass == 1 ? (enum no_fit)why_not[i] : node_check(c, sv, spec, i);
			if (pass == 0) {
				ok[i] = why == NO_FIT_NONE;
				why_not[i] = (unsigned char)why;
				continue;
			}
			checked++;
			by_constraint += why == NO_FIT_CONSTRAINT;
			by_cpu += why == NO_FIT_CPU;
			by_mem += why == NO_FIT_MEM;
			by_max += why == NO_FIT_MAX;
			by_bind += why == NO_FIT_BIND;
			by_priv += why == NO_FIT_PRIV;
			by_userns += why == NO_FIT_USERNS;
			if (why != NO_FIT_NONE)
				continue;
			uint64_t same = sv->on ? sv->on[i] : 0;
			/* load in thousandths of the node's capacity, the larger of cpu and memory, with
			 * the task count as a tie-breaker */
			uint64_t lc = n->cpus_milli ? sn->cpu_used * 1000 / n->cpus_milli : 0;
			uint64_t lm = n->memory ? (uint64_t)((double)sn->mem_used * 1000.0 / (double)n->memory) : 0;
			uint64_t load = (lc > lm ? lc : lm) * 1000 + sn->tasks;
			int spread = 0; /* the preferences first, in order */
			for (size_t p = 0; best && groups && p < prefs->n && !spread; p++) {
				uint64_t a = groups[p * c->nnodes + i], b = groups[p * c->nnodes + best_i];
				spread = a < b ? -1 : a > b;
			}
			if (!best || spread < 0 || (!spread && (same < best_same || (same == best_same && load < best_load)))) {
				best = n->id;
				best_i = i;
				best_same = same;
				best_load = load;
			}
		}
	}
	free(ok);
	free(why_not);
	free(groups);
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
	else if (by_userns)
		snprintf(reason, rlen, "every node that could take it remaps user ids (--userns-remap), which network_mode: host cannot: "
			 "%zu nodes checked", checked);
	else if (by_priv)
		snprintf(reason, rlen, "no node runs privileged tasks (start one with --allow-privileged, orch(8)): %zu nodes checked", checked);
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
