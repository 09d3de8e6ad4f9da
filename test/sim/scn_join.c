/* Join storms: many machines run orch join at once, over a lossy network (scn_lossy). */
#include "scn.h"
#include "util/mem.h"
#include <stdlib.h>

static const char web[] = "services:\n  web:\n    image: demo:1\n    deploy:\n      replicas: 24\n";

/* 59 nodes join one initialised node within 2 s while a service is deployed, over a
 * network that loses messages and resets connections (a join cut short is run again, as
 * an operator would): all end as members (5 voters, the rest standbys), ready, with the
 * replicas running. */
int scn_join_storm(uint64_t seed, struct sim_result *res, char *err)
{
	struct simcl *c = scn_new(seed, 60);
	scn_lossy(c);
	int rc = scn_init(c, err);
	if (!rc)
		rc = scn_deploy(c, web, err);
	if (!rc) {
		scn_join_all(c, 1, c->count, 0, 2000);
		simcl_run(c, 3000);
		rc = scn_joined(c, 60000, err);
	}
	return scn_finish(c, 60000, res, rc, err);
}

/* Five nodes settled with a service, then 45 join within 2 s through any of them while
 * the leader is killed 1 s into the storm (and restarted 5 s later). */
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
		rc = scn_deploy(c, web, err);
	if (!rc) {
		for (unsigned i = 5; i < c->count; i++)
			scn_join_all(c, i, i + 1, (unsigned)world_range(&c->w, 0, 4), 2000);
		scn_kill_leader(c, 1000, 5000);
		simcl_run(c, 35000);
		rc = scn_joined(c, 60000, err);
	}
	return scn_finish(c, 60000, res, rc, err);
}
