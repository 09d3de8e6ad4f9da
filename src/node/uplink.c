#include "node/uplink.h"
#include "util/err.h"
#include <stdio.h>
#include <string.h>

void uplink_init(struct uplink *u, uint64_t self_id, const char *self_addr, const char *seed)
{
	memset(u, 0, sizeof *u);
	u->self_id = self_id;
	snprintf(u->self_addr, sizeof u->self_addr, "%s", self_addr ? self_addr : "");
	snprintf(u->seed, sizeof u->seed, "%s", seed ? seed : "");
}

bool uplink_raft_names(const struct uplink *u, struct consensus *cons, uint64_t *id, const char **addr)
{
	raft_id lid = 0;
	const char *laddr = NULL;
	if (!cons_leader(cons, &lid, &laddr) && !(lid == u->stale && cons_term(cons) == u->stale_term)) {
		*id = lid;
		*addr = laddr;
		return true;
	}
	*id = 0;
	*addr = NULL;
	return false;
}

enum uplink_act uplink_update(struct uplink *u, struct consensus *cons, bool stopping, bool open, uint64_t now)
{
	uint64_t lid = 0;
	const char *laddr = NULL;
	if (!stopping) {
		if (uplink_raft_names(u, cons, &lid, &laddr))
			u->hint[0] = 0; /* raft knows: it has the last word */
		else if (u->hint[0]) {
			lid = u->hint_id;
			laddr = u->hint;
		}
	}
	if (stopping || !lid || lid == u->self_id) {
		u->leader = 0;
		return open ? UPLINK_CLOSE : UPLINK_KEEP;
	}
	if (open && u->leader == lid)
		return UPLINK_KEEP;
	/* a link that closed by itself waits a little before calling the same leader again */
	if (!open && now < u->retry_at && u->leader == lid)
		return UPLINK_KEEP;
	u->leader = lid;
	snprintf(u->addr, sizeof u->addr, "%s", laddr);
	return UPLINK_CONNECT;
}

void uplink_closed(struct uplink *u, bool on_purpose, uint64_t now)
{
	u->retry_at = now + UPLINK_RETRY_MS;
	if (!on_purpose)
		u->hint[0] = 0; /* a named leader we cannot reach (or not the leader): ask again */
}

bool uplink_hb_due(struct uplink *u, bool open, uint64_t now)
{
	if (!open || now - u->last_hb < UPLINK_HB_MS)
		return false;
	u->last_hb = now;
	return true;
}

enum uplink_reply uplink_hb_reply(struct uplink *u, struct consensus *cons, int64_t rc)
{
	if (rc == E_NOTFOUND)
		return UPLINK_REMOVED;
	if (rc != E_NOLEADER)
		return UPLINK_OK;
	/* raft's leader said no: ignored for this term (a peer's named one is just dropped) */
	if (!u->hint[0]) {
		u->stale = u->leader;
		u->stale_term = cons_term(cons);
	}
	return UPLINK_NOT_LEADER;
}

void uplink_voters_clear(struct uplink *u)
{
	u->nvoters = 0;
}

void uplink_voter_add(struct uplink *u, const char *addr, size_t len)
{
	if (u->nvoters < UPLINK_VOTERS && len < sizeof u->voters[0])
		snprintf(u->voters[u->nvoters++], sizeof u->voters[0], "%.*s", (int)len, addr);
}

size_t uplink_voters_for(struct consensus *cons, uint64_t asker, const char *addrs[UPLINK_VOTERS])
{
	enum cons_role role = cons_role_of(cons, asker);
	if (role == ROLE_VOTER || role == ROLE_STANDBY)
		return 0;
	size_t nv = 0;
	for (unsigned i = 0; i < cons_nservers(cons) && nv < UPLINK_VOTERS; i++) {
		raft_id id;
		const char *addr;
		cons_server(cons, i, &id, &addr, &role);
		if (role == ROLE_VOTER)
			addrs[nv++] = addr;
	}
	return nv;
}

/* The i-th address to ask, in the order uplink_whois_peer gives; NULL when entry i is not
 * one to ask. */
static const char *peer_addr(const struct uplink *u, struct consensus *cons, const struct store *s, size_t i)
{
	const char *addr = NULL;
	size_t nconf = cons_nservers(cons);
	raft_id id;
	enum cons_role role;
	if (i < u->nvoters)
		addr = u->voters[i];
	else if ((i -= u->nvoters) < nconf) {
		cons_server(cons, (unsigned)i, &id, &addr, &role);
		if (role != ROLE_VOTER)
			return NULL;
	} else if (i == nconf)
		addr = u->seed[0] ? u->seed : NULL;
	else if (i < 2 * nconf + 1) {
		cons_server(cons, (unsigned)(i - nconf - 1), &id, &addr, &role);
		if (role == ROLE_VOTER)
			return NULL;
	} else
		addr = ((const struct node *)s->nodes.items[i - 2 * nconf - 1])->addr;
	return addr && strcmp(addr, u->self_addr) ? addr : NULL;
}

const char *uplink_whois_peer(struct uplink *u, struct consensus *cons, const struct store *s, bool busy,
			      uint64_t now)
{
	uint64_t lid;
	const char *laddr;
	if (uplink_raft_names(u, cons, &lid, &laddr)) {
		u->leaderless_since = 0;
		return NULL;
	}
	if (!u->leaderless_since)
		u->leaderless_since = now;
	if (busy || now - u->leaderless_since < UPLINK_WHOIS_AFTER_MS)
		return NULL;
	size_t total = u->nvoters + 2 * (size_t)cons_nservers(cons) + 1 + s->nodes.n;
	for (size_t tries = 0; tries < total; tries++) {
		const char *addr = peer_addr(u, cons, s, u->whois_next++ % total);
		if (addr)
			return addr;
	}
	return NULL;
}

int uplink_whois_answer(struct consensus *cons, const struct store *s, uint64_t asker, uint64_t *leader_id,
			const char **leader_addr, bool *member)
{
	raft_id lid;
	if (cons_leader(cons, &lid, leader_addr))
		return E_NOLEADER;
	*leader_id = lid;
	*member = cons_role_of(cons, asker) != ROLE_NONE || table_get_u64(&s->nodes, asker);
	return 0;
}

enum uplink_reply uplink_whois_reply(struct uplink *u, struct consensus *cons, int64_t rc, bool member,
				     uint64_t leader_id, const char *leader_addr, uint64_t now)
{
	uint64_t rid;
	const char *raddr;
	/* A peer may not have applied our addition yet: "not a member" is believed only
	 * after a long time without a leader (a removed voter stays a candidate for good). */
	if (rc == 0 && !member && u->leaderless_since && now - u->leaderless_since >= UPLINK_REMOVED_AFTER_MS)
		return UPLINK_REMOVED;
	if (rc == 0 && leader_id && leader_id != u->self_id && leader_addr && leader_addr[0] &&
	    !uplink_raft_names(u, cons, &rid, &raddr)) {
		u->hint_id = leader_id;
		snprintf(u->hint, sizeof u->hint, "%s", leader_addr);
		u->retry_at = 0;
		return UPLINK_LEADER;
	}
	return UPLINK_OK;
}
