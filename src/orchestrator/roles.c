#include "orchestrator/roles.h"

unsigned roles_target(size_t n)
{
	return n >= 5 ? 5 : n >= 3 ? 3 : 1;
}

const char *roles_role_name(enum roles_role r)
{
	switch (r) {
	case ROLES_VOTER: return "voter";
	case ROLES_STANDBY: return "standby";
	default: return "spare";
	}
}

static int planned(const struct roles_change *out, size_t k, uint64_t id)
{
	for (size_t i = 0; i < k; i++)
		if (out[i].id == id)
			return 1;
	return 0;
}

static void put(struct roles_change *out, size_t *k, const struct roles_server *s, enum roles_role to, const char *why)
{
	out[*k].id = s->id;
	out[*k].from = s->role;
	out[*k].to = to;
	out[*k].why = why;
	(*k)++;
}

size_t roles_plan(const struct roles_server *s, size_t n, unsigned target, uint64_t leader, struct roles_change *out)
{
	size_t k = 0;
	unsigned live_voters = 0, dead_voters = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i].role == ROLES_VOTER)
			s[i].live == ROLES_DOWN ? dead_voters++ : live_voters++;

	/* Promotions: only servers that joined completely and are heard from (a promotion
	 * waits for the server to catch up; one that does not answer would hold the single
	 * membership change slot for libraft's catch-up timeout). Standbys first: they have
	 * the log already. */
	unsigned promoted = 0, replaced = 0;
	const enum roles_role from[2] = {ROLES_STANDBY, ROLES_SPARE};
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n && live_voters + promoted < target; i++) {
			if (s[i].role != from[pass] || s[i].live != ROLES_UP || !s[i].record || s[i].keep_spare)
				continue;
			put(out, &k, &s[i], ROLES_VOTER, replaced < dead_voters ? "replacing a voter that is down" : "growing the voter set");
			promoted++;
			if (replaced < dead_voters)
				replaced++;
		}

	/* Dead voters leave the voter set once it is large enough without them: each one
	 * still counts in the quorum size while it stays. */
	unsigned voters = live_voters + promoted + dead_voters;
	for (size_t i = 0; i < n && voters > target; i++)
		if (s[i].role == ROLES_VOTER && s[i].live == ROLES_DOWN && s[i].id != leader) {
			put(out, &k, &s[i], ROLES_SPARE, "voter is down and the voter set is full without it");
			voters--;
		}

	/* Extra live voters (the server count dropped): the youngest, those not heard from
	 * first, never the leader. */
	unsigned live = live_voters + promoted;
	const enum roles_live order[2] = {ROLES_UNKNOWN, ROLES_UP};
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = n; i-- > 0 && live > target;)
			if (s[i].role == ROLES_VOTER && s[i].live == order[pass] && s[i].id != leader) {
				put(out, &k, &s[i], s[i].keep_spare ? ROLES_SPARE : ROLES_STANDBY, "more voters than needed");
				live--;
			}

	for (size_t i = 0; i < n; i++)
		if (s[i].role == ROLES_SPARE && s[i].live == ROLES_UP && !s[i].keep_spare && !planned(out, k, s[i].id))
			put(out, &k, &s[i], ROLES_STANDBY, "live node: a standby gets the log, ready for promotion");
	for (size_t i = 0; i < n; i++)
		if (s[i].role == ROLES_STANDBY && s[i].live == ROLES_DOWN && s[i].id != leader)
			put(out, &k, &s[i], ROLES_SPARE, "node is down: no log traffic to it until it is back");
		else if (s[i].role == ROLES_STANDBY && s[i].keep_spare && s[i].id != leader)
			put(out, &k, &s[i], ROLES_SPARE, "hollow node: it takes part in raft as a spare only");
	return k;
}

unsigned roles_shortage(const struct roles_server *s, size_t n, unsigned target, const struct roles_change *out, size_t k)
{
	unsigned have = 0;
	for (size_t i = 0; i < n; i++)
		have += s[i].role == ROLES_VOTER && s[i].live != ROLES_DOWN;
	for (size_t i = 0; i < k; i++)
		have += out[i].to == ROLES_VOTER && out[i].from != ROLES_VOTER;
	return have >= target ? 0 : target - have;
}
