/* The routing mesh: every node accepts connections on each service's published ports (on
 * its listen address) and on each service's virtual address, and proxies them to the
 * service's ready endpoints on any node — round-robin, or least-connections when the
 * service has the deploy label orch.lb=least-connections. A backend that cannot be reached
 * is retried on another endpoint before any client byte is sent. Endpoints come straight
 * from the local replica of the state, so a committed change applies to the next
 * connection. Optional PROXY protocol (label orch.proxy-protocol=v1|v2). HTTP/1.x requests
 * are counted per service (keep-alive aware). */
#ifndef ORCH_MESH_H
#define ORCH_MESH_H
#include <stdbool.h>
#include <stdint.h>

#include "node/host.h"
#include "traffic/scope.h"

struct mesh;

/* virtual_addresses: also listen on each service's virtual address (added to lo). */
struct mesh *mesh_new(const struct host *h, bool virtual_addresses);
void mesh_sync(struct mesh *m);   /* open/close listeners to match the state (tick) */
/* Who connects to a service address: a task of a service that shares no network with it
 * is refused (traffic/scope.h). */
void mesh_set_tasks(struct mesh *m, scope_task_at_fn task_at, void *arg);
void mesh_stop(struct mesh *m);   /* closes the listeners */
/* After the loop has closed the listeners' handles. */
void mesh_free(struct mesh *m);

#endif
