/* What must hold once a simulated cluster has settled: one leader; every running node has
 * applied the leader's commit index and holds the same state hash; the leader keeps 3 or
 * 5 voters (by cluster size), all of them running; no running node is a spare, outside
 * the configuration or marked down; every service has its replicas running (in the state
 * and in the fake runtimes) on running nodes, and no slot runs twice. */
#ifndef SIM_CHECK_H
#define SIM_CHECK_H
#include <stdio.h>
#include "simcl.h"

/* 0 when everything above holds (hash: the common state hash), else the first thing
 * that does not, in err. */
int check_settled(const struct simcl *c, char hash[65], char *err);
/* Runs the cluster until check_settled holds, checking every 100 virtual ms, for at most
 * within_ms; 0, or the last reason it did not hold. */
int check_wait_settled(struct simcl *c, uint64_t within_ms, char hash[65], char *err);

/* One line per node: raft state and role, record state, applied index, tasks run. */
void check_describe(const struct simcl *c, FILE *f);

#endif
