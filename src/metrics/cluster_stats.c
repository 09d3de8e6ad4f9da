#include "metrics/cluster_stats.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

struct entry {
	uint64_t node, recv;
	struct node_stats st;
};

static struct entry *entries;
static size_t nentries;

void cstats_reset(void)
{
	for (size_t i = 0; i < nentries; i++)
		node_stats_free(&entries[i].st);
	free(entries);
	entries = NULL;
	nentries = 0;
}

static struct entry *slot(uint64_t node)
{
	for (size_t i = 0; i < nentries; i++)
		if (entries[i].node == node)
			return &entries[i];
	entries = xrealloc(entries, (nentries + 1) * sizeof *entries);
	struct entry *e = &entries[nentries++];
	memset(e, 0, sizeof *e);
	e->node = node;
	return e;
}

void cstats_put(uint64_t node, const struct node_stats *ns, uint64_t now)
{
	struct entry *e = slot(node);
	node_stats_free(&e->st);
	node_stats_copy(&e->st, ns);
	e->recv = now;
}

int cstats_put_msg(uint64_t node, const msgpack_object *o, uint64_t now, char *err)
{
	struct node_stats ns;
	int rc = node_stats_decode(o, &ns, err);
	if (!rc) {
		struct entry *e = slot(node);
		node_stats_free(&e->st);
		e->st = ns;
		e->recv = now;
	} else
		node_stats_free(&ns);
	return rc;
}

const struct node_stats *cstats_node(uint64_t node, uint64_t now)
{
	for (size_t i = 0; i < nentries; i++)
		if (entries[i].node == node && now - entries[i].recv <= CSTATS_FRESH_MS)
			return &entries[i].st;
	return NULL;
}

static struct as_load *load_for(struct as_load **v, size_t *n, const char *service)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i].service, service))
			return &(*v)[i];
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	struct as_load *l = &(*v)[(*n)++];
	memset(l, 0, sizeof *l);
	snprintf(l->service, sizeof l->service, "%s", service);
	return l;
}

size_t cstats_loads(const struct store *s, uint64_t now, struct as_load **out)
{
	struct as_load *v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < nentries; i++) {
		const struct entry *e = &entries[i];
		if (now - e->recv > CSTATS_FRESH_MS)
			continue;
		for (size_t k = 0; k < e->st.nsvc; k++) {
			const struct svc_stat *sv = &e->st.svc[k];
			if (!sv->has_rate)
				continue;
			struct as_load *l = load_for(&v, &n, sv->t.service);
			l->has_rps = true;
			l->rps += sv->rps;
		}
		for (size_t k = 0; k < e->st.ntasks; k++) {
			const struct task_stat *ts = &e->st.tasks[k];
			const struct task *t = table_get_u64(&s->tasks, ts->task_id);
			/* only tasks the state says run here and now count */
			if (!ts->has_rate || !t || t->node_id != e->node || strcmp(t->state, "running") ||
			    strcmp(t->desired, "running") || !t->service)
				continue;
			struct as_load *l = load_for(&v, &n, t->service);
			l->has_cpu = true;
			l->cpu_milli += ts->cpu_milli;
			l->cpu_tasks++;
		}
	}
	*out = v;
	return n;
}
