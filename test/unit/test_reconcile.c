/* A deterministic simulation of the leader's controllers: the state machine plus the
 * reconciler on a virtual clock, with agents simulated by task.batch reports. No I/O. */
#include "unit.h"
#include "orchestrator/reconcile.h"
#include "spec/spec.h"
#include "util/mem.h"

static uint64_t g_seq;

static void run_cmd(struct store *s, const char *type, struct mpw *body, struct apply_res *res)
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
	mpw_map(&w, 5);
	mpw_ku64(&w, "id", id);
	mpw_kstr(&w, "name", name);
	mpw_kstr(&w, "addr", "127.0.0.1:1");
	mpw_ku64(&w, "cpus_milli", 2000);
	mpw_ku64(&w, "memory", 4ull << 30);
	run_cmd(s, "node.add", &w, &res);
	mpw_free(&w);
	CHECK_EQ_INT(res.rc, 0);
}

static void deploy(struct store *s, const char *yaml)
{
	struct spec_file *f = NULL;
	char err[ERR_LEN];
	CHECK(spec_parse_buf("t.yml", yaml, strlen(yaml), &f, err) == 0);
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map(&w, 3);
	mpw_kstr(&w, "name", f->svc[0].name);
	mpw_ku64(&w, "at", 1);
	mpw_str(&w, "spec");
	svc_spec_encode(&f->svc[0], &w);
	spec_file_free(f);
	run_cmd(s, "service.put", &w, &res);
	mpw_free(&w);
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
		run_cmd(s, "task.batch", &w, &res);
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
		if (nd && !strcmp(nd->state, "down"))
			continue; /* a dead node reports nothing */
		const char *to = !strcmp(t->desired, "shutdown") ? "shutdown" : !strcmp(t->state, "running") ? NULL : "running";
		if (!to)
			continue;
		mpw_map(&u, 2);
		mpw_ku64(&u, "id", t->id);
		mpw_kstr(&u, "state", to);
		n++;
	}
	if (n) {
		mpw_map(&w, 2);
		mpw_ku64(&w, "at", now);
		mpw_str(&w, "update");
		mpw_arr(&w, n);
		mpw_raw(&w, u.sb.data, u.sb.size);
		struct apply_res res;
		run_cmd(s, "task.batch", &w, &res);
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
		if (t->node_id == node && !strcmp(t->desired, "running") && !strcmp(t->state, "running"))
			n++;
	return n;
}

static unsigned live(const struct store *s)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (!strcmp(t->desired, "running") && !strcmp(t->state, "running"))
			n++;
	return n;
}

UNIT(reconcile_spreads_heals_and_scales)
{
	struct store s;
	store_init(&s);
	uint64_t now = 1000;
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	add_node(&s, 3, "n3");
	deploy(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 6\n");
	settle(&s, &now, 5);
	CHECK_EQ_INT(live(&s), 6);
	for (uint64_t n = 1; n <= 3; n++)
		CHECK_EQ_INT(live_on(&s, n), 2);
	/* node 3 goes down: its tasks are orphaned and replaced on the others */
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map(&w, 2);
	mpw_ku64(&w, "id", 3);
	mpw_kstr(&w, "state", "down");
	run_cmd(&s, "node.update", &w, &res);
	mpw_free(&w);
	settle(&s, &now, 5);
	CHECK_EQ_INT(live_on(&s, 1) + live_on(&s, 2), 6);
	CHECK_EQ_INT(live_on(&s, 1), 3);
	/* scale down: exactly 2 stay */
	mpw_init(&w);
	mpw_map(&w, 2);
	mpw_kstr(&w, "name", "web");
	mpw_ku64(&w, "replicas", 2);
	run_cmd(&s, "service.scale", &w, &res);
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
		if (!strcmp(t->state, "running") && t->generation == 2)
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
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map(&w, 2);
	mpw_ku64(&w, "id", 2);
	mpw_kstr(&w, "availability", "drain");
	run_cmd(&s, "node.update", &w, &res);
	mpw_free(&w);
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
			if (t->generation == 2 && !strcmp(t->state, "running") && !t->ready) {
				free(t->ready);
				t->ready = xstrdup("unready");
			}
	}
	CHECK_STR(v->update_state, "paused");
	CHECK(strstr(v->update_msg, "failed") != NULL);
	CHECK(live(&s) >= 1);
	store_free(&s);
}
