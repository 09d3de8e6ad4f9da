/* What a disk alarm refuses (node/diskwatch.h): writes that make the state grow, never a
 * removal, a scale-down or what the controllers record; and when a node counts as low. */
#include "unit.h"
#include "entry.h"
#include "node/diskwatch.h"
#include "codec/mp.h"
#include <string.h>

static const char *yml = "services:\n  web:\n    image: demo:latest\n    deploy:\n      replicas: 3\n";

/* diskwatch_refuses of a body {name, replicas} (the only fields it reads) */
static bool refuses(const struct store *s, enum cmd t, const char *name, uint64_t replicas)
{
	struct mpw w;
	struct mpr r;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", name);
	mpw_ku64(&w, "replicas", replicas);
	mpw_map_end(&w);
	CHECK(!mpr_decode(&r, w.sb.data, w.sb.size));
	bool no = diskwatch_refuses(s, t, r.root);
	mpr_free(&r);
	mpw_free(&w);
	return no;
}

UNIT(diskwatch_refuses_growth_only)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	entry_put_service(&s, yml, &res);
	CHECK_EQ_INT(res.rc, 0);
	const enum cmd grow[] = {CMD_KV_SET, CMD_SERVICE_PUT, CMD_IMAGE_PUT, CMD_SECRET_PUT, CMD_USER_PUT, CMD_NODE_ADD,
				 CMD_CLUSTER_TOKENS};
	for (size_t i = 0; i < sizeof grow / sizeof grow[0]; i++)
		CHECK(refuses(&s, grow[i], "web", 0));
	const enum cmd pass[] = {CMD_SERVICE_RM, CMD_IMAGE_RM, CMD_VOLUME_RM, CMD_SECRET_RM, CMD_USER_RM, CMD_NODE_RM,
				 CMD_NODE_UPDATE, CMD_NODE_STATES, CMD_TASK_BATCH, CMD_SERVICE_UPDATE, CMD_SERVICE_PORT_ERROR};
	for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++)
		CHECK(!refuses(&s, pass[i], "web", 0));
	/* scale: down or the same passes, up is refused, and so is a service it cannot see */
	CHECK(!refuses(&s, CMD_SERVICE_SCALE, "web", 0));
	CHECK(!refuses(&s, CMD_SERVICE_SCALE, "web", 3));
	CHECK(refuses(&s, CMD_SERVICE_SCALE, "web", 4));
	CHECK(refuses(&s, CMD_SERVICE_SCALE, "nosuch", 0));
	store_free(&s);
}

UNIT(diskwatch_low_with_hysteresis)
{
	const uint64_t f = 64ull << 20;
	CHECK(!diskwatch_low(false, f, f));
	CHECK(diskwatch_low(false, f - 1, f));
	/* once low, it stays low until a quarter above the floor */
	CHECK(diskwatch_low(true, f, f));
	CHECK(diskwatch_low(true, f + f / 4 - 1, f));
	CHECK(!diskwatch_low(true, f + f / 4, f));
	CHECK(diskwatch_low(true, 0, f));
}
