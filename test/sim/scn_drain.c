/* A node drained while a join storm runs. */
#include "scn.h"
#include "util/mem.h"
#include <stdio.h>
#include <string.h>

static const char web16[] = "services:\n  web:\n    image: demo:1\n    deploy:\n      replicas: 16\n";

/* Live tasks the leader's state places on node id. */
static unsigned live_on(const struct store *s, uint64_t id)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		n += t->node_id == id && !task_terminal(t) && t->desired == TD_RUNNING;
	return n;
}

/* Eight nodes run a service; 40 more join within 3 s through any of them while a standby
 * running tasks is drained: its tasks move to other nodes, it runs none and stays a ready
 * member, and the cluster settles. */
int scn_drain_join_storm(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	char hash[65];
	struct simcl *c = scn_cluster(seed, 48, 8, &rc, err);
	if (!rc)
		rc = scn_deploy(c, web16, err);
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	int d = -1;
	for (unsigned k = 0; k < 8 && !rc && d < 0; k++) {
		int i = scn_pick(c, false);
		if (i >= 0 && fakert_running(simcl_runtime(c, (unsigned)i)))
			d = i;
	}
	if (!rc && d < 0)
		rc = errf(err, E_FAIL, "no standby runs a task");
	if (!rc) {
		for (unsigned i = 8; i < c->count; i++)
			scn_join_all(c, i, i + 1, (unsigned)world_range(&c->w, 0, 7), 3000);
		simcl_run(c, 1000);
		scn_log(c, "drain %s (it runs %zu tasks)", c->n[d].ident.name, fakert_running(simcl_runtime(c, (unsigned)d)));
		rc = scn_availability(c, c->n[d].ident.id, "drain", err);
	}
	if (!rc)
		rc = scn_joined(c, 60000, err);
	uint64_t deadline = c->w.now + 60000;
	while (!rc) {
		rc = check_settled(c, hash, err);
		const struct store *s = !rc ? simcl_store(c, (unsigned)simcl_leader(c)) : NULL;
		const struct node *rec = s ? table_get_u64(&s->nodes, c->n[d].ident.id) : NULL;
		size_t runs = simcl_runtime(c, (unsigned)d) ? fakert_running(simcl_runtime(c, (unsigned)d)) : 0;
		if (!rc && (!rec || rec->availability != NA_DRAIN))
			rc = errf(err, E_FAIL, "%s is not recorded drained", c->n[d].ident.name);
		else if (!rc && (runs || live_on(s, c->n[d].ident.id)))
			rc = errf(err, E_FAIL, "drained %s still runs %zu tasks (%u in the state)", c->n[d].ident.name, runs,
				  live_on(s, c->n[d].ident.id));
		if (!rc || c->w.now >= deadline)
			break;
		rc = 0;
		simcl_run(c, 100);
	}
	return scn_finish(c, 30000, res, rc, err);
}
