#include "orchestrator/reconcile.h"
#include "orchestrator/depends.h"
#include "orchestrator/rebalance.h"
#include "orchestrator/sched.h"
#include "orchestrator/volplace.h"
#include "util/mem.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct batch {
	struct mpw cr, up, del, svc;
	uint32_t ncr, nup, ndel, nsvc;
	uint32_t fresh, placed; /* slots filled and tasks placed in this pass (capped) */
	bool capped;            /* work was left for the next pass */
	bool up_open; /* the last update map takes fields until the next one starts */
	struct mpw ev; /* "events" of the batch (orch events), see event() */
	uint32_t nev;
	uint64_t *stopped; /* tasks asked to stop in this pass: not placed in it (stop()) */
	size_t nstopped;
	uint64_t moving; /* rebalancing moves in flight after this pass (rebalance.h) */
};

static void batch_init(struct batch *b)
{
	memset(b, 0, sizeof *b);
	mpw_init(&b->cr);
	mpw_init(&b->up);
	mpw_init(&b->del);
	mpw_init(&b->svc);
	mpw_init(&b->ev);
}

static void batch_free(struct batch *b)
{
	mpw_free(&b->cr);
	mpw_free(&b->up);
	mpw_free(&b->del);
	mpw_free(&b->svc);
	mpw_free(&b->ev);
	free(b->stopped);
}

/* The n items packed in items, as an array document in out. */
static struct fl_doc array_of(struct mpw *out, uint32_t n, const struct mpw *items)
{
	mpw_init(out);
	mpw_arr(out, n);
	mpw_raw(out, items->sb.data, items->sb.size);
	return (struct fl_doc){.raw = out->sb.data, .len = out->sb.size};
}

/* ---- events: what this pass decided and why, committed with the batch -------------------- */

static void event(struct batch *b, const char *kind, const char *service, uint64_t task, uint64_t node, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void event(struct batch *b, const char *kind, const char *service, uint64_t task, uint64_t node, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mpw_map_begin(&b->ev);
	mpw_kstr(&b->ev, "kind", kind);
	mpw_kstr(&b->ev, "service", service ? service : "");
	mpw_ku64(&b->ev, "task", task);
	mpw_ku64(&b->ev, "node", node);
	mpw_kstr(&b->ev, "message", msg);
	mpw_map_end(&b->ev);
	b->nev++;
}

static const char *node_name(const struct node *n)
{
	return n && n->name ? n->name : "?";
}

/* A new task in a slot. failures and start_after carry the slot's back-off (store.h); err,
 * when given, says why the previous task of the slot ended (shown while this one waits). */
static void create(struct batch *b, uint64_t sid, uint64_t slot, uint64_t gen, uint64_t restarts, uint64_t failures,
		   uint64_t start_after, const char *err)
{
	mpw_map_begin(&b->cr);
	mpw_ku64(&b->cr, "service_id", sid);
	mpw_ku64(&b->cr, "slot", slot);
	mpw_ku64(&b->cr, "generation", gen);
	mpw_ku64(&b->cr, "restarts", restarts);
	mpw_ku64(&b->cr, "failures", failures);
	mpw_ku64(&b->cr, "start_after", start_after);
	if (err)
		mpw_kstr(&b->cr, "err", err);
	mpw_map_end(&b->cr);
	b->ncr++;
}

/* An update map: the caller adds the fields after the id. */
static struct mpw *update(struct batch *b, uint64_t id)
{
	if (b->up_open)
		mpw_map_end(&b->up);
	mpw_map_begin(&b->up);
	b->up_open = true;
	mpw_ku64(&b->up, "id", id);
	b->nup++;
	return &b->up;
}

/* The names of the states written come from their tables (state/lifecycle.h). */
static void put_state(struct mpw *w, enum task_state st)
{
	mpw_kstr(w, "state", task_state_name(st));
}

static void put_desired(struct mpw *w, enum task_desired d)
{
	mpw_kstr(w, "desired", lifecycle_name(&lifecycle_desired, (int)d));
}

/* Asks task t to stop; more fields of its update may follow in *w (w may be NULL). A task
 * never placed has nothing to stop: it ends at once (pending -> shutdown). Either way the
 * placement of this pass leaves it alone: placing it too would ask for a move its state
 * table refuses (shutdown -> assigned), and the whole batch with it. Returns whether it
 * ended. */
static bool stop(struct batch *b, const struct task *t, struct mpw **w)
{
	bool unplaced = t->state == TS_PENDING;
	struct mpw *u = update(b, t->id);
	put_desired(u, TD_SHUTDOWN);
	if (unplaced)
		put_state(u, TS_SHUTDOWN);
	if (w)
		*w = u;
	b->stopped = xrealloc(b->stopped, (b->nstopped + 1) * sizeof *b->stopped);
	b->stopped[b->nstopped++] = t->id;
	return unplaced;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void del(struct batch *b, uint64_t id)
{
	mpw_u64(&b->del, id);
	b->ndel++;
}

static bool running_wanted(const struct task *t)
{
	return t->desired == TD_RUNNING;
}

/* Per-task decisions made in this pass (the store itself is read-only). */
struct view {
	const struct task *t;
	bool stopping; /* desired shutdown after this pass */
	bool ended;    /* terminal after this pass */
	bool just_ended; /* ended by itself while wanted running, first seen in this pass */
	bool leaving;    /* on a node that is drained or no longer satisfies the constraints */
};

static int by_slot_id(const void *a, const void *b)
{
	const struct view *x = a, *y = b;
	if (x->t->slot != y->t->slot)
		return x->t->slot < y->t->slot ? -1 : 1;
	return x->t->id < y->t->id ? -1 : x->t->id > y->t->id;
}

static const struct node *node_of(const struct store *s, uint64_t id)
{
	return id ? table_get_u64(&s->nodes, id) : NULL;
}

/* ---- restarts and their back-off -------------------------------------------------------- */

/* Ended by itself (exit, failed check, could not start), as opposed to stopped by orch
 * (shutdown) or lost with its node (orphaned), which are replaced at once. */
static bool own_end(const struct task *t)
{
	return t->state == TS_COMPLETE || t->state == TS_FAILED || t->state == TS_REJECTED;
}

static uint64_t window_ms(const struct svc_spec *sp)
{
	return sp->deploy.restart.window_ms ? sp->deploy.restart.window_ms : RESTART_WINDOW_DEFAULT_MS;
}

/* The slot's failures in a row once `t` ended by itself: one more, or this one alone when
 * it ran for the whole window (both ends of a run come from its node's clock). */
static uint64_t failures_after(const struct svc_spec *sp, const struct task *t)
{
	bool ran_window = t->started_at && t->state_at >= t->started_at + window_ms(sp);
	return ran_window ? 1 : t->failures + 1;
}

/* The wait before restarting a slot after its n-th failure in a row: delay, 2 x delay,
 * 4 x delay, ... up to RESTART_DELAY_CAP_MS (or delay itself if that is longer). With
 * delay 0 the first restart is immediate and later ones still double, from 1 s: a slot
 * whose tasks cannot start never turns into a hot loop of raft entries. */
static uint64_t backoff_ms(uint64_t delay, uint64_t n)
{
	uint64_t cap = delay > RESTART_DELAY_CAP_MS ? delay : RESTART_DELAY_CAP_MS;
	if (!delay) {
		if (n <= 1)
			return 0;
		delay = 1000;
		n--;
	}
	uint64_t d = delay;
	for (uint64_t i = 1; i < n && d < cap; i++)
		d *= 2;
	return d < cap ? d : cap;
}

/* Does the restart policy's condition restart a task that ended by itself like `t`? */
static bool condition_restarts(const struct svc_spec *sp, const struct task *t)
{
	switch (sp->deploy.restart.condition) {
	case RESTART_NONE: return false;
	case RESTART_ON_FAILURE: return t->state != TS_COMPLETE;
	default: return true;
	}
}

/* Step 3 for a slot with no live task whose newest task `last` is of the current
 * generation: a replacement per the restart policy, which waits out the back-off when
 * `last` ended by itself. The next restart time is fixed here, from this pass's `now`, and
 * travels in the create command, so any later leader waits for the same moment.
 * just_ended: `last` was seen ended for the first time in this pass (events once). */
static void restart_slot(struct batch *b, const struct service *v, const struct svc_spec *sp, const struct task *last,
			 bool just_ended, uint64_t now)
{
	if (!own_end(last)) {
		create(b, v->id, last->slot, v->generation, last->restarts, last->failures, 0, NULL);
		return;
	}
	if (!condition_restarts(sp, last))
		return;
	uint64_t failures = failures_after(sp, last), max = sp->deploy.restart.max_attempts;
	if (max && failures > max) {
		if (just_ended)
			event(b, "restart_limit", v->name, last->id, last->node_id,
			      "%s slot %llu: task %llu %s%s%s; not restarted: max_attempts (%llu) restarts in a row failed",
			      v->name, (unsigned long long)last->slot, (unsigned long long)last->id, task_state_name(last->state),
			      last->err && last->err[0] ? ": " : "", last->err ? last->err : "", (unsigned long long)max);
		return;
	}
	uint64_t wait = backoff_ms(sp->deploy.restart.delay_ms, failures);
	char why[ERR_LEN + 32]; /* the previous error whole, with its prefix */
	snprintf(why, sizeof why, "previous task %s%s%s", task_state_name(last->state), last->err && last->err[0] ? ": " : "",
		 last->err ? last->err : "");
	create(b, v->id, last->slot, v->generation, last->restarts + 1, failures, now + wait, why);
	event(b, "restarting", v->name, last->id, last->node_id, "%s slot %llu: task %llu %s%s%s; restart in %llu%s (%llu failure%s in a row)",
	      v->name, (unsigned long long)last->slot, (unsigned long long)last->id, task_state_name(last->state),
	      last->err && last->err[0] ? ": " : "", last->err ? last->err : "",
	      (unsigned long long)(wait % 1000 ? wait : wait / 1000), wait % 1000 ? " ms" : " s", (unsigned long long)failures,
	      failures == 1 ? "" : "s");
}

/* Running, passing its liveness and readiness checks, for at least `monitor` ms. */
static bool task_done(const struct task *t, const struct update_config *uc, uint64_t now)
{
	if (t->state != TS_RUNNING || t->desired != TD_RUNNING)
		return false;
	if (t->health && t->health[0] && strcmp(t->health, "healthy"))
		return false;
	if (t->ready && t->ready[0] && strcmp(t->ready, "ready"))
		return false;
	return now >= t->state_at + uc->monitor_ms;
}

/* A new task that failed, or that runs but never became ready within the time its
 * readiness probe needs (start period, retries, monitor): a rollout must not wait on it
 * forever. */
static bool task_failed(const struct task *t, const struct svc_spec *sp, const struct update_config *uc, uint64_t now)
{
	if (t->state == TS_FAILED || t->state == TS_REJECTED || (t->health && !strcmp(t->health, "unhealthy")))
		return true;
	if (sp->probe.enabled && t->state == TS_RUNNING && t->ready && !strcmp(t->ready, "unready")) {
		uint64_t patience = sp->probe.start_period_ms + sp->probe.interval_ms * (sp->probe.retries + 2) + uc->monitor_ms;
		return now > t->state_at + patience;
	}
	return false;
}

static void service_update(struct batch *b, const struct service *v, const char *state, const char *msg, bool rollback)
{
	mpw_map_begin(&b->svc);
	mpw_ku64(&b->svc, "id", v->id);
	mpw_kstr(&b->svc, "update_state", state);
	mpw_kstr(&b->svc, "update_msg", msg);
	mpw_kbool(&b->svc, "rollback", rollback);
	mpw_map_end(&b->svc);
	b->nsvc++;
	event(b, !strcmp(state, "completed") ? "rollout_completed" : state, v->name, 0, 0, "%s rollout of generation %llu: %s%s%s",
	      v->name, (unsigned long long)v->generation, state, msg && msg[0] ? ": " : "", msg ? msg : "");
}

/* The slots a service wants filled: 1..replicas, or for a global service the ids of the
 * nodes that should run it (sorted), a task's slot being its node's id. */
struct slots {
	uint64_t R;           /* replicated: slots 1..R */
	const uint64_t *ids;  /* global: NULL for replicated */
	size_t n;             /* how many slots */
};

static uint64_t slot_at(const struct slots *sl, size_t k)
{
	return sl->ids ? sl->ids[k] : k + 1;
}

static bool slot_wanted(const struct slots *sl, uint64_t slot)
{
	if (!sl->ids)
		return slot >= 1 && slot <= sl->R;
	return sl->n && bsearch(&slot, sl->ids, sl->n, sizeof *sl->ids, cmp_u64);
}

/* The views of one slot, [*lo, *hi) of vs (sorted by slot): a service of R replicas is
 * R lookups, not R scans of its tasks. */
static void slot_range(const struct view *vs, size_t n, uint64_t slot, size_t *lo, size_t *hi)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t mid = (a + b) / 2;
		if (vs[mid].t->slot < slot)
			a = mid + 1;
		else
			b = mid;
	}
	*lo = a;
	while (b < n && vs[b].t->slot == slot)
		b++;
	*hi = b > a ? b : a;
}

static struct view *slot_task(struct view *vs, size_t n, uint64_t slot, bool new_gen, uint64_t G)
{
	struct view *hit = NULL;
	size_t lo, hi;
	slot_range(vs, n, slot, &lo, &hi);
	for (size_t i = lo; i < hi; i++)
		if (!vs[i].stopping && (vs[i].t->generation == G) == new_gen)
			hit = &vs[i];
	return hit;
}

static void rollout(const struct store *s, const struct service *v, const struct svc_spec *sp, struct view *vs, size_t n,
		    const struct slots *sl, uint64_t now, struct batch *b)
{
	(void)s;
	uint64_t R = sl->n, G = v->generation;
	const char *st = v->update_state ? v->update_state : "";
	bool rolling_back = !strcmp(st, "rolling_back");
	bool active = !strcmp(st, "updating") || rolling_back;
	const struct update_config *uc = rolling_back ? &sp->deploy.rollback : &sp->deploy.update;
	size_t old_live = 0, new_done = 0, failed = 0;
	const char *last_err = "";
	for (size_t i = 0; i < n; i++) {
		const struct task *t = vs[i].t;
		if (!slot_wanted(sl, t->slot))
			continue;
		if (t->generation < G && !vs[i].stopping)
			old_live++;
		if (t->generation == G) {
			if (!vs[i].stopping && task_done(t, uc, now))
				new_done++;
			if (task_failed(t, sp, uc, now)) {
				failed++;
				if (t->err && t->err[0])
					last_err = t->err;
			}
		}
	}
	if (active) {
		uint64_t allowed = (uint64_t)(uc->max_failure_ratio * (double)(R ? R : 1));
		if (failed > allowed && uc->failure_action != FAIL_CONTINUE) {
			char msg[ERR_LEN];
			snprintf(msg, sizeof msg, "%zu new task%s failed (last: %s)", failed, failed == 1 ? "" : "s",
				 last_err[0] ? last_err : "unhealthy");
			if (uc->failure_action == FAIL_ROLLBACK && !rolling_back && v->prev_spec.len)
				service_update(b, v, "rolling_back", msg, true);
			else
				service_update(b, v, "paused", msg, false);
			return;
		}
		if (!old_live && new_done >= R) {
			service_update(b, v, rolling_back ? "rolled_back" : "completed", rolling_back && v->update_msg ? v->update_msg : "", false);
			return;
		}
	}
	if (!strcmp(st, "paused"))
		return;
	uint64_t par = uc->parallelism ? uc->parallelism : UINT64_MAX, busy = 0;
	bool start_first = uc->order == ORDER_START_FIRST;
	uint64_t last_done_at = 0;
	for (size_t k = 0; k < sl->n; k++) {
		uint64_t slot = slot_at(sl, k);
		struct view *old = slot_task(vs, n, slot, false, G), *nw = slot_task(vs, n, slot, true, G);
		size_t lo, hi;
		slot_range(vs, n, slot, &lo, &hi);
		for (size_t i = lo; i < hi; i++) /* an old task of this slot still stopping */
			if (vs[i].stopping && !vs[i].ended && vs[i].t->generation < G)
				busy++;
		if (nw && !task_done(nw->t, uc, now) && (old || nw->t->restarts == 0))
			busy++;
		else if (!old && !nw)
			busy++; /* emptied by the update, its new task not created yet */
		if (nw && task_done(nw->t, uc, now) && nw->t->state_at + uc->monitor_ms > last_done_at)
			last_done_at = nw->t->state_at + uc->monitor_ms;
		/* start-first: the new task is up, so the old one can go */
		if (start_first && old && nw && task_done(nw->t, uc, now)) {
			old->ended = stop(b, old->t, NULL);
			old->stopping = true;
		}
	}
	if (uc->delay_ms && last_done_at && now < last_done_at + uc->delay_ms)
		return;
	for (size_t k = 0; k < sl->n && busy < par; k++) {
		uint64_t slot = slot_at(sl, k);
		struct view *old = slot_task(vs, n, slot, false, G), *nw = slot_task(vs, n, slot, true, G);
		if (!old)
			continue;
		if (start_first) {
			if (!nw) {
				create(b, v->id, slot, G, 0, 0, 0, NULL);
				busy++;
			}
			continue;
		}
		old->ended = stop(b, old->t, NULL);
		old->stopping = true;
		busy++;
	}
}

/* A global service's slots: the nodes up, not drained, that satisfy its constraints; a
 * paused node keeps the task it has but gets none (as in Swarm). vs: the service's tasks,
 * sorted by slot. */
static size_t global_slots(const struct store *s, struct sched_ctx *sc, const struct svc_spec *sp, const struct view *vs,
			   size_t nvs, uint64_t *ids)
{
	size_t n = 0;
	TABLE_FOREACH(&s->nodes, const struct node, nd) { /* by id: ids come out sorted */
		if (nd->state == NS_DOWN || nd->availability == NA_DRAIN || !sched_constraints_ok(sc, sp, nd))
			continue;
		bool has = nd->availability != NA_PAUSE;
		size_t lo, hi;
		slot_range(vs, nvs, nd->id, &lo, &hi);
		for (size_t i = lo; i < hi && !has; i++)
			has = !vs[i].stopping;
		if (has)
			ids[n++] = nd->id;
	}
	return n;
}

/* The task's node no longer satisfies the service's constraints (a label changed, say):
 * it moves as from a drained node. */
static bool misplaced(struct sched_ctx *sc, const struct svc_spec *sp, const struct node *nd)
{
	return nd && sp->deploy.placement.constraints.n && !sched_constraints_ok(sc, sp, nd);
}

/* ---- rebalancing (rebalance.h) --------------------------------------------------------- */

/* A move's new task is given up: the older one stays. failed: it failed or could not be
 * placed, which may happen again, so the service waits the back-off (its err says so);
 * else the cluster changed under the move, and the next one is judged afresh. */
static void move_cancel(struct batch *b, const struct service *v, struct view *nw, bool failed, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void move_cancel(struct batch *b, const struct service *v, struct view *nw, bool failed, const char *fmt, ...)
{
	char why[ERR_LEN - 32], err[ERR_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	struct mpw *w;
	nw->ended = stop(b, nw->t, &w);
	nw->stopping = true;
	snprintf(err, sizeof err, "%s: %s", failed ? REBALANCE_CANCELLED : "move given up", why);
	mpw_kstr(w, "err", err);
	event(b, "rebalance_cancelled", v->name, nw->t->id, nw->t->node_id, "%s slot %llu: move of a task cancelled: %s", v->name,
	      (unsigned long long)nw->t->slot, why);
}

/* A slot running two tasks of the current generation is a move (rebalance.h): once the
 * newer one runs, healthy, ready and monitored as a start-first update's would be, the
 * older one stops, if the move still lowers the imbalance; a newer one that fails or
 * cannot be placed is stopped instead. Slots where a drain or constraint change moves a
 * task are step 1's. */
static void moves(const struct service *v, const struct svc_spec *sp, struct view *vs, size_t n, uint64_t now,
		  struct batch *b, struct sched_ctx *sc)
{
	uint64_t G = v->generation;
	for (size_t i = 0; i < n;) {
		size_t j = i, live = 0;
		bool leaving = false;
		struct view *nw = NULL, *old = NULL;
		for (; j < n && vs[j].t->slot == vs[i].t->slot; j++) {
			struct view *x = &vs[j];
			if (x->stopping || x->ended || x->t->generation != G)
				continue;
			live++;
			leaving |= x->leaving;
			if (!old || x->t->id < old->t->id)
				old = x;
			if (!nw || x->t->id > nw->t->id)
				nw = x;
		}
		i = j;
		if (live < 2 || leaving)
			continue;
		const struct task *t = nw->t;
		const struct update_config *uc = &sp->deploy.update;
		const struct node *from = node_of(sc->s, old->t->node_id), *to = node_of(sc->s, t->node_id);
		if (t->state == TS_PENDING && !t->node_id && t->err && t->err[0])
			move_cancel(b, v, nw, true, "%s", t->err);
		else if (task_failed(t, sp, uc, now))
			move_cancel(b, v, nw, true, "task %llu %s%s%s", (unsigned long long)t->id, task_state_name(t->state),
				    t->err && t->err[0] ? ": " : "", t->err ? t->err : "unhealthy");
		else if (!task_done(t, uc, now))
			b->moving++;
		else if (!rebalance_improves(sc, sp, v->id, old->t->node_id, t->node_id))
			move_cancel(b, v, nw, false, "node %s no longer holds fewer tasks of %s than node %s", node_name(to), v->name,
				    node_name(from));
		else {
			for (size_t k = j; k-- > 0 && vs[k].t->slot == t->slot;) {
				struct view *x = &vs[k];
				if (x == nw || x->stopping || x->ended || x->t->generation != G)
					continue;
				struct mpw *w;
				char why[ERR_LEN];
				x->ended = stop(b, x->t, &w);
				x->stopping = true;
				snprintf(why, sizeof why, "moved to node %s (rebalancing)", node_name(to));
				mpw_kstr(w, "err", why);
				event(b, "rebalanced", v->name, x->t->id, t->node_id,
				      "%s slot %llu: task %llu runs on node %s; task %llu on node %s stopped", v->name,
				      (unsigned long long)t->slot, (unsigned long long)t->id, node_name(to),
				      (unsigned long long)x->t->id, node_name(node_of(sc->s, x->t->node_id)));
			}
		}
	}
}

/* May a move start in this service (rebalance.h)? Every wanted slot has one live task,
 * running, of the current generation; no rollout, stop or drain is under way; no task
 * failed, and no move was cancelled, within the back-off. */
static bool settled(const struct service *v, const struct svc_spec *sp, const struct view *vs, size_t n,
		    const struct slots *sl, uint64_t now)
{
	const char *st = v->update_state ? v->update_state : "";
	if (sl->ids || !sp->deploy.rebalance || !strcmp(st, "updating") || !strcmp(st, "rolling_back") || !strcmp(st, "paused"))
		return false;
	size_t live = 0;
	for (size_t i = 0; i < n; i++) {
		const struct view *x = &vs[i];
		const struct task *t = x->t;
		if (x->ended) {
			bool failed = t->state == TS_FAILED || t->state == TS_REJECTED ||
				      (t->err && !strncmp(t->err, REBALANCE_CANCELLED, strlen(REBALANCE_CANCELLED)));
			if (failed && t->state_at + REBALANCE_BACKOFF_MS > now)
				return false;
			continue;
		}
		if (x->stopping || x->leaving || t->state != TS_RUNNING || t->generation != v->generation)
			return false;
		live++;
	}
	return live == sl->n;
}

/* Returns whether the service is settled enough for a rebalancing move to start. */
static bool service_pass(const struct store *s, const struct service *v, const struct svc_spec *sp, uint64_t now,
			 struct batch *b, const struct task *const *ts, size_t nts, struct sched_ctx *sc)
{
	bool global = sp->deploy.mode == DEPLOY_GLOBAL;
	uint64_t *gids = global ? xmalloc((s->nodes.n + 1) * sizeof *gids) : NULL;
	size_t n = 0;
	struct view *vs = xmalloc((nts + 1) * sizeof *vs);
	for (size_t k = 0; k < nts; k++) {
		const struct task *t = ts[k];
		vs[n].t = t;
		vs[n].stopping = !running_wanted(t);
		vs[n].ended = task_terminal(t);
		vs[n].just_ended = false;
		vs[n].leaving = false;
		n++;
	}
	qsort(vs, n, sizeof *vs, by_slot_id);
	struct slots sl = {.R = v->replicas, .ids = gids, .n = global ? global_slots(s, sc, sp, vs, n, gids) : v->replicas};
	uint64_t G = v->generation;

	/* 1. per task: ended, lost nodes, surplus slots */
	for (size_t i = 0; i < n; i++) {
		struct view *x = &vs[i];
		const struct task *t = x->t;
		const struct node *nd = node_of(s, t->node_id);
		bool node_lost = t->node_id && (!nd || nd->state == NS_DOWN);
		/* a global task has nowhere else to go: its slot is no longer wanted (below) */
		bool drained = !global && t->node_id && nd && (nd->availability == NA_DRAIN || misplaced(sc, sp, nd));
		x->leaving = drained;
		if (!x->ended && (node_lost || (drained && !x->stopping))) {
			if (node_lost) {
				struct mpw *w = update(b, t->id);
				put_state(w, TS_ORPHANED);
				put_desired(w, TD_SHUTDOWN);
				mpw_kstr(w, "err", nd ? "its node is down" : "its node left the cluster");
				event(b, "rescheduled", v->name, t->id, t->node_id, "task %llu (%s slot %llu) lost with node %s (%s); replaced",
				      (unsigned long long)t->id, v->name, (unsigned long long)t->slot, node_name(nd),
				      nd ? "down" : "left the cluster");
				x->ended = true;
			} else {
				/* drain: start the replacement elsewhere first, stop this one once it runs;
				 * while no other node can take it, this one keeps serving */
				const struct task *rep = NULL;
				size_t lo, hi;
				slot_range(vs, n, t->slot, &lo, &hi);
				for (size_t k = lo; k < hi; k++) {
					const struct task *o = vs[k].t;
					const struct node *on = node_of(s, o->node_id);
					if (o != t && !vs[k].stopping && !vs[k].ended &&
					    !(on && (on->availability == NA_DRAIN || misplaced(sc, sp, on))))
						rep = o;
				}
				if (!rep) {
					create(b, v->id, t->slot, v->generation, t->restarts, t->failures, 0, NULL);
					continue;
				}
				if (rep->state != TS_RUNNING)
					continue;
				struct mpw *w;
				x->ended = stop(b, t, &w);
				mpw_kstr(w, "err", nd->availability == NA_DRAIN ? "its node is being drained"
								   : "its node no longer satisfies the placement constraints");
			}
			x->stopping = true;
			continue;
		}
		if (x->stopping)
			continue;
		if (x->ended) { /* ended by itself while wanted running */
			stop(b, t, NULL);
			x->stopping = true;
			x->just_ended = true;
			continue;
		}
		if (!slot_wanted(&sl, t->slot)) {
			x->ended = stop(b, t, NULL);
			x->stopping = true;
		}
	}

	/* 1b. rebalancing moves in flight finish or are cancelled */
	moves(v, sp, vs, n, now, b, sc);

	/* 2. rolling update (or rollback): replace old-generation tasks, parallelism at a time,
	 * a new task counting as updated once running, healthy, ready and monitored; failures
	 * beyond max_failure_ratio pause or roll back per failure_action. */
	rollout(s, v, sp, vs, n, &sl, now, b);

	/* 3. every slot wanted has a live task, or gets one */
	for (size_t k = 0; k < sl.n; k++) {
		uint64_t slot = slot_at(&sl, k);
		const struct view *last = NULL;
		bool live = false, draining = false;
		size_t lo, hi;
		slot_range(vs, n, slot, &lo, &hi);
		for (size_t i = lo; i < hi; i++) {
			last = &vs[i];
			if (!vs[i].stopping)
				live = true;
			else if (!vs[i].ended)
				draining = true;
		}
		if (live || draining) /* stop-first: wait for the old task to end */
			continue;
		if (!last) {
			if (b->fresh < RECONCILE_CREATE_MAX) { /* the rest in the next passes */
				create(b, v->id, slot, G, 0, 0, 0, NULL);
				b->fresh++;
			} else
				b->capped = true;
			continue;
		}
		if (last->t->generation < G)
			create(b, v->id, slot, G, 0, 0, 0, NULL); /* a new spec starts without back-off */
		else
			restart_slot(b, v, sp, last->t, last->just_ended, now);
	}

	/* 4. history: keep the newest TASK_HISTORY terminal tasks per slot */
	for (size_t i = 0; i < n;) {
		size_t j = i, kept = 0;
		while (j < n && vs[j].t->slot == vs[i].t->slot)
			j++;
		for (size_t k = j; k-- > i;) {
			const struct view *x = &vs[k];
			if (!x->ended || !x->stopping || !task_terminal(x->t))
				continue;
			if (++kept > TASK_HISTORY || !slot_wanted(&sl, x->t->slot))
				del(b, x->t->id);
		}
		i = j;
	}
	bool ok = settled(v, sp, vs, n, &sl, now);
	free(vs);
	free(gids);
	return ok;
}

bool reconcile(const struct store *s, uint64_t now, struct mpw *w)
{
	return reconcile_live(s, now, w, NULL, NULL, NULL, NULL);
}

/* A service's tasks, for one pass. */
struct svc_tasks {
	const struct task **ts;
	size_t n, cap;
	/* depends_on, looked at once per pass: 0 not yet, 1 free to start, 2 waiting (why) */
	int deps;
	char *deps_why;
	bool settled; /* a rebalancing move may start (service_pass) */
};

/* Does the service's first start still wait for its dependencies (depends.h)? */
static bool deps_wait(const struct store *s, const struct service *v, const struct svc_spec *sp, struct svc_tasks *x,
		      char *why, size_t n)
{
	if (!x->deps) {
		char w[ERR_LEN] = "";
		x->deps = depends_waiting(s, v, sp, x->ts, x->n, w, sizeof w) ? 2 : 1;
		if (x->deps == 2)
			x->deps_why = xstrdup(w);
	}
	if (x->deps == 2)
		snprintf(why, n, "%s", x->deps_why);
	return x->deps == 2;
}

/* New moves, only in a pass that creates nothing else (the cluster has converged), up to
 * the cluster's budget of moves in flight: a second task in the slot of the task picked,
 * placed by the next pass where the scheduler puts it (rebalance_pick asked it). */
static void rebalance_start(const struct store *s, uint64_t now, struct batch *b, struct sched_ctx *sc, struct svc_tasks *st,
			    size_t nsv, const struct volplace *vp)
{
	uint64_t budget = rebalance_budget(s);
	if (b->capped || b->ncr || b->moving >= budget)
		return;
	for (size_t i = 0; i < nsv && b->moving < budget; i++) {
		const struct service *v = s->services.items[i];
		const struct svc_spec *sp = service_spec(v);
		struct rebalance_pick pk;
		if (!st[i].settled || !sp || !rebalance_pick(sc, s, v, sp, st[i].ts, st[i].n, vp, now, &pk))
			continue;
		const struct task *t = pk.t;
		create(b, v->id, t->slot, v->generation, t->restarts, t->failures, 0, NULL);
		sched_commit(sc, pk.to, v->id, sp);
		b->moving++;
		event(b, "rebalancing", v->name, t->id, pk.to,
		      "%s slot %llu: task %llu moves from node %s (%llu tasks of %s) to node %s (%llu), started there first",
		      v->name, (unsigned long long)t->slot, (unsigned long long)t->id, node_name(node_of(s, t->node_id)),
		      (unsigned long long)pk.from_count, v->name, node_name(node_of(s, pk.to)), (unsigned long long)pk.to_count);
	}
}

bool reconcile_live(const struct store *s, uint64_t now, struct mpw *w, bool (*reachable)(uint64_t node, void *arg),
		    bool (*manager)(uint64_t node, void *arg), void *arg, struct reconcile_out *out)
{
	struct batch b;
	batch_init(&b);
	struct sched_ctx sc;
	sched_init(&sc, s);
	sc.reachable = reachable;
	sc.manager = manager;
	sc.reachable_arg = arg;

	/* each service's tasks found in one pass over all tasks */
	size_t nsv = s->services.n;
	struct svc_tasks *st = xcalloc(nsv + 1, sizeof *st);
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		long i = table_index_u64(&s->services, t->service_id);
		if (i < 0)
			continue;
		struct svc_tasks *x = &st[i];
		if (x->n == x->cap)
			x->ts = xrealloc(x->ts, (x->cap = x->cap ? x->cap * 2 : 16) * sizeof *x->ts);
		x->ts[x->n++] = t;
	}
	for (size_t i = 0; i < nsv; i++) {
		const struct service *v = s->services.items[i];
		if (!service_spec(v))
			continue;
		if (b.nup + b.ncr >= RECONCILE_BATCH_MAX) { /* the other services in the next passes */
			b.capped = true;
			continue;
		}
		st[i].settled = service_pass(s, v, service_spec(v), now, &b, st[i].ts, st[i].n, &sc);
	}
	/* tasks whose service is gone: deleted once terminal; lost nodes end them */
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (table_get_u64(&s->services, t->service_id))
			continue;
		const struct node *nd = node_of(s, t->node_id);
		if (task_terminal(t))
			del(&b, t->id);
		else if (t->node_id && (!nd || nd->state == NS_DOWN)) {
			struct mpw *u = update(&b, t->id);
			put_state(u, TS_ORPHANED);
			put_desired(u, TD_SHUTDOWN);
		}
	}
	/* placement of pending tasks, oldest first (same-service placements of this pass
	 * count for spreading: sched_commit) */
	struct volplace vp;
	volplace_init(&vp);
	rebalance_start(s, now, &b, &sc, st, nsv, &vp);
	if (b.nstopped) /* qsort wants a real array, even empty */
		qsort(b.stopped, b.nstopped, sizeof *b.stopped, cmp_u64);
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (t->node_id || t->state != TS_PENDING || t->desired != TD_RUNNING || t->start_after > now ||
		    (b.nstopped && bsearch(&t->id, b.stopped, b.nstopped, sizeof *b.stopped, cmp_u64)))
			continue;
		long i = table_index_u64(&s->services, t->service_id);
		const struct service *v = i < 0 ? NULL : s->services.items[i];
		const struct svc_spec *sp = v ? service_spec(v) : NULL;
		if (!sp)
			continue;
		if (b.placed >= RECONCILE_PLACE_MAX) { /* the rest in the next passes */
			b.capped = true;
			break;
		}
		char reason[ERR_LEN] = "";
		uint64_t node = 0, pin = 0;
		if (deps_wait(s, v, sp, &st[i], reason, sizeof reason)) {
			node = 0;
		} else if (!volplace_pin(&vp, s, sp, t->slot, &pin, reason, sizeof reason)) {
			sc.pin = pin;
			if (sp->deploy.mode == DEPLOY_GLOBAL) /* its node is its slot */
				node = sched_place_on(&sc, sp, v->id, t->slot, reason, sizeof reason);
			else
				node = sched_place(&sc, sp, v->id, reason, sizeof reason);
			sc.pin = 0;
			if (!node && pin && sp->deploy.mode != DEPLOY_GLOBAL) {
				char why[ERR_LEN];
				snprintf(why, sizeof why, "%s", reason);
				volplace_reason(s, sp, t->slot, pin, why, reason, sizeof reason);
			}
		}
		if (node) {
			volplace_commit(&vp, s, sp, v->name, t->slot, node);
			struct mpw *u = update(&b, t->id);
			mpw_ku64(u, "node_id", node);
			put_state(u, TS_ASSIGNED);
			mpw_kstr(u, "err", "");
			sched_commit(&sc, node, v->id, sp);
			b.placed++;
			event(&b, "scheduled", v->name, t->id, node, "task %llu (%s slot %llu) scheduled on node %s",
			      (unsigned long long)t->id, v->name, (unsigned long long)t->slot, node_name(node_of(s, node)));
		} else if (!t->err || strcmp(t->err, reason)) {
			struct mpw *u = update(&b, t->id);
			mpw_kstr(u, "err", reason);
		}
	}
	sched_free(&sc);
	for (size_t i = 0; i < nsv; i++) {
		free(st[i].ts);
		free(st[i].deps_why);
	}
	free(st);
	if (out) {
		out->capped = b.capped || b.ncr; /* new tasks wait for the next pass to place them */
		out->created = b.ncr;
		out->placed = b.placed;
	}

	bool work = b.ncr || b.nup || b.ndel || b.nsvc;
	if (b.up_open)
		mpw_map_end(&b.up);
	if (work) {
		struct mpw a[6];
		struct cmd_task_batch body = {
			.events = array_of(&a[0], b.nev, &b.ev),
			.services = array_of(&a[1], b.nsvc, &b.svc),
			.create = array_of(&a[2], b.ncr, &b.cr),
			.update = array_of(&a[3], b.nup, &b.up),
			.delete = array_of(&a[4], b.ndel, &b.del),
			.at = now,
		};
		mpw_init(&a[5]);
		if (vp.n) /* made only with a placement: there is work */
			body.volumes = array_of(&a[5], vp.n, &vp.w);
		cmd_body(w, CMD_TASK_BATCH, &body);
		for (int i = 0; i < 6; i++)
			mpw_free(&a[i]);
	}
	volplace_free(&vp);
	batch_free(&b);
	return work;
}
