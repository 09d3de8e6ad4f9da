/* Requests about the cluster and its members (net/proto.h): status and node listings,
 * the key/value settings, node updates, joins, leaves and removals, heartbeats, the
 * assignment watch, who leads, entries built by other nodes, and the metrics views.
 * Reads are answered from this node's replica; writes are commands through raft. */
#include "node/daemon.h"
#include "console/console.h"
#include "pki/pki.h"
#include "node/carot.h"
#include "node/creds.h"
#include <openssl/crypto.h>
#include "node/autolock.h"
#include "secret/datakey.h"
#include "metrics/cluster_stats.h"
#include "metrics/metrics.h"
#include "node/member.h"
#include "node/uplink.h"
#include "net/conn.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reads ------------------------------------------------------------------------------ */

void rpc_ping(struct daemon *d, struct conn *c, const struct req_ping *a)
{
	(void)d;
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_kstr(&w, "version", ORCH_VERSION);
	rpc_reply_send(c, &w);
}

static const char *node_name_of(struct daemon *d, uint64_t id)
{
	struct node *n = table_get_u64(&d->store.nodes, id);
	return n && n->name ? n->name : "";
}

void rpc_status(struct daemon *d, struct conn *c, const struct req_status *a)
{
	struct mpw w;
	raft_id lid;
	const char *laddr;
	cons_leader(&d->cons, &lid, &laddr);
	/* a worker is a raft spare: raft tells it nothing, its link knows the leader */
	uint64_t wl;
	if (d->worker) {
		bool known = link_leader(d, &wl, &laddr);
		lid = known ? wl : 0;
		laddr = known ? laddr : NULL;
	}
	char hash[65], hid[17], lhid[17];
	store_hash(&d->store, hash);
	snprintf(hid, sizeof hid, "%016llx", (unsigned long long)d->ident.id);
	snprintf(lhid, sizeof lhid, "%016llx", (unsigned long long)lid);
	char cid[17];
	token_cluster_hex(d->ident.cluster_id, cid);
	rpc_reply_begin(&w, a->id, 0);
	mpw_kstr(&w, "cluster", cid);
	mpw_kstr(&w, "node_id", hid);
	mpw_kstr(&w, "name", d->ident.name);
	mpw_kstr(&w, "addr", d->ident.advertise);
	mpw_kstr(&w, "console_listen", console_addr(d->console));
	mpw_kstr(&w, "console_role", peer_role_name(console_plain_role(d)));
	mpw_kstr(&w, "role", d->worker ? "worker" : cons_role_name(cons_role_of(&d->cons, d->ident.id)));
	mpw_kstr(&w, "kind", d->worker ? "worker" : "manager");
	mpw_kstr(&w, "raft_state", cons_state_name(&d->cons));
	mpw_kstr(&w, "leader_id", lid ? lhid : "");
	mpw_kstr(&w, "leader_addr", laddr ? laddr : "");
	mpw_kstr(&w, "leader_name", lid ? node_name_of(d, lid) : "");
	if (cons_is_leader(&d->cons)) { /* the role manager's word (node/leader.h) */
		mpw_ku64(&w, "voters_wanted", d->leader.voters_wanted);
		mpw_ku64(&w, "voter_shortage", d->leader.voter_shortage);
	}
	mpw_ku64(&w, "term", cons_term(&d->cons));
	mpw_ku64(&w, "commit_index", cons_commit_index(&d->cons));
	mpw_ku64(&w, "applied_index", cons_applied_index(&d->cons));
	mpw_ku64(&w, "last_index", cons_last_index(&d->cons));
	mpw_ku64(&w, "revision", d->store.revision);
	mpw_kstr(&w, "state_hash", hash);
	mpw_ku64(&w, "nodes", d->store.nodes.n);
	mpw_kstr(&w, "version", ORCH_VERSION);
	mpw_ku64(&w, "proto", PROTO_VERSION);
	if (cons_halted(&d->cons)) { /* an entry of a newer orch (raft/consensus.h) */
		mpw_kstr(&w, "halted", cons_halted(&d->cons));
		mpw_ku64(&w, "halted_at", d->cons.halted_at);
	}
	if (d->disk.looked) { /* this node's own look (node/diskwatch.h) */
		mpw_ku64(&w, "disk_free", d->disk.free);
		mpw_ku64(&w, "disk_floor", d->disk.floor ? d->disk.floor : DISKWATCH_FLOOR_DEFAULT);
		mpw_kbool(&w, "disk_deaf", d->disk.deaf); /* not hearing the leader: its state is stale */
	}
	uint32_t nalarm = 0;
	TABLE_FOREACH(&d->store.nodes, const struct node, n)
		nalarm += n->disk_alarm_at != 0;
	mpw_key(&w, "disk_alarms"); /* the replicated alarms: every node's writes wait on them */
	mpw_arr(&w, nalarm);
	TABLE_FOREACH(&d->store.nodes, const struct node, n) {
		if (!n->disk_alarm_at)
			continue;
		mpw_map_begin(&w);
		mpw_kstr(&w, "name", n->name);
		mpw_ku64(&w, "since", n->disk_alarm_at);
		mpw_ku64(&w, "free", n->disk_free);
		mpw_ku64(&w, "floor", n->disk_floor);
		mpw_kstr(&w, "dir", n->disk_dir ? n->disk_dir : "");
		char msg[ERR_LEN];
		diskwatch_alarm_text(n, msg, sizeof msg);
		mpw_kstr(&w, "message", msg);
		mpw_map_end(&w);
	}
	rpc_reply_send(c, &w);
}

void rpc_nodes(struct daemon *d, struct conn *c, const struct req_nodes *a)
{
	struct mpw w;
	raft_id lid;
	const char *laddr;
	cons_leader(&d->cons, &lid, &laddr);
	bool leader = cons_is_leader(&d->cons);
	rpc_reply_begin(&w, a->id, 0);
	size_t on_new, total;
	if (carot_progress(&d->store, &on_new, &total)) {
		mpw_key(&w, "ca_rotation");
		mpw_map_begin(&w);
		mpw_ku64(&w, "on_new", on_new);
		mpw_ku64(&w, "total", total);
		mpw_map_end(&w);
	}
	mpw_key(&w, "nodes");
	mpw_arr(&w, (uint32_t)d->store.nodes.n);
	TABLE_FOREACH(&d->store.nodes, struct node, n) {
		char hid[17];
		snprintf(hid, sizeof hid, "%016llx", (unsigned long long)n->id);
		mpw_map_begin(&w);
		mpw_kstr(&w, "id", hid);
		mpw_kstr(&w, "name", n->name);
		mpw_kstr(&w, "addr", n->addr);
		mpw_kstr(&w, "role", cons_role_name(cons_role_of(&d->cons, n->id)));
		mpw_kstr(&w, "kind", n->worker ? "worker" : "manager");
		mpw_kbool(&w, "leader", n->id == lid);
		mpw_kbool(&w, "self", n->id == (a->self ? a->self : d->ident.id));
		mpw_kstr(&w, "state", lifecycle_name(&lifecycle_node, (int)n->state));
		mpw_kstr(&w, "availability", lifecycle_name(&lifecycle_avail, (int)n->availability));
		mpw_ku64(&w, "cpus_milli", n->cpus_milli);
		mpw_ku64(&w, "memory", n->memory);
		mpw_kstr(&w, "runtime", n->runtime ? n->runtime : "");
		mpw_kstr(&w, "allow_bind", n->binds ? n->binds : ""); /* its --allow-bind prefixes, a line each */
		mpw_kstr(&w, "security", n->security ? n->security : ""); /* node/nodesec.h, a line each */
		mpw_ku64(&w, "cert_expires", n->cert_expires); /* node/renew.h */
		mpw_kstr(&w, "cert_ca", n->cert_ca ? n->cert_ca : "");
		mpw_key(&w, "labels");
		labels_encode(&n->labels, &w);
		/* its disk alarm (node/diskwatch.h): since 0 when none; free as last reported */
		mpw_key(&w, "disk");
		mpw_map_begin(&w);
		mpw_kbool(&w, "alarm", n->disk_alarm_at != 0);
		mpw_ku64(&w, "since", n->disk_alarm_at);
		mpw_ku64(&w, "free", n->disk_free);
		mpw_ku64(&w, "floor", n->disk_floor);
		mpw_map_end(&w);
		/* Reachability is only known to the leader (heartbeats are not replicated). */
		mpw_key(&w, "reachable");
		if (leader)
			mpw_bool(&w, leader_alive(&d->leader, n->id));
		else
			mpw_nil(&w);
		mpw_map_end(&w);
	}
	rpc_reply_send(c, &w);
}

void rpc_kv_get(struct daemon *d, struct conn *c, const struct req_kv_get *a)
{
	struct kv *kv = table_get_str(&d->store.kv, a->key);
	if (!kv) {
		rpc_reply_err(c, a->id, E_NOTFOUND, "no such key");
		return;
	}
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_kstr(&w, "value", kv->value);
	mpw_ku64(&w, "rev", kv->rev);
	rpc_reply_send(c, &w);
}

/* a node that does not know the leader (a spare gets nothing from it, a follower may not
 * have heard yet) asks who leads, and whether it is still a member */
void rpc_whois(struct daemon *d, struct conn *c, const struct req_whois *a)
{
	uint64_t lid;
	const char *laddr;
	bool member;
	if (uplink_whois_answer(&d->cons, &d->store, a->node_id, &lid, &laddr, &member)) {
		rpc_reply_err(c, a->id, E_NOLEADER, "no leader known here either");
		return;
	}
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_kbool(&w, "member", member);
	mpw_kstr(&w, "leader", laddr);
	mpw_ku64(&w, "leader_id", lid);
	rpc_reply_send(c, &w);
}

void rpc_events(struct daemon *d, struct conn *c, const struct req_events *a)
{
	metrics_op_events(&d->store, c, a->id, a->since, a->limit ? a->limit : EVENTS_MAX);
}

void rpc_top(struct daemon *d, struct conn *c, const struct req_top *a)
{
	metrics_op_top(&d->stats, &d->cluster_stats, clock_now(d->clock), c, a->id);
}

/* ---- writes ------------------------------------------------------------------------------ */

static void applied_reply(void *data, int status, const struct apply_res *res)
{
	struct pending *p = data;
	if (p->conn) {
		int rc = status ? status : res->rc;
		struct mpw w;
		char hid[17];
		snprintf(hid, sizeof hid, "%016llx", (unsigned long long)res->id);
		rpc_reply_begin(&w, p->req_id, rc);
		mpw_kstr(&w, "err", res->msg);
		mpw_kstr(&w, "obj", hid);
		rpc_reply_send(p->conn, &w);
	}
	pending_free(p);
}

/* A command built by another node, applied as is (leader only). The entry's request
 * identity is taken only from the node it names: the connection must be that node's own
 * link (its id claimed at the handshake, net/auth.h says how strong that is) and the node
 * a member. Not relayed by followers: a relay would have to vouch for an origin it is
 * not; the sender retries once it knows the leader. */
void rpc_apply(struct daemon *d, struct conn *c, const struct req_apply *a)
{
	char err[ERR_LEN];
	if (a->entry.n % 8 || a->entry.n > (1u << 24)) {
		rpc_reply_err(c, a->id, E_INVAL, "apply: entry must be binary, a multiple of 8 bytes");
		return;
	}
	uint64_t peer = conn_peer_node(c);
	struct peer who;
	conn_peer(c, &who);
	const struct node *pn = table_get_u64(&d->store.nodes, peer);
	bool worker = (who.kind == PEER_NODE && !who.manager) || (pn && pn->worker);
	int rc = cmd_check_origin(a->entry.p, a->entry.n, peer, worker, err);
	if (!rc && !table_get_u64(&d->store.nodes, peer) && cons_role_of(&d->cons, peer) == ROLE_NONE)
		rc = errf(err, E_AUTH, "apply: node %016llx is not a member of this cluster", (unsigned long long)peer);
	if (rc) {
		if (rc == E_AUTH)
			log_warn(d->ident.name, d->clock, "refused an entry from %s: %s", c->peer, err);
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	if ((rc = diskwatch_admit(d, a->entry.p, a->entry.n, err))) {
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	struct pending *p = pending_new(d, c, a->id);
	rc = cons_apply(&d->cons, a->entry.p, a->entry.n, applied_reply, p, err);
	if (rc) {
		rpc_reply_err(c, a->id, rc, err);
		pending_free(p);
	}
}

static void submitted_reply(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)d;
	applied_reply(data, rc, res);
}

void rpc_kv_set(struct daemon *d, struct conn *c, const struct req_kv_set *a)
{
	struct cmd_kv_set b = {.key = a->key, .value = a->value};
	rpc_submit(d, c, a->id, CMD_KV_SET, &b, submitted_reply);
}

void rpc_node_update(struct daemon *d, struct conn *c, const struct req_node_update *a)
{
	struct node *n = store_node_find(&d->store, a->node);
	if (!n) {
		rpc_reply_err(c, a->id, E_NOTFOUND, "no such node (see orch nodes)");
		return;
	}
	struct cmd_node_update b = {.id = n->id, .availability = a->availability, .labels = a->labels};
	rpc_submit(d, c, a->id, CMD_NODE_UPDATE, &b, submitted_reply);
}

/* ---- membership (leader) ----------------------------------------------------------------- */

/* A join in progress: what the reply carries once the node's record is committed. */
struct join_ctx {
	struct token tok; /* the joiner's secret: wraps the data key for it */
	bool worker;
	struct buf cert;
};

static void join_ctx_free(struct join_ctx *j)
{
	OPENSSL_cleanse(&j->tok, sizeof j->tok);
	buf_free(&j->cert);
	free(j);
}

/* A join's end (node/member.h): the reply the orch join client waits for. */
static void join_replied(void *data, int rc, const char *msg, uint64_t commit_index)
{
	struct pending *p = data;
	struct daemon *d = p->d;
	struct join_ctx *j = p->ctx;
	if (p->conn) {
		if (rc)
			rpc_reply_err(p->conn, p->req_id, rc, msg);
		else {
			char cid[17];
			token_cluster_hex(d->ident.cluster_id, cid);
			struct mpw w;
			rpc_reply_begin(&w, p->req_id, 0);
			mpw_kstr(&w, "cluster", cid);
			mpw_kstr(&w, "leader", d->ident.advertise);
			mpw_ku64(&w, "commit_index", commit_index);
			mpw_kstr(&w, "cert", (const char *)j->cert.data);
			mpw_kstr(&w, "ca", d->store.cluster.ca_certs ? d->store.cluster.ca_certs : "");
			mpw_kbool(&w, "worker", j->worker);
			/* the data key, wrapped under the joiner's token secret (secret/datakey.h),
			 * inside TLS, to a joiner that may become a voter (it will hold the log); a
			 * worker never does, so it gets none: the leader opens what its tasks need
			 * (node/feed.h) */
			struct datakey k = {{0}};
			struct buf wk = {0};
			char e2[ERR_LEN];
			if (!j->worker && !datakey_load(d->data_dir, &k, e2) && !datakey_wrap(&k, &j->tok, &wk, e2)) {
				mpw_key(&w, "datakey");
				mpw_bin(&w, wk.data, wk.len);
			}
			datakey_wipe(&k);
			buf_free(&wk);
			if (!j->worker) /* the unlock key opens the data key: a worker has neither */
				autolock_join_reply(d, &w, &j->tok);
			rpc_reply_send(p->conn, &w);
		}
	}
	join_ctx_free(j);
	pending_free(p);
}

static bool join_waiting(void *data)
{
	const struct pending *p = data;
	return p->conn != NULL;
}

void rpc_join(struct daemon *d, struct conn *c, const struct req_join *a)
{
	char err[ERR_LEN];
	struct node *n = xcalloc(1, sizeof *n);
	struct sockaddr_in sa;
	struct join_ctx *j = xcalloc(1, sizeof *j);
	int kind = -1;
	int rc = strlen(a->secret) != 2 * SECRET_LEN || hex_decode(a->secret, j->tok.secret, SECRET_LEN)
			 ? errf(err, E_INVAL, "join: the token's secret must be %d hex digits", 2 * SECRET_LEN)
			 : 0;
	if (!rc && (kind = creds_token_kind(&d->store, j->tok.secret)) < 0) {
		log_warn(d->ident.name, d->clock, "refused a join from %s: unknown token", c->peer);
		rc = errf(err, E_AUTH, "join: token refused (rotated, or of another cluster); get the current one with orch token show");
	}
	if (!rc)
		rc = schema_decode(&node_schema, n, a->node.obj, err);
	if (!rc && (!n->id || !n->name || !n->addr))
		rc = errf(err, E_INVAL, "join: id, name and addr required");
	if (!rc && parse_ipport(n->addr, &sa, err))
		rc = E_INVAL;
	/* the same join again (its answer was lost to a change of leader) is served again;
	 * anything else may not take a member's id */
	const struct node *prev = rc ? NULL : table_get_u64(&d->store.nodes, n->id);
	if (prev && (!prev->name || strcmp(prev->name, n->name) || !prev->addr || strcmp(prev->addr, n->addr) ||
		     prev->worker != (kind == 0 || a->worker)))
		rc = errf(err, E_EXISTS, "join: node id %016llx is already a member", (unsigned long long)n->id);
	struct node *same = rc ? NULL : store_node_by_name(&d->store, n->name);
	if (!rc && same && same->id != n->id)
		rc = errf(err, E_EXISTS, "join: the name %s is already used by node %016llx; pick another --name", n->name, (unsigned long long)same->id);
	if (!rc) {
		j->worker = kind == 0 || a->worker;
		memcpy(j->tok.cluster_id, d->ident.cluster_id, CLUSTER_ID_LEN);
		rc = creds_sign_node(&d->store, d->data_dir, a->csr, n->id, !j->worker, &j->cert, err);
	}
	/* after the checks of who asks: an unproved caller learns nothing of the version */
	if (!rc && a->proto < PROTO_VERSION) {
		char ver[32] = "";
		const msgpack_object *nv = mp_get(a->node.obj, "version");
		if (nv && mp_is_str(nv))
			snprintf(ver, sizeof ver, "%.*s", (int)(nv->via.str.size > 31 ? 31 : nv->via.str.size), nv->via.str.ptr);
		log_warn(d->ident.name, d->clock, "refused a join from %s: orch %s (protocol %llu) is older than this leader's", c->peer,
			 ver[0] ? ver : "?", (unsigned long long)a->proto);
		rc = errf(err, E_UNSUPP, "join: this cluster's leader runs orch %s (protocol %d); the joiner's orch %s (protocol %llu) "
			  "is older: join with a binary at least as new (orch(8) UPGRADES)", ORCH_VERSION, PROTO_VERSION,
			  ver[0] ? ver : "?", (unsigned long long)a->proto);
	}
	if (!rc) { /* during a CA rotation the cross-signed new CA follows (node/carot.h) */
		char *chain = creds_chain(&d->store, (char *)j->cert.data);
		j->cert.len = 0;
		buf_printf(&j->cert, "%s", chain);
		free(chain);
	}
	if (rc) {
		rpc_reply_err(c, a->id, rc, err);
		schema_free(&node_schema, n);
		free(n);
		join_ctx_free(j);
		return;
	}
	n->state = NS_READY;
	n->availability = NA_ACTIVE;
	n->joined_at = clock_wall(d->clock);
	/* what the joiner may be is the leader's word (its token, or its asking to be a
	 * worker), not its record's */
	n->worker = j->worker;
	int64_t na = 0;
	char fp[PKI_FP_HEX];
	if (!pki_not_after((char *)j->cert.data, &na, err) && !pki_fingerprint(d->store.cluster.ca_certs, fp, err)) {
		n->cert_expires = (uint64_t)na; /* node/renew.h */
		n->cert_ca = xstrdup(fp);
	}
	struct pending *p = pending_new(d, c, a->id);
	p->ctx = j;
	struct member_reply r = {join_replied, join_waiting, p};
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
			rpc_reply_ok(r->p->conn, r->p->req_id);
	}
	if (!rc)
		log_info(d->ident.name, d->clock, "node %016llx removed from the cluster", (unsigned long long)r->node);
	pending_free(r->p);
	free(r);
}

static void rm_commit(struct daemon *d, struct rm_ctx *r)
{
	char err[ERR_LEN];
	struct cmd_node_rm b = {.id = r->node};
	struct mpw w;
	mpw_init(&w);
	cmd_body(&w, CMD_NODE_RM, &b);
	if (daemon_submit(d, CMD_NODE_RM, w.sb.data, w.sb.size, rm_committed, r, err)) {
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

void rpc_node_rm(struct daemon *d, struct conn *c, const struct req_node_rm *a)
{
	struct node *n = store_node_find(&d->store, a->node);
	if (!n) {
		rpc_reply_err(c, a->id, E_NOTFOUND, "node rm: no such node (see orch nodes)");
		return;
	}
	if (n->id == d->ident.id) {
		rpc_reply_err(c, a->id, E_INVAL, "node rm: that is the leader; run orch leave on it instead");
		return;
	}
	if (leader_alive(&d->leader, n->id) && !a->force) {
		char m[ERR_LEN];
		snprintf(m, sizeof m, "node rm: node %s is up; run orch leave on it, or use --force", n->name);
		rpc_reply_err(c, a->id, E_INVAL, m); /* not retried: waiting will not change it */
		return;
	}
	remove_node(d, c, a->id, n->id);
}

void rpc_node_leave(struct daemon *d, struct conn *c, const struct req_node_leave *a)
{
	if (!table_get_u64(&d->store.nodes, a->node_id)) {
		rpc_reply_err(c, a->id, E_NOTFOUND, "leave: unknown node");
		return;
	}
	if (a->node_id == d->ident.id) {
		rpc_reply_err(c, a->id, E_BUSY, "leave: the leader cannot remove itself; transfer leadership first");
		return;
	}
	remove_node(d, c, a->id, a->node_id);
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

void rpc_leave(struct daemon *d, struct conn *c, const struct req_leave *a)
{
	char err[ERR_LEN];
	if (!d->worker && cons_nservers(&d->cons) <= 1) { /* a worker's raft knows no servers */
		rpc_reply_err(c, a->id, E_INVAL, "leave: this is the only node of the cluster; stop it instead (and remove its data directory)");
		return;
	}
	if (cons_is_leader(&d->cons)) {
		/* Hand leadership over first; the CLI retries until another node leads. */
		if (cons_transfer(&d->cons, 0, transferred, NULL, err))
			rpc_reply_err(c, a->id, E_BUSY, err);
		else
			rpc_reply_err(c, a->id, E_NOLEADER, "handing leadership over; retry");
		return;
	}
	struct pending *p = pending_new(d, c, a->id);
	p->on_reply = leave_done;
	struct req_node_leave q = {.node_id = d->ident.id};
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, OP_NODE_LEAVE, 0, &q);
	if (link_forward_raw(d, p, w.sb.data, w.sb.size, err)) {
		rpc_reply_err(c, a->id, E_NOLEADER, err);
		pending_free(p);
	}
	mpw_free(&w);
}

/* ---- from the other nodes (leader) -------------------------------------------------------- */

void rpc_hb(struct daemon *d, struct conn *c, const struct req_hb *a)
{
	char err[ERR_LEN];
	int rc = leader_heartbeat(&d->leader, a->node_id, a->applied, err);
	if (rc) {
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	if (a->stats.obj && cstats_put_msg(&d->cluster_stats, a->node_id, a->stats.obj, clock_now(d->clock), err))
		TRACE("metrics", c->peer, "heartbeat stats of %016llx ignored: %s", (unsigned long long)a->node_id, err);
	/* a spare hears nothing from raft: the voters are whom it asks who leads once this
	 * leader is gone (node/uplink.h) */
	const char *voters[UPLINK_VOTERS];
	size_t nv = uplink_voters_for(&d->cons, a->node_id, voters);
	if (!nv) {
		rpc_reply_ok(c, a->id);
		return;
	}
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_key(&w, "voters");
	mpw_arr(&w, (uint32_t)nv);
	for (size_t i = 0; i < nv; i++)
		mpw_str(&w, voters[i]);
	rpc_reply_send(c, &w);
}

void rpc_watch(struct daemon *d, struct conn *c, const struct req_watch *a)
{
	watch_add(d, c, a->id, a->node_id);
}
