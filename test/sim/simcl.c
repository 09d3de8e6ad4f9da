#include "simcl.h"
#include "scenario.h"
#include "node/daemon.h"
#include "node/member.h"
#include "util/log.h"
#include "util/mem.h"
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a daemon does on its timers (node/daemon.c, node/link.c). */
#define TICK_MS 200
#define HB_MS 500
#define LINK_RETRY_MS 200
#define JOIN_CALL_MS 15000 /* orch join's request timeout */
#define JOIN_GIVE_UP_MS 30000
#define WHOIS_AFTER_MS 500     /* node/link.c: leaderless this long, ask a peer who leads */
#define REMOVED_AFTER_MS 10000 /* node/link.c: believe a peer saying we were removed */

struct fwd {
	uint64_t id;
	void (*cb)(void *data, int rc, const struct apply_res *res);
	void *data;
	struct fwd *next;
};

/* The leader's end of a node's assignment watch (node/watch.c). */
struct swatcher {
	uint64_t node_id;
	unsigned host;
	uint32_t epoch;
	uint8_t last[32];
	bool sent;
	struct swatcher *next;
};

/* One run of a node's process. */
struct sproc {
	struct snode *n;
	struct simcl *cl;
	bool dead;
	struct simio io;
	struct store store;
	struct consensus cons;
	struct clock clock;
	struct leader leader;
	struct leader_host lh;
	struct fakert rt;
	bool was_leader;
	uint64_t session, seq; /* request identity: random per process start, counter */
	/* the link to the leader */
	bool link_up;
	unsigned link_host;
	raft_id link_leader;
	uint32_t link_epoch;
	uint64_t last_hb, retry_at;
	/* a leader named by a peer while raft names none (node/link.c "whois") */
	raft_id hint_id;
	int hint_host;
	raft_id stale;          /* raft's leader that said it does not lead, in stale_term */
	uint64_t stale_term;
	uint64_t leaderless_since;
	bool whois;
	unsigned whois_host;
	size_t whois_next;
	struct fwd *fwds;
	uint64_t fwd_ids;
	/* while leader: the watches of the other nodes */
	struct swatcher *watchers;
	uint64_t watch_rev;
	bool self_sent;
	uint8_t self_last[32];
	/* stepped after the current event */
	bool dirty;
	struct sproc *next_dirty;
};

static void touch(struct sproc *p)
{
	if (p->dirty || p->dead)
		return;
	p->dirty = true;
	p->next_dirty = p->cl->dirty;
	p->cl->dirty = p;
}

static void touched(void *arg)
{
	touch(arg);
}

static uint64_t now_of(const struct simcl *c)
{
	return c->w.now;
}

uint64_t simcl_wall(const struct simcl *c)
{
	return c->wall0 + c->w.now;
}

static uint64_t clk_mono(void *data)
{
	const struct sproc *p = data;
	return now_of(p->cl);
}

static uint64_t clk_wall(void *data)
{
	const struct sproc *p = data;
	return simcl_wall(p->cl) + (uint64_t)p->n->wall_skew_ms;
}

static int host_of_addr(const struct simcl *c, const char *addr)
{
	for (unsigned i = 0; i < c->count; i++)
		if (addr && !strcmp(c->dir.addr[i], addr))
			return (int)i;
	return -1;
}

/* ---- messages between nodes ---------------------------------------------------------------- */

enum mkind { M_JOIN, M_JOIN_REP, M_HB, M_HB_REP, M_WATCH, M_DOC, M_APPLY, M_APPLY_REP, M_WHOIS, M_WHOIS_REP };

struct smsg {
	struct simcl *cl;
	enum mkind kind;
	unsigned from, to;
	uint32_t epoch; /* the link connection it travels on */
	uint64_t a;     /* node id, forward id or join attempt */
	int rc;
	char msg[ERR_LEN];
	uint64_t res_id;
	int redirect;   /* join: the leader's host, or -1; whois: the leader's host */
	bool member;    /* whois: the asker is a member */
	uint8_t *data;  /* document, entry or node record */
	size_t len;
};

static void msg_drop(void *arg)
{
	struct smsg *m = arg;
	free(m->data);
	free(m);
}

static void msg_arrive(struct world *w, void *arg);

static struct smsg *msg_new(struct simcl *c, enum mkind kind, unsigned from, unsigned to)
{
	struct smsg *m = xcalloc(1, sizeof *m);
	m->cl = c;
	m->kind = kind;
	m->from = from;
	m->to = to;
	m->redirect = -1;
	return m;
}

static void msg_send(struct smsg *m)
{
	simnet_send(&m->cl->net, m->from, m->to, false, msg_arrive, msg_drop, m);
}

/* ---- the link to the leader (node/link.c) --------------------------------------------------- */

static void fwd_fail_all(struct sproc *p)
{
	while (p->fwds) {
		struct fwd *f = p->fwds;
		p->fwds = f->next;
		struct apply_res res = {.rc = E_NOLEADER};
		snprintf(res.msg, sizeof res.msg, "lost the connection to the leader; retry");
		if (f->cb)
			f->cb(f->data, E_NOLEADER, &res);
		free(f);
	}
}

static void plink_drop(struct sproc *p)
{
	if (p->link_up) {
		p->link_up = false;
		p->link_epoch++;
		p->retry_at = now_of(p->cl) + LINK_RETRY_MS;
	}
	fwd_fail_all(p);
}

/* A connection that broke under the link (partition, the leader's process died). */
static void plink_broken(struct sproc *p)
{
	p->hint_host = -1; /* a named leader we cannot reach (or not the leader): ask again */
	p->link_up = false;
	p->link_epoch++;
	p->retry_at = now_of(p->cl) + LINK_RETRY_MS;
	fwd_fail_all(p);
}

/* node/link.c raft_names: the leader raft names, unless it said it does not lead. */
static bool raft_names(struct sproc *p, raft_id *lid, const char **laddr)
{
	if (!cons_leader(&p->cons, lid, laddr) && !(*lid == p->stale && cons_term(&p->cons) == p->stale_term))
		return true;
	*lid = 0;
	*laddr = NULL;
	return false;
}

static void plink_update(struct sproc *p)
{
	struct simcl *c = p->cl;
	raft_id lid = 0;
	const char *laddr = NULL;
	int h = -1;
	if (!p->dead) {
		if (raft_names(p, &lid, &laddr)) {
			p->hint_host = -1; /* raft knows: it has the last word */
			h = host_of_addr(c, laddr);
		} else if (p->hint_host >= 0) {
			lid = p->hint_id;
			h = p->hint_host;
		}
	}
	if (p->dead || !lid || lid == p->n->ident.id) {
		plink_drop(p);
		p->link_leader = 0;
		return;
	}
	if (p->link_up && p->link_leader == lid)
		return;
	plink_drop(p);
	if (now_of(c) < p->retry_at && p->link_leader == lid)
		return;
	p->link_leader = lid;
	/* connecting: fails at once when the leader's machine is unreachable or down */
	if (h < 0 || !simnet_connected(&c->net, p->n->host, (unsigned)h) || !c->n[h].p) {
		p->retry_at = now_of(c) + LINK_RETRY_MS;
		p->hint_host = -1;
		return;
	}
	p->link_up = true;
	p->link_host = (unsigned)h;
	p->link_epoch++;
	struct smsg *m = msg_new(c, M_WATCH, p->n->host, p->link_host);
	m->epoch = p->link_epoch;
	m->a = p->n->ident.id;
	msg_send(m);
}

/* The i-th host to ask who leads, round robin, in node/link.c's order: the voters of
 * this node's raft configuration, the node that accepted its join, the other servers,
 * the node records; -1 when entry i is not one to ask. */
static int whois_peer(struct sproc *p, size_t i)
{
	struct simcl *c = p->cl;
	size_t nconf = cons_nservers(&p->cons);
	const char *addr = NULL;
	raft_id id;
	enum cons_role role;
	if (i < nconf) {
		cons_server(&p->cons, (unsigned)i, &id, &addr, &role);
		if (role != ROLE_VOTER)
			return -1;
	} else if (i == nconf)
		addr = p->n->join_seed >= 0 ? c->dir.addr[p->n->join_seed] : NULL;
	else if (i < 2 * nconf + 1) {
		cons_server(&p->cons, (unsigned)(i - nconf - 1), &id, &addr, &role);
		if (role == ROLE_VOTER)
			return -1;
	} else
		addr = ((const struct node *)p->store.nodes.items[i - 2 * nconf - 1])->addr;
	int h = addr ? host_of_addr(c, addr) : -1;
	return h == (int)p->n->host ? -1 : h;
}

static void leaderless(struct sproc *p)
{
	struct simcl *c = p->cl;
	raft_id lid;
	const char *laddr;
	if (raft_names(p, &lid, &laddr)) {
		p->leaderless_since = 0;
		return;
	}
	if (!p->leaderless_since)
		p->leaderless_since = now_of(c);
	if (p->link_up || p->whois || now_of(c) - p->leaderless_since < WHOIS_AFTER_MS)
		return;
	size_t total = 2 * (size_t)cons_nservers(&p->cons) + 1 + p->store.nodes.n;
	for (size_t tries = 0; tries < total; tries++) {
		int h = whois_peer(p, p->whois_next++ % total);
		if (h < 0)
			continue;
		if (simnet_connected(&c->net, p->n->host, (unsigned)h) && c->n[h].p) {
			p->whois = true;
			p->whois_host = (unsigned)h;
			struct smsg *m = msg_new(c, M_WHOIS, p->n->host, (unsigned)h);
			m->a = p->n->ident.id;
			msg_send(m);
		}
		return; /* one peer per tick; a refused connection tries the next one then */
	}
}

static void plink_tick(struct sproc *p)
{
	leaderless(p);
	if (!p->link_up)
		plink_update(p);
	if (!p->link_up || now_of(p->cl) - p->last_hb < HB_MS)
		return;
	p->last_hb = now_of(p->cl);
	struct smsg *m = msg_new(p->cl, M_HB, p->n->host, p->link_host);
	m->epoch = p->link_epoch;
	m->a = p->n->ident.id;
	msg_send(m);
}

/* Is the link connection (from host, epoch) still open at its node's end? */
static bool plink_open(const struct simcl *c, unsigned from, unsigned to, uint32_t epoch)
{
	const struct sproc *q = c->n[from].p;
	return q && q->link_up && q->link_host == to && q->link_epoch == epoch;
}

/* ---- writes (node/daemon.c's submit) -------------------------------------------------------------- */

static int proc_submit(struct sproc *p, enum cmd type, const void *body, size_t len,
		       void (*cb)(void *data, int rc, const struct apply_res *res), void *data, char *err)
{
	size_t n;
	struct req_id rid = {p->n->ident.id, p->session, ++p->seq};
	void *entry = cmd_build(type, &rid, body, len, &n);
	int rc = 0;
	touch(p);
	if (cons_is_leader(&p->cons))
		rc = cons_apply(&p->cons, entry, n, cb, data, err);
	else {
		if (!p->link_up)
			plink_update(p);
		if (!p->link_up)
			rc = errf(err, E_NOLEADER, "no leader reachable right now; retry");
		else {
			struct fwd *f = xcalloc(1, sizeof *f);
			f->id = ++p->fwd_ids;
			f->cb = cb;
			f->data = data;
			f->next = p->fwds;
			p->fwds = f;
			struct smsg *m = msg_new(p->cl, M_APPLY, p->n->host, p->link_host);
			m->epoch = p->link_epoch;
			m->a = f->id;
			m->data = xmalloc(n);
			memcpy(m->data, entry, n);
			m->len = n;
			msg_send(m);
		}
	}
	free(entry);
	return rc;
}

/* ---- the leader's end of the watches (node/watch.c) ------------------------------------------- */

static void watch_push_sim(struct sproc *p)
{
	struct simcl *c = p->cl;
	if (!cons_is_leader(&p->cons))
		return;
	bool fresh = false;
	for (struct swatcher **pp = &p->watchers; *pp;) {
		struct swatcher *x = *pp;
		if (!plink_open(c, x->host, p->n->host, x->epoch)) { /* its connection closed */
			*pp = x->next;
			free(x);
			continue;
		}
		fresh |= !x->sent;
		pp = &x->next;
	}
	if (p->store.revision == p->watch_rev && !fresh && p->self_sent)
		return;
	p->watch_rev = p->store.revision;
	struct mpw w;
	mpw_init(&w);
	uint8_t h[32];
	for (struct swatcher *x = p->watchers; x; x = x->next) {
		msgpack_sbuffer_clear(&w.sb);
		watch_doc(&p->store, x->node_id, &w);
		SHA256((const uint8_t *)w.sb.data, w.sb.size, h);
		if (x->sent && !memcmp(h, x->last, 32))
			continue;
		memcpy(x->last, h, 32);
		x->sent = true;
		struct smsg *m = msg_new(c, M_DOC, p->n->host, x->host);
		m->epoch = x->epoch;
		m->data = xmalloc(w.sb.size);
		memcpy(m->data, w.sb.data, w.sb.size);
		m->len = w.sb.size;
		msg_send(m);
	}
	msgpack_sbuffer_clear(&w.sb);
	watch_doc(&p->store, p->n->ident.id, &w);
	SHA256((const uint8_t *)w.sb.data, w.sb.size, h);
	if (!p->self_sent || memcmp(h, p->self_last, 32)) {
		memcpy(p->self_last, h, 32);
		p->self_sent = true;
		struct mpr r;
		if (!mpr_decode(&r, w.sb.data, w.sb.size)) {
			fakert_assign(&p->rt, r.root);
			mpr_free(&r);
		}
	}
	mpw_free(&w);
}

static void watch_add_sim(struct sproc *p, uint64_t node_id, unsigned host, uint32_t epoch)
{
	struct swatcher *x = xcalloc(1, sizeof *x);
	x->node_id = node_id;
	x->host = host;
	x->epoch = epoch;
	x->next = p->watchers;
	p->watchers = x;
	watch_push_sim(p);
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
	touch(p);
	return cons_assign(&p->cons, id, role, cb, cb_data, err);
}

static int lh_add(void *data, uint64_t id, const char *addr, cons_change_cb cb, void *cb_data, char *err)
{
	struct sproc *p = data;
	touch(p);
	return cons_add(&p->cons, id, addr, cb, cb_data, err);
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
	watch_push_sim(data);
}

/* ---- the fake runtime's host ---------------------------------------------------------------- */

static uint64_t rt_now(void *data)
{
	struct sproc *p = data;
	return now_of(p->cl);
}

static uint64_t rt_wall(void *data)
{
	return clk_wall(data);
}

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

/* ---- the process ------------------------------------------------------------------------------ */

static void on_state(void *data)
{
	struct sproc *p = data;
	plink_update(p);
	if (cons_is_leader(&p->cons) && !p->was_leader) {
		p->was_leader = true;
		p->self_sent = false;
		leader_start(&p->leader);
		leader_tick(&p->leader);
	}
	member_kick(&p->leader); /* joins queued here are refused once this node no longer leads */
}

static void proc_tick(struct world *w, void *arg)
{
	struct sproc *p = arg;
	touch(p);
	plink_tick(p);
	fakert_tick(&p->rt);
	if (cons_is_leader(&p->cons))
		leader_tick(&p->leader);
	else
		p->was_leader = false;
	world_at(w, TICK_MS, proc_tick, p, NULL, &p->n->life);
}

static int proc_start(struct simcl *c, unsigned i, bool bootstrap, char *err)
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
	p->hint_host = -1;
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
		.is_leader = lh_is_leader,
		.commit_index = lh_commit_index,
		.ready = lh_ready,
		.watch_push = lh_watch_push,
	};
	struct leader_config lc = {
		.bootstrap = bootstrap,
		.failure_timeout_ms = c->o.failure_timeout_ms,
		.cpus_milli = 4000,
		.memory = 8ull << 30,
	};
	leader_init(&p->leader, &p->lh, &lc);
	struct fakert_host fh = {p, rt_now, rt_wall, rt_delay, rt_submit};
	fakert_init(&p->rt, &fh, c->o.start_min_ms, c->o.start_max_ms);
	do
		p->session = world_rand(&c->w);
	while (!p->session);
	if ((rc = cons_start(&p->cons, err)))
		return rc;
	n->p = p;
	n->stopped_self = false;
	world_at(&c->w, world_range(&c->w, 1, TICK_MS), proc_tick, p, NULL, &n->life);
	touch(p);
	return 0;
}

static void proc_closed(void *data)
{
	struct sproc *p = data;
	leader_free(&p->leader);
	fakert_free(&p->rt);
	store_free(&p->store);
	while (p->watchers) {
		struct swatcher *x = p->watchers;
		p->watchers = x->next;
		free(x);
	}
	p->cl->procs_closing--;
	free(p);
}

/* The process ends (killed, or stopping by itself): its connections close with it. */
static void proc_end(struct simcl *c, unsigned i)
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
	fwd_fail_all(p);
	for (unsigned k = 0; k < c->count; k++) {
		struct sproc *q = c->n[k].p;
		if (q && q->link_up && q->link_host == i)
			plink_broken(q);
		if (q && q->whois && q->whois_host == i)
			q->whois = false;
	}
	c->procs_closing++;
	cons_close(&p->cons, proc_closed, p);
}

/* ---- message handlers ------------------------------------------------------------------------ */

static void reply(struct simcl *c, const struct smsg *req, enum mkind kind, int rc, const char *msg)
{
	struct smsg *m = msg_new(c, kind, req->to, req->from);
	m->epoch = req->epoch;
	m->a = req->a;
	m->rc = rc;
	snprintf(m->msg, sizeof m->msg, "%s", msg ? msg : "");
	msg_send(m);
}

struct apply_ctx {
	struct simcl *c;
	unsigned leader_host, to;
	uint32_t leader_life, epoch;
	uint64_t fwd_id;
};

static void apply_replied(void *data, int rc, const struct apply_res *res)
{
	struct apply_ctx *x = data;
	struct simcl *c = x->c;
	/* answered only while the leader's process that took the write still runs */
	if (c->n[x->leader_host].life == x->leader_life) {
		struct smsg *m = msg_new(c, M_APPLY_REP, x->leader_host, x->to);
		m->epoch = x->epoch;
		m->a = x->fwd_id;
		m->rc = rc;
		m->res_id = res ? res->id : 0;
		snprintf(m->msg, sizeof m->msg, "%s", res ? res->msg : "");
		msg_send(m);
	}
	free(x);
}

struct join_ctx {
	struct simcl *c;
	unsigned leader_host, to;
	uint32_t leader_life;
	uint64_t attempt;
};

static void join_replied(void *data, int rc, const char *msg, uint64_t commit_index)
{
	struct join_ctx *x = data;
	struct simcl *c = x->c;
	(void)commit_index;
	if (c->n[x->leader_host].life == x->leader_life) {
		struct smsg *m = msg_new(c, M_JOIN_REP, x->leader_host, x->to);
		m->a = x->attempt;
		m->rc = rc;
		snprintf(m->msg, sizeof m->msg, "%s", msg ? msg : "");
		msg_send(m);
	}
	free(x);
}

/* orch join's request on the node it reached (node/rpc.c op_join). */
static void on_join(struct simcl *c, struct sproc *p, const struct smsg *m)
{
	if (!cons_is_leader(&p->cons)) {
		raft_id lid;
		const char *laddr;
		cons_leader(&p->cons, &lid, &laddr);
		struct smsg *r = msg_new(c, M_JOIN_REP, m->to, m->from);
		r->a = m->a;
		r->rc = E_NOLEADER;
		r->redirect = laddr ? host_of_addr(c, laddr) : -1;
		snprintf(r->msg, sizeof r->msg, "%s", laddr ? "not the leader" : "no leader elected yet; retry");
		msg_send(r);
		return;
	}
	char err[ERR_LEN];
	struct node *nd = xcalloc(1, sizeof *nd);
	struct mpr r;
	int rc = mpr_decode(&r, m->data, m->len) ? errf(err, E_INVAL, "join: bad request") : 0;
	if (!rc) {
		rc = schema_decode(&node_schema, nd, r.root, err);
		mpr_free(&r);
	}
	if (!rc && (!nd->id || !nd->name || !nd->addr))
		rc = errf(err, E_INVAL, "join: id, name and addr required");
	if (rc) {
		schema_free(&node_schema, nd);
		free(nd);
		reply(c, m, M_JOIN_REP, rc, err);
		return;
	}
	/* node/rpc.c op_join */
	const struct node *same = store_node_by_name(&p->store, nd->name);
	if (same && same->id != nd->id) {
		snprintf(err, sizeof err, "join: the name %s is already used by node %016llx; pick another --name", nd->name,
			 (unsigned long long)same->id);
		schema_free(&node_schema, nd);
		free(nd);
		reply(c, m, M_JOIN_REP, E_EXISTS, err);
		return;
	}
	nd->state = NS_READY;
	nd->availability = NA_ACTIVE;
	nd->joined_at = clk_wall(p);
	struct join_ctx *x = xcalloc(1, sizeof *x);
	*x = (struct join_ctx){c, m->to, m->from, c->n[m->to].life, m->a};
	touch(p);
	struct member_reply mr = {join_replied, NULL, x};
	member_join(&p->leader, nd, &mr);
}

static void join_send(struct simcl *c, unsigned i);
static void join_done(struct simcl *c, unsigned i, int rc, const char *msg);

static void join_retry(struct world *w, void *arg)
{
	struct snode *n = arg;
	(void)w;
	if (n->joining)
		join_send(n->cl, n->host);
}

/* orch join's answer (cli/cmd_cluster.c cmd_join): follow a redirect, wait and retry
 * while there is no leader or a change runs, give up after 30 s. */
static void on_join_reply(struct simcl *c, struct snode *n, const struct smsg *m)
{
	if (!n->joining || m->a != n->join_try)
		return;
	n->join_try++; /* the request is answered: its timeout no longer counts */
	if (m->rc == E_NOLEADER || m->rc == E_BUSY) {
		if (now_of(c) > n->join_deadline) {
			join_done(c, n->host, m->rc, m->msg);
			return;
		}
		if (m->redirect >= 0) {
			n->join_target = (unsigned)m->redirect;
			join_send(c, n->host);
		} else
			world_at(&c->w, 200, join_retry, n, NULL, &n->life);
		return;
	}
	join_done(c, n->host, m->rc, m->msg);
}

static void msg_arrive(struct world *w, void *arg)
{
	struct smsg *m = arg;
	struct simcl *c = m->cl;
	struct snode *n = &c->n[m->to];
	struct sproc *p = n->p;
	(void)w;
	if (m->kind == M_JOIN_REP) {
		on_join_reply(c, n, m);
		msg_drop(m);
		return;
	}
	if (!p) {
		msg_drop(m);
		return;
	}
	touch(p);
	char err[ERR_LEN];
	switch (m->kind) {
	case M_JOIN:
		on_join(c, p, m);
		break;
	case M_HB:
		if (!plink_open(c, m->from, m->to, m->epoch))
			break;
		if (!cons_is_leader(&p->cons))
			reply(c, m, M_HB_REP, E_NOLEADER, "not the leader");
		else {
			int rc = leader_heartbeat(&p->leader, m->a, err);
			reply(c, m, M_HB_REP, rc, rc ? err : NULL);
		}
		break;
	case M_WATCH:
		if (plink_open(c, m->from, m->to, m->epoch) && cons_is_leader(&p->cons))
			watch_add_sim(p, m->a, m->from, m->epoch);
		break;
	case M_APPLY: {
		if (!plink_open(c, m->from, m->to, m->epoch))
			break;
		/* node/rpc.c op_apply: an entry only from the node it names, a member, to a leader */
		uint64_t peer = c->n[m->from].ident.id;
		int rc = cmd_check_origin(m->data, m->len, peer, err);
		if (!rc && !table_get_u64(&p->store.nodes, peer) && cons_role_of(&p->cons, peer) == ROLE_NONE)
			rc = errf(err, E_AUTH, "apply: node %016llx is not a member of this cluster", (unsigned long long)peer);
		if (!rc && !cons_is_leader(&p->cons))
			rc = errf(err, E_NOLEADER, "apply: this node is not the leader; retry");
		if (rc) {
			reply(c, m, M_APPLY_REP, rc, err);
			break;
		}
		struct apply_ctx *x = xcalloc(1, sizeof *x);
		*x = (struct apply_ctx){c, m->to, m->from, n->life, m->epoch, m->a};
		rc = cons_apply(&p->cons, m->data, m->len, apply_replied, x, err);
		if (rc) {
			free(x);
			reply(c, m, M_APPLY_REP, rc, err);
		}
		break;
	}
	case M_HB_REP:
		if (!plink_open(c, m->to, m->from, m->epoch))
			break;
		if (m->rc == E_NOLEADER) {
			/* the named leader is not the leader (any more): ask again */
			if (p->hint_host < 0) {
				p->stale = p->link_leader;
				p->stale_term = cons_term(&p->cons);
			}
			plink_broken(p);
			break;
		}
		if (m->rc == E_NOTFOUND) {
			/* node/link.c: told it is no longer a member, the daemon stops */
			n->stopped_self = true;
			snprintf(n->stop_why, sizeof n->stop_why, "%s", m->msg);
			proc_end(c, m->to);
		}
		break;
	case M_DOC:
		if (plink_open(c, m->to, m->from, m->epoch)) {
			struct mpr r;
			if (!mpr_decode(&r, m->data, m->len)) {
				fakert_assign(&p->rt, r.root);
				mpr_free(&r);
			}
		}
		break;
	case M_APPLY_REP:
		if (!plink_open(c, m->to, m->from, m->epoch))
			break;
		for (struct fwd **pp = &p->fwds; *pp; pp = &(*pp)->next)
			if ((*pp)->id == m->a) {
				struct fwd *f = *pp;
				*pp = f->next;
				struct apply_res res = {.rc = m->rc, .id = m->res_id};
				snprintf(res.msg, sizeof res.msg, "%s", m->msg);
				if (f->cb)
					f->cb(f->data, m->rc, &res);
				free(f);
				break;
			}
		break;
	case M_WHOIS: {
		/* node/rpc.c "whois": who leads, and is the asker still a member */
		raft_id lid;
		const char *laddr;
		if (cons_leader(&p->cons, &lid, &laddr)) {
			reply(c, m, M_WHOIS_REP, E_NOLEADER, "no leader known here either");
			break;
		}
		struct smsg *r = msg_new(c, M_WHOIS_REP, m->to, m->from);
		r->member = cons_role_of(&p->cons, m->a) != ROLE_NONE || table_get_u64(&p->store.nodes, m->a);
		r->res_id = lid;
		r->redirect = host_of_addr(c, laddr);
		msg_send(r);
		break;
	}
	case M_WHOIS_REP: {
		/* node/link.c w_frame */
		raft_id rid;
		const char *raddr;
		if (!p->whois || p->whois_host != m->from)
			break;
		p->whois = false;
		if (m->rc == 0 && !m->member && p->leaderless_since && now_of(c) - p->leaderless_since >= REMOVED_AFTER_MS) {
			n->stopped_self = true;
			snprintf(n->stop_why, sizeof n->stop_why, "%s says this node is no longer a member", c->n[m->from].ident.name);
			proc_end(c, m->to);
		} else if (m->rc == 0 && m->res_id && m->res_id != n->ident.id && m->redirect >= 0 &&
			   !raft_names(p, &rid, &raddr)) {
			p->hint_id = m->res_id;
			p->hint_host = m->redirect;
			p->retry_at = 0;
			plink_update(p);
		}
		break;
	}
	case M_JOIN_REP:
		break;
	}
	msg_drop(m);
}

/* ---- joining (the orch join client) ------------------------------------------------------------- */

struct join_timeout {
	struct snode *n;
	uint32_t attempt;
};

static void join_timed_out(struct world *w, void *arg)
{
	struct join_timeout *t = arg;
	(void)w;
	if (t->n->joining && t->n->join_try == t->attempt)
		join_done(t->n->cl, t->n->host, E_TIMEOUT, "join: no answer within 15 s");
	free(t);
}

static void join_send(struct simcl *c, unsigned i)
{
	struct snode *n = &c->n[i];
	if (!simnet_connected(&c->net, i, n->join_target) || !c->n[n->join_target].p) {
		/* connecting failed: back to the address given on the command line, once */
		if (n->join_target != n->join_via && now_of(c) < n->join_deadline) {
			n->join_target = n->join_via;
			join_send(c, i);
		} else
			join_done(c, i, E_IO, "join: cannot connect to the cluster");
		return;
	}
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", n->ident.id);
	mpw_kstr(&w, "name", n->ident.name);
	mpw_kstr(&w, "addr", n->ident.advertise);
	mpw_ku64(&w, "cpus_milli", 4000);
	mpw_ku64(&w, "memory", 8ull << 30);
	mpw_kstr(&w, "version", ORCH_VERSION);
	struct smsg *m = msg_new(c, M_JOIN, i, n->join_target);
	m->a = ++n->join_try;
	mpw_map_end(&w);
	m->data = (uint8_t *)mpw_take(&w, &m->len);
	mpw_free(&w);
	msg_send(m);
	struct join_timeout *t = xmalloc(sizeof *t);
	t->n = n;
	t->attempt = n->join_try;
	world_at(&c->w, JOIN_CALL_MS, join_timed_out, t, free, &n->life);
}

static void join_done(struct simcl *c, unsigned i, int rc, const char *msg)
{
	struct snode *n = &c->n[i];
	char err[ERR_LEN];
	n->joining = false;
	n->join_try++;
	if (rc) {
		n->join_failed = true;
		snprintf(n->join_err, sizeof n->join_err, "%s", msg);
		return;
	}
	n->joined = true;
	n->join_seed = (int)n->join_target;
	if (proc_start(c, i, false, err)) {
		n->join_failed = true;
		snprintf(n->join_err, sizeof n->join_err, "%s", err);
	}
}

void simcl_join(struct simcl *c, unsigned i, unsigned via)
{
	struct snode *n = &c->n[i];
	n->wanted = true;
	n->joining = true;
	n->join_failed = false;
	n->join_err[0] = 0;
	n->join_target = via;
	n->join_via = via;
	n->join_deadline = now_of(c) + JOIN_GIVE_UP_MS;
	join_send(c, i);
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
	simnet_init(&c->net, &c->w);
	c->o = *o;
	c->count = count;
	c->dir.n = count;
	c->wall0 = 1800000000000ull;
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
		n->ident.tok = c->tok;
		c->dir.id[i] = n->ident.id;
		snprintf(c->dir.addr[i], sizeof c->dir.addr[i], "%s", n->ident.advertise);
		simnet_host(&c->net, i, &n->life);
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
		proc_end(c, i);
	world_run_while_not(&c->w, c->w.now + 10000, none_closing, c);
	world_free(&c->w);
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

void simcl_kill(struct simcl *c, unsigned i)
{
	c->n[i].wanted = false;
	proc_end(c, i);
}

int simcl_restart(struct simcl *c, unsigned i, char *err)
{
	if (c->n[i].p)
		return errf(err, E_EXISTS, "node %u is running", i);
	c->n[i].wanted = true;
	return proc_start(c, i, false, err);
}

/* Connections that now cross the partition break at both ends. */
static void cut_links(struct simcl *c)
{
	for (unsigned k = 0; k < c->count; k++) {
		struct sproc *p = c->n[k].p;
		if (p && p->link_up && !simnet_connected(&c->net, k, p->link_host))
			plink_broken(p);
		if (p && p->whois && !simnet_connected(&c->net, k, p->whois_host))
			p->whois = false;
	}
}

void simcl_partition(struct simcl *c, const int *groups)
{
	simnet_partition(&c->net, groups, c->count);
	cut_links(c);
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
	uint64_t deadline = now_of(c) + within_ms;
	char last[ERR_LEN] = "no leader";
	while (now_of(c) < deadline) {
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
