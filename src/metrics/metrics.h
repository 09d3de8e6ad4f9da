/* What a node serves about its figures: the Prometheus page of GET /metrics (this node's
 * services, tasks and raft state) and, on the leader, the "top" op: every node's figures
 * from the heartbeats, per service and per task, for orch top. */
#ifndef ORCH_METRICS_H
#define ORCH_METRICS_H
#include <stdint.h>
#include "codec/mp.h"
#include "util/mem.h"

struct daemon;
struct conn;

/* The body of GET /metrics (text/plain; version=0.0.4). */
void metrics_page(struct daemon *d, struct buf *out);
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Answers op "events" {since?, limit?}: the events with an id above since, oldest first,
 * from this node's replica of the state, and "last", the newest id. */
void metrics_op_events(struct daemon *d, struct conn *c, uint64_t id, const msgpack_object *req);
/* Answers op "top" (leader only: the caller forwards it otherwise). */
void metrics_op_top(struct daemon *d, struct conn *c, uint64_t id);

#endif
