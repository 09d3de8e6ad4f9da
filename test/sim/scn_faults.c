/* Faults in a running cluster: a partitioned minority, a voter lost, nodes down, a rolling
 * update under node loss, clocks set back; all over a lossy network (scn_lossy). */
#include "scn.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

static const char web[] = "services:\n  web:\n    image: demo:1\n    deploy:\n      replicas: 12\n";

/* count nodes settled with the web service running. */
static struct simcl *settled_cluster(uint64_t seed, unsigned count, int *rc, char *err)
{
	struct simcl *c = scn_cluster(seed, count, count, rc, err);
	char hash[65];
	if (!*rc)
		*rc = scn_deploy(c, web, err);
	if (!*rc)
		*rc = check_wait_settled(c, 30000, hash, err);
	return c;
}

/* Seven nodes; the leader, another voter and a standby are cut off for 10 s: the
 * majority elects a leader, marks the three down and reschedules their tasks; after the
 * heal they come back ready, their old tasks stopped. */
int scn_partition_minority(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	struct simcl *c = settled_cluster(seed, 7, &rc, err);
	if (!rc) {
		int l = simcl_leader(c), v = -1, s = -1;
		struct consensus *lc = simcl_cons(c, (unsigned)l);
		for (unsigned i = 0; i < c->count; i++) {
			enum cons_role r = cons_role_of(lc, c->n[i].ident.id);
			if ((int)i != l && r == ROLE_VOTER && v < 0)
				v = (int)i;
			if (r == ROLE_STANDBY && s < 0)
				s = (int)i;
		}
		int groups[SIMCL_MAX] = {0};
		groups[l] = 1;
		if (v >= 0)
			groups[v] = 1;
		if (s >= 0)
			groups[s] = 1;
		simcl_partition(c, groups);
		simcl_run(c, 10000);
		int nl = simcl_leader(c);
		if (nl < 0 || groups[nl])
			rc = errf(err, E_FAIL, "no leader in the majority 10 s into the partition");
		simcl_heal(c);
	}
	return scn_finish(c, 30000, res, rc, err);
}

/* Nine nodes; for a minute the network flaps: every few seconds (1-5 s) it splits — two
 * random groups, or one node cut off (the leader, half the time) — and heals for a moment
 * (0.5-3 s). Connections across a cut stall; messages that crossed it arrive after the
 * heal. After the last heal the cluster settles: one leader, every node back and ready. */
int scn_flapping_partition(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	struct simcl *c = settled_cluster(seed, 9, &rc, err);
	uint64_t end = c->w.now + 60000;
	unsigned cuts = 0;
	while (!rc && c->w.now < end) {
		int groups[SIMCL_MAX] = {0};
		int l = simcl_leader(c);
		if (world_chance(&c->w, 300)) {
			int alone = l >= 0 && world_chance(&c->w, 500) ? l : (int)world_range(&c->w, 0, c->count - 1);
			groups[alone] = 1;
			scn_log(c, "cut %s off%s", c->n[alone].ident.name, alone == l ? " (the leader)" : "");
		} else {
			unsigned ones = 0;
			for (unsigned i = 0; i < c->count; i++)
				ones += (unsigned)(groups[i] = (int)world_range(&c->w, 0, 1));
			if (!ones || ones == c->count)
				groups[world_range(&c->w, 0, c->count - 1)] ^= 1;
			scn_log(c, "split the network in two");
		}
		simcl_partition(c, groups);
		cuts++;
		simcl_run(c, world_range(&c->w, 1000, 5000));
		simcl_heal(c);
		simcl_run(c, world_range(&c->w, 500, 3000));
	}
	scn_log(c, "healed for good after %u cuts", cuts);
	return scn_finish(c, 60000, res, rc, err);
}

/* Eight nodes (5 voters, 3 standbys); the machine of a voter that does not lead loses
 * power for good: a standby is promoted, the dead voter made a spare, its tasks
 * rescheduled. */
int scn_voter_lost(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	struct simcl *c = settled_cluster(seed, 8, &rc, err);
	if (!rc) {
		int v = scn_pick(c, true);
		if (v < 0)
			rc = errf(err, E_FAIL, "no voter to kill");
		else
			simcl_power_off(c, (unsigned)v);
	}
	return scn_finish(c, 30000, res, rc, err);
}

/* Ten nodes; two that are not voters die (one machine loses power, the other's process
 * is killed), then the first comes back: their tasks run elsewhere, the one back is ready
 * and takes work again. */
int scn_node_down(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	struct simcl *c = settled_cluster(seed, 10, &rc, err);
	char hash[65];
	int a = -1, b = -1;
	if (!rc) {
		a = scn_pick(c, false);
		if (a >= 0)
			simcl_power_off(c, (unsigned)a);
		b = scn_pick(c, false);
		if (a < 0 || b < 0)
			rc = errf(err, E_FAIL, "no standby to kill");
		else
			simcl_kill(c, (unsigned)b);
	}
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	if (!rc)
		rc = simcl_restart(c, (unsigned)a, err);
	if (!rc)
		rc = scn_scale(c, "web", 16, err);
	return scn_finish(c, 30000, res, rc, err);
}

/* Ten nodes; a new version of the service rolls out two tasks at a time while a node
 * running some of them dies: the rollout completes, every replica on the new version. */
int scn_rolling_update(uint64_t seed, struct sim_result *res, char *err)
{
	/* with an environment: sealed in the log (secret/envseal.h) */
	static const char v2[] = "services:\n  web:\n    image: demo:2\n    environment:\n      DB_PASS: sim-secret\n"
				 "    deploy:\n      replicas: 12\n"
				 "      update_config:\n        parallelism: 2\n        monitor: 1s\n";
	int rc;
	struct simcl *c = settled_cluster(seed, 10, &rc, err);
	if (!rc)
		rc = scn_deploy(c, v2, err);
	if (!rc) {
		simcl_run(c, 1500);
		int victim = -1;
		for (unsigned k = 0; k < c->count && victim < 0; k++) {
			int i = scn_pick(c, false);
			if (i >= 0 && simcl_runtime(c, (unsigned)i) && fakert_running(simcl_runtime(c, (unsigned)i)))
				victim = i;
		}
		if (victim < 0)
			rc = errf(err, E_FAIL, "no standby runs a task");
		else
			simcl_kill(c, (unsigned)victim);
	}
	/* settled, and the rollout recorded as completed (after its monitor period) */
	uint64_t deadline = c->w.now + 60000;
	while (!rc) {
		char hash[65];
		rc = check_settled(c, hash, err);
		const struct store *s = !rc ? simcl_store(c, (unsigned)simcl_leader(c)) : NULL;
		const struct service *v = s ? store_service_by_name(s, "web") : NULL;
		if (!rc && (!v || v->generation != 2 || !v->update_state || strcmp(v->update_state, "completed")))
			rc = errf(err, E_FAIL, "the rollout did not complete: generation %llu, state %s",
				  v ? (unsigned long long)v->generation : 0ull, v && v->update_state ? v->update_state : "-");
		if (!rc || c->w.now >= deadline)
			break;
		rc = 0;
		simcl_run(c, 100);
	}
	/* the same file again changes nothing: the sealed environment is the same bytes */
	if (!rc && (rc = scn_deploy(c, v2, err)) == E_EXISTS)
		rc = 0; /* "unchanged" */
	if (!rc) {
		simcl_run(c, 500);
		int l = simcl_leader(c);
		const struct store *s = l >= 0 ? simcl_store(c, (unsigned)l) : NULL;
		const struct service *v = s ? store_service_by_name(s, "web") : NULL;
		if (!v || v->generation != 2)
			rc = errf(err, E_FAIL, "the same deploy again made generation %llu",
				  v ? (unsigned long long)v->generation : 0ull);
		else if (memmem(v->spec.data, v->spec.len, "sim-secret", 10))
			rc = errf(err, E_FAIL, "the environment is in clear in the replicated spec");
	}
	return scn_finish(c, 30000, res, rc, err);
}

static int kv_set_via(struct simcl *c, int via, const char *key, const char *value, char *err)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "key", key);
	mpw_kstr(&w, "value", value);
	mpw_map_end(&w);
	int rc = simcl_write_via(c, via, CMD_KV_SET, w.sb.data, w.sb.size, 20000, err);
	mpw_free(&w);
	return rc;
}

static int kv_expect(struct simcl *c, const char *key, const char *value, char *err)
{
	int l = simcl_leader(c);
	const struct kv *kv = l >= 0 ? table_get_str(&simcl_store(c, (unsigned)l)->kv, key) : NULL;
	if (!kv || strcmp(kv->value, value))
		return errf(err, E_FAIL, "an acknowledged write was dropped: %s is %s, want %s", key, kv ? kv->value : "unset", value);
	return 0;
}

/* Writes through a follower, which then restarts with its wall clock an hour back (and
 * again later, a day ahead then back): every acknowledged write changes the state. */
int scn_clock_back(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	struct simcl *c = settled_cluster(seed, 5, &rc, err);
	int f = -1;
	if (!rc && (f = scn_pick(c, true)) < 0)
		rc = errf(err, E_FAIL, "no follower");
	if (!rc)
		rc = kv_set_via(c, f, "mode", "one", err);
	if (!rc)
		rc = kv_expect(c, "mode", "one", err);
	static const int64_t skews[] = {-3600000, 86400000, -86400000};
	static const char *const values[] = {"two", "three", "four"};
	for (unsigned k = 0; k < 3 && !rc; k++) {
		simcl_kill(c, (unsigned)f);
		simcl_run(c, 500);
		c->n[f].wall_skew_ms = skews[k];
		rc = simcl_restart(c, (unsigned)f, err);
		if (!rc) {
			scn_log(c, "%s restarted with its clock %+lld ms off", c->n[f].ident.name, (long long)skews[k]);
			simcl_run(c, 2000);
			rc = kv_set_via(c, f, "mode", values[k], err);
		}
		if (!rc)
			rc = kv_expect(c, "mode", values[k], err);
	}
	return scn_finish(c, 30000, res, rc, err);
}
