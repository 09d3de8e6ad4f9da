/* Placement of one task on a node: filter nodes (ready, active, constraints, resources
 * reserved vs capacity, max_replicas_per_node), then prefer the node with the fewest
 * tasks of the same service, then the least loaded one. Pure. */
#ifndef ORCH_SCHED_H
#define ORCH_SCHED_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "spec/spec.h"
#include "state/store.h"

struct sched_node {
	const struct node *n;
	uint64_t cpu_used, mem_used; /* reservations of live tasks placed there */
	uint64_t tasks;              /* live tasks */
};

struct sched_ctx {
	struct sched_node *nodes;
	size_t nnodes;
	bool (*reachable)(uint64_t node, void *arg); /* NULL: every ready node is */
	void *reachable_arg;
};

/* Builds the view from the store (live tasks only). */
void sched_init(struct sched_ctx *c, const struct store *s);
void sched_free(struct sched_ctx *c);
/* Counts live tasks of service_id on node i. */
uint64_t sched_service_on(const struct store *s, uint64_t service_id, uint64_t node_id);
/* Picks a node for a task of `spec` (service_id: for spreading). Returns the node id, or
 * 0 with a reason ("no node with 2.0 GiB free: 3 nodes checked"). `placed` lets the
 * caller add tasks placed in this pass: per node id, count of same-service tasks. */
uint64_t sched_place(struct sched_ctx *c, const struct store *s, const struct svc_spec *spec, uint64_t service_id,
		     const uint64_t *extra_ids, size_t nextra, char *reason, size_t rlen);
/* Records a placement made in this pass. */
void sched_commit(struct sched_ctx *c, uint64_t node_id, const struct svc_spec *spec);

#endif
