/* Failover (raft/consensus.h: cons_peer_lost, cons_handover) on three voters over a
 * network that loses nothing, so that what is checked is the mechanism, not a lost vote.
 * Times here are virtual (the world's clock): they are properties of the protocol, the
 * same on any machine, not performance measurements.
 *   1. kill -9 of the leader: its streams end without a clean close, a survivor campaigns
 *      at once and wins in one election (term + 1), before any survivor's election timer
 *      could have run out (the earliest is an election timeout after the last heartbeat,
 *      which came at most a heartbeat before the kill).
 *   2. nodes that take a live leader for dead, again and again for 3 s (the worst case,
 *      past the transport's probe: simcl_raft_lost): when only one follower does, the
 *      leader stays and the term does not move (the early candidate's pre-vote is refused
 *      by whoever still hears the leader); when every node does, each campaigns early at
 *      most once per election timeout, and there is a leader at the end.
 *   3. the leader's machine loses power (nothing closes): nobody campaigns early; a new
 *      leader comes only from an election timeout.
 *   4. orch stop of the leader: it hands leadership over; another node leads before its
 *      process ends, in one election, with no early election anywhere. */
#include "scn.h"
#include "util/mem.h"
#include <string.h>

static bool three_voters(void *arg)
{
	struct simcl *c = arg;
	int l = simcl_leader(c);
	if (l < 0)
		return false;
	struct consensus *lc = simcl_cons(c, (unsigned)l);
	if (lc->raft->configuration_uncommitted_index) /* a role change under way */
		return false;
	for (unsigned i = 0; i < c->count; i++) {
		if (!simcl_up(c, i) || cons_applied_index(simcl_cons(c, i)) < cons_commit_index(lc))
			return false;
		for (unsigned j = 0; j < c->count; j++) /* in every node's own view */
			if (cons_role_of(simcl_cons(c, i), c->n[j].ident.id) != ROLE_VOTER)
				return false;
	}
	return true;
}

struct newleader {
	struct simcl *c;
	int old;
};

static bool new_leader(void *arg)
{
	struct newleader *x = arg;
	int l = simcl_leader(x->c);
	return l >= 0 && l != x->old;
}

/* Early elections started by the nodes up other than `skip`. */
static uint64_t early_total(struct simcl *c, int skip)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < c->count; i++)
		if (simcl_up(c, i) && (int)i != skip)
			n += simcl_cons(c, i)->early_count;
	return n;
}

/* Node l back on its data; all three voters again, caught up. */
static int back(struct simcl *c, unsigned l, char *err)
{
	int rc = simcl_restart(c, l, err);
	if (rc)
		return rc;
	if (!world_run_while_not(&c->w, c->w.now + 10000, three_voters, c))
		return errf(err, E_TIMEOUT, "%s restarted: not three caught-up voters within 10 s", c->n[l].ident.name);
	simcl_run(c, 1000);
	return 0;
}

static int kill_case(struct simcl *c, bool power, char *err)
{
	int l = simcl_leader(c);
	if (l < 0)
		return errf(err, E_FAIL, "no leader before the %s", power ? "power-off" : "kill");
	uint64_t term = cons_term(simcl_cons(c, (unsigned)l)), early = early_total(c, l), t0 = c->w.now;
	unsigned et = c->o.election_ms, hb = c->o.heartbeat_ms;
	scn_log(c, "%s the leader %s (term %llu)", power ? "power off" : "kill -9", c->n[l].ident.name, (unsigned long long)term);
	if (power)
		simcl_power_off(c, (unsigned)l);
	else
		simcl_kill(c, (unsigned)l);
	struct newleader x = {c, l};
	/* The earliest an election timeout can start an election after the kill: the timer
	 * runs at least `et` from the last contact, and a leader that ticks every `hb` sends
	 * an idle follower something at least every 2 hb. */
	uint64_t timeout_floor = t0 + et - 2 * hb;
	bool got = world_run_while_not(&c->w, power ? timeout_floor : t0 + et / 2, new_leader, &x);
	int nl = simcl_leader(c);
	if (!power && !got)
		return errf(err, E_FAIL, "kill -9 of the leader: no new leader %u ms after it (an early election would have made one)",
			    et / 2);
	if (power && got)
		return errf(err, E_FAIL, "power-off of the leader: %s leads %llu ms after it, before an election timeout could run out",
			    c->n[nl].ident.name, (unsigned long long)(c->w.now - t0));
	if (power && early_total(c, l) != early)
		return errf(err, E_FAIL, "power-off of the leader: a node campaigned early (no stream was closed)");
	if (!power && early_total(c, l) == early)
		return errf(err, E_FAIL, "kill -9 of the leader: new leader without an early election");
	if (!world_run_while_not(&c->w, t0 + 5000, new_leader, &x))
		return errf(err, E_TIMEOUT, "no new leader 5 s after the %s", power ? "power-off" : "kill");
	nl = simcl_leader(c);
	uint64_t nterm = cons_term(simcl_cons(c, (unsigned)nl));
	scn_log(c, "%s leads after %llu ms, term %llu", c->n[nl].ident.name, (unsigned long long)(c->w.now - t0),
		(unsigned long long)nterm);
	if (!power && nterm != term + 1)
		return errf(err, E_FAIL, "kill -9 of the leader: term %llu -> %llu, not one election (split votes?)",
			    (unsigned long long)term, (unsigned long long)nterm);
	return back(c, (unsigned)l, err);
}

/* Reports of a live leader's death (simcl_raft_lost) every 50 ms for 3 s. `all`: between
 * every pair of nodes (each follower in turn hears the leader is gone, the worst case);
 * else only between the leader and one follower. */
static int flap_case(struct simcl *c, bool all, char *err)
{
	int l = simcl_leader(c);
	if (l < 0)
		return errf(err, E_FAIL, "no leader before the flapping streams");
	uint64_t term = cons_term(simcl_cons(c, (unsigned)l)), early[SIMCL_MAX];
	for (unsigned i = 0; i < c->count; i++)
		early[i] = simcl_cons(c, i)->early_count;
	unsigned f[2], nf = 0;
	for (unsigned i = 0; i < c->count && nf < 2; i++)
		if ((int)i != l)
			f[nf++] = i;
	uint64_t t0 = c->w.now, span = 3000, tail = 1000;
	scn_log(c, "%s report each other dead every 50 ms for 3 s", all ? "all nodes" : "the leader and one follower");
	for (unsigned k = 0; k < span / 50; k++) {
		if (all) {
			simcl_raft_lost(c, (unsigned)l, f[k % 2]);
			simcl_raft_lost(c, f[0], f[1]);
			simcl_raft_lost(c, (unsigned)l, f[(k + 1) % 2]);
		} else
			simcl_raft_lost(c, (unsigned)l, f[0]);
		simcl_run(c, 50);
	}
	simcl_run(c, tail);
	uint64_t nterm = 0, acts = 0;
	unsigned et = c->o.election_ms;
	/* one early campaign per node per election timeout at most (consensus.c) */
	uint64_t cap = (c->w.now - t0) / et + 1;
	for (unsigned i = 0; i < c->count; i++) {
		uint64_t n = simcl_cons(c, i)->early_count - early[i];
		if (n > cap)
			return errf(err, E_FAIL, "flapping streams: %s started %llu early elections in %llu ms (at most %llu)",
				    c->n[i].ident.name, (unsigned long long)n, (unsigned long long)(c->w.now - t0), (unsigned long long)cap);
		acts += n;
		if (cons_term(simcl_cons(c, i)) > nterm)
			nterm = cons_term(simcl_cons(c, i));
	}
	scn_log(c, "%llu early campaigns, term %llu -> %llu", (unsigned long long)acts, (unsigned long long)term,
		(unsigned long long)nterm);
	if (!acts)
		return errf(err, E_FAIL, "flapping streams: nobody reacted (the reports were not taken)");
	if (simcl_leader(c) < 0)
		return errf(err, E_FAIL, "flapping streams: no leader %llu ms after the last report", (unsigned long long)tail);
	if (!all && (nterm != term || simcl_leader(c) != l))
		return errf(err, E_FAIL, "one follower's reports deposed a live leader: term %llu -> %llu", (unsigned long long)term,
			    (unsigned long long)nterm);
	return 0;
}

static int stop_case(struct simcl *c, char *err)
{
	int l = simcl_leader(c);
	if (l < 0)
		return errf(err, E_FAIL, "no leader before the stop");
	uint64_t term = cons_term(simcl_cons(c, (unsigned)l)), early = early_total(c, l), t0 = c->w.now;
	scn_log(c, "orch stop of the leader %s", c->n[l].ident.name);
	simcl_stop(c, (unsigned)l);
	while (simcl_up(c, (unsigned)l) && c->w.now < t0 + 5000)
		simcl_run(c, 1);
	if (simcl_up(c, (unsigned)l))
		return errf(err, E_TIMEOUT, "orch stop of the leader: still running 5 s later");
	int nl = simcl_leader(c);
	if (nl < 0)
		return errf(err, E_FAIL, "orch stop of the leader: its process ended with no other node leading (no handover)");
	uint64_t nterm = cons_term(simcl_cons(c, (unsigned)nl));
	scn_log(c, "%s ended after %llu ms, %s leads, term %llu", c->n[l].ident.name, (unsigned long long)(c->w.now - t0),
		c->n[nl].ident.name, (unsigned long long)nterm);
	if (nterm != term + 1)
		return errf(err, E_FAIL, "orch stop of the leader: term %llu -> %llu, not one election", (unsigned long long)term,
			    (unsigned long long)nterm);
	if (early_total(c, l) != early)
		return errf(err, E_FAIL, "orch stop of the leader: a node campaigned early (the streams ended cleanly)");
	return back(c, (unsigned)l, err);
}

int scn_failover(uint64_t seed, struct sim_result *res, char *err)
{
	struct simcl *c = scn_new(seed, 3);
	int rc = scn_init(c, err);
	if (!rc) {
		scn_join_all(c, 1, 3, 0, 1000);
		rc = scn_joined(c, 30000, err);
	}
	if (!rc && !world_run_while_not(&c->w, c->w.now + 10000, three_voters, c))
		rc = errf(err, E_TIMEOUT, "not three caught-up voters within 10 s");
	simcl_run(c, 1000);
	for (unsigned round = 0; round < 2 && !rc; round++) {
		if (!rc)
			rc = kill_case(c, false, err);
		if (!rc)
			rc = flap_case(c, false, err);
		if (!rc)
			rc = flap_case(c, true, err);
		if (!rc)
			rc = kill_case(c, true, err);
		if (!rc)
			rc = stop_case(c, err);
	}
	return scn_finish(c, 30000, res, rc, err);
}
