/* The state tables (state/lifecycle.h) as the state machine applies them: every move of a
 * task's state checked, in both directions, against a list of the legal ones written out
 * here; old entries (format 2, string states, no tables) replaying as they first did. */
#include "unit.h"
#include "entry.h"
#include "orchestrator/reconcile.h"
#include "spec/spec.h"
#include "state/store.h"
#include "util/mem.h"

static uint64_t seq;

/* An entry as this binary writes it (format 3), or as the binaries before the tables did
 * (format 2: same identity, string states, no table). */
static void apply_v(struct store *s, unsigned format, enum cmd type, struct mpw *body, struct apply_res *res)
{
	size_t n;
	void *e;
	struct req_id q = {5, 0x77, ++seq};
	if (format == 3)
		e = cmd_build(type, &q, body->sb.data, body->sb.size, &n);
	else
		e = entry_old(format, type, &q, body->sb.data, body->sb.size, &n);
	store_apply(s, e, n, res);
	free(e);
	mpw_free(body);
}

/* A cluster with one service and `ntasks` pending tasks of it (ids returned). */
static void setup(struct store *s, unsigned ntasks, uint64_t *ids)
{
	struct apply_res res;
	store_init(s);
	entry_put_service(s, "services:\n  web:\n    image: demo\n", &res);
	CHECK_EQ_INT(res.rc, 0);
	uint64_t sid = res.id;
	for (unsigned i = 0; i < ntasks; i++) {
		struct mpw w;
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_key(&w, "create");
		mpw_arr(&w, 1);
		mpw_map_begin(&w);
		mpw_ku64(&w, "service_id", sid);
		mpw_ku64(&w, "slot", i + 1);
		mpw_map_end(&w);
		mpw_map_end(&w);
		apply_v(s, 3, CMD_TASK_BATCH, &w, &res);
		CHECK_EQ_INT(res.rc, 0);
		ids[i] = res.id;
	}
}

/* task.batch updating the given tasks' states (NULL: leave it) and desired states. */
static void move(struct store *s, unsigned format, size_t n, const uint64_t *ids, const char *const *states,
		 const char *const *desired, struct apply_res *res)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "at", 50);
	mpw_key(&w, "update");
	mpw_arr(&w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		mpw_map_begin(&w);
		mpw_ku64(&w, "id", ids[i]);
		if (states && states[i])
			mpw_kstr(&w, "state", states[i]);
		if (desired && desired[i])
			mpw_kstr(&w, "desired", desired[i]);
		mpw_map_end(&w);
	}
	mpw_map_end(&w);
	apply_v(s, format, CMD_TASK_BATCH, &w, res);
}

/* The legal moves of a task, written out independently of the table. */
static bool legal(const char *from, const char *to)
{
	static const char *const moves[][2] = {
		{"pending", "assigned"}, {"pending", "shutdown"},
		{"assigned", "preparing"}, {"assigned", "starting"}, {"assigned", "running"}, {"assigned", "complete"},
		{"assigned", "failed"}, {"assigned", "shutdown"}, {"assigned", "rejected"}, {"assigned", "orphaned"},
		{"preparing", "starting"}, {"preparing", "running"}, {"preparing", "complete"}, {"preparing", "failed"},
		{"preparing", "shutdown"}, {"preparing", "rejected"}, {"preparing", "orphaned"},
		{"starting", "running"}, {"starting", "complete"}, {"starting", "failed"}, {"starting", "shutdown"},
		{"starting", "rejected"}, {"starting", "orphaned"},
		{"running", "complete"}, {"running", "failed"}, {"running", "shutdown"}, {"running", "orphaned"},
	};
	if (!strcmp(from, to))
		return true; /* staying put is no move */
	for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++)
		if (!strcmp(moves[i][0], from) && !strcmp(moves[i][1], to))
			return true;
	return false;
}

static const char *const all_states[] = {"pending", "assigned", "preparing", "starting", "running",
					 "complete", "failed", "shutdown", "rejected", "orphaned"};
#define NSTATES (sizeof all_states / sizeof all_states[0])

static struct task *task_of(struct store *s, uint64_t id)
{
	struct task *t = table_get_u64(&s->tasks, id);
	CHECK(t != NULL);
	return t;
}

UNIT(lifecycle_every_task_move_checked)
{
	unsigned legal_seen = 0, refused = 0;
	for (size_t f = 0; f < NSTATES; f++)
		for (size_t t = 0; t < NSTATES; t++) {
			struct store s;
			uint64_t id;
			struct apply_res res;
			setup(&s, 1, &id);
			/* the task reaches `from` by a legal path */
			static const char *const paths[NSTATES][3] = {
				{NULL}, {"assigned"}, {"assigned", "preparing"}, {"assigned", "starting"},
				{"assigned", "running"}, {"assigned", "running", "complete"}, {"assigned", "failed"},
				{"shutdown"}, {"assigned", "rejected"}, {"assigned", "orphaned"},
			};
			for (size_t k = 0; k < 3 && paths[f][k]; k++) {
				const char *one[] = {paths[f][k]};
				move(&s, 3, 1, &id, one, NULL, &res);
				CHECK_EQ_INT(res.rc, 0);
			}
			CHECK_STR(task_state_name(task_of(&s, id)->state), all_states[f]);
			uint64_t rev = s.revision;
			const char *to[] = {all_states[t]};
			move(&s, 3, 1, &id, to, NULL, &res);
			if (legal(all_states[f], all_states[t])) {
				CHECK_EQ_INT(res.rc, 0);
				CHECK_STR(task_state_name(task_of(&s, id)->state), all_states[t]);
				legal_seen++;
			} else {
				CHECK_EQ_INT(res.rc, E_STATE);
				char want[80];
				snprintf(want, sizeof want, "%s -> %s is not allowed", all_states[f], all_states[t]);
				CHECK(strstr(res.msg, want) != NULL);
				CHECK_STR(task_state_name(task_of(&s, id)->state), all_states[f]);
				/* refused: nothing changed but the answer remembered for the request */
				CHECK_EQ_INT(s.revision, rev);
				refused++;
			}
			store_free(&s);
		}
	CHECK_EQ_INT(legal_seen, 27 + NSTATES);
	CHECK_EQ_INT(refused, NSTATES * NSTATES - 27 - NSTATES);
}

UNIT(lifecycle_table_matches_written_rules)
{
	/* the table itself, including values out of range */
	for (int f = 0; f < TS_COUNT; f++)
		for (int t = 0; t < TS_COUNT; t++) {
			bool want = f && t && legal(task_state_name((enum task_state)f), task_state_name((enum task_state)t));
			if (f == t)
				want = true;
			CHECK_EQ_INT(lifecycle_allows(&lifecycle_task, f, t), want);
		}
	CHECK(!lifecycle_allows(&lifecycle_task, TS_RUNNING, TS_COUNT));
	CHECK(!lifecycle_allows(&lifecycle_task, -1, TS_RUNNING));
	CHECK_STR(lifecycle_name(&lifecycle_task, TS_COUNT), "?");
	for (int v = 0; v < TS_COUNT; v++) {
		const char *n = task_state_name((enum task_state)v);
		CHECK_EQ_INT(lifecycle_parse(&lifecycle_task, n, strlen(n)), v);
	}
	CHECK_EQ_INT(lifecycle_parse(&lifecycle_task, "runnin", 6), -1);
	CHECK_EQ_INT(lifecycle_parse(&lifecycle_task, "runningx", 8), -1);
	/* desired: running -> shutdown only */
	CHECK(lifecycle_allows(&lifecycle_desired, TD_RUNNING, TD_SHUTDOWN));
	CHECK(!lifecycle_allows(&lifecycle_desired, TD_SHUTDOWN, TD_RUNNING));
	/* nodes: ready <-> down */
	CHECK(lifecycle_allows(&lifecycle_node, NS_READY, NS_DOWN));
	CHECK(lifecycle_allows(&lifecycle_node, NS_DOWN, NS_READY));
}

UNIT(lifecycle_illegal_move_refuses_whole_batch)
{
	struct store s;
	uint64_t ids[3];
	struct apply_res res;
	setup(&s, 3, ids);
	const char *run[] = {"assigned", "assigned", "shutdown"};
	move(&s, 3, 3, ids, run, NULL, &res);
	CHECK_EQ_INT(res.rc, 0);
	uint64_t rev = s.revision;
	/* two good moves and one from an ended state */
	const char *mix[] = {"running", "starting", "assigned"};
	move(&s, 3, 3, ids, mix, NULL, &res);
	CHECK_EQ_INT(res.rc, E_STATE);
	CHECK(strstr(res.msg, cmd_name(CMD_TASK_BATCH)) && strstr(res.msg, "shutdown -> assigned"));
	CHECK_EQ_INT(task_of(&s, ids[0])->state, TS_ASSIGNED);
	CHECK_EQ_INT(task_of(&s, ids[1])->state, TS_ASSIGNED);
	CHECK_EQ_INT(s.revision, rev);
	/* moves of one task within a batch apply in order: running then complete is fine,
	 * complete then running is not */
	uint64_t twice[] = {ids[0], ids[0]};
	const char *up[] = {"running", "complete"};
	move(&s, 3, 2, twice, up, NULL, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(task_of(&s, ids[0])->state, TS_COMPLETE);
	twice[0] = twice[1] = ids[1];
	const char *back[] = {"complete", "running"};
	move(&s, 3, 2, twice, back, NULL, &res);
	CHECK_EQ_INT(res.rc, E_STATE);
	CHECK_EQ_INT(task_of(&s, ids[1])->state, TS_ASSIGNED);
	/* desired: a stopped task is never wanted running again */
	const char *stop[] = {"shutdown"}, *again[] = {"running"};
	move(&s, 3, 1, &ids[1], NULL, stop, &res);
	CHECK_EQ_INT(res.rc, 0);
	move(&s, 3, 1, &ids[1], NULL, again, &res);
	CHECK_EQ_INT(res.rc, E_STATE);
	CHECK_EQ_INT(task_of(&s, ids[1])->desired, TD_SHUTDOWN);
	/* unknown names are bad input, not moves */
	const char *bogus[] = {"sleeping"};
	move(&s, 3, 1, &ids[1], bogus, NULL, &res);
	CHECK_EQ_INT(res.rc, E_INVAL);
	store_free(&s);
}

/* Entries written before the tables replay as they first applied: a report that would
 * move a task back, or from one ended state to another, is skipped — silently, and the
 * rest of its batch applies — while the same batch in the current format is refused. */
UNIT(lifecycle_old_entries_replay_as_before)
{
	struct store a, b;
	uint64_t ids[2], idb[2];
	struct apply_res res;
	setup(&a, 2, ids);
	setup(&b, 2, idb);
	CHECK_EQ_INT(ids[0], idb[0]);
	const char *placed[] = {"assigned", "assigned"};
	move(&a, 3, 2, ids, placed, NULL, &res);
	CHECK_EQ_INT(res.rc, 0);
	move(&b, 3, 2, idb, placed, NULL, &res);
	CHECK_EQ_INT(res.rc, 0);
	const char *first[] = {"running", "orphaned"};
	move(&a, 2, 2, ids, first, NULL, &res);
	CHECK_EQ_INT(res.rc, 0);
	move(&b, 3, 2, idb, first, NULL, &res);
	CHECK_EQ_INT(res.rc, 0);
	/* a late "running" about the orphaned task, with a good move of the other */
	const char *late[] = {"complete", "running"};
	move(&a, 2, 2, ids, late, NULL, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(task_of(&a, ids[0])->state, TS_COMPLETE);
	CHECK_EQ_INT(task_of(&a, ids[1])->state, TS_ORPHANED);
	move(&b, 3, 2, idb, late, NULL, &res);
	CHECK_EQ_INT(res.rc, E_STATE);
	CHECK_EQ_INT(task_of(&b, idb[0])->state, TS_RUNNING);
	/* old entries also jumped states the table does not allow today (pending -> running) */
	store_free(&a);
	setup(&a, 1, ids);
	const char *jump[] = {"running"};
	move(&a, 2, 1, ids, jump, NULL, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(task_of(&a, ids[0])->state, TS_RUNNING);
	/* format 1 too */
	const char *done[] = {"failed"};
	move(&a, 1, 1, ids, done, NULL, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(task_of(&a, ids[0])->state, TS_FAILED);
	store_free(&a);
	store_free(&b);
}

/* The start of a version 1 snapshot with its tables but nodes and tasks empty; the caller
 * adds the nodes and tasks and closes the map. */
static void old_snapshot(struct mpw *w)
{
	mpw_map_begin(w);
	mpw_ku64(w, "v", 1);
	mpw_ku64(w, "revision", 9);
	mpw_key(w, "cluster");
	mpw_nil(w);
	const char *empty[] = {"kv", "origins", "services", "images"};
	for (int i = 0; i < 4; i++) {
		mpw_key(w, empty[i]);
		mpw_arr(w, 0);
	}
}

/* A snapshot as the binaries before the enums wrote it (states as strings, endpoints as
 * text, version 1) restores to the same states, and encodes them by the same names. */
UNIT(lifecycle_old_snapshot_states_restore)
{
	struct mpw w;
	mpw_init(&w);
	old_snapshot(&w);
	mpw_key(&w, "nodes");
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", 3);
	mpw_kstr(&w, "name", "n3");
	mpw_kstr(&w, "addr", "127.0.0.1:1");
	mpw_kstr(&w, "state", "down");
	mpw_kstr(&w, "availability", "drain");
	mpw_map_end(&w);
	mpw_key(&w, "tasks");
	mpw_arr(&w, 2);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", 10);
	mpw_kstr(&w, "service", "web");
	mpw_kstr(&w, "desired", "shutdown");
	mpw_kstr(&w, "state", "orphaned");
	mpw_map_end(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", 11);
	mpw_kstr(&w, "desired", "running");
	mpw_kstr(&w, "state", "starting");
	mpw_kstr(&w, "endpoint", "127.0.0.3:40000->80/tcp"); /* endpoints were text then */
	mpw_map_end(&w);
	mpw_map_end(&w);
	struct store s;
	store_init(&s);
	char err[ERR_LEN];
	CHECK_EQ_INT(store_restore(&s, w.sb.data, w.sb.size, err), 0);
	mpw_free(&w);
	struct node *n = table_get_u64(&s.nodes, 3);
	CHECK_EQ_INT(n->state, NS_DOWN);
	CHECK_EQ_INT(n->availability, NA_DRAIN);
	CHECK_EQ_INT(task_of(&s, 10)->state, TS_ORPHANED);
	CHECK_EQ_INT(task_of(&s, 10)->desired, TD_SHUTDOWN);
	CHECK_EQ_INT(task_of(&s, 11)->state, TS_STARTING);
	CHECK(task_terminal(task_of(&s, 10)));
	CHECK(!task_terminal(task_of(&s, 11)));
	CHECK_EQ_INT(task_of(&s, 11)->endpoint.n, 1);
	CHECK_EQ_INT(task_of(&s, 11)->endpoint.v[0].host_port, 40000);
	CHECK_EQ_INT(task_of(&s, 10)->endpoint.n, 0);
	/* and writes the names back */
	mpw_init(&w);
	schema_encode(&task_schema, task_of(&s, 10), &w);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	char st[16];
	CHECK_EQ_INT(mp_get_strbuf(r.root, "state", st, sizeof st), 0);
	CHECK_STR(st, "orphaned");
	mpr_free(&r);
	mpw_free(&w);
	store_free(&s);
	/* a state no table knows is bad input: the snapshot is refused, nothing replaced */
	mpw_init(&w);
	old_snapshot(&w);
	mpw_key(&w, "nodes");
	mpw_arr(&w, 0);
	mpw_key(&w, "tasks");
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", 12);
	mpw_kstr(&w, "state", "sleeping");
	mpw_map_end(&w);
	mpw_map_end(&w);
	store_init(&s);
	CHECK(store_restore(&s, w.sb.data, w.sb.size, err) != 0);
	CHECK(strstr(err, "field state: not a task state") != NULL);
	CHECK_EQ_INT(s.tasks.n, 0);
	mpw_free(&w);
	store_free(&s);
}

/* The reconciler asks only for legal moves: tasks it stops in a pass before they were
 * placed are not also placed in that pass (pending -> shutdown, then shutdown -> assigned,
 * would be refused with the whole batch). */
UNIT(lifecycle_reconciler_does_not_place_what_it_stops)
{
	struct store s;
	uint64_t ids[3];
	struct apply_res res;
	setup(&s, 0, ids);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", 1);
	mpw_kstr(&w, "name", "n1");
	mpw_kstr(&w, "addr", "127.0.0.1:1");
	mpw_map_end(&w);
	apply_v(&s, 3, CMD_NODE_ADD, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	struct service *v = store_service_by_name(&s, "web");
	/* three replicas wanted: three pending tasks, then scaled to one before any placement */
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "web");
	mpw_ku64(&w, "replicas", 3);
	mpw_map_end(&w);
	apply_v(&s, 3, CMD_SERVICE_SCALE, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	mpw_init(&w);
	CHECK(reconcile(&s, 1000, &w));
	apply_v(&s, 3, CMD_TASK_BATCH, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(s.tasks.n, 3);
	TABLE_FOREACH(&s.tasks, struct task, t)
		t->start_after = 5000; /* not placeable yet */
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "web");
	mpw_ku64(&w, "replicas", 1);
	mpw_map_end(&w);
	apply_v(&s, 3, CMD_SERVICE_SCALE, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(v->replicas, 1);
	mpw_init(&w);
	CHECK(reconcile(&s, 6000, &w));
	apply_v(&s, 3, CMD_TASK_BATCH, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	unsigned assigned = 0, ended = 0;
	TABLE_FOREACH(&s.tasks, struct task, t) {
		assigned += t->state == TS_ASSIGNED;
		ended += t->state == TS_SHUTDOWN;
	}
	CHECK_EQ_INT(assigned, 1);
	CHECK_EQ_INT(ended, 2);
	store_free(&s);
}
