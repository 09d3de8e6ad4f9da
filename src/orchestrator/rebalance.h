/* Rebalancing, for the reconciler (pure, like it): when a node joins, returns or is
 * activated again, a replicated service whose tasks are spread unevenly moves one task
 * at a time to where the scheduler (sched.h) would put a new one. A move is a one-task
 * start-first update: a second task is created in the same slot, and the older one is
 * stopped only once the new one runs, healthy and ready, for update_config.monitor; so a
 * service never runs fewer than its replicas because of a move.
 *
 * It cannot oscillate: a move is started, and finished, only when it strictly lowers the
 * service's imbalance, taken in order over its spread preferences and then over nodes
 * (for each level, the sum over groups of the squared task counts): from a node holding
 * at least two more tasks than the target (or its group two more than the target's). The
 * sum is a non-negative integer that only falls, and moves of one service change no other
 * service's. A move whose task fails or cannot be placed is cancelled and the service
 * waits REBALANCE_BACKOFF_MS; one that would no longer lower the imbalance once its task
 * runs (other tasks moved meanwhile, a node went down) is given up, with no wait.
 *
 * Rate: at most `cluster.rebalance_moves` moves in flight in the whole cluster (a key of
 * the replicated kv table set by orch cluster update --rebalance-moves; default 2, 0
 * turns rebalancing off), one per service; a node ready for less than REBALANCE_SETTLE_MS
 * attracts none (a node that flaps draws no work). Not moved: global services, services
 * with deploy.x-orch-rebalance: false, tasks pinned to their node by a volume
 * (volplace.h), services in a rollout or not settled (a task pending, stopping, failing). */
#ifndef ORCH_REBALANCE_H
#define ORCH_REBALANCE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "orchestrator/sched.h"
#include "spec/spec.h"
#include "state/store.h"

#define REBALANCE_KEY "cluster.rebalance_moves"
#define REBALANCE_MOVES_DEFAULT 2
#define REBALANCE_MOVES_MAX 1000
#define REBALANCE_SETTLE_MS 3000
#define REBALANCE_BACKOFF_MS 60000
/* The err of a move's task that failed (its service then waits the back-off). */
#define REBALANCE_CANCELLED "move cancelled"

/* Moves allowed in flight, from the replicated kv table (a bad value: the default). */
uint64_t rebalance_budget(const struct store *s);
/* Parses a value of REBALANCE_KEY: 0 or -1 (not a number in 0..REBALANCE_MOVES_MAX). */
int rebalance_parse(const char *v, uint64_t *out);

/* A task to move and where to. */
struct rebalance_pick {
	const struct task *t;
	uint64_t to;
	uint64_t from_count, to_count; /* the service's tasks on each node before the move */
};

/* One move for a settled service (each wanted slot one live, running task of its
 * generation: the caller checks): ts are its tasks, vp the volume records of this pass.
 * false: none (balanced, pinned, nowhere better, the target not settled). */
struct volplace;
bool rebalance_pick(struct sched_ctx *sc, const struct store *s, const struct service *v, const struct svc_spec *sp,
		    const struct task *const *ts, size_t nts, const struct volplace *vp, uint64_t now,
		    struct rebalance_pick *out);
/* Whether a move's new task on node `to` may replace the one on `from` now (both are
 * counted in sc): the imbalance falls strictly. */
bool rebalance_improves(const struct sched_ctx *sc, const struct svc_spec *sp, uint64_t service_id, uint64_t from,
			uint64_t to);

#endif
