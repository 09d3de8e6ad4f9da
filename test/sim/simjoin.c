/* orch join in the simulation: the client a joining machine runs before its node starts
 * (cli/cmd_cluster.c cmd_join: follow redirects to the leader, wait and retry while there
 * is no leader or a change runs, give up after 30 s), and the request on the node it
 * reaches (node/rpc.c op_join), which hands the join to the leader's real membership code
 * (node/member.h). */
#include "simproc.h"
#include "node/member.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOIN_CALL_MS 15000 /* orch join's request timeout */
#define JOIN_GIVE_UP_MS 30000

/* ---- the node that is asked ------------------------------------------------------------------ */

struct join_ctx {
	struct snode *leader;
	uint32_t leader_life;
	struct sconn *c;
	uint64_t attempt;
	char addr[64];
};

static void join_replied(void *data, int rc, const char *msg, uint64_t commit_index)
{
	struct join_ctx *x = data;
	(void)commit_index;
	if (x->leader->life == x->leader_life && sconn_is_open(x->c, SCONN_SERVER)) {
		struct smsg *m = smsg_new(M_JOIN_REP);
		m->a = x->attempt;
		m->rc = rc;
		snprintf(m->msg, sizeof m->msg, "%s", msg ? msg : "");
		snprintf(m->addr, sizeof m->addr, "%s", rc ? "" : x->addr);
		sconn_send(x->c, SCONN_SERVER, m, smsg_free);
	}
	sconn_put(x->c);
	free(x);
}

/* The joiner stopped waiting (its connection closed): the join is not carried out. */
static bool join_waiting(void *data)
{
	const struct join_ctx *x = data;
	return sconn_is_open(x->c, SCONN_SERVER);
}

static void join_refuse(struct sconn *c, const struct smsg *m, int rc, const char *msg, const char *leader)
{
	struct smsg *r = smsg_new(M_JOIN_REP);
	r->a = m->a;
	r->rc = rc;
	snprintf(r->msg, sizeof r->msg, "%s", msg);
	snprintf(r->addr, sizeof r->addr, "%s", leader ? leader : "");
	sconn_send(c, SCONN_SERVER, r, smsg_free);
}

void join_serve(struct sproc *p, struct sconn *c, const struct smsg *m)
{
	if (!cons_is_leader(&p->cons)) {
		raft_id lid;
		const char *laddr;
		cons_leader(&p->cons, &lid, &laddr);
		join_refuse(c, m, E_NOLEADER, laddr ? "not the leader" : "no leader elected yet; retry", laddr);
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
	const struct node *same = rc ? NULL : store_node_by_name(&p->store, nd->name);
	if (!rc && same && same->id != nd->id)
		rc = errf(err, E_EXISTS, "join: the name %s is already used by node %016llx; pick another --name", nd->name,
			  (unsigned long long)same->id);
	if (rc) {
		schema_free(&node_schema, nd);
		free(nd);
		join_refuse(c, m, rc, err, NULL);
		return;
	}
	nd->state = NS_READY;
	nd->availability = NA_ACTIVE;
	nd->joined_at = proc_wall(p);
	struct join_ctx *x = xcalloc(1, sizeof *x);
	*x = (struct join_ctx){p->n, p->n->life, c, m->a, ""};
	snprintf(x->addr, sizeof x->addr, "%s", p->n->ident.advertise);
	sconn_hold(c);
	struct member_reply mr = {join_replied, join_waiting, x};
	member_join(&p->leader, nd, &mr);
}

/* ---- the joining machine (orch join) --------------------------------------------------------- */

static void join_send(struct simcl *c, unsigned i);
static void join_done(struct simcl *c, unsigned i, int rc, const char *msg);

static void join_retry(struct world *w, void *arg)
{
	struct snode *n = arg;
	(void)w;
	if (n->joining)
		join_send(n->cl, n->host);
}

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

static void jc_close(struct snode *n)
{
	struct sconn *c = n->join_conn;
	n->join_conn = NULL;
	if (c)
		sconn_close(c, SCONN_CLIENT, NULL);
}

static void jc_ready(struct sconn *conn, void *data)
{
	struct snode *n = data;
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", n->ident.id);
	mpw_kstr(&w, "name", n->ident.name);
	mpw_kstr(&w, "addr", n->ident.advertise);
	mpw_ku64(&w, "cpus_milli", 4000);
	mpw_ku64(&w, "memory", 8ull << 30);
	mpw_kstr(&w, "version", ORCH_VERSION);
	if (n->worker) /* the request's worker flag (net/proto.h), carried in the record here */
		mpw_kbool(&w, "worker", true);
	mpw_map_end(&w);
	struct smsg *m = smsg_new(M_JOIN);
	m->a = n->join_try;
	m->data = (uint8_t *)mpw_take(&w, &m->len);
	mpw_free(&w);
	sconn_send(conn, SCONN_CLIENT, m, smsg_free);
}

/* The answer: follow a redirect, wait and retry while there is no leader or a change
 * runs, give up after 30 s. */
static void jc_frame(struct sconn *conn, void *data, const void *msg)
{
	struct snode *n = data;
	struct simcl *c = n->cl;
	const struct smsg *m = msg;
	(void)conn;
	if (!n->joining || m->kind != M_JOIN_REP || m->a != n->join_try)
		return;
	n->join_try++; /* the request is answered: its timeout no longer counts */
	jc_close(n);
	if (m->rc == E_NOLEADER || m->rc == E_BUSY) {
		if (c->w.now > n->join_deadline) {
			join_done(c, n->host, m->rc, m->msg);
			return;
		}
		int h = m->addr[0] ? host_of_addr(c, m->addr) : -1;
		if (h >= 0) {
			n->join_target = (unsigned)h;
			join_send(c, n->host);
		} else
			world_at(&c->w, 200, join_retry, n, NULL, &n->life);
		return;
	}
	if (!m->rc)
		n->join_seed = host_of_addr(c, m->addr);
	join_done(c, n->host, m->rc, m->msg);
}

/* The connection failed or broke before the answer: connecting failed goes back to the
 * address given on the command line, once; a call cut short fails the join. */
static void jc_closed(struct sconn *conn, void *data, const char *why)
{
	struct snode *n = data;
	struct simcl *c = n->cl;
	if (n->join_conn != conn)
		return;
	n->join_conn = NULL;
	if (!n->joining)
		return;
	char msg[ERR_LEN];
	if (!conn->ready) {
		if (n->join_target != n->join_via && c->w.now < n->join_deadline) {
			n->join_target = n->join_via;
			join_send(c, n->host);
			return;
		}
		snprintf(msg, sizeof msg, "join: cannot connect to %s: %s", c->n[n->join_target].ident.advertise, why ? why : "closed");
		join_done(c, n->host, E_IO, msg);
		return;
	}
	snprintf(msg, sizeof msg, "join: the connection to %s broke: %s", c->n[n->join_target].ident.advertise, why ? why : "closed");
	join_done(c, n->host, E_IO, msg);
}

static const struct sconn_ops join_ops = {jc_ready, jc_frame, jc_closed};

static void join_send(struct simcl *c, unsigned i)
{
	struct snode *n = &c->n[i];
	jc_close(n);
	n->join_try++;
	n->join_conn = sconn_open(&c->conns, i, &n->life, n->join_target, &join_ops, n);
	struct join_timeout *t = xmalloc(sizeof *t);
	t->n = n;
	t->attempt = n->join_try;
	world_at(&c->w, JOIN_CALL_MS, join_timed_out, t, free, &n->life);
}

static void join_done(struct simcl *c, unsigned i, int rc, const char *msg)
{
	struct snode *n = &c->n[i];
	char err[ERR_LEN];
	jc_close(n);
	n->joining = false;
	n->join_try++;
	if (rc) {
		n->join_failed = true;
		snprintf(n->join_err, sizeof n->join_err, "%s", msg);
		return;
	}
	n->joined = true;
	if (n->join_seed < 0)
		n->join_seed = (int)n->join_target;
	if (n->worker) { /* the mark keeps the leader that accepted it (node/worker.h) */
		snprintf(n->kept[0], sizeof n->kept[0], "%s", c->dir.addr[n->join_seed]);
		n->nkept = 1;
	}
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
	n->join_deadline = c->w.now + JOIN_GIVE_UP_MS;
	join_send(c, i);
}
