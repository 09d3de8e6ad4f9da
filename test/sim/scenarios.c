/* The table of scenarios orch-sim runs, in order. */
#include "scenario.h"

const struct scenario scenarios[] = {
	{"raft_io", scn_raft_io},
	{"join_storm", scn_join_storm},
};
const unsigned nscenarios = sizeof scenarios / sizeof scenarios[0];
