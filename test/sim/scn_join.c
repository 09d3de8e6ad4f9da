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

struct kill_at {
	struct simcl *c;
	bool leader;
};

/* The leader of the moment dies (its process killed), comes back 5 s later. */
static void restart_fire(struct world *w, void *arg);

struct restart_at {
	struct simcl *c;
	unsigned i;
};

static void kill_fire(struct world *w, void *arg)
{
	struct kill_at *k = arg;
	int l = simcl_leader(k->c);
	if (l >= 0) {
		scn_log(k->c, "kill the leader %s", k->c->n[l].ident.name);
		simcl_kill(k->c, (unsigned)l);
		struct restart_at *r = xmalloc(sizeof *r);
		*r = (struct restart_at){k->c, (unsigned)l};
		world_at(w, 5000, restart_fire, r, free, NULL);
	}
	free(k);
}

static void restart_fire(struct world *w, void *arg)
{
	struct restart_at *r = arg;
	char err[ERR_LEN];
	(void)w;
	scn_log(r->c, "restart %s", r->c->n[r->i].ident.name);
	simcl_restart(r->c, r->i, err);
	free(r);
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
		struct kill_at *k = xmalloc(sizeof *k);
		*k = (struct kill_at){c, true};
		world_at(&c->w, 1000, kill_fire, k, free, NULL);
		simcl_run(c, 35000);
		rc = scn_joined(c, 60000, err);
	}
	return scn_finish(c, 60000, res, rc, err);
}
