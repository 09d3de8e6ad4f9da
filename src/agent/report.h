/* Reporting: every state change of a task goes to the leader as a task.batch update of
 * that one task (through the node's host, forwarded when this node does not lead); a
 * report that is lost with a leader change is sent again on a later tick. */
#ifndef ORCH_AGENT_REPORT_H
#define ORCH_AGENT_REPORT_H
#include "agent/agent_state.h"

void report_state(struct agent *a, struct atask *t, enum task_state state, const char *err, bool with_exit);
void report_health(struct agent *a, struct atask *t);
/* Sends again the reports the leader did not apply. */
void report_resend_lost(struct agent *a);

#endif
