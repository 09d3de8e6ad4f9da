/* Adoption after a restart: containers this node's runtime still runs (or ran) are found
 * again as tasks instead of being started twice; they are not children of this process,
 * so their exit is noticed by polling. */
#ifndef ORCH_AGENT_ADOPT_H
#define ORCH_AGENT_ADOPT_H
#include "agent/agent_state.h"

int adopt_one(const struct rt_info *ci, void *arg);
void adopt_poll(struct agent *a);
/* Chooses the runtime (the one recorded in the data directory, unless ORCH_RUNTIME says
 * otherwise) and records it. */
void adopt_runtime(struct agent *a);
/* Finds this node's containers in the runtime's state again, as tasks. */
void adopt_all(struct agent *a);

#endif
