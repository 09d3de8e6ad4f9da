#include "node/daemon.h"
#include "node/member.h"
#include "agent/agent.h"
#include "traffic/mesh.h"
#include "traffic/dns.h"
#include "net/conn.h"
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

static void on_frame(struct conn *c, const msgpack_object *msg)
{
	struct daemon *d = c->data;
	rpc_dispatch(d, c, msg, !c->tcp);
}

static void on_conn_close(struct conn *c, const char *why)
{
	struct daemon *d = c->data;
	pending_conn_gone(d, c);
	watch_conn_gone(d, c);
	agent_conn_gone(d, c);
	(void)why;
}

static void on_raft(struct conn *c, uv_stream_t *s, const uint8_t *extra, size_t extra_len)
{
	struct daemon *d = c->data;
	cons_incoming(&d->cons, s, extra, extra_len);
}

static void on_http(struct conn *c, const char *method, const char *path)
{
	struct daemon *d = c->data;
	rpc_http(d, c, method, path);
}

static const struct conn_ops server_ops = {
	.on_frame = on_frame,
	.on_close = on_conn_close,
	.on_raft = on_raft,
	.on_http = on_http,
};

static void on_tcp_conn(uv_stream_t *srv, int status)
{
	struct daemon *d = srv->data;
	if (status || d->stopping)
		return;
	conn_accept(srv, true, &d->ident.tok, &server_ops, d);
}

static void on_local_conn(uv_stream_t *srv, int status)
{
	struct daemon *d = srv->data;
	if (status || d->stopping)
		return;
	conn_accept(srv, false, NULL, &server_ops, d);
}

/* ---- submit -------------------------------------------------------------------------- */

struct submit {
	struct daemon *d;
	submit_cb cb;
	void *data;
};

static void submit_applied(void *data, int status, const struct apply_res *res)
{
	struct submit *s = data;
	if (s->cb)
		s->cb(s->d, s->data, status ? status : res->rc, res);
	free(s);
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
	if (s->cb)
		s->cb(s->d, s->data, res.rc, &res);
	free(s);
}

int daemon_submit(struct daemon *d, const char *type, const void *body, size_t body_len, submit_cb cb, void *data, char *err)
{
	size_t n;
	struct req_id rid = {d->ident.id, d->session, ++d->seq};
	void *entry = cmd_build(type, &rid, body, body_len, &n);
	int rc;
	if (cons_is_leader(&d->cons)) {
		struct submit *s = xcalloc(1, sizeof *s);
		s->d = d;
		s->cb = cb;
		s->data = data;
		rc = cons_apply(&d->cons, entry, n, submit_applied, s, err);
		if (rc)
			free(s);
	} else {
		/* Forward the built entry: the leader applies it as is (same identity, so the same
		 * entry committed twice is applied once and answers the same). */
		struct pending *p = pending_new(d, NULL, 0);
		struct submit *s = xcalloc(1, sizeof *s);
		s->d = d;
		s->cb = cb;
		s->data = data;
		p->ctx = s;
		p->on_reply = submit_fwd_reply;
		struct mpw w;
		mpw_init(&w);
		mpw_map(&w, 2);
		mpw_kstr(&w, "op", "apply");
		mpw_str(&w, "entry");
		mpw_bin(&w, entry, n);
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

/* ---- lifecycle ------------------------------------------------------------------------ */

static void tick_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	if (d->stopping)
		return;
	link_tick(d);
	agent_tick(d);
	mesh_sync(d);
	dns_sync(d);
	if (cons_is_leader(&d->cons))
		leader_tick(d);
	else
		d->was_leader = false;
}

static void on_state(void *data)
{
	struct daemon *d = data;
	link_update(d);
	if (cons_is_leader(&d->cons) && !d->was_leader) {
		d->was_leader = true;
		watch_reset_self();
		d->leader_since = now_ms();
		d->change_inflight = false;
		member_leadership(d);
		leader_tick(d);
	}
	member_kick(d); /* joins queued here are refused once this node no longer leads */
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
	uint64_t now = now_ms(), applied = cons_applied_index(&d->cons);
	if (d->stopping || applied < d->opts.catch_up_index || applied < cons_commit_index(&d->cons))
		return;
	if (!d->caught_up_at) {
		d->caught_up_at = now;
		log_info("caught up with the cluster: applied index %llu", (unsigned long long)cons_applied_index(&d->cons));
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

static void close_handle(uv_handle_t *h)
{
	if (h && !uv_is_closing(h))
		uv_close(h, NULL);
}

static void walk_close(uv_handle_t *h, void *arg);

static void cons_closed(void *data)
{
	struct daemon *d = data;
	/* whatever else is still open (client connections, raft's leftovers) goes too, so the
	 * loop ends */
	uv_walk(&d->loop, walk_close, NULL);
	close_handle((uv_handle_t *)&d->tcp);
	close_handle((uv_handle_t *)&d->local);
	close_handle((uv_handle_t *)&d->tick);
	close_handle((uv_handle_t *)&d->catchup);
	close_handle((uv_handle_t *)&d->sigint);
	close_handle((uv_handle_t *)&d->sigterm);
}

void daemon_stop(struct daemon *d, int code)
{
	if (d->stopping)
		return;
	d->stopping = true;
	d->exit_code = code;
	log_info("stopping");
	agent_stop(d);
	mesh_stop(d);
	dns_stop(d);
	link_close(d);
	uv_timer_stop(&d->tick);
	cons_close(&d->cons, cons_closed, d);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;
	log_info("got signal %d", signum);
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
	uv_tcp_init(&d->loop, &d->tcp);
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
	snprintf(path, sizeof path, "%s/orch.sock", d->data_dir);
	if (strlen(path) >= 100)
		return errf(err, E_INVAL, "socket path %s is too long: use a shorter --data-dir", path);
	unlink(path);
	uv_pipe_init(&d->loop, &d->local, 0);
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

int daemon_run(const struct daemon_opts *o, const struct identity *id, char *err)
{
	struct daemon *d = xcalloc(1, sizeof *d);
	int rc = 0;
	d->opts = *o;
	d->ready_fd = o->ready_fd;
	d->ident = *id;
	d->started_ms = now_ms();
	/* Requests are identified by (node, session, counter): a fresh random session per
	 * process start, so neither the clock nor what the log recorded for an earlier run
	 * can make a new request look like a retry (state/store.h, ORIGIN_FIELDS). */
	do
		random_bytes(&d->session, sizeof d->session);
	while (!d->session);
	snprintf(d->data_dir, sizeof d->data_dir, "%s", o->data_dir);
	log_set_name(id->name);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	uv_loop_init(&d->loop);
	store_init(&d->store);

	char raftdir[600];
	snprintf(raftdir, sizeof raftdir, "%s/raft", d->data_dir);
	if ((rc = cons_init(&d->cons, &d->loop, raftdir, id->id, id->advertise, &d->ident.tok, &d->store, &o->raft, err)))
		goto out;
	cons_set_state_cb(&d->cons, on_state, d);
	if (o->bootstrap && (rc = cons_bootstrap(&d->cons, err)))
		goto out;
	if (o->force_new_cluster) {
		if ((rc = cons_recover(&d->cons, err)))
			goto out;
		log_warn("forced a new cluster: this node is now the only voter; the other nodes must join again");
	}
	if ((rc = listen_tcp(d, err)) || (rc = listen_local(d, err)))
		goto out;
	if ((rc = cons_start(&d->cons, err)))
		goto out;
	uv_timer_init(&d->loop, &d->tick);
	d->tick.data = d;
	uv_timer_start(&d->tick, tick_cb, TICK_MS, TICK_MS);
	uv_timer_init(&d->loop, &d->catchup);
	d->catchup.data = d;
	uv_signal_init(&d->loop, &d->sigint);
	uv_signal_init(&d->loop, &d->sigterm);
	d->sigint.data = d->sigterm.data = d;
	uv_signal_start(&d->sigint, signal_cb, SIGINT);
	uv_signal_start(&d->sigterm, signal_cb, SIGTERM);
	if ((rc = agent_start(d, err)))
		goto out;
	log_info("node %016llx serving on %s (advertised %s), data in %s", (unsigned long long)id->id, id->listen,
		 id->advertise, d->data_dir);
	if (o->catch_up_index)
		uv_timer_start(&d->catchup, catchup_cb, 20, 20);
	else if (!o->bootstrap)
		daemon_ready(d, "ok");
	/* For orch init, readiness is signalled once the cluster record is committed (leader.c). */
	uv_run(&d->loop, UV_RUN_DEFAULT);
	rc = d->exit_code;
	if (d->leaving) {
		nftw(raftdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		identity_remove(d->data_dir);
		log_info("left the cluster; identity and raft data removed from %s", d->data_dir);
	}
out:
	if (rc && err[0])
		log_error("%s", err);
	uv_walk(&d->loop, walk_close, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	uv_loop_close(&d->loop);
	char sock[600];
	snprintf(sock, sizeof sock, "%s/orch.sock", d->data_dir);
	unlink(sock);
	member_close(d);
	store_free(&d->store);
	free(d->seen);
	free(d);
	return rc;
}
