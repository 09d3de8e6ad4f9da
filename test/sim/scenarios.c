/* The table of scenarios orch-sim runs, in order. */
#include "scenario.h"

const struct scenario scenarios[] = {
	{"raft_io", scn_raft_io, false},
	{"join_storm", scn_join_storm, true},
	{"leader_loss_join", scn_leader_loss_join, false},
	{"partition_minority", scn_partition_minority, true},
	{"voter_lost", scn_voter_lost, false},
	{"node_down", scn_node_down, false},
	{"rolling_update", scn_rolling_update, true},
	{"clock_back", scn_clock_back, false},
	{"restart_backoff", scn_restart_backoff, false},
};
const unsigned nscenarios = sizeof scenarios / sizeof scenarios[0];
