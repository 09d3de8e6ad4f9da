#include "fakert.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fakert_init(struct fakert *r, const struct fakert_host *host, unsigned start_min_ms, unsigned start_max_ms)
{
	memset(r, 0, sizeof *r);
	r->host = *host;
	r->start_min_ms = start_min_ms;
	r->start_max_ms = start_max_ms;
	r->anchor = xcalloc(1, sizeof *r->anchor);
	r->anchor->r = r;
	r->anchor->refs = 1;
}

static void anchor_put(struct fakert_anchor *a)
{
	if (--a->refs == 0)
		free(a);
}

void fakert_free(struct fakert *r)
{
	free(r->t);
	r->t = NULL;
	r->n = 0;
	r->anchor->r = NULL;
	anchor_put(r->anchor);
	r->anchor = NULL;
}

static struct ftask *find(struct fakert *r, uint64_t id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->t[i].id == id)
			return &r->t[i];
	return NULL;
}

static void forget(struct fakert *r, struct ftask *t)
{
	*t = r->t[--r->n];
}

struct report_ref {
	struct fakert_anchor *a;
	uint64_t id;
	const char *state;
};

static void reported(void *data, int rc, const struct apply_res *res)
{
	struct report_ref *ref = data;
	struct fakert *r = ref->a->r;
	struct ftask *t = r ? find(r, ref->id) : NULL;
	(void)res;
	if (t) {
		t->inflight = false;
		/* E_STATE: the cluster moved the task on meanwhile; asking again is refused again */
		if (!rc || rc == E_EXISTS || rc == E_STATE)
			t->reported = ref->state;
	}
	anchor_put(ref->a);
	free(ref);
}

/* Reports t's state when it differs from what the leader has acknowledged; one report
 * in flight per task, the next one on a later tick. */
static void report(struct fakert *r, struct ftask *t)
{
	if (t->inflight || !t->want || (t->reported && !strcmp(t->want, t->reported)))
		return;
	/* as the real agent: only moves the task's table allows from where the cluster has it
	 * (a node restarted finds its tasks running there already) */
	int to = lifecycle_parse(&lifecycle_task, t->want, strlen(t->want));
	if (t->stored > 0 && !lifecycle_allows(&lifecycle_task, t->stored, to)) {
		t->reported = t->want;
		return;
	}
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "at", clock_wall(r->host.clock));
	mpw_key(&w, "update");
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", t->id);
	mpw_kstr(&w, "state", t->want);
	if (!strcmp(t->want, "rejected"))
		mpw_kstr(&w, "err", "exec: sim/reject: no such file or directory");
	if (!strcmp(t->want, "failed")) {
		mpw_ki64(&w, "exit_code", 1);
		mpw_kstr(&w, "err", "exited with status 1");
	}
	mpw_map_end(&w);
	mpw_map_end(&w);
	struct report_ref *ref = xcalloc(1, sizeof *ref);
	ref->a = r->anchor;
	ref->a->refs++;
	ref->id = t->id;
	ref->state = t->want;
	char err[ERR_LEN];
	t->inflight = true;
	r->reports++;
	if (r->host.submit(r->host.data, CMD_TASK_BATCH, w.sb.data, w.sb.size, reported, ref, err)) {
		t->inflight = false;
		anchor_put(ref->a);
		free(ref);
	}
	mpw_free(&w);
}

/* What the image says the task does: -1 cannot start, MS runs that long, 0 for good. */
static int64_t behaviour(const msgpack_object *o)
{
	const msgpack_object *spec = mp_get(o, "spec");
	char image[128] = "";
	if (spec && spec->type == MSGPACK_OBJECT_MAP)
		mp_get_strbuf(spec, "image", image, sizeof image);
	if (!strcmp(image, "sim/reject"))
		return -1;
	if (!strncmp(image, "sim/exit:", 9))
		return strtoll(image + 9, NULL, 10);
	return 0;
}

static void begin(struct fakert *r, struct ftask *t)
{
	r->started++;
	if (r->host.started)
		r->host.started(r->host.data, t);
	if (t->run_ms < 0) {
		t->st = FT_ENDED;
		t->want = "rejected";
		r->rejected++;
		log_info(r->host.name, r->host.clock, "fake runtime: task %llu (%s.%llu) cannot start", (unsigned long long)t->id,
			 t->service, (unsigned long long)t->slot);
	} else {
		t->st = FT_STARTING;
		t->ready_at = clock_now(r->host.clock) + r->host.delay(r->host.data, r->start_min_ms, r->start_max_ms);
		t->want = "starting";
	}
	report(r, t);
}

static struct ftask *add(struct fakert *r, const msgpack_object *o, uint64_t id, bool run, int stored)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->t = xrealloc(r->t, r->cap * sizeof *r->t);
	}
	struct ftask *t = &r->t[r->n++];
	memset(t, 0, sizeof *t);
	t->id = id;
	t->stored = stored;
	mp_get_u64(o, "slot", &t->slot);
	mp_get_u64(o, "generation", &t->generation);
	mp_get_strbuf(o, "service", t->service, sizeof t->service);
	t->run_ms = behaviour(o);
	if (!run) {
		t->st = FT_STOPPED;
		return t;
	}
	/* as the real agent (agent/tasks.c): at once, the leader waited out its start_after */
	begin(r, t);
	return t;
}

/* One task of a document (whole or changes). */
static void assign_one(struct fakert *r, const msgpack_object *o)
{
	uint64_t id = 0;
	char desired[16] = "", state[16] = "";
	if (mp_get_u64(o, "id", &id) || mp_get_strbuf(o, "desired", desired, sizeof desired) ||
	    mp_get_strbuf(o, "state", state, sizeof state))
		return;
	struct ftask *t = find(r, id);
	int st = lifecycle_parse(&lifecycle_task, state, strlen(state));
	/* as of when the leader last sent it: documents carry what the agent acts on, not
	 * every move of the state (node/feed.h) */
	if (t)
		t->stored = st;
	bool terminal = st > 0 && task_state_ended((enum task_state)st);
	if (terminal) {
		/* ended in the leader's view (orphaned while this node was away, say): the
		 * container goes, nothing more to tell */
		if (t)
			forget(r, t);
		return;
	}
	if (!strcmp(desired, "shutdown")) {
		if (!t)
			t = add(r, o, id, false, st);
		else if (t->st == FT_ENDED)
			return; /* it ended by itself: that is what it reports */
		else if (t->st != FT_STOPPED) {
			t->st = FT_STOPPED;
			r->stopped++;
		}
		t->want = "shutdown";
		report(r, t);
		return;
	}
	if (!t)
		add(r, o, id, true, st);
}

void fakert_assign(struct fakert *r, const msgpack_object *doc)
{
	const msgpack_object *tasks = mp_get(doc, "tasks"), *changed = mp_get(doc, "changed"),
			     *removed = mp_get(doc, "removed");
	r->docs++;
	mp_get_u64(doc, "node_id", &r->node_id);
	if (tasks && tasks->type == MSGPACK_OBJECT_ARRAY) {
		/* the whole set: tasks it does not list are stopped and forgotten */
		for (size_t i = 0; i < r->n;) {
			bool listed = false;
			for (uint32_t k = 0; k < tasks->via.array.size && !listed; k++) {
				uint64_t id = 0;
				listed = !mp_get_u64(&tasks->via.array.ptr[k], "id", &id) && id == r->t[i].id;
			}
			if (listed)
				i++;
			else
				forget(r, &r->t[i]);
		}
		for (uint32_t k = 0; k < tasks->via.array.size; k++)
			assign_one(r, &tasks->via.array.ptr[k]);
		return;
	}
	/* the changes since the last document */
	for (uint32_t k = 0; changed && changed->type == MSGPACK_OBJECT_ARRAY && k < changed->via.array.size; k++)
		assign_one(r, &changed->via.array.ptr[k]);
	for (uint32_t k = 0; removed && removed->type == MSGPACK_OBJECT_ARRAY && k < removed->via.array.size; k++) {
		uint64_t id;
		struct ftask *t = mp_as_u64(&removed->via.array.ptr[k], &id) ? NULL : find(r, id);
		if (t)
			forget(r, t);
	}
}

void fakert_tick(struct fakert *r)
{
	uint64_t now = clock_now(r->host.clock);
	for (size_t i = 0; i < r->n; i++) {
		struct ftask *t = &r->t[i];
		if (t->st == FT_STARTING && now >= t->ready_at) {
			t->st = FT_RUNNING;
			t->want = "running";
			t->exit_at = t->run_ms > 0 ? now + (uint64_t)t->run_ms : 0;
		}
		if (t->st == FT_RUNNING && t->exit_at && now >= t->exit_at) {
			t->st = FT_ENDED;
			t->want = "failed";
			r->failed++;
			log_info(r->host.name, r->host.clock, "fake runtime: task %llu (%s.%llu) exited with status 1",
				 (unsigned long long)t->id, t->service, (unsigned long long)t->slot);
		}
		report(r, t);
	}
}

size_t fakert_running(const struct fakert *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += r->t[i].st == FT_RUNNING;
	return n;
}
