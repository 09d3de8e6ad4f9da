/* Disk space: a node watches the filesystem of its data dir and keeps libraft away from
 * ENOSPC (libraft 0.15 crashes on a full disk, PLATFORM.md). Below the node's floor
 * (--disk-floor) it reports a disk alarm into its record in the replicated state (like
 * etcd's NOSPACE): while any node is in alarm the leader refuses the writes that make
 * the state or the log grow (deploy, scale up, kv set, secrets, users, image records,
 * joins) and lets deletions and the controllers' own bookkeeping through; the scheduler
 * places nothing on a node in alarm and the node loads no image. The alarm clears once
 * the free space is back above the floor plus a quarter (hysteresis). Below half the
 * floor (the hard floor) a leading node lets no entry in at all and hands leadership to
 * another voter, and a follower stops hearing the leader until its alarm clears (it then
 * catches up): libraft never appends on a node short of space. */
#ifndef ORCH_DISKWATCH_H
#define ORCH_DISKWATCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "state/store.h"

struct daemon;

/* Two of libraft's preallocated 8 MB open segments, a snapshot of a modest state and
 * room for what the node's other parts write meanwhile. */
#define DISKWATCH_FLOOR_DEFAULT (64ull << 20)
#define DISKWATCH_FLOOR_MIN (16ull << 20)

struct diskwatch {
	uint64_t floor;       /* bytes (0: DISKWATCH_FLOOR_DEFAULT) */
	uint64_t free;        /* bytes available to the node, at the last look */
	uint64_t checked_at;  /* monotonic ms of the last look */
	uint64_t sent_at;     /* monotonic ms of the last report submitted */
	uint64_t handed_at;   /* monotonic ms of the last leadership hand-over asked */
	bool looked;          /* free holds a figure */
	bool low;             /* in alarm, by this node's own look (with hysteresis) */
	bool inflight;        /* a report is on its way */
	bool deaf;            /* a follower below the hard floor: raft streams refused */
	bool logged, logged_low; /* the last state the log was told of */
	bool warned_fail;     /* a failed report was logged (once until one succeeds) */
};

void diskwatch_tick(struct daemon *d);
/* Low on space, with hysteresis: below the floor, and until free is back above the
 * floor plus a quarter. */
bool diskwatch_low(bool was, uint64_t free, uint64_t floor);
/* Whether a disk alarm refuses an entry of type t with this body (s: the state it would
 * apply to, for a scale's current count). */
bool diskwatch_refuses(const struct store *s, enum cmd t, const msgpack_object *body);
/* Whether the leader lets this entry in: 0, or E_NOSPACE with the message when a node is
 * in alarm and the entry is a write the alarm refuses. */
int diskwatch_admit(struct daemon *d, const void *entry, size_t len, char *err);
/* The sentence saying that node nd is in disk alarm and what that refuses. */
void diskwatch_alarm_text(const struct node *nd, char *out, size_t n);
/* 0, or E_NOSPACE with the message when this node itself is low on disk space. */
int diskwatch_local(struct daemon *d, const char *what, char *err);

#endif
