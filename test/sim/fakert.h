/* The simulation's fake runtime: a node's agent without containers. It reads the node's
 * assignment documents (node/feed.h: the whole set first, then the changes) as the real
 * agent does, "starts" each task assigned to it (reported starting at once, running after
 * a seeded delay; the leader assigns a restart only once its back-off is over), stops those
 * asked to shut down, forgets those that left the documents, and reports every change to
 * the leader as a task.batch command through the node's write path — a report that was
 * lost (leader change, broken link) is sent again on a later tick, as the real agent does.
 * Nothing runs: this exists only for simulation and says so.
 *
 * What a task does comes from its image's name, so a scenario's spec says it:
 *   sim/exit:MS     runs MS milliseconds, then exits with status 1 (reported failed);
 *   sim/reject      cannot start (reported rejected, as a missing command is);
 *   anything else   runs until stopped. */
#ifndef SIM_FAKERT_H
#define SIM_FAKERT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"
#include "state/store.h"
#include "util/clock.h"

enum ft_state { FT_STARTING, FT_RUNNING, FT_ENDED, FT_STOPPED };

struct ftask {
	uint64_t id, slot, generation;
	char service[64];
	enum ft_state st;
	uint64_t ready_at;      /* FT_STARTING: when it becomes running (mono) */
	uint64_t exit_at;       /* FT_RUNNING: when it exits by itself (mono; 0: never) */
	int64_t run_ms;         /* from the image: -1 cannot start, 0 runs for good */
	const char *want;       /* state to report ("starting", "running", "failed", ...) */
	const char *reported;   /* last state acknowledged by the leader */
	int stored;             /* its state in the last document (enum task_state), 0 unknown */
	bool inflight;
};

struct fakert_anchor {
	struct fakert *r; /* NULL once freed */
	unsigned refs;
};

struct fakert_host {
	void *data;
	const char *name;             /* the node's, for log lines */
	const struct clock *clock;    /* the node's */
	uint64_t (*delay)(void *data, uint64_t lo, uint64_t hi); /* seeded */
	int (*submit)(void *data, enum cmd type, const void *body, size_t len,
		      void (*cb)(void *cbdata, int rc, const struct apply_res *res), void *cbdata, char *err);
	/* A task starts here now (NULL: nobody listens). */
	void (*started)(void *data, const struct ftask *t);
};

struct fakert {
	struct fakert_host host;
	unsigned start_min_ms, start_max_ms;
	struct ftask *t;
	size_t n, cap;
	uint64_t node_id;
	uint64_t docs, reports, started, stopped, failed, rejected;
	struct fakert_anchor *anchor; /* what report callbacks hold: outlives the runtime */
};

void fakert_init(struct fakert *r, const struct fakert_host *host, unsigned start_min_ms, unsigned start_max_ms);
void fakert_free(struct fakert *r);
/* A new assignment document for this node. */
void fakert_assign(struct fakert *r, const msgpack_object *doc);
/* Periodic: started tasks run, running ones may exit; lost reports are sent again. */
void fakert_tick(struct fakert *r);
/* Tasks running here now (for the invariants). */
size_t fakert_running(const struct fakert *r);

#endif
