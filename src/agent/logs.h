/* Task logs: the logs op (tail, follow) served from each task's log file, followers
 * pumped on every tick, and the rotation of large logs (copy then truncate, off the loop). */
#ifndef ORCH_AGENT_LOGS_H
#define ORCH_AGENT_LOGS_H
#include "agent/agent_state.h"
#include "net/proto.h"

struct conn;

void logs_rotate(struct agent *a);
void logs_op(struct agent *a, struct conn *c, const struct req_logs *q);
void logs_followers_tick(struct agent *a);
void logs_conn_gone(struct agent *a, struct conn *c);
void logs_free(struct agent *a);

#endif
