/* orch exec on the node that runs the task (op exec.task, net/proto.h): the command is
 * started in the task's container by the OCI runtime (runtime/runc.h rt_exec_start, on a
 * worker thread), then its output is streamed back on the connection that asked and the
 * input that arrives (op exec.input) is written to it, on the loop:
 *
 *   {id, rc 0, more true, out|err: bytes}    output (a terminal's is all "out")
 *   {id, rc 0, more false, exit_code N}      the command ended (128+N: killed by signal N)
 *   {id, rc <0, err}                         it could not start: no such task here, not
 *                                            running, the runtime's error
 *
 * The process is the asking connection's: when it closes (the user went away) the process
 * is killed. Output is read no faster than the connection sends it. */
#ifndef ORCH_AGENT_EXEC_H
#define ORCH_AGENT_EXEC_H
#include <stdbool.h>
#include "agent/agent_state.h"
#include "net/proto.h"

struct conn;

/* A command as the request carries it (an array of 1..PROTO_EXEC_ARGS_MAX strings of
 * PROTO_EXEC_ARGS_BYTES at most in all, no NUL inside) into a NULL-terminated argv (one
 * allocation: free() it), or NULL and err. */
char **exec_argv(const msgpack_object *cmd, char *err);

void exec_task(struct agent *a, struct conn *c, const struct req_exec_task *q);
/* false when no exec of this connection has that session id (it has ended) */
bool exec_input(struct agent *a, struct conn *c, const struct req_exec_input *q);
/* After the process's reaper ran (agent/tasks.h tasks_claim_exits). */
void exec_claim_exits(struct agent *a);
void exec_conn_gone(struct agent *a, struct conn *c);
/* The agent stops: every exec's process is killed and its handles closed. */
void exec_stop_all(struct agent *a);

#endif
