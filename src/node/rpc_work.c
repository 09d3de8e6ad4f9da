/* Requests about workloads: services (deploy, scale, rm, list, inspect), tasks (ps) and
 * images. Reads come from the local replica; writes are commands submitted through raft
 * (daemon_submit forwards them to the leader). */
#include "node/daemon.h"
#include "node/ingest.h"
#include "node/logfan.h"
#include "agent/agent.h"
#include "net/conn.h"
#include "orchestrator/autoscale.h"
#include "spec/spec.h"
#include "net/ipam.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void submitted(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct pending *p = data;
	(void)d;
	if (p->conn) {
		struct mpw w;
		mpw_init(&w);
		/* "unchanged" is a success for a declarative write */
		rpc_reply_begin(&w, p->req_id, rc == E_EXISTS ? 0 : rc, 2);
		mpw_kstr(&w, rc && rc != E_EXISTS ? "err" : "result", res->msg);
		mpw_ku64(&w, "obj", res->id);
		conn_send_mpw(p->conn, &w);
		mpw_free(&w);
	}
	pending_free(p);
}

static void submit(struct daemon *d, struct conn *c, uint64_t id, const char *type, struct mpw *body)
{
	char err[ERR_LEN];
	struct pending *p = pending_new(d, c, id);
	if (daemon_submit(d, type, body->sb.data, body->sb.size, submitted, p, err)) {
		rpc_reply_err(c, id, E_NOLEADER, err);
		pending_free(p);
	}
}

static void reply_no_service(struct conn *c, uint64_t id, const char *name)
{
	char m[ERR_LEN];
	snprintf(m, sizeof m, "no service %s (see orch services)", name);
	rpc_reply_err(c, id, E_NOTFOUND, m);
}

/* Commits a command whose body is just {name, at?} taken from the request. */
static void submit_by_name(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req, const char *type,
			   bool with_at, const char *usage)
{
	char name[300];
	if (mp_get_strbuf(req, "name", name, sizeof name)) {
		rpc_reply_err(c, id, E_INVAL, usage);
		return;
	}
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, with_at ? 2 : 1);
	mpw_kstr(&w, "name", name);
	if (with_at)
		mpw_ku64(&w, "at", clock_wall(d->clock));
	submit(d, c, id, type, &w);
	mpw_free(&w);
}

static void op_service_put(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	char err[ERR_LEN], project[SPEC_NAME_MAX + 1] = "";
	const msgpack_object *spec = mp_get(req, "spec");
	struct svc_spec sp;
	if (!spec) {
		rpc_reply_err(c, id, E_INVAL, "service.put: spec required");
		return;
	}
	if (svc_spec_decode(spec, &sp, err)) {
		svc_spec_free(&sp);
		rpc_reply_err(c, id, E_INVAL, err);
		return;
	}
	if (!sp.name || !spec_name_valid(sp.name)) {
		svc_spec_free(&sp);
		rpc_reply_err(c, id, E_INVAL, "service.put: the spec has no valid name");
		return;
	}
	mp_get_strbuf(req, "project", project, sizeof project);
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 4);
	mpw_kstr(&w, "name", sp.name);
	mpw_kstr(&w, "project", project);
	mpw_ku64(&w, "at", clock_wall(d->clock));
	mpw_str(&w, "spec");
	svc_spec_encode(&sp, &w);
	svc_spec_free(&sp);
	submit(d, c, id, "service.put", &w);
	mpw_free(&w);
}

static void op_service_scale(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	char name[SPEC_NAME_MAX + 1];
	uint64_t replicas;
	if (mp_get_strbuf(req, "name", name, sizeof name) || mp_get_u64(req, "replicas", &replicas)) {
		rpc_reply_err(c, id, E_INVAL, "scale: name and replicas (a number >= 0) required");
		return;
	}
	const struct service *v = store_service_by_name(&d->store, name);
	char m[ERR_LEN];
	if (!v) {
		snprintf(m, sizeof m, "no service %s (see orch services)", name);
		rpc_reply_err(c, id, E_NOTFOUND, m);
		return;
	}
	if (autoscale_check_manual(v, replicas, m)) {
		rpc_reply_err(c, id, E_INVAL, m);
		return;
	}
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 4);
	mpw_kstr(&w, "name", name);
	mpw_ku64(&w, "replicas", replicas);
	mpw_ku64(&w, "at", clock_wall(d->clock));
	mpw_str(&w, "events"); /* recorded only if the count changes */
	mpw_arr(&w, 1);
	autoscale_event(&w, name, v->replicas, replicas, "orch scale");
	submit(d, c, id, "service.scale", &w);
	mpw_free(&w);
}

/* rollout pause | resume | undo */
static void op_service_update(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	char name[SPEC_NAME_MAX + 1], action[16];
	const struct service *v;
	if (mp_get_strbuf(req, "name", name, sizeof name) || mp_get_strbuf(req, "action", action, sizeof action)) {
		rpc_reply_err(c, id, E_INVAL, "rollout: service name and action required");
		return;
	}
	if (!(v = store_service_by_name(&d->store, name))) {
		reply_no_service(c, id, name);
		return;
	}
	struct mpw w;
	mpw_init(&w);
	if (!strcmp(action, "pause")) {
		mpw_map(&w, 4);
		mpw_kstr(&w, "update_state", "paused");
		mpw_kstr(&w, "update_msg", "paused by an operator");
	} else if (!strcmp(action, "resume")) {
		const char *st = v->update_state ? v->update_state : "";
		mpw_map(&w, 4);
		mpw_kstr(&w, "update_state", !strcmp(st, "paused") ? "updating" : st[0] ? st : "updating");
		mpw_kstr(&w, "update_msg", "");
	} else if (!strcmp(action, "undo")) {
		if (!v->prev_spec.len) {
			mpw_free(&w);
			rpc_reply_err(c, id, E_INVAL, "rollout undo: the service has no previous version");
			return;
		}
		mpw_map(&w, 5);
		mpw_kstr(&w, "update_state", "rolling_back");
		mpw_kstr(&w, "update_msg", "undone by an operator");
		mpw_kbool(&w, "rollback", true);
	} else {
		mpw_free(&w);
		rpc_reply_err(c, id, E_INVAL, "rollout: action must be pause, resume or undo");
		return;
	}
	mpw_kstr(&w, "name", name);
	mpw_ku64(&w, "at", clock_wall(d->clock));
	submit(d, c, id, "service.update", &w);
	mpw_free(&w);
}

static void op_service_rm(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	submit_by_name(d, c, id, req, "service.rm", true, "rm: service name required");
}

/* ---- reads ----------------------------------------------------------------------------------- */

static void pack_spec(struct mpw *w, const struct rawmp *r)
{
	if (r->len)
		mpw_raw(w, r->data, r->len);
	else
		mpw_nil(w);
}

static void count_tasks(const struct store *s, uint64_t sid, uint64_t *running, uint64_t *live)
{
	*running = *live = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (t->service_id != sid || strcmp(t->desired, "running"))
			continue;
		(*live)++;
		if (!strcmp(t->state, "running"))
			(*running)++;
	}
}

/* The same for every service, in one pass over the tasks (by position in the services
 * table): orch services with 100,000 tasks is not a pass per service. */
static void count_all_tasks(const struct store *s, uint64_t *running, uint64_t *live)
{
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (strcmp(t->desired, "running"))
			continue;
		size_t lo = 0, hi = s->services.n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (((const struct service *)s->services.items[mid])->id < t->service_id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == s->services.n || ((const struct service *)s->services.items[lo])->id != t->service_id)
			continue;
		live[lo]++;
		if (!strcmp(t->state, "running"))
			running[lo]++;
	}
}

static void op_services(struct daemon *d, struct conn *c, uint64_t id)
{
	struct mpw w;
	mpw_init(&w);
	rpc_reply_begin(&w, id, 0, 1);
	mpw_str(&w, "services");
	mpw_arr(&w, (uint32_t)d->store.services.n);
	uint64_t *run = xcalloc(d->store.services.n + 1, sizeof *run), *liv = xcalloc(d->store.services.n + 1, sizeof *liv);
	count_all_tasks(&d->store, run, liv);
	size_t k = 0;
	TABLE_FOREACH(&d->store.services, const struct service, v) {
		uint64_t running = run[k], live = liv[k];
		k++;
		mpw_map(&w, 12);
		mpw_str(&w, "port_errors");
		mpw_map(&w, (uint32_t)v->port_errors.n);
		for (size_t i = 0; i < v->port_errors.n; i++)
			mpw_kstr(&w, v->port_errors.k[i], v->port_errors.v[i]);
		mpw_kstr(&w, "update_state", v->update_state ? v->update_state : "");
		mpw_kstr(&w, "update_msg", v->update_msg ? v->update_msg : "");
		mpw_kstr(&w, "name", v->name);
		mpw_kstr(&w, "project", v->project ? v->project : "");
		mpw_ku64(&w, "generation", v->generation);
		mpw_ku64(&w, "replicas", v->replicas);
		mpw_ku64(&w, "running", running);
		mpw_ku64(&w, "tasks", live);
		mpw_ku64(&w, "created_at", v->created_at);
		mpw_ku64(&w, "updated_at", v->updated_at);
		mpw_str(&w, "spec");
		pack_spec(&w, &v->spec);
	}
	free(run);
	free(liv);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void pack_task(struct mpw *w, const struct store *s, const struct task *t, uint64_t now)
{
	const struct node *n = t->node_id ? table_get_u64(&s->nodes, t->node_id) : NULL;
	char hid[17];
	snprintf(hid, sizeof hid, "%016llx", (unsigned long long)t->node_id);
	mpw_map(w, 24);
	mpw_ku64(w, "id", t->id);
	mpw_kstr(w, "service", t->service);
	mpw_ku64(w, "slot", t->slot);
	mpw_ku64(w, "generation", t->generation);
	mpw_kstr(w, "node", n ? n->name : "");
	mpw_kstr(w, "node_id", t->node_id ? hid : "");
	mpw_kstr(w, "node_addr", n ? n->addr : "");
	mpw_kstr(w, "desired", t->desired);
	mpw_kstr(w, "state", t->state);
	mpw_kstr(w, "err", t->err ? t->err : "");
	mpw_ki64(w, "exit_code", t->exit_code);
	mpw_ku64(w, "restarts", t->restarts);
	mpw_ku64(w, "created_at", t->created_at);
	mpw_ku64(w, "state_at", t->state_at);
	mpw_ku64(w, "start_after", t->start_after);
	mpw_ku64(w, "failures", t->failures);
	mpw_ku64(w, "started_at", t->started_at);
	mpw_kstr(w, "endpoint", t->endpoint ? t->endpoint : "");
	mpw_kstr(w, "ip", t->ip ? t->ip : "");
	mpw_kstr(w, "health", t->health ? t->health : "");
	mpw_kbool(w, "oom", t->oom);
	mpw_ku64(w, "now", now);
	mpw_kstr(w, "ready", t->ready ? t->ready : "");
	mpw_kstr(w, "check_output", t->check_output ? t->check_output : "");
}

static bool task_matches(const struct task *t, const char *svc, bool all)
{
	if (svc[0] && strcmp(t->service, svc))
		return false;
	return all || !strcmp(t->desired, "running") || !task_terminal(t);
}

static void op_tasks(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	char svc[SPEC_NAME_MAX + 1] = "";
	bool all = false;
	mp_get_strbuf(req, "service", svc, sizeof svc);
	mp_get_bool(req, "all", &all);
	if (svc[0] && !store_service_by_name(&d->store, svc)) {
		bool any = false;
		TABLE_FOREACH(&d->store.tasks, const struct task, t)
			if (!strcmp(t->service, svc))
				any = true;
		if (!any) {
			reply_no_service(c, id, svc);
			return;
		}
	}
	uint32_t n = 0;
	TABLE_FOREACH(&d->store.tasks, const struct task, t)
		if (task_matches(t, svc, all))
			n++;
	struct mpw w;
	mpw_init(&w);
	rpc_reply_begin(&w, id, 0, 1);
	mpw_str(&w, "tasks");
	mpw_arr(&w, n);
	TABLE_FOREACH(&d->store.tasks, const struct task, t)
		if (task_matches(t, svc, all))
			pack_task(&w, &d->store, t, clock_wall(d->clock));
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void op_service_get(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	char name[SPEC_NAME_MAX + 1];
	const struct service *v = NULL;
	if (mp_get_strbuf(req, "name", name, sizeof name) || !(v = store_service_by_name(&d->store, name))) {
		reply_no_service(c, id, name);
		return;
	}
	uint64_t running, live;
	count_tasks(&d->store, v->id, &running, &live);
	uint32_t n = 0;
	TABLE_FOREACH(&d->store.tasks, const struct task, t)
		if (t->service_id == v->id && task_matches(t, "", false))
			n++;
	struct mpw w;
	mpw_init(&w);
	rpc_reply_begin(&w, id, 0, 1);
	mpw_str(&w, "service");
	mpw_map(&w, 15);
	char vip[16];
	ipam_service_vip(ipam_cluster_byte(&d->ident.tok), v->id, vip);
	mpw_kstr(&w, "virtual_ip", vip);
	mpw_str(&w, "port_errors");
	mpw_map(&w, (uint32_t)v->port_errors.n);
	for (size_t i = 0; i < v->port_errors.n; i++)
		mpw_kstr(&w, v->port_errors.k[i], v->port_errors.v[i]);
	mpw_kstr(&w, "update_state", v->update_state ? v->update_state : "");
	mpw_kstr(&w, "update_msg", v->update_msg ? v->update_msg : "");
	mpw_ku64(&w, "id", v->id);
	mpw_kstr(&w, "name", v->name);
	mpw_kstr(&w, "project", v->project ? v->project : "");
	mpw_ku64(&w, "generation", v->generation);
	mpw_ku64(&w, "replicas", v->replicas);
	mpw_ku64(&w, "running", running);
	mpw_ku64(&w, "created_at", v->created_at);
	mpw_ku64(&w, "updated_at", v->updated_at);
	mpw_str(&w, "spec");
	pack_spec(&w, &v->spec);
	mpw_str(&w, "previous_spec");
	pack_spec(&w, &v->prev_spec);
	mpw_str(&w, "tasks");
	mpw_arr(&w, n);
	TABLE_FOREACH(&d->store.tasks, const struct task, t)
		if (t->service_id == v->id && task_matches(t, "", false))
			pack_task(&w, &d->store, t, clock_wall(d->clock));
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

/* ---- images ---------------------------------------------------------------------------------- */

static void op_images(struct daemon *d, struct conn *c, uint64_t id)
{
	struct mpw w;
	mpw_init(&w);
	rpc_reply_begin(&w, id, 0, 1);
	mpw_str(&w, "images");
	mpw_arr(&w, (uint32_t)d->store.images.n);
	TABLE_FOREACH(&d->store.images, const struct image, im) {
		const struct node *n = table_get_u64(&d->store.nodes, im->node_id);
		mpw_map(&w, 5);
		mpw_kstr(&w, "name", im->name);
		mpw_kstr(&w, "digest", im->digest);
		mpw_ku64(&w, "size", im->size);
		mpw_ku64(&w, "loaded_at", im->loaded_at);
		mpw_kstr(&w, "node", n ? n->name : "");
	}
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void op_image_rm(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	submit_by_name(d, c, id, req, "image.rm", false, "image rm: name required");
}

bool rpc_work_dispatch(struct daemon *d, struct conn *c, const msgpack_object *op, uint64_t id,
		       const msgpack_object *req, bool local)
{
	if (mp_str_eq(op, "service.put"))
		op_service_put(d, c, id, req);
	else if (mp_str_eq(op, "service.scale"))
		op_service_scale(d, c, id, req);
	else if (mp_str_eq(op, "service.update"))
		op_service_update(d, c, id, req);
	else if (mp_str_eq(op, "service.rm"))
		op_service_rm(d, c, id, req);
	else if (mp_str_eq(op, "services"))
		op_services(d, c, id);
	else if (mp_str_eq(op, "service.get"))
		op_service_get(d, c, id, req);
	else if (mp_str_eq(op, "tasks"))
		op_tasks(d, c, id, req);
	else if (mp_str_eq(op, "image.load") && local)
		ingest_start(d, c, id, req);
	else if (mp_str_eq(op, "logs.cluster") && local)
		logfan_start(d, c, id, req);
	else if (mp_str_eq(op, "images"))
		op_images(d, c, id);
	else if (mp_str_eq(op, "image.rm"))
		op_image_rm(d, c, id, req);
	else
		return agent_rpc(d->agent, c, op, id, req, local);
	return true;
}
