/* orch exec, served by the node the CLI talks to (any node, a worker too): the target
 * ("SERVICE", "SERVICE.SLOT" or a task id) is resolved to a running task from this node's
 * replica of the state (a worker asks the leader), and the node that runs it is dialled
 * on the node port, this one included, with the op exec.task (agent/exec.h: its frames
 * are relayed back to the CLI with the CLI's id). The CLI's exec.input frames for the
 * session follow the same way. The caller's identity goes along as the request's origin,
 * so the task's node checks it again (net/access.h): root on a worker reaches only the
 * worker's own tasks.
 *
 * A task picked by service name alone is its running task of the lowest slot. */
#ifndef ORCH_EXECFAN_H
#define ORCH_EXECFAN_H
#include "net/proto.h"

struct daemon;
struct conn;

/* ops exec and exec.input (net/proto.h) */
void execfan_start(struct daemon *d, struct conn *c, const struct req_exec *a);
void execfan_input(struct daemon *d, struct conn *c, const struct req_exec_input *a);

#endif
