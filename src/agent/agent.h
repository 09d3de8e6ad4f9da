/* The agent: every node runs the tasks the leader assigned to it through the OCI runtime.
 * It receives its assignment document (node/watch.c), prepares each task off the loop
 * (image blobs fetched from peers when missing, layers unpacked, rootfs mounted, network
 * namespace and published ports, OCI bundle), creates and starts the container, reaps it
 * as child subreaper, applies stops (signal, grace period, kill), cleans up, and reports
 * every state change to the leader as a task.batch command. On restart it finds its
 * containers again in the runtime's state instead of starting duplicates. */
#ifndef ORCH_AGENT_H
#define ORCH_AGENT_H
#include <stdbool.h>
#include <stdint.h>
#include "codec/mp.h"

struct daemon;
struct conn;

int agent_start(struct daemon *d, char *err);
void agent_stop(struct daemon *d);
void agent_tick(struct daemon *d);
void agent_assignments(struct daemon *d, const msgpack_object *doc);
/* The node's bridge gateway address once its network is up (the tasks' nameserver). */
bool agent_gateway(struct daemon *d, char out[16]);
void agent_conn_gone(struct daemon *d, struct conn *c);
/* Ops served by the agent: logs (a task's output, optionally followed), blob.get. */
bool agent_rpc(struct daemon *d, struct conn *c, const msgpack_object *op, uint64_t id, const msgpack_object *req,
	       bool local);

#endif
