/* Helpers the scenarios share: a cluster with the suite's settings, the first node and
 * the joins, deploys and scales as a user makes them, and the closing check. */
#ifndef SIM_SCN_H
#define SIM_SCN_H
#include "check.h"
#include "simcl.h"
#include "scenario.h"

/* A cluster of count nodes (not started) with election 500 ms, heartbeat 100 ms,
 * failure timeout 3 s and tasks running 200-800 ms after assignment. */
struct simcl *scn_new(uint64_t seed, unsigned count);
/* A network that loses messages: raft's dropped (5 %) and reordered, node connections
 * reset at random (3 % of messages), delays of 2-12 ms. */
void scn_lossy(struct simcl *c);
/* orch init on node 0; runs until its node record is committed. */
int scn_init(struct simcl *c, char *err);
/* orch join of nodes [from, to) through node `via`, each starting within spread_ms. */
void scn_join_all(struct simcl *c, unsigned from, unsigned to, unsigned via, uint64_t spread_ms);
/* Runs until no join is under way, running orch join again (as an operator would, the
 * same command line) for every one that failed; 0, or the last failure after within_ms. */
int scn_joined(struct simcl *c, uint64_t within_ms, char *err);
/* count machines on a lossy network, the first `members` of them initialised, joined and
 * settled (rc says whether). */
struct simcl *scn_cluster(uint64_t seed, unsigned count, unsigned members, int *rc, char *err);
/* orch deploy of a compose-like YAML document. */
int scn_deploy(struct simcl *c, const char *yaml, char *err);
int scn_scale(struct simcl *c, const char *service, uint64_t replicas, char *err);
/* orch cluster update --rebalance-moves N (orchestrator/rebalance.h): scenarios about
 * membership turn rebalancing off, whose moves (a few seconds each, one per service at
 * a time) would outlast their settling windows; scn_rebalance.c is about it. */
int scn_rebalance_moves(struct simcl *c, unsigned moves, char *err);
/* orch node drain | activate | pause of the node with that id. */
int scn_availability(struct simcl *c, uint64_t node, const char *availability, char *err);
/* Waits until the cluster settled (check.h), fills res and frees the cluster. */
int scn_finish(struct simcl *c, uint64_t within_ms, struct sim_result *res, int rc, char *err);
/* after_ms from now, the leader of the moment is killed (power: its machine loses power);
 * it starts again back_ms later. */
void scn_kill_leader(struct simcl *c, uint64_t after_ms, uint64_t back_ms, bool power);
/* A node that is up, not the leader and (voter true) a voter, or -1. */
int scn_pick(struct simcl *c, bool voter);

/* A line of the story with -v (on stderr, with the node logs, in virtual time). */
void scn_log(const struct simcl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
