/* The leader's controllers hosted without a daemon: three consensus values over libraft's
 * in-memory fixture (no libuv, no disk), one leader value on the fixture's virtual clock.
 * What a simulation of many nodes builds on. */
#include "unit.h"
#include "node/leader.h"
#include "raft/consensus.h"
#include "util/mem.h"
#include <raft/fixture.h>

#define N 3

struct sim {
	struct raft_fixture f;
	struct store store[N];
	struct consensus cons[N];
	struct identity ident;
	struct clock clock;
	struct leader_host host;
	struct leader leader;
	unsigned leader_i; /* the index the leader value runs on */
	uint64_t seq;
	int ready;
	int submitted, applied;
};

static uint64_t v_mono(void *data)
{
	struct sim *s = data;
	return raft_fixture_time(&s->f);
}

static uint64_t v_wall(void *data)
{
	struct sim *s = data;
	return 1700000000000ull + raft_fixture_time(&s->f);
}

struct sub {
	struct sim *s;
	leader_submit_cb cb;
	void *data;
};

static void sub_applied(void *data, int status, const struct apply_res *res)
{
	struct sub *b = data;
	b->s->applied++;
	if (b->cb)
		b->cb(b->data, status ? status : res->rc, res);
	free(b);
}

static int h_submit(void *data, enum cmd type, const void *body, size_t len, leader_submit_cb cb, void *cb_data,
		    char *err)
{
	struct sim *s = data;
	size_t n;
	struct req_id rid = {s->ident.id, 1, ++s->seq};
	void *e = cmd_build(type, &rid, body, len, &n);
	struct sub *b = xcalloc(1, sizeof *b);
	b->s = s;
	b->cb = cb;
	b->data = cb_data;
	int rc = cons_apply(&s->cons[s->leader_i], e, n, sub_applied, b, err);
	free(e);
	if (rc)
		free(b);
	else
		s->submitted++;
	return rc;
}

static unsigned h_nservers(void *data)
{
	struct sim *s = data;
	return cons_nservers(&s->cons[s->leader_i]);
}

static void h_server(void *data, unsigned i, uint64_t *id, enum cons_role *role)
{
	struct sim *s = data;
	raft_id rid;
	const char *addr;
	cons_server(&s->cons[s->leader_i], i, &rid, &addr, role);
	*id = rid;
}

static int h_assign(void *data, uint64_t id, enum cons_role role, cons_change_cb cb, void *cb_data, char *err)
{
	struct sim *s = data;
	return cons_assign(&s->cons[s->leader_i], id, role, cb, cb_data, err);
}

static bool h_is_leader(void *data)
{
	struct sim *s = data;
	return cons_is_leader(&s->cons[s->leader_i]);
}

static uint64_t h_term(void *data)
{
	struct sim *s = data;
	return cons_term(&s->cons[s->leader_i]);
}

static int h_barrier(void *data, cons_change_cb cb, void *cb_data, char *err)
{
	struct sim *s = data;
	return cons_barrier(&s->cons[s->leader_i], cb, cb_data, err);
}

static uint64_t h_commit_index(void *data)
{
	struct sim *s = data;
	return cons_commit_index(&s->cons[s->leader_i]);
}

static void h_ready(void *data, const char *msg)
{
	struct sim *s = data;
	CHECK_STR(msg, "ok");
	s->ready++;
}

/* Runs the fixture for ms of virtual time, stepping every consensus after each event and
 * the leader's controllers every 200 ms, as a node's loop and tick timer would. */
static void run(struct sim *s, uint64_t ms)
{
	uint64_t end = raft_fixture_time(&s->f) + ms, next_tick = raft_fixture_time(&s->f);
	while (raft_fixture_time(&s->f) < end) {
		raft_fixture_step(&s->f);
		for (unsigned i = 0; i < N; i++)
			cons_step(&s->cons[i]);
		if (raft_fixture_time(&s->f) >= next_tick) {
			next_tick += 200;
			if (cons_is_leader(&s->cons[s->leader_i]))
				leader_tick(&s->leader);
		}
	}
}

static void sim_start(struct sim *s)
{
	memset(s, 0, sizeof *s);
	CHECK_EQ_INT(raft_fixture_initialize(&s->f), 0);
	for (unsigned i = 0; i < N; i++) {
		char addr[16];
		snprintf(addr, sizeof addr, "%u", i + 1);
		store_init(&s->store[i]);
		cons_init_fsm(&s->cons[i], i + 1, addr, &s->store[i]);
		CHECK_EQ_INT(raft_fixture_grow(&s->f, cons_fsm(&s->cons[i])), 0);
		cons_attach(&s->cons[i], raft_fixture_get(&s->f, i));
	}
	struct raft_configuration conf;
	CHECK_EQ_INT(raft_fixture_configuration(&s->f, N, &conf), 0);
	CHECK_EQ_INT(raft_fixture_bootstrap(&s->f, &conf), 0);
	raft_configuration_close(&conf);
	CHECK_EQ_INT(raft_fixture_start(&s->f), 0);
	CHECK(raft_fixture_step_until_has_leader(&s->f, 10000));
	s->leader_i = raft_fixture_leader_index(&s->f);
	for (unsigned i = 0; i < N; i++)
		cons_step(&s->cons[i]);
	CHECK(cons_is_leader(&s->cons[s->leader_i]));

	s->ident.id = s->leader_i + 1;
	snprintf(s->ident.name, sizeof s->ident.name, "n%u", s->leader_i + 1);
	snprintf(s->ident.advertise, sizeof s->ident.advertise, "%u", s->leader_i + 1);
	s->clock = (struct clock){.mono = v_mono, .wall = v_wall, .data = s};
	s->host = (struct leader_host){
		.data = s,
		.clock = &s->clock,
		.ident = &s->ident,
		.store = &s->store[s->leader_i],
		.submit = h_submit,
		.nservers = h_nservers,
		.server = h_server,
		.assign = h_assign,
		.is_leader = h_is_leader,
		.term = h_term,
		.barrier = h_barrier,
		.commit_index = h_commit_index,
		.ready = h_ready,
	};
	struct leader_config cfg = {.bootstrap = true, .failure_timeout_ms = 3000, .cpus_milli = 1000, .memory = 1 << 30};
	leader_init(&s->leader, &s->host, &cfg);
	leader_start(&s->leader);
}

static void sim_stop(struct sim *s)
{
	for (unsigned i = 0; i < N; i++)
		cons_close(&s->cons[i], NULL, NULL);
	raft_fixture_close(&s->f);
	for (unsigned i = 0; i < N; i++)
		store_free(&s->store[i]);
	leader_free(&s->leader);
}

UNIT(leader_value_commits_records_on_a_virtual_clock)
{
	static struct sim s;
	sim_start(&s);
	run(&s, 2000);
	/* the cluster record and this node's record, replicated to every store */
	CHECK(s.ready >= 1); /* and again on every tick: the host makes it idempotent */
	CHECK(s.submitted >= 2);
	CHECK_EQ_INT(s.applied, s.submitted);
	char h0[65], h[65];
	store_hash(&s.store[0], h0);
	for (unsigned i = 0; i < N; i++) {
		CHECK(s.store[i].has_cluster);
		CHECK_EQ_INT(s.store[i].cluster.failure_timeout_ms, 3000);
		const struct node *n = table_get_u64(&s.store[i].nodes, s.ident.id);
		CHECK(n != NULL);
		CHECK_STR(n->name, s.ident.name);
		/* timestamps come from the virtual wall clock */
		CHECK(n->joined_at >= 1700000000000ull && n->joined_at < 1700000000000ull + 60000);
		store_hash(&s.store[i], h);
		CHECK_STR(h, h0);
	}
	sim_stop(&s);
}

UNIT(leader_value_liveness_follows_the_virtual_clock)
{
	static struct sim s;
	sim_start(&s);
	uint64_t other = (s.leader_i + 1) % N + 1;
	/* the grace period of a new leadership: every node counts as alive */
	CHECK(leader_alive(&s.leader, other));
	run(&s, 3500);
	CHECK(!leader_alive(&s.leader, other));
	CHECK(leader_alive(&s.leader, s.ident.id));
	leader_saw(&s.leader, other);
	CHECK(leader_alive(&s.leader, other));
	run(&s, 3500);
	CHECK(!leader_alive(&s.leader, other));
	/* a new leadership starts a new grace period */
	leader_start(&s.leader);
	CHECK(leader_alive(&s.leader, other));
	sim_stop(&s);
}

static unsigned nodes_in(const struct store *st, enum node_state want)
{
	unsigned n = 0;
	TABLE_FOREACH(&st->nodes, const struct node, nd)
		n += nd->state == want;
	return n;
}

static unsigned events_of(const struct store *st, const char *kind)
{
	unsigned n = 0;
	TABLE_FOREACH(&st->events, const struct event, e)
		n += e->kind && !strcmp(e->kind, kind);
	return n;
}

/* After a partition heals, every node it cut off is ready again in the same tick: one
 * command for all the transitions of a tick, one event per node. */
UNIT(leader_value_liveness_commits_a_tick_at_once)
{
	static struct sim s;
	sim_start(&s);
	run(&s, 1000);
	enum { MORE = 20 };
	for (unsigned i = 0; i < MORE; i++) {
		struct mpw w;
		char name[16];
		snprintf(name, sizeof name, "m%u", i);
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_ku64(&w, "id", 100 + i);
		mpw_kstr(&w, "name", name);
		mpw_kstr(&w, "addr", "127.0.0.1:1");
		mpw_map_end(&w);
		char err[ERR_LEN];
		CHECK_EQ_INT(h_submit(&s, CMD_NODE_ADD, w.sb.data, w.sb.size, NULL, NULL, err), 0);
		mpw_free(&w);
	}
	const struct store *st = &s.store[s.leader_i];
	run(&s, 200);
	CHECK_EQ_INT(nodes_in(st, NS_READY), MORE + 1);
	/* nobody heartbeats: past the failure timeout, all are down after one tick */
	while (!nodes_in(st, NS_DOWN))
		run(&s, 50);
	run(&s, 50);
	CHECK_EQ_INT(nodes_in(st, NS_DOWN), MORE);
	CHECK_EQ_INT(events_of(st, "node_down"), MORE);
	uint64_t at = ((const struct node *)table_get_u64(&st->nodes, 100))->state_at;
	TABLE_FOREACH(&st->nodes, const struct node, nd)
		if (nd->id >= 100)
			CHECK_EQ_INT(nd->state_at, at);
	/* the partition heals: all heartbeat again, all ready within a tick */
	for (unsigned i = 0; i < MORE; i++)
		leader_saw(&s.leader, 100 + i);
	run(&s, 250);
	CHECK_EQ_INT(nodes_in(st, NS_READY), MORE + 1);
	CHECK_EQ_INT(events_of(st, "node_ready"), MORE);
	/* every replica agrees */
	char h0[65], h[65];
	store_hash(&s.store[0], h0);
	for (unsigned i = 1; i < N; i++) {
		store_hash(&s.store[i], h);
		CHECK_STR(h, h0);
	}
	sim_stop(&s);
}

static void noop_applied(void *data, int status, const struct apply_res *res)
{
	(void)data;
	(void)status;
	(void)res;
}

/* An entry of a newer orch reaches the log (a newer leader put it there): no replica skips
 * it; each stops applying at it and says so, the entries after it wait, nothing changes
 * (orch(8) UPGRADES). */
UNIT(leader_value_entry_of_a_newer_orch_halts_every_replica)
{
	static struct sim s;
	sim_start(&s);
	run(&s, 2000);
	struct consensus *lc = &s.cons[s.leader_i];
	uint64_t rev = s.store[0].revision;
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "t", "service.teleport");
	mpw_ku64(&w, "v", 3);
	mpw_ku64(&w, "o", 9);
	mpw_ku64(&w, "n", 1);
	mpw_ku64(&w, "s", 1);
	mpw_key(&w, "b");
	mpw_map_begin(&w);
	mpw_map_end(&w);
	mpw_map_end(&w);
	size_t n;
	void *e = cmd_frame(w.sb.data, w.sb.size, &n);
	mpw_free(&w);
	char err[ERR_LEN];
	CHECK_EQ_INT(cons_apply(lc, e, n, noop_applied, NULL, err), 0);
	free(e);
	run(&s, 300);
	uint64_t at = lc->halted_at;
	CHECK(at > 0);
	/* a known entry after it is committed, not applied */
	struct mpw kv;
	mpw_init(&kv);
	mpw_map_begin(&kv);
	mpw_kstr(&kv, "key", "k");
	mpw_kstr(&kv, "value", "v");
	mpw_map_end(&kv);
	struct req_id rid = {s.ident.id, 1, ++s.seq};
	e = cmd_build(CMD_KV_SET, &rid, kv.sb.data, kv.sb.size, &n);
	mpw_free(&kv);
	CHECK_EQ_INT(cons_apply(lc, e, n, noop_applied, NULL, err), 0);
	free(e);
	run(&s, 1000);
	for (unsigned i = 0; i < N; i++) {
		CHECK(cons_halted(&s.cons[i]) != NULL);
		CHECK(strstr(cons_halted(&s.cons[i]), "service.teleport") != NULL);
		CHECK_EQ_INT(s.cons[i].halted_at, at);
		CHECK_EQ_INT(cons_applied_index(&s.cons[i]), at - 1);
		/* libraft 0.15 takes a follower whose apply fails out of raft (unavailable: no votes,
		 * no entries) until it restarts; the leader stays, applying nothing more */
		if (i != s.leader_i)
			CHECK_STR(cons_state_name(&s.cons[i]), "unavailable");
		CHECK_EQ_INT(s.store[i].revision, rev);
		CHECK(table_get_str(&s.store[i].kv, "k") == NULL);
	}
	sim_stop(&s);
}

/* What the leader sends again (check_behind): a fake raft view of one follower. */
static uint64_t fake_match, reprobes, reprobe_from;

static uint64_t f_match_index(void *data, uint64_t id)
{
	(void)data, (void)id;
	return fake_match;
}

static uint64_t f_commit_index(void *data)
{
	(void)data;
	return 1u << 30;
}

static void f_reprobe(void *data, uint64_t id, uint64_t from)
{
	(void)data, (void)id;
	reprobes++;
	reprobe_from = from;
}

/* A follower that is a few entries short at every heartbeat but applies on (steady writes)
 * is left alone; one whose applied index stands still while raft believes it holds more is
 * sent the log again from where it stopped, once per LEADER_STUCK_MS. */
UNIT(leader_value_resends_only_to_a_stuck_follower)
{
	static struct sim s;
	sim_start(&s);
	s.host.match_index = f_match_index;
	s.host.commit_index = f_commit_index;
	s.host.reprobe = f_reprobe;
	reprobes = 0;
	uint64_t other = (s.leader_i + 1) % N + 1, applied = 100;
	char err[ERR_LEN];
	for (int k = 0; k < 30; k++) { /* 15 s of heartbeats, always 3 short, always moving */
		applied += 7;
		fake_match = applied + 3;
		CHECK_EQ_INT(leader_heartbeat(&s.leader, other, applied, err), 0);
		run(&s, 500);
	}
	CHECK_EQ_INT(reprobes, 0);
	for (int k = 0; k < 14; k++) { /* 7 s standing still one short */
		fake_match = applied + 1;
		CHECK_EQ_INT(leader_heartbeat(&s.leader, other, applied, err), 0);
		run(&s, 500);
	}
	CHECK_EQ_INT(reprobes, 2);
	CHECK_EQ_INT(reprobe_from, applied);
	sim_stop(&s);
}
