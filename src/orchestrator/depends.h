/* depends_on: whether the first start of a service still waits for its dependencies.
 * A service that never had a task running waits until each dependency (a service of the
 * same name in the cluster) meets its condition: started = one of its tasks runs; healthy =
 * one of its tasks runs and passes its health check (or, with no health check but an
 * x-orch-healthcheck, is ready); completed_successfully = one of its tasks exited 0. A
 * dependency absent from the cluster is waited for when required, else skipped. Once the
 * service has run, it runs independently of its dependencies (as in Compose and Swarm).
 * Pure: reads the store only. */
#ifndef ORCH_DEPENDS_H
#define ORCH_DEPENDS_H
#include <stdbool.h>
#include <stddef.h>
#include "spec/spec.h"
#include "state/store.h"

/* True when the service's tasks must not be placed yet; why then reads
 * "waiting for db (healthy)". ts: the service's own tasks. */
bool depends_waiting(const struct store *s, const struct service *v, const struct svc_spec *sp, const struct task *const *ts,
		     size_t nts, char *why, size_t n);

/* The condition's short name: "started", "healthy" or "completed". */
const char *depends_condition_name(int condition);

#endif
