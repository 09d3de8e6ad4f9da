/* The leader's controllers as pure functions of the replicated state: no I/O, no clock
 * (the time comes in), so a simulation test can drive them. One pass looks at every
 * service and task and writes at most one task.batch command body that moves the
 * cluster toward the desired state:
 *   - slots 1..replicas each get a task; extra slots are shut down;
 *   - a task that ended is replaced per the restart policy (condition, max_attempts) —
 *     a restart is a new task in the same slot — after a back-off that doubles with each
 *     failure in a row (a task that could not start counts as one) and is kept in the
 *     replicated state: the new task's failures and start_after;
 *   - tasks of an older generation are replaced, update_config.parallelism at a time
 *     (stop-first: the new task is created once the old one is terminal);
 *   - tasks on a node that is down or drained are marked orphaned and replaced;
 *   - a global service (deploy.mode: global) wants one slot per node that is up, not
 *     drained and satisfies its constraints, the slot numbered by the node's id: joins,
 *     drains, node down/up and label changes add and remove its tasks;
 *   - a task whose node no longer satisfies its constraints moves as from a drained node;
 *   - pending tasks are placed by the scheduler (sched.h), or keep a reason — also a
 *     service's first start waiting for its depends_on (depends.h);
 *   - terminal history beyond a few tasks per slot, and tasks of removed services, are
 *     deleted. */
#ifndef ORCH_RECONCILE_H
#define ORCH_RECONCILE_H
#include <stdbool.h>
#include "state/store.h"

#define TASK_HISTORY 4 /* terminal tasks kept per slot */
#define RECONCILE_CREATE_MAX 5000
#define RECONCILE_PLACE_MAX 5000
/* Services are looked at until a pass holds this many creations and updates (a node lost
 * with 100 tasks, or a thousand, is many passes, not one entry of megabytes). */
#define RECONCILE_BATCH_MAX 10000
/* The restart back-off stops doubling here: a slot that keeps failing costs a few raft
 * entries every 5 minutes. */
#define RESTART_DELAY_CAP_MS (5 * 60 * 1000ull)
/* restart_policy.window when the spec sets none: a task that ran this long (as long as
 * the longest back-off) ends its slot's run of failures. */
#define RESTART_WINDOW_DEFAULT_MS RESTART_DELAY_CAP_MS

/* Returns true (and the body in w: {at, create, update, delete}) when there is work. */
bool reconcile(const struct store *s, uint64_t now, struct mpw *w);
/* Same, with the leader's view of which nodes answer: new tasks are not placed on a node
 * for which reachable() is false (e.g. not heard from since this leader took over). One
 * pass fills at most RECONCILE_CREATE_MAX new slots and places at most RECONCILE_PLACE_MAX
 * tasks, so that a deploy of 100,000 replicas is many entries of a bounded size (each
 * replica applies them on its loop); out (may be NULL) tells what the pass did and whether
 * work was left. */
struct reconcile_out {
	bool capped; /* the next pass has work at once (left by a cap, or tasks to place) */
	uint32_t created, placed;
};
/* manager (may be NULL): whether a node is a raft voter, for node.role constraints. */
bool reconcile_live(const struct store *s, uint64_t now, struct mpw *w, bool (*reachable)(uint64_t node, void *arg),
		    bool (*manager)(uint64_t node, void *arg), void *arg, struct reconcile_out *out);

#endif
