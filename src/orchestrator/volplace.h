/* Placement of tasks that use named volumes, for the reconciler (pure, like it): a
 * volume lives on one node (its record in the replicated state, state/store.h), so a task
 * whose spec mounts it may run only there, as with Swarm's local driver. A volume without
 * a record goes where the scheduler puts the first task that uses it, and its record is
 * written in the same task.batch; a second task needing it in the same pass is pinned to
 * the same node. A source with the slot template ("data-{slot}") names one volume per
 * slot. */
#ifndef ORCH_VOLPLACE_H
#define ORCH_VOLPLACE_H
#include <stddef.h>
#include <stdint.h>
#include "spec/spec.h"
#include "state/store.h"

struct volplace {
	struct mpw w; /* the records made in this pass: the task.batch "volumes" */
	uint32_t n;
	char **names;
	uint64_t *nodes;
};

void volplace_init(struct volplace *vp);
void volplace_free(struct volplace *vp);
/* The node the task of `slot` is pinned to by its volumes (*pin, 0: none). -1 with a
 * reason when it cannot be placed at all now (an external volume that does not exist,
 * volumes on two different nodes). */
int volplace_pin(const struct volplace *vp, const struct store *s, const struct svc_spec *sp, uint64_t slot,
		 uint64_t *pin, char *reason, size_t rlen);
/* Why a task pinned to `pin` was not placed: names the volume and its node's state;
 * sched_reason (the scheduler's) is added when the node itself is up. */
void volplace_reason(const struct store *s, const struct svc_spec *sp, uint64_t slot, uint64_t pin,
		     const char *sched_reason, char *reason, size_t rlen);
/* Every bind mount of the spec lies under a prefix node n allows (its record's binds):
 * the scheduler places such a task only there. */
bool volplace_binds_ok(const struct svc_spec *sp, const struct node *n);
/* The first bind source of the spec that no node of the cluster allows, or NULL: a
 * service.put naming one is refused. */
const char *volplace_bind_nowhere(const struct store *s, const struct svc_spec *sp);
/* The task was placed on `node`: records the volumes it creates there. */
void volplace_commit(struct volplace *vp, const struct store *s, const struct svc_spec *sp, const char *service,
		     uint64_t slot, uint64_t node);

#endif
