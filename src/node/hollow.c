/* orch debug hollow (node/hollow.h): the fleet of hollow nodes.
 *
 * The nodes are spread over a few loops, one thread each: starting a node blocks its loop
 * for ~30 ms (libraft probes the data directory at raft_init; the io_destroy of its AIO
 * probe waits for an RCU grace period), so one loop would start at most ~30 nodes a second.
 * Nothing is shared between the loops but the counters below (nodes keep no file-level
 * state). The main thread waits for SIGINT/SIGTERM and prints progress.
 *
 * Joins run on the loops, a bounded number at a time (the leader serves them one after
 * another anyway), each as orch join does it: the node record sent to the given address,
 * redirects to the leader followed, "busy" and "no leader yet" retried. A node starts the
 * moment its join is accepted, so the early ones heartbeat while the later ones join. */
#include "node/hollow.h"
#include "node/daemon.h"
#include "node/creds.h"
#include "pki/pki.h"
#include "agent/agent.h"
#include "net/conn.h"
#include "net/proto.h"
#include "util/log.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JOIN_DEADLINE_MS 120000
#define RETRY_MS 200
#define FDS_PER_NODE 8 /* listeners, link, a whois, raft's segment, metadata and eventfd */
#define LOOPS_MAX 8

enum hn_state { HN_WAITING, HN_JOINING, HN_RUNNING, HN_STOPPED, HN_FAILED };

struct hloop;

struct hnode {
	struct hloop *hl;
	enum hn_state st;
	char dir[512];
	struct identity id;
	struct daemon_opts opts;
	struct daemon *d;
	struct conn *jc;       /* the join request in flight */
	bool jc_done;          /* its reply came: the close that follows is expected */
	char target[64];       /* where the join goes now (the given node, then the leader) */
	char seed[64];         /* the leader that accepted it */
	struct buf key, csr;   /* its key and CSR while it joins */
	uint64_t retry_at, deadline;
	bool ready;
};

struct hollow;

/* One loop and the nodes on it: nodes[k], nodes[k + nloops], ... */
struct hloop {
	struct hollow *h;
	pthread_t thread;
	uv_loop_t loop;
	uv_async_t wake;      /* from the main thread or another loop: stop */
	uv_timer_t timer;
	struct hnode **n;
	unsigned count, next, joining, parallel, started, freed;
	bool stopping, running;
};

struct hollow {
	const struct hollow_opts *o;
	struct hnode *nodes;
	struct hloop *loops;
	unsigned nloops;
	/* shared between the threads */
	unsigned ready, joined, failed; /* atomics */
	int stop;                       /* atomic: every loop stops */
	pthread_mutex_t mu;
	char err[ERR_LEN];              /* the first failure (under mu) */
};

static void start_joins(struct hloop *hl);
static void loop_stop(struct hloop *hl);

/* Every loop stops, woken once: a loop closes its wake handle only after that. */
static void fleet_stop(struct hollow *h)
{
	if (__atomic_exchange_n(&h->stop, 1, __ATOMIC_SEQ_CST))
		return;
	for (unsigned i = 0; i < h->nloops; i++)
		uv_async_send(&h->loops[i].wake);
}

/* The first failure is what the run ends with. */
static void fleet_fail(struct hollow *h, const char *msg)
{
	pthread_mutex_lock(&h->mu);
	if (!h->err[0])
		snprintf(h->err, sizeof h->err, "%s", msg);
	pthread_mutex_unlock(&h->mu);
	fleet_stop(h);
}

/* ---- a node --------------------------------------------------------------------------- */

static void node_stopped(struct daemon *d, void *arg)
{
	struct hnode *hn = arg;
	struct hloop *hl = hn->hl;
	daemon_free(d);
	hn->d = NULL;
	hn->st = HN_STOPPED;
	hl->freed++;
	if (!hl->stopping) /* stopped by itself (removed from the cluster, say) */
		log_warn(hn->id.name, NULL, "hollow node stopped");
}

static int node_start(struct hnode *hn, char *err)
{
	struct hloop *hl = hn->hl;
	const struct hollow_opts *o = hl->h->o;
	struct daemon_opts *d = &hn->opts;
	memset(d, 0, sizeof *d);
	d->data_dir = hn->dir;
	d->ready_fd = -1;
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
	hn->d = daemon_new(&hl->loop, d, &hn->id);
	hl->started++;
	int rc = daemon_start(hn->d, err);
	if (rc) {
		errwrap(err, rc, "hollow node %s", hn->id.name);
		hn->st = HN_FAILED;
		daemon_stop(hn->d, 1); /* freed by node_stopped */
		return rc;
	}
	hn->st = HN_RUNNING;
	return 0;
}

/* ---- its join ------------------------------------------------------------------------- */

static void node_failed(struct hnode *hn, const char *msg)
{
	hn->st = HN_FAILED;
	__atomic_add_fetch(&hn->hl->h->failed, 1, __ATOMIC_SEQ_CST);
	fleet_fail(hn->hl->h, msg);
}

static void j_ready(struct conn *c)
{
	struct hnode *hn = c->data;
	const struct hollow_opts *o = hn->hl->h->o;
	/* the node record in its stored form (the join handler decodes that schema) */
	struct node n = {.id = hn->id.id, .cpus_milli = o->cpus_milli, .memory = o->memory};
	n.name = hn->id.name;
	n.addr = hn->id.advertise;
	n.version = (char *)(uintptr_t)ORCH_VERSION;
	n.runtime = (char *)(uintptr_t)"hollow";
	for (size_t i = 0; i < o->nlabels; i++) {
		const char *eq = strchr(o->labels[i], '=');
		char *k = xstrndup(o->labels[i], (size_t)(eq - o->labels[i]));
		labels_set(&n.labels, k, eq + 1);
		free(k);
	}
	struct mpw rec, w;
	mpw_init(&rec);
	schema_encode(&node_schema, &n, &rec);
	labels_free(&n.labels);
	char secret[2 * SECRET_LEN + 1], err[ERR_LEN];
	hex_encode(o->tok.secret, SECRET_LEN, secret);
	if (!hn->key.len && creds_csr(&hn->key, &hn->csr, err)) {
		mpw_free(&rec);
		conn_close(c, err);
		return;
	}
	struct req_join q = {.proto = PROTO_VERSION, .node = {.raw = rec.sb.data, .len = rec.sb.size}, .secret = secret,
			     .csr = (const char *)hn->csr.data};
	mpw_init(&w);
	proto_encode(&w, OP_JOIN, 1, &q);
	conn_send_mpw(c, &w);
	mpw_free(&w);
	mpw_free(&rec);
}

static void j_frame(struct conn *c, const msgpack_object *resp)
{
	struct hnode *hn = c->data;
	struct hloop *hl = hn->hl;
	int64_t rc = E_FAIL;
	char msg[ERR_LEN] = "", leader[64] = "";
	mp_get_i64(resp, "rc", &rc);
	mp_get_strbuf(resp, "err", msg, sizeof msg);
	mp_get_strbuf(resp, "leader", leader, sizeof leader);
	char *cert = mp_get_strdup(resp, "cert"), *ca = mp_get_strdup(resp, "ca");
	hn->jc_done = true;
	conn_close(c, NULL);
	if (hl->stopping)
		return;
	if (rc == E_NOLEADER || rc == E_BUSY) { /* redirect to the leader, or wait and retry */
		if (leader[0])
			snprintf(hn->target, sizeof hn->target, "%s", leader);
		hn->retry_at = now_ms() + (leader[0] ? 0 : RETRY_MS);
		free(cert);
		free(ca);
		return;
	}
	hl->joining--;
	char err[ERR_LEN + 128], tdir[600];
	if (!rc && (!cert || !ca)) {
		rc = E_FAIL;
		snprintf(msg, sizeof msg, "the reply holds no certificate");
	}
	if (!rc && (creds_save(hn->dir, (char *)hn->key.data, cert, ca, msg) ||
		    (tls_dir(hn->dir, tdir, sizeof tdir), tls_load(&hn->id.tls, tdir, msg))))
		rc = E_FAIL;
	free(cert);
	free(ca);
	buf_free(&hn->key);
	buf_free(&hn->csr);
	if (rc) {
		snprintf(err, sizeof err, "join of %s through %s: %s", hn->id.name, hn->target, msg[0] ? msg : "refused");
		node_failed(hn, err);
		return;
	}
	__atomic_add_fetch(&hl->h->joined, 1, __ATOMIC_SEQ_CST);
	snprintf(hn->seed, sizeof hn->seed, "%s", leader[0] ? leader : hn->target);
	if (identity_save(hn->dir, &hn->id, err) || node_start(hn, err)) {
		node_failed(hn, err);
		return;
	}
	start_joins(hl);
}

static void j_close(struct conn *c, const char *why)
{
	struct hnode *hn = c->data;
	if (hn->jc == c)
		hn->jc = NULL;
	if (hn->jc_done || hn->hl->stopping)
		return;
	/* lost before the answer: the node it went to may be gone; ask the given one again */
	TRACE("hollow", hn->id.name, "join to %s lost: %s", hn->target, why ? why : "closed");
	snprintf(hn->target, sizeof hn->target, "%s", hn->hl->h->o->join);
	hn->retry_at = now_ms() + RETRY_MS;
}

static const struct conn_ops join_ops = {
	.on_ready = j_ready,
	.on_frame = j_frame,
	.on_close = j_close,
};

static void join_send(struct hnode *hn)
{
	struct hloop *hl = hn->hl;
	if (now_ms() > hn->deadline) {
		char err[ERR_LEN];
		snprintf(err, sizeof err, "join of %s through %s: no answer within %d s", hn->id.name, hn->target,
			 JOIN_DEADLINE_MS / 1000);
		hl->joining--;
		node_failed(hn, err);
		return;
	}
	hn->retry_at = 0;
	hn->jc_done = false;
	char err[ERR_LEN];
	void *ctx = tls_join_ctx(err);
	struct conn *c = conn_connect_pinned(&hl->loop, hn->target, ctx, hl->h->o->tok.ca_fp, &join_ops, hn);
	tls_ctx_free(ctx); /* the session keeps its own reference */
	if (hn->retry_at == 0) /* not closed at once (a bad address closes inside conn_connect) */
		hn->jc = c;
}

/* ---- a loop ------------------------------------------------------------------------------- */

/* Resumes a node joined in an earlier run, or gets it ready to join. */
static int node_prepare(struct hloop *hl, struct hnode *hn, unsigned i, char *err)
{
	const struct hollow_opts *o = hl->h->o;
	hn->hl = hl;
	char name[64];
	snprintf(name, sizeof name, "%s-%04u", o->name_prefix, i + 1);
	snprintf(hn->dir, sizeof hn->dir, "%s/%s", o->data_dir, name);
	if (mkdir(hn->dir, 0700) && errno != EEXIST)
		return errf(err, E_IO, "create %s: %s", hn->dir, strerror(errno));
	int rc = identity_load(hn->dir, &hn->id, err);
	if (rc == 0) {
		if (memcmp(hn->id.cluster_id, o->tok.cluster_id, CLUSTER_ID_LEN))
			return errf(err, E_INVAL, "%s belongs to another cluster; use another --data-dir", hn->dir);
		__atomic_add_fetch(&hl->h->joined, 1, __ATOMIC_SEQ_CST);
		return node_start(hn, err);
	}
	if (rc != E_NOTFOUND)
		return rc;
	struct in_addr ia = {.s_addr = htonl(o->listen_base + i)};
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ia, ip, sizeof ip);
	memset(&hn->id, 0, sizeof hn->id);
	hn->id.id = identity_new_id();
	memcpy(hn->id.cluster_id, o->tok.cluster_id, CLUSTER_ID_LEN);
	snprintf(hn->id.name, sizeof hn->id.name, "%s", name);
	snprintf(hn->id.listen, sizeof hn->id.listen, "%s:%u", ip, o->port);
	snprintf(hn->id.advertise, sizeof hn->id.advertise, "%s", hn->id.listen);
	snprintf(hn->target, sizeof hn->target, "%s", o->join);
	hn->st = HN_WAITING;
	return 0;
}

static void start_joins(struct hloop *hl)
{
	uint64_t now = now_ms();
	if (hl->stopping)
		return;
	for (unsigned i = 0; i < hl->count; i++) { /* retries due */
		struct hnode *hn = hl->n[i];
		if (hn->st == HN_JOINING && !hn->jc && hn->retry_at && now >= hn->retry_at)
			join_send(hn);
	}
	while (hl->joining < hl->parallel && hl->next < hl->count && !hl->stopping) {
		struct hnode *hn = hl->n[hl->next++];
		if (hn->st != HN_WAITING)
			continue;
		hn->st = HN_JOINING;
		hn->deadline = now + JOIN_DEADLINE_MS;
		hl->joining++;
		join_send(hn);
	}
}

static void walk_close(uv_handle_t *hd, void *arg)
{
	(void)arg;
	if (!uv_is_closing(hd))
		uv_close(hd, NULL);
}

/* A node is ready once its agent has its first assignment document: it is linked to the
 * leader, heartbeats, and would run what it is given. */
static void count_ready(struct hloop *hl)
{
	for (unsigned i = 0; i < hl->count; i++) {
		struct hnode *hn = hl->n[i];
		if (!hn->ready && hn->d && hn->st == HN_RUNNING && agent_assigned(hn->d->agent)) {
			hn->ready = true;
			__atomic_add_fetch(&hl->h->ready, 1, __ATOMIC_SEQ_CST);
		}
	}
}

static void timer_cb(uv_timer_t *t)
{
	struct hloop *hl = t->data;
	if (!hl->stopping) {
		start_joins(hl);
		count_ready(hl);
		return;
	}
	/* every node freed and every join closed: the loop's own handles go, the loop ends */
	for (unsigned i = 0; i < hl->count; i++)
		if (hl->n[i]->jc)
			return;
	if (hl->freed >= hl->started)
		uv_walk(&hl->loop, walk_close, NULL);
}

static void loop_stop(struct hloop *hl)
{
	if (hl->stopping)
		return;
	hl->stopping = true;
	for (unsigned i = 0; i < hl->count; i++) {
		struct hnode *hn = hl->n[i];
		if (hn->jc)
			conn_close(hn->jc, "stopping");
		if (hn->d && hn->st == HN_RUNNING)
			daemon_stop(hn->d, 0);
	}
}

static void wake_cb(uv_async_t *a)
{
	struct hloop *hl = a->data;
	if (__atomic_load_n(&hl->h->stop, __ATOMIC_SEQ_CST))
		loop_stop(hl);
}

static void *loop_main(void *arg)
{
	struct hloop *hl = arg;
	struct hollow *h = hl->h;
	char err[ERR_LEN];
	for (unsigned k = 0; k < hl->count && !hl->stopping; k++) {
		unsigned i = (unsigned)(hl->n[k] - h->nodes);
		if (node_prepare(hl, hl->n[k], i, err)) {
			fleet_fail(h, err);
			loop_stop(hl);
		}
	}
	start_joins(hl);
	uv_run(&hl->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* ---- the fleet --------------------------------------------------------------------------- */

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

static void progress(struct hollow *h, uint64_t t0, const char *what)
{
	printf("hollow: %u of %u nodes ready (%u joined), %.1f s%s\n", __atomic_load_n(&h->ready, __ATOMIC_SEQ_CST),
	       h->o->nodes, __atomic_load_n(&h->joined, __ATOMIC_SEQ_CST), (double)(now_ms() - t0) / 1000.0, what);
	fflush(stdout);
}

int hollow_run(const struct hollow_opts *o, char *err)
{
	int rc = raise_nofile(o->nodes, err);
	if (rc)
		return rc;
	if (mkdir(o->data_dir, 0700) && errno != EEXIST)
		return errf(err, E_IO, "create %s: %s", o->data_dir, strerror(errno));
	/* the main thread takes the signals; the loops' threads (and libuv's workers, made
	 * by them) inherit the blocked set */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	signal(SIGPIPE, SIG_IGN);

	struct hollow *h = xcalloc(1, sizeof *h);
	h->o = o;
	h->nodes = xcalloc(o->nodes, sizeof *h->nodes);
	h->nloops = o->nodes < LOOPS_MAX ? o->nodes : LOOPS_MAX;
	h->loops = xcalloc(h->nloops, sizeof *h->loops);
	pthread_mutex_init(&h->mu, NULL);
	for (unsigned k = 0; k < h->nloops; k++) {
		struct hloop *hl = &h->loops[k];
		hl->h = h;
		hl->n = xcalloc(o->nodes / h->nloops + 1, sizeof *hl->n);
		for (unsigned i = k; i < o->nodes; i += h->nloops)
			hl->n[hl->count++] = &h->nodes[i];
		hl->parallel = o->parallel / h->nloops ? o->parallel / h->nloops : 1;
		uv_loop_init(&hl->loop);
		uv_async_init(&hl->loop, &hl->wake, wake_cb);
		hl->wake.data = hl;
		uv_timer_init(&hl->loop, &hl->timer);
		hl->timer.data = hl;
		uv_timer_start(&hl->timer, timer_cb, 50, 50);
	}
	uint64_t t0 = now_ms(), said = t0;
	for (unsigned k = 0; k < h->nloops; k++) {
		h->loops[k].running = !pthread_create(&h->loops[k].thread, NULL, loop_main, &h->loops[k]);
		if (!h->loops[k].running)
			fleet_fail(h, "cannot create a thread for the hollow nodes");
	}
	bool all_said = false;
	while (!__atomic_load_n(&h->stop, __ATOMIC_SEQ_CST)) {
		struct timespec ts = {0, 200 * 1000000};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			log_info(NULL, NULL, "hollow: got signal %d: stopping %u nodes", sig, o->nodes);
			fleet_stop(h);
			break;
		}
		bool all = __atomic_load_n(&h->ready, __ATOMIC_SEQ_CST) == o->nodes;
		if (all && !all_said) {
			all_said = true;
			progress(h, t0, "");
			printf("hollow: all %u nodes ready (pid %d)\n", o->nodes, (int)getpid());
			fflush(stdout);
		} else if (now_ms() - said >= 5000) {
			said = now_ms();
			progress(h, t0, "");
		}
	}
	for (unsigned k = 0; k < h->nloops; k++) {
		struct hloop *hl = &h->loops[k];
		if (hl->running)
			pthread_join(hl->thread, NULL);
		else { /* no thread ran it: its own handles are still open */
			uv_walk(&hl->loop, walk_close, NULL);
			uv_run(&hl->loop, UV_RUN_DEFAULT);
		}
		uv_loop_close(&hl->loop);
		free(hl->n);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (h->err[0]) {
		snprintf(err, ERR_LEN, "%s", h->err);
		rc = E_FAIL;
	}
	pthread_mutex_destroy(&h->mu);
	free(h->loops);
	free(h->nodes);
	free(h);
	return rc;
}
