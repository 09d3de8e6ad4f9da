/* The simulation's raft_io checked on its own, with libraft and the real state machine
 * but no node code: 60 raft servers (5 voters, the rest standbys) grown one change at a
 * time from a bootstrapped first server, a stream of writes with frequent snapshots, a
 * voter killed long enough to need an InstallSnapshot after its restart from its disk, a
 * partitioned minority, random message loss. At the end every server has applied the
 * same entries and holds the same state hash. */
#include "scenario.h"
#include "simio.h"
#include "state/store.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RN 60

struct rnode {
	struct raft raft;
	struct simio io;
	struct raft_fsm fsm;
	struct store store;
	struct simdisk disk;
	uint32_t life;
	bool up, closing;
};

struct rcluster {
	struct world w;
	struct simnet net;
	struct simio_dir dir;
	struct rnode n[RN];
	struct raft_change change;
	bool change_done;
	int change_status;
	uint64_t applied_ok, applied_lost;
	uint64_t seq; /* request sequence of the writes (duplicates are detected by it) */
};

static int r_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct rnode *n = fsm->data;
	struct apply_res res;
	store_apply(&n->store, buf->base, buf->len, &res);
	*result = NULL;
	return 0;
}

static int r_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *nbufs)
{
	struct rnode *n = fsm->data;
	struct mpw w;
	mpw_init(&w);
	store_snapshot(&n->store, &w);
	*bufs = raft_malloc(sizeof **bufs);
	(*bufs)[0].len = w.sb.size;
	(*bufs)[0].base = raft_malloc(w.sb.size);
	memcpy((*bufs)[0].base, w.sb.data, w.sb.size);
	*nbufs = 1;
	mpw_free(&w);
	return 0;
}

static int r_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct rnode *n = fsm->data;
	char err[ERR_LEN];
	if (store_restore(&n->store, buf->base, buf->len, err))
		return RAFT_CORRUPT;
	raft_free(buf->base);
	return 0;
}

static int node_start(struct rcluster *c, unsigned i, bool bootstrap)
{
	struct rnode *n = &c->n[i];
	n->life++;
	simio_init(&n->io, &c->w, &c->net, &c->dir, i, &n->disk, &n->life);
	n->fsm = (struct raft_fsm){.version = 1, .data = n, .apply = r_apply, .snapshot = r_snapshot, .restore = r_restore};
	store_free(&n->store);
	store_init(&n->store);
	if (raft_init(&n->raft, &n->io.io, &n->fsm, c->dir.id[i], c->dir.addr[i]))
		return -1;
	raft_set_election_timeout(&n->raft, 500);
	raft_set_heartbeat_timeout(&n->raft, 100);
	raft_set_pre_vote(&n->raft, true);
	raft_set_snapshot_threshold(&n->raft, 64);
	raft_set_snapshot_trailing(&n->raft, 32);
	if (bootstrap) {
		struct raft_configuration conf;
		raft_configuration_init(&conf);
		raft_configuration_add(&conf, c->dir.id[i], c->dir.addr[i], RAFT_VOTER);
		int rv = raft_bootstrap(&n->raft, &conf);
		raft_configuration_close(&conf);
		if (rv)
			return -1;
	}
	if (raft_start(&n->raft))
		return -1;
	n->up = true;
	return 0;
}

static void node_closed(struct raft *r)
{
	struct rnode *n = r->data;
	n->closing = false;
}

/* A crash: pending disk writes are lost, in-flight messages to it too. */
static void node_kill(struct rnode *n)
{
	n->life++;
	n->up = false;
	n->closing = true;
	n->raft.data = n;
	raft_close(&n->raft, node_closed);
}

static int leader(struct rcluster *c)
{
	for (unsigned i = 0; i < RN; i++)
		if (c->n[i].up && raft_state(&c->n[i].raft) == RAFT_LEADER)
			return (int)i;
	return -1;
}

static bool has_leader(void *arg)
{
	return leader(arg) >= 0;
}

static bool change_finished(void *arg)
{
	struct rcluster *c = arg;
	return c->change_done;
}

static void change_cb(struct raft_change *req, int status)
{
	struct rcluster *c = req->data;
	c->change_done = true;
	c->change_status = status;
}

/* One membership change, retried on whichever server leads until it succeeds. */
static int change(struct rcluster *c, unsigned who, int role, bool add, char *err)
{
	uint64_t deadline = c->w.now + 20000;
	while (c->w.now < deadline) {
		if (!world_run_while_not(&c->w, deadline, has_leader, c))
			break;
		struct rnode *l = &c->n[leader(c)];
		c->change.data = c;
		c->change_done = false;
		int rv = add ? raft_add(&l->raft, &c->change, c->dir.id[who], c->dir.addr[who], change_cb)
			     : raft_assign(&l->raft, &c->change, c->dir.id[who], role, change_cb);
		if (rv == RAFT_DUPLICATEID || (rv == RAFT_BADROLE && !add))
			return 0; /* a retry of a change that did go through */
		if (rv) {
			world_run_until(&c->w, c->w.now + 50);
			continue;
		}
		world_run_while_not(&c->w, deadline, change_finished, c);
		if (c->change_done && !c->change_status)
			return 0;
	}
	return errf(err, E_TIMEOUT, "raft %s of server %u did not complete in 20 s", add ? "add" : "assign", who);
}

struct wreq {
	struct raft_apply req;
	struct rcluster *c;
};

static void applied(struct raft_apply *req, int status, void *result)
{
	struct wreq *r = req->data;
	(void)result;
	if (status)
		r->c->applied_lost++;
	else
		r->c->applied_ok++;
	free(r);
}

static void write_one(struct rcluster *c, uint64_t k)
{
	int l = leader(c);
	if (l < 0)
		return;
	char body[96];
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	snprintf(body, sizeof body, "key-%llu", (unsigned long long)(k % 40));
	mpw_kstr(&w, "key", body);
	snprintf(body, sizeof body, "value-%llu", (unsigned long long)k);
	mpw_kstr(&w, "value", body);
	size_t len;
	struct req_id rid = {1, 1, ++c->seq};
	mpw_map_end(&w);
	void *cmd = cmd_build(CMD_KV_SET, &rid, w.sb.data, w.sb.size, &len);
	mpw_free(&w);
	struct raft_buffer buf = {.base = raft_malloc(len), .len = len};
	memcpy(buf.base, cmd, len);
	free(cmd);
	struct wreq *r = xcalloc(1, sizeof *r);
	r->c = c;
	r->req.data = r;
	if (raft_apply(&c->n[l].raft, &r->req, &buf, 1, applied)) {
		raft_free(buf.base);
		free(r);
	}
}

static void writes(struct rcluster *c, uint64_t from, uint64_t count, uint64_t every_ms)
{
	for (uint64_t k = from; k < from + count; k++) {
		write_one(c, k);
		world_run_until(&c->w, c->w.now + every_ms);
	}
}

static bool converged(void *arg)
{
	struct rcluster *c = arg;
	int l = leader(c);
	if (l < 0)
		return false;
	raft_index want = c->n[l].raft.commit_index;
	for (unsigned i = 0; i < RN; i++)
		if (!c->n[i].up || raft_last_applied(&c->n[i].raft) != want)
			return false;
	return true;
}

static bool all_closed(void *arg)
{
	struct rcluster *c = arg;
	for (unsigned i = 0; i < RN; i++)
		if (c->n[i].closing)
			return false;
	return true;
}

int scn_raft_io(uint64_t seed, struct sim_result *res, char *err)
{
	struct rcluster *c = xcalloc(1, sizeof *c);
	int rc = 0;
	unsigned victim = 0;
	world_init(&c->w, seed);
	simnet_init(&c->net, &c->w);
	c->net.drop_pm = 5;
	c->dir.n = RN;
	for (unsigned i = 0; i < RN; i++) {
		c->dir.id[i] = 1000 + i;
		snprintf(c->dir.addr[i], sizeof c->dir.addr[i], "127.0.%u.%u:7420", 1 + i / 200, 1 + i % 200);
		simdisk_init(&c->n[i].disk);
		store_init(&c->n[i].store);
		simnet_host(&c->net, i, &c->n[i].life);
	}
	for (unsigned i = 0; i < RN && !rc; i++)
		if (node_start(c, i, i == 0))
			rc = errf(err, E_FAIL, "raft start of server %u failed", i);
	/* grow: each server added, the first four made voters, the others standbys */
	for (unsigned i = 1; i < RN && !rc; i++) {
		rc = change(c, i, RAFT_SPARE, true, err);
		if (!rc)
			rc = change(c, i, i < 5 ? RAFT_VOTER : RAFT_STANDBY, false, err);
		if (!rc && i % 10 == 0)
			write_one(c, i);
	}
	if (!rc) {
		writes(c, 0, 100, 5);
		/* a voter goes away for long enough that the log moves past it */
		int l = leader(c);
		victim = 1;
		while (victim == (unsigned)l || raft_state(&c->n[victim].raft) == RAFT_UNAVAILABLE)
			victim++;
		node_kill(&c->n[victim]);
		writes(c, 100, 200, 5);
		world_run_while_not(&c->w, c->w.now + 2000, all_closed, c);
		if (node_start(c, victim, false))
			rc = errf(err, E_FAIL, "restart of server %u failed", victim);
	}
	if (!rc) {
		/* a minority (the leader and one other voter among them) cut off, then healed */
		int groups[RN] = {0};
		int l = leader(c);
		groups[l >= 0 ? l : 0] = 1;
		groups[(l + 1) % 5] = 1;
		groups[20] = groups[21] = 1;
		simnet_partition(&c->net, groups, RN);
		writes(c, 300, 100, 10);
		simnet_heal(&c->net);
		writes(c, 400, 50, 10);
	}
	if (!rc && !world_run_while_not(&c->w, c->w.now + 30000, converged, c)) {
		int l = leader(c);
		unsigned behind = 0;
		for (unsigned i = 0; i < RN; i++)
			if (l >= 0 && raft_last_applied(&c->n[i].raft) != c->n[l].raft.commit_index)
				behind++;
		rc = errf(err, E_TIMEOUT, "servers did not converge in 30 s (leader %d, %u behind)", l, behind);
	}
	if (!rc) {
		char h0[65], h[65];
		store_hash(&c->n[0].store, h0);
		for (unsigned i = 1; i < RN && !rc; i++) {
			store_hash(&c->n[i].store, h);
			if (strcmp(h, h0))
				rc = errf(err, E_FAIL, "server %u state hash %.12s differs from server 0's %.12s", i, h, h0);
		}
		if (!rc && !c->n[victim].io.ninstall)
			rc = errf(err, E_FAIL, "server %u restarted behind the leader's snapshots without an InstallSnapshot", victim);
		if (!rc && c->n[0].store.kv.n != 40)
			rc = errf(err, E_FAIL, "%zu keys applied, expected 40", c->n[0].store.kv.n);
		snprintf(res->hash, sizeof res->hash, "%s", h0);
	}
	res->events = c->w.fired;
	res->end_ms = c->w.now;
	res->nodes = RN;
	for (unsigned i = 0; i < RN; i++)
		if (c->n[i].up)
			node_kill(&c->n[i]);
	world_run_while_not(&c->w, c->w.now + 1000, all_closed, c);
	world_free(&c->w);
	for (unsigned i = 0; i < RN; i++) {
		store_free(&c->n[i].store);
		simdisk_free(&c->n[i].disk);
	}
	free(c);
	return rc;
}
