/* Membership changes on the leader. libraft allows one configuration change at a time, so
 * every change goes through one slot (struct leader's change_inflight): joins wait in a
 * queue, in arrival order, and are served back to back (raft add as a spare, then assign
 * standby, chained from the add's callback — a hollow node stays a spare; then the node
 * record is committed and the joiner told the commit index to catch up to); the role plan of orchestrator/roles.h runs
 * the same way, each change issued from the previous one's callback, before any queued
 * join. Part of the leader value (node/leader.h): it reaches the node only through the
 * leader's host interface. */
#ifndef ORCH_MEMBER_H
#define ORCH_MEMBER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "orchestrator/roles.h"

struct leader;
struct node;

/* How a join ends: rc 0 with the commit index the joiner must apply to be caught up, or
 * an error (E_NOLEADER/E_BUSY and "retry" when another leader or later may serve it). */
struct member_reply {
	void (*done)(void *data, int rc, const char *msg, uint64_t commit_index);
	/* false once the joiner stopped waiting (it will not start): NULL is always true */
	bool (*waiting)(void *data);
	void *data;
};

/* Queues a validated join (takes n, the record to commit); r->done is called once. */
void member_join(struct leader *l, struct node *n, const struct member_reply *r);
/* Runs a role plan (copied) unless one is still running (then false). */
bool member_plan(struct leader *l, const struct roles_change *c, size_t n);
/* The change slot may be free: runs the next plan step or queued join. */
void member_kick(struct leader *l);
/* A join of a hollow or worker node (it stays a raft spare) is being served for server id: its
 * record is not committed yet. */
bool member_joining_spare(const struct leader *l, uint64_t id);
/* Leadership gained or lost: queued joins are answered "retry", the plan is dropped. */
void member_leadership(struct leader *l);
void member_close(struct leader *l);

#endif
