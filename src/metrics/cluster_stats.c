#include "metrics/cluster_stats.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

void cstats_free(struct cstats *cs)
{
	for (size_t i = 0; i < cs->n; i++)
		node_stats_free(&cs->entries[i].st);
	free(cs->entries);
	cs->entries = NULL;
	cs->n = 0;
}

static struct cstats_entry *slot(struct cstats *cs, uint64_t node)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->entries[i].node == node)
			return &cs->entries[i];
	cs->entries = xrealloc(cs->entries, (cs->n + 1) * sizeof *cs->entries);
	struct cstats_entry *e = &cs->entries[cs->n++];
	memset(e, 0, sizeof *e);
	e->node = node;
	return e;
}

void cstats_put(struct cstats *cs, uint64_t node, const struct node_stats *ns, uint64_t now)
{
	struct cstats_entry *e = slot(cs, node);
	node_stats_free(&e->st);
	node_stats_copy(&e->st, ns);
	e->recv = now;
}

int cstats_put_msg(struct cstats *cs, uint64_t node, const msgpack_object *o, uint64_t now, char *err)
{
	struct node_stats ns;
	int rc = node_stats_decode(o, &ns, err);
	if (!rc) {
		struct cstats_entry *e = slot(cs, node);
		node_stats_free(&e->st);
		e->st = ns;
		e->recv = now;
	} else
		node_stats_free(&ns);
	return rc;
}

const struct node_stats *cstats_node(const struct cstats *cs, uint64_t node, uint64_t now)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->entries[i].node == node && now - cs->entries[i].recv <= CSTATS_FRESH_MS)
			return &cs->entries[i].st;
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

size_t cstats_loads(const struct cstats *cs, const struct store *s, uint64_t now, struct as_load **out)
{
	struct as_load *v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < cs->n; i++) {
		const struct cstats_entry *e = &cs->entries[i];
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
			if (!ts->has_rate || !t || t->node_id != e->node || t->state != TS_RUNNING ||
			    t->desired != TD_RUNNING || !t->service)
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
