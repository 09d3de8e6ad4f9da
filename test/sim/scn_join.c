/* Join storms: many machines run orch join at once, over a lossy network (scn_lossy). */
#include "scn.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>

static const char web[] = "services:\n  web:\n    image: demo:1\n    deploy:\n      replicas: 24\n";

/* count-1 nodes join one initialised node within spread_ms while a service of `replicas`
 * is deployed, over a network that loses messages and resets connections (a join cut
 * short is run again, as an operator would): all end as members (5 voters, the rest
 * standbys), ready, with the replicas running. */
static int storm(uint64_t seed, unsigned count, uint64_t spread_ms, unsigned replicas, struct sim_result *res, char *err)
{
	char yaml[128];
	snprintf(yaml, sizeof yaml, "services:\n  web:\n    image: demo:1\n    deploy:\n      replicas: %u\n", replicas);
	struct simcl *c = scn_new(seed, count);
	scn_lossy(c);
	int rc = scn_init(c, err);
	if (!rc)
		rc = scn_rebalance_moves(c, 0, err);
	if (!rc)
		rc = scn_deploy(c, yaml, err);
	if (!rc) {
		scn_join_all(c, 1, c->count, 0, spread_ms);
		simcl_run(c, spread_ms + 1000);
		rc = scn_joined(c, 60000, err);
	}
	return scn_finish(c, 60000, res, rc, err);
}

/* 59 nodes within 2 s. */
int scn_join_storm(uint64_t seed, struct sim_result *res, char *err)
{
	return storm(seed, 60, 2000, 24, res, err);
}

/* 199 nodes within 5 s. */
int scn_join_storm_200(uint64_t seed, struct sim_result *res, char *err)
{
	return storm(seed, 200, 5000, 40, res, err);
}

/* Five nodes settled with a service, then 45 join within 2 s through any of them while
 * the leader is killed (or its machine loses power: one seed in two) 1 s into the storm,
 * and started again 5 s later. */
int scn_leader_loss_join(uint64_t seed, struct sim_result *res, char *err)
{
	struct simcl *c = scn_new(seed, 50);
	scn_lossy(c);
	char hash[65];
	int rc = scn_init(c, err);
	if (!rc) {
		scn_join_all(c, 1, 5, 0, 500);
		rc = scn_joined(c, 30000, err);
	}
	if (!rc) {
		rc = check_wait_settled(c, 20000, hash, err);
	}
	if (!rc)
		rc = scn_rebalance_moves(c, 0, err);
	if (!rc)
		rc = scn_deploy(c, web, err);
	if (!rc) {
		for (unsigned i = 5; i < c->count; i++)
			scn_join_all(c, i, i + 1, (unsigned)world_range(&c->w, 0, 4), 2000);
		scn_kill_leader(c, 1000, 5000, world_chance(&c->w, 500));
		simcl_run(c, 35000);
		rc = scn_joined(c, 60000, err);
	}
	return scn_finish(c, 60000, res, rc, err);
}
