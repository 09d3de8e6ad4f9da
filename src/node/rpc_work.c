/* Requests about workloads (net/proto.h): services (deploy, scale, rm, list, inspect),
 * tasks (ps), images, and the ops the agent serves (a task's log, an image blob). Reads
 * come from the local replica; writes are commands submitted through raft (daemon_submit
 * forwards them to the leader). */
#include "node/daemon.h"
#include "node/ingest.h"
#include "image/image_load.h"
#include "node/logfan.h"
#include "node/execfan.h"
#include "node/resolve.h"
#include "agent/agent.h"
#include "net/conn.h"
#include "orchestrator/autoscale.h"
#include "orchestrator/volplace.h"
#include "secret/envseal.h"
#include "spec/spec.h"
#include "net/ipam.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rpc_submitted(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct pending *p = data;
	(void)d;
	if (p->conn) {
		struct mpw w;
		/* "unchanged" is a success for a declarative write */
		rpc_reply_begin(&w, p->req_id, rc == E_EXISTS ? 0 : rc);
		mpw_kstr(&w, rc && rc != E_EXISTS ? "err" : "result", res->msg);
		mpw_ku64(&w, "obj", res->id);
		rpc_reply_send(p->conn, &w);
	}
	pending_free(p);
}


static void reply_no_service(struct conn *c, uint64_t id, const char *name)
{
	char m[ERR_LEN];
	snprintf(m, sizeof m, "no service %s (see orch services)", name);
	rpc_reply_err(c, id, E_NOTFOUND, m);
}

void rpc_service_put(struct daemon *d, struct conn *c, const struct req_service_put *a)
{
	char err[ERR_LEN];
	struct svc_spec sp;
	if (svc_spec_decode(a->spec.obj, &sp, err)) {
		svc_spec_free(&sp);
		rpc_reply_err(c, a->id, E_INVAL, err);
		return;
	}
	if (!sp.name || !spec_name_valid(sp.name)) {
		svc_spec_free(&sp);
		rpc_reply_err(c, a->id, E_INVAL, "service.put: the spec has no valid name");
		return;
	}
	const char *nowhere = volplace_bind_nowhere(&d->store, &sp);
	if (nowhere) { /* no task of it could ever start */
		snprintf(err, sizeof err, "service %s: bind mount %s: no node of the cluster allows it; start nodes "
			 "with --allow-bind PREFIX (orch(8))", sp.name, nowhere);
		svc_spec_free(&sp);
		rpc_reply_err(c, a->id, E_INVAL, err);
		return;
	}
	if (resolve_needed(&d->store, &sp)) {
		resolve_start(d, c, a->id, &sp, a->project);
		svc_spec_free(&sp);
		return;
	}
	rpc_service_submit(d, c, a->id, &sp, a->project);
	svc_spec_free(&sp);
}

void rpc_service_submit(struct daemon *d, struct conn *c, uint64_t id, struct svc_spec *sp, const char *project)
{
	char err[ERR_LEN];
	int rc = envseal_close_node(d->data_dir, sp, err);
	if (rc == E_NOTFOUND) /* a cluster from before the data key: nothing to seal with */
		log_warn(d->ident.name, d->clock, "deploy %s: environment stored in clear: %s", sp->name, err);
	else if (rc) {
		rpc_reply_err(c, id, rc, err);
		return;
	}
	struct mpw spec;
	mpw_init(&spec);
	svc_spec_encode(sp, &spec);
	struct cmd_service_put b = {.name = sp->name, .project = project ? project : "",
				    .spec = {.raw = spec.sb.data, .len = spec.sb.size}, .at = clock_wall(d->clock)};
	rpc_submit(d, c, id, CMD_SERVICE_PUT, &b, rpc_submitted);
	mpw_free(&spec);
}

void rpc_service_scale(struct daemon *d, struct conn *c, const struct req_service_scale *a)
{
	const struct service *v = store_service_by_name(&d->store, a->name);
	char m[ERR_LEN];
	if (!v) {
		reply_no_service(c, a->id, a->name);
		return;
	}
	if (autoscale_check_manual(v, a->replicas, m)) {
		rpc_reply_err(c, a->id, E_INVAL, m);
		return;
	}
	struct mpw ev; /* recorded only if the count changes */
	mpw_init(&ev);
	mpw_arr(&ev, 1);
	autoscale_event(&ev, a->name, v->replicas, a->replicas, "orch scale");
	struct cmd_service_scale b = {.name = a->name, .replicas = a->replicas, .at = clock_wall(d->clock),
				      .events = {.raw = ev.sb.data, .len = ev.sb.size}};
	rpc_submit(d, c, a->id, CMD_SERVICE_SCALE, &b, rpc_submitted);
	mpw_free(&ev);
}

/* rollout pause | resume | undo */
void rpc_service_update(struct daemon *d, struct conn *c, const struct req_service_update *a)
{
	const struct service *v = store_service_by_name(&d->store, a->name);
	if (!v) {
		reply_no_service(c, a->id, a->name);
		return;
	}
	struct cmd_service_update b = {.name = a->name, .at = clock_wall(d->clock)};
	if (!strcmp(a->action, "pause")) {
		b.update_state = "paused";
		b.update_msg = "paused by an operator";
	} else if (!strcmp(a->action, "resume")) {
		const char *st = v->update_state ? v->update_state : "";
		b.update_state = !strcmp(st, "paused") ? "updating" : st[0] ? st : "updating";
		b.update_msg = "";
	} else if (!strcmp(a->action, "undo")) {
		if (!v->prev_spec.len) {
			rpc_reply_err(c, a->id, E_INVAL, "rollout undo: the service has no previous version");
			return;
		}
		b.update_state = "rolling_back";
		b.update_msg = "undone by an operator";
		b.rollback = true;
	} else {
		rpc_reply_err(c, a->id, E_INVAL, "rollout: action must be pause, resume or undo");
		return;
	}
	rpc_submit(d, c, a->id, CMD_SERVICE_UPDATE, &b, rpc_submitted);
}

void rpc_service_rm(struct daemon *d, struct conn *c, const struct req_service_rm *a)
{
	struct cmd_service_rm b = {.name = a->name, .at = clock_wall(d->clock)};
	rpc_submit(d, c, a->id, CMD_SERVICE_RM, &b, rpc_submitted);
}

/* ---- reads ----------------------------------------------------------------------------------- */

/* A spec as the caller wrote it: its environment opened with this node's data key (a node
 * without the key shows it sealed). */
static void pack_spec(const struct daemon *d, struct mpw *w, const struct rawmp *r)
{
	const struct svc_spec *dec = r->len ? r->dec : NULL;
	if (dec && dec->env_sealed.len) {
		char err[ERR_LEN];
		struct svc_spec sp;
		svc_spec_copy(&sp, dec);
		int rc = envseal_open_node(d->data_dir, &sp, err);
		if (!rc)
			svc_spec_encode(&sp, w);
		envseal_spec_free(&sp);
		if (!rc)
			return;
	}
	if (r->len)
		mpw_raw(w, r->data, r->len);
	else
		mpw_nil(w);
}

static void count_tasks(const struct store *s, uint64_t sid, uint64_t *running, uint64_t *live)
{
	*running = *live = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (t->service_id != sid || t->desired != TD_RUNNING)
			continue;
		(*live)++;
		if (t->state == TS_RUNNING)
			(*running)++;
	}
}

/* The same for every service, in one pass over the tasks (by position in the services
 * table): orch services with 100,000 tasks is not a pass per service. */
static void count_all_tasks(const struct store *s, uint64_t *running, uint64_t *live)
{
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (t->desired != TD_RUNNING)
			continue;
		long i = table_index_u64(&s->services, t->service_id);
		if (i < 0)
			continue;
		live[i]++;
		if (t->state == TS_RUNNING)
			running[i]++;
	}
}

void rpc_services(struct daemon *d, struct conn *c, const struct req_services *a)
{
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_key(&w, "services");
	mpw_arr(&w, (uint32_t)d->store.services.n);
	uint64_t *run = xcalloc(d->store.services.n + 1, sizeof *run), *liv = xcalloc(d->store.services.n + 1, sizeof *liv);
	count_all_tasks(&d->store, run, liv);
	size_t k = 0;
	TABLE_FOREACH(&d->store.services, const struct service, v) {
		uint64_t running = run[k], live = liv[k];
		k++;
		mpw_map_begin(&w);
		mpw_key(&w, "port_errors");
		labels_encode(&v->port_errors, &w);
		mpw_kstr(&w, "update_state", v->update_state ? v->update_state : "");
		mpw_kstr(&w, "update_msg", v->update_msg ? v->update_msg : "");
		mpw_kstr(&w, "name", v->name);
		mpw_kstr(&w, "project", v->project ? v->project : "");
		mpw_ku64(&w, "generation", v->generation);
		mpw_ku64(&w, "replicas", v->replicas);
		/* the tasks wanted: the replicas, or for a global service one per eligible node
		 * (its live tasks, which the leader keeps at that) */
		const struct svc_spec *sp = service_spec(v);
		mpw_ku64(&w, "desired", sp && sp->deploy.mode == DEPLOY_GLOBAL ? live : v->replicas);
		mpw_ku64(&w, "running", running);
		mpw_ku64(&w, "tasks", live);
		mpw_ku64(&w, "created_at", v->created_at);
		mpw_ku64(&w, "updated_at", v->updated_at);
		mpw_key(&w, "spec");
		pack_spec(d, &w, &v->spec);
		mpw_map_end(&w);
	}
	free(run);
	free(liv);
	rpc_reply_send(c, &w);
}

static void pack_task(struct mpw *w, const struct store *s, const struct task *t, uint64_t now)
{
	const struct node *n = t->node_id ? table_get_u64(&s->nodes, t->node_id) : NULL;
	char hid[17];
	snprintf(hid, sizeof hid, "%016llx", (unsigned long long)t->node_id);
	mpw_map_begin(w);
	mpw_ku64(w, "id", t->id);
	mpw_kstr(w, "service", t->service);
	mpw_ku64(w, "slot", t->slot);
	mpw_ku64(w, "generation", t->generation);
	mpw_kstr(w, "node", n ? n->name : "");
	mpw_kstr(w, "node_id", t->node_id ? hid : "");
	mpw_kstr(w, "node_addr", n ? n->addr : "");
	mpw_kstr(w, "desired", lifecycle_name(&lifecycle_desired, (int)t->desired));
	mpw_kstr(w, "state", task_state_name(t->state));
	mpw_kstr(w, "err", t->err ? t->err : "");
	mpw_ki64(w, "exit_code", t->exit_code);
	mpw_ku64(w, "restarts", t->restarts);
	mpw_ku64(w, "created_at", t->created_at);
	mpw_ku64(w, "state_at", t->state_at);
	mpw_ku64(w, "start_after", t->start_after);
	mpw_ku64(w, "failures", t->failures);
	mpw_ku64(w, "started_at", t->started_at);
	/* the image of the task's generation, as the leader pinned it (node/resolve.h) */
	const struct service *v = table_get_u64(&s->services, t->service_id);
	const struct svc_spec *sp = !v ? NULL : t->generation == v->generation ? service_spec(v) : service_prev_spec(v);
	mpw_kstr(w, "image", sp && sp->image ? sp->image : "");
	const struct svc_spec *cur = v ? service_spec(v) : NULL;
	mpw_kbool(w, "global", cur && cur->deploy.mode == DEPLOY_GLOBAL); /* its slot is its node's id */
	char ep[512];
	endpoints_format(&t->endpoint, ep, sizeof ep);
	mpw_kstr(w, "endpoint", ep); /* the text form, for people and scripts */
	mpw_key(w, "endpoints");
	endpoints_encode_display(&t->endpoint, w);
	mpw_kstr(w, "ip", t->ip ? t->ip : "");
	mpw_kstr(w, "health", t->health ? t->health : "");
	mpw_kbool(w, "oom", t->oom);
	mpw_ku64(w, "now", now);
	mpw_kstr(w, "ready", t->ready ? t->ready : "");
	mpw_kstr(w, "check_output", t->check_output ? t->check_output : "");
	mpw_map_end(w);
}

static bool task_matches(const struct task *t, const char *svc, bool all)
{
	if (svc[0] && strcmp(t->service, svc))
		return false;
	return all || t->desired == TD_RUNNING || !task_terminal(t);
}

void rpc_tasks(struct daemon *d, struct conn *c, const struct req_tasks *a)
{
	const char *svc = a->service ? a->service : "";
	bool all = a->all;
	uint64_t id = a->id;
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
	rpc_reply_begin(&w, id, 0);
	mpw_key(&w, "tasks");
	mpw_arr(&w, n);
	TABLE_FOREACH(&d->store.tasks, const struct task, t)
		if (task_matches(t, svc, all))
			pack_task(&w, &d->store, t, clock_wall(d->clock));
	rpc_reply_send(c, &w);
}

void rpc_service_get(struct daemon *d, struct conn *c, const struct req_service_get *a)
{
	const struct service *v = store_service_by_name(&d->store, a->name);
	if (!v) {
		reply_no_service(c, a->id, a->name);
		return;
	}
	uint64_t running, live;
	count_tasks(&d->store, v->id, &running, &live);
	uint32_t n = 0;
	TABLE_FOREACH(&d->store.tasks, const struct task, t)
		if (t->service_id == v->id && task_matches(t, "", false))
			n++;
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_key(&w, "service");
	mpw_map_begin(&w);
	char vip[16];
	ipam_service_vip(ipam_cluster_byte(d->ident.cluster_id), v->id, vip);
	mpw_kstr(&w, "virtual_ip", vip);
	mpw_key(&w, "port_errors");
	labels_encode(&v->port_errors, &w);
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
	mpw_key(&w, "spec");
	pack_spec(d, &w, &v->spec);
	mpw_key(&w, "previous_spec");
	pack_spec(d, &w, &v->prev_spec);
	mpw_key(&w, "tasks");
	mpw_arr(&w, n);
	TABLE_FOREACH(&d->store.tasks, const struct task, t)
		if (t->service_id == v->id && task_matches(t, "", false))
			pack_task(&w, &d->store, t, clock_wall(d->clock));
	mpw_map_end(&w);
	rpc_reply_send(c, &w);
}

/* ---- images ---------------------------------------------------------------------------------- */

void rpc_images(struct daemon *d, struct conn *c, const struct req_images *a)
{
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_key(&w, "images");
	mpw_arr(&w, (uint32_t)d->store.images.n);
	TABLE_FOREACH(&d->store.images, const struct image, im) {
		const struct node *n = table_get_u64(&d->store.nodes, im->node_id);
		char shown[IMAGE_NAME_MAX];
		image_name_show(im->name, shown, sizeof shown);
		mpw_map_begin(&w);
		mpw_kstr(&w, "name", shown); /* as Docker shows it; ref: the key it is recorded under */
		mpw_kstr(&w, "ref", im->name);
		mpw_kstr(&w, "digest", im->digest);
		mpw_ku64(&w, "size", im->size);
		mpw_ku64(&w, "loaded_at", im->loaded_at);
		mpw_kstr(&w, "node", n ? n->name : "");
		mpw_map_end(&w);
	}
	rpc_reply_send(c, &w);
}

void rpc_image_rm(struct daemon *d, struct conn *c, const struct req_image_rm *a)
{
	struct cmd_image_rm b = {.name = a->name};
	rpc_submit(d, c, a->id, CMD_IMAGE_RM, &b, rpc_submitted);
}

/* ---- served by the agent --------------------------------------------------------------------- */

void rpc_logs(struct daemon *d, struct conn *c, const struct req_logs *a)
{
	if (d->agent)
		agent_logs(d->agent, c, a);
	else
		rpc_reply_err(c, a->id, E_UNSUPP, "logs: this node runs no agent");
}

void rpc_exec_task(struct daemon *d, struct conn *c, const struct req_exec_task *a)
{
	if (d->agent)
		agent_exec(d->agent, c, a);
	else
		rpc_reply_err(c, a->id, E_UNSUPP, "exec: this node runs no agent");
}

void rpc_blob_get(struct daemon *d, struct conn *c, const struct req_blob_get *a)
{
	if (d->agent)
		agent_blob_get(d->agent, c, a);
	else
		rpc_reply_err(c, a->id, E_UNSUPP, "blob.get: this node runs no agent");
}
