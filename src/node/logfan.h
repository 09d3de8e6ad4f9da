/* orch logs, served by the node the CLI talks to (the CLI never dials a peer nor reads
 * node credentials). The node picks the tasks from its replica of the state (one
 * service's, history included, or one task), asks the node that ran each one for its
 * output over the node port (the agent's "logs" op, agent/agent.h) and streams it back,
 * merged as it arrives:
 *
 *   {id, rc 0, more true, prefix "svc.slot.task", data}   whole lines of one task
 *   {id, rc 0, more true, warn}                            a task's node could not be read
 *   {id, rc 0, more false}                                 every source has ended
 *
 * With follow, a source ends when its task stops; all of them end when the CLI goes. */
#ifndef ORCH_LOGFAN_H
#define ORCH_LOGFAN_H
#include <stdint.h>
#include "net/proto.h"

struct daemon;
struct conn;

/* op logs.cluster (net/proto.h) */
void logfan_start(struct daemon *d, struct conn *c, const struct req_logs_cluster *a);

#endif
