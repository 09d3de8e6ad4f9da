/* Requests about named volumes (net/proto.h): list and inspect from the local replica;
 * remove, on the leader: refused while a task uses the volume, else the node that holds
 * it deletes its directory (volume.drop, served here by every node) and then the record
 * goes (volume.rm). A volume whose node left the cluster is forgotten at once; one whose
 * node is down only with force (its directory stays on that node). */
#include "node/daemon.h"
#include "agent/volumes.h"
#include "net/conn.h"
#include "spec/spec.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tasks that mount volume `name` (the first one's "service.slot" in who): those
 * that have not ended, but not the ones still waiting for it while its node is down or
 * gone (they could never start: removing the volume lets them start afresh). */
static size_t volume_users(const struct store *s, const struct volume *vol, char *who, size_t wlen)
{
	size_t n = 0;
	char vn[128];
	const char *name = vol->name;
	const struct node *home = table_get_u64(&s->nodes, vol->node_id);
	bool reachable = home && home->state == NS_READY;
	if (wlen)
		who[0] = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (task_terminal(t) || (!t->node_id && !reachable))
			continue;
		const struct service *v = table_get_u64(&s->services, t->service_id);
		const struct svc_spec *sp = v ? service_spec(v) : NULL;
		for (size_t i = 0; sp && i < sp->mounts.n; i++) {
			const struct mount_spec *m = &sp->mounts.v[i];
			if (m->type != MOUNT_VOLUME || !m->source || !spec_volume_name(m->source, t->slot, vn, sizeof vn) ||
			    strcmp(vn, name))
				continue;
			if (!n++ && wlen)
				snprintf(who, wlen, "%s.%llu (task %llu)", t->service, (unsigned long long)t->slot,
					 (unsigned long long)t->id);
			break;
		}
	}
	return n;
}

static void pack_volume(struct mpw *w, const struct store *s, const struct volume *v)
{
	const struct node *n = table_get_u64(&s->nodes, v->node_id);
	char hid[17], who[160];
	snprintf(hid, sizeof hid, "%016llx", (unsigned long long)v->node_id);
	size_t users = volume_users(s, v, who, sizeof who);
	mpw_map_begin(w);
	mpw_kstr(w, "name", v->name);
	mpw_kstr(w, "driver", "local");
	mpw_kstr(w, "node", n ? n->name : "");
	mpw_kstr(w, "node_id", hid);
	mpw_kstr(w, "node_state", n ? lifecycle_name(&lifecycle_node, (int)n->state) : "left");
	mpw_kstr(w, "service", v->service ? v->service : "");
	mpw_ku64(w, "created_at", v->created_at);
	mpw_ku64(w, "tasks", users);
	mpw_kstr(w, "used_by", who);
	mpw_key(w, "labels");
	labels_encode(&v->labels, w);
	mpw_map_end(w);
}

void rpc_volumes(struct daemon *d, struct conn *c, const struct req_volumes *a)
{
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_key(&w, "volumes");
	mpw_arr(&w, (uint32_t)d->store.volumes.n);
	TABLE_FOREACH(&d->store.volumes, const struct volume, v)
		pack_volume(&w, &d->store, v);
	rpc_reply_send(c, &w);
}

static void reply_no_volume(struct conn *c, uint64_t id, const char *name)
{
	char m[ERR_LEN];
	snprintf(m, sizeof m, "no volume %s (see orch volume ls)", name);
	rpc_reply_err(c, id, E_NOTFOUND, m);
}

void rpc_volume_get(struct daemon *d, struct conn *c, const struct req_volume_get *a)
{
	const struct volume *v = table_get_str(&d->store.volumes, a->name);
	if (!v) {
		reply_no_volume(c, a->id, a->name);
		return;
	}
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_key(&w, "volume");
	pack_volume(&w, &d->store, v);
	rpc_reply_send(c, &w);
}

/* ---- rm ---- */

struct vol_rm {
	struct daemon *d;
	struct pending *p; /* the CLI's request: p->conn is NULL once it has gone */
	char name[128], node[64];
	const char *note; /* added to the result */
	bool answered;
};

static void rm_free(struct vol_rm *r)
{
	pending_free(r->p);
	free(r);
}

static void rm_committed(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct vol_rm *r = data;
	(void)d;
	if (r->p->conn) {
		if (rc)
			rpc_reply_err(r->p->conn, r->p->req_id, rc, res->msg);
		else {
			char m[ERR_LEN];
			snprintf(m, sizeof m, "removed volume %s%s", r->name, r->note ? r->note : "");
			struct mpw w;
			rpc_reply_begin(&w, r->p->req_id, 0);
			mpw_kstr(&w, "result", m);
			rpc_reply_send(r->p->conn, &w);
		}
	}
	rm_free(r);
}

static void rm_commit(struct vol_rm *r)
{
	char err[ERR_LEN];
	struct mpw w;
	mpw_init(&w);
	struct cmd_volume_rm b = {.name = r->name, .at = clock_wall(r->d->clock)};
	cmd_body(&w, CMD_VOLUME_RM, &b);
	if (daemon_submit(r->d, CMD_VOLUME_RM, w.sb.data, w.sb.size, rm_committed, r, err)) {
		rpc_reply_err(r->p->conn, r->p->req_id, E_NOLEADER, err);
		rm_free(r);
	}
	mpw_free(&w);
}

static void drop_ready(struct conn *c)
{
	struct vol_rm *r = c->data;
	struct req_volume_drop q = {.name = r->name};
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, OP_VOLUME_DROP, 1, &q);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void drop_frame(struct conn *c, const msgpack_object *resp)
{
	struct vol_rm *r = c->data;
	int64_t rc = 0;
	char err[ERR_LEN] = "";
	mp_get_i64(resp, "rc", &rc);
	mp_get_strbuf(resp, "err", err, sizeof err);
	r->answered = true;
	c->data = NULL;
	conn_close(c, NULL);
	if (rc && rc != E_NOTFOUND) {
		char m[ERR_LEN + 160];
		snprintf(m, sizeof m, "volume rm %s: node %s: %s", r->name, r->node, err);
		rpc_reply_err(r->p->conn, r->p->req_id, (int)rc, m);
		rm_free(r);
		return;
	}
	rm_commit(r);
}

static void drop_close(struct conn *c, const char *why)
{
	struct vol_rm *r = c->data;
	if (!r || r->answered)
		return;
	char m[ERR_LEN];
	snprintf(m, sizeof m, "volume rm %s: node %s did not answer (%s); retry", r->name, r->node,
		 why ? why : "connection closed");
	rpc_reply_err(r->p->conn, r->p->req_id, E_IO, m);
	rm_free(r);
}

static const struct conn_ops drop_ops = {
	.on_ready = drop_ready,
	.on_frame = drop_frame,
	.on_close = drop_close,
};

void rpc_volume_rm(struct daemon *d, struct conn *c, const struct req_volume_rm *a)
{
	const struct volume *v = table_get_str(&d->store.volumes, a->name);
	char who[160], m[ERR_LEN + 200];
	if (!v) {
		reply_no_volume(c, a->id, a->name);
		return;
	}
	size_t users = volume_users(&d->store, v, who, sizeof who);
	if (users) {
		snprintf(m, sizeof m, "volume %s is in use by %zu task%s (%s%s); remove or change the service first", v->name,
			 users, users == 1 ? "" : "s", who, users > 1 ? ", ..." : "");
		rpc_reply_err(c, a->id, E_BUSY, m);
		return;
	}
	const struct node *n = table_get_u64(&d->store.nodes, v->node_id);
	struct vol_rm *r = xcalloc(1, sizeof *r);
	r->d = d;
	snprintf(r->name, sizeof r->name, "%s", v->name);
	snprintf(r->node, sizeof r->node, "%s", n ? n->name : "?");
	r->p = pending_new(d, c, a->id);
	if (!n) {
		r->note = " (its node left the cluster, and its data with it)";
		rm_commit(r);
		return;
	}
	if (n->state != NS_READY) {
		if (!a->force) {
			snprintf(m, sizeof m, "volume %s is on node %s, which is %s: its data cannot be removed now; "
				 "retry when the node is back, or --force to forget the volume (its directory stays on %s)",
				 v->name, n->name, lifecycle_name(&lifecycle_node, (int)n->state), n->name);
			rpc_reply_err(c, a->id, E_STATE, m);
			rm_free(r);
			return;
		}
		r->note = " (forgotten: its directory stays on its node, which is down)";
		rm_commit(r);
		return;
	}
	uint8_t me[AUTH_NODE_LEN];
	auth_node_put(d->ident.id, me);
	TRACE("volume", c->peer, "rm %s: asking node %s", r->name, n->name);
	conn_connect(d->loop, n->addr, AUTH_KIND_RPC, &d->ident.tls, me, sizeof me, &drop_ops, r);
}

/* ---- drop: on the node holding the volume ---- */

struct vol_drop {
	uv_work_t req;
	struct pending *p;
	char data_dir[512], name[128];
	int rc;
	char err[ERR_LEN];
};

static void drop_work(uv_work_t *req)
{
	struct vol_drop *j = req->data;
	j->rc = volumes_remove(j->data_dir, j->name, j->err);
}

static void drop_done(uv_work_t *req, int status)
{
	struct vol_drop *j = req->data;
	struct daemon *d = j->p->d;
	if (!j->rc && status)
		j->rc = errf(j->err, E_BUSY, "the node is stopping");
	if (j->rc)
		rpc_reply_err(j->p->conn, j->p->req_id, j->rc, j->err);
	else {
		log_info(d->ident.name, d->clock, "volume %s removed", j->name);
		rpc_reply_ok(j->p->conn, j->p->req_id);
	}
	pending_free(j->p);
	free(j);
	daemon_job_done(d);
}

void rpc_volume_drop(struct daemon *d, struct conn *c, const struct req_volume_drop *a)
{
	struct vol_drop *j = xcalloc(1, sizeof *j);
	snprintf(j->data_dir, sizeof j->data_dir, "%s", d->data_dir);
	snprintf(j->name, sizeof j->name, "%s", a->name);
	j->p = pending_new(d, c, a->id);
	j->req.data = j;
	d->jobs++;
	uv_queue_work(d->loop, &j->req, drop_work, drop_done);
}
