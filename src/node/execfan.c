#include "node/execfan.h"
#include "agent/agent.h"
#include "agent/exec.h"
#include "net/access.h"
#include "net/conn.h"
#include "node/daemon.h"
#include "node/fanout.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REMOTE_ID 1 /* the exec.task request's id on its own connection */

/* The relay's own part (node/fanout.h holds the one source: the task's node). */
struct execfan {
	struct pending *p; /* the CLI's request; p->conn is NULL once the CLI has gone */
	bool ready;
	struct mpw req;   /* the exec.task request (sent once the conn is ready) */
	struct buf early; /* exec.input frames that came before (packed, with lengths) */
	uint64_t task;
};

/* One task that could be the target. */
struct cand {
	uint64_t id, slot, node_id;
	char service[PROTO_NAME_MAX + 1], state[16], addr[64];
};

/* The target among the tasks: 0 and *pick, or an error that says what is wrong. */
static int pick(const struct cand *c, size_t n, const char *target, size_t *out, char *err)
{
	char *end;
	uint64_t id = strtoull(target, &end, 10);
	if (*target >= '0' && *target <= '9' && !*end) {
		for (size_t i = 0; i < n; i++)
			if (c[i].id == id) {
				if (strcmp(c[i].state, "running"))
					return errf(err, E_STATE, "task %s is %s, not running", target, c[i].state);
				*out = i;
				return 0;
			}
		return errf(err, E_NOTFOUND, "no task %s (see orch ps)", target);
	}
	/* a service of that name, else SERVICE.SLOT */
	char svc[PROTO_NAME_MAX + 1];
	bool by_slot = false, any = false;
	uint64_t slot = 0;
	snprintf(svc, sizeof svc, "%s", target);
	for (size_t i = 0; i < n; i++)
		any = any || !strcmp(c[i].service, target);
	const char *dot = strrchr(target, '.');
	if (!any && dot && dot[1] >= '0' && dot[1] <= '9') {
		slot = strtoull(dot + 1, &end, 10);
		if (!*end && (size_t)(dot - target) < sizeof svc) {
			snprintf(svc, sizeof svc, "%.*s", (int)(dot - target), target);
			by_slot = true;
			for (size_t i = 0; i < n; i++)
				any = any || !strcmp(c[i].service, svc);
		}
	}
	if (!any)
		return errf(err, E_NOTFOUND, "no service or task %s (see orch services, orch ps)", target);
	bool slot_seen = false;
	size_t best = n;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(c[i].service, svc) || (by_slot && c[i].slot != slot))
			continue;
		slot_seen = true;
		if (!strcmp(c[i].state, "running") && c[i].addr[0] && (best == n || c[i].slot < c[best].slot))
			best = i;
	}
	if (best < n) {
		*out = best;
		return 0;
	}
	if (by_slot && !slot_seen)
		return errf(err, E_NOTFOUND, "service %s has no slot %llu (see orch ps %s)", svc, (unsigned long long)slot, svc);
	return errf(err, E_STATE, "%s has no running task (see orch ps %s)", target, svc);
}

/* ---- the relay --------------------------------------------------------------------------------- */

static void fan_done(struct fanout *fo)
{
	struct execfan *f = fo->ctx;
	mpw_free(&f->req);
	buf_free(&f->early);
	free(f);
}

static void remote_ready(struct fanout_src *s, struct conn *c)
{
	struct execfan *f = s->f->ctx;
	f->ready = true;
	conn_send_mpw(c, &f->req);
	for (size_t off = 0; off + sizeof(uint32_t) <= f->early.len;) {
		uint32_t n;
		memcpy(&n, f->early.data + off, sizeof n);
		conn_send(c, f->early.data + off + sizeof n, n);
		off += sizeof n + n;
	}
	buf_free(&f->early);
}

/* The command's last frame ends the session: the task's node ends it when the conn closes,
 * as it does when the CLI goes away. */
static bool remote_frame(struct fanout_src *s, const msgpack_object *resp, int64_t rc, bool more)
{
	struct execfan *f = s->f->ctx;
	uint64_t id = 0;
	mp_get_u64(resp, "id", &id);
	if (id != REMOTE_ID) /* an input's answer: its session has ended */
		return false;
	rpc_relay(f->p, resp);
	return rc || !more;
}

static void remote_close(struct fanout_src *s, const char *why)
{
	struct execfan *f = s->f->ctx;
	if (!f->p->conn)
		return;
	char m[ERR_LEN];
	snprintf(m, sizeof m, "exec in task %llu (node %s): %s", (unsigned long long)f->task, s->addr,
		 why ? why : "the node closed the connection before the command ended");
	rpc_reply_err(f->p->conn, f->p->req_id, E_IO, m);
}

static const struct fanout_ops fan_ops = {
	.on_ready = remote_ready,
	.on_frame = remote_frame,
	.on_close = remote_close,
	.on_done = fan_done,
};

/* Packs exec.task for the chosen task, with the caller as origin when the task runs on
 * another node (this node's own request needs none: it checked the caller). */
static void build_req(struct daemon *d, struct execfan *f, const struct req_exec *a, const struct fl_doc *cmd,
		      uint64_t node_id)
{
	struct req_exec_task q = {
		.task_id = f->task, .cmd = *cmd, .tty = a->tty, .stdin = a->stdin, .rows = a->rows, .cols = a->cols,
	};
	struct mpw w;
	struct mpr r;
	mpw_init(&w);
	proto_encode(&w, OP_EXEC_TASK, REMOTE_ID, &q);
	mpw_init(&f->req);
	if (!mpr_decode(&r, w.sb.data, w.sb.size)) {
		mpw_map_begin(&f->req);
		for (uint32_t i = 0; i < r.root->via.map.size; i++) {
			mpw_key_obj(&f->req, &r.root->via.map.ptr[i].key);
			mpw_obj(&f->req, &r.root->via.map.ptr[i].val);
		}
		if (f->p->has_origin && node_id != d->ident.id)
			access_origin_put(&f->req, &f->p->origin, f->p->origin_op);
		mpw_map_end(&f->req);
		mpr_free(&r);
	}
	mpw_free(&w);
}

/* Dials the task's node (the pending p answers the CLI from now on). */
static void fan_out(struct daemon *d, struct pending *p, const struct req_exec *a, const struct fl_doc *cmd,
		    const struct cand *t)
{
	struct execfan *f = xcalloc(1, sizeof *f);
	f->p = p;
	f->task = t->id;
	p->on_reply = NULL;
	build_req(d, f, a, cmd, t->node_id);
	TRACE("exec", p->conn ? p->conn->peer : "-", "exec in task %llu on %s", (unsigned long long)t->id, t->addr);
	struct fanout *fo = fanout_new(d, p, 1, &fan_ops, f);
	fanout_dial(fo, NULL, t->addr, NULL);
	fanout_started(fo);
}

/* ---- on a worker: the tasks come from the leader ----------------------------------------------- */

/* What a worker keeps of the request while the leader answers. */
struct wexec {
	struct req_exec a;
	char target[201];
	struct mpw cmd;
	bool has_origin;
	enum op origin_op;
	struct peer origin;
};

static void wexec_free(struct wexec *x)
{
	mpw_free(&x->cmd);
	free(x);
}

static void worker_tasks(struct pending *p, const msgpack_object *resp)
{
	struct wexec *x = p->ctx;
	int64_t rc = E_NOLEADER;
	if (resp)
		mp_get_i64(resp, "rc", &rc);
	const msgpack_object *ts = resp ? mp_get(resp, "tasks") : NULL;
	/* p is the link's (freed when this returns) */
	if (rc || !ts || ts->type != MSGPACK_OBJECT_ARRAY || !p->conn) {
		rpc_relay(p, resp);
		wexec_free(x);
		return;
	}
	struct cand *cs = xcalloc(ts->via.array.size + 1, sizeof *cs);
	size_t n = ts->via.array.size;
	for (size_t i = 0; i < n; i++) {
		const msgpack_object *t = &ts->via.array.ptr[i];
		char hid[24] = "";
		mp_get_u64(t, "id", &cs[i].id);
		mp_get_u64(t, "slot", &cs[i].slot);
		mp_get_strbuf(t, "service", cs[i].service, sizeof cs[i].service);
		mp_get_strbuf(t, "state", cs[i].state, sizeof cs[i].state);
		mp_get_strbuf(t, "node_addr", cs[i].addr, sizeof cs[i].addr);
		mp_get_strbuf(t, "node_id", hid, sizeof hid);
		cs[i].node_id = strtoull(hid, NULL, 16);
	}
	char err[ERR_LEN];
	size_t k;
	if ((rc = pick(cs, n, x->target, &k, err)))
		rpc_reply_err(p->conn, p->req_id, (int)rc, err);
	else {
		struct fl_doc cmd = {.raw = x->cmd.sb.data, .len = x->cmd.sb.size};
		struct pending *q = pending_new(p->d, p->conn, p->req_id);
		q->has_origin = x->has_origin; /* who asked: not being served any more */
		q->origin_op = x->origin_op;
		q->origin = x->origin;
		fan_out(p->d, q, &x->a, &cmd, &cs[k]);
	}
	free(cs);
	wexec_free(x);
}

static void worker_exec(struct daemon *d, struct conn *c, const struct req_exec *a)
{
	char err[ERR_LEN];
	struct wexec *x = xcalloc(1, sizeof *x);
	x->a = *a;
	snprintf(x->target, sizeof x->target, "%s", a->target);
	x->a.target = x->target;
	mpw_init(&x->cmd);
	mpw_obj(&x->cmd, a->cmd.obj);
	x->a.cmd = (struct fl_doc){0};
	struct pending *p = pending_new(d, c, a->id);
	p->ctx = x;
	p->on_reply = worker_tasks;
	/* the list is this node's own read (a node may read the tasks); the caller's origin
	 * goes with the exec.task, where the task's node checks it */
	x->has_origin = p->has_origin;
	x->origin_op = p->origin_op;
	x->origin = p->origin;
	p->has_origin = false;
	struct req_tasks q = {.all = true};
	if (link_forward_op(d, p, OP_TASKS, &q, err)) {
		rpc_reply_err(c, a->id, E_NOLEADER, err);
		pending_free(p);
		wexec_free(x);
	}
}

/* ---- the ops ----------------------------------------------------------------------------------- */

void execfan_start(struct daemon *d, struct conn *c, const struct req_exec *a)
{
	char err[ERR_LEN];
	char **argv = exec_argv(a->cmd.obj, err);
	if (!argv) {
		rpc_reply_err(c, a->id, E_INVAL, err);
		return;
	}
	free(argv);
	if (a->rows > 0xffff || a->cols > 0xffff) {
		rpc_reply_err(c, a->id, E_INVAL, "exec: terminal size over 65535");
		return;
	}
	if (d->worker) {
		worker_exec(d, c, a);
		return;
	}
	size_t n = d->store.tasks.n, k = 0;
	struct cand *cs = xcalloc(n + 1, sizeof *cs);
	TABLE_FOREACH(&d->store.tasks, const struct task, t) {
		if (k == n)
			break;
		struct cand *x = &cs[k++];
		const struct node *nd = t->node_id ? table_get_u64(&d->store.nodes, t->node_id) : NULL;
		x->id = t->id;
		x->slot = t->slot;
		x->node_id = t->node_id;
		snprintf(x->service, sizeof x->service, "%s", t->service);
		snprintf(x->state, sizeof x->state, "%s", task_state_name(t->state));
		snprintf(x->addr, sizeof x->addr, "%s", nd && nd->addr ? nd->addr : "");
	}
	size_t i;
	int rc = pick(cs, k, a->target, &i, err);
	if (rc)
		rpc_reply_err(c, a->id, rc, err);
	else
		fan_out(d, pending_new(d, c, a->id), a, &a->cmd, &cs[i]);
	free(cs);
}

void execfan_input(struct daemon *d, struct conn *c, const struct req_exec_input *a)
{
	struct fanout *fo = fanout_find(d, c, a->session, &fan_ops);
	/* a session whose command has ended is the task node's to answer, as below */
	if (fo && !fo->src[0].ended) {
		struct execfan *f = fo->ctx;
		struct req_exec_input q = *a;
		q.session = REMOTE_ID;
		struct mpw w;
		mpw_init(&w);
		proto_encode(&w, OP_EXEC_INPUT, 0, &q);
		if (f->ready && fo->src[0].conn)
			conn_send_mpw(fo->src[0].conn, &w);
		else if (!f->ready && f->early.len + w.sb.size < (8u << 20)) {
			uint32_t len = (uint32_t)w.sb.size;
			buf_append(&f->early, &len, sizeof len);
			buf_append(&f->early, w.sb.data, w.sb.size);
		}
		mpw_free(&w);
		return;
	}
	/* here the task's node: the session is the agent's. Only an input that finds no
	 * session is answered (the exec has ended; the answer carries the input's id, never
	 * the stream's) */
	if (!agent_exec_input(d->agent, c, a)) {
		char m[ERR_LEN];
		snprintf(m, sizeof m, "exec.input: no exec session %llu on this connection (it has ended)",
			 (unsigned long long)a->session);
		rpc_reply_err(c, a->id, E_NOTFOUND, m);
	}
}
