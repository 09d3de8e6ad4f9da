/* Raft roles for the whole cluster at once: from each server's role, liveness and whether
 * its node record is committed, the ordered list of role changes that keeps 3 voters once
 * there are 3 servers and 5 once there are 5, every other live server a standby (it gets
 * the log, so promoting it is instant) and down non-voters spares (no traffic to them).
 * Pure: no I/O, no clock. The leader runs the plan one libraft change after the other
 * (node/member.c); a change that no longer applies ends the plan and the next tick plans
 * again from the new configuration. */
#ifndef ORCH_ROLES_H
#define ORCH_ROLES_H
#include <stddef.h>
#include <stdint.h>

enum roles_role { ROLES_SPARE, ROLES_STANDBY, ROLES_VOTER };

enum roles_live {
	ROLES_DOWN,    /* no heartbeat within the failure timeout */
	ROLES_UNKNOWN, /* not heard yet, within a new leader's grace period */
	ROLES_UP,      /* heartbeated within the failure timeout */
};

struct roles_server {
	uint64_t id;
	enum roles_role role;
	enum roles_live live;
	int record; /* its node record is committed (it joined completely) */
	/* a hollow node (orch debug hollow): it stays a spare. Every voter and standby costs
	 * the leader a replication stream, and a hollow node needs none: heartbeats and its
	 * assignments go over its link and watch whatever its role. */
	int keep_spare;
};

struct roles_change {
	uint64_t id;
	enum roles_role from, to;
	const char *why; /* a static string, for the log */
};

/* Voters wanted for n servers: 5 from 5, 3 from 3, else 1. */
unsigned roles_target(size_t n);

/* Plans the changes for servers s[0..n) (configuration order: oldest first) with `target`
 * voters; `leader` is never demoted. Writes at most n changes to out (sized n) and returns
 * how many, in the order they must run: promotions first (the number of live voters never
 * drops on the way), then dead voters made spares, extra voters made standbys, live spares
 * made standbys, dead standbys made spares. Servers marked keep_spare are never promoted; one
 * that is a standby is made a spare. */
size_t roles_plan(const struct roles_server *s, size_t n, unsigned target, uint64_t leader, struct roles_change *out);

/* Voters still missing once plan out[0..k) has run: target minus the live voters and the
 * promotions planned. Non-zero when no server may be promoted (the rest are workers,
 * hollow, down or not joined yet): the leader reports it rather than promote a worker. */
unsigned roles_shortage(const struct roles_server *s, size_t n, unsigned target, const struct roles_change *out, size_t k);

const char *roles_role_name(enum roles_role r);

#endif
