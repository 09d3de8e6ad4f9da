/* The role planner (orchestrator/roles.h): whole-cluster plans for join storms, lost
 * voters, grace periods and shrinking clusters, plus a randomized check that a plan,
 * once applied, leaves nothing to do and never lowers the live voter count early. */
#include "unit.h"
#include "orchestrator/roles.h"

#define V ROLES_VOTER
#define S ROLES_STANDBY
#define P ROLES_SPARE
#define UP ROLES_UP
#define DOWN ROLES_DOWN
#define UNK ROLES_UNKNOWN

static size_t plan(const struct roles_server *s, size_t n, struct roles_change *out)
{
	return roles_plan(s, n, roles_target(n), s[0].id, out);
}

/* A wanted change: id, from, to. */
struct want {
	uint64_t id;
	enum roles_role from, to;
};

/* The plan for s[0..n) (s[0] leads, target from n) is exactly `w`, in that order. */
static void expect(const struct roles_server *s, size_t n, unsigned target, const struct want *w, size_t nw)
{
	struct roles_change out[64];
	size_t k = roles_plan(s, n, target, s[0].id, out);
	CHECK_EQ_INT(k, nw);
	for (size_t i = 0; i < nw; i++) {
		CHECK_EQ_INT(out[i].id, w[i].id);
		CHECK_STR(roles_role_name(out[i].from), roles_role_name(w[i].from));
		CHECK_STR(roles_role_name(out[i].to), roles_role_name(w[i].to));
		CHECK(out[i].why && out[i].why[0]);
	}
}

#define EXPECT(servers, ...) \
	do { \
		const struct want w_[] = {__VA_ARGS__}; \
		size_t n_ = sizeof(servers) / sizeof(servers[0]); \
		expect(servers, n_, roles_target(n_), w_, sizeof w_ / sizeof w_[0]); \
	} while (0)

UNIT(roles_target_counts)
{
	CHECK_EQ_INT(roles_target(1), 1);
	CHECK_EQ_INT(roles_target(2), 1);
	CHECK_EQ_INT(roles_target(3), 3);
	CHECK_EQ_INT(roles_target(4), 3);
	CHECK_EQ_INT(roles_target(5), 5);
	CHECK_EQ_INT(roles_target(500), 5);
}

/* 50 servers joined at once: the whole voter set is planned in one go, oldest first. */
UNIT(roles_join_storm_promotes_four_at_once)
{
	struct roles_server s[50];
	s[0] = (struct roles_server){1, V, UP, 1, 0};
	for (int i = 1; i < 50; i++)
		s[i] = (struct roles_server){(uint64_t)(100 + i), S, UP, 1, 0};
	EXPECT(s, {101, S, V}, {102, S, V}, {103, S, V}, {104, S, V});
}

/* Not promoted: a server whose record is not committed yet (join in flight), one not heard
 * from; a standby that is down goes spare. */
UNIT(roles_promotes_only_joined_and_heard)
{
	struct roles_server s[] = {
		{1, V, UP, 1, 0}, {2, S, UP, 0, 0}, {3, S, UNK, 1, 0}, {4, S, DOWN, 1, 0}, {5, S, UP, 1, 0}, {6, S, UP, 1, 0},
	};
	EXPECT(s, {5, S, V}, {6, S, V}, {4, S, P});
}

/* Live spares (the bug of issue 9: spares were never heard from) become voters when
 * voters are missing, standbys otherwise; a spare without a record still gets the log. */
UNIT(roles_live_spares_are_not_left_spares)
{
	struct roles_server s[] = {{1, V, UP, 1, 0}, {2, P, UP, 1, 0}, {3, P, UP, 1, 0}, {4, P, UP, 0, 0}, {5, P, DOWN, 1, 0}};
	EXPECT(s, {2, P, V}, {3, P, V}, {4, P, S});
}

UNIT(roles_standbys_preferred_over_spares)
{
	struct roles_server s[] = {{1, V, UP, 1, 0}, {2, P, UP, 1, 0}, {3, S, UP, 1, 0}, {4, S, UP, 1, 0}};
	EXPECT(s, {3, S, V}, {4, S, V}, {2, P, S});
}

/* Hollow nodes (keep_spare) are never promoted, and one made a standby goes back to
 * spare; the real servers get the voter set. */
UNIT(roles_hollow_nodes_stay_spares)
{
	struct roles_server s[] = {{1, V, UP, 1, 0}, {2, P, UP, 1, 1}, {3, S, UP, 1, 1}, {4, P, UP, 1, 0}, {5, P, UP, 0, 1}};
	EXPECT(s, {4, P, V}, {3, S, P});
}

/* 3 managers and 3 workers (keep_spare), 2 managers down: no worker is promoted, and the
 * shortage the leader reports is the 2 voters it cannot replace; with a manager standby
 * alive it is promoted and the shortage drops by one. */
UNIT(roles_workers_never_fill_a_shortage)
{
	struct roles_server s[] = {{1, V, UP, 1, 0}, {2, V, DOWN, 1, 0}, {3, V, DOWN, 1, 0},
				   {4, P, UP, 1, 1}, {5, P, UP, 1, 1}, {6, P, UP, 1, 1}};
	struct roles_change out[8];
	size_t k = roles_plan(s, 6, 3, 1, out);
	for (size_t i = 0; i < k; i++)
		CHECK(out[i].id < 4);
	CHECK_EQ_INT(roles_shortage(s, 6, 3, out, k), 2);
	struct roles_server t[] = {{1, V, UP, 1, 0}, {2, V, DOWN, 1, 0}, {3, V, UP, 1, 0}, {7, S, UP, 1, 0},
				   {4, P, UP, 1, 1}, {5, P, UP, 1, 1}};
	k = roles_plan(t, 6, 3, 1, out);
	CHECK(k >= 1);
	CHECK_EQ_INT(out[0].id, 7);
	CHECK_EQ_INT(roles_shortage(t, 6, 3, out, k), 0);
	struct roles_server u[] = {{1, V, UP, 1, 0}, {3, V, UP, 1, 0}, {4, P, UP, 1, 1}, {5, S, UP, 1, 1}};
	k = roles_plan(u, 4, 3, 1, out);
	for (size_t i = 0; i < k; i++)
		CHECK(out[i].to != V);
	CHECK_EQ_INT(roles_shortage(u, 4, 3, out, k), 1);
}

/* A dead voter is replaced by a live standby: promotion first, then the dead one leaves. */
UNIT(roles_dead_voter_replaced)
{
	struct roles_server s[] = {
		{1, V, UP, 1, 0}, {2, V, DOWN, 1, 0}, {3, V, UP, 1, 0}, {4, V, UP, 1, 0}, {5, V, UP, 1, 0}, {6, S, UP, 1, 0}, {7, S, UP, 1, 0},
	};
	EXPECT(s, {6, S, V}, {2, V, P});
	struct roles_change out[7];
	plan(s, 7, out);
	CHECK_STR(out[0].why, "replacing a voter that is down");
}

/* No replacement available: the dead voter stays (removing it would not add tolerance);
 * a standby only in its grace period is no replacement either. */
UNIT(roles_dead_voter_kept_without_replacement)
{
	struct roles_server s[] = {{1, V, UP, 1, 0}, {2, V, DOWN, 1, 0}, {3, V, UP, 1, 0}};
	struct roles_server t[] = {{1, V, UP, 1, 0}, {2, V, DOWN, 1, 0}, {3, V, UP, 1, 0}, {4, S, UNK, 1, 0}};
	struct roles_change out[4];
	CHECK_EQ_INT(plan(s, 3, out), 0);
	CHECK_EQ_INT(plan(t, 4, out), 0);
}

/* A new leader has not heard from anyone yet: nobody is replaced or demoted for that. */
UNIT(roles_grace_period_changes_nothing)
{
	struct roles_server s[] = {{7, V, UP, 1, 0}, {2, V, UNK, 1, 0}, {3, V, UNK, 1, 0}, {4, S, UNK, 1, 0}, {5, S, UNK, 1, 0}, {6, P, UNK, 1, 0}};
	struct roles_change out[6];
	CHECK_EQ_INT(roles_plan(s, 6, 5, 7, out), 0);
}

/* The cluster shrank: 2 voters go back to standby, the unheard one first, then the
 * youngest, never the leader. */
UNIT(roles_extra_voters_demoted)
{
	struct roles_server s[] = {{5, V, UP, 1, 0}, {1, V, UP, 1, 0}, {2, V, UNK, 1, 0}, {3, V, UP, 1, 0}, {9, V, UP, 1, 0}};
	const struct want w[] = {{2, V, S}, {9, V, S}};
	expect(s, 5, 3, w, 2);
}

UNIT(roles_two_nodes_one_voter)
{
	struct roles_server s[] = {{1, V, UP, 1, 0}, {2, P, UP, 1, 0}};
	struct roles_server one[] = {{1, V, UP, 1, 0}};
	struct roles_change out[1];
	EXPECT(s, {2, P, S});
	CHECK_EQ_INT(plan(one, 1, out), 0);
}

/* ---- randomized: apply the plan, check what it promised ------------------------------- */

static uint64_t rnd_state = 88172645463325252ull;

static unsigned rnd(unsigned n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (unsigned)(rnd_state % n);
}

static unsigned live_voters(const struct roles_server *s, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++)
		v += s[i].role == V && s[i].live != DOWN;
	return v;
}

UNIT(roles_random_plans_settle)
{
	struct roles_server s[64];
	struct roles_change out[64];
	for (int round = 0; round < 20000; round++) {
		size_t n = 1 + rnd(64);
		for (size_t i = 0; i < n; i++) {
			s[i].id = 1000 + i;
			s[i].role = (enum roles_role)rnd(3);
			s[i].live = (enum roles_live)rnd(3);
			s[i].record = rnd(5) != 0;
			s[i].keep_spare = rnd(8) == 0;
		}
		size_t li = rnd((unsigned)n);
		s[li].role = V; /* the leader is a live voter */
		s[li].live = UP;
		s[li].record = 1;
		s[li].keep_spare = 0;
		unsigned target = roles_target(n), eligible = 0, before = live_voters(s, n);
		for (size_t i = 0; i < n; i++)
			eligible += s[i].role != V && s[i].live == UP && s[i].record && !s[i].keep_spare;
		size_t k = roles_plan(s, n, target, s[li].id, out);
		CHECK(k <= n);
		/* apply in order: each change starts from the role it was planned from, touches a
		 * server once, never the leader; live voters never drop while promotions remain */
		int promoting = 1;
		for (size_t j = 0; j < k; j++) {
			size_t i = (size_t)(out[j].id - 1000);
			CHECK(i < n && out[j].id != s[li].id);
			CHECK(out[j].from == s[i].role && out[j].to != s[i].role);
			for (size_t m = 0; m < j; m++)
				CHECK(out[m].id != out[j].id);
			unsigned lv = live_voters(s, n);
			if (out[j].to == V)
				CHECK(promoting);
			else
				promoting = 0;
			s[i].role = out[j].to;
			if (promoting)
				CHECK(live_voters(s, n) == lv + 1);
		}
		unsigned after = live_voters(s, n);
		unsigned want = before >= target ? target : (before + eligible < target ? before + eligible : target);
		CHECK_EQ_INT(after, want);
		for (size_t i = 0; i < n; i++) {
			CHECK(!(s[i].role == P && s[i].live == UP && !s[i].keep_spare)); /* no live node left a spare */
			CHECK(!(s[i].role == S && s[i].keep_spare));      /* hollow nodes stay spares */
			CHECK(!(s[i].role == S && s[i].live == DOWN));    /* no log traffic to dead nodes */
		}
		CHECK_EQ_INT(roles_plan(s, n, target, s[li].id, out), 0); /* settled */
	}
}
