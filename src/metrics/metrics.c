#include "metrics/metrics.h"
#include "metrics/cluster_stats.h"
#include "metrics/node_stats.h"
#include "metrics/prom.h"
#include "net/conn.h"
#include "net/rpc_reply.h"
#include "spec/spec.h"
#include "traffic/mesh.h"
#include "traffic/stats.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SVC 256

/* ---- GET /metrics ----------------------------------------------------------------------------- */

static const struct svc_stat *rate_of(const struct node_stats *ns, const char *service)
{
	for (size_t i = 0; i < ns->nsvc; i++)
		if (!strcmp(ns->svc[i].t.service, service))
			return &ns->svc[i];
	return NULL;
}

static void page_latency(const struct svc_traffic *tr, size_t n, struct buf *b)
{
	prom_family(b, "orch_service_request_duration_seconds", "histogram",
		    "HTTP requests through this node's routing mesh: from the request's first byte to the backend's first answer byte.");
	for (size_t i = 0; i < n; i++) {
		const struct lat_hist *h = &tr[i].latency;
		uint64_t cum = 0;
		char le[32];
		for (unsigned k = 0; k < LAT_BUCKETS; k++) {
			cum += h->n[k];
			if (k < LAT_BUCKETS - 1)
				snprintf(le, sizeof le, "%g", (double)lat_bounds_us[k] / 1e6);
			else
				snprintf(le, sizeof le, "+Inf");
			prom_u64(b, "orch_service_request_duration_seconds_bucket",
				 (const char *[]){"service", tr[i].service, "le", le, NULL}, cum);
		}
		prom_double(b, "orch_service_request_duration_seconds_sum", (const char *[]){"service", tr[i].service, NULL},
			    (double)h->sum_us / 1e6);
		prom_u64(b, "orch_service_request_duration_seconds_count", (const char *[]){"service", tr[i].service, NULL}, cum);
	}
}

static void page_services(const struct node_stats_sampler *own, struct buf *b)
{
	struct svc_traffic *tr = xcalloc(MAX_SVC, sizeof *tr);
	size_t n = own->mesh ? traffic_stats(own->mesh, tr, MAX_SVC) : 0;
	if (n > MAX_SVC)
		n = MAX_SVC;
	const struct node_stats *ns = &own->latest;
	prom_family(b, "orch_service_connections_total", "counter", "Client connections accepted by this node's routing mesh.");
	for (size_t i = 0; i < n; i++)
		prom_u64(b, "orch_service_connections_total", (const char *[]){"service", tr[i].service, NULL}, tr[i].connections);
	prom_family(b, "orch_service_active_connections", "gauge", "Client connections open now.");
	for (size_t i = 0; i < n; i++)
		prom_u64(b, "orch_service_active_connections", (const char *[]){"service", tr[i].service, NULL}, tr[i].active);
	prom_family(b, "orch_service_requests_total", "counter", "HTTP/1.x requests proxied by this node (keep-alive aware).");
	for (size_t i = 0; i < n; i++)
		prom_u64(b, "orch_service_requests_total", (const char *[]){"service", tr[i].service, NULL}, tr[i].requests);
	prom_family(b, "orch_service_request_rate", "gauge", "HTTP requests per second through this node over the last ~10 s.");
	for (size_t i = 0; i < n; i++) {
		const struct svc_stat *s = rate_of(ns, tr[i].service);
		prom_double(b, "orch_service_request_rate", (const char *[]){"service", tr[i].service, NULL},
			    s && s->has_rate ? s->rps : 0);
	}
	prom_family(b, "orch_service_bytes_total", "counter", "Bytes proxied: in = client to backend, out = backend to client.");
	for (size_t i = 0; i < n; i++) {
		prom_u64(b, "orch_service_bytes_total", (const char *[]){"service", tr[i].service, "direction", "in", NULL}, tr[i].bytes_in);
		prom_u64(b, "orch_service_bytes_total", (const char *[]){"service", tr[i].service, "direction", "out", NULL}, tr[i].bytes_out);
	}
	prom_family(b, "orch_service_backend_errors_total", "counter", "Backend connects that failed (each retried on another endpoint).");
	for (size_t i = 0; i < n; i++)
		prom_u64(b, "orch_service_backend_errors_total", (const char *[]){"service", tr[i].service, NULL}, tr[i].backend_errors);
	page_latency(tr, n, b);
	free(tr);
}

static void page_tasks(const struct node_stats *ns, struct buf *b)
{
	char ids[64];
	prom_family(b, "orch_task_cpu_seconds_total", "counter", "CPU time used by the task's container (cgroup cpuacct.usage).");
	for (size_t i = 0; i < ns->ntasks; i++) {
		snprintf(ids, sizeof ids, "%llu", (unsigned long long)ns->tasks[i].task_id);
		prom_double(b, "orch_task_cpu_seconds_total", (const char *[]){"service", ns->tasks[i].service, "task", ids, NULL},
			    (double)ns->tasks[i].cpu_ns / 1e9);
	}
	prom_family(b, "orch_task_memory_bytes", "gauge", "Memory used by the task's container (cgroup v1 memory.usage_in_bytes, v2 memory.current).");
	for (size_t i = 0; i < ns->ntasks; i++) {
		snprintf(ids, sizeof ids, "%llu", (unsigned long long)ns->tasks[i].task_id);
		prom_u64(b, "orch_task_memory_bytes", (const char *[]){"service", ns->tasks[i].service, "task", ids, NULL},
			 ns->tasks[i].mem);
	}
}

static void page_node(const struct node_stats_sampler *own, const struct metrics_raft *r, struct buf *b)
{
	prom_family(b, "orch_raft_role", "gauge", "This node's raft role (the series with value 1).");
	prom_u64(b, "orch_raft_role", (const char *[]){"role", r->role, NULL}, 1);
	prom_family(b, "orch_raft_state", "gauge", "This node's raft state (the series with value 1).");
	prom_u64(b, "orch_raft_state", (const char *[]){"state", r->state, NULL}, 1);
	prom_family(b, "orch_raft_term", "gauge", "Current raft term.");
	prom_u64(b, "orch_raft_term", NULL, r->term);
	prom_family(b, "orch_raft_commit_index", "gauge", "Index of the last committed raft entry known here.");
	prom_u64(b, "orch_raft_commit_index", NULL, r->commit_index);
	prom_family(b, "orch_raft_applied_index", "gauge", "Index of the last raft entry applied to this node's state.");
	prom_u64(b, "orch_raft_applied_index", NULL, r->applied_index);
	uint64_t ntasks = 0;
	TABLE_FOREACH(&own->store->tasks, const struct task, t)
		if (t->node_id == own->node_id && !task_terminal(t))
			ntasks++;
	prom_family(b, "orch_node_tasks", "gauge", "Tasks assigned to this node and not finished.");
	prom_u64(b, "orch_node_tasks", NULL, ntasks);
}

void metrics_page(struct node_stats_sampler *own, uint64_t now, const struct metrics_raft *raft, struct buf *out)
{
	node_stats_tick(own, now); /* fresh when the last sample is a second old */
	page_services(own, out);
	page_tasks(&own->latest, out);
	page_node(own, raft, out);
}

/* ---- op top (leader) ----------------------------------------------------------------------------- */

struct svc_sum {
	uint64_t conn, active, req, in, out, err;
	double rps;
	bool traffic, rate;
	struct lat_hist lat;
};

static void sum_service(const struct cstats *view, const char *name, uint64_t now, const struct store *s,
			struct svc_sum *sum)
{
	memset(sum, 0, sizeof *sum);
	TABLE_FOREACH(&s->nodes, const struct node, nd) {
		const struct node_stats *ns = cstats_node(view, nd->id, now);
		for (size_t i = 0; ns && i < ns->nsvc; i++) {
			const struct svc_stat *v = &ns->svc[i];
			if (strcmp(v->t.service, name))
				continue;
			sum->traffic = true;
			sum->conn += v->t.connections;
			sum->active += v->t.active;
			sum->req += v->t.requests;
			sum->in += v->t.bytes_in;
			sum->out += v->t.bytes_out;
			sum->err += v->t.backend_errors;
			lat_add(&sum->lat, &v->t.latency);
			if (v->has_rate) {
				sum->rate = true;
				sum->rps += v->rps;
			}
		}
	}
}

static void top_services(const struct cstats *view, const struct store *s, uint64_t now, struct mpw *w)
{
	mpw_key(w, "services");
	mpw_arr(w, (uint32_t)s->services.n);
	TABLE_FOREACH(&s->services, const struct service, v) {
		uint64_t running = 0, live = 0;
		TABLE_FOREACH(&s->tasks, const struct task, t) {
			if (t->service_id != v->id || t->desired != TD_RUNNING)
				continue;
			running += t->state == TS_RUNNING;
			live += !task_terminal(t);
		}
		/* a global service wants the tasks it has: one per eligible node */
		bool global = service_spec(v) && service_spec(v)->deploy.mode == DEPLOY_GLOBAL;
		struct svc_sum sum;
		sum_service(view, v->name, now, s, &sum);
		mpw_map_begin(w);
		mpw_kstr(w, "name", v->name);
		mpw_ku64(w, "replicas", global ? live : v->replicas);
		mpw_kbool(w, "global", global);
		mpw_ku64(w, "running", running);
		mpw_kbool(w, "traffic", sum.traffic);
		mpw_ku64(w, "connections", sum.conn);
		mpw_ku64(w, "active", sum.active);
		mpw_ku64(w, "requests", sum.req);
		mpw_key(w, "rps");
		msgpack_pack_double(&w->pk, sum.rps);
		mpw_ku64(w, "bytes_in", sum.in);
		mpw_ku64(w, "bytes_out", sum.out);
		mpw_ku64(w, "backend_errors", sum.err);
		mpw_kbool(w, "rate", sum.rate);
		lat_put(w, "latency", &sum.lat);
		mpw_map_end(w);
	}
}

static void top_tasks(const struct cstats *view, const struct store *s, uint64_t now, struct mpw *w)
{
	uint32_t n = 0;
	TABLE_FOREACH(&s->nodes, const struct node, nd) {
		const struct node_stats *ns = cstats_node(view, nd->id, now);
		n += ns ? (uint32_t)ns->ntasks : 0;
	}
	mpw_key(w, "tasks");
	mpw_arr(w, n);
	TABLE_FOREACH(&s->nodes, const struct node, nd) {
		const struct node_stats *ns = cstats_node(view, nd->id, now);
		for (size_t i = 0; ns && i < ns->ntasks; i++) {
			const struct task_stat *t = &ns->tasks[i];
			const struct task *tk = table_get_u64(&s->tasks, t->task_id);
			mpw_map_begin(w);
			mpw_ku64(w, "id", t->task_id);
			mpw_kstr(w, "service", t->service);
			mpw_ku64(w, "slot", tk ? tk->slot : 0);
			mpw_kstr(w, "node", nd->name);
			mpw_key(w, "cpu_pct");
			msgpack_pack_double(&w->pk, t->has_rate ? t->cpu_milli / 10.0 : 0);
			mpw_kbool(w, "cpu_known", t->has_rate);
			mpw_key(w, "cpu_seconds");
			msgpack_pack_double(&w->pk, (double)t->cpu_ns / 1e9);
			mpw_ku64(w, "memory", t->mem);
			mpw_map_end(w);
		}
	}
}

void metrics_op_top(struct node_stats_sampler *own, struct cstats *view, uint64_t now, struct conn *c, uint64_t id)
{
	node_stats_tick(own, now);
	cstats_put(view, own->node_id, &own->latest, now);
	struct mpw w;
	rpc_reply_begin(&w, id, 0);
	top_services(view, own->store, now, &w);
	top_tasks(view, own->store, now, &w);
	rpc_reply_send(c, &w);
}

/* ---- op events ------------------------------------------------------------------------------------ */

void metrics_op_events(const struct store *s, struct conn *c, uint64_t id, uint64_t since, uint64_t limit)
{
	uint64_t last = 0;
	const struct table *ev = &s->events;
	size_t first = ev->n;
	while (first > 0 && ((const struct event *)ev->items[first - 1])->id > since && ev->n - first < limit)
		first--;
	if (ev->n)
		last = ((const struct event *)ev->items[ev->n - 1])->id;
	struct mpw w;
	rpc_reply_begin(&w, id, 0);
	mpw_ku64(&w, "last", last);
	mpw_key(&w, "events");
	mpw_arr(&w, (uint32_t)(ev->n - first));
	for (size_t i = first; i < ev->n; i++) {
		const struct event *e = ev->items[i];
		const struct node *nd = e->node ? table_get_u64(&s->nodes, e->node) : NULL;
		char hid[17] = "";
		if (e->node)
			snprintf(hid, sizeof hid, "%016llx", (unsigned long long)e->node);
		mpw_map_begin(&w);
		mpw_ku64(&w, "id", e->id);
		mpw_ku64(&w, "at", e->at);
		mpw_kstr(&w, "kind", e->kind);
		mpw_kstr(&w, "service", e->service ? e->service : "");
		mpw_ku64(&w, "task", e->task);
		mpw_kstr(&w, "node_id", hid);
		mpw_kstr(&w, "node", nd && nd->name ? nd->name : "");
		mpw_kstr(&w, "message", e->message);
		mpw_map_end(&w);
	}
	rpc_reply_send(c, &w);
}
