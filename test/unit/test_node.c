/* Two complete nodes in one process, on one libuv loop, forming a cluster over real TCP on
 * 127.0.0.x: what `orch debug hollow` and a simulation need (no file-level state shared
 * by nodes). Needs root and runc like the agent (it lists its containers on start). */
#include "unit.h"
#include "agent/nettag.h"
#include "creds_fixture.h"
#include "cli/client.h"
#include "node/daemon.h"
#include "util/mem.h"
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

struct two {
	uv_loop_t loop;
	char dir[64];
	struct identity id[2];
	struct token mgr;
	struct daemon_opts opts[2];
	struct daemon *d[2];
	int freed;
};

/* on_stopped: every handle and job of the node is done, so it is freed right here, while
 * the loop still runs the other node's callbacks. */
static void stopped(struct daemon *d, void *arg)
{
	struct two *t = arg;
	for (int i = 0; i < 2; i++)
		if (t->d[i] == d) {
			t->d[i] = NULL;
			t->freed++;
		}
	daemon_free(d);
}

static void opts_for(struct two *t, int i, bool bootstrap, char *dir, size_t cap)
{
	snprintf(dir, cap, "%s/n%d", t->dir, i);
	CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
	struct daemon_opts *o = &t->opts[i];
	memset(o, 0, sizeof *o);
	o->data_dir = dir;
	o->bootstrap = bootstrap;
	o->ready_fd = -1;
	o->raft.election_ms = 500;
	o->raft.heartbeat_ms = 100;
	o->raft.snapshot_threshold = 8192;
	o->raft.snapshot_trailing = 2048;
	o->cpus_milli = 1000;
	o->memory = 1ull << 30;
	o->failure_timeout_ms = 5000;
	o->on_stopped = stopped;
	o->stopped_arg = t;
}

static void start_node(struct two *t, int i, bool bootstrap, char *dir, size_t cap)
{
	char err[ERR_LEN] = "";
	opts_for(t, i, bootstrap, dir, cap);
	t->d[i] = daemon_new(&t->loop, &t->opts[i], &t->id[i]);
	if (daemon_start(t->d[i], err)) {
		fprintf(stderr, "  start node %d: %s\n", i, err);
		exit(1);
	}
}

/* Runs the loop until cond holds (checked every 20 ms), at most ms. */
static void timer_cb(uv_timer_t *h)
{
	(void)h;
}

static bool run_until(struct two *t, bool (*cond)(struct two *), uint64_t ms)
{
	uv_timer_t tm;
	uv_timer_init(&t->loop, &tm);
	uv_timer_start(&tm, timer_cb, 20, 20);
	uint64_t end = now_ms() + ms;
	bool ok;
	while (!(ok = cond(t)) && now_ms() < end)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tm, NULL);
	uv_run(&t->loop, UV_RUN_NOWAIT);
	return ok;
}

static bool first_ready(struct two *t)
{
	const struct store *s = &t->d[0]->store;
	return s->has_cluster && table_get_u64(&s->nodes, t->id[0].id);
}

struct join {
	struct two *t;
	int rc;
	char err[ERR_LEN];
	volatile int done;
};

/* The join request, as orch join sends it, from another thread: the loop must keep
 * running meanwhile to answer it. */
static void *join_main(void *arg)
{
	struct join *j = arg;
	struct two *t = j->t;
	char dir[128];
	snprintf(dir, sizeof dir, "%s/n1", t->dir);
	j->rc = fixture_join(t->id[0].advertise, &t->mgr, &t->id[1], dir, j->err);
	__atomic_store_n(&j->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static struct join *g_join_for_cond; /* the test's own: which join run_until waits for */

static bool joined(struct two *t)
{
	(void)t;
	return __atomic_load_n(&g_join_for_cond->done, __ATOMIC_SEQ_CST);
}

static bool converged(struct two *t)
{
	for (int i = 0; i < 2; i++) {
		const struct store *s = &t->d[i]->store;
		if (s->nodes.n != 2)
			return false;
		TABLE_FOREACH(&s->nodes, const struct node, n)
			if (n->state != NS_READY)
				return false;
	}
	char h0[65], h1[65];
	store_hash(&t->d[0]->store, h0);
	store_hash(&t->d[1]->store, h1);
	return !strcmp(h0, h1);
}

struct submitted {
	int rc;
	bool done;
};

static void kv_done(void *data, int rc, const struct apply_res *res)
{
	struct submitted *s = data;
	(void)res;
	s->rc = rc;
	s->done = true;
}

static struct submitted *g_sub;

static bool kv_seen(struct two *t)
{
	if (!g_sub->done)
		return false;
	for (int i = 0; i < 2; i++) {
		const struct kv *kv = table_get_str(&t->d[i]->store.kv, "greeting");
		if (!kv || strcmp(kv->value, "from the second node"))
			return false;
	}
	return true;
}

static int rm_tree(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd);
}

UNIT(node_two_daemons_one_loop_form_a_cluster)
{
	if (geteuid() != 0) {
		fprintf(stderr, "  needs root (the agent lists its runtime's containers)\n");
		exit(1);
	}
	static struct two t;
	snprintf(t.dir, sizeof t.dir, "/tmp/orch-two-XXXXXX");
	CHECK(mkdtemp(t.dir) != NULL);
	CHECK_EQ_INT(uv_loop_init(&t.loop), 0);
	unsigned host = 2 + (unsigned)getpid() % 200, port = 21000 + (unsigned)getpid() % 2000;
	for (int i = 0; i < 2; i++) {
		t.id[i].id = identity_new_id();
		snprintf(t.id[i].name, sizeof t.id[i].name, "two%d", i);
		snprintf(t.id[i].listen, sizeof t.id[i].listen, "127.0.%u.%u:%u", 1 + i, host, port);
		snprintf(t.id[i].advertise, sizeof t.id[i].advertise, "%s", t.id[i].listen);
	}
	char dirs[2][128];
	char err[ERR_LEN] = "";
	for (int i = 0; i < 2; i++) {
		snprintf(dirs[i], sizeof dirs[i], "%s/n%d", t.dir, i);
		CHECK_EQ_INT(mkdir(dirs[i], 0700), 0);
	}
	struct token wrk;
	fixture_init(dirs[0], &t.id[0], &t.mgr, &wrk);

	/* the first node bootstraps the cluster */
	start_node(&t, 0, true, dirs[0], sizeof dirs[0]);
	CHECK(run_until(&t, first_ready, 10000));

	/* the second asks to join while the loop serves the first, then starts on the same loop */
	struct join j = {.t = &t};
	g_join_for_cond = &j;
	pthread_t th;
	CHECK_EQ_INT(pthread_create(&th, NULL, join_main, &j), 0);
	CHECK(run_until(&t, joined, 20000));
	pthread_join(th, NULL);
	if (j.rc)
		fprintf(stderr, "  join: %s\n", j.err);
	CHECK_EQ_INT(j.rc, 0);
	start_node(&t, 1, false, dirs[1], sizeof dirs[1]);
	CHECK(run_until(&t, converged, 15000));
	CHECK(cons_is_leader(&t.d[0]->cons));
	CHECK(!cons_is_leader(&t.d[1]->cons));
	/* heartbeats of the second reached the first's leader controllers */
	bool seen = false;
	for (size_t i = 0; i < t.d[0]->leader.nseen; i++)
		seen |= t.d[0]->leader.seen[i].id == t.id[1].id;
	CHECK(seen);

	/* a write from the follower goes to the leader over the link and comes back applied */
	struct submitted sub = {0};
	g_sub = &sub;
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "key", "greeting");
	mpw_kstr(&w, "value", "from the second node");
	mpw_map_end(&w);
	CHECK_EQ_INT(daemon_submit_data(t.d[1], CMD_KV_SET, w.sb.data, w.sb.size, kv_done, &sub, err), 0);
	mpw_free(&w);
	CHECK(run_until(&t, kv_seen, 10000));
	CHECK_EQ_INT(sub.rc, 0);

	/* both stop; each is freed from its on_stopped callback, and then nothing of either is
	 * left on the shared loop: it ends and closes */
	daemon_stop(t.d[1], 0);
	daemon_stop(t.d[0], 0);
	uv_run(&t.loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(t.freed, 2);
	CHECK(!t.d[0] && !t.d[1]);
	CHECK_EQ_INT(uv_loop_close(&t.loop), 0);
	for (int i = 0; i < 2; i++)
		nettag_release_dir(dirs[i]);
	CHECK_EQ_INT(rm_tree(t.dir), 0);
}
