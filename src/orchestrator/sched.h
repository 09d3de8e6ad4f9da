/* Placement of one task on a node: filter nodes (ready, active, reachable, the pin of a
 * task's volume, constraints, bind mounts allowed, resources reserved vs capacity,
 * max_replicas_per_node), then prefer the node whose group of each spread preference
 * (deploy.placement.preferences: nodes sharing a label's value) holds the fewest tasks of
 * the service, then the node with the fewest tasks of the same service, then the least
 * loaded one. Pure.
 *
 * Built for many nodes and tasks: sched_init looks at every task once (its node and its
 * service found by binary search, each service's reservations decoded once), and a
 * placement looks at every node once, with the node's reachability and each service's
 * constraints evaluated once per pass. */
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
	bool eligible;               /* ready, active and reachable (once known) */
};

/* A service seen in this pass: its reservations, its live tasks per node, which nodes
 * satisfy its constraints. */
struct sched_svc {
	bool reserved_known;
	uint64_t cpu, mem;
	uint32_t *on;        /* per node index, or NULL: none yet */
	uint8_t *fits;       /* per node index: 1 fits the constraints, 2 does not; NULL: not yet */
};

struct sched_ctx {
	const struct store *s;
	struct sched_node *nodes; /* in the order of the nodes table (by id) */
	size_t nnodes;
	struct sched_svc *svcs;   /* in the order of the services table (by id) */
	size_t nsvcs;
	bool eligible_known;
	bool (*reachable)(uint64_t node, void *arg); /* NULL: every ready node is */
	/* node.role: a manager is a raft voter (NULL: every node is a worker); gets reachable_arg */
	bool (*manager)(uint64_t node, void *arg);
	void *reachable_arg;
	uint64_t pin; /* when set, the only node sched_place may pick (a task's volume lives there) */
};

/* Builds the view from the store (live tasks only). */
void sched_init(struct sched_ctx *c, const struct store *s);
void sched_free(struct sched_ctx *c);
/* Picks a node for a task of service_id, whose current spec is `spec`. Returns the node
 * id, or 0 with a reason ("no node with 2.0 GiB free: 3 nodes checked"). */
uint64_t sched_place(struct sched_ctx *c, const struct svc_spec *spec, uint64_t service_id, char *reason, size_t rlen);
/* A global service's task, whose node is fixed (its slot): node_id if that node can take
 * it now, else 0 with a reason. */
uint64_t sched_place_on(struct sched_ctx *c, const struct svc_spec *spec, uint64_t service_id, uint64_t node_id,
			char *reason, size_t rlen);
/* Whether node n satisfies the service's placement constraints. */
bool sched_constraints_ok(const struct sched_ctx *c, const struct svc_spec *spec, const struct node *n);
/* Records a placement made in this pass (it counts for spreading and capacity). */
void sched_commit(struct sched_ctx *c, uint64_t node_id, uint64_t service_id, const struct svc_spec *spec);

#endif
