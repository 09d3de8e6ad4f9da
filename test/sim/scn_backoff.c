/* Restarts that back off (orchestrator/reconcile.c), across a leader change: tasks that
 * crash after a second, tasks that cannot start, tasks that crash after running longer
 * than the restart window, for ten minutes of virtual time on a lossy network, the leader
 * killed (and started again) on the way. Every task the leaders create is recorded while
 * it lives, and every start the fake runtimes make. */
#include "scn.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP_MS (5 * 60 * 1000ull) /* where the back-off stops doubling */
#define SKEW_MS 20000             /* the machines' wall clocks differ by up to this */
#define START_SLACK_MS 3000       /* placing and starting a task once its wait is over */
#define POLL_MS 100               /* how often the leader's state is looked at */
#define SEEN_LATE_MS 500          /* a task is seen after it was made: committed, then a poll */

static const char spec[] =
	"services:\n"
	"  web:\n"
	"    image: demo:1\n"
	"    deploy:\n"
	"      replicas: 4\n"
	"  crash:\n"                      /* runs a second, exits 1: doubling from 1 s */
	"    image: sim/exit:1000\n"
	"    deploy:\n"
	"      replicas: 3\n"
	"      restart_policy:\n"
	"        delay: 1s\n"
	"  nostart:\n"                    /* cannot start: rejected counts, 4 attempts */
	"    image: sim/reject\n"
	"    deploy:\n"
	"      replicas: 2\n"
	"      restart_policy:\n"
	"        delay: 2s\n"
	"        max_attempts: 4\n"
	"  flaky:\n"                      /* runs 20 s, longer than its 10 s window */
	"    image: sim/exit:20000\n"
	"    deploy:\n"
	"      replicas: 2\n"
	"      restart_policy:\n"
	"        delay: 1s\n"
	"        window: 10s\n";

/* A task as the leaders' states showed it, and when a runtime started it. */
struct seen_task {
	uint64_t id, slot, failures, restarts, created_at, start_after, started_wall;
	uint64_t seen_wall; /* the world's wall clock when a leader's state first had it */
	char service[16];
	char state[16]; /* the last seen */
	bool started;
};

struct watch {
	struct simcl *c;
	struct seen_task *t;
	size_t n, cap;
	char err[ERR_LEN]; /* the first thing seen wrong while running */
	uint64_t leader_changed_at; /* wall ms */
	uint64_t t0;
};

static struct seen_task *find(struct watch *x, uint64_t id)
{
	for (size_t i = 0; i < x->n; i++)
		if (x->t[i].id == id)
			return &x->t[i];
	return NULL;
}

static struct seen_task *get(struct watch *x, uint64_t id)
{
	struct seen_task *t = find(x, id);
	if (t)
		return t;
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 64;
		x->t = xrealloc(x->t, x->cap * sizeof *x->t);
	}
	t = &x->t[x->n++];
	memset(t, 0, sizeof *t);
	t->id = id;
	return t;
}

static void on_start(void *arg, unsigned node, const struct ftask *ft)
{
	struct watch *x = arg;
	struct seen_task *t = get(x, ft->id);
	(void)node;
	if (t->started && !x->err[0])
		snprintf(x->err, sizeof x->err, "task %llu started twice", (unsigned long long)ft->id);
	t->started = true;
	t->started_wall = simcl_wall(x->c);
}

/* Every 100 ms: what the leader's state holds; a slot never has two live tasks. */
static void poll(struct watch *x)
{
	int l = simcl_leader(x->c);
	if (l < 0)
		return;
	const struct store *s = simcl_store(x->c, (unsigned)l);
	TABLE_FOREACH(&s->tasks, const struct task, tk) {
		if (!strcmp(tk->service, "web"))
			continue;
		struct seen_task *t = get(x, tk->id);
		if (!t->seen_wall)
			t->seen_wall = simcl_wall(x->c);
		t->slot = tk->slot;
		t->failures = tk->failures;
		t->restarts = tk->restarts;
		t->created_at = tk->created_at;
		t->start_after = tk->start_after;
		snprintf(t->service, sizeof t->service, "%s", tk->service);
		snprintf(t->state, sizeof t->state, "%s", task_state_name(tk->state));
		if (task_terminal(tk) || tk->desired != TD_RUNNING)
			continue;
		TABLE_FOREACH(&s->tasks, const struct task, o)
			if (o->id != tk->id && o->service_id == tk->service_id && o->slot == tk->slot && !task_terminal(o) &&
			    o->desired == TD_RUNNING && !x->err[0])
				snprintf(x->err, sizeof x->err, "%s slot %llu has two live tasks (%llu, %llu)", tk->service,
					 (unsigned long long)tk->slot, (unsigned long long)tk->id, (unsigned long long)o->id);
	}
}

static void run_watching(struct watch *x, uint64_t ms)
{
	uint64_t end = x->c->w.now + ms;
	while (x->c->w.now < end) {
		simcl_run(x->c, POLL_MS);
		poll(x);
	}
}

/* The wait before the k-th restart in a row: delay, doubling, at most 5 minutes. */
static uint64_t expected_wait(uint64_t delay, uint64_t k)
{
	uint64_t d = delay;
	while (--k && d < CAP_MS)
		d *= 2;
	return d < CAP_MS ? d : CAP_MS;
}

/* At most how many restarts in a row fit in `ms` when each waits its back-off. */
static uint64_t max_restarts(uint64_t delay, uint64_t ms)
{
	uint64_t n = 0, sum = 0;
	while (sum + expected_wait(delay, n + 1) <= ms)
		sum += expected_wait(delay, ++n);
	return n;
}

static int by_id(const void *a, const void *b)
{
	const struct seen_task *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* One slot's tasks in order: each restart after a task that ended by itself waited its
 * back-off, counted from the slot's failures in a row; a restart counts one more failure
 * (rejected ones too), or starts again at one when the task ran its window. */
static int check_slot(const struct watch *x, const char *svc, uint64_t slot, uint64_t delay, uint64_t window,
		      uint64_t span_ms, uint64_t *max_failures, uint64_t *ntasks, char *err)
{
	const struct seen_task *prev = NULL;
	uint64_t own = 0;
	bool reset = false;
	*max_failures = 0;
	*ntasks = 0;
	for (size_t i = 0; i < x->n; i++) {
		const struct seen_task *t = &x->t[i];
		if (strcmp(t->service, svc) || t->slot != slot)
			continue;
		(*ntasks)++;
		scn_log(x->c, "%s.%llu task %llu: failures %llu, restarts %llu, created at %.1f s, waits %.1f s, started at %.1f s, %s",
			svc, (unsigned long long)slot, (unsigned long long)t->id, (unsigned long long)t->failures,
			(unsigned long long)t->restarts, (double)(t->created_at - x->t0) / 1000.0,
			t->start_after ? (double)(t->start_after - t->created_at) / 1000.0 : 0.0,
			t->started_wall ? (double)(t->started_wall - x->t0) / 1000.0 : -1.0, t->state);
		if (t->failures > *max_failures)
			*max_failures = t->failures;
		if (!prev) {
			if (t->failures || t->start_after)
				return errf(err, E_FAIL, "%s slot %llu: first task %llu has %llu failures, start_after %llu", svc,
					    (unsigned long long)slot, (unsigned long long)t->id, (unsigned long long)t->failures,
					    (unsigned long long)t->start_after);
		} else if (t->restarts == prev->restarts) {
			/* a replacement for a task lost with its node: its failures kept, and its wait
			 * when it was lost before it started */
			if (t->failures != prev->failures || (!prev->started && t->start_after < prev->start_after))
				return errf(err, E_FAIL, "%s slot %llu: task %llu replaced %llu (lost with its node) with %llu failures and "
					    "start_after %llu, not %llu and %llu", svc, (unsigned long long)slot, (unsigned long long)t->id,
					    (unsigned long long)prev->id, (unsigned long long)t->failures, (unsigned long long)t->start_after,
					    (unsigned long long)prev->failures, (unsigned long long)prev->start_after);
		} else {
			own += t->start_after <= x->t0 + span_ms; /* its wait is over */
			reset |= t->failures == 1 && prev->failures >= 1;
			if (t->failures != prev->failures + 1 && t->failures != 1)
				return errf(err, E_FAIL, "%s slot %llu: task %llu restarted %llu with %llu failures (before: %llu)", svc,
					    (unsigned long long)slot, (unsigned long long)t->id, (unsigned long long)prev->id,
					    (unsigned long long)t->failures, (unsigned long long)prev->failures);
			uint64_t want = expected_wait(delay, t->failures);
			if (t->start_after - t->created_at != want)
				return errf(err, E_FAIL, "%s slot %llu: task %llu (failure %llu in a row) waits %llu ms, want %llu", svc,
					    (unsigned long long)slot, (unsigned long long)t->id, (unsigned long long)t->failures,
					    (unsigned long long)(t->start_after - t->created_at), (unsigned long long)want);
			/* it starts when its wait is over by the world's clock: its node's clock (the
			 * machines' clocks differ here) may neither stretch nor shorten it. A wait
			 * that spans the leader change is measured by two leaders' clocks: skipped. */
			bool spans = x->leader_changed_at + 10000 >= t->seen_wall &&
				     x->leader_changed_at <= t->seen_wall + want + START_SLACK_MS;
			uint64_t took = t->started ? t->started_wall - t->seen_wall : 0;
			if (t->started && !spans && (took > want + START_SLACK_MS || took + SEEN_LATE_MS < want))
				return errf(err, E_FAIL, "%s slot %llu: task %llu started %.1f s after it was made, its wait is %.1f s",
					    svc, (unsigned long long)slot, (unsigned long long)t->id, (double)took / 1000.0,
					    (double)want / 1000.0);
			if (t->restarts != prev->restarts + 1)
				return errf(err, E_FAIL, "%s slot %llu: task %llu counts %llu restarts, the one before %llu", svc,
					    (unsigned long long)slot, (unsigned long long)t->id, (unsigned long long)t->restarts,
					    (unsigned long long)prev->restarts);
		}
		prev = t;
	}
	if (!*ntasks)
		return errf(err, E_FAIL, "%s slot %llu never had a task", svc, (unsigned long long)slot);
	/* a run of failures waits longer each time; a task that ran its window starts a new
	 * run, so then each restart took a window at least */
	uint64_t bound = reset ? span_ms / window + 1 : max_restarts(delay, span_ms);
	if (own > bound)
		return errf(err, E_FAIL, "%s slot %llu waited out %llu restarts in %llu s; the back-off allows %llu", svc,
			    (unsigned long long)slot, (unsigned long long)own, (unsigned long long)(span_ms / 1000),
			    (unsigned long long)bound);
	return 0;
}

/* Six nodes whose wall clocks differ by up to 20 s; the services above for 10 minutes; the
 * leader killed at 100 s and started again 10 s later. Then every slot's history must show
 * the back-off: exact waits (delay doubling to 5 minutes), each task started once its wait
 * is over, failures in a row carried across the leader change, reset by a run as long as
 * the window, rejected starts counted up to max_attempts, no more restarts than the
 * back-off allows, and few raft entries per restart. */
int scn_restart_backoff(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	struct simcl *c = scn_cluster(seed, 6, 6, &rc, err);
	for (unsigned i = 0; i < c->count; i++)
		c->n[i].wall_skew_ms = (int64_t)world_range(&c->w, 0, 2 * SKEW_MS) - SKEW_MS;
	struct watch x = {.c = c};
	c->started = on_start;
	c->started_arg = &x;
	uint64_t t0 = simcl_wall(c), index0 = 0;
	x.t0 = t0;
	if (!rc)
		rc = scn_deploy(c, spec, err);
	if (!rc) {
		int l = simcl_leader(c);
		index0 = l >= 0 ? cons_commit_index(simcl_cons(c, (unsigned)l)) : 0;
		run_watching(&x, 100000);
		x.leader_changed_at = simcl_wall(c);
		scn_kill_leader(c, 0, 10000, false);
		run_watching(&x, 500000);
	}
	if (!rc && x.err[0])
		rc = errf(err, E_FAIL, "%s", x.err);
	uint64_t span = simcl_wall(c) - t0, entries = 0;
	if (!rc) {
		int l = simcl_leader(c);
		entries = l >= 0 ? cons_commit_index(simcl_cons(c, (unsigned)l)) - index0 : 0;
	}
	qsort(x.t, x.n, sizeof *x.t, by_id);
	uint64_t tasks = 0;
	for (uint64_t slot = 1; slot <= 3 && !rc; slot++) {
		uint64_t maxf, n;
		rc = check_slot(&x, "crash", slot, 1000, CAP_MS, span, &maxf, &n, err);
		tasks += n;
		/* ten minutes of 1 s runs: the waits reach 4 minutes (failure 9 in a row) */
		if (!rc && maxf < 8)
			rc = errf(err, E_FAIL, "crash slot %llu: only %llu failures in a row in %llu s", (unsigned long long)slot,
				  (unsigned long long)maxf, (unsigned long long)(span / 1000));
		/* the back-off went on after the leader change: a task made by the new leader
		 * counts on from the old leader's failures */
		bool resumed = false;
		for (size_t i = 0; i < x.n && !rc; i++)
			resumed |= !strcmp(x.t[i].service, "crash") && x.t[i].slot == slot &&
				   x.t[i].created_at > x.leader_changed_at && x.t[i].failures > 3;
		if (!rc && !resumed)
			rc = errf(err, E_FAIL, "crash slot %llu: no task after the leader change kept the failures in a row",
				  (unsigned long long)slot);
	}
	for (uint64_t slot = 1; slot <= 2 && !rc; slot++) {
		uint64_t maxf, n;
		rc = check_slot(&x, "nostart", slot, 2000, CAP_MS, span, &maxf, &n, err);
		tasks += n;
		if (!rc && maxf != 4)
			rc = errf(err, E_FAIL, "nostart slot %llu: %llu failures in a row, want max_attempts (4) and then none",
				  (unsigned long long)slot, (unsigned long long)maxf);
	}
	for (uint64_t slot = 1; slot <= 2 && !rc; slot++) {
		uint64_t maxf, n;
		rc = check_slot(&x, "flaky", slot, 1000, 10000, span, &maxf, &n, err);
		tasks += n;
		if (!rc && maxf != 1)
			rc = errf(err, E_FAIL, "flaky slot %llu: %llu failures in a row, though each task ran longer than the window",
				  (unsigned long long)slot, (unsigned long long)maxf);
		/* 20 s runs and 1 s waits for ten minutes: the restarts do happen */
		if (!rc && n < 15)
			rc = errf(err, E_FAIL, "flaky slot %llu: only %llu tasks in %llu s", (unsigned long long)slot,
				  (unsigned long long)n, (unsigned long long)(span / 1000));
	}
	/* a task's life costs a few entries (created, placed, starting, running, ended); the
	 * leader change and the killed node's return a few dozen */
	if (!rc && entries > 8 * tasks + 100)
		rc = errf(err, E_FAIL, "%llu raft entries for %llu tasks in %llu s", (unsigned long long)entries,
			  (unsigned long long)tasks, (unsigned long long)(span / 1000));
	scn_log(c, "%zu tasks seen, %llu in the failing services, %llu raft entries", x.n, (unsigned long long)tasks,
		(unsigned long long)entries);
	c->started = NULL;
	free(x.t);
	/* the failing services go; what stays must settle */
	if (!rc)
		rc = scn_scale(c, "crash", 0, err);
	if (!rc)
		rc = scn_scale(c, "nostart", 0, err);
	if (!rc)
		rc = scn_scale(c, "flaky", 0, err);
	return scn_finish(c, 30000, res, rc, err);
}
