/* Membership changes on the leader. libraft allows one configuration change at a time, so
 * every change goes through one slot (d->change_inflight): joins wait in a queue, in
 * arrival order, and are served back to back (raft add as a spare, then assign standby,
 * chained from the add's callback; then the node record is committed and the joiner told
 * the commit index to catch up to); the role plan of orchestrator/roles.h runs the same way,
 * each change issued from the previous one's callback, before any queued join. */
#ifndef ORCH_MEMBER_H
#define ORCH_MEMBER_H
#include <stdbool.h>
#include <stddef.h>
#include "orchestrator/roles.h"

struct daemon;
struct pending;
struct node;

/* Queues a validated join (takes n, the record to commit). p gets the reply. */
void member_join(struct daemon *d, struct pending *p, struct node *n);
/* Runs a role plan (copied) unless one is still running (then false). */
bool member_plan(struct daemon *d, const struct roles_change *c, size_t n);
/* The change slot may be free: runs the next plan step or queued join. */
void member_kick(struct daemon *d);
/* Leadership gained or lost: queued joins are answered "retry", the plan is dropped. */
void member_leadership(struct daemon *d);
void member_close(struct daemon *d);

#endif
