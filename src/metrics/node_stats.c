#include "metrics/node_stats.h"
#include "metrics/ratewin.h"
#include "traffic/mesh.h"
#include "runtime/cgroup_stats.h"
#include "util/err.h"
#include "util/mem.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLE_MS 1000
#define MAX_SVC 256

void node_stats_free(struct node_stats *ns)
{
	free(ns->tasks);
	free(ns->svc);
	memset(ns, 0, sizeof *ns);
}

void node_stats_copy(struct node_stats *dst, const struct node_stats *src)
{
	memset(dst, 0, sizeof *dst);
	dst->at = src->at;
	dst->ntasks = src->ntasks;
	dst->nsvc = src->nsvc;
	if (src->ntasks) {
		dst->tasks = xmalloc(src->ntasks * sizeof *dst->tasks);
		memcpy(dst->tasks, src->tasks, src->ntasks * sizeof *dst->tasks);
	}
	if (src->nsvc) {
		dst->svc = xmalloc(src->nsvc * sizeof *dst->svc);
		memcpy(dst->svc, src->svc, src->nsvc * sizeof *dst->svc);
	}
}

void node_stats_init(struct node_stats_sampler *s, uint64_t node_id, const struct store *store, const struct mesh *mesh)
{
	memset(s, 0, sizeof *s);
	s->node_id = node_id;
	s->store = store;
	s->mesh = mesh;
}

void node_stats_sampler_free(struct node_stats_sampler *s)
{
	node_stats_free(&s->latest);
	if (s->window_ready)
		ratewin_free(&s->window);
	s->window_ready = false;
}

/* The containers of this node are the task directories under its memory cgroup: what
 * really runs, whatever the replicated state says. */
static void sample_tasks(const struct node_stats_sampler *s, struct node_stats *ns)
{
	char dir[256], node_cg[64];
	snprintf(node_cg, sizeof node_cg, "/orch/%016llx", (unsigned long long)s->node_id);
	enum cgroup_layout layout = cgroup_layout_of(CGROUP_ROOT);
	cgroup_dir(dir, sizeof dir, CGROUP_ROOT, layout, "memory", node_cg);
	DIR *dp = opendir(dir);
	if (!dp)
		return;
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(dp))) {
		char *end;
		uint64_t id = strtoull(de->d_name, &end, 10);
		if (!id || *end || de->d_type != DT_DIR)
			continue;
		char path[128], err[ERR_LEN];
		struct cgroup_stats st;
		snprintf(path, sizeof path, "/orch/%016llx/%llu", (unsigned long long)s->node_id, (unsigned long long)id);
		if (cgroup_stats_read_at(CGROUP_ROOT, layout, path, &st, err))
			continue;
		if (ns->ntasks == cap)
			ns->tasks = xrealloc(ns->tasks, (cap = cap ? cap * 2 : 16) * sizeof *ns->tasks);
		struct task_stat *t = &ns->tasks[ns->ntasks++];
		memset(t, 0, sizeof *t);
		t->task_id = id;
		t->cpu_ns = st.cpu_ns;
		t->mem = st.mem_usage;
		const struct task *tk = table_get_u64(&s->store->tasks, id);
		snprintf(t->service, sizeof t->service, "%s", tk && tk->service ? tk->service : "");
	}
	closedir(dp);
}

static void sample(struct node_stats_sampler *s, uint64_t now)
{
	struct node_stats ns = {.at = now};
	if (s->sample_tasks)
		s->sample_tasks(s->sample_arg, now, &ns);
	else
		sample_tasks(s, &ns);
	struct svc_traffic tr[MAX_SVC];
	size_t n = s->mesh ? traffic_stats(s->mesh, tr, MAX_SVC) : 0;
	if (n > MAX_SVC)
		n = MAX_SVC;
	if (n) {
		ns.svc = xcalloc(n, sizeof *ns.svc);
		ns.nsvc = n;
		for (size_t i = 0; i < n; i++)
			ns.svc[i].t = tr[i];
	}
	/* counters into the window, then rates out of it */
	struct ratewin_kv *kv = xcalloc(ns.ntasks + ns.nsvc + 1, sizeof *kv);
	size_t k = 0;
	for (size_t i = 0; i < ns.nsvc; i++, k++) {
		snprintf(kv[k].key, sizeof kv[k].key, "s:%s", ns.svc[i].t.service);
		kv[k].v = ns.svc[i].t.requests;
	}
	for (size_t i = 0; i < ns.ntasks; i++, k++) {
		snprintf(kv[k].key, sizeof kv[k].key, "t:%llu", (unsigned long long)ns.tasks[i].task_id);
		kv[k].v = ns.tasks[i].cpu_ns;
	}
	if (!s->window_ready) {
		ratewin_init(&s->window);
		s->window_ready = true;
	}
	ratewin_push(&s->window, now, kv, k);
	for (size_t i = 0; i < ns.nsvc; i++)
		ns.svc[i].has_rate = ratewin_rate(&s->window, kv[i].key, &ns.svc[i].rps);
	for (size_t i = 0; i < ns.ntasks; i++) {
		double ns_per_s;
		ns.tasks[i].has_rate = ratewin_rate(&s->window, kv[ns.nsvc + i].key, &ns_per_s);
		ns.tasks[i].cpu_milli = ns.tasks[i].has_rate ? ns_per_s / 1e6 : 0;
	}
	free(kv);
	node_stats_free(&s->latest);
	s->latest = ns;
}

void node_stats_tick(struct node_stats_sampler *s, uint64_t now)
{
	if (s->latest.at && now - s->latest.at < SAMPLE_MS)
		return;
	sample(s, now);
}

/* ---- heartbeat form ------------------------------------------------------------------------ */

void node_stats_encode(const struct node_stats *ns, struct mpw *w)
{
	mpw_map_begin(w);
	mpw_key(w, "svc");
	mpw_arr(w, (uint32_t)ns->nsvc);
	for (size_t i = 0; i < ns->nsvc; i++) {
		const struct svc_stat *s = &ns->svc[i];
		mpw_map_begin(w);
		mpw_kstr(w, "name", s->t.service);
		mpw_ku64(w, "conn", s->t.connections);
		mpw_ku64(w, "active", s->t.active);
		mpw_ku64(w, "req", s->t.requests);
		mpw_ku64(w, "in", s->t.bytes_in);
		mpw_ku64(w, "out", s->t.bytes_out);
		mpw_ku64(w, "err", s->t.backend_errors);
		if (s->has_rate)
			mpw_ku64(w, "rps_m", (uint64_t)(s->rps * 1000.0 + 0.5));
		lat_put(w, "lat", &s->t.latency);
		mpw_map_end(w);
	}
	mpw_key(w, "tasks");
	mpw_arr(w, (uint32_t)ns->ntasks);
	for (size_t i = 0; i < ns->ntasks; i++) {
		const struct task_stat *t = &ns->tasks[i];
		mpw_map_begin(w);
		mpw_ku64(w, "id", t->task_id);
		mpw_kstr(w, "service", t->service);
		mpw_ku64(w, "cpu_ns", t->cpu_ns);
		mpw_ku64(w, "mem", t->mem);
		if (t->has_rate)
			mpw_ku64(w, "cpu_um", (uint64_t)(t->cpu_milli * 1000.0 + 0.5));
		mpw_map_end(w);
	}
	mpw_map_end(w);
}

static int decode_svc(const msgpack_object *o, struct svc_stat *s, char *err)
{
	memset(s, 0, sizeof *s);
	uint64_t rps_m = 0;
	if (mp_get_strbuf(o, "name", s->t.service, sizeof s->t.service) || mp_get_u64(o, "conn", &s->t.connections) ||
	    mp_get_u64(o, "req", &s->t.requests) || mp_get_u64(o, "in", &s->t.bytes_in) ||
	    mp_get_u64(o, "out", &s->t.bytes_out) || mp_get_u64(o, "err", &s->t.backend_errors))
		return errf(err, E_INVAL, "stats: a service entry lacks name or counters");
	mp_get_u64(o, "active", &s->t.active);
	if (lat_get(o, "lat", &s->t.latency))
		return errf(err, E_INVAL, "stats: service %s: lat is not %d counters and a sum", s->t.service, LAT_BUCKETS);
	if (!mp_get_u64(o, "rps_m", &rps_m)) {
		s->has_rate = true;
		s->rps = (double)rps_m / 1000.0;
	}
	return 0;
}

static int decode_task(const msgpack_object *o, struct task_stat *t, char *err)
{
	memset(t, 0, sizeof *t);
	uint64_t um = 0;
	if (mp_get_u64(o, "id", &t->task_id) || mp_get_strbuf(o, "service", t->service, sizeof t->service) ||
	    mp_get_u64(o, "cpu_ns", &t->cpu_ns) || mp_get_u64(o, "mem", &t->mem))
		return errf(err, E_INVAL, "stats: a task entry lacks id, service, cpu_ns or mem");
	if (!mp_get_u64(o, "cpu_um", &um)) {
		t->has_rate = true;
		t->cpu_milli = (double)um / 1000.0;
	}
	return 0;
}

int node_stats_decode(const msgpack_object *o, struct node_stats *ns, char *err)
{
	memset(ns, 0, sizeof *ns);
	const msgpack_object *sv = mp_get(o, "svc"), *tk = mp_get(o, "tasks");
	if (!sv || !tk || sv->type != MSGPACK_OBJECT_ARRAY || tk->type != MSGPACK_OBJECT_ARRAY)
		return errf(err, E_INVAL, "stats: svc and tasks arrays required");
	if (sv->via.array.size > 4096 || tk->via.array.size > 65536)
		return errf(err, E_INVAL, "stats: too many entries");
	ns->svc = xcalloc(sv->via.array.size + 1, sizeof *ns->svc);
	ns->tasks = xcalloc(tk->via.array.size + 1, sizeof *ns->tasks);
	for (uint32_t i = 0; i < sv->via.array.size; i++, ns->nsvc++)
		if (decode_svc(&sv->via.array.ptr[i], &ns->svc[i], err))
			return E_INVAL;
	for (uint32_t i = 0; i < tk->via.array.size; i++, ns->ntasks++)
		if (decode_task(&tk->via.array.ptr[i], &ns->tasks[i], err))
			return E_INVAL;
	return 0;
}
