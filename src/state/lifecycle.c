#include "state/lifecycle.h"
#include "util/err.h"
#include "util/log.h"
#include <string.h>

#define LC_NAME_(v, name) [v] = name,
#define B(s) (1u << (s))

/* ---- tasks --------------------------------------------------------------------------------- */

static const char *const task_names[TS_COUNT] = {[TS_NONE] = "", TASK_STATES(LC_NAME_)};

/* How a task can end: by itself (complete, failed), stopped by orch (shutdown), unable to
 * start (rejected), or lost with its node (orphaned). An ended task never moves again: a
 * restart is a new task in the same slot. */
#define ENDS (B(TS_COMPLETE) | B(TS_FAILED) | B(TS_SHUTDOWN) | B(TS_REJECTED) | B(TS_ORPHANED))

/* Forward only. A node's reports may skip steps (a lost report is resent as the newest
 * state only), so each state allows every later one on the way up; a task that never got
 * a node can only be placed or dropped (it has no container to end otherwise); a running
 * task is past the point where it can be rejected. */
static const uint32_t task_next[TS_COUNT] = {
	[TS_PENDING] = B(TS_ASSIGNED) | B(TS_SHUTDOWN),
	[TS_ASSIGNED] = B(TS_PREPARING) | B(TS_STARTING) | B(TS_RUNNING) | ENDS,
	[TS_PREPARING] = B(TS_STARTING) | B(TS_RUNNING) | ENDS,
	[TS_STARTING] = B(TS_RUNNING) | ENDS,
	[TS_RUNNING] = ENDS & ~B(TS_REJECTED),
};

const struct lifecycle lifecycle_task = {"task state", TS_COUNT, task_names, task_next};

static const char *const desired_names[TD_COUNT] = {[TD_NONE] = "", TASK_DESIRED(LC_NAME_)};
/* A task wanted running may be asked to stop; a stopped one is never wanted back (a new
 * task is made instead). */
static const uint32_t desired_next[TD_COUNT] = {[TD_RUNNING] = B(TD_SHUTDOWN)};
const struct lifecycle lifecycle_desired = {"desired state", TD_COUNT, desired_names, desired_next};

int task_state_rank(enum task_state s)
{
	if (s <= TS_NONE || s >= TS_COUNT)
		return -1;
	return s >= TS_COMPLETE ? 5 : (int)s - TS_PENDING;
}

/* ---- nodes --------------------------------------------------------------------------------- */

static const char *const node_names[NS_COUNT] = {[NS_NONE] = "", NODE_STATES(LC_NAME_)};
/* A record without a state (none is ever committed so) may get either. */
static const uint32_t node_next[NS_COUNT] = {
	[NS_NONE] = B(NS_READY) | B(NS_DOWN), [NS_READY] = B(NS_DOWN), [NS_DOWN] = B(NS_READY)};
const struct lifecycle lifecycle_node = {"node state", NS_COUNT, node_names, node_next};

static const char *const avail_names[NA_COUNT] = {[NA_NONE] = "", NODE_AVAILABILITY(LC_NAME_)};
#define AVAIL_ANY (B(NA_ACTIVE) | B(NA_PAUSE) | B(NA_DRAIN))
static const uint32_t avail_next[NA_COUNT] = {
	[NA_NONE] = AVAIL_ANY, [NA_ACTIVE] = AVAIL_ANY, [NA_PAUSE] = AVAIL_ANY, [NA_DRAIN] = AVAIL_ANY};
const struct lifecycle lifecycle_avail = {"availability", NA_COUNT, avail_names, avail_next};

/* ---- the tables' functions ------------------------------------------------------------------ */

const char *lifecycle_name(const struct lifecycle *l, int v)
{
	return v >= 0 && (unsigned)v < l->n ? l->names[v] : "?";
}

int lifecycle_parse(const struct lifecycle *l, const char *s, size_t len)
{
	for (unsigned v = 0; v < l->n; v++)
		if (strlen(l->names[v]) == len && !memcmp(l->names[v], s, len))
			return (int)v;
	return -1;
}

bool lifecycle_allows(const struct lifecycle *l, int from, int to)
{
	if (from < 0 || to < 0 || (unsigned)from >= l->n || (unsigned)to >= l->n)
		return false;
	return from == to || (l->next[from] >> to & 1u);
}

int lifecycle_check(const struct lifecycle *l, const char *obj, int from, int to, char *err)
{
	if (lifecycle_allows(l, from, to))
		return 0;
	TRACE("state", obj, "refused: %s %s -> %s", l->what, lifecycle_name(l, from), lifecycle_name(l, to));
	return errf(err, E_STATE, "%s: %s %s -> %s is not allowed", obj, l->what, lifecycle_name(l, from),
		    lifecycle_name(l, to));
}
