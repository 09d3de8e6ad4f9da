/* The autoscaler's decisions on a simulated clock (up, down, cooldowns, min/max, unknown
 * load, CPU targets), the manual-scale range check, the capped event log, and the
 * cluster-wide load aggregation from heartbeat figures. */
#include "unit.h"
#include "metrics/cluster_stats.h"
#include "metrics/node_stats.h"
#include "metrics/ratewin.h"
#include "orchestrator/autoscale.h"
#include "spec/spec.h"
#include "state/store.h"
#include "util/mem.h"

static uint64_t seq;

static int apply_body(struct store *s, enum cmd type, struct mpw *body)
{
	size_t n;
	struct apply_res res;
	struct req_id q = {9, 1, ++seq};
	void *e = cmd_build(type, &q, body->sb.data, body->sb.size, &n);
	store_apply(s, e, n, &res);
	free(e);
	mpw_free(body);
	return res.rc;
}

/* A store holding service "web" deployed at `at` from the given deploy: YAML lines. */
static void store_with(struct store *s, const char *deploy_yaml, uint64_t at)
{
	char yaml[2048], err[ERR_LEN];
	snprintf(yaml, sizeof yaml, "services:\n  web:\n    image: demo:latest\n    deploy:\n%s", deploy_yaml);
	struct spec_file *f = NULL;
	int rc = spec_parse_buf("web.yml", yaml, strlen(yaml), &f, err);
	if (rc)
		fprintf(stderr, "  spec: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	store_init(s);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "web");
	mpw_ku64(&w, "at", at);
	mpw_key(&w, "spec");
	svc_spec_encode(&f->svc[0], &w);
	spec_file_free(f);
	mpw_map_end(&w);
	CHECK_EQ_INT(apply_body(s, CMD_SERVICE_PUT, &w), 0);
}

static const char *RPS_SPEC = "      replicas: 2\n"
			      "      x-orch-autoscale:\n"
			      "        min: 1\n"
			      "        max: 10\n"
			      "        target_rps: 100\n"
			      "        scale_up_cooldown: 30s\n"
			      "        scale_down_cooldown: 60s\n";

static struct as_load rps_load(double rps)
{
	struct as_load l = {.has_rps = true, .rps = rps};
	snprintf(l.service, sizeof l.service, "web");
	return l;
}

static uint64_t replicas(struct store *s)
{
	return store_service_by_name(s, "web")->replicas;
}

/* Decides at `now` and commits the decision like the leader does; returns its target (0: none). */
static uint64_t step(struct store *s, const struct as_load *l, uint64_t now, char *reason)
{
	struct as_decision d;
	if (!autoscale_decide(s, l, l ? 1 : 0, now, &d, 1))
		return 0;
	if (reason)
		snprintf(reason, 256, "%s", d.reason);
	struct mpw w;
	mpw_init(&w);
	autoscale_body(&d, now, &w);
	CHECK_EQ_INT(apply_body(s, CMD_SERVICE_SCALE, &w), 0);
	CHECK_EQ_INT(replicas(s), d.to);
	return d.to;
}

UNIT(autoscale_up_then_cooldown)
{
	struct store s;
	store_with(&s, RPS_SPEC, 1000);
	struct as_load l = rps_load(450); /* 225/replica on 2 */
	char why[256] = "";
	CHECK_EQ_INT(step(&s, &l, 2000, why), 5);
	CHECK(strstr(why, "requests/s per replica 225.0 > target 100") != NULL);
	/* the decision is recorded as a "scaled" event with its reason */
	CHECK_EQ_INT(s.events.n, 1);
	const struct event *e = s.events.items[0];
	CHECK_STR(e->kind, "scaled");
	CHECK_STR(e->service, "web");
	CHECK_EQ_INT(e->at, 2000);
	CHECK(strstr(e->message, "from 2 to 5") && strstr(e->message, "autoscaler"));
	CHECK_EQ_INT(autoscale_last_scaled(&s, "web"), 2000);
	/* more load inside the 30 s up cooldown: nothing; after it: up again */
	l = rps_load(900);
	CHECK_EQ_INT(step(&s, &l, 2000 + 29999, NULL), 0);
	CHECK_EQ_INT(step(&s, &l, 2000 + 30000, NULL), 9);
	/* never beyond max */
	l = rps_load(5000);
	CHECK_EQ_INT(step(&s, &l, 2000 + 60000, NULL), 10);
	CHECK_EQ_INT(step(&s, &l, 2000 + 90000, NULL), 0);
	store_free(&s);
}

UNIT(autoscale_down_waits_for_cooldown_and_min)
{
	struct store s;
	store_with(&s, RPS_SPEC, 1000);
	struct as_load hot = rps_load(450);
	CHECK_EQ_INT(step(&s, &hot, 2000, NULL), 5);
	/* 120 rps on 5 replicas: 2 would still be under target (60 each), 1 would not */
	struct as_load l = rps_load(120);
	CHECK_EQ_INT(step(&s, &l, 2000 + 59999, NULL), 0); /* down cooldown 60 s since the last scale */
	char why[256] = "";
	CHECK_EQ_INT(step(&s, &l, 2000 + 60000, why), 2);
	CHECK(strstr(why, "< target 100 with 2") != NULL);
	/* at the target exactly: neither up nor down */
	l = rps_load(200);
	CHECK_EQ_INT(step(&s, &l, 2000 + 200000, NULL), 0);
	/* no load: down to min (1), not below */
	l = rps_load(0);
	CHECK_EQ_INT(step(&s, &l, 2000 + 300000, NULL), 1);
	CHECK_EQ_INT(step(&s, &l, 2000 + 900000, NULL), 0);
	store_free(&s);
}

UNIT(autoscale_down_cooldown_counts_from_creation)
{
	struct store s;
	store_with(&s, RPS_SPEC, 1000);
	struct as_load l = rps_load(0);
	CHECK_EQ_INT(step(&s, &l, 1000 + 59999, NULL), 0);
	CHECK_EQ_INT(step(&s, &l, 1000 + 60000, NULL), 1);
	store_free(&s);
}

UNIT(autoscale_bounds_apply_without_cooldown)
{
	struct store s;
	store_with(&s, "      replicas: 1\n      x-orch-autoscale:\n        min: 3\n        max: 4\n        target_rps: 10\n", 1000);
	/* below min right after deploy, no load known at all: raised at once */
	char why[256] = "";
	CHECK_EQ_INT(step(&s, NULL, 1001, why), 3);
	CHECK(strstr(why, "outside the autoscaling range [3, 4]") != NULL);
	store_free(&s);
	store_with(&s, "      replicas: 9\n      x-orch-autoscale:\n        min: 3\n        max: 4\n        target_rps: 10\n", 1000);
	CHECK_EQ_INT(step(&s, NULL, 1001, NULL), 4);
	store_free(&s);
}

UNIT(autoscale_unknown_load_changes_nothing)
{
	struct store s;
	store_with(&s, RPS_SPEC, 1000);
	struct as_load l = {.has_rps = false};
	snprintf(l.service, sizeof l.service, "web");
	CHECK_EQ_INT(step(&s, &l, 10000000, NULL), 0);
	CHECK_EQ_INT(step(&s, NULL, 10000000, NULL), 0);
	/* load of another service does not count */
	struct as_load other = rps_load(100000);
	snprintf(other.service, sizeof other.service, "api");
	CHECK_EQ_INT(step(&s, &other, 10000000, NULL), 0);
	CHECK_EQ_INT(replicas(&s), 2);
	store_free(&s);
}

UNIT(autoscale_service_without_autoscale_untouched)
{
	struct store s;
	store_with(&s, "      replicas: 2\n", 1000);
	struct as_load l = rps_load(100000);
	CHECK_EQ_INT(step(&s, &l, 10000000, NULL), 0);
	store_free(&s);
}

static const char *CPU_SPEC = "      replicas: 2\n"
			      "      resources:\n        reservations:\n          cpus: '0.5'\n"
			      "      x-orch-autoscale:\n"
			      "        max: 6\n"
			      "        target_cpu: 50\n"
			      "        target_rps: 1000\n"
			      "        scale_up_cooldown: 0s\n"
			      "        scale_down_cooldown: 0s\n";

UNIT(autoscale_cpu_target_vs_reservation)
{
	struct store s;
	store_with(&s, CPU_SPEC, 1000);
	/* 2 tasks using 600 millicores together = 120 % of one 500m reservation in total,
	 * 60 % per replica > 50 %: up to ceil(120 / 50) = 3 */
	struct as_load l = {.has_cpu = true, .cpu_milli = 600, .cpu_tasks = 2, .has_rps = true, .rps = 10};
	snprintf(l.service, sizeof l.service, "web");
	char why[256] = "";
	CHECK_EQ_INT(step(&s, &l, 5000, why), 3);
	CHECK(strstr(why, "CPU % per replica 60.0 > target 50") != NULL);
	/* rps far below its target but CPU at 40 % per replica (of 3): scaling down to 2 would
	 * make it 60 %, so no scale-down (every target must still be met) */
	l.cpu_milli = 600;
	l.cpu_tasks = 3;
	CHECK_EQ_INT(step(&s, &l, 6000, NULL), 0);
	/* both low: down */
	l.cpu_milli = 100;
	CHECK_EQ_INT(step(&s, &l, 7000, NULL), 1);
	store_free(&s);
}

UNIT(autoscale_manual_scale_range)
{
	struct store s;
	store_with(&s, RPS_SPEC, 1000);
	char err[ERR_LEN] = "";
	const struct service *v = store_service_by_name(&s, "web");
	CHECK_EQ_INT(autoscale_check_manual(v, 11, err), E_INVAL);
	CHECK(strstr(err, "min 1") && strstr(err, "max 10"));
	CHECK_EQ_INT(autoscale_check_manual(v, 0, err), E_INVAL);
	CHECK_EQ_INT(autoscale_check_manual(v, 10, err), 0);
	CHECK_EQ_INT(autoscale_check_manual(v, 1, err), 0);
	store_free(&s);
	store_with(&s, "      replicas: 2\n", 1000);
	CHECK_EQ_INT(autoscale_check_manual(store_service_by_name(&s, "web"), 500, err), 0);
	store_free(&s);
}

/* ---- events ---------------------------------------------------------------------------------- */

static int kv_with_events(struct store *s, const char *value, unsigned nev, uint64_t at)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "key", "k");
	mpw_kstr(&w, "value", value);
	mpw_ku64(&w, "at", at);
	mpw_key(&w, "events");
	mpw_arr(&w, nev + 2);
	for (unsigned i = 0; i < nev; i++) {
		char m[32];
		snprintf(m, sizeof m, "event %u", i);
		mpw_map_begin(&w);
		mpw_kstr(&w, "kind", "scaled");
		mpw_kstr(&w, "service", "web");
		mpw_kstr(&w, "message", m);
		mpw_map_end(&w);
	}
	mpw_map_begin(&w); /* invalid entries are skipped: no message */
	mpw_kstr(&w, "kind", "scaled");
	mpw_map_end(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "kind", "Bad Kind");
	mpw_kstr(&w, "message", "x");
	mpw_map_end(&w);
	mpw_map_end(&w);
	return apply_body(s, CMD_KV_SET, &w);
}

UNIT(events_capped_oldest_dropped)
{
	struct store s;
	store_init(&s);
	CHECK_EQ_INT(kv_with_events(&s, "a", 600, 10), 0);
	CHECK_EQ_INT(s.events.n, 600);
	CHECK_EQ_INT(kv_with_events(&s, "b", 405, 20), 0);
	CHECK_EQ_INT(s.events.n, EVENTS_MAX);
	const struct event *first = s.events.items[0], *last = s.events.items[s.events.n - 1];
	CHECK_EQ_INT(first->id, 6);
	CHECK_EQ_INT(last->id, 1005);
	CHECK_STR(last->message, "event 404");
	CHECK_EQ_INT(last->at, 20);
	for (size_t i = 1; i < s.events.n; i++)
		CHECK(((const struct event *)s.events.items[i])->id > ((const struct event *)s.events.items[i - 1])->id);
	/* a snapshot keeps them and restores the same state */
	struct mpw w;
	mpw_init(&w);
	store_snapshot(&s, &w);
	struct store b;
	store_init(&b);
	char err[ERR_LEN], ha[65], hb[65];
	CHECK_EQ_INT(store_restore(&b, w.sb.data, w.sb.size, err), 0);
	mpw_free(&w);
	store_hash(&s, ha);
	store_hash(&b, hb);
	CHECK_STR(ha, hb);
	CHECK_EQ_INT(b.events.n, EVENTS_MAX);
	store_free(&s);
	store_free(&b);
}

UNIT(events_not_recorded_for_rejected_command)
{
	struct store s;
	store_with(&s, RPS_SPEC, 1000);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "web");
	mpw_ku64(&w, "replicas", 2); /* unchanged: E_EXISTS */
	mpw_key(&w, "events");
	mpw_arr(&w, 1);
	autoscale_event(&w, "web", 2, 2, "orch scale");
	mpw_map_end(&w);
	CHECK(apply_body(&s, CMD_SERVICE_SCALE, &w) != 0);
	CHECK_EQ_INT(s.events.n, 0);
	store_free(&s);
}

/* ---- rates and aggregation -------------------------------------------------------------------- */

UNIT(metrics_ratewin_rates)
{
	struct ratewin w;
	ratewin_init(&w);
	double r = -1;
	struct ratewin_kv kv = {"s:web", 100};
	ratewin_push(&w, 1000, &kv, 1);
	CHECK(!ratewin_rate(&w, "s:web", &r));
	for (uint64_t i = 1; i <= 20; i++) {
		kv.v = 100 + 50 * i; /* 50 per second */
		ratewin_push(&w, 1000 + 1000 * i, &kv, 1);
	}
	CHECK(ratewin_rate(&w, "s:web", &r));
	CHECK(r > 49.99 && r < 50.01);
	CHECK(!ratewin_rate(&w, "s:api", &r));
	/* a reset counter counts from zero */
	kv.v = 10;
	ratewin_push(&w, 22000, &kv, 1);
	CHECK(ratewin_rate(&w, "s:web", &r));
	CHECK(r >= 0 && r < 2);
	ratewin_free(&w);
}

static void put_task(struct store *s, uint64_t node, enum task_state state)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "at", 5);
	mpw_key(&w, "create");
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_ku64(&w, "service_id", store_service_by_name(s, "web")->id);
	mpw_ku64(&w, "slot", 1);
	mpw_map_end(&w);
	mpw_map_end(&w);
	CHECK_EQ_INT(apply_body(s, CMD_TASK_BATCH, &w), 0);
	struct task *t = NULL;
	TABLE_FOREACH(&s->tasks, struct task, x)
		t = x;
	t->node_id = node;
	t->state = state;
}

UNIT(metrics_cluster_loads_from_heartbeats)
{
	struct store s;
	struct cstats cs = {0};
	store_with(&s, CPU_SPEC, 1000);
	put_task(&s, 11, TS_RUNNING);
	put_task(&s, 12, TS_RUNNING);
	put_task(&s, 12, TS_STARTING);
	uint64_t t1 = ((struct task *)s.tasks.items[0])->id, t2 = ((struct task *)s.tasks.items[1])->id,
		 t3 = ((struct task *)s.tasks.items[2])->id;
	/* node 11 and 12 report over the heartbeat encoding */
	for (int node = 11; node <= 12; node++) {
		struct node_stats ns = {0};
		struct svc_stat sv = {.has_rate = true, .rps = node == 11 ? 30 : 12.5};
		snprintf(sv.t.service, sizeof sv.t.service, "web");
		sv.t.requests = 1000;
		struct task_stat ts[2] = {{.task_id = node == 11 ? t1 : t2, .has_rate = true, .cpu_milli = 200},
					  {.task_id = t3, .has_rate = true, .cpu_milli = 999}};
		ns.svc = &sv;
		ns.nsvc = 1;
		ns.tasks = ts;
		ns.ntasks = node == 11 ? 1 : 2; /* t3 is not running: ignored */
		struct mpw w;
		mpw_init(&w);
		node_stats_encode(&ns, &w);
		struct mpr r;
		CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
		char err[ERR_LEN];
		CHECK_EQ_INT(cstats_put_msg(&cs, (uint64_t)node, r.root, 50000, err), 0);
		mpr_free(&r);
		mpw_free(&w);
	}
	struct as_load *l = NULL;
	size_t n = cstats_loads(&cs, &s, 51000, &l);
	CHECK_EQ_INT(n, 1);
	CHECK_STR(l[0].service, "web");
	CHECK(l[0].has_rps && l[0].rps > 42.49 && l[0].rps < 42.51);
	CHECK(l[0].has_cpu && l[0].cpu_tasks == 2 && l[0].cpu_milli > 399.9 && l[0].cpu_milli < 400.1);
	free(l);
	/* stale figures count as unknown */
	CHECK_EQ_INT(cstats_loads(&cs, &s, 50000 + CSTATS_FRESH_MS + 1, &l), 0);
	free(l);
	/* malformed stats are refused */
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "svc", "nope");
	mpw_map_end(&w);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	char err[ERR_LEN];
	CHECK(cstats_put_msg(&cs, 13, r.root, 50000, err) != 0);
	mpr_free(&r);
	mpw_free(&w);
	cstats_free(&cs);
	store_free(&s);
}
