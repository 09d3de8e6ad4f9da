/* orch debug hollow (node/hollow.h): the fleet of hollow nodes. Joins run on the loop,
 * a bounded number at a time (the leader serves them one after another anyway), each as
 * orch join does it: the node record sent to the given address, redirects to the leader
 * followed, "busy" and "no leader yet" retried. A node starts the moment its join is
 * accepted, so the early ones heartbeat while the later ones join. */
#include "node/hollow.h"
#include "node/daemon.h"
#include "net/conn.h"
#include "util/log.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOIN_DEADLINE_MS 120000
#define RETRY_MS 200
#define FDS_PER_NODE 8 /* listeners, link, a whois, raft's segment, metadata and eventfd */

enum hn_state { HN_WAITING, HN_JOINING, HN_RUNNING, HN_STOPPED, HN_FAILED };

struct hollow;

struct hnode {
	struct hollow *h;
	unsigned index;
	enum hn_state st;
	char dir[512];
	struct identity id;
	struct daemon_opts opts;
	struct daemon *d;
	struct conn *jc;       /* the join request in flight */
	bool jc_done;          /* its reply came: the close that follows is expected */
	char target[64];       /* where the join goes now (the given node, then the leader) */
	char seed[64];         /* the leader that accepted it */
	uint64_t retry_at, deadline;
	bool ready;
};

struct hollow {
	uv_loop_t loop;
	const struct hollow_opts *o;
	struct hnode *n;
	unsigned next, joining, running, ready, failed, started, freed;
	uv_timer_t timer;
	uv_signal_t sigint, sigterm;
	bool stopping, all_ready_said;
	uint64_t t0, said_at;
	char err[ERR_LEN];
};

static void start_joins(struct hollow *h);
static void fleet_stop(struct hollow *h, const char *why);

/* ---- a node --------------------------------------------------------------------------- */

static void node_ready(const char *msg, const void *arg)
{
	struct hnode *hn = (struct hnode *)(uintptr_t)arg; /* ours: given as ready_arg */
	(void)msg;
	if (!hn->ready) {
		hn->ready = true;
		hn->h->ready++;
	}
}

static void node_stopped(struct daemon *d, void *arg)
{
	struct hnode *hn = arg;
	struct hollow *h = hn->h;
	daemon_free(d);
	hn->d = NULL;
	hn->st = HN_STOPPED;
	h->freed++;
	if (!h->stopping) /* stopped by itself (removed from the cluster, say) */
		log_warn(hn->id.name, "hollow node stopped");
}

static int node_start(struct hnode *hn, char *err)
{
	struct hollow *h = hn->h;
	const struct hollow_opts *o = h->o;
	struct daemon_opts *d = &hn->opts;
	memset(d, 0, sizeof *d);
	d->data_dir = hn->dir;
	d->ready_fd = -1;
	d->on_ready = node_ready;
	d->ready_arg = hn;
	d->seed = hn->seed[0] ? hn->seed : o->join;
	/* a spare applies nothing: its raft log stays a few metadata writes, so small open
	 * segments (libraft preallocates 8 MB each) and a slow tick do */
	d->raft.election_ms = 1000;
	d->raft.heartbeat_ms = 200;
	d->raft.snapshot_threshold = 8192;
	d->raft.snapshot_trailing = 2048;
	d->raft.segment_size = 64 * 1024;
	d->cpus_milli = o->cpus_milli;
	d->memory = o->memory;
	d->hollow = true;
	d->run_delay_ms = o->run_delay_ms;
	d->no_signals = true;
	d->on_stopped = node_stopped;
	d->stopped_arg = hn;
	hn->d = daemon_new(&h->loop, d, &hn->id);
	h->started++;
	int rc = daemon_start(hn->d, err);
	if (rc) {
		errwrap(err, rc, "hollow node %s", hn->id.name);
		daemon_stop(hn->d, 1); /* freed by node_stopped */
		hn->st = HN_FAILED;
		return rc;
	}
	hn->st = HN_RUNNING;
	h->running++;
	return 0;
}

/* ---- its join ------------------------------------------------------------------------- */

static void join_failed(struct hnode *hn, const char *msg)
{
	struct hollow *h = hn->h;
	hn->st = HN_FAILED;
	h->failed++;
	if (!h->err[0])
		snprintf(h->err, sizeof h->err, "join of %s through %s: %s", hn->id.name, hn->target, msg);
	fleet_stop(h, h->err);
}

static void j_ready(struct conn *c)
{
	struct hnode *hn = c->data;
	const struct hollow_opts *o = hn->h->o;
	/* the node record in its stored form (the join handler decodes that schema) */
	struct node n = {.id = hn->id.id, .cpus_milli = o->cpus_milli, .memory = o->memory};
	n.name = hn->id.name;
	n.addr = hn->id.advertise;
	n.version = (char *)ORCH_VERSION;
	n.runtime = (char *)"hollow";
	for (size_t i = 0; i < o->nlabels; i++) {
		const char *eq = strchr(o->labels[i], '=');
		char *k = xstrndup(o->labels[i], (size_t)(eq - o->labels[i]));
		labels_set(&n.labels, k, eq + 1);
		free(k);
	}
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 3);
	mpw_kstr(&w, "op", "join");
	mpw_ku64(&w, "id", 1);
	mpw_str(&w, "node");
	schema_encode(&node_schema, &n, &w);
	labels_free(&n.labels);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void j_frame(struct conn *c, const msgpack_object *resp)
{
	struct hnode *hn = c->data;
	struct hollow *h = hn->h;
	int64_t rc = E_FAIL;
	char msg[ERR_LEN] = "", leader[64] = "";
	mp_get_i64(resp, "rc", &rc);
	mp_get_strbuf(resp, "err", msg, sizeof msg);
	mp_get_strbuf(resp, "leader", leader, sizeof leader);
	hn->jc_done = true;
	conn_close(c, NULL);
	if (h->stopping)
		return;
	if (rc == E_NOLEADER || rc == E_BUSY) { /* redirect to the leader, or wait and retry */
		if (leader[0])
			snprintf(hn->target, sizeof hn->target, "%s", leader);
		hn->retry_at = now_ms() + (leader[0] ? 0 : RETRY_MS);
		return;
	}
	h->joining--;
	if (rc) {
		join_failed(hn, msg[0] ? msg : "refused");
		return;
	}
	snprintf(hn->seed, sizeof hn->seed, "%s", leader[0] ? leader : hn->target);
	char err[ERR_LEN];
	if (identity_save(hn->dir, &hn->id, err) || node_start(hn, err)) {
		if (hn->st != HN_FAILED)
			hn->st = HN_FAILED;
		h->failed++;
		if (!h->err[0])
			snprintf(h->err, sizeof h->err, "%s", err);
		fleet_stop(h, err);
		return;
	}
	start_joins(h);
}

static void j_close(struct conn *c, const char *why)
{
	struct hnode *hn = c->data;
	if (hn->jc == c)
		hn->jc = NULL;
	if (hn->jc_done || hn->h->stopping)
		return;
	/* lost before the answer: the node it went to may be gone; ask the given one again */
	TRACE("hollow", hn->id.name, "join to %s lost: %s", hn->target, why ? why : "closed");
	snprintf(hn->target, sizeof hn->target, "%s", hn->h->o->join);
	hn->retry_at = now_ms() + RETRY_MS;
}

static const struct conn_ops join_ops = {
	.on_ready = j_ready,
	.on_frame = j_frame,
	.on_close = j_close,
};

static void join_send(struct hnode *hn)
{
	struct hollow *h = hn->h;
	if (now_ms() > hn->deadline) {
		h->joining--;
		join_failed(hn, "no answer within the deadline");
		return;
	}
	hn->retry_at = 0;
	hn->jc_done = false;
	struct conn *c = conn_connect(&h->loop, hn->target, AUTH_KIND_RPC, &h->o->tok, NULL, 0, &join_ops, hn);
	if (hn->retry_at == 0) /* not closed at once (a bad address closes inside conn_connect) */
		hn->jc = c;
}

/* ---- the fleet --------------------------------------------------------------------------- */

static int node_prepare(struct hollow *h, unsigned i, char *err)
{
	const struct hollow_opts *o = h->o;
	struct hnode *hn = &h->n[i];
	hn->h = h;
	hn->index = i;
	char name[64];
	snprintf(name, sizeof name, "%s-%04u", o->name_prefix, i + 1);
	snprintf(hn->dir, sizeof hn->dir, "%s/%s", o->data_dir, name);
	if (mkdir(hn->dir, 0700) && errno != EEXIST)
		return errf(err, E_IO, "create %s: %s", hn->dir, strerror(errno));
	int rc = identity_load(hn->dir, &hn->id, err);
	if (rc == 0) { /* joined in an earlier run: resume */
		if (memcmp(hn->id.tok.cluster_id, o->tok.cluster_id, CLUSTER_ID_LEN))
			return errf(err, E_INVAL, "%s belongs to another cluster; use another --data-dir", hn->dir);
		return node_start(hn, err);
	}
	if (rc != E_NOTFOUND)
		return rc;
	struct in_addr ia = {.s_addr = htonl(o->listen_base + i)};
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ia, ip, sizeof ip);
	memset(&hn->id, 0, sizeof hn->id);
	hn->id.id = identity_new_id();
	hn->id.tok = o->tok;
	snprintf(hn->id.name, sizeof hn->id.name, "%s", name);
	snprintf(hn->id.listen, sizeof hn->id.listen, "%s:%u", ip, o->port);
	snprintf(hn->id.advertise, sizeof hn->id.advertise, "%s", hn->id.listen);
	snprintf(hn->target, sizeof hn->target, "%s", o->join);
	hn->st = HN_WAITING;
	return 0;
}

static void start_joins(struct hollow *h)
{
	uint64_t now = now_ms();
	if (h->stopping)
		return;
	for (unsigned i = 0; i < h->o->nodes; i++) { /* retries due */
		struct hnode *hn = &h->n[i];
		if (hn->st == HN_JOINING && !hn->jc && hn->retry_at && now >= hn->retry_at)
			join_send(hn);
	}
	while (h->joining < h->o->parallel && h->next < h->o->nodes && !h->stopping) {
		struct hnode *hn = &h->n[h->next++];
		if (hn->st != HN_WAITING)
			continue;
		hn->st = HN_JOINING;
		hn->deadline = now + JOIN_DEADLINE_MS;
		h->joining++;
		join_send(hn);
	}
}

static void walk_close(uv_handle_t *hd, void *arg)
{
	(void)arg;
	if (!uv_is_closing(hd))
		uv_close(hd, NULL);
}

static void timer_cb(uv_timer_t *t)
{
	struct hollow *h = t->data;
	if (h->stopping) {
		/* every node freed and every join closed: the fleet's own handles go, the loop ends */
		bool joins = false;
		for (unsigned i = 0; i < h->o->nodes; i++)
			joins |= h->n[i].jc != NULL;
		if (h->freed >= h->started && !joins)
			uv_walk(&h->loop, walk_close, NULL);
		return;
	}
	start_joins(h);
	uint64_t now = now_ms();
	bool all = h->ready == h->o->nodes;
	if ((all && !h->all_ready_said) || now - h->said_at >= 5000) {
		h->said_at = now;
		printf("hollow: %u of %u nodes ready, %u joining, %.1f s\n", h->ready, h->o->nodes, h->joining,
		       (double)(now - h->t0) / 1000.0);
		if (all && !h->all_ready_said) {
			h->all_ready_said = true;
			printf("hollow: all %u nodes ready (pid %d)\n", h->o->nodes, (int)getpid());
		}
		fflush(stdout);
	}
}

static void fleet_stop(struct hollow *h, const char *why)
{
	if (h->stopping)
		return;
	h->stopping = true;
	log_info(NULL, "hollow: stopping %u nodes%s%s", h->running, why ? ": " : "", why ? why : "");
	uv_signal_stop(&h->sigint);
	uv_signal_stop(&h->sigterm);
	for (unsigned i = 0; i < h->o->nodes; i++) {
		struct hnode *hn = &h->n[i];
		if (hn->jc)
			conn_close(hn->jc, "stopping");
		if (hn->d && hn->st == HN_RUNNING)
			daemon_stop(hn->d, 0);
	}
}

static void signal_cb(uv_signal_t *s, int signum)
{
	(void)signum;
	fleet_stop(s->data, "signal");
}

/* Each node holds a few descriptors: the soft limit goes up to the hard one. */
static int raise_nofile(unsigned nodes, char *err)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return errf(err, E_IO, "getrlimit: %s", strerror(errno));
	rlim_t want = (rlim_t)nodes * FDS_PER_NODE + 64;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			return errf(err, E_IO, "setrlimit: %s", strerror(errno));
	}
	if (rl.rlim_cur < want)
		return errf(err, E_INVAL, "%u hollow nodes need about %llu open files; the limit is %llu (ulimit -Hn): run fewer",
			    nodes, (unsigned long long)want, (unsigned long long)rl.rlim_cur);
	return 0;
}

int hollow_run(const struct hollow_opts *o, char *err)
{
	int rc = raise_nofile(o->nodes, err);
	if (rc)
		return rc;
	if (mkdir(o->data_dir, 0700) && errno != EEXIST)
		return errf(err, E_IO, "create %s: %s", o->data_dir, strerror(errno));
	struct hollow *h = xcalloc(1, sizeof *h);
	h->o = o;
	h->n = xcalloc(o->nodes, sizeof *h->n);
	h->t0 = h->said_at = now_ms();
	uv_loop_init(&h->loop);
	uv_timer_init(&h->loop, &h->timer);
	h->timer.data = h;
	uv_timer_start(&h->timer, timer_cb, 50, 50);
	uv_signal_init(&h->loop, &h->sigint);
	uv_signal_init(&h->loop, &h->sigterm);
	h->sigint.data = h->sigterm.data = h;
	uv_signal_start(&h->sigint, signal_cb, SIGINT);
	uv_signal_start(&h->sigterm, signal_cb, SIGTERM);
	for (unsigned i = 0; i < o->nodes && !rc; i++)
		if ((rc = node_prepare(h, i, err)))
			fleet_stop(h, err);
	if (!rc)
		start_joins(h);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	uv_loop_close(&h->loop);
	if (!rc && h->err[0]) {
		snprintf(err, ERR_LEN, "%s", h->err);
		rc = E_FAIL;
	}
	free(h->n);
	free(h);
	return rc;
}
