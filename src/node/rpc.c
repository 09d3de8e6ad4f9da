/* Requests on the node port and the local socket, dispatched from the protocol table
 * (net/proto.h): the op is looked up, refused when asked on the wrong socket, its fields
 * checked and decoded, and then it runs here, or on the leader (forwarded by a follower,
 * the reply relayed), or is refused by a follower with the leader's address. Handlers are
 * in rpc_cluster.c (the cluster and its members), rpc_work.c (services, tasks, images,
 * logs) and the parts they name. Every reply is a map {id, rc, err?, ...}. */
#include "node/daemon.h"
#include "node/worker.h"
#include "node/autolock.h"
#include "metrics/metrics.h"
#include "net/access.h"
#include "net/conn.h"
#include "net/httpd.h"
#include "net/httpreq.h"
#include "console/console.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pending requests ------------------------------------------------------------------- */

struct pending *pending_new(struct daemon *d, struct conn *c, uint64_t req_id)
{
	struct pending *p = xcalloc(1, sizeof *p);
	p->d = d;
	p->conn = c;
	p->req_id = req_id;
	if (d->serving) {
		p->has_origin = true;
		p->origin_op = d->serving_op;
		p->origin = d->serving_peer;
	}
	/* oldest first: replies mostly come in order, and the link looks them up from the
	 * head (node/link.c) */
	p->prev = d->pending_tail;
	if (d->pending_tail)
		d->pending_tail->next = p;
	else
		d->pending = p;
	d->pending_tail = p;
	return p;
}

void pending_free(struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else if (p->d->pending == p)
		p->d->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else if (p->d->pending_tail == p)
		p->d->pending_tail = p->prev;
	free(p);
}

void pending_conn_gone(struct daemon *d, struct conn *c)
{
	for (struct pending *p = d->pending, *next; p; p = next) {
		next = p->next; /* on_gone may free p (only p) */
		if (p->conn == c) {
			p->conn = NULL;
			if (p->on_gone)
				p->on_gone(p);
		}
	}
}

void rpc_relay(struct pending *p, const msgpack_object *resp)
{
	if (!p->conn)
		return;
	if (!resp) {
		rpc_reply_err(p->conn, p->req_id, E_NOLEADER, "lost the connection to the leader before it answered; retry");
		return;
	}
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	if (!mp_get(resp, "id"))
		mpw_ku64(&w, "id", p->req_id);
	for (uint32_t i = 0; i < resp->via.map.size; i++) {
		const msgpack_object_kv *kv = &resp->via.map.ptr[i];
		mpw_key_obj(&w, &kv->key);
		if (mp_str_eq(&kv->key, "id"))
			mpw_u64(&w, p->req_id);
		else
			mpw_obj(&w, &kv->val);
	}
	mpw_map_end(&w);
	conn_send_mpw(p->conn, &w);
	mpw_free(&w);
}

void rpc_submit(struct daemon *d, struct conn *c, uint64_t id, enum cmd type, const void *body, submit_cb cb)
{
	char err[ERR_LEN];
	struct mpw w;
	mpw_init(&w);
	cmd_body(&w, type, body);
	struct pending *p = pending_new(d, c, id);
	int rc = daemon_submit(d, type, w.sb.data, w.sb.size, cb, p, err);
	if (rc) {
		/* a disk alarm is the answer; anything else that fails at once is retried */
		rpc_reply_err(c, id, rc == E_NOSPACE ? rc : E_NOLEADER, err);
		pending_free(p);
	}
	mpw_free(&w);
}

/* ---- where an op runs ----------------------------------------------------------------------- */

static void forward(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	char err[ERR_LEN];
	struct pending *p = pending_new(d, c, id);
	if (link_forward(d, p, req, err)) {
		rpc_reply_err(c, id, E_NOLEADER, err);
		pending_free(p);
	}
}

/* A leader-only op asked of a follower: the caller is told where to go ("leader", empty
 * while none is known) and retries there. */
static void refuse_not_leader(struct daemon *d, struct conn *c, uint64_t id, enum op op)
{
	raft_id lid;
	const char *laddr;
	char m[ERR_LEN];
	cons_leader(&d->cons, &lid, &laddr);
	if (laddr)
		snprintf(m, sizeof m, "%s: this node is not the leader (%s is); retry there", proto_name(op), laddr);
	else
		snprintf(m, sizeof m, "%s: no leader elected yet; retry", proto_name(op));
	struct mpw w;
	rpc_reply_begin(&w, id, E_NOLEADER);
	mpw_kstr(&w, "err", m);
	mpw_kstr(&w, "leader", laddr ? laddr : "");
	rpc_reply_send(c, &w);
}

/* ---- who may ------------------------------------------------------------------------------- */

/* A user known by its certificate must still be a user of the cluster, with that
 * certificate: orch user rm takes effect on the next request, on every node as soon as it
 * has applied the removal, and on the leader at once (it checks every forwarded write). */
int rpc_user_current(struct daemon *d, const struct peer *p, char *err)
{
	/* a worker holds no replica of the users: what it forwards, the leader checks */
	if (p->kind != PEER_USER || !p->serial[0] || d->worker)
		return 0;
	const struct user *u = table_get_str(&d->store.users, p->user);
	if (!u || !u->serial || strcmp(u->serial, p->serial))
		return errf(err, E_AUTH,
			    "permission denied: the certificate of user %s was revoked (orch user rm), or is so new that "
			    "this node does not know it yet",
			    p->user);
	return 0;
}

/* The caller of op: the connection's peer, or, for a request a node forwards on someone's
 * behalf, that someone, checked as if they had asked here (net/access.h). */
static int authorize(struct daemon *d, struct conn *c, enum op op, const void *args, const msgpack_object *req,
		     struct peer *who, char *err)
{
	conn_peer(c, who);
	int rc = access_check(op, access_need(op, args), who, err);
	if (!rc)
		rc = rpc_user_current(d, who, err);
	struct peer org;
	enum op org_op;
	if (rc || who->kind != PEER_NODE)
		return rc;
	if (access_origin_get(req, &org, &org_op)) {
		/* a node on its own behalf: a manager is the cluster; a worker asks as itself only
		 * what nodes ask each other and reads, anything more is what its root asks */
		enum proto_need need = access_need(op, args);
		if (who->manager || need == NEED_NODE || need <= NEED_VIEWER)
			return 0;
		org = (struct peer){.kind = PEER_LOCAL, .role = PROLE_ADMIN};
		org_op = op;
	}
	/* Root on a worker-only machine is trusted with that machine's tasks, not with the
	 * cluster: what its local socket forwards may only read (as a viewer), and take the
	 * worker itself out (orch leave). */
	bool from_worker = !who->manager;
	bool own_leave = op == OP_NODE_LEAVE && ((const struct req_node_leave *)args)->node_id == who->node_id;
	if (from_worker && org.kind == PEER_USER && org.serial[0]) {
		/* a user known by certificate: the role is the cluster's record of them, never
		 * what the worker says (the serial must match too: rpc_user_current below) */
		const struct user *u = table_get_str(&d->store.users, org.user);
		if (u && u->role)
			org.role = peer_role_parse(u->role);
	} else if (from_worker && !own_leave && (org.kind != PEER_USER || org.role > PROLE_VIEWER)) {
		/* anything else a worker claims (its local socket, its console, a node, a user
		 * with no certificate) is no more than root on that machine */
		if (org.kind != PEER_USER)
			snprintf(org.user, sizeof org.user, "root on worker %016llx", (unsigned long long)who->node_id);
		org.kind = PEER_USER;
		org.role = PROLE_VIEWER;
		org.serial[0] = 0;
	}
	/* an entry built for someone's op (apply) is checked against that op; its args are
	 * not here, so the table's need: registry credentials were checked on the node */
	enum proto_need need = org_op == op ? access_need(op, args) : proto_ops[org_op].need;
	if ((rc = access_check(org_op, need, &org, err)) || (rc = rpc_user_current(d, &org, err))) {
		if (from_worker && !strstr(err, "; run "))
			snprintf(err + strlen(err), ERR_LEN - strlen(err) > 0 ? ERR_LEN - strlen(err) : 0,
				 "; a worker's local socket may only read: run it on a manager, or with --host and a user certificate");
		return rc;
	}
	*who = org;
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

/* Each handler takes its own request struct: a typed thunk per op. */
typedef void (*rpc_thunk)(struct daemon *d, struct conn *c, const void *args);
#define RPC_THUNK_(ID, low, name, via, run, need, handler) \
	static void thunk_##low(struct daemon *d, struct conn *c, const void *a) { handler(d, c, a); }
PROTO_OPS(RPC_THUNK_)
#define RPC_ENTRY_(ID, low, name, via, run, need, handler) [OP_##ID] = thunk_##low,
static const rpc_thunk thunks[OP__COUNT] = {PROTO_OPS(RPC_ENTRY_)};

void rpc_dispatch(struct daemon *d, struct conn *c, const msgpack_object *req, bool local)
{
	uint64_t id = 0;
	mp_get_u64(req, "id", &id);
	const msgpack_object *name = mp_get(req, "op");
	if (!mp_is_str(name)) {
		rpc_reply_err(c, id, E_INVAL, "request without op");
		return;
	}
	TRACE("rpc", c->peer, "op %.*s id %llu", (int)name->via.str.size, name->via.str.ptr, (unsigned long long)id);
	if (d->stopping) {
		rpc_reply_err(c, id, E_BUSY, "node is stopping");
		return;
	}
	enum op op;
	char err[ERR_LEN];
	if (proto_lookup(name, &op)) {
		snprintf(err, sizeof err, "unknown op %.*s", (int)(name->via.str.size > 40 ? 40 : name->via.str.size),
			 name->via.str.ptr);
		rpc_reply_err(c, id, E_UNSUPP, err);
		return;
	}
	const struct proto_op *po = &proto_ops[op];
	if (po->via == VIA_LOCAL && !local) {
		snprintf(err, sizeof err, "%s: only on the node's local socket (run the command on its machine)", po->name);
		rpc_reply_err(c, id, E_UNSUPP, err);
		return;
	}
	if (po->via == VIA_PEER && local) {
		snprintf(err, sizeof err, "%s: only on the node port (an op between nodes)", po->name);
		rpc_reply_err(c, id, E_UNSUPP, err);
		return;
	}
	struct peer who;
	conn_peer(c, &who);
	/* the table's need first, before the autolock gate too (a peer with no certificate, a
	 * joiner, may only join); the whole check once the args are decoded (authorize) */
	if (access_check(op, po->need, &who, err)) {
		if (who.kind == PEER_USER) /* not every anonymous probe: they could fill the log */
			log_warn(d->ident.name, d->clock, "refused %s from %s: %s", po->name, c->peer, err);
		rpc_reply_err(c, id, E_AUTH, err);
		return;
	}
	if (d->locked && op != OP_UNLOCK) { /* node/autolock.h */
		if (op == OP_STATUS)
			autolock_status(d, c, id);
		else
			rpc_reply_err(c, id, E_STATE, "this node is locked (autolock): give it the unlock key with orch unlock");
		return;
	}
	void *args;
	if (proto_decode(op, req, &args, err)) {
		rpc_reply_err(c, id, E_INVAL, err);
		return;
	}
	*(uint64_t *)args = id; /* every request struct starts with its id */
	if (authorize(d, c, op, args, req, &who, err)) {
		log_warn(d->ident.name, d->clock, "refused %s from %s: %s", po->name, c->peer, err);
		rpc_reply_err(c, id, E_AUTH, err);
		free(args);
		return;
	}
	d->serving = who.kind != PEER_NODE;
	d->serving_op = op;
	d->serving_peer = who;
	enum worker_route wr = d->worker ? worker_route(op) : WORKER_HERE;
	if (wr == WORKER_REFUSE) {
		snprintf(err, sizeof err, "%s: this node is a worker (it holds no replica of the cluster state); run it on a manager node",
			 po->name);
		rpc_reply_err(c, id, E_UNSUPP, err);
	} else if (wr == WORKER_LEADER && op == OP_NODES) {
		/* the leader marks this worker, not itself, as the node asked */
		struct req_nodes q = {.self = d->ident.id};
		struct mpw w;
		struct mpr r;
		mpw_init(&w);
		proto_encode(&w, OP_NODES, id, &q);
		if (!mpr_decode(&r, w.sb.data, w.sb.size)) {
			forward(d, c, id, r.root); /* the one way requests leave for the leader */
			mpr_free(&r);
		} else
			rpc_reply_err(c, id, E_FAIL, "nodes: could not build the request to the leader");
		mpw_free(&w);
	} else if (wr == WORKER_LEADER)
		forward(d, c, id, req);
	else if (po->run == RUN_HERE || cons_is_leader(&d->cons))
		thunks[op](d, c, args);
	else if (po->run == RUN_LEADER)
		forward(d, c, id, req);
	else
		refuse_not_leader(d, c, id, op);
	d->serving = false;
	free(args);
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

void rpc_http_page(struct daemon *d, const char *method, const char *path, struct buf *resp)
{
	const char *status = "200 OK", *ctype = "text/plain; charset=utf-8";
	struct buf body = {0};
	if (!strcmp(path, "/healthz")) {
		buf_printf(&body, "ok %s\n", cons_state_name(&d->cons));
	} else if (!strcmp(path, "/metrics") || !strncmp(path, "/metrics?", 9)) {
		struct metrics_raft r = {
			.role = cons_role_name(cons_role_of(&d->cons, d->ident.id)),
			.state = cons_state_name(&d->cons),
			.term = cons_term(&d->cons),
			.commit_index = cons_commit_index(&d->cons),
			.applied_index = cons_applied_index(&d->cons),
		};
		metrics_page(&d->stats, clock_now(d->clock), &r, &body);
		ctype = METRICS_CONTENT_TYPE;
	} else {
		status = "404 Not Found";
		buf_printf(&body, "not found\n");
	}
	httpd_response(resp, method, status, ctype, &body);
	buf_free(&body);
}

/* HTTP on the node port: only for a caller the connection proved (a user of any role, a
 * node); a plain client goes to the --metrics-listen or --console-listen listener instead.
 * /metrics and /healthz are answered here, everything else is the console's. */
void rpc_http(struct daemon *d, struct conn *c, const struct httpreq *rq)
{
	struct buf b = {0};
	struct peer who;
	conn_peer(c, &who);
	if (who.kind == PEER_ANON) {
		struct buf body = {0};
		buf_printf(&body, "forbidden: the node port serves HTTP only to clients with a certificate of the cluster; "
				  "a local Prometheus scrapes the --metrics-listen address\n");
		httpd_response(&b, rq->method, "403 Forbidden", "text/plain; charset=utf-8", &body);
		buf_free(&body);
	} else if (strcmp(rq->path, "/healthz") && strcmp(rq->path, "/metrics") && strncmp(rq->path, "/metrics?", 9)) {
		console_tls(d->console, c, rq);
		return;
	} else
		rpc_http_page(d, rq->method, rq->path, &b);
	conn_write_raw(c, b.data, b.len);
	conn_close_after_write(c);
	buf_free(&b);
}
