/* The dispatcher of a real node (node/rpc.c over net/proto.h), driven through its local
 * socket and its node port by a client thread while the test's loop serves: every op of
 * the table refuses a missing or wrong-typed field, naming it, before its handler runs;
 * an op asked on the wrong socket is refused; and thousands of random requests each get a
 * reply while the node keeps serving. Needs root and runc like every node (its agent
 * lists its runtime's containers on start). */
#include "unit.h"
#include "agent/nettag.h"
#include "creds_fixture.h"
#include "reqgen.h"
#include "cli/client.h"
#include "node/daemon.h"
#include "util/mem.h"
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

struct one {
	uv_loop_t loop;
	char dir[64], data[96];
	struct identity id;
	struct daemon_opts opts;
	struct daemon *d;
	/* the client thread's */
	void (*work)(struct one *o);
	volatile int done;
	int failures;
	char first_failure[512];
};

static void fail(struct one *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct one *o, const char *fmt, ...)
{
	if (!o->failures++) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(o->first_failure, sizeof o->first_failure, fmt, ap);
		va_end(ap);
	}
}

static void tick(uv_timer_t *h)
{
	(void)h;
}

static bool run_until(struct one *o, bool (*cond)(struct one *), uint64_t ms)
{
	uv_timer_t tm;
	uv_timer_init(&o->loop, &tm);
	uv_timer_start(&tm, tick, 20, 20);
	uint64_t end = now_ms() + ms;
	bool ok;
	while (!(ok = cond(o)) && now_ms() < end)
		uv_run(&o->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tm, NULL);
	uv_run(&o->loop, UV_RUN_NOWAIT);
	return ok;
}

static bool ready(struct one *o)
{
	return o->d->store.has_cluster && table_get_u64(&o->d->store.nodes, o->id.id) && cons_is_leader(&o->d->cons);
}

static bool work_done(struct one *o)
{
	return __atomic_load_n(&o->done, __ATOMIC_SEQ_CST);
}

static void *client_main(void *arg)
{
	struct one *o = arg;
	o->work(o);
	__atomic_store_n(&o->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Starts a one-node cluster, runs work in a client thread while the loop serves, stops. */
static void with_node(void (*work)(struct one *o))
{
	if (geteuid() != 0) {
		fprintf(stderr, "  needs root (the agent lists its runtime's containers)\n");
		exit(1);
	}
	static struct one o;
	char err[ERR_LEN] = "";
	snprintf(o.dir, sizeof o.dir, "/tmp/orch-dispatch-XXXXXX");
	CHECK(mkdtemp(o.dir) != NULL);
	snprintf(o.data, sizeof o.data, "%s/n", o.dir);
	CHECK_EQ_INT(mkdir(o.data, 0700), 0);
	CHECK_EQ_INT(uv_loop_init(&o.loop), 0);
	o.id.id = identity_new_id();
	struct token mgr, wrk;
	fixture_init(o.data, &o.id, &mgr, &wrk);
	snprintf(o.id.name, sizeof o.id.name, "solo");
	snprintf(o.id.listen, sizeof o.id.listen, "127.0.3.%u:%u", 2 + (unsigned)getpid() % 200,
		 23000 + (unsigned)getpid() % 2000);
	snprintf(o.id.advertise, sizeof o.id.advertise, "%s", o.id.listen);
	o.opts = (struct daemon_opts){.data_dir = o.data, .bootstrap = true, .ready_fd = -1, .cpus_milli = 1000,
				      .memory = 1ull << 30, .failure_timeout_ms = 5000};
	o.opts.raft.election_ms = 500;
	o.opts.raft.heartbeat_ms = 100;
	o.opts.raft.snapshot_threshold = 8192;
	o.opts.raft.snapshot_trailing = 2048;
	o.d = daemon_new(&o.loop, &o.opts, &o.id);
	if (daemon_start(o.d, err)) {
		fprintf(stderr, "  start: %s\n", err);
		exit(1);
	}
	CHECK(run_until(&o, ready, 10000));
	o.work = work;
	pthread_t th;
	CHECK_EQ_INT(pthread_create(&th, NULL, client_main, &o), 0);
	bool finished = run_until(&o, work_done, 25000);
	if (finished)
		pthread_join(th, NULL);
	CHECK(finished);
	if (o.failures)
		fprintf(stderr, "  %d failures, the first: %s\n", o.failures, o.first_failure);
	CHECK_EQ_INT(o.failures, 0);
	CHECK(!o.d->stopping);
	daemon_stop(o.d, 0);
	uv_run(&o.loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&o.loop), 0);
	daemon_free(o.d);
	char cmd[128];
	nettag_release_dir(o.data);
	snprintf(cmd, sizeof cmd, "rm -rf %s", o.dir);
	CHECK_EQ_INT(system(cmd), 0);
}

static int open_conn(struct one *o, struct client *c, bool tcp, char *err)
{
	return tcp ? client_open_tcp(c, o->id.advertise, &o->id.tls, 5000, err) : client_open_local(c, o->data, err);
}

/* Sends a packed request and reads frames until the one answering `id` (a watch keeps
 * sending frames of its own id). 0 with the reply, or a transport error. */
static int ask(struct client *c, const struct mpw *w, uint64_t id, struct mpr *r, char *err)
{
	int rc = client_send(c, w, err);
	while (!rc) {
		if ((rc = client_read(c, r, 10000, err)))
			break;
		uint64_t got = 0;
		if (!mp_get_u64(r->root, "id", &got) && got == id)
			return 0;
		mpr_free(r);
	}
	return rc;
}

/* ---- every field of every op ------------------------------------------------------------------ */

static void expect(struct one *o, struct client *c, const struct mpw *w, uint64_t id, int want_rc, const char *want_in_err,
		   const char *what)
{
	struct mpr r;
	char err[ERR_LEN] = "";
	if (ask(c, w, id, &r, err)) {
		fail(o, "%s: no reply (%s)", what, err);
		return;
	}
	int64_t rc = 0;
	char msg[ERR_LEN] = "";
	mp_get_i64(r.root, "rc", &rc);
	mp_get_strbuf(r.root, "err", msg, sizeof msg);
	if (rc != want_rc || !strstr(msg, want_in_err))
		fail(o, "%s: rc %lld \"%s\", expected rc %d naming \"%s\"", what, (long long)rc, msg, want_rc, want_in_err);
	mpr_free(&r);
}

static void fields_work(struct one *o)
{
	struct client local, tcp;
	char err[ERR_LEN], what[160], want[96];
	if (open_conn(o, &local, false, err) || open_conn(o, &tcp, true, err)) {
		fail(o, "connect: %s", err);
		return;
	}
	uint64_t id = 100;
	for (int op = 0; op < OP__COUNT; op++) {
		const struct proto_op *d = &proto_ops[op];
		struct client *c = d->via == VIA_PEER ? &tcp : &local;
		/* on the wrong socket: refused, whatever the fields */
		if (d->via != VIA_ANY) {
			struct mpw w;
			mpw_init(&w);
			reqgen_request(&w, (enum op)op, ++id, REQGEN_NONE, false, false);
			snprintf(what, sizeof what, "%s on the wrong socket", d->name);
			expect(o, d->via == VIA_PEER ? &local : &tcp, &w, id, E_UNSUPP, d->name, what);
			mpw_free(&w);
		}
		for (size_t i = 0; i < d->nfields; i++) {
			const struct fl_field *f = &d->fields[i];
			snprintf(want, sizeof want, "%s: field %s ", d->name, f->name);
			for (int how = 0; how < 3; how++) {
				if ((how == 0 && !f->required) || (how == 1 && f->kind == FL_ANY) ||
				    (how == 2 && (f->kind != FL_STR || !f->arg)))
					continue;
				struct mpw w;
				mpw_init(&w);
				reqgen_request(&w, (enum op)op, ++id, i, how == 1, how == 2);
				snprintf(what, sizeof what, "%s with field %s %s", d->name, f->name,
					 how == 0 ? "missing" : how == 1 ? "of the wrong type" : "too long");
				expect(o, c, &w, id, E_INVAL, want, what);
				mpw_free(&w);
			}
		}
	}
	/* no op, an op that is not a string, an op nobody serves */
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", ++id);
	mpw_map_end(&w);
	expect(o, &local, &w, id, E_INVAL, "without op", "a request without op");
	mpw_free(&w);
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", ++id);
	mpw_ku64(&w, "op", 3);
	mpw_map_end(&w);
	expect(o, &tcp, &w, id, E_INVAL, "without op", "an op that is a number");
	mpw_free(&w);
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", ++id);
	mpw_kstr(&w, "op", "no.such.op");
	mpw_map_end(&w);
	expect(o, &local, &w, id, E_UNSUPP, "unknown op no.such.op", "an unknown op");
	mpw_free(&w);
	client_close(&local);
	client_close(&tcp);
}

UNIT(dispatch_refuses_bad_fields_by_name)
{
	with_node(fields_work);
}

/* ---- random requests ---------------------------------------------------------------------------- */

#define RANDOM_REQUESTS 3000

static void random_work(struct one *o)
{
	struct prng g = {0xd15ba7c4};
	struct client cs[2];
	char err[ERR_LEN];
	for (int i = 0; i < 2; i++)
		if (open_conn(o, &cs[i], i == 1, err)) {
			fail(o, "connect: %s", err);
			return;
		}
	int answered = 0;
	for (uint64_t n = 1; n <= RANDOM_REQUESTS; n++) {
		enum op op = (enum op)prng_below(&g, OP__COUNT);
		/* never the one that makes a member of the cluster leave, nor a pull: a random
		 * name is a Docker Hub image, and tests talk only to 127.0.0.0/8 */
		if (op == OP_LEAVE || op == OP_IMAGE_PULL || op == OP_IMAGE_RESOLVE)
			continue;
		int k = prng_below(&g, 3) == 0;
		struct mpw w;
		mpw_init(&w);
		reqgen_random(&g, &w, op, n);
		struct mpr r;
		int rc = ask(&cs[k], &w, n, &r, err);
		if (rc) {
			fail(o, "request %llu (%s) over %s: no reply: %s", (unsigned long long)n, proto_name(op),
			     k ? "the node port" : "the local socket", err);
		} else {
			int64_t code;
			if (mp_get_i64(r.root, "rc", &code))
				fail(o, "request %llu (%s): reply without rc", (unsigned long long)n, proto_name(op));
			answered++;
			mpr_free(&r);
		}
		mpw_free(&w);
		if (o->failures)
			break;
	}
	if (answered < RANDOM_REQUESTS * 9 / 10)
		fail(o, "only %d of %d random requests answered", answered, RANDOM_REQUESTS);
	/* still serving */
	struct req_ping p = {0};
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, OP_PING, 7777777, &p);
	struct mpr r;
	if (ask(&cs[0], &w, 7777777, &r, err))
		fail(o, "ping after the random requests: %s", err);
	else
		mpr_free(&r);
	mpw_free(&w);
	client_close(&cs[0]);
	client_close(&cs[1]);
}

UNIT(dispatch_survives_random_requests)
{
	with_node(random_work);
}
