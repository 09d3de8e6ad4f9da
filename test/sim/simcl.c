/* The simulated cluster: the processes of its nodes (made of the real parts, simcl.h),
 * their timers and the writes made through them. Their traffic with each other is in
 * simlink.c and simjoin.c. */
#include "simproc.h"
#include "scenario.h"
#include "node/member.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void proc_touch(struct sproc *p)
{
	if (p->dirty || p->dead)
		return;
	p->dirty = true;
	p->next_dirty = p->cl->dirty;
	p->cl->dirty = p;
}

static void touched(void *arg)
{
	proc_touch(arg);
}

uint64_t simcl_wall(const struct simcl *c)
{
	return c->wall0 + c->w.now;
}

uint64_t proc_now(const struct sproc *p)
{
	return p->cl->w.now;
}

uint64_t proc_wall(const struct sproc *p)
{
	return simcl_wall(p->cl) + (uint64_t)p->n->wall_skew_ms;
}

static uint64_t world_mono(void *data)
{
	const struct simcl *c = data;
	return c->w.now;
}

static uint64_t world_wall(void *data)
{
	return simcl_wall(data);
}

static uint64_t clk_mono(void *data)
{
	return proc_now(data);
}

static uint64_t clk_wall(void *data)
{
	return proc_wall(data);
}

int host_of_addr(const struct simcl *c, const char *addr)
{
	for (unsigned i = 0; i < c->count; i++)
		if (addr && !strcmp(c->dir.addr[i], addr))
			return (int)i;
	return -1;
}

/* ---- writes (node/daemon.c's submit) -------------------------------------------------------------- */

static int proc_submit(struct sproc *p, enum cmd type, const void *body, size_t len,
		       void (*cb)(void *data, int rc, const struct apply_res *res), void *data, char *err)
{
	size_t n;
	struct req_id rid = {p->n->ident.id, p->session, ++p->seq};
	void *entry = cmd_build(type, &rid, body, len, &n);
	int rc = 0;
	proc_touch(p);
	if (cons_is_leader(&p->cons))
		rc = cons_apply(&p->cons, entry, n, cb, data, err);
	else
		rc = plink_forward(p, entry, n, cb, data, err);
	free(entry);
	return rc;
}

/* ---- the leader's host interface -------------------------------------------------------------- */

static int lh_submit(void *data, enum cmd type, const void *body, size_t len, leader_submit_cb cb, void *cb_data,
		     char *err)
{
	return proc_submit(data, type, body, len, cb, cb_data, err);
}

static unsigned lh_nservers(void *data)
{
	struct sproc *p = data;
	return cons_nservers(&p->cons);
}

static void lh_server(void *data, unsigned i, uint64_t *id, enum cons_role *role)
{
	struct sproc *p = data;
	raft_id rid;
	const char *addr;
	cons_server(&p->cons, i, &rid, &addr, role);
	*id = rid;
}

static int lh_assign(void *data, uint64_t id, enum cons_role role, cons_change_cb cb, void *cb_data, char *err)
{
	struct sproc *p = data;
	proc_touch(p);
	return cons_assign(&p->cons, id, role, cb, cb_data, err);
}

static int lh_add(void *data, uint64_t id, const char *addr, cons_change_cb cb, void *cb_data, char *err)
{
	struct sproc *p = data;
	proc_touch(p);
	return cons_add(&p->cons, id, addr, cb, cb_data, err);
}

static int lh_barrier(void *data, cons_change_cb cb, void *cb_data, char *err)
{
	struct sproc *p = data;
	proc_touch(p);
	return cons_barrier(&p->cons, cb, cb_data, err);
}

static uint64_t lh_match_index(void *data, uint64_t id)
{
	struct sproc *p = data;
	return cons_match_index(&p->cons, id);
}

static void lh_reprobe(void *data, uint64_t id, uint64_t from)
{
	struct sproc *p = data;
	proc_touch(p);
	cons_reprobe(&p->cons, id, from);
}

static void kick_fire(struct world *w, void *arg)
{
	struct sproc *p = arg;
	(void)w;
	proc_touch(p);
	leader_kicked(&p->leader);
}

/* node/daemon.c's kick: the next loop turn (an event now, of this process's life) */
static void lh_kick(void *data)
{
	struct sproc *p = data;
	world_at(&p->cl->w, 0, kick_fire, p, NULL, &p->n->life);
}

static uint64_t lh_term(void *data)
{
	struct sproc *p = data;
	return cons_term(&p->cons);
}

static bool lh_is_leader(void *data)
{
	struct sproc *p = data;
	return !p->dead && cons_is_leader(&p->cons);
}

static uint64_t lh_commit_index(void *data)
{
	struct sproc *p = data;
	return cons_commit_index(&p->cons);
}

static void lh_ready(void *data, const char *msg)
{
	(void)data;
	(void)msg;
}

static void lh_watch_push(void *data)
{
	plink_feed(data);
}

/* ---- the fake runtime's host ---------------------------------------------------------------- */

static uint64_t rt_delay(void *data, uint64_t lo, uint64_t hi)
{
	struct sproc *p = data;
	return world_range(&p->cl->w, lo, hi);
}

static int rt_submit(void *data, enum cmd type, const void *body, size_t len,
		     void (*cb)(void *cbdata, int rc, const struct apply_res *res), void *cbdata, char *err)
{
	return proc_submit(data, type, body, len, cb, cbdata, err);
}

static void rt_started(void *data, const struct ftask *t)
{
	struct sproc *p = data;
	if (p->cl->started)
		p->cl->started(p->cl->started_arg, p->n->host, t);
}

/* ---- the process ------------------------------------------------------------------------------ */

static void on_state(void *data)
{
	struct sproc *p = data;
	plink_update(p);
	if (leader_new_term(&p->leader)) {
		feed_reset_self(&p->feed);
		leader_start(&p->leader);
		leader_tick(&p->leader);
	}
	member_kick(&p->leader); /* joins queued here are refused once this node no longer leads */
}

static void proc_tick(struct world *w, void *arg)
{
	struct sproc *p = arg;
	proc_touch(p);
	plink_tick(p);
	fakert_tick(&p->rt);
	if (cons_is_leader(&p->cons))
		leader_tick(&p->leader);
	world_at(w, SIM_TICK_MS, proc_tick, p, NULL, &p->n->life);
}

int proc_start(struct simcl *c, unsigned i, bool bootstrap, char *err)
{
	struct snode *n = &c->n[i];
	struct sproc *p = xcalloc(1, sizeof *p);
	p->n = n;
	p->cl = c;
	n->life++;
	simio_init(&p->io, &c->w, &c->net, &c->dir, i, &n->disk, &n->life);
	p->io.touched = touched;
	p->io.touched_arg = p;
	store_init(&p->store);
	p->clock = (struct clock){clk_mono, clk_wall, p};
	bool seeded = n->join_seed >= 0 && !(n->worker && n->resumed);
	uplink_init(&p->up, n->ident.id, n->ident.advertise, seeded ? c->dir.addr[n->join_seed] : NULL);
	for (size_t k = 0; n->worker && k < n->nkept; k++) /* node/link.c does the same */
		uplink_voter_add(&p->up, n->kept[k], strlen(n->kept[k]));
	struct cons_settings set = {
		.election_ms = c->o.election_ms,
		.heartbeat_ms = c->o.heartbeat_ms,
		.snapshot_threshold = 256,
		.snapshot_trailing = 128,
	};
	int rc = cons_init_io(&p->cons, &p->io.io, n->ident.id, n->ident.advertise, &p->store, &set, err);
	if (rc) {
		free(p);
		return rc;
	}
	cons_set_name(&p->cons, n->ident.name);
	cons_set_clock(&p->cons, &p->clock);
	cons_set_state_cb(&p->cons, on_state, p);
	if (bootstrap && (rc = cons_bootstrap(&p->cons, err)))
		return rc;
	p->lh = (struct leader_host){
		.data = p,
		.clock = &p->clock,
		.ident = &n->ident,
		.store = &p->store,
		.submit = lh_submit,
		.nservers = lh_nservers,
		.server = lh_server,
		.assign = lh_assign,
		.add = lh_add,
		.barrier = lh_barrier,
		.match_index = lh_match_index,
		.reprobe = lh_reprobe,
		.is_leader = lh_is_leader,
		.term = lh_term,
		.commit_index = lh_commit_index,
		.ready = lh_ready,
		.watch_push = lh_watch_push,
		.kick = lh_kick,
	};
	struct leader_config lc = {
		.bootstrap = bootstrap,
		.failure_timeout_ms = c->o.failure_timeout_ms,
		.cpus_milli = 4000,
		.memory = 8ull << 30,
	};
	leader_init(&p->leader, &p->lh, &lc);
	struct fakert_host fh = {p, n->ident.name, &p->clock, rt_delay, rt_submit, rt_started};
	fakert_init(&p->rt, &fh, c->o.start_min_ms, c->o.start_max_ms);
	do
		p->session = world_rand(&c->w);
	while (!p->session);
	if ((rc = cons_start(&p->cons, err)))
		return rc;
	n->p = p;
	n->stopped_self = false;
	world_at(&c->w, world_range(&c->w, 1, SIM_TICK_MS), proc_tick, p, NULL, &n->life);
	proc_touch(p);
	return 0;
}

static void proc_closed(void *data)
{
	struct sproc *p = data;
	leader_free(&p->leader);
	fakert_free(&p->rt);
	store_free(&p->store);
	p->cl->procs_closing--;
	free(p);
}

void proc_end(struct simcl *c, unsigned i, bool silent)
{
	struct snode *n = &c->n[i];
	struct sproc *p = n->p;
	if (!p)
		return;
	n->life++; /* its timers and the messages in flight to it are gone */
	n->p = NULL;
	p->dead = true;
	for (struct sproc **pp = &c->dirty; *pp; pp = &(*pp)->next_dirty)
		if (*pp == p) {
			*pp = p->next_dirty;
			break;
		}
	sconns_host_died(&c->conns, i, silent);
	p->link = p->whois = NULL;
	plink_end(p);
	c->procs_closing++;
	cons_close(&p->cons, proc_closed, p);
}

/* ---- the cluster ------------------------------------------------------------------------------- */

static void after_event(struct world *w, void *arg)
{
	struct simcl *c = arg;
	(void)w;
	while (c->dirty) {
		struct sproc *p = c->dirty;
		c->dirty = p->next_dirty;
		p->dirty = false;
		if (!p->dead) {
			cons_step(&p->cons);
		}
	}
}

void simcl_init(struct simcl *c, uint64_t seed, unsigned count, const struct simcl_opts *o)
{
	memset(c, 0, sizeof *c);
	world_init(&c->w, seed);
	for (unsigned i = 0; i < SEAL_KEY_LEN; i++)
		c->datakey[i] = (uint8_t)((seed >> (8 * (i % 8))) ^ (i * 37u));
	simnet_init(&c->net, &c->w);
	sconns_init(&c->conns, &c->net);
	c->o = *o;
	c->count = count;
	c->dir.n = count;
	c->wall0 = 1799971200000ull;
	c->clock = (struct clock){world_mono, world_wall, c};
	c->w.after = after_event;
	c->w.after_arg = c;
	for (size_t k = 0; k < sizeof c->tok.cluster_id; k++)
		c->tok.cluster_id[k] = (uint8_t)world_rand(&c->w);
	for (size_t k = 0; k < sizeof c->tok.secret; k++)
		c->tok.secret[k] = (uint8_t)world_rand(&c->w);
	for (unsigned i = 0; i < count; i++) {
		struct snode *n = &c->n[i];
		n->cl = c;
		n->host = i;
		n->join_seed = -1;
		simdisk_init(&n->disk);
		n->ident.id = (world_rand(&c->w) >> 1) | 1;
		snprintf(n->ident.name, sizeof n->ident.name, "n%02u", i);
		snprintf(n->ident.advertise, sizeof n->ident.advertise, "127.0.%u.%u:7420", 1 + i / 250, 1 + i % 250);
		snprintf(n->ident.listen, sizeof n->ident.listen, "%s", n->ident.advertise);
		memcpy(n->ident.cluster_id, c->tok.cluster_id, CLUSTER_ID_LEN);
		c->dir.id[i] = n->ident.id;
		snprintf(c->dir.addr[i], sizeof c->dir.addr[i], "%s", n->ident.advertise);
		simnet_host(&c->net, i, &n->life);
		sconns_listen(&c->conns, i, plink_accept, n);
	}
}

static bool none_closing(void *arg)
{
	const struct simcl *c = arg;
	return c->procs_closing == 0;
}

void simcl_free(struct simcl *c)
{
	for (unsigned i = 0; i < c->count; i++)
		proc_end(c, i, false);
	world_run_while_not(&c->w, c->w.now + 10000, none_closing, c);
	world_free(&c->w);
	sconns_free(&c->conns);
	for (unsigned i = 0; i < c->count; i++)
		simdisk_free(&c->n[i].disk);
}

int simcl_init_node(struct simcl *c, unsigned i, char *err)
{
	c->n[i].seed = true;
	c->n[i].joined = true;
	c->n[i].wanted = true;
	return proc_start(c, i, true, err);
}

struct rlost {
	struct simcl *c;
	unsigned to;
	raft_id id;
};

static void rlost_fire(struct world *w, void *arg)
{
	struct rlost *x = arg;
	struct sproc *p = x->c->n[x->to].p;
	(void)w;
	if (p && !p->dead) {
		cons_peer_lost(&p->cons, x->id);
		proc_touch(p);
	}
	free(x);
}

/* Host `to` takes host `from` for dead (its raft stream ended without a clean close, the
 * transport's probe was refused) a one-way delay from now, unless a partition is in the
 * way (the FIN would be lost, as the messages are). */
static void raft_stream_lost(struct simcl *c, unsigned from, unsigned to)
{
	if (!c->n[to].p || !simnet_connected(&c->net, from, to))
		return;
	struct rlost *x = xmalloc(sizeof *x);
	*x = (struct rlost){c, to, c->n[from].ident.id};
	world_at(&c->w, c->net.latency_ms, rlost_fire, x, free, &c->n[to].life);
}

void simcl_kill(struct simcl *c, unsigned i)
{
	c->n[i].wanted = false;
	/* the kernel closes a killed process's sockets: its raft streams end without TLS's
	 * close_notify at every peer, and its port refuses (raft/consensus.h cons_peer_lost) */
	for (unsigned j = 0; j < c->count; j++)
		if (j != i)
			raft_stream_lost(c, i, j);
	proc_end(c, i, false);
}

void simcl_raft_lost(struct simcl *c, unsigned a, unsigned b)
{
	raft_stream_lost(c, a, b);
	raft_stream_lost(c, b, a);
}

struct stopping {
	struct simcl *c;
	unsigned i;
	uint32_t life;
};

static void stop_handed(void *data, int status, const char *msg)
{
	struct stopping *s = data;
	(void)status;
	(void)msg;
	if (s->c->n[s->i].life == s->life)
		proc_end(s->c, s->i, false);
	free(s);
}

void simcl_stop(struct simcl *c, unsigned i)
{
	struct sproc *p = c->n[i].p;
	char err[ERR_LEN];
	c->n[i].wanted = false;
	if (!p)
		return;
	struct stopping *s = xmalloc(sizeof *s);
	*s = (struct stopping){c, i, c->n[i].life};
	if (cons_handover(&p->cons, stop_handed, s, err)) { /* not the leader: nothing to wait for */
		free(s);
		proc_end(c, i, false);
	}
}

void simcl_power_off(struct simcl *c, unsigned i)
{
	c->n[i].wanted = false;
	proc_end(c, i, true);
}

int simcl_restart(struct simcl *c, unsigned i, char *err)
{
	if (c->n[i].p)
		return errf(err, E_EXISTS, "node %u is running", i);
	c->n[i].wanted = true;
	c->n[i].resumed = true;
	sconns_host_up(&c->conns, i);
	return proc_start(c, i, false, err);
}

void simcl_partition(struct simcl *c, const int *groups)
{
	simnet_partition(&c->net, groups, c->count);
}

void simcl_heal(struct simcl *c)
{
	simnet_heal(&c->net);
}

bool simcl_up(const struct simcl *c, unsigned i)
{
	return c->n[i].p != NULL;
}

int simcl_leader(const struct simcl *c)
{
	int best = -1;
	uint64_t term = 0;
	for (unsigned i = 0; i < c->count; i++) {
		struct sproc *p = c->n[i].p;
		if (p && cons_is_leader(&p->cons) && cons_term(&p->cons) >= term) {
			term = cons_term(&p->cons);
			best = (int)i;
		}
	}
	return best;
}

const struct store *simcl_store(const struct simcl *c, unsigned i)
{
	return c->n[i].p ? &c->n[i].p->store : NULL;
}

struct consensus *simcl_cons(const struct simcl *c, unsigned i)
{
	return c->n[i].p ? &c->n[i].p->cons : NULL;
}

const struct fakert *simcl_runtime(const struct simcl *c, unsigned i)
{
	return c->n[i].p ? &c->n[i].p->rt : NULL;
}

int simcl_submit(struct simcl *c, unsigned i, enum cmd type, const void *body, size_t len,
		   void (*cb)(void *data, int rc, const struct apply_res *res), void *data, char *err)
{
	if (!c->n[i].p)
		return errf(err, E_IO, "node %u is not running", i);
	return proc_submit(c->n[i].p, type, body, len, cb, data, err);
}

struct write_wait {
	bool done;
	int rc;
	char msg[ERR_LEN];
};

static void write_cb(void *data, int rc, const struct apply_res *res)
{
	struct write_wait *x = data;
	x->done = true;
	x->rc = rc == E_EXISTS ? 0 : rc;
	snprintf(x->msg, sizeof x->msg, "%s", res ? res->msg : "");
}

static bool write_finished(void *arg)
{
	const struct write_wait *x = arg;
	return x->done;
}

int simcl_write(struct simcl *c, enum cmd type, const void *body, size_t len, uint64_t within_ms, char *err)
{
	return simcl_write_via(c, -1, type, body, len, within_ms, err);
}

int simcl_write_via(struct simcl *c, int via, enum cmd type, const void *body, size_t len, uint64_t within_ms,
		    char *err)
{
	uint64_t deadline = c->w.now + within_ms;
	char last[ERR_LEN] = "no leader";
	while (c->w.now < deadline) {
		int l = via >= 0 ? via : simcl_leader(c);
		if (l < 0) {
			simcl_run(c, 50);
			continue;
		}
		/* on the heap: left behind (not freed) if the deadline passes before its answer */
		struct write_wait *x = xcalloc(1, sizeof *x);
		if (simcl_submit(c, (unsigned)l, type, body, len, write_cb, x, last)) {
			free(x);
			simcl_run(c, 50);
			continue;
		}
		world_run_while_not(&c->w, deadline, write_finished, x);
		if (!x->done) {
			snprintf(last, sizeof last, "no answer");
			break;
		}
		int rc = x->rc;
		snprintf(last, sizeof last, "%s", x->msg);
		free(x);
		if (!rc)
			return 0;
		if (rc != E_NOLEADER)
			return errf(err, rc, "%s: %s", cmd_name(type), last);
		simcl_run(c, 50);
	}
	return errf(err, E_TIMEOUT, "%s not acknowledged within %llu ms: %s", cmd_name(type), (unsigned long long)within_ms,
		    last);
}

void simcl_run(struct simcl *c, uint64_t ms)
{
	world_run_until(&c->w, c->w.now + ms);
}
