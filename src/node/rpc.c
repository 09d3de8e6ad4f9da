/* Requests on the node port and the local socket. Reads are answered from the local copy
 * of the replicated state; writes go through raft on the leader (forwarded when this node
 * is not the leader). Every reply is a map {id, rc, err?, ...}. */
#include "node/daemon.h"
#include "metrics/cluster_stats.h"
#include "metrics/metrics.h"
#include "node/member.h"
#include "net/conn.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- replies and pending requests --------------------------------------------------- */

static void reply_ok(struct conn *c, uint64_t id)
{
	if (!c)
		return;
	struct mpw w;
	mpw_init(&w);
	rpc_reply_begin(&w, id, 0, 0);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

struct pending *pending_new(struct daemon *d, struct conn *c, uint64_t req_id)
{
	struct pending *p = xcalloc(1, sizeof *p);
	p->d = d;
	p->conn = c;
	p->req_id = req_id;
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
	uint32_t n = resp->via.map.size;
	bool has_id = mp_get(resp, "id") != NULL;
	mpw_map(&w, has_id ? n : n + 1);
	if (!has_id)
		mpw_ku64(&w, "id", p->req_id);
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object_kv *kv = &resp->via.map.ptr[i];
		msgpack_pack_object(&w.pk, kv->key);
		if (mp_str_eq(&kv->key, "id"))
			mpw_u64(&w, p->req_id);
		else
			msgpack_pack_object(&w.pk, kv->val);
	}
	conn_send_mpw(p->conn, &w);
	mpw_free(&w);
}

/* Forwards a leader-only request when this node is not the leader. Returns true when the
 * request was taken care of (forwarded or refused). */
static bool forward_if_follower(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	if (cons_is_leader(&d->cons))
		return false;
	char err[ERR_LEN];
	struct pending *p = pending_new(d, c, id);
	if (link_forward(d, p, req, err)) {
		rpc_reply_err(c, id, E_NOLEADER, err);
		pending_free(p);
	}
	return true;
}

/* ---- reads ------------------------------------------------------------------------------ */

static const char *node_name_of(struct daemon *d, uint64_t id)
{
	struct node *n = table_get_u64(&d->store.nodes, id);
	return n && n->name ? n->name : "";
}

static void op_status(struct daemon *d, struct conn *c, uint64_t id)
{
	struct mpw w;
	mpw_init(&w);
	raft_id lid;
	const char *laddr;
	cons_leader(&d->cons, &lid, &laddr);
	char hash[65], hid[17], lhid[17];
	store_hash(&d->store, hash);
	snprintf(hid, sizeof hid, "%016llx", (unsigned long long)d->ident.id);
	snprintf(lhid, sizeof lhid, "%016llx", (unsigned long long)lid);
	char cid[17];
	token_cluster_hex(&d->ident.tok, cid);
	rpc_reply_begin(&w, id, 0, 17);
	mpw_kstr(&w, "cluster", cid);
	mpw_kstr(&w, "node_id", hid);
	mpw_kstr(&w, "name", d->ident.name);
	mpw_kstr(&w, "addr", d->ident.advertise);
	mpw_kstr(&w, "role", cons_role_name(cons_role_of(&d->cons, d->ident.id)));
	mpw_kstr(&w, "raft_state", cons_state_name(&d->cons));
	mpw_kstr(&w, "leader_id", lid ? lhid : "");
	mpw_kstr(&w, "leader_addr", laddr ? laddr : "");
	mpw_kstr(&w, "leader_name", lid ? node_name_of(d, lid) : "");
	mpw_ku64(&w, "term", cons_term(&d->cons));
	mpw_ku64(&w, "commit_index", cons_commit_index(&d->cons));
	mpw_ku64(&w, "applied_index", cons_applied_index(&d->cons));
	mpw_ku64(&w, "last_index", cons_last_index(&d->cons));
	mpw_ku64(&w, "revision", d->store.revision);
	mpw_kstr(&w, "state_hash", hash);
	mpw_ku64(&w, "nodes", d->store.nodes.n);
	mpw_kstr(&w, "version", ORCH_VERSION);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void op_nodes(struct daemon *d, struct conn *c, uint64_t id)
{
	struct mpw w;
	mpw_init(&w);
	raft_id lid;
	const char *laddr;
	cons_leader(&d->cons, &lid, &laddr);
	bool leader = cons_is_leader(&d->cons);
	rpc_reply_begin(&w, id, 0, 1);
	mpw_str(&w, "nodes");
	mpw_arr(&w, (uint32_t)d->store.nodes.n);
	TABLE_FOREACH(&d->store.nodes, struct node, n) {
		char hid[17];
		snprintf(hid, sizeof hid, "%016llx", (unsigned long long)n->id);
		mpw_map(&w, 13);
		mpw_kstr(&w, "id", hid);
		mpw_kstr(&w, "name", n->name);
		mpw_kstr(&w, "addr", n->addr);
		mpw_kstr(&w, "role", cons_role_name(cons_role_of(&d->cons, n->id)));
		mpw_kbool(&w, "leader", n->id == lid);
		mpw_kbool(&w, "self", n->id == d->ident.id);
		mpw_kstr(&w, "state", n->state);
		mpw_kstr(&w, "availability", n->availability);
		mpw_ku64(&w, "cpus_milli", n->cpus_milli);
		mpw_ku64(&w, "memory", n->memory);
		mpw_kstr(&w, "runtime", n->runtime ? n->runtime : "");
		mpw_str(&w, "labels");
		mpw_map(&w, (uint32_t)n->labels.n);
		for (size_t i = 0; i < n->labels.n; i++)
			mpw_kstr(&w, n->labels.k[i], n->labels.v[i]);
		/* Reachability is only known to the leader (heartbeats are not replicated). */
		mpw_str(&w, "reachable");
		if (leader)
			mpw_bool(&w, leader_alive(&d->leader, n->id));
		else
			mpw_nil(&w);
	}
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

/* ---- writes ------------------------------------------------------------------------------ */

static void applied_reply(void *data, int status, const struct apply_res *res)
{
	struct pending *p = data;
	if (p->conn) {
		int rc = status ? status : res->rc;
		struct mpw w;
		mpw_init(&w);
		char hid[17];
		snprintf(hid, sizeof hid, "%016llx", (unsigned long long)res->id);
		rpc_reply_begin(&w, p->req_id, rc, 2);
		mpw_kstr(&w, "err", res->msg);
		mpw_kstr(&w, "obj", hid);
		conn_send_mpw(p->conn, &w);
		mpw_free(&w);
	}
	pending_free(p);
}

/* op apply: a command built by another node, applied as is (leader only). The entry's
 * request identity is taken only from the node it names: the connection must be that
 * node's own link (its id claimed at the handshake, net/auth.h says how strong that is)
 * and the node a member. Not relayed by followers: a relay would have to vouch for an
 * origin it is not; the sender retries once it knows the leader. */
static void op_apply(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	const msgpack_object *e = mp_get(req, "entry");
	char err[ERR_LEN];
	if (!e || e->type != MSGPACK_OBJECT_BIN || e->via.bin.size % 8 || e->via.bin.size > (1u << 24)) {
		rpc_reply_err(c, id, E_INVAL, "apply: entry must be binary, a multiple of 8 bytes");
		return;
	}
	uint64_t peer = conn_peer_node(c);
	int rc = cmd_check_origin(e->via.bin.ptr, e->via.bin.size, peer, err);
	if (!rc && !table_get_u64(&d->store.nodes, peer) && cons_role_of(&d->cons, peer) == ROLE_NONE)
		rc = errf(err, E_AUTH, "apply: node %016llx is not a member of this cluster", (unsigned long long)peer);
	if (!rc && !cons_is_leader(&d->cons))
		rc = errf(err, E_NOLEADER, "apply: this node is not the leader; retry");
	if (rc) {
		if (rc == E_AUTH)
			log_warn(d->ident.name, "refused an entry from %s: %s", c->peer, err);
		rpc_reply_err(c, id, rc, err);
		return;
	}
	struct pending *p = pending_new(d, c, id);
	rc = cons_apply(&d->cons, e->via.bin.ptr, e->via.bin.size, applied_reply, p, err);
	if (rc) {
		rpc_reply_err(c, id, rc, err);
		pending_free(p);
	}
}

static void submitted_reply(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)d;
	applied_reply(data, rc, res);
}

static void submit_for(struct daemon *d, struct conn *c, uint64_t id, const char *type, struct mpw *body)
{
	char err[ERR_LEN];
	struct pending *p = pending_new(d, c, id);
	if (daemon_submit(d, type, body->sb.data, body->sb.size, submitted_reply, p, err)) {
		rpc_reply_err(c, id, E_NOLEADER, err);
		pending_free(p);
	}
}

static void op_kv_set(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	const msgpack_object *k = mp_get(req, "key"), *v = mp_get(req, "value");
	if (!mp_is_str(k) || !mp_is_str(v)) {
		rpc_reply_err(c, id, E_INVAL, "kv.set: key and value must be strings");
		return;
	}
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 2);
	mpw_str(&w, "key");
	msgpack_pack_object(&w.pk, *k);
	mpw_str(&w, "value");
	msgpack_pack_object(&w.pk, *v);
	submit_for(d, c, id, "kv.set", &w);
	mpw_free(&w);
}

static void op_kv_get(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	char key[300];
	if (mp_get_strbuf(req, "key", key, sizeof key)) {
		rpc_reply_err(c, id, E_INVAL, "kv.get: key must be a string");
		return;
	}
	struct kv *kv = table_get_str(&d->store.kv, key);
	if (!kv) {
		rpc_reply_err(c, id, E_NOTFOUND, "no such key");
		return;
	}
	struct mpw w;
	mpw_init(&w);
	rpc_reply_begin(&w, id, 0, 2);
	mpw_kstr(&w, "value", kv->value);
	mpw_ku64(&w, "rev", kv->rev);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void op_node_update(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	char ref[128];
	if (mp_get_strbuf(req, "node", ref, sizeof ref)) {
		rpc_reply_err(c, id, E_INVAL, "node.update: node name or id required");
		return;
	}
	struct node *n = store_node_find(&d->store, ref);
	if (!n) {
		rpc_reply_err(c, id, E_NOTFOUND, "no such node (see orch nodes)");
		return;
	}
	const msgpack_object *av = mp_get(req, "availability"), *lb = mp_get(req, "labels");
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 1 + (av != NULL) + (lb != NULL));
	mpw_ku64(&w, "id", n->id);
	if (av) {
		mpw_str(&w, "availability");
		msgpack_pack_object(&w.pk, *av);
	}
	if (lb) {
		mpw_str(&w, "labels");
		msgpack_pack_object(&w.pk, *lb);
	}
	submit_for(d, c, id, "node.update", &w);
	mpw_free(&w);
}

/* ---- membership (leader) ----------------------------------------------------------------- */

/* A join's end (node/member.h): the reply the orch join client waits for. */
static void join_replied(void *data, int rc, const char *msg, uint64_t commit_index)
{
	struct pending *p = data;
	struct daemon *d = p->d;
	if (p->conn) {
		if (rc)
			rpc_reply_err(p->conn, p->req_id, rc, msg);
		else {
			char cid[17];
			token_cluster_hex(&d->ident.tok, cid);
			struct mpw w;
			mpw_init(&w);
			rpc_reply_begin(&w, p->req_id, 0, 3);
			mpw_kstr(&w, "cluster", cid);
			mpw_kstr(&w, "leader", d->ident.advertise);
			mpw_ku64(&w, "commit_index", commit_index);
			conn_send_mpw(p->conn, &w);
			mpw_free(&w);
		}
	}
	pending_free(p);
}

static bool join_waiting(void *data)
{
	const struct pending *p = data;
	return p->conn != NULL;
}

static void op_join(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	if (!cons_is_leader(&d->cons)) {
		raft_id lid;
		const char *laddr;
		cons_leader(&d->cons, &lid, &laddr);
		struct mpw w;
		mpw_init(&w);
		rpc_reply_begin(&w, id, E_NOLEADER, 2);
		mpw_kstr(&w, "err", laddr ? "not the leader" : "no leader elected yet; retry");
		mpw_kstr(&w, "leader", laddr ? laddr : "");
		conn_send_mpw(c, &w);
		mpw_free(&w);
		return;
	}
	char err[ERR_LEN];
	struct node *n = xcalloc(1, sizeof *n);
	struct sockaddr_in sa;
	int rc = schema_decode(&node_schema, n, mp_get(req, "node"), err);
	if (!rc && (!n->id || !n->name || !n->addr))
		rc = errf(err, E_INVAL, "join: id, name and addr required");
	if (!rc && parse_ipport(n->addr, &sa, err))
		rc = E_INVAL;
	struct node *same = rc ? NULL : store_node_by_name(&d->store, n->name);
	if (!rc && same && same->id != n->id)
		rc = errf(err, E_EXISTS, "join: the name %s is already used by node %016llx; pick another --name", n->name, (unsigned long long)same->id);
	if (rc) {
		rpc_reply_err(c, id, rc, err);
		schema_free(&node_schema, n);
		free(n);
		return;
	}
	free(n->state);
	n->state = xstrdup("ready");
	free(n->availability);
	n->availability = xstrdup("active");
	n->joined_at = clock_wall(d->clock);
	struct member_reply r = {join_replied, join_waiting, pending_new(d, c, id)};
	member_join(&d->leader, n, &r); /* queued behind other membership changes */
}

struct rm_ctx {
	struct pending *p;
	uint64_t node;
};

static void rm_committed(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct rm_ctx *r = data;
	if (r->p->conn) {
		if (rc && rc != E_NOTFOUND)
			rpc_reply_err(r->p->conn, r->p->req_id, rc, res->msg);
		else
			reply_ok(r->p->conn, r->p->req_id);
	}
	if (!rc)
		log_info(d->ident.name, "node %016llx removed from the cluster", (unsigned long long)r->node);
	pending_free(r->p);
	free(r);
	(void)d;
}

static void rm_commit(struct daemon *d, struct rm_ctx *r)
{
	char err[ERR_LEN];
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 1);
	mpw_ku64(&w, "id", r->node);
	if (daemon_submit(d, "node.rm", w.sb.data, w.sb.size, rm_committed, r, err)) {
		struct apply_res res = {.rc = E_NOLEADER};
		snprintf(res.msg, sizeof res.msg, "%s", err);
		rm_committed(d, r, E_NOLEADER, &res);
	}
	mpw_free(&w);
}

static void rm_removed(void *data, int status, const char *msg)
{
	struct rm_ctx *r = data;
	struct daemon *d = r->p->d;
	d->leader.change_inflight = false;
	if (status) {
		struct apply_res res = {.rc = E_FAIL};
		snprintf(res.msg, sizeof res.msg, "removing the node from the raft configuration failed: %s", msg ? msg : "");
		rm_committed(d, r, E_FAIL, &res);
	} else
		rm_commit(d, r);
	member_kick(&d->leader); /* joins and role changes waited for the slot */
}

/* Removes a node from the raft configuration, then from the state (leader only). */
static void remove_node(struct daemon *d, struct conn *c, uint64_t id, uint64_t node)
{
	char err[ERR_LEN];
	struct rm_ctx *r = xcalloc(1, sizeof *r);
	r->p = pending_new(d, c, id);
	r->node = node;
	if (cons_role_of(&d->cons, node) == ROLE_NONE) {
		rm_commit(d, r);
		return;
	}
	if (d->leader.change_inflight) {
		rpc_reply_err(c, id, E_BUSY, "another membership change is in progress; retry");
		pending_free(r->p);
		free(r);
		return;
	}
	d->leader.change_inflight = true;
	if (cons_remove(&d->cons, node, rm_removed, r, err)) {
		d->leader.change_inflight = false;
		rpc_reply_err(c, id, E_BUSY, err);
		pending_free(r->p);
		free(r);
	}
}

static void op_node_rm(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	char ref[128];
	bool force = false;
	if (mp_get_strbuf(req, "node", ref, sizeof ref)) {
		rpc_reply_err(c, id, E_INVAL, "node rm: node name or id required");
		return;
	}
	mp_get_bool(req, "force", &force);
	struct node *n = store_node_find(&d->store, ref);
	if (!n) {
		rpc_reply_err(c, id, E_NOTFOUND, "node rm: no such node (see orch nodes)");
		return;
	}
	if (n->id == d->ident.id) {
		rpc_reply_err(c, id, E_INVAL, "node rm: that is the leader; run orch leave on it instead");
		return;
	}
	if (leader_alive(&d->leader, n->id) && !force) {
		char m[ERR_LEN];
		snprintf(m, sizeof m, "node rm: node %s is up; run orch leave on it, or use --force", n->name);
		rpc_reply_err(c, id, E_INVAL, m); /* not retried: waiting will not change it */
		return;
	}
	remove_node(d, c, id, n->id);
}

static void op_node_leave(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	uint64_t node = 0;
	if (mp_get_u64(req, "node_id", &node) || !table_get_u64(&d->store.nodes, node)) {
		rpc_reply_err(c, id, E_NOTFOUND, "leave: unknown node");
		return;
	}
	if (node == d->ident.id) {
		rpc_reply_err(c, id, E_BUSY, "leave: the leader cannot remove itself; transfer leadership first");
		return;
	}
	remove_node(d, c, id, node);
}

/* ---- leave (local) ----------------------------------------------------------------------- */

static void leave_done(struct pending *p, const msgpack_object *resp)
{
	struct daemon *d = p->d;
	int64_t rc = E_NOLEADER;
	if (resp)
		mp_get_i64(resp, "rc", &rc);
	rpc_relay(p, resp);
	if (resp && rc == 0) {
		d->leaving = true;
		daemon_stop(d, 0);
	}
}

static void transferred(void *data, int status, const char *msg)
{
	(void)data;
	(void)status;
	(void)msg;
}

static void op_leave(struct daemon *d, struct conn *c, uint64_t id)
{
	char err[ERR_LEN];
	if (cons_nservers(&d->cons) <= 1) {
		rpc_reply_err(c, id, E_INVAL, "leave: this is the only node of the cluster; stop it instead (and remove its data directory)");
		return;
	}
	if (cons_is_leader(&d->cons)) {
		/* Hand leadership over first; the CLI retries until another node leads. */
		if (cons_transfer(&d->cons, 0, transferred, NULL, err))
			rpc_reply_err(c, id, E_BUSY, err);
		else
			rpc_reply_err(c, id, E_NOLEADER, "handing leadership over; retry");
		return;
	}
	struct pending *p = pending_new(d, c, id);
	p->on_reply = leave_done;
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 2);
	mpw_kstr(&w, "op", "node.leave");
	mpw_ku64(&w, "node_id", d->ident.id);
	if (link_forward_raw(d, p, w.sb.data, w.sb.size, err)) {
		rpc_reply_err(c, id, E_NOLEADER, err);
		pending_free(p);
	}
	mpw_free(&w);
}

/* ---- heartbeat ---------------------------------------------------------------------------- */

static void op_hb(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req)
{
	uint64_t node = 0;
	if (mp_get_u64(req, "node_id", &node)) {
		rpc_reply_err(c, id, E_INVAL, "hb: node_id required");
		return;
	}
	if (!cons_is_leader(&d->cons)) {
		rpc_reply_err(c, id, E_NOLEADER, "not the leader");
		return;
	}
	char err[ERR_LEN];
	int rc = leader_heartbeat(&d->leader, node, err);
	if (rc) {
		rpc_reply_err(c, id, rc, err);
		return;
	}
	const msgpack_object *st = mp_get(req, "stats");
	if (st && cstats_put_msg(&d->cluster_stats, node, st, clock_now(d->clock), err))
		TRACE("metrics", c->peer, "heartbeat stats of %016llx ignored: %s", (unsigned long long)node, err);
	enum cons_role role = cons_role_of(&d->cons, node);
	if (role == ROLE_VOTER || role == ROLE_STANDBY) {
		reply_ok(c, id);
		return;
	}
	/* a spare hears nothing from raft: the voters are whom it asks who leads once this
	 * leader is gone (node/link.c) */
	unsigned nv = 0, n = cons_nservers(&d->cons);
	for (unsigned i = 0; i < n; i++) {
		raft_id sid;
		const char *addr;
		cons_server(&d->cons, i, &sid, &addr, &role);
		nv += role == ROLE_VOTER;
	}
	struct mpw w;
	mpw_init(&w);
	rpc_reply_begin(&w, id, 0, 1);
	mpw_str(&w, "voters");
	mpw_arr(&w, nv);
	for (unsigned i = 0; i < n; i++) {
		raft_id sid;
		const char *addr;
		cons_server(&d->cons, i, &sid, &addr, &role);
		if (role == ROLE_VOTER)
			mpw_str(&w, addr);
	}
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

void rpc_dispatch(struct daemon *d, struct conn *c, const msgpack_object *req, bool local)
{
	uint64_t id = 0;
	mp_get_u64(req, "id", &id);
	const msgpack_object *op = mp_get(req, "op");
	if (!mp_is_str(op)) {
		rpc_reply_err(c, id, E_INVAL, "request without op");
		return;
	}
	TRACE("rpc", c->peer, "op %.*s id %llu", (int)op->via.str.size, op->via.str.ptr, (unsigned long long)id);
	if (d->stopping) {
		rpc_reply_err(c, id, E_BUSY, "node is stopping");
		return;
	}
	if (mp_str_eq(op, "ping")) {
		struct mpw w;
		mpw_init(&w);
		rpc_reply_begin(&w, id, 0, 1);
		mpw_kstr(&w, "version", ORCH_VERSION);
		conn_send_mpw(c, &w);
		mpw_free(&w);
	} else if (mp_str_eq(op, "status"))
		op_status(d, c, id);
	else if (mp_str_eq(op, "nodes"))
		op_nodes(d, c, id);
	else if (mp_str_eq(op, "kv.get"))
		op_kv_get(d, c, id, req);
	else if (mp_str_eq(op, "kv.set"))
		op_kv_set(d, c, id, req);
	else if (mp_str_eq(op, "node.update"))
		op_node_update(d, c, id, req);
	else if (mp_str_eq(op, "hb"))
		op_hb(d, c, id, req);
	else if (mp_str_eq(op, "join") && !local)
		op_join(d, c, id, req);
	else if (mp_str_eq(op, "leave") && local)
		op_leave(d, c, id);
	else if (mp_str_eq(op, "apply"))
		op_apply(d, c, id, req);
	else if (mp_str_eq(op, "node.rm")) {
		if (!forward_if_follower(d, c, id, req))
			op_node_rm(d, c, id, req);
	} else if (mp_str_eq(op, "node.leave")) {
		if (!forward_if_follower(d, c, id, req))
			op_node_leave(d, c, id, req);
	} else if (mp_str_eq(op, "events")) {
		metrics_op_events(&d->store, c, id, req);
	} else if (mp_str_eq(op, "top")) {
		if (!forward_if_follower(d, c, id, req))
			metrics_op_top(&d->stats, &d->cluster_stats, clock_now(d->clock), c, id);
	} else if (mp_str_eq(op, "whois") && !local) {
		/* a node that does not know the leader (a spare gets nothing from it, a follower
		 * may not have heard yet) asks who leads, and whether it is still a member */
		uint64_t node = 0;
		raft_id lid;
		const char *laddr;
		mp_get_u64(req, "node_id", &node);
		if (cons_leader(&d->cons, &lid, &laddr))
			rpc_reply_err(c, id, E_NOLEADER, "no leader known here either");
		else {
			struct mpw w;
			mpw_init(&w);
			rpc_reply_begin(&w, id, 0, 3);
			mpw_kbool(&w, "member", cons_role_of(&d->cons, node) != ROLE_NONE || table_get_u64(&d->store.nodes, node));
			mpw_kstr(&w, "leader", laddr);
			mpw_ku64(&w, "leader_id", lid);
			conn_send_mpw(c, &w);
			mpw_free(&w);
		}
	} else if (mp_str_eq(op, "watch") && !local) {
		uint64_t node = 0;
		if (mp_get_u64(req, "node_id", &node) || !cons_is_leader(&d->cons))
			rpc_reply_err(c, id, E_NOLEADER, "watch: not the leader");
		else
			watch_add(d, c, id, node);
	} else if (rpc_work_dispatch(d, c, op, id, req, local)) {
		/* handled */
	} else {
		char m[128];
		snprintf(m, sizeof m, "unknown op %.*s", (int)(op->via.str.size > 40 ? 40 : op->via.str.size), op->via.str.ptr);
		rpc_reply_err(c, id, E_UNSUPP, m);
	}
}

/* ---- plain HTTP ------------------------------------------------------------------------------ */

void rpc_http(struct daemon *d, struct conn *c, const char *method, const char *path)
{
	struct buf b = {0};
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
	buf_printf(&b, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		   status, ctype, body.len);
	if (strcmp(method, "HEAD"))
		buf_append(&b, body.data, body.len);
	conn_write_raw(c, b.data, b.len);
	conn_close_after_write(c);
	buf_free(&b);
	buf_free(&body);
}
