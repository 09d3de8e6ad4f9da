/* The states objects of the replicated state move through, each set written once: its
 * values, their names (what is displayed, what JSON and events say, and what the stored
 * encoding keeps, so logs and snapshots written before the enums still apply) and ONE table
 * of the moves allowed from each state. The state machine checks every change against it
 * (state/apply_work.c refuses an illegal move with E_STATE); the agent and the controllers
 * ask only for moves the table allows.
 *
 * Value 0 of every set is "" (not set): what a field holds before anything set it. */
#ifndef ORCH_LIFECYCLE_H
#define ORCH_LIFECYCLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lifecycle {
	const char *what;          /* "task state", for messages */
	unsigned n;                /* values, including 0 */
	const char *const *names;  /* names[v] */
	const uint32_t *next;      /* next[from]: bit `to` set when from -> to is allowed */
};

/* X(value, name), in the order of a task's life; the ended states come last. */
#define TASK_STATES(X) \
	X(TS_PENDING, "pending") X(TS_ASSIGNED, "assigned") X(TS_PREPARING, "preparing") \
	X(TS_STARTING, "starting") X(TS_RUNNING, "running") X(TS_COMPLETE, "complete") X(TS_FAILED, "failed") \
	X(TS_SHUTDOWN, "shutdown") X(TS_REJECTED, "rejected") X(TS_ORPHANED, "orphaned")
#define LC_VALUE_(v, name) v,
enum task_state { TS_NONE, TASK_STATES(LC_VALUE_) TS_COUNT };

/* What the cluster wants of a task. */
#define TASK_DESIRED(X) X(TD_RUNNING, "running") X(TD_SHUTDOWN, "shutdown")
enum task_desired { TD_NONE, TASK_DESIRED(LC_VALUE_) TD_COUNT };

/* A node as the leader's failure detector sees it. */
#define NODE_STATES(X) X(NS_READY, "ready") X(NS_DOWN, "down")
enum node_state { NS_NONE, NODE_STATES(LC_VALUE_) NS_COUNT };

/* Whether a node takes work: active; pause (keeps its tasks, gets no new ones); drain
 * (its tasks move elsewhere). */
#define NODE_AVAILABILITY(X) X(NA_ACTIVE, "active") X(NA_PAUSE, "pause") X(NA_DRAIN, "drain")
enum node_avail { NA_NONE, NODE_AVAILABILITY(LC_VALUE_) NA_COUNT };

extern const struct lifecycle lifecycle_task, lifecycle_desired, lifecycle_node, lifecycle_avail;

/* The name of v ("" for 0, "?" out of range). */
const char *lifecycle_name(const struct lifecycle *l, int v);
/* The value named s[0..len), or -1. "" is 0. */
int lifecycle_parse(const struct lifecycle *l, const char *s, size_t len);
/* Is from -> to a move of the table? Staying put is not a move: always allowed. */
bool lifecycle_allows(const struct lifecycle *l, int from, int to);
/* 0, or E_STATE with "task 17: state orphaned -> running is not allowed" (obj names the
 * object). */
int lifecycle_check(const struct lifecycle *l, const char *obj, int from, int to, char *err);

/* The order of a task's life: pending 0, assigned 1, preparing 2, starting 3, running 4,
 * every ended state 5; -1 for none. Entries written before the table moved states by
 * rank (state/apply_work.c). */
int task_state_rank(enum task_state s);
static inline const char *task_state_name(enum task_state s)
{
	return lifecycle_name(&lifecycle_task, (int)s);
}
static inline bool task_state_ended(enum task_state s)
{
	return task_state_rank(s) == 5;
}

#endif
