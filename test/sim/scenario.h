/* Simulation scenarios: each builds a world from a seed, runs nodes through a story
 * (join storm, partitions, kills...) and checks the outcome. A scenario returns 0 and
 * fills the result (final state hash and event count, compared across runs of one seed
 * by the determinism check), or an error code with a message. */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H
#include <stdbool.h>
#include <stdint.h>
#include "util/err.h"

struct sim_result {
	char hash[65];     /* the state hash every node agreed on */
	uint64_t events;   /* events fired */
	uint64_t end_ms;   /* virtual time at the end */
	unsigned nodes;
};

typedef int (*scenario_fn)(uint64_t seed, struct sim_result *res, char *err);

struct scenario {
	const char *name;
	scenario_fn fn;
	bool twice; /* the whole suite checks this one for determinism */
	bool heavy; /* seconds of wall time: the suite runs its first seed only */
};

extern const struct scenario scenarios[];
extern const unsigned nscenarios;

/* The sim's own raft_io driven by libraft alone (no node code): scn_raft.c */
int scn_raft_io(uint64_t seed, struct sim_result *res, char *err);

/* Node scenarios (scn_*.c) */
int scn_join_storm(uint64_t seed, struct sim_result *res, char *err);
int scn_leader_loss_join(uint64_t seed, struct sim_result *res, char *err);
int scn_partition_minority(uint64_t seed, struct sim_result *res, char *err);
int scn_voter_lost(uint64_t seed, struct sim_result *res, char *err);
int scn_node_down(uint64_t seed, struct sim_result *res, char *err);
int scn_rolling_update(uint64_t seed, struct sim_result *res, char *err);
int scn_clock_back(uint64_t seed, struct sim_result *res, char *err);
int scn_restart_backoff(uint64_t seed, struct sim_result *res, char *err);
int scn_flapping_partition(uint64_t seed, struct sim_result *res, char *err);
int scn_join_storm_200(uint64_t seed, struct sim_result *res, char *err);
int scn_drain_join_storm(uint64_t seed, struct sim_result *res, char *err);
int scn_volume_pinned(uint64_t seed, struct sim_result *res, char *err);
int scn_global_follows(uint64_t seed, struct sim_result *res, char *err);
/* scn_failover.c */
int scn_failover(uint64_t seed, struct sim_result *res, char *err);
/* scn_workers.c */
int scn_workers(uint64_t seed, struct sim_result *res, char *err);

/* scn_rebalance.c */
int scn_rebalance_join(uint64_t seed, struct sim_result *res, char *err);
int scn_rebalance_return(uint64_t seed, struct sim_result *res, char *err);
int scn_rebalance_leader_loss(uint64_t seed, struct sim_result *res, char *err);

/* Set by -v: node and raft logs go to stderr. */
extern int sim_verbose;

#endif
