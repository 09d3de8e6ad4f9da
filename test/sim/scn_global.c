/* A global service follows the cluster: one task on every node, on joiners too, none on a
 * drained node. */
#include "scn.h"
#include <stdio.h>
#include <string.h>

static const char agent_global[] = "services:\n  agent:\n    image: demo:1\n    deploy:\n      mode: global\n";

/* Every node that is up runs exactly `want(i)` tasks in its fake runtime. */
static int each_runs(struct simcl *c, int drained, char *err)
{
	for (unsigned i = 0; i < c->count; i++) {
		if (!simcl_up(c, i))
			continue;
		size_t runs = simcl_runtime(c, i) ? fakert_running(simcl_runtime(c, i)) : 0, want = (int)i == drained ? 0 : 1;
		if (runs != want)
			return errf(err, E_FAIL, "%s runs %zu tasks of the global service, want %zu", c->n[i].ident.name, runs, want);
	}
	return 0;
}

/* Runs until settled (check.h, which counts a global service's tasks against the nodes
 * up and not drained) and every node runs what it should, for at most within_ms. */
static int wait_each(struct simcl *c, int drained, uint64_t within_ms, char *err)
{
	char hash[65];
	uint64_t deadline = c->w.now + within_ms;
	for (;;) {
		int rc = check_settled(c, hash, err);
		if (!rc)
			rc = each_runs(c, drained, err);
		if (!rc || c->w.now >= deadline)
			return rc;
		simcl_run(c, 100);
	}
}

/* Six nodes run a global service; four more join at once through any of them; a standby
 * is drained. */
int scn_global_follows(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	struct simcl *c = scn_cluster(seed, 10, 6, &rc, err);
	if (!rc)
		rc = scn_deploy(c, agent_global, err);
	if (!rc)
		rc = wait_each(c, -1, 30000, err);
	if (!rc) {
		for (unsigned i = 6; i < c->count; i++)
			scn_join_all(c, i, i + 1, (unsigned)world_range(&c->w, 0, 5), 2000);
		rc = scn_joined(c, 60000, err);
	}
	if (!rc)
		rc = wait_each(c, -1, 30000, err);
	int d = rc ? -1 : scn_pick(c, false);
	if (!rc && d < 0)
		rc = errf(err, E_FAIL, "no standby to drain");
	if (!rc) {
		scn_log(c, "drain %s", c->n[d].ident.name);
		rc = scn_availability(c, c->n[d].ident.id, "drain", err);
	}
	if (!rc)
		rc = wait_each(c, d, 30000, err);
	return scn_finish(c, 30000, res, rc, err);
}
