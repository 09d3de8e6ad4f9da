/* The table of scenarios orch-sim runs, in order. */
#include "scenario.h"

const struct scenario scenarios[] = {
	{"raft_io", scn_raft_io, false, false},
	{"join_storm", scn_join_storm, true, false},
	{"leader_loss_join", scn_leader_loss_join, false, false},
	{"partition_minority", scn_partition_minority, true, false},
	{"voter_lost", scn_voter_lost, false, false},
	{"node_down", scn_node_down, false, false},
	{"rolling_update", scn_rolling_update, true, false},
	{"clock_back", scn_clock_back, false, false},
	{"restart_backoff", scn_restart_backoff, false, false},
	{"flapping_partition", scn_flapping_partition, true, false},
	{"join_storm_200", scn_join_storm_200, false, true},
	{"drain_join_storm", scn_drain_join_storm, false, false},
	{"volume_pinned", scn_volume_pinned, false, false},
	{"global_follows", scn_global_follows, true, false},
	{"workers", scn_workers, true, false},
	{"failover", scn_failover, true, false},
	{"rebalance_join", scn_rebalance_join, true, false},
	{"rebalance_return", scn_rebalance_return, false, false},
	{"rebalance_leader_loss", scn_rebalance_leader_loss, true, false},
};
const unsigned nscenarios = sizeof scenarios / sizeof scenarios[0];
