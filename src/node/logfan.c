#include "node/logfan.h"
#include "node/daemon.h"
#include "node/fanout.h"
#include "net/conn.h"
#include "spec/spec.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A line longer than this is passed on in pieces rather than held back. */
#define LINE_MAX_HELD 65536

/* One task's log, read from its node (node/fanout.h holds the conn). */
struct logsrc {
	uint64_t task;
	char prefix[96];
	struct buf partial; /* output after the last newline, until the rest arrives */
};

/* The fan's own part. */
struct logfan {
	struct pending *p; /* the CLI's request; p->conn is NULL once the CLI has gone */
	struct logsrc *src;
	size_t n;
	int64_t tail;
	bool follow;
};

static void frame_begin(struct logfan *f, struct mpw *w)
{
	rpc_reply_begin(w, f->p->req_id, 0);
	mpw_kbool(w, "more", true);
}

static void warn(struct fanout_src *s, const char *why)
{
	struct logfan *f = s->f->ctx;
	if (!f->p->conn)
		return;
	char m[ERR_LEN];
	snprintf(m, sizeof m, "logs of task %llu (node %s): %s", (unsigned long long)((struct logsrc *)s->ctx)->task,
		 s->addr, why);
	struct mpw w;
	frame_begin(f, &w);
	mpw_kstr(&w, "warn", m);
	rpc_reply_send(f->p->conn, &w);
}

/* Passes on the whole lines received so far (all of it when flushing). */
static void pass_on(struct fanout_src *fs, const char *data, size_t n, bool flush)
{
	struct logfan *f = fs->f->ctx;
	struct logsrc *s = fs->ctx;
	buf_append(&s->partial, data, n);
	size_t upto = s->partial.len;
	if (!flush && upto <= LINE_MAX_HELD)
		while (upto && s->partial.data[upto - 1] != '\n')
			upto--;
	if (!upto)
		return;
	if (f->p->conn) {
		struct mpw w;
		frame_begin(f, &w);
		mpw_kstr(&w, "prefix", s->prefix);
		mpw_key(&w, "data");
		mpw_strn(&w, (const char *)s->partial.data, upto);
		rpc_reply_send(f->p->conn, &w);
	}
	buf_consume(&s->partial, upto);
}

static void fan_done(struct fanout *fo)
{
	struct logfan *f = fo->ctx;
	if (f->p->conn) {
		struct mpw w;
		rpc_reply_begin(&w, f->p->req_id, 0);
		mpw_kbool(&w, "more", false);
		rpc_reply_send(f->p->conn, &w);
	}
	for (size_t i = 0; i < f->n; i++)
		buf_free(&f->src[i].partial);
	free(f->src);
	free(f);
}

static void src_ready(struct fanout_src *s, struct conn *c)
{
	struct logfan *f = s->f->ctx;
	struct req_logs q = {.task_id = ((struct logsrc *)s->ctx)->task, .tail = f->tail, .follow = f->follow};
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, OP_LOGS, 1, &q);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static bool src_frame(struct fanout_src *s, const msgpack_object *resp, int64_t rc, bool more)
{
	const msgpack_object *data = mp_get(resp, "data");
	/* a task whose node keeps no log for it (never started, or its files are gone with
	 * it) simply has no output */
	if (!rc && data && mp_is_str(data))
		pass_on(s, data->via.str.ptr, data->via.str.size, !more);
	if (rc || !more) {
		pass_on(s, "", 0, true);
		return true;
	}
	return false;
}

static void src_close(struct fanout_src *s, const char *why)
{
	pass_on(s, "", 0, true);
	warn(s, why ? why : "the node closed the connection before the end");
}

/* the CLI going away (interrupted, or done) stops the reading of every node */
static const struct fanout_ops fan_ops = {
	.on_ready = src_ready,
	.on_frame = src_frame,
	.on_close = src_close,
	.on_done = fan_done,
};

/* The node that holds a task's log, when there is one to read: a pending task never ran,
 * and the log of a task whose node has left the cluster went with it. */
static const struct node *log_node(const struct store *st, const struct task *t, bool by_task, uint64_t task_id,
				   const char *svc)
{
	if ((by_task ? t->id != task_id : strcmp(t->service, svc)) || t->state == TS_PENDING)
		return NULL;
	const struct node *nd = t->node_id ? table_get_u64(&st->nodes, t->node_id) : NULL;
	return nd && nd->addr && nd->addr[0] ? nd : NULL;
}

/* One task's log to read: whose, from where. */
struct logwant {
	uint64_t task;
	char prefix[96];
	char addr[64];
};

/* Dials every source and streams what they send (the wanted list is copied). */
static void fan_out(struct daemon *d, struct conn *c, uint64_t id, const struct req_logs_cluster *a,
		    const struct logwant *want, size_t n)
{
	struct logfan *f = xcalloc(1, sizeof *f);
	f->p = pending_new(d, c, id);
	f->tail = a->tail;
	f->follow = a->follow;
	f->src = xcalloc(n ? n : 1, sizeof *f->src);
	struct fanout *fo = fanout_new(d, f->p, n, &fan_ops, f);
	for (size_t i = 0; i < n; i++) {
		struct logsrc *s = &f->src[f->n++];
		s->task = want[i].task;
		snprintf(s->prefix, sizeof s->prefix, "%s", want[i].prefix);
		/* every node is dialled the same way, this one included: the agent serves its
		 * tasks' logs on the node port */
		fanout_dial(fo, NULL, want[i].addr, s);
	}
	TRACE("logs", c->peer, "reading %zu task logs (follow %d)", f->n, f->follow);
	fanout_started(fo);
}

/* ---- on a worker: the tasks come from the leader (node/worker.h) -------------------------- */

struct wlogs {
	struct req_logs_cluster a;
	char service[PROTO_NAME_MAX + 1];
};

static void worker_tasks(struct pending *p, const msgpack_object *resp)
{
	struct wlogs *x = p->ctx;
	struct daemon *d = p->d;
	int64_t rc = E_NOLEADER;
	if (resp)
		mp_get_i64(resp, "rc", &rc);
	const msgpack_object *ts = resp ? mp_get(resp, "tasks") : NULL;
	if (rc || !ts || ts->type != MSGPACK_OBJECT_ARRAY) {
		rpc_relay(p, resp); /* the leader's error (no such service), or the link's */
		free(x);
		return;
	}
	struct logwant *want = xcalloc(ts->via.array.size + 1, sizeof *want);
	size_t n = 0;
	for (uint32_t i = 0; i < ts->via.array.size; i++) {
		const msgpack_object *t = &ts->via.array.ptr[i];
		uint64_t tid = 0, slot = 0;
		char svc[PROTO_NAME_MAX + 1] = "", state[32] = "", addr[64] = "";
		mp_get_u64(t, "id", &tid);
		mp_get_u64(t, "slot", &slot);
		mp_get_strbuf(t, "service", svc, sizeof svc);
		mp_get_strbuf(t, "state", state, sizeof state);
		mp_get_strbuf(t, "node_addr", addr, sizeof addr);
		if ((x->a.task_id ? tid != x->a.task_id : strcmp(svc, x->service)) || !strcmp(state, "pending") || !addr[0])
			continue;
		want[n].task = tid;
		snprintf(want[n].prefix, sizeof want[n].prefix, "%s.%llu.%llu", svc, (unsigned long long)slot, (unsigned long long)tid);
		snprintf(want[n].addr, sizeof want[n].addr, "%s", addr);
		n++;
	}
	if (p->conn) {
		if (x->a.task_id && !n) {
			char m[ERR_LEN];
			snprintf(m, sizeof m, "no task %llu with logs", (unsigned long long)x->a.task_id);
			rpc_reply_err(p->conn, p->req_id, E_NOTFOUND, m);
		} else
			fan_out(d, p->conn, p->req_id, &x->a, want, n);
	}
	free(want);
	free(x);
}

/* Asks the leader for the tasks (history included), then reads their logs as a manager
 * does. */
static void worker_logs(struct daemon *d, struct conn *c, const struct req_logs_cluster *a, const char *svc)
{
	char err[ERR_LEN];
	struct wlogs *x = xcalloc(1, sizeof *x);
	x->a = *a;
	snprintf(x->service, sizeof x->service, "%s", svc);
	x->a.service = NULL;
	struct pending *p = pending_new(d, c, a->id);
	p->ctx = x;
	p->on_reply = worker_tasks;
	struct req_tasks q = {.service = a->task_id ? NULL : x->service, .all = true};
	if (link_forward_op(d, p, OP_TASKS, &q, err)) {
		rpc_reply_err(c, a->id, E_NOLEADER, err);
		pending_free(p);
		free(x);
	}
}

void logfan_start(struct daemon *d, struct conn *c, const struct req_logs_cluster *a)
{
	uint64_t id = a->id, task_id = a->task_id;
	const char *svc = a->service ? a->service : "";
	char m[ERR_LEN];
	bool by_task = task_id != 0;
	if (!by_task && !svc[0]) {
		rpc_reply_err(c, id, E_INVAL, "logs: a service name or a task id is required");
		return;
	}
	if (d->worker) {
		worker_logs(d, c, a, svc);
		return;
	}
	size_t n = 0;
	TABLE_FOREACH(&d->store.tasks, const struct task, t)
		if (log_node(&d->store, t, by_task, task_id, svc))
			n++;
	if (!by_task && !n && !store_service_by_name(&d->store, svc)) {
		bool any = false;
		TABLE_FOREACH(&d->store.tasks, const struct task, t)
			any = any || !strcmp(t->service, svc);
		if (!any) {
			snprintf(m, sizeof m, "no service %s (see orch services)", svc);
			rpc_reply_err(c, id, E_NOTFOUND, m);
			return;
		}
	}
	if (by_task && !n) {
		snprintf(m, sizeof m, "no task %llu with logs", (unsigned long long)task_id);
		rpc_reply_err(c, id, E_NOTFOUND, m);
		return;
	}
	struct logwant *want = xcalloc(n ? n : 1, sizeof *want);
	size_t k = 0;
	TABLE_FOREACH(&d->store.tasks, const struct task, t) {
		const struct node *nd = log_node(&d->store, t, by_task, task_id, svc);
		if (!nd)
			continue;
		want[k].task = t->id;
		snprintf(want[k].prefix, sizeof want[k].prefix, "%s.%llu.%llu", t->service, (unsigned long long)t->slot,
			 (unsigned long long)t->id);
		snprintf(want[k].addr, sizeof want[k].addr, "%s", nd->addr);
		k++;
	}
	fan_out(d, c, id, a, want, k);
	free(want);
}
