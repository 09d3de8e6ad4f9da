#include "node/daemon.h"
#include "node/rywait.h"
#include "node/carot.h"
#include "net/httpd.h"
#include "console/console.h"
#include "node/creds.h"
#include "node/worker.h"
#include "secret/datakey.h"
#include "node/member.h"
#include "node/autolock.h"
#include "agent/agent.h"
#include "agent/backend.h"
#include "metrics/scaling.h"
#include "traffic/mesh.h"
#include "traffic/dns.h"
#include "net/conn.h"
#include "util/layout.h"
#include "util/log.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define TICK_MS 200

/* ---- connections ------------------------------------------------------------------- */

/* The connections accepted by this node, closed when it stops. */
static void conns_add(struct daemon *d, struct conn *c)
{
	if (!c)
		return;
	if (d->nconns == d->capconns) {
		d->capconns = d->capconns ? d->capconns * 2 : 16;
		d->conns = xrealloc(d->conns, d->capconns * sizeof *d->conns);
	}
	d->conns[d->nconns++] = c;
}

static void conns_remove(struct daemon *d, struct conn *c)
{
	for (size_t i = 0; i < d->nconns; i++)
		if (d->conns[i] == c) {
			d->conns[i] = d->conns[--d->nconns];
			return;
		}
}

static void on_frame(struct conn *c, const msgpack_object *msg)
{
	struct daemon *d = c->data;
	rpc_dispatch(d, c, msg, !c->tcp);
}

static void on_conn_close(struct conn *c, const char *why)
{
	struct daemon *d = c->data;
	console_conn_gone(d->console, c);
	conns_remove(d, c);
	pending_conn_gone(d, c);
	watch_conn_gone(d, c);
	agent_conn_gone(d->agent, c);
	(void)why;
}

static void on_raft(struct conn *c, uv_stream_t *s, const uint8_t *extra, size_t extra_len)
{
	struct daemon *d = c->data;
	/* the conn stays (it relays libraft's stream through TLS) and in the list: closed
	 * when the node stops or the peer is removed */
	cons_incoming(&d->cons, c, s, extra, extra_len);
}

static void on_http(struct conn *c, const struct httpreq *rq)
{
	struct daemon *d = c->data;
	rpc_http(d, c, rq);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* A node certificate admits its holder while the node is a member: in the nodes table or
 * the raft configuration (a joiner between the two steps). A node that has not caught up
 * with any state yet (it has just joined) admits every node of the cluster: the leader
 * that replicates to it is among them. A worker holds no state: its feed lists the
 * members (daemon_members). */
static bool node_admitted(struct daemon *d, uint64_t id)
{
	if (d->worker) /* until its first feed arrives, a worker knows no better than the CA */
		return !d->members_known || id == d->ident.id ||
		       bsearch(&id, d->members, d->nmembers, sizeof id, cmp_u64) != NULL;
	return !d->store.has_cluster || table_get_u64(&d->store.nodes, id) || cons_role_of(&d->cons, id) != ROLE_NONE;
}

static bool admit(struct conn *c)
{
	struct daemon *d = c->data;
	struct peer p;
	conn_peer(c, &p);
	return p.kind != PEER_NODE || node_admitted(d, p.node_id);
}

static uint64_t reply_stamp(struct conn *c)
{
	struct peer p;
	conn_peer(c, &p);
	return rywait_stamp(c->data, &p);
}

static const struct conn_ops server_ops = {
	.reply_stamp = reply_stamp,
	.on_frame = on_frame,
	.on_close = on_conn_close,
	.on_raft = on_raft,
	.on_http = on_http,
	.admit = admit,
};

struct conn *daemon_conn_internal(struct daemon *d, const struct peer *who, conn_sink_fn sink, void *sink_arg)
{
	struct conn *c = conn_internal(d->loop, who, sink, sink_arg, &server_ops, d);
	conns_add(d, c);
	return c;
}

/* Revocation: once a node's removal is applied, its open connections (RPC, and the raft
 * streams relayed through them) are closed; admit refuses new ones. Users likewise (on
 * every tick, users=true): once a user's removal is applied here, its open connections (a
 * followed log, say) are closed; its new requests are refused (node/rpc.c). */
static void revoke_removed(struct daemon *d, bool nodes, bool users)
{
	char err[ERR_LEN], who[96];
	for (size_t i = 0; i < d->nconns;) {
		struct conn *c = d->conns[i];
		struct peer p;
		conn_peer(c, &p);
		const char *why = NULL;
		if (nodes && p.kind == PEER_NODE && !node_admitted(d, p.node_id)) {
			why = "node removed";
			snprintf(who, sizeof who, "node %016llx", (unsigned long long)p.node_id);
		} else if (users && p.kind == PEER_USER && rpc_user_current(d, &p, err)) {
			why = "user removed";
			snprintf(who, sizeof who, "user %s", p.user);
		}
		if (why) {
			log_warn(d->ident.name, d->clock, "closing the connection of removed %s (%s)", who, c->peer);
			conn_close(c, why); /* removes it from the list */
			continue;
		}
		i++;
	}
}

void daemon_members(struct daemon *d, const msgpack_object *doc)
{
	const msgpack_object *m = mp_get(doc, "members");
	if (!m || m->type != MSGPACK_OBJECT_ARRAY)
		return; /* a leader of an older version */
	uint64_t *ids = xcalloc(m->via.array.size + 1, sizeof *ids);
	size_t n = 0;
	for (uint32_t i = 0; i < m->via.array.size; i++)
		if (!mp_as_u64(&m->via.array.ptr[i], &ids[n]))
			n++;
	qsort(ids, n, sizeof *ids, cmp_u64);
	free(d->members);
	d->members = ids;
	d->nmembers = n;
	d->members_known = true;
	revoke_removed(d, true, false);
}

/* Caps on the node port: each connection costs a read buffer and a handshake costs a
 * timer and TLS key exchange work; past the caps a new connection is accepted and closed
 * at once (left in the backlog it would keep the listener busy). Connections of proved
 * nodes (RPC links and relayed raft streams, a few per member) are bounded by the
 * membership and not counted: a large cluster must not lock its own nodes out. */
#define CONNS_MAX 512
/* A new leader of a large cluster sees every member reconnect at once (a link and, for
 * voters, raft streams each: ~2 per node); 64 refused part of a 50-node cluster's
 * reconnect storm after the leader was killed (test_join_storm_50_first_node_killed) */
#define HANDSHAKES_MAX 256

static const char *conn_over_cap(const struct daemon *d)
{
	size_t tcp = 0, shaking = 0;
	for (size_t i = 0; i < d->nconns; i++) {
		struct peer p;
		conn_peer(d->conns[i], &p);
		tcp += d->conns[i]->tcp && p.kind != PEER_NODE;
		shaking += conn_in_handshake(d->conns[i]);
	}
	if (tcp >= CONNS_MAX)
		return "too many connections";
	return shaking >= HANDSHAKES_MAX ? "too many handshakes in progress" : NULL;
}

static void on_tcp_conn(uv_stream_t *srv, int status)
{
	struct daemon *d = srv->data;
	if (status || d->stopping)
		return;
	const char *over = conn_over_cap(d);
	struct conn *c = conn_accept(srv, true, &d->ident.tls, &server_ops, d);
	if (c && over) {
		uint64_t now = clock_now(d->clock);
		if (now - d->cap_warned_ms >= 10000 || !d->cap_warned_ms) { /* one line per 10 s under a flood */
			d->cap_warned_ms = now;
			log_warn(d->ident.name, d->clock, "refused a connection from %s: %s (at most %d open, %d in handshake)",
				 c->peer, over, CONNS_MAX, HANDSHAKES_MAX);
		}
		conn_close(c, over);
		return;
	}
	conns_add(d, c);
}

static void on_local_conn(uv_stream_t *srv, int status)
{
	struct daemon *d = srv->data;
	if (status || d->stopping)
		return;
	conns_add(d, conn_accept(srv, false, NULL, &server_ops, d));
}

/* ---- submit -------------------------------------------------------------------------- */

struct submit {
	struct daemon *d;
	submit_cb cb;
	void (*data_cb)(void *data, int rc, const struct apply_res *res);
	void *data;
};

static void submit_done(struct submit *s, int rc, const struct apply_res *res)
{
	if (s->cb)
		s->cb(s->d, s->data, rc, res);
	if (s->data_cb)
		s->data_cb(s->data, rc, res);
	free(s);
}

static void submit_applied(void *data, int status, const struct apply_res *res)
{
	struct submit *s = data;
	submit_done(s, status ? status : res->rc, res);
}

/* The leader's reply to a forwarded command. */
static void submit_fwd_reply(struct pending *p, const msgpack_object *resp)
{
	struct submit *s = p->ctx;
	struct apply_res res = {0};
	int64_t rc = E_NOLEADER;
	if (!resp)
		snprintf(res.msg, sizeof res.msg, "lost the connection to the leader; retry");
	else {
		mp_get_i64(resp, "rc", &rc);
		mp_get_strbuf(resp, "err", res.msg, sizeof res.msg);
		char obj[17] = "";
		if (!mp_get_strbuf(resp, "obj", obj, sizeof obj))
			res.id = strtoull(obj, NULL, 16);
	}
	res.rc = (int)rc;
	submit_done(s, res.rc, &res);
}

static int submit(struct daemon *d, enum cmd type, const void *body, size_t body_len, struct submit *s, char *err)
{
	size_t n;
	struct req_id rid = {d->ident.id, d->session, ++d->seq};
	void *entry = cmd_build(type, &rid, body, body_len, &n);
	int rc;
	if (cons_is_leader(&d->cons)) {
		rc = diskwatch_admit(d, entry, n, err);
		if (!rc)
			rc = cons_apply(&d->cons, entry, n, submit_applied, s, err);
		if (rc)
			free(s);
	} else {
		/* Forward the built entry: the leader applies it as is (same identity, so the same
		 * entry committed twice is applied once and answers the same). */
		struct pending *p = pending_new(d, NULL, 0);
		p->ctx = s;
		p->on_reply = submit_fwd_reply;
		struct req_apply q = {.entry = {entry, n}};
		struct mpw w;
		mpw_init(&w);
		proto_encode(&w, OP_APPLY, 0, &q);
		rc = link_forward_raw(d, p, w.sb.data, w.sb.size, err);
		mpw_free(&w);
		if (rc) {
			pending_free(p);
			free(s);
		}
	}
	free(entry);
	return rc;
}

int daemon_submit(struct daemon *d, enum cmd type, const void *body, size_t body_len, submit_cb cb, void *data, char *err)
{
	struct submit *s = xcalloc(1, sizeof *s);
	s->d = d;
	s->cb = cb;
	s->data = data;
	return submit(d, type, body, body_len, s, err);
}

int daemon_submit_data(struct daemon *d, enum cmd type, const void *body, size_t body_len,
		       void (*cb)(void *data, int rc, const struct apply_res *res), void *data, char *err)
{
	struct submit *s = xcalloc(1, sizeof *s);
	s->d = d;
	s->data_cb = cb;
	s->data = data;
	return submit(d, type, body, body_len, s, err);
}

/* ---- the leader controllers' host (node/leader.h) --------------------------------------- */

static int lh_submit(void *data, enum cmd type, const void *body, size_t len, leader_submit_cb cb, void *cb_data,
		     char *err)
{
	return daemon_submit_data(data, type, body, len, cb, cb_data, err);
}

static unsigned lh_nservers(void *data)
{
	struct daemon *d = data;
	return cons_nservers(&d->cons);
}

static void lh_server(void *data, unsigned i, uint64_t *id, enum cons_role *role)
{
	struct daemon *d = data;
	const char *addr;
	raft_id rid;
	cons_server(&d->cons, i, &rid, &addr, role);
	*id = rid;
}

static int lh_assign(void *data, uint64_t id, enum cons_role role, cons_change_cb cb, void *cb_data, char *err)
{
	struct daemon *d = data;
	return cons_assign(&d->cons, id, role, cb, cb_data, err);
}

static int lh_add(void *data, uint64_t id, const char *addr, cons_change_cb cb, void *cb_data, char *err)
{
	struct daemon *d = data;
	return cons_add(&d->cons, id, addr, cb, cb_data, err);
}

static int lh_barrier(void *data, cons_change_cb cb, void *cb_data, char *err)
{
	struct daemon *d = data;
	return cons_barrier(&d->cons, cb, cb_data, err);
}

static uint64_t lh_match_index(void *data, uint64_t id)
{
	struct daemon *d = data;
	return cons_match_index(&d->cons, id);
}

static void lh_reprobe(void *data, uint64_t id, uint64_t from)
{
	struct daemon *d = data;
	cons_reprobe(&d->cons, id, from);
}

static bool lh_is_leader(void *data)
{
	struct daemon *d = data;
	return !d->stopping && cons_is_leader(&d->cons);
}

static uint64_t lh_term(void *data)
{
	struct daemon *d = data;
	return cons_term(&d->cons);
}

static uint64_t lh_commit_index(void *data)
{
	struct daemon *d = data;
	return cons_commit_index(&d->cons);
}

static void lh_ready(void *data, const char *msg)
{
	daemon_ready(data, msg);
}

static void lh_autoscale(void *data)
{
	struct daemon *d = data;
	scaling_tick(&d->scaling, d->leader.leader_since);
}

/* ---- the parts' host (node/host.h) ------------------------------------------------------------- */

static int host_submit_fn(void *node, enum cmd type, const void *body, size_t len, host_submit_cb cb, void *data,
			  char *err)
{
	return daemon_submit_data(node, type, body, len, cb, data, err);
}

static bool host_stopping_fn(void *node)
{
	struct daemon *d = node;
	return d->stopping;
}

static void lh_watch_push(void *data)
{
	watch_push(data);
}

static void kick_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	if (!d->stopping)
		leader_kicked(&d->leader);
}

static void lh_kick(void *data)
{
	struct daemon *d = data;
	if (d->kick.loop && !d->stopping)
		uv_timer_start(&d->kick, kick_cb, 0, 0);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static void tick_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	if (d->stopping)
		return;
	diskwatch_tick(d);
	link_tick(d);
	renew_tick(d);
	revoke_removed(d, false, true);
	nodecfg_tick(d);
	agent_tick(d->agent);
	imagework_tick(d);
	if (d->mesh)
		mesh_sync(d->mesh);
	char gw[16];
	if (d->dns)
		dns_sync(d->dns, agent_gateway(d->agent, gw) ? gw : NULL);
	if (cons_is_leader(&d->cons)) {
		leader_tick(&d->leader);
		carot_tick(d);
	}
	autolock_tick(d);
	console_tick(d->console);
}

static void on_state(void *data)
{
	struct daemon *d = data;
	revoke_removed(d, true, true);
	link_update(d);
	if (leader_new_term(&d->leader)) {
		watch_reset_self(d);
		leader_start(&d->leader);
		leader_tick(&d->leader);
	}
	member_kick(&d->leader); /* joins queued here are refused once this node no longer leads */
}

static unsigned voters(const struct consensus *c)
{
	unsigned v = 0;
	for (unsigned i = 0; i < cons_nservers(c); i++) {
		raft_id id;
		const char *addr;
		enum cons_role role;
		cons_server(c, i, &id, &addr, &role);
		v += role == ROLE_VOTER;
	}
	return v;
}

/* A joined node is ready once it has applied what the leader had committed when it
 * accepted the join (then it knows every node and its own role), and all it has since
 * learnt to be committed (so of two joins, the one that returns later knows the other). */
static void catchup_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t now = clock_now(d->clock), applied = cons_applied_index(&d->cons);
	if (d->stopping || applied < d->opts.catch_up_index || applied < cons_commit_index(&d->cons))
		return;
	if (!d->caught_up_at) {
		d->caught_up_at = now;
		log_info(d->ident.name, d->clock, "caught up with the cluster: applied index %llu", (unsigned long long)cons_applied_index(&d->cons));
	}
	/* From 3 nodes on, the leader promotes voters right after a join: give it a moment,
	 * so the answer tells whether the cluster now survives a failure. */
	unsigned v = voters(&d->cons);
	if (v < 3 && cons_nservers(&d->cons) >= 3 && now - d->caught_up_at < 2000)
		return;
	char msg[64];
	snprintf(msg, sizeof msg, "ok %s %u", cons_role_name(cons_role_of(&d->cons, d->ident.id)), v);
	uv_timer_stop(t);
	daemon_ready(d, msg);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* ---- stopping: the node has stopped once every part, handle and job has finished ------- */

static void part_stopped(void *data)
{
	struct daemon *d = data;
	if (--d->stop_pending == 0 && d->opts.on_stopped)
		d->opts.on_stopped(d, d->opts.stopped_arg);
}

void daemon_job_done(struct daemon *d)
{
	d->jobs--;
	if (d->stopping)
		part_stopped(d);
}

static void handle_closed(uv_handle_t *h)
{
	part_stopped(h->data);
}

/* A handle of the daemon struct (its data is the daemon): closed if it was ever
 * initialised (the struct starts zeroed, libuv sets loop on init). */
static void close_handle(struct daemon *d, uv_handle_t *h)
{
	if (h && h->loop && !uv_is_closing(h)) {
		d->stop_pending++;
		uv_close(h, handle_closed);
	}
}

static void walk_close(uv_handle_t *h, void *arg);

static void cons_closed(void *data)
{
	struct daemon *d = data;
	/* the connections clients and peers opened to this node go too (the loop may be
	 * shared with other nodes: only this node's) */
	if (d->console) { /* first: its exchanges hold conns of the list below */
		d->stop_pending++;
		console_close(d->console, part_stopped, d);
		d->console = NULL;
	}
	while (d->nconns)
		conn_close(d->conns[d->nconns - 1], "node stopping");
	close_handle(d, (uv_handle_t *)&d->tcp);
	close_handle(d, (uv_handle_t *)&d->local);
	if (d->metrics) {
		d->stop_pending++;
		httpd_close(d->metrics, part_stopped, d);
		d->metrics = NULL;
	}
	close_handle(d, (uv_handle_t *)&d->tick);
	close_handle(d, (uv_handle_t *)&d->catchup);
	close_handle(d, (uv_handle_t *)&d->kick);
	rywait_drop(d);
	close_handle(d, (uv_handle_t *)&d->park_timer);
	close_handle(d, (uv_handle_t *)&d->sigint);
	close_handle(d, (uv_handle_t *)&d->sigterm);
	/* alone on its loop, whatever else is still open (raft's leftovers) goes too, so the
	 * loop ends */
	if (d->own_loop)
		uv_walk(d->loop, walk_close, NULL);
	part_stopped(d); /* the stop sequence itself */
}

/* The followers would otherwise wait for their election timeout: this leader's streams
 * end cleanly, which they do not take for a death (raft/consensus.h cons_peer_lost). */
static void handed_over(void *data, int status, const char *msg)
{
	struct daemon *d = data;
	(void)status;
	(void)msg;
	cons_close(&d->cons, cons_closed, d);
}

void daemon_stop(struct daemon *d, int code)
{
	if (d->stopping)
		return;
	d->stopping = true;
	d->exit_code = code;
	log_info(d->ident.name, d->clock, "stopping");
	/* one for the stop sequence (until cons_closed), one per part, one per worker job */
	d->stop_pending = 2 + d->jobs + (d->dns != NULL);
	agent_stop(d->agent, part_stopped, d);
	if (d->mesh)
		mesh_stop(d->mesh); /* its listeners and connections free themselves */
	if (d->dns)
		dns_stop(d->dns, part_stopped, d);
	link_close(d);
	if (d->tick.loop)
		uv_timer_stop(&d->tick);
	char err[ERR_LEN];
	if (d->cons_ready && !cons_handover(&d->cons, handed_over, d, err))
		return; /* a leader stops once another node leads (or an election timeout passed) */
	if (d->cons_ready)
		cons_close(&d->cons, cons_closed, d);
	else
		cons_closed(d);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;
	log_info(d->ident.name, d->clock, "got signal %d", signum);
	daemon_stop(d, 0);
}

static void walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int listen_tcp(struct daemon *d, char *err)
{
	struct sockaddr_in sa;
	if (parse_ipport(d->ident.listen, &sa, err))
		return E_INVAL;
	uv_tcp_init(d->loop, &d->tcp);
	d->tcp.data = d;
	int rv = uv_tcp_bind(&d->tcp, (struct sockaddr *)&sa, 0);
	if (!rv)
		rv = uv_listen((uv_stream_t *)&d->tcp, 128, on_tcp_conn);
	if (rv)
		return errf(err, E_IO, "listen on %s: %s", d->ident.listen, uv_strerror(rv));
	return 0;
}

static int listen_local(struct daemon *d, char *err)
{
	char path[600];
	layout_path(path, sizeof path, d->data_dir, LAYOUT_SOCKET);
	if (strlen(path) >= 100)
		return errf(err, E_INVAL, "socket path %s is too long: use a shorter --data-dir", path);
	unlink(path);
	uv_pipe_init(d->loop, &d->local, 0);
	d->local.data = d;
	mode_t old = umask(077);
	int rv = uv_pipe_bind(&d->local, path);
	umask(old);
	if (!rv)
		rv = uv_listen((uv_stream_t *)&d->local, 64, on_local_conn);
	if (rv)
		return errf(err, E_IO, "listen on %s: %s", path, uv_strerror(rv));
	return 0;
}

static void metrics_page(void *data, const char *method, const char *path, struct buf *resp)
{
	rpc_http_page(data, method, path, resp);
}

/* The console's plain listener of --console-listen, when the node keeps one. */
static int listen_console(struct daemon *d, char *err)
{
	char addr[80];
	int rc = layout_read_text(d->data_dir, LAYOUT_CONSOLE_LISTEN, addr, sizeof addr, err);
	addr[strcspn(addr, "\r\n")] = 0;
	if (rc || !addr[0])
		return rc;
	if ((rc = console_listen(d->console, addr, err)))
		return rc;
	log_info(d->ident.name, d->clock, "serving the console in plain HTTP on http://%s/ (role %s)", addr,
		 peer_role_name(console_plain_role(d)));
	return 0;
}

/* The plain listener of --metrics-listen, when the node keeps one (util/layout.h). */
static int listen_metrics(struct daemon *d, char *err)
{
	char addr[80];
	int rc = layout_read_text(d->data_dir, LAYOUT_METRICS_LISTEN, addr, sizeof addr, err);
	addr[strcspn(addr, "\r\n")] = 0;
	if (rc || !addr[0])
		return rc;
	if (!(d->metrics = httpd_start(d->loop, addr, metrics_page, d, err)))
		return E_IO;
	log_info(d->ident.name, d->clock, "serving /metrics and /healthz in plain HTTP on %s", addr);
	return 0;
}

void daemon_ready(struct daemon *d, const char *msg)
{
	if (d->ready_sent)
		return;
	d->ready_sent = true;
	if (d->opts.on_ready)
		d->opts.on_ready(msg, d->opts.ready_arg);
	if (d->ready_fd >= 0) {
		ssize_t w = write(d->ready_fd, msg, strlen(msg));
		(void)w;
		close(d->ready_fd);
		d->ready_fd = -1;
	}
}

struct daemon *daemon_new(uv_loop_t *loop, const struct daemon_opts *o, const struct identity *id)
{
	struct daemon *d = xcalloc(1, sizeof *d);
	regopts_init(&d->reg);
	d->loop = loop;
	d->opts = *o;
	d->disk.floor = o->disk_floor;
	d->ready_fd = o->ready_fd;
	d->ident = *id;
	d->clock = &clock_system;
	d->started_ms = clock_now(d->clock);
	/* Requests are identified by (node, session, counter): a fresh random session per
	 * process start, so neither the clock nor what the log recorded for an earlier run
	 * can make a new request look like a retry (state/store.h, ORIGIN_FIELDS). */
	do
		random_bytes(&d->session, sizeof d->session);
	while (!d->session);
	snprintf(d->data_dir, sizeof d->data_dir, "%s", o->data_dir);
	store_init(&d->store);
	d->console = console_new(d);
	d->leader_host = (struct leader_host){
		.data = d,
		.clock = d->clock,
		.ident = &d->ident,
		.store = &d->store,
		.submit = lh_submit,
		.nservers = lh_nservers,
		.server = lh_server,
		.assign = lh_assign,
		.add = lh_add,
		.barrier = lh_barrier,
		.match_index = lh_match_index,
		.reprobe = lh_reprobe,
		.is_leader = lh_is_leader,
		.term = lh_term,
		.commit_index = lh_commit_index,
		.ready = lh_ready,
		.autoscale = lh_autoscale,
		.watch_push = lh_watch_push,
		.kick = lh_kick,
	};
	struct leader_config lc = {
		.bootstrap = o->bootstrap,
		.failure_timeout_ms = o->failure_timeout_ms,
		.cpus_milli = o->cpus_milli,
		.memory = o->memory,
		.labels = d->opts.labels,
		.nlabels = o->nlabels,
		.data_dir = d->data_dir,
	};
	leader_init(&d->leader, &d->leader_host, &lc);
	d->host = (struct host){
		.node = d,
		.loop = d->loop,
		.clock = d->clock,
		.ident = &d->ident,
		.data_dir = d->data_dir,
		.store = &d->store,
		.registry = &d->reg,
		.submit = host_submit_fn,
		.stopping = host_stopping_fn,
	};
	if (!o->hollow) { /* a hollow node's tasks take no traffic and resolve no names */
		d->mesh = mesh_new(&d->host, true);
		d->dns = dns_new(&d->host);
	}
	node_stats_init(&d->stats, d->ident.id, &d->store, d->mesh);
	scaling_init(&d->scaling, &d->host, &d->cluster_stats, &d->stats);
	return d;
}

/* Who asks the DNS server or connects to a service address: the agent knows its tasks'
 * addresses before the state does. */
static uint64_t task_at(void *agent, const char *ip)
{
	return agent_task_at(agent, ip);
}

int daemon_start(struct daemon *d, char *err)
{
	const struct daemon_opts *o = &d->opts;
	int rc;
	/* Per process, and the same for every node of it: a peer that went away must not kill
	 * the process, and container inits re-parent to it (runproc.h reaps for all nodes). */
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (!o->no_signals) {
		uv_signal_init(d->loop, &d->sigint);
		uv_signal_init(d->loop, &d->sigterm);
		d->sigint.data = d->sigterm.data = d;
		uv_signal_start(&d->sigint, signal_cb, SIGINT);
		uv_signal_start(&d->sigterm, signal_cb, SIGTERM);
	}
	/* the local socket first: a locked node serves it alone (node/autolock.h) */
	if ((rc = listen_local(d, err)))
		return rc;
	if ((rc = autolock_gate(d, err)) < 0)
		return rc;
	if (rc) {
		log_warn(d->ident.name, d->clock, "node %016llx is locked (autolock): it starts once orch unlock gives it "
			 "the unlock key", (unsigned long long)d->ident.id);
		daemon_ready(d, "ok locked");
		return 0;
	}
	return daemon_start_unlocked(d, err);
}

int daemon_start_unlocked(struct daemon *d, char *err)
{
	const struct daemon_opts *o = &d->opts;
	int rc;
	d->worker = worker_mark_load(d->data_dir);
	if ((rc = renew_start(d, err)))
		return rc;
	char raftdir[600];
	layout_path(raftdir, sizeof raftdir, d->data_dir, LAYOUT_RAFT);
	if ((rc = cons_init(&d->cons, d->loop, raftdir, d->ident.id, d->ident.advertise, &d->ident.tls, &d->store, &o->raft,
			    err)))
		return rc;
	d->cons_ready = true;
	cons_set_state_cb(&d->cons, on_state, d);
	cons_set_name(&d->cons, d->ident.name);
	cons_set_clock(&d->cons, d->clock);
	if (o->bootstrap && (rc = cons_bootstrap(&d->cons, err)))
		return rc;
	if (o->force_new_cluster) {
		if ((rc = cons_recover(&d->cons, err)))
			return rc;
		log_warn(d->ident.name, d->clock, "forced a new cluster: this node is now the only voter; the other nodes must join again");
	}
	if ((rc = listen_tcp(d, err)) || (rc = listen_metrics(d, err)) || (rc = listen_console(d, err)))
		return rc;
	if ((rc = cons_start(&d->cons, err)))
		return rc;
	uv_timer_init(d->loop, &d->tick);
	d->tick.data = d;
	uv_timer_start(&d->tick, tick_cb, TICK_MS, TICK_MS);
	uv_timer_init(d->loop, &d->catchup);
	d->catchup.data = d;
	uv_timer_init(d->loop, &d->kick);
	d->kick.data = d;
	uv_timer_init(d->loop, &d->park_timer);
	d->park_timer.data = d;
	d->park_ready = true;
	if ((rc = regopts_load(&d->reg, d->data_dir, err)))
		return rc;
	if (o->registry)
		regopts_merge(&d->reg, o->registry);
	if ((rc = regopts_save(&d->reg, d->data_dir, err)))
		return rc;
	struct agent_config ac = {.backend = o->hollow ? &backend_hollow : NULL, .run_delay_ms = o->run_delay_ms};
	if (!(d->agent = agent_start(&d->host, &ac, err)))
		return E_IO;
	d->leader.cfg.runtime = agent_runtime(d->agent); /* for its record, if it bootstraps */
	if (d->dns)
		dns_set_tasks(d->dns, task_at, d->agent);
	if (d->mesh)
		mesh_set_tasks(d->mesh, task_at, d->agent);
	if (nodecfg_load(d, err))
		return E_IO;
	if (agent_synthetic(d->agent)) {
		d->stats.sample_tasks = agent_sample;
		d->stats.sample_arg = d->agent;
	}
	log_info(d->ident.name, d->clock, "node %016llx serving on %s (advertised %s), data in %s", (unsigned long long)d->ident.id,
		 d->ident.listen, d->ident.advertise, d->data_dir);
	if (o->catch_up_index)
		uv_timer_start(&d->catchup, catchup_cb, 20, 20);
	else if (!o->bootstrap)
		daemon_ready(d, d->worker ? "ok worker" : "ok"); /* a worker has no log to catch up with */
	/* For orch init, readiness is signalled once the cluster record is committed (leader.c). */
	return 0;
}

void daemon_free(struct daemon *d)
{
	if (d->leaving) {
		char raftdir[600];
		layout_path(raftdir, sizeof raftdir, d->data_dir, LAYOUT_RAFT);
		nftw(raftdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		datakey_remove(d->data_dir); /* first: orch leave returns once the identity is gone */
		creds_remove(d->data_dir);
		worker_mark_remove(d->data_dir);
		identity_remove(d->data_dir);
		log_info(d->ident.name, d->clock, "left the cluster; identity, data key and raft data removed from %s", d->data_dir);
	}
	char sock[600];
	layout_path(sock, sizeof sock, d->data_dir, LAYOUT_SOCKET);
	if (d->local.loop)
		unlink(sock);
	datakey_forget(d->data_dir);
	store_free(&d->store);
	free(d->members);
	nodecfg_free(&d->cfg);
	leader_free(&d->leader);
	watch_free(d);
	agent_free(d->agent);
	regopts_free(&d->reg);
	imagework_free(d);
	mesh_free(d->mesh);
	dns_free(d->dns);
	node_stats_sampler_free(&d->stats);
	cstats_free(&d->cluster_stats);
	if (d->console) /* never stopped (a start that failed): nothing of it is on the loop */
		console_close(d->console, NULL, NULL);
	free(d->conns);
	free(d);
}

int daemon_run(const struct daemon_opts *o, const struct identity *id, char *err)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct daemon *d = daemon_new(&loop, o, id);
	d->own_loop = true;
	int rc = daemon_start(d, err);
	if (!rc) {
		uv_run(&loop, UV_RUN_DEFAULT);
		rc = d->exit_code;
	} else if (err[0])
		log_error(d->ident.name, d->clock, "%s", err);
	uv_walk(&loop, walk_close, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	daemon_free(d);
	return rc;
}
