/* Reporting: every state change of a task goes to the leader as a task.batch update
 * (through the node's host, forwarded when this node does not lead). Changes are batched:
 * those made within REPORT_DELAY_MS go out as one command with each task's latest state
 * (a node starting 100 tasks sends a few entries, not 300). A report that is lost with a
 * leader change is sent again on a later tick. */
#ifndef ORCH_AGENT_REPORT_H
#define ORCH_AGENT_REPORT_H
#include "agent/agent_state.h"

#define REPORT_DELAY_MS 100

void report_init(struct agent *a);
/* Closes its timer (counted in the agent's jobs while it closes). */
void report_stop(struct agent *a);
void report_state(struct agent *a, struct atask *t, enum task_state state, const char *err, bool with_exit);
void report_health(struct agent *a, struct atask *t);
/* Sends again the reports the leader did not apply. */
void report_resend_lost(struct agent *a);
/* Sends what is due now. */
void report_flush(struct agent *a);
/* A report of t is due or lost: t must stay until it is sent. */
bool report_pending(const struct atask *t);

#endif
