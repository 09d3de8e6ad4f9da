/* A service's spec kept decoded next to its bytes (state/store.h service_spec()): rebuilt
 * exactly when the bytes change, moved with them on a new generation and a rollback; and
 * the leader's per-tick readers over a large converged cluster. */
#include "unit.h"
#include "entry.h"
#include "node/daemon.h"
#include "orchestrator/autoscale.h"
#include "orchestrator/reconcile.h"
#include "spec/spec.h"
#include "util/mem.h"

static const char *env_a(const struct svc_spec *sp)
{
	return labels_get(&sp->env, "A");
}

UNIT(spec_cache_follows_the_bytes)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	entry_put_service(&s, "services:\n  web:\n    image: demo\n    environment: {A: one}\n    deploy:\n      replicas: 3\n", &res);
	CHECK_EQ_INT(res.rc, 0);
	struct service *v = store_service_by_name(&s, "web");
	const struct svc_spec *g1 = service_spec(v);
	CHECK(g1 != NULL);
	CHECK_STR(g1->image, "demo");
	CHECK_STR(env_a(g1), "one");
	CHECK_EQ_INT(g1->deploy.replicas, 3);
	CHECK(service_prev_spec(v) == NULL);
	/* a command that leaves the bytes alone leaves the decoded spec alone */
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "web");
	mpw_ku64(&w, "replicas", 7);
	mpw_map_end(&w);
	entry_apply(&s, CMD_SERVICE_SCALE, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK(service_spec(v) == g1);
	/* the same spec with other replicas: same generation, new bytes, decoded anew */
	entry_put_service(&s, "services:\n  web:\n    image: demo\n    environment: {A: one}\n    deploy:\n      replicas: 5\n", &res);
	CHECK_STR(res.msg, "scaled");
	CHECK_EQ_INT(v->generation, 1);
	const struct svc_spec *g1b = service_spec(v);
	CHECK(g1b != NULL);
	CHECK_EQ_INT(g1b->deploy.replicas, 5);
	/* a new generation: the new spec decoded, the old one kept decoded as the previous */
	entry_put_service(&s, "services:\n  web:\n    image: demo:2\n    environment: {A: two}\n    deploy:\n      replicas: 5\n", &res);
	CHECK_STR(res.msg, "updated");
	CHECK_EQ_INT(v->generation, 2);
	const struct svc_spec *g2 = service_spec(v);
	CHECK_STR(g2->image, "demo:2");
	CHECK_STR(env_a(g2), "two");
	CHECK(service_prev_spec(v) == g1b);
	CHECK_STR(env_a(service_prev_spec(v)), "one");
	/* rollback: the two swap, as their bytes do */
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "web");
	mpw_kbool(&w, "rollback", true);
	mpw_map_end(&w);
	entry_apply(&s, CMD_SERVICE_UPDATE, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(v->generation, 3);
	CHECK(service_spec(v) == g1b);
	CHECK(service_prev_spec(v) == g2);
	CHECK_STR(env_a(service_spec(v)), "one");
	/* a snapshot restores with the specs decoded, the same */
	struct store r;
	entry_restore_copy(&s, &r);
	struct service *rv = store_service_by_name(&r, "web");
	CHECK(service_spec(rv) != NULL && service_spec(rv) != service_spec(v));
	CHECK(svc_spec_equal(service_spec(rv), service_spec(v)));
	CHECK(svc_spec_equal(service_prev_spec(rv), service_prev_spec(v)));
	char h1[65], h2[65];
	store_hash(&s, h1);
	store_hash(&r, h2);
	CHECK_STR(h1, h2);
	/* and a copy of the record has its own */
	struct service *dup = schema_dup(&service_schema, v);
	CHECK(service_spec(dup) && service_spec(dup) != service_spec(v));
	CHECK_STR(service_spec(dup)->image, "demo");
	schema_free(&service_schema, dup);
	free(dup);
	store_free(&r);
	store_free(&s);
}

/* ---- the leader's tick over a large converged cluster ------------------------------------ */

#define T_NODES 50
#define T_SERVICES 100
#define T_REPLICAS 100

/* T_SERVICES services of T_REPLICAS running tasks each on T_NODES nodes, as a settled
 * cluster has them: every slot filled, every task running and reported. */
static void converged(struct store *s)
{
	struct apply_res res;
	store_init(s);
	for (uint64_t i = 1; i <= T_NODES; i++) {
		struct mpw w;
		char name[16];
		snprintf(name, sizeof name, "n%llu", (unsigned long long)i);
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_ku64(&w, "id", i);
		mpw_kstr(&w, "name", name);
		mpw_kstr(&w, "addr", "127.0.0.1:1");
		mpw_ku64(&w, "cpus_milli", 64000);
		mpw_ku64(&w, "memory", 256ull << 30);
		mpw_map_end(&w);
		entry_apply(s, CMD_NODE_ADD, &w, &res);
		CHECK_EQ_INT(res.rc, 0);
	}
	struct image *im = xcalloc(1, sizeof *im);
	im->name = xstrdup("demo");
	im->digest = xstrdup("sha256:00");
	im->info.data = xmalloc(1);
	im->info.data[0] = 0x80; /* an empty map: feed_doc only copies it */
	im->info.len = 1;
	im->node_id = 1;
	table_put(&s->images, im);
	uint64_t id = 1000000;
	for (unsigned k = 0; k < T_SERVICES; k++) {
		char yaml[512];
		snprintf(yaml, sizeof yaml,
			 "services:\n  s%u:\n    image: demo\n    ports: [\"%u:80\"]\n    deploy:\n      replicas: %u\n"
			 "      resources: {reservations: {cpus: '0.01', memory: 1M}}\n",
			 k, 30000 + k, T_REPLICAS);
		entry_put_service(s, yaml, &res);
		CHECK_EQ_INT(res.rc, 0);
		const struct service *v = table_get_u64(&s->services, res.id);
		for (uint64_t slot = 1; slot <= T_REPLICAS; slot++) {
			struct task *t = xcalloc(1, sizeof *t);
			t->id = id++;
			t->service_id = v->id;
			t->service = xstrdup(v->name);
			t->slot = slot;
			t->generation = v->generation;
			t->node_id = 1 + (k * T_REPLICAS + slot) % T_NODES;
			t->desired = TD_RUNNING;
			t->state = TS_RUNNING;
			t->state_at = t->started_at = 10;
			struct endpoint ep = {0x7f000001, (uint16_t)(20000 + slot), 80, 6};
			endpoints_add(&t->endpoint, &ep);
			table_put(&s->tasks, t);
		}
	}
}

/* What the leader does on each tick with the replicated state alone (node/leader.c,
 * node/watch.c): nothing to change in a settled cluster, and every node's assignment
 * document complete. Run under callgrind to weigh a tick (see the hand-back notes). */
UNIT(tick_converged_cluster_is_quiet)
{
	struct store s;
	converged(&s);
	CHECK_EQ_INT(s.tasks.n, T_SERVICES * T_REPLICAS);
	for (int tick = 0; tick < 3; tick++) {
		struct mpw w;
		mpw_init(&w);
		CHECK(!reconcile(&s, 1000000 + (uint64_t)tick * 200, &w));
		mpw_free(&w);
		struct as_decision d[4];
		CHECK_EQ_INT(autoscale_decide(&s, NULL, 0, 1000000, d, 4), 0);
		size_t listed = 0;
		for (uint64_t n = 1; n <= T_NODES; n++) {
			mpw_init(&w);
			feed_doc(&s, n, &w);
			struct mpr r;
			CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
			const msgpack_object *tl = mp_get(r.root, "tasks");
			CHECK(tl && tl->type == MSGPACK_OBJECT_ARRAY);
			for (uint32_t i = 0; i < tl->via.array.size; i++) {
				uint64_t in = 0;
				CHECK_EQ_INT(mp_get_u64(&tl->via.array.ptr[i], "image_node", &in), 0);
				CHECK_EQ_INT(in, 1); /* the image found by the spec's name */
			}
			listed += tl->via.array.size;
			mpr_free(&r);
			mpw_free(&w);
		}
		CHECK_EQ_INT(listed, T_SERVICES * T_REPLICAS);
	}
	store_free(&s);
}
