/* What a node serves about its figures: the Prometheus page of GET /metrics (this node's
 * services, tasks and raft state) and, on the leader, the "top" op: every node's figures
 * from the heartbeats, per service and per task, for orch top. */
#ifndef ORCH_METRICS_H
#define ORCH_METRICS_H
#include <stdint.h>
#include "codec/mp.h"
#include "util/mem.h"

#include "metrics/cluster_stats.h"
#include "metrics/node_stats.h"

struct conn;

/* This node's raft figures, for the page. */
struct metrics_raft {
	const char *role, *state;
	uint64_t term, commit_index, applied_index;
};

/* The body of GET /metrics (text/plain; version=0.0.4), sampling own first if due. */
void metrics_page(struct node_stats_sampler *own, uint64_t now, const struct metrics_raft *raft, struct buf *out);
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Answers op "events" {since?, limit?}: the events with an id above since, oldest first,
 * from this node's replica of the state, and "last", the newest id. */
void metrics_op_events(const struct store *s, struct conn *c, uint64_t id, uint64_t since, uint64_t limit);
/* Answers op "top" (leader only: the caller forwards it otherwise) from the cluster view,
 * with this node's own figures folded in first. */
void metrics_op_top(struct node_stats_sampler *own, struct cstats *view, uint64_t now, struct conn *c, uint64_t id);

#endif
