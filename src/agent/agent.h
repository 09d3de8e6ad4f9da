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
#include "net/proto.h"

#include "node/host.h"

struct agent;
struct backend;
struct conn;
struct node_stats;

struct agent_config {
	const struct backend *backend; /* agent/backend.h; NULL: the OCI runtime (runc, crun) */
	unsigned run_delay_ms;         /* backend_hollow: how long a task takes to start */
};

/* Starts the agent of the node behind h (NULL on failure, err says why). */
struct agent *agent_start(const struct host *h, const struct agent_config *cfg, char *err);
/* Stops it; idle_cb(data) is called once no handle of the agent is open and no worker job
 * of it is in flight (at once when that is already so). */
void agent_stop(struct agent *a, void (*idle_cb)(void *data), void *data);
/* After idle_cb. */
void agent_free(struct agent *a);
/* What runs this node's tasks: "runc", "crun" or "hollow". */
const char *agent_runtime(const struct agent *a);
/* node_stats' sampler for a synthetic backend (metrics/node_stats.h): the figures of the
 * tasks running here. a is the agent. */
void agent_sample(void *a, uint64_t now, struct node_stats *ns);
bool agent_synthetic(const struct agent *a);
/* The leader's first assignment document has come (the node is linked to it). */
bool agent_assigned(const struct agent *a);
void agent_tick(struct agent *a);
/* An assignment document (node/watch.c): the whole set ("tasks"), or the changes since
 * the last one ("changed", "removed"). */
void agent_assignments(struct agent *a, const msgpack_object *doc);
/* The node's bridge gateway address once its network is up (the tasks' nameserver). */
bool agent_gateway(const struct agent *a, char out[16]);
/* The task this agent runs at address ip (its own subnet), 0 if none: known from the
 * moment its address is taken, before the state records it. */
uint64_t agent_task_at(const struct agent *a, const char *ip);
/* The blobs (config and layers) of the images this node's tasks run or are about to run,
 * whatever the cluster's records say now: the image garbage collector keeps them
 * (node/imagework.h), so a container's layers never go from under it. */
void agent_used_blobs(const struct agent *a, void (*add)(void *ctx, const char *digest), void *ctx);
void agent_conn_gone(struct agent *a, struct conn *c);
/* Ops served by the agent (net/proto.h): logs (a task's output, optionally followed),
 * blob.get (a chunk of an image blob this node holds, for a peer that fetches it). */
void agent_logs(struct agent *a, struct conn *c, const struct req_logs *q);
void agent_blob_get(struct agent *a, struct conn *c, const struct req_blob_get *q);
/* exec.task and exec.input (agent/exec.h); the latter false when no exec of c has that
 * session */
void agent_exec(struct agent *a, struct conn *c, const struct req_exec_task *q);
bool agent_exec_input(struct agent *a, struct conn *c, const struct req_exec_input *q);

#endif
