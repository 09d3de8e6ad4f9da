/* The table of scenarios orch-sim runs, in order. */
#include "scenario.h"

const struct scenario scenarios[] = {
	{"raft_io", scn_raft_io},
	{"join_storm", scn_join_storm},
	{"leader_loss_join", scn_leader_loss_join},
	{"partition_minority", scn_partition_minority},
	{"voter_lost", scn_voter_lost},
	{"node_down", scn_node_down},
	{"rolling_update", scn_rolling_update},
};
const unsigned nscenarios = sizeof scenarios / sizeof scenarios[0];
