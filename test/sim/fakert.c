#include "fakert.h"
#include "util/mem.h"
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
	mpw_ku64(&w, "at", r->host.wall(r->host.data));
	mpw_key(&w, "update");
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", t->id);
	mpw_kstr(&w, "state", t->want);
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
	if (!run) {
		t->st = FT_STOPPED;
		return t;
	}
	t->st = FT_STARTING;
	t->ready_at = r->host.now(r->host.data) + r->host.delay(r->host.data, r->start_min_ms, r->start_max_ms);
	t->want = "starting";
	r->started++;
	report(r, t);
	return t;
}

void fakert_assign(struct fakert *r, const msgpack_object *doc)
{
	const msgpack_object *tasks = mp_get(doc, "tasks");
	if (!tasks || tasks->type != MSGPACK_OBJECT_ARRAY)
		return;
	r->docs++;
	mp_get_u64(doc, "node_id", &r->node_id);
	/* tasks that left the document are stopped and forgotten */
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
	for (uint32_t k = 0; k < tasks->via.array.size; k++) {
		const msgpack_object *o = &tasks->via.array.ptr[k];
		uint64_t id = 0;
		char desired[16] = "", state[16] = "";
		if (mp_get_u64(o, "id", &id) || mp_get_strbuf(o, "desired", desired, sizeof desired) ||
		    mp_get_strbuf(o, "state", state, sizeof state))
			continue;
		struct ftask *t = find(r, id);
		int st = lifecycle_parse(&lifecycle_task, state, strlen(state));
		if (t)
			t->stored = st;
		bool terminal = st > 0 && task_state_ended((enum task_state)st);
		if (terminal) {
			/* ended in the leader's view (orphaned while this node was away, say): the
			 * container goes, nothing more to tell */
			if (t)
				forget(r, t);
			continue;
		}
		if (!strcmp(desired, "shutdown")) {
			if (!t)
				t = add(r, o, id, false, st);
			else if (t->st != FT_STOPPED) {
				t->st = FT_STOPPED;
				r->stopped++;
			}
			t->want = "shutdown";
			report(r, t);
			continue;
		}
		if (!t)
			add(r, o, id, true, st);
	}
}

void fakert_tick(struct fakert *r)
{
	uint64_t now = r->host.now(r->host.data);
	for (size_t i = 0; i < r->n; i++) {
		struct ftask *t = &r->t[i];
		if (t->st == FT_STARTING && now >= t->ready_at) {
			t->st = FT_RUNNING;
			t->want = "running";
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
