/* The rules of a node's link to its leader, as a value: which leader to talk to, when to
 * ask a peer who leads ("whois") and which peer, when a leader raft names is ignored for a
 * term, when to heartbeat, and what a heartbeat or whois answer means. No I/O and no clock
 * reads (the time comes in): node/link.c applies the decisions on real connections and the
 * simulation (test/sim) on simulated ones, so both run the same rules.
 *
 * The leader is the one raft names, or, when raft names none (a spare receives nothing
 * from the leader; a follower may not have heard from it yet), the one a peer names when
 * asked. A standby or spare cut off from the cluster keeps naming its old leader (it never
 * campaigns and nobody sends it a newer term): once that one answers "not the leader",
 * raft's word is ignored for the rest of that term and peers are asked instead. */
#ifndef ORCH_UPLINK_H
#define ORCH_UPLINK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "raft/consensus.h"
#include "state/store.h"

#define UPLINK_HB_MS 500          /* heartbeat period on the link */
#define UPLINK_RETRY_MS 200       /* a closed link reconnects to the same leader after this */
#define UPLINK_WHOIS_AFTER_MS 500 /* leaderless for a heartbeat period: ask, one peer per tick */
#define UPLINK_REMOVED_AFTER_MS 10000 /* leaderless this long: believe a peer saying we were removed */
#define UPLINK_VOTERS 7           /* voters a heartbeat reply names, at most */

struct uplink {
	uint64_t self_id;
	char self_addr[64];
	char seed[64];           /* the node that accepted our join ("" if none) */
	uint64_t leader;         /* the leader the link talks (or last talked) to */
	char addr[64];           /* its address */
	uint64_t last_hb;
	uint64_t retry_at;
	uint64_t leaderless_since;
	size_t whois_next;
	uint64_t hint_id;        /* the leader a peer named, used while raft names none */
	char hint[64];
	uint64_t stale;          /* the leader raft names that said it does not lead ... */
	uint64_t stale_term;     /* ... in this term */
	/* the voters the leader named in its last heartbeat reply (to a spare, which has no
	 * configuration of its own to ask) */
	char voters[UPLINK_VOTERS][64];
	size_t nvoters;
};

void uplink_init(struct uplink *u, uint64_t self_id, const char *self_addr, const char *seed);

/* The leader raft names, unless that one said it does not lead (in the same term). */
bool uplink_raft_names(const struct uplink *u, struct consensus *cons, uint64_t *id, const char **addr);

enum uplink_act {
	UPLINK_KEEP,    /* nothing to do */
	UPLINK_CLOSE,   /* close the link's connection (on purpose): no leader to talk to */
	UPLINK_CONNECT, /* close the link's connection if open (on purpose), connect to u->addr */
};
/* What to do with the link connection now. open: one is open or opening (to u->leader). */
enum uplink_act uplink_update(struct uplink *u, struct consensus *cons, bool stopping, bool open, uint64_t now);
/* The link's connection closed: on_purpose when this node closed it for a new leader (the
 * leader a peer named stays), otherwise the leader is asked for again. */
void uplink_closed(struct uplink *u, bool on_purpose, uint64_t now);

/* A heartbeat is due on the open link (then it counts as sent). */
bool uplink_hb_due(struct uplink *u, bool open, uint64_t now);

enum uplink_reply {
	UPLINK_OK,         /* nothing to do */
	UPLINK_REMOVED,    /* this node is no longer a member: it stops */
	UPLINK_NOT_LEADER, /* heartbeat: the link's leader does not lead: close the link */
	UPLINK_LEADER,     /* whois: a peer named the leader (u->hint): update the link */
};
/* A heartbeat's answer (rc from the leader's reply). */
enum uplink_reply uplink_hb_reply(struct uplink *u, struct consensus *cons, int64_t rc);

/* The voters a heartbeat reply named: the list starts again (clear), then one address of
 * len bytes per voter (one too long is skipped). */
void uplink_voters_clear(struct uplink *u);
void uplink_voter_add(struct uplink *u, const char *addr, size_t len);
/* What the leader tells node `asker` in a heartbeat reply: the voters' addresses (into
 * addrs, at most UPLINK_VOTERS) when it is neither a voter nor a standby (a spare hears
 * nothing from raft: these are whom it asks who leads once this leader is gone); the
 * count, 0 for nothing to tell. */
size_t uplink_voters_for(struct consensus *cons, uint64_t asker, const char *addrs[UPLINK_VOTERS]);

/* The peer to ask who leads now, or NULL: raft names none (or an ignored one) for
 * UPLINK_WHOIS_AFTER_MS, and neither the link nor an earlier question is open. Peers are
 * taken round robin, one per call: the voters the last leader named, the voters of this
 * node's raft configuration (a voter always knows the leader), the node that accepted the
 * join, the other servers, the node records. Call on every tick: it also tracks how long
 * the node has been leaderless. */
const char *uplink_whois_peer(struct uplink *u, struct consensus *cons, const struct store *s, bool busy,
			      uint64_t now);
/* The answer to a peer asking who leads (asker: its node id): 0 with the leader raft
 * names and whether the asker is a member (in the raft configuration or the node records),
 * or E_NOLEADER when this node knows no leader either. */
int uplink_whois_answer(struct consensus *cons, const struct store *s, uint64_t asker, uint64_t *leader_id,
			const char **leader_addr, bool *member);
/* A whois answer: rc, whether the asker is a member, the leader the peer names. */
enum uplink_reply uplink_whois_reply(struct uplink *u, struct consensus *cons, int64_t rc, bool member,
				     uint64_t leader_id, const char *leader_addr, uint64_t now);

#endif
