/* A deterministic simulation of the leader's controllers: the state machine plus the
 * reconciler on a virtual clock, with agents simulated by task.batch reports. No I/O. */
#include "unit.h"
#include "entry.h"
#include "orchestrator/reconcile.h"
#include "orchestrator/rebalance.h"
#include "orchestrator/volplace.h"
#include "spec/spec.h"
#include "util/mem.h"

static uint64_t g_seq;

static void run_cmd(struct store *s, enum cmd type, struct mpw *body, struct apply_res *res)
{
	size_t n;
	struct req_id q = {99, 1, ++g_seq};
	void *e = cmd_build(type, &q, body->sb.data, body->sb.size, &n);
	store_apply(s, e, n, res);
	free(e);
}

static void add_node(struct store *s, uint64_t id, const char *name)
{
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", id);
	mpw_kstr(&w, "name", name);
	mpw_kstr(&w, "addr", "127.0.0.1:1");
	mpw_ku64(&w, "cpus_milli", 2000);
	mpw_ku64(&w, "memory", 4ull << 30);
	mpw_map_end(&w);
	run_cmd(s, CMD_NODE_ADD, &w, &res);
	mpw_free(&w);
	CHECK_EQ_INT(res.rc, 0);
}

/* Sets one field of a node's record (state or availability), as node.update does. */
static void node_set(struct store *s, uint64_t id, const char *key, const char *value)
{
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", id);
	mpw_kstr(&w, key, value);
	mpw_map_end(&w);
	run_cmd(s, CMD_NODE_UPDATE, &w, &res);
	mpw_free(&w);
	CHECK_EQ_INT(res.rc, 0);
}

static void deploy(struct store *s, const char *yaml)
{
	struct apply_res res;
	entry_put_service(s, yaml, &res);
	CHECK(res.rc == 0 || res.rc == E_EXISTS);
}

/* One controller pass; returns whether it changed anything. */
static bool pass(struct store *s, uint64_t now)
{
	struct mpw w;
	mpw_init(&w);
	bool work = reconcile(s, now, &w);
	if (work) {
		struct apply_res res;
		run_cmd(s, CMD_TASK_BATCH, &w, &res);
		CHECK(res.rc == 0 || res.rc == E_EXISTS);
	}
	mpw_free(&w);
	return work;
}

/* Simulated agents: assigned tasks start running; tasks asked to stop end. */
static void agents(struct store *s, uint64_t now)
{
	struct mpw w;
	mpw_init(&w);
	uint32_t n = 0;
	struct mpw u;
	mpw_init(&u);
	TABLE_FOREACH(&s->tasks, struct task, t) {
		if (!t->node_id || task_terminal(t))
			continue;
		const struct node *nd = table_get_u64(&s->nodes, t->node_id);
		if (nd && nd->state == NS_DOWN)
			continue; /* a dead node reports nothing */
		const char *to = t->desired == TD_SHUTDOWN ? "shutdown" : t->state == TS_RUNNING ? NULL : "running";
		if (!to)
			continue;
		mpw_map_begin(&u);
		mpw_ku64(&u, "id", t->id);
		mpw_kstr(&u, "state", to);
		mpw_map_end(&u);
		n++;
	}
	if (n) {
		mpw_map_begin(&w);
		mpw_ku64(&w, "at", now);
		mpw_key(&w, "update");
		mpw_arr(&w, n);
		mpw_raw(&w, u.sb.data, u.sb.size);
		struct apply_res res;
		mpw_map_end(&w);
		run_cmd(s, CMD_TASK_BATCH, &w, &res);
	}
	mpw_free(&u);
	mpw_free(&w);
}

static void settle(struct store *s, uint64_t *now, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		*now += 200;
		pass(s, *now);
		agents(s, *now);
	}
}

static unsigned live_on(const struct store *s, uint64_t node)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (t->node_id == node && t->desired == TD_RUNNING && t->state == TS_RUNNING)
			n++;
	return n;
}

static unsigned live(const struct store *s)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (t->desired == TD_RUNNING && t->state == TS_RUNNING)
			n++;
	return n;
}

/* A new store with nodes 1, 2 and 3 (n1, n2, n3). */
static void three_nodes(struct store *s)
{
	store_init(s);
	add_node(s, 1, "n1");
	add_node(s, 2, "n2");
	add_node(s, 3, "n3");
}

UNIT(reconcile_spreads_heals_and_scales)
{
	struct store s;
	uint64_t now = 1000;
	three_nodes(&s);
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 6\n");
	settle(&s, &now, 5);
	CHECK_EQ_INT(live(&s), 6);
	for (uint64_t n = 1; n <= 3; n++)
		CHECK_EQ_INT(live_on(&s, n), 2);
	/* node 3 goes down: its tasks are orphaned and replaced on the others */
	node_set(&s, 3, "state", "down");
	struct mpw w;
	struct apply_res res;
	settle(&s, &now, 5);
	CHECK_EQ_INT(live_on(&s, 1) + live_on(&s, 2), 6);
	CHECK_EQ_INT(live_on(&s, 1), 3);
	/* scale down: exactly 2 stay */
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "web");
	mpw_ku64(&w, "replicas", 2);
	mpw_map_end(&w);
	run_cmd(&s, CMD_SERVICE_SCALE, &w, &res);
	mpw_free(&w);
	settle(&s, &now, 5);
	CHECK_EQ_INT(live(&s), 2);
	/* nothing left to do: the controller is quiet */
	CHECK(!pass(&s, now + 200));
	store_free(&s);
}

UNIT(reconcile_unschedulable_has_a_reason)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	deploy(&s, "services:\n  big:\n    image: demo\n    deploy:\n      resources:\n        reservations:\n          memory: 100g\n");
	settle(&s, &now, 3);
	CHECK_EQ_INT(live(&s), 0);
	bool found = false;
	TABLE_FOREACH(&s.tasks, struct task, t)
		if (t->err && strstr(t->err, "no node with 100.0 GiB of memory free: 1 nodes checked"))
			found = true;
	CHECK(found);
	store_free(&s);
}

UNIT(reconcile_rolls_out_one_at_a_time)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 4\n      update_config:\n        monitor: 1s\n");
	settle(&s, &now, 5);
	CHECK_EQ_INT(live(&s), 4);
	deploy(&s, "services:\n  web:\n    image: demo\n    environment: {V: \"2\"}\n    deploy:\n      replicas: 4\n      update_config:\n        monitor: 1s\n");
	struct service *v = store_service_by_name(&s, "web");
	CHECK_EQ_INT(v->generation, 2);
	/* during the rollout at least replicas - parallelism tasks stay running */
	for (int i = 0; i < 80 && strcmp(v->update_state, "completed"); i++) {
		settle(&s, &now, 1);
		CHECK(live(&s) >= 3);
	}
	CHECK_STR(v->update_state, "completed");
	unsigned new_gen = 0;
	TABLE_FOREACH(&s.tasks, struct task, t)
		if (t->state == TS_RUNNING && t->generation == 2)
			new_gen++;
	CHECK_EQ_INT(new_gen, 4);
	store_free(&s);
}

UNIT(reconcile_drain_starts_elsewhere_first)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 4\n");
	settle(&s, &now, 5);
	CHECK_EQ_INT(live_on(&s, 2), 2);
	node_set(&s, 2, "availability", "drain");
	/* first pass: replacements are created while the drained tasks keep running */
	now += 200;
	pass(&s, now);
	CHECK_EQ_INT(live(&s), 4);
	for (int i = 0; i < 10; i++) {
		settle(&s, &now, 1);
		CHECK(live(&s) >= 4);
	}
	CHECK_EQ_INT(live_on(&s, 2), 0);
	CHECK_EQ_INT(live_on(&s, 1), 4);
	store_free(&s);
}

UNIT(reconcile_rollout_pauses_on_never_ready)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	const char *v1 = "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 2\n      update_config:\n        monitor: 1s\n";
	deploy(&s, v1);
	settle(&s, &now, 5);
	CHECK_EQ_INT(live(&s), 2);
	/* v2 has a readiness probe that never passes (the simulated agent never reports ready) */
	const char *v2 = "services:\n  web:\n    image: demo\n    x-orch-healthcheck: {type: http, port: 80, interval: 1s, retries: 1}\n"
			 "    deploy:\n      replicas: 2\n      update_config:\n        monitor: 1s\n";
	deploy(&s, v2);
	struct service *v = store_service_by_name(&s, "web");
	for (int i = 0; i < 40; i++) {
		settle(&s, &now, 1);
		TABLE_FOREACH(&s.tasks, struct task, t) /* the agent says: running but unready */
			if (t->generation == 2 && t->state == TS_RUNNING && !t->ready) {
				free(t->ready);
				t->ready = xstrdup("unready");
			}
	}
	CHECK_STR(v->update_state, "paused");
	CHECK(strstr(v->update_msg, "failed") != NULL);
	CHECK(live(&s) >= 1);
	store_free(&s);
}

/* ---- restarts that back off ------------------------------------------------------------------ */

/* A simulated agent whose tasks all end on their own: `end` ("rejected": at once, as a
 * task that cannot start; "failed" or "complete": after running run_ms). Each report is
 * its own task.batch, as the real agent sends them; returns how many it sent. */
static unsigned crash_agents(struct store *s, uint64_t now, const char *end, uint64_t run_ms)
{
	unsigned sent = 0;
	uint64_t ids[64];
	const char *to[64];
	size_t n = 0;
	TABLE_FOREACH(&s->tasks, struct task, t) {
		if (!t->node_id || task_terminal(t) || n == 64)
			continue;
		if (t->desired == TD_SHUTDOWN)
			to[n] = "shutdown";
		else if (!strcmp(end, "rejected"))
			to[n] = "rejected";
		else if (t->state != TS_RUNNING)
			to[n] = "running";
		else if (now >= t->started_at + run_ms)
			to[n] = end;
		else
			continue;
		ids[n++] = t->id;
	}
	for (size_t i = 0; i < n; i++) {
		struct mpw w;
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_ku64(&w, "at", now);
		mpw_key(&w, "update");
		mpw_arr(&w, 1);
		bool err = !strcmp(to[i], "rejected") || !strcmp(to[i], "failed");
		mpw_map_begin(&w);
		mpw_ku64(&w, "id", ids[i]);
		mpw_kstr(&w, "state", to[i]);
		if (err)
			mpw_kstr(&w, "err", !strcmp(to[i], "rejected") ? "exec: no such file" : "exit code 1");
		mpw_map_end(&w);
		mpw_map_end(&w);
		struct apply_res res;
		run_cmd(s, CMD_TASK_BATCH, &w, &res);
		mpw_free(&w);
		sent++;
	}
	return sent;
}

/* The slot's task with the highest id (the newest), or NULL. */
static struct task *newest(struct store *s, const char *svc, uint64_t slot)
{
	struct task *best = NULL;
	TABLE_FOREACH(&s->tasks, struct task, t)
		if (!strcmp(t->service, svc) && t->slot == slot && (!best || t->id > best->id))
			best = t;
	return best;
}

/* Runs the controller and the crashing agent every 200 ms of virtual time until `until`,
 * noting each new task of slot 1 of `svc` (restarts, failures, start_after, and when its
 * predecessor ended). Returns the raft entries spent (batches the controller wrote plus
 * reports). */
struct seen_task {
	uint64_t id, restarts, failures, start_after, prev_end, placed_at;
};
struct crash_run {
	struct seen_task t[64];
	size_t n;
	unsigned entries;
};

static void crash_loop(struct store *s, uint64_t *now, uint64_t until, const char *svc, const char *end, uint64_t run_ms,
		       struct crash_run *r)
{
	while (*now < until) {
		*now += 200;
		if (pass(s, *now))
			r->entries++;
		r->entries += crash_agents(s, *now, end, run_ms);
		struct task *t = newest(s, svc, 1);
		if (!t)
			continue;
		struct seen_task *last = r->n ? &r->t[r->n - 1] : NULL;
		if (!last || last->id != t->id) {
			CHECK(r->n < 64);
			struct seen_task *x = &r->t[r->n++];
			memset(x, 0, sizeof *x);
			x->id = t->id;
			x->restarts = t->restarts;
			x->failures = t->failures;
			x->start_after = t->start_after;
			if (last) {
				struct task *p = table_get_u64(&s->tasks, last->id);
				CHECK(p && task_terminal(p));
				x->prev_end = p->state_at;
			}
			last = x;
		}
		if (!last->placed_at && t->node_id)
			last->placed_at = *now;
	}
}

/* A fresh state: one node and the service of `yaml`. */
static void one_node(struct store *s, const char *yaml)
{
	store_init(s);
	add_node(s, 1, "n1");
	deploy(s, yaml);
}

/* one_node, then for_ms of crash_loop on service web; returns the virtual time. */
static uint64_t crash_service(struct store *s, const char *yaml, const char *end, uint64_t run_ms, uint64_t for_ms,
			      struct crash_run *r)
{
	uint64_t now = 1000;
	one_node(s, yaml);
	memset(r, 0, sizeof *r);
	crash_loop(s, &now, now + for_ms, "web", end, run_ms, r);
	return now;
}

static unsigned events_of(const struct store *s, const char *kind)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->events, const struct event, e)
		if (!strcmp(e->kind, kind))
			n++;
	return n;
}

static unsigned count_tasks(const struct store *s, const char *svc)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (!strcmp(t->service, svc))
			n++;
	return n;
}

UNIT(reconcile_backoff_doubles_to_the_cap)
{
	struct store s;
	struct crash_run r;
	uint64_t now = crash_service(&s, "services:\n  web:\n    image: demo\n    command: [\"/nope\"]\n", "rejected", 0, 40 * 60 * 1000, &r);
	/* 5, 10, 20, 40, 80, 160 s, then 300 s (the cap) every time */
	static const uint64_t want[] = {5, 10, 20, 40, 80, 160, 300, 300, 300, 300, 300};
	CHECK(r.n >= 11);
	for (size_t k = 1; k < r.n; k++) {
		const struct seen_task *x = &r.t[k];
		uint64_t gap = x->start_after - x->prev_end;
		uint64_t w = (k - 1 < 11 ? want[k - 1] : 300) * 1000;
		if (gap < w || gap > w + 200) /* the pass after the end, at most one tick later */
			fprintf(stderr, "  restart %zu waits %llu ms, want %llu\n", k, (unsigned long long)gap, (unsigned long long)w);
		CHECK(gap >= w && gap <= w + 200);
		CHECK_EQ_INT(x->failures, k);
		CHECK_EQ_INT(x->restarts, k); /* a task that could not start is a restart like any */
		if (x->start_after + 200 <= now) /* placed at its time, not before */
			CHECK(x->placed_at >= x->start_after && x->placed_at <= x->start_after + 200);
		else
			CHECK(!x->placed_at);
	}
	/* 40 minutes: 1 + 6 doublings (5+10+...+160 = 315 s) + 7 capped restarts (2100 s),
	 * the last one waiting */
	CHECK_EQ_INT(r.n, 14);
	/* each attempt costs at most 3 entries: create (with the predecessor's shutdown and
	 * history trimming), placement, the rejection report */
	CHECK(r.entries <= 3 * r.n + 1);
	/* history is trimmed: the waiting task and TASK_HISTORY ended ones */
	CHECK_EQ_INT(count_tasks(&s, "web"), TASK_HISTORY + 1);
	/* one restarting event per restart, with the wait */
	unsigned evs = 0;
	TABLE_FOREACH(&s.events, struct event, e)
		if (!strcmp(e->kind, "restarting")) {
			evs++;
			CHECK(strstr(e->message, "rejected: exec: no such file") != NULL);
		}
	CHECK_EQ_INT(evs, r.n - 1);
	store_free(&s);
}

UNIT(reconcile_backoff_resets_after_window)
{
	struct store s;
	/* runs 12 s, then fails: longer than its window of 10 s, so every failure is a first */
	struct crash_run r;
	uint64_t now = crash_service(&s, "services:\n  web:\n    image: demo\n    deploy:\n      restart_policy: {window: 10s, delay: 2s}\n",
				     "failed", 12000, 120 * 1000, &r);
	CHECK(r.n >= 6);
	for (size_t k = 1; k < r.n; k++) {
		CHECK_EQ_INT(r.t[k].failures, 1);
		CHECK_EQ_INT(r.t[k].restarts, k);
		uint64_t gap = r.t[k].start_after - r.t[k].prev_end;
		CHECK(gap >= 2000 && gap <= 2200);
	}
	/* the same task running 8 s (< window) keeps doubling */
	deploy(&s, "services:\n  web:\n    image: demo\n    environment: {V: \"2\"}\n    deploy:\n"
		   "      restart_policy: {window: 10s, delay: 2s}\n");
	struct crash_run r2 = {0};
	crash_loop(&s, &now, now + 120 * 1000, "web", "failed", 8000, &r2);
	CHECK(r2.n >= 4);
	/* the first task seen may still be the old generation's, shutting down */
	size_t first = 0;
	while (first < r2.n && r2.t[first].failures)
		first++;
	for (size_t k = first + 1; k < r2.n; k++) {
		CHECK_EQ_INT(r2.t[k].failures, k - first);
		uint64_t gap = r2.t[k].start_after - r2.t[k].prev_end;
		uint64_t w = 2000ull << (k - first - 1);
		CHECK(gap >= w && gap <= w + 200);
	}
	store_free(&s);
}

UNIT(reconcile_backoff_default_window_is_five_minutes)
{
	struct store s;
	/* 4 m 50 s of running is not enough: failures add up */
	struct crash_run r;
	crash_service(&s, "services:\n  web:\n    image: demo\n", "failed", 290 * 1000, 16 * 60 * 1000, &r);
	CHECK(r.n >= 3);
	CHECK_EQ_INT(r.t[2].failures, 2);
	store_free(&s);
	/* 5 minutes is */
	struct crash_run r2;
	crash_service(&s, "services:\n  web:\n    image: demo\n", "failed", 300 * 1000, 16 * 60 * 1000, &r2);
	CHECK(r2.n >= 3);
	for (size_t k = 1; k < r2.n; k++)
		CHECK_EQ_INT(r2.t[k].failures, 1);
	store_free(&s);
}

UNIT(reconcile_rejected_counts_for_max_attempts)
{
	struct store s;
	struct crash_run r;
	uint64_t now = crash_service(&s, "services:\n  web:\n    image: demo\n    deploy:\n      restart_policy: {max_attempts: 3, delay: 1s}\n",
				     "rejected", 0, 30 * 60 * 1000, &r);
	/* the first task and 3 restarts (after 1, 2 and 4 s), then nothing for half an hour */
	CHECK_EQ_INT(r.n, 4);
	CHECK_EQ_INT(count_tasks(&s, "web"), 4);
	TABLE_FOREACH(&s.tasks, struct task, t)
		CHECK_EQ_INT(t->state, TS_REJECTED);
	CHECK_EQ_INT(r.t[3].failures, 3);
	CHECK_EQ_INT(r.t[3].start_after - r.t[3].prev_end >= 4000, 1);
	CHECK_EQ_INT(events_of(&s, "restart_limit"), 1);
	CHECK(!pass(&s, now + 200));
	/* a new spec starts afresh, at once */
	deploy(&s, "services:\n  web:\n    image: demo\n    command: [\"sleep\", \"1d\"]\n    deploy:\n"
		   "      restart_policy: {max_attempts: 3, delay: 1s}\n");
	now += 200;
	pass(&s, now);
	struct task *t = newest(&s, "web", 1);
	CHECK_EQ_INT(t->generation, 2);
	CHECK_EQ_INT(t->failures, 0);
	CHECK_EQ_INT(t->start_after, 0);
	store_free(&s);
}

/* Deploys `yaml` (one service, web) and lets its first task end as `end`: the slot's
 * tasks afterwards. */
static unsigned after_one_end(const char *yaml, const char *end, struct store *s)
{
	struct crash_run r;
	uint64_t now = crash_service(s, yaml, end, 0, 600, &r); /* placed, started, ended */
	CHECK(r.n >= 1);
	settle(s, &now, 1);
	return count_tasks(s, "web");
}

UNIT(reconcile_restart_condition)
{
	struct store s;
	const char *none = "services:\n  web:\n    image: demo\n    deploy:\n      restart_policy: {condition: none}\n";
	const char *onf = "services:\n  web:\n    image: demo\n    deploy:\n      restart_policy: {condition: on-failure}\n";
	const char *any = "services:\n  web:\n    image: demo\n    deploy:\n      restart_policy: {condition: any}\n";
	CHECK_EQ_INT(after_one_end(none, "failed", &s), 1);
	store_free(&s);
	CHECK_EQ_INT(after_one_end(none, "rejected", &s), 1);
	store_free(&s);
	CHECK_EQ_INT(after_one_end(none, "complete", &s), 1);
	store_free(&s);
	CHECK_EQ_INT(after_one_end(onf, "complete", &s), 1);
	store_free(&s);
	CHECK_EQ_INT(after_one_end(onf, "failed", &s), 2);
	CHECK_EQ_INT(newest(&s, "web", 1)->failures, 1);
	store_free(&s);
	CHECK_EQ_INT(after_one_end(onf, "rejected", &s), 2);
	CHECK_EQ_INT(newest(&s, "web", 1)->failures, 1);
	store_free(&s);
	/* any: a clean exit is restarted, and backs off like a failure (a loop all the same) */
	CHECK_EQ_INT(after_one_end(any, "complete", &s), 2);
	struct task *t = newest(&s, "web", 1);
	CHECK_EQ_INT(t->failures, 1);
	CHECK(t->start_after >= t->created_at + 5000);
	CHECK_EQ_INT(t->state, TS_PENDING);
	store_free(&s);
}

/* A new leader has only the replicated state: restored from a snapshot, the controller
 * keeps the waiting restart where it is and goes on doubling. */
UNIT(reconcile_backoff_survives_a_new_leader)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	struct mpw w;
	struct apply_res res;
	mpw_init(&w); /* a real cluster's record: it carries the id counter across snapshots */
	mpw_map_begin(&w);
	mpw_kstr(&w, "id", "c1");
	mpw_kstr(&w, "secret_hash", "h");
	mpw_map_end(&w);
	run_cmd(&s, CMD_CLUSTER_INIT, &w, &res);
	mpw_free(&w);
	CHECK_EQ_INT(res.rc, 0);
	add_node(&s, 1, "n1");
	deploy(&s, "services:\n  web:\n    image: demo\n    command: [\"/nope\"]\n");
	struct crash_run r = {0};
	crash_loop(&s, &now, now + 70 * 1000, "web", "rejected", 0, &r); /* 5 + 10 + 20 s, then 40 s waiting */
	struct task *wt = newest(&s, "web", 1);
	CHECK_EQ_INT(wt->state, TS_PENDING);
	CHECK_EQ_INT(wt->failures, 4);
	CHECK(wt->start_after > now);
	uint64_t due = wt->start_after, wid = wt->id;

	struct store s2;
	entry_restore_copy(&s, &s2);
	store_free(&s);
	/* until the recorded time: no new task, no placement */
	while (now + 200 < due) {
		now += 200;
		CHECK(!pass(&s2, now));
	}
	struct crash_run r2 = {0};
	r2.t[0].id = wid;
	r2.n = 1;
	crash_loop(&s2, &now, due + 200 * 1000, "web", "rejected", 0, &r2);
	CHECK(r2.n >= 3);
	CHECK_EQ_INT(r2.t[1].failures, 5);
	CHECK(r2.t[1].start_after - r2.t[1].prev_end >= 80 * 1000);
	CHECK_EQ_INT(r2.t[2].failures, 6);
	CHECK(r2.t[2].start_after - r2.t[2].prev_end >= 160 * 1000);
	store_free(&s2);
}

static unsigned count_all(const struct store *s, bool placed)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		n += !placed || t->node_id != 0;
	return n;
}

/* A pass is bounded (reconcile.h): 12,000 replicas are created and placed over several
 * entries, the pass tells that work is left until none is, every slot gets exactly one
 * task, and the scheduler spreads them evenly over the nodes. */
UNIT(reconcile_big_deploy_is_capped_per_pass)
{
	struct store s;
	store_init(&s);
	char name[16];
	for (uint64_t i = 1; i <= 40; i++) {
		snprintf(name, sizeof name, "n%llu", (unsigned long long)i);
		add_node(&s, i, name);
	}
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 12000\n");
	uint64_t now = 1000;
	unsigned passes = 0;
	struct reconcile_out out;
	do {
		struct mpw w;
		mpw_init(&w);
		bool work = reconcile_live(&s, now, &w, NULL, NULL, NULL, &out);
		if (work) {
			struct apply_res res;
			run_cmd(&s, CMD_TASK_BATCH, &w, &res);
			CHECK_EQ_INT(res.rc, 0);
		}
		mpw_free(&w);
		CHECK(out.created <= RECONCILE_CREATE_MAX && out.placed <= RECONCILE_PLACE_MAX);
		passes++;
	} while (out.capped && passes < 20);
	CHECK(!out.capped);
	CHECK(passes >= 4); /* 12,000 creations and placements at 5,000 a pass */
	CHECK_EQ_INT(count_all(&s, false), 12000);
	CHECK_EQ_INT(count_all(&s, true), 12000);
	bool slot_seen[12001] = {false};
	TABLE_FOREACH(&s.tasks, const struct task, t) {
		CHECK(t->slot >= 1 && t->slot <= 12000 && !slot_seen[t->slot]);
		slot_seen[t->slot] = true;
	}
	for (uint64_t i = 1; i <= 40; i++) {
		unsigned n = 0;
		TABLE_FOREACH(&s.tasks, const struct task, t)
			n += t->node_id == i;
		CHECK_EQ_INT(n, 300);
	}
	store_free(&s);
}

/* The live task of a service's slot, or NULL. */
static const struct task *slot_live(const struct store *s, const char *svc, uint64_t slot)
{
	const struct task *hit = NULL;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (!strcmp(t->service, svc) && t->slot == slot && t->desired == TD_RUNNING && !task_terminal(t))
			hit = t;
	return hit;
}

UNIT(reconcile_volumes_pin_tasks)
{
	struct store s;
	uint64_t now = 1000;
	three_nodes(&s);
	/* one volume per slot: the replicas spread, each volume where its slot first ran */
	deploy(&s, "services:\n  db:\n    image: demo\n    volumes: [\"data-{slot}:/data\"]\n"
		   "    deploy:\n      replicas: 3\nvolumes:\n  data-{slot}:\n");
	settle(&s, &now, 5);
	CHECK_EQ_INT(live(&s), 3);
	CHECK_EQ_INT(s.volumes.n, 3);
	for (uint64_t slot = 1; slot <= 3; slot++) {
		char name[32];
		snprintf(name, sizeof name, "data-%llu", (unsigned long long)slot);
		const struct volume *v = table_get_str(&s.volumes, name);
		const struct task *t = slot_live(&s, "db", slot);
		CHECK(v && t);
		CHECK_EQ_INT(t->node_id, v->node_id);
		CHECK_STR(v->service, "db");
	}
	const struct volume *v2 = table_get_str(&s.volumes, "data-2");
	uint64_t home = v2->node_id;
	/* its node goes down: slot 2 waits for it, with the reason, instead of moving */
	node_set(&s, home, "state", "down");
	settle(&s, &now, 5);
	const struct task *t2 = slot_live(&s, "db", 2);
	CHECK(t2 && t2->state == TS_PENDING && !t2->node_id);
	CHECK(t2->err && strstr(t2->err, "volume data-2 is on node") && strstr(t2->err, "down"));
	CHECK_EQ_INT(live(&s), 2);
	/* back: slot 2 runs there again, on the same volume */
	node_set(&s, home, "state", "ready");
	settle(&s, &now, 5);
	t2 = slot_live(&s, "db", 2);
	CHECK(t2 && t2->state == TS_RUNNING);
	CHECK_EQ_INT(t2->node_id, home);
	CHECK_EQ_INT(s.volumes.n, 3);

	/* a plain named volume shared by replicas: all of them on its node */
	deploy(&s, "services:\n  cache:\n    image: demo\n    volumes: [\"shared:/s\"]\n"
		   "    deploy:\n      replicas: 3\nvolumes:\n  shared:\n");
	settle(&s, &now, 5);
	const struct volume *sh = table_get_str(&s.volumes, "shared");
	CHECK(sh != NULL);
	for (uint64_t slot = 1; slot <= 3; slot++) {
		const struct task *t = slot_live(&s, "cache", slot);
		CHECK(t && t->state == TS_RUNNING);
		CHECK_EQ_INT(t->node_id, sh->node_id);
	}
	/* an external volume that does not exist: pending, saying so */
	deploy(&s, "services:\n  ext:\n    image: demo\n    volumes: [\"outside:/o\"]\n"
		   "volumes:\n  outside:\n    external: true\n");
	settle(&s, &now, 3);
	const struct task *te = slot_live(&s, "ext", 1);
	CHECK(te && te->state == TS_PENDING);
	CHECK(te->err && strstr(te->err, "external volume outside does not exist"));
	/* bind mounts: placed only on a node that allows them, pending where none does */
	node_set(&s, 3, "binds", "/srv/app\n/var/log/");
	deploy(&s, "services:\n  logger:\n    image: demo\n    volumes: [\"/var/log/app:/logs\", \"/srv/app/conf:/conf:ro\"]\n"
		   "    deploy:\n      replicas: 2\n");
	settle(&s, &now, 3);
	for (uint64_t slot = 1; slot <= 2; slot++) {
		const struct task *t = slot_live(&s, "logger", slot);
		CHECK(t && t->state == TS_RUNNING && t->node_id == 3);
	}
	const struct service *lg = store_service_by_name(&s, "logger");
	CHECK(volplace_bind_nowhere(&s, service_spec(lg)) == NULL);
	deploy(&s, "services:\n  peek:\n    image: demo\n    volumes: [\"/srv/application:/x\"]\n");
	settle(&s, &now, 3);
	const struct task *tp = slot_live(&s, "peek", 1);
	CHECK(tp && tp->state == TS_PENDING && tp->err && strstr(tp->err, "no node allows the service's bind mounts"));
	CHECK_STR(volplace_bind_nowhere(&s, service_spec(store_service_by_name(&s, "peek"))), "/srv/application");
	/* forgetting a volume: volume.rm */
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "data-3");
	mpw_map_end(&w);
	run_cmd(&s, CMD_VOLUME_RM, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK(table_get_str(&s.volumes, "data-3") == NULL);
	run_cmd(&s, CMD_VOLUME_RM, &w, &res); /* gone: a second rm says so and changes nothing */
	CHECK_EQ_INT(res.rc, E_NOTFOUND);
	mpw_free(&w);
	/* the state survives a snapshot */
	struct store r;
	entry_restore_copy(&s, &r);
	CHECK_EQ_INT(r.volumes.n, s.volumes.n);
	char h1[65], h2[65];
	store_hash(&s, h1);
	store_hash(&r, h2);
	CHECK_STR(h1, h2);
	store_free(&r);
	store_free(&s);
}

/* ---- placement keys: global mode, constraints that change, spread, depends_on ---------- */

/* node.update of one label (value NULL removes it). */
static void node_label(struct store *s, uint64_t id, const char *label, const char *value)
{
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", id);
	mpw_key(&w, "labels");
	mpw_map_begin(&w);
	if (value)
		mpw_kstr(&w, label, value);
	else
		mpw_key(&w, label), mpw_nil(&w);
	mpw_map_end(&w);
	mpw_map_end(&w);
	run_cmd(s, CMD_NODE_UPDATE, &w, &res);
	mpw_free(&w);
	CHECK_EQ_INT(res.rc, 0);
}

static unsigned live_of(const struct store *s, const char *svc, uint64_t node)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (!strcmp(t->service, svc) && (!node || t->node_id == node) && t->desired == TD_RUNNING &&
		    t->state == TS_RUNNING)
			n++;
	return n;
}

UNIT(reconcile_global_follows_nodes)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	add_node(&s, 3, "n3");
	deploy(&s, "services:\n  agent:\n    image: demo\n    deploy:\n      mode: global\n");
	settle(&s, &now, 5);
	CHECK_EQ_INT(live(&s), 3);
	TABLE_FOREACH(&s.tasks, struct task, t) /* a global task's slot is its node */
		CHECK_EQ_INT(t->slot, t->node_id);
	/* a join gets one */
	add_node(&s, 4, "n4");
	settle(&s, &now, 4);
	CHECK_EQ_INT(live_on(&s, 4), 1);
	CHECK_EQ_INT(live(&s), 4);
	/* a drain stops it, with no replacement elsewhere */
	node_set(&s, 2, "availability", "drain");
	settle(&s, &now, 4);
	CHECK_EQ_INT(live_on(&s, 2), 0);
	CHECK_EQ_INT(live(&s), 3);
	CHECK_EQ_INT(live_on(&s, 1), 1);
	/* a node down loses it, and gets it back when it returns */
	node_set(&s, 3, "state", "down");
	settle(&s, &now, 4);
	CHECK_EQ_INT(live(&s), 2);
	CHECK_EQ_INT(live_on(&s, 1), 1);
	node_set(&s, 3, "state", "ready");
	node_set(&s, 2, "availability", "active");
	settle(&s, &now, 4);
	CHECK_EQ_INT(live(&s), 4);
	for (uint64_t n = 1; n <= 4; n++)
		CHECK_EQ_INT(live_on(&s, n), 1);
	/* a paused node keeps its task, and one without gets none */
	node_set(&s, 4, "availability", "pause");
	node_set(&s, 2, "availability", "drain");
	settle(&s, &now, 4);
	node_set(&s, 2, "availability", "pause");
	settle(&s, &now, 4);
	CHECK_EQ_INT(live_on(&s, 4), 1);
	CHECK_EQ_INT(live_on(&s, 2), 0);
	unsigned pending = 0;
	TABLE_FOREACH(&s.tasks, struct task, t)
		pending += t->state == TS_PENDING;
	CHECK_EQ_INT(pending, 0);
	node_set(&s, 2, "availability", "active");
	settle(&s, &now, 4);
	CHECK_EQ_INT(live_on(&s, 2), 1);
	/* orch scale is refused */
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "agent");
	mpw_ku64(&w, "replicas", 2);
	mpw_map_end(&w);
	run_cmd(&s, CMD_SERVICE_SCALE, &w, &res);
	mpw_free(&w);
	CHECK(res.rc == E_INVAL);
	CHECK(strstr(res.msg, "global service") != NULL);
	CHECK(!pass(&s, now + 200));
	store_free(&s);
}

UNIT(reconcile_global_follows_constraint_changes)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	add_node(&s, 3, "n3");
	node_label(&s, 1, "zone", "eu");
	deploy(&s, "services:\n  agent:\n    image: demo\n    deploy:\n      mode: global\n      placement:\n"
		   "        constraints: [\"node.labels.zone == eu\"]\n");
	settle(&s, &now, 4);
	CHECK_EQ_INT(live(&s), 1);
	CHECK_EQ_INT(live_on(&s, 1), 1);
	node_label(&s, 3, "zone", "eu");
	node_label(&s, 1, "zone", NULL);
	settle(&s, &now, 4);
	CHECK_EQ_INT(live(&s), 1);
	CHECK_EQ_INT(live_on(&s, 3), 1);
	store_free(&s);
}

UNIT(reconcile_replicated_task_leaves_a_node_that_no_longer_fits)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	node_label(&s, 1, "disk", "ssd");
	deploy(&s, "services:\n  db:\n    image: demo\n    deploy:\n      replicas: 2\n      placement:\n"
		   "        constraints: [\"node.labels.disk == ssd\", \"node.hostname != n3\"]\n");
	settle(&s, &now, 4);
	CHECK_EQ_INT(live_on(&s, 1), 2);
	node_label(&s, 2, "disk", "ssd");
	node_label(&s, 1, "disk", "hdd");
	settle(&s, &now, 6);
	CHECK_EQ_INT(live_on(&s, 1), 0);
	CHECK_EQ_INT(live_on(&s, 2), 2);
	store_free(&s);
}

UNIT(reconcile_spread_over_a_label)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	for (uint64_t n = 1; n <= 4; n++) {
		char name[8];
		snprintf(name, sizeof name, "n%llu", (unsigned long long)n);
		add_node(&s, n, name);
		node_label(&s, n, "zone", n == 4 ? "b" : "a");
	}
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 4\n      placement:\n"
		   "        preferences:\n          - spread: node.labels.zone\n");
	settle(&s, &now, 4);
	CHECK_EQ_INT(live(&s), 4);
	/* half in zone b, which has one node; the other half over zone a's three */
	CHECK_EQ_INT(live_on(&s, 4), 2);
	CHECK_EQ_INT(live_on(&s, 1) + live_on(&s, 2) + live_on(&s, 3), 2);
	/* without the preference: one per node */
	deploy(&s, "services:\n  api:\n    image: demo\n    deploy:\n      replicas: 4\n");
	settle(&s, &now, 4);
	for (uint64_t n = 1; n <= 4; n++)
		CHECK_EQ_INT(live_of(&s, "api", n), 1);
	store_free(&s);
}

/* The agents' health report for every running task of a service. */
static void report_health(struct store *s, const char *svc, const char *health, uint64_t now)
{
	struct mpw w, u;
	mpw_init(&w);
	mpw_init(&u);
	uint32_t n = 0;
	TABLE_FOREACH(&s->tasks, struct task, t) {
		if (strcmp(t->service, svc) || t->state != TS_RUNNING)
			continue;
		mpw_map_begin(&u);
		mpw_ku64(&u, "id", t->id);
		mpw_kstr(&u, "health", health);
		mpw_map_end(&u);
		n++;
	}
	CHECK(n > 0);
	mpw_map_begin(&w);
	mpw_ku64(&w, "at", now);
	mpw_key(&w, "update");
	mpw_arr(&w, n);
	mpw_raw(&w, u.sb.data, u.sb.size);
	mpw_map_end(&w);
	struct apply_res res;
	run_cmd(s, CMD_TASK_BATCH, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	mpw_free(&u);
	mpw_free(&w);
}

UNIT(reconcile_depends_on_orders_the_first_start)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	deploy(&s, "services:\n  app:\n    image: demo\n    depends_on:\n      db: {condition: service_healthy}\n"
		   "  db:\n    image: demo\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n");
	settle(&s, &now, 3);
	bool waiting = false;
	TABLE_FOREACH(&s.tasks, struct task, t) /* db is not even deployed yet */
		waiting |= !strcmp(t->service, "app") && t->state == TS_PENDING && t->err &&
			   !strcmp(t->err, "waiting for db (healthy): no such service");
	CHECK(waiting);
	deploy(&s, "services:\n  db:\n    image: demo\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n");
	settle(&s, &now, 3);
	CHECK_EQ_INT(live_of(&s, "db", 0), 1);
	CHECK_EQ_INT(live_of(&s, "app", 0), 0);
	waiting = false;
	TABLE_FOREACH(&s.tasks, struct task, t)
		waiting |= !strcmp(t->service, "app") && t->err && !strcmp(t->err, "waiting for db (healthy)");
	CHECK(waiting);
	report_health(&s, "db", "healthy", now);
	settle(&s, &now, 3);
	CHECK_EQ_INT(live_of(&s, "app", 0), 1);
	/* after its first start, app runs whatever db does */
	report_health(&s, "db", "unhealthy", now);
	TABLE_FOREACH(&s.tasks, struct task, t)
		if (!strcmp(t->service, "app"))
			CHECK(t->started_at || t->state == TS_RUNNING);
	CHECK_EQ_INT(live_of(&s, "app", 0), 1);
	store_free(&s);
}

/* Running tasks of a service, by name. */
static unsigned running_of(const struct store *s, const char *svc, uint64_t node)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (!strcmp(t->service, svc) && t->desired == TD_RUNNING && t->state == TS_RUNNING && (!node || t->node_id == node))
			n++;
	return n;
}

/* A node joins two that run everything: the service spreads to it one start-first move
 * at a time, never below its replicas; a service with x-orch-rebalance: false and one
 * whose slots own volumes stay where they are; once spread, nothing moves again. */
UNIT(reconcile_rebalances_to_a_new_node)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 6\n      update_config: {monitor: 1s}\n");
	deploy(&s, "services:\n  pinned:\n    image: demo\n    deploy:\n      replicas: 4\n      x-orch-rebalance: false\n");
	deploy(&s, "services:\n  db:\n    image: demo\n    volumes: [\"data-{slot}:/data\"]\n"
		   "    deploy:\n      replicas: 4\nvolumes:\n  data-{slot}:\n");
	settle(&s, &now, 5);
	CHECK_EQ_INT(running_of(&s, "web", 0), 6);
	CHECK(!service_spec(store_service_by_name(&s, "pinned"))->deploy.rebalance);
	CHECK(service_spec(store_service_by_name(&s, "web"))->deploy.rebalance);
	add_node(&s, 3, "n3");
	node_set(&s, 3, "state", "ready");
	unsigned max_live = 0;
	for (int i = 0; i < 300; i++) {
		settle(&s, &now, 1);
		CHECK(running_of(&s, "web", 0) >= 6);
		CHECK_EQ_INT(running_of(&s, "pinned", 0), 4);
		CHECK_EQ_INT(running_of(&s, "db", 0), 4);
		unsigned l = 0;
		TABLE_FOREACH(&s.tasks, const struct task, t)
			l += !strcmp(t->service, "web") && t->desired == TD_RUNNING && !task_terminal(t);
		max_live = l > max_live ? l : max_live;
	}
	CHECK_EQ_INT(running_of(&s, "web", 3), 2);
	CHECK_EQ_INT(running_of(&s, "web", 1), 2);
	CHECK_EQ_INT(running_of(&s, "pinned", 3), 0);
	CHECK_EQ_INT(running_of(&s, "db", 3), 0);
	CHECK(max_live <= 7); /* one move of the service at a time */
	CHECK_EQ_INT(events_of(&s, "rebalancing"), 2);
	CHECK_EQ_INT(events_of(&s, "rebalanced"), 2);
	/* no oscillation: spread, the controller is quiet for good */
	for (int i = 0; i < 100; i++) {
		now += 1000;
		CHECK(!pass(&s, now));
	}
	store_free(&s);
}

/* Rebalancing off for the cluster (cluster.rebalance_moves 0): a node that returns
 * gets nothing; a bad value means the default. */
UNIT(reconcile_rebalance_budget)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000, n;
	CHECK_EQ_INT(rebalance_budget(&s), REBALANCE_MOVES_DEFAULT);
	CHECK(rebalance_parse("x", &n) < 0 && rebalance_parse("", &n) < 0 && rebalance_parse("-1", &n) < 0 &&
	      rebalance_parse("1001", &n) < 0 && rebalance_parse("3 ", &n) < 0);
	CHECK(!rebalance_parse("0", &n) && n == 0);
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 4\n      update_config: {monitor: 1s}\n");
	settle(&s, &now, 5);
	node_set(&s, 2, "state", "down");
	settle(&s, &now, 5);
	CHECK_EQ_INT(running_of(&s, "web", 1), 4);
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "key", REBALANCE_KEY);
	mpw_kstr(&w, "value", "0");
	mpw_map_end(&w);
	run_cmd(&s, CMD_KV_SET, &w, &res);
	mpw_free(&w);
	CHECK_EQ_INT(rebalance_budget(&s), 0);
	node_set(&s, 2, "state", "ready");
	settle(&s, &now, 100);
	CHECK_EQ_INT(running_of(&s, "web", 2), 0);
	/* on again (a bad value is the default): the returned node gets its share */
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "key", REBALANCE_KEY);
	mpw_kstr(&w, "value", "many");
	mpw_map_end(&w);
	run_cmd(&s, CMD_KV_SET, &w, &res);
	mpw_free(&w);
	settle(&s, &now, 100);
	CHECK_EQ_INT(running_of(&s, "web", 2), 2);
	CHECK_EQ_INT(running_of(&s, "web", 0), 4);
	store_free(&s);
}

/* A node activated after a drain gets its share back (its record changed availability,
 * not state: no settling wait), and a max_replicas_per_node service is moved only where
 * it still fits. */
UNIT(reconcile_rebalances_after_activate)
{
	struct store s;
	uint64_t now = 1000;
	three_nodes(&s);
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 6\n      update_config: {monitor: 1s}\n");
	deploy(&s, "services:\n  capped:\n    image: demo\n    deploy:\n      replicas: 4\n      update_config: {monitor: 1s}\n"
		   "      placement: {max_replicas_per_node: 2}\n");
	settle(&s, &now, 5);
	node_set(&s, 3, "availability", "drain");
	settle(&s, &now, 20);
	CHECK_EQ_INT(running_of(&s, "web", 3), 0);
	CHECK_EQ_INT(running_of(&s, "web", 1) + running_of(&s, "web", 2), 6);
	CHECK_EQ_INT(running_of(&s, "capped", 1), 2);
	CHECK_EQ_INT(running_of(&s, "capped", 2), 2);
	node_set(&s, 3, "availability", "active");
	for (int i = 0; i < 200; i++) {
		settle(&s, &now, 1);
		CHECK(running_of(&s, "web", 0) >= 6);
		CHECK(running_of(&s, "capped", 0) >= 4);
		for (uint64_t n = 1; n <= 3; n++)
			CHECK(running_of(&s, "capped", n) <= 2);
	}
	for (uint64_t n = 1; n <= 3; n++)
		CHECK_EQ_INT(running_of(&s, "web", n), 2);
	/* capped went 2/2/0 to 2/1/1: a node two short of another */
	CHECK_EQ_INT(running_of(&s, "capped", 3), 1);
	store_free(&s);
}

/* With a spread preference, the groups balance first: a zone's first node joins two of
 * another zone running 2/2, and gets half of the service (node counts alone would give
 * it one). */
UNIT(reconcile_rebalance_follows_spread_preferences)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	node_label(&s, 1, "zone", "a");
	node_label(&s, 2, "zone", "a");
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 4\n      update_config: {monitor: 1s}\n"
		   "      placement:\n        preferences:\n          - spread: node.labels.zone\n");
	settle(&s, &now, 5);
	CHECK_EQ_INT(running_of(&s, "web", 1), 2);
	add_node(&s, 3, "n3");
	node_label(&s, 3, "zone", "b");
	node_set(&s, 3, "state", "ready");
	for (int i = 0; i < 200; i++) {
		settle(&s, &now, 1);
		CHECK(running_of(&s, "web", 0) >= 4);
	}
	CHECK_EQ_INT(running_of(&s, "web", 3), 2);
	CHECK_EQ_INT(running_of(&s, "web", 1), 1);
	CHECK_EQ_INT(running_of(&s, "web", 2), 1);
	for (int i = 0; i < 50; i++) {
		now += 1000;
		CHECK(!pass(&s, now));
	}
	store_free(&s);
}
