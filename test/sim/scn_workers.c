/* Worker-only nodes (issue 11): they run tasks and are never raft voters or standbys. */
#include "scn.h"
#include <stdio.h>

static const char web[] = "services:\n  web:\n    image: demo:1\n    deploy:\n      replicas: 12\n";

/* Every running node's view of the configuration says each worker is a spare (or not a
 * member yet), and no worker holds a raft entry; checked every 100 virtual ms for ms. */
static int workers_stay_spares(struct simcl *c, uint64_t ms, char *err)
{
	for (uint64_t t = 0; t < ms; t += 100) {
		simcl_run(c, 100);
		for (unsigned i = 0; i < c->count; i++) {
			struct consensus *k = simcl_cons(c, i);
			if (!k)
				continue;
			for (unsigned j = 0; j < c->count; j++) {
				if (!c->n[j].worker)
					continue;
				enum cons_role r = cons_role_of(k, c->n[j].ident.id);
				if (r == ROLE_VOTER || r == ROLE_STANDBY)
					return errf(err, E_FAIL, "at %.1f s %s sees worker %s as a %s", (double)c->w.now / 1000.0, c->n[i].ident.name,
						    c->n[j].ident.name, cons_role_name(r));
			}
			if (c->n[i].worker && cons_last_index(k))
				return errf(err, E_FAIL, "worker %s holds raft entries (last index %llu)", c->n[i].ident.name,
					    (unsigned long long)cons_last_index(k));
		}
	}
	return 0;
}

/* Node i is recorded ready by the leader of the moment within ms (it heartbeats to it). */
static int ready_again(struct simcl *c, unsigned i, uint64_t ms, char *err)
{
	for (uint64_t t = 0; t < ms; t += 100) {
		simcl_run(c, 100);
		int l = simcl_leader(c);
		const struct node *rec = l >= 0 ? table_get_u64(&simcl_store(c, (unsigned)l)->nodes, c->n[i].ident.id) : NULL;
		if (rec && rec->state == NS_READY)
			return 0;
	}
	return errf(err, E_FAIL, "%s not ready again within %llu ms", c->n[i].ident.name, (unsigned long long)ms);
}

/* Three managers and three workers over a lossy network: the voters are the managers;
 * a manager's machine loses power for 10 s (the voter set stays one short: nobody may
 * fill it) and comes back; then the leader is killed (or its machine loses power) and
 * is back 8 s later. The workers stay spares throughout, hold no raft entry and no
 * state, and run their share of the service. Last, a worker and the node that accepted
 * every join lose power; the worker, started again while that node is still down, finds
 * the leader from the voters it kept (its raft and store name nobody). */
int scn_workers(uint64_t seed, struct sim_result *res, char *err)
{
	struct simcl *c = scn_new(seed, 6);
	scn_lossy(c);
	for (unsigned i = 3; i < 6; i++)
		c->n[i].worker = true;
	char hash[65];
	int rc = scn_init(c, err);
	if (!rc) {
		scn_join_all(c, 1, 6, 0, 1000);
		rc = scn_joined(c, 30000, err);
	}
	if (!rc)
		rc = scn_rebalance_moves(c, 0, err);
	if (!rc)
		rc = scn_deploy(c, web, err);
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	int v = rc ? -1 : scn_pick(c, true);
	if (!rc && v < 0)
		rc = errf(err, E_FAIL, "no voter to power off");
	if (!rc) {
		scn_log(c, "power off manager %s", c->n[v].ident.name);
		simcl_power_off(c, (unsigned)v);
		rc = workers_stay_spares(c, 10000, err);
	}
	if (!rc)
		rc = simcl_restart(c, (unsigned)v, err);
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	if (!rc) {
		scn_kill_leader(c, 0, 8000, world_chance(&c->w, 500));
		rc = workers_stay_spares(c, 15000, err);
	}
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	if (!rc) {
		scn_log(c, "power off worker %s and the seed %s", c->n[3].ident.name, c->n[0].ident.name);
		simcl_power_off(c, 3);
		simcl_power_off(c, 0);
		rc = workers_stay_spares(c, 4000, err); /* past the failure timeout: the worker is down */
	}
	if (!rc)
		rc = simcl_restart(c, 3, err);
	if (!rc)
		rc = ready_again(c, 3, 15000, err);
	if (!rc)
		rc = simcl_restart(c, 0, err);
	return scn_finish(c, 60000, res, rc, err);
}
