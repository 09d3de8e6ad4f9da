/* Join storms: many machines run orch join at once. */
#include "scn.h"

static const char web[] = "services:\n  web:\n    image: demo:1\n    deploy:\n      replicas: 24\n";

/* 59 nodes join one initialised node within 2 s while a service is deployed: all end as
 * members (5 voters, the rest standbys), ready, with the replicas running. */
int scn_join_storm(uint64_t seed, struct sim_result *res, char *err)
{
	struct simcl *c = scn_new(seed, 60);
	int rc = scn_init(c, err);
	if (!rc)
		rc = scn_deploy(c, web, err);
	if (!rc) {
		scn_join_all(c, 1, c->count, 0, 2000);
		simcl_run(c, 3000);
	}
	return scn_finish(c, 60000, res, rc, err);
}
