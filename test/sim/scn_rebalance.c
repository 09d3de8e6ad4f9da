/* Rebalancing (orchestrator/rebalance.h) on a simulated cluster: a node joins, a node
 * returns; the service spreads to it without ever running fewer than its replicas, a
 * pinned one stays, and once spread nothing moves again. Prints the time it took (a
 * figure, not an assertion). */
#include "scn.h"
#include <stdio.h>
#include <string.h>

static const char apps[] = "services:\n"
			   "  web:\n    image: demo:1\n    deploy:\n      replicas: 12\n      update_config: {monitor: 2s}\n"
			   "  pinned:\n    image: demo:1\n    deploy:\n      replicas: 6\n      x-orch-rebalance: false\n";

/* Running tasks of a service in the state, on node id (0: anywhere). */
static unsigned running(const struct store *s, const char *svc, uint64_t node)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		n += !strcmp(t->service, svc) && t->state == TS_RUNNING && t->desired == TD_RUNNING && (!node || t->node_id == node);
	return n;
}

static unsigned events_of(const struct store *s, const char *kind)
{
	unsigned n = 0;
	TABLE_FOREACH(&s->events, const struct event, e)
		n += !strcmp(e->kind, kind);
	return n;
}

/* Runs until web runs `want` tasks on node i, checking every 100 virtual ms that the
 * leader's state runs web's 12 and pinned's 6 replicas and pinned nothing on node i;
 * the time taken in *took. */
static int spread_to(struct simcl *c, unsigned i, unsigned want, uint64_t within_ms, uint64_t *took, char *err)
{
	uint64_t start = c->w.now, id = c->n[i].ident.id;
	for (;;) {
		simcl_run(c, 100);
		int l = simcl_leader(c);
		if (l < 0)
			return errf(err, E_FAIL, "no leader at %.1f s", (double)c->w.now / 1000.0);
		const struct store *s = simcl_store(c, (unsigned)l);
		if (running(s, "web", 0) < 12 || running(s, "pinned", 0) < 6)
			return errf(err, E_FAIL, "at %.1f s web runs %u of 12, pinned %u of 6", (double)c->w.now / 1000.0,
				    running(s, "web", 0), running(s, "pinned", 0));
		if (running(s, "pinned", id))
			return errf(err, E_FAIL, "pinned moved to %s", c->n[i].ident.name);
		if (running(s, "web", id) >= want) {
			*took = c->w.now - start;
			return 0;
		}
		if (c->w.now - start > within_ms)
			return errf(err, E_FAIL, "%s runs %u of web's tasks after %llu ms, want %u", c->n[i].ident.name,
				    running(s, "web", id), (unsigned long long)within_ms, want);
	}
}

/* No task is created or stopped for `ms`: the cluster does not oscillate. */
static int quiet(struct simcl *c, uint64_t ms, char *err)
{
	const struct store *s = simcl_store(c, (unsigned)simcl_leader(c));
	uint64_t next = s->cluster.next_id;
	unsigned moves = events_of(s, "rebalancing");
	simcl_run(c, ms);
	s = simcl_store(c, (unsigned)simcl_leader(c));
	if (s->cluster.next_id != next || events_of(s, "rebalancing") != moves)
		return errf(err, E_FAIL, "%u more moves in %llu quiet ms", events_of(s, "rebalancing") - moves, (unsigned long long)ms);
	return 0;
}

/* Three nodes run web (12) and pinned (6); a fourth joins: web spreads 3 per node. */
int scn_rebalance_join(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	char hash[65];
	uint64_t took = 0;
	struct simcl *c = scn_cluster(seed, 4, 3, &rc, err);
	if (!rc)
		rc = scn_deploy(c, apps, err);
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	if (!rc) {
		scn_join_all(c, 3, 4, 0, 0);
		rc = scn_joined(c, 20000, err);
	}
	if (!rc)
		rc = spread_to(c, 3, 3, 120000, &took, err);
	if (!rc) {
		printf("     figure: rebalance_join seed=%llu: web spread to the joined node in %.1f s (3 moves)\n",
		       (unsigned long long)seed, (double)took / 1000.0);
		rc = quiet(c, 120000, err);
	}
	return scn_finish(c, 30000, res, rc, err);
}

/* Four nodes run web (12) and pinned (6); one loses power (its tasks go to the other
 * three) and returns 10 s later: web gets its 3 back there, pinned none. */
int scn_rebalance_return(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	char hash[65];
	uint64_t took = 0;
	struct simcl *c = scn_cluster(seed, 4, 4, &rc, err);
	if (!rc)
		rc = scn_deploy(c, apps, err);
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	int v = rc ? -1 : scn_pick(c, false);
	if (!rc && v < 0)
		rc = errf(err, E_FAIL, "no node to power off");
	if (!rc) {
		scn_log(c, "power off %s", c->n[v].ident.name);
		simcl_power_off(c, (unsigned)v);
		simcl_run(c, 10000);
		rc = simcl_restart(c, (unsigned)v, err);
	}
	if (!rc)
		rc = spread_to(c, (unsigned)v, 3, 120000, &took, err);
	if (!rc) {
		printf("     figure: rebalance_return seed=%llu: web back to 3 tasks on the returned node %.1f s after its restart\n",
		       (unsigned long long)seed, (double)took / 1000.0);
		rc = quiet(c, 120000, err);
	}
	return scn_finish(c, 30000, res, rc, err);
}

/* Five nodes run web (12) and pinned (6); one loses power and returns, and the leader is
 * killed (or loses power: one seed in two) 1 s into the moves and is back 5 s later: the
 * next leader finishes from the replicated state alone. In the end web runs 2 or 3 tasks
 * on every node, no slot twice (scn_finish), pinned was never moved, and nothing moves
 * again. */
int scn_rebalance_leader_loss(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	char hash[65];
	struct simcl *c = scn_cluster(seed, 5, 5, &rc, err);
	if (!rc)
		rc = scn_deploy(c, apps, err);
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	int v = rc ? -1 : scn_pick(c, true);
	if (!rc && v < 0)
		rc = errf(err, E_FAIL, "no node to power off");
	if (!rc) {
		simcl_power_off(c, (unsigned)v);
		simcl_run(c, 10000);
		rc = simcl_restart(c, (unsigned)v, err);
	}
	if (!rc) {
		scn_kill_leader(c, 4000, 5000, world_chance(&c->w, 500));
		simcl_run(c, 60000);
		rc = check_wait_settled(c, 60000, hash, err);
	}
	const struct store *s = rc ? NULL : simcl_store(c, (unsigned)simcl_leader(c));
	for (unsigned i = 0; s && i < c->count && !rc; i++) {
		unsigned n = running(s, "web", c->n[i].ident.id);
		if (n < 2 || n > 3)
			rc = errf(err, E_FAIL, "%s runs %u of web's 12 tasks, want 2 or 3", c->n[i].ident.name, n);
	}
	if (!rc) {
		TABLE_FOREACH(&s->events, const struct event, e)
			if (!strcmp(e->service, "pinned") && !strncmp(e->kind, "rebalanc", 8))
				rc = errf(err, E_FAIL, "pinned moved: %s", e->message);
	}
	if (!rc)
		rc = quiet(c, 60000, err);
	return scn_finish(c, 30000, res, rc, err);
}
