#include "node/member.h"
#include "node/daemon.h"
#include "net/conn.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A join from op_join to its reply: queued, then holding the change slot (add, assign),
 * then committing its record. */
struct mjoin {
	struct daemon *d;
	struct pending *p;
	struct node *n;
	struct mjoin *next;
};

struct member {
	struct mjoin *queue, **tail; /* waiting for the slot, in arrival order */
	struct mjoin *committing;    /* records in flight: their names are taken */
	struct roles_change *plan;
	size_t nplan, next;
};

static struct member *get(struct daemon *d)
{
	if (!d->member) {
		d->member = xcalloc(1, sizeof *d->member);
		d->member->tail = &d->member->queue;
	}
	return d->member;
}

/* ---- joins ------------------------------------------------------------------------------ */

static void join_free(struct mjoin *j)
{
	pending_free(j->p);
	schema_free(&node_schema, j->n);
	free(j->n);
	free(j);
}

static void join_fail(struct mjoin *j, int rc, const char *msg)
{
	rpc_reply_err(j->p->conn, j->p->req_id, rc, msg);
	join_free(j);
}

/* The joiner waits until it has applied commit_index: then `orch nodes` on it lists every
 * node the leader knew when it answered, itself included. */
static void join_reply(struct mjoin *j)
{
	struct daemon *d = j->d;
	if (j->p->conn) {
		char cid[17];
		token_cluster_hex(&d->ident.tok, cid);
		struct mpw w;
		mpw_init(&w);
		rpc_reply_begin(&w, j->p->req_id, 0, 3);
		mpw_kstr(&w, "cluster", cid);
		mpw_kstr(&w, "leader", d->ident.advertise);
		mpw_ku64(&w, "commit_index", cons_commit_index(&d->cons));
		conn_send_mpw(j->p->conn, &w);
		mpw_free(&w);
	}
	join_free(j);
}

static void unlink_committing(struct member *m, struct mjoin *j)
{
	for (struct mjoin **pp = &m->committing; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			return;
		}
}

static void record_committed(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct mjoin *j = data;
	unlink_committing(get(d), j);
	/* E_EXISTS here is another node's name, not this node again (that is an upsert) */
	if (rc) {
		join_fail(j, rc, res->msg);
		return;
	}
	log_info("node %s (%016llx) joined from %s", j->n->name, (unsigned long long)j->n->id, j->n->addr);
	join_reply(j);
}

static void commit_record(struct daemon *d, struct mjoin *j)
{
	struct member *m = get(d);
	char err[ERR_LEN];
	j->next = m->committing;
	m->committing = j;
	struct mpw w;
	mpw_init(&w);
	schema_encode(&node_schema, j->n, &w);
	if (daemon_submit(d, "node.add", w.sb.data, w.sb.size, record_committed, j, err)) {
		struct apply_res res = {.rc = E_NOLEADER};
		snprintf(res.msg, sizeof res.msg, "%s", err);
		record_committed(d, j, E_NOLEADER, &res);
	}
	mpw_free(&w);
}

/* A change that failed because leadership moved is worth a retry elsewhere. */
static int change_rc(struct daemon *d)
{
	return cons_is_leader(&d->cons) ? E_FAIL : E_NOLEADER;
}

static void standby_assigned(void *data, int status, const char *msg)
{
	struct mjoin *j = data;
	struct daemon *d = j->d;
	d->change_inflight = false;
	if (status) {
		char m[ERR_LEN];
		snprintf(m, sizeof m, "join: making the node a standby failed: %s; retry", msg ? msg : "");
		join_fail(j, change_rc(d), m);
	} else {
		leader_saw(d, j->n->id);
		commit_record(d, j);
	}
	member_kick(d);
}

static void added(void *data, int status, const char *msg)
{
	struct mjoin *j = data;
	struct daemon *d = j->d;
	char err[ERR_LEN];
	if (!status && !cons_assign(&d->cons, j->n->id, ROLE_STANDBY, standby_assigned, j, err))
		return; /* the slot stays taken: add and assign are one step for the queue */
	d->change_inflight = false;
	char m[ERR_LEN];
	snprintf(m, sizeof m, "join: adding the node to the raft configuration failed: %s; retry", status ? (msg ? msg : "") : err);
	join_fail(j, change_rc(d), m);
	member_kick(d);
}

static const struct mjoin *committing_named(struct member *m, const char *name, uint64_t id)
{
	for (const struct mjoin *j = m->committing; j; j = j->next)
		if (j->n->id != id && !strcmp(j->n->name, name))
			return j;
	return NULL;
}

/* Starts a join's change (it takes the slot), or answers it at once. */
static void serve(struct daemon *d, struct member *m, struct mjoin *j)
{
	char err[ERR_LEN];
	if (!j->p->conn) { /* the joiner gave up waiting: it will not start */
		join_free(j);
		return;
	}
	const struct node *same = store_node_by_name(&d->store, j->n->name);
	const struct mjoin *other = committing_named(m, j->n->name, j->n->id);
	uint64_t taken = same && same->id != j->n->id ? same->id : other ? other->n->id : 0;
	if (taken) {
		snprintf(err, sizeof err, "join: the name %s is already used by node %016llx; pick another --name", j->n->name,
			 (unsigned long long)taken);
		join_fail(j, E_EXISTS, err);
		return;
	}
	enum cons_role role = cons_role_of(&d->cons, j->n->id);
	int rc = 0;
	if (role == ROLE_NONE)
		rc = cons_add(&d->cons, j->n->id, j->n->addr, added, j, err);
	else if (role == ROLE_SPARE) /* a join cut short by a leader change, announced again */
		rc = cons_assign(&d->cons, j->n->id, ROLE_STANDBY, standby_assigned, j, err);
	else {
		leader_saw(d, j->n->id);
		commit_record(d, j); /* known server announcing itself again */
		return;
	}
	if (rc)
		join_fail(j, rc == E_NOLEADER ? E_NOLEADER : E_FAIL, err);
	else
		d->change_inflight = true;
}

void member_join(struct daemon *d, struct pending *p, struct node *n)
{
	struct member *m = get(d);
	struct mjoin *j = xcalloc(1, sizeof *j);
	j->d = d;
	j->p = p;
	j->n = n;
	*m->tail = j;
	m->tail = &j->next;
	member_kick(d);
}

static void fail_queue(struct daemon *d, struct member *m)
{
	while (m->queue) {
		struct mjoin *j = m->queue;
		m->queue = j->next;
		join_fail(j, E_NOLEADER, "join: leadership changed while the join waited; retry");
	}
	m->tail = &m->queue;
	(void)d;
}

/* ---- role plan -------------------------------------------------------------------------- */

static enum cons_role cons_of(enum roles_role r)
{
	return r == ROLES_VOTER ? ROLE_VOTER : r == ROLES_STANDBY ? ROLE_STANDBY : ROLE_SPARE;
}

static void step_done(void *data, int status, const char *msg)
{
	struct daemon *d = data;
	d->change_inflight = false;
	if (status) {
		/* later steps assumed this one: plan again at the next tick */
		log_warn("role change failed: %s", msg ? msg : "");
		get(d)->next = get(d)->nplan;
	}
	member_kick(d);
}

/* Issues the next step of the plan (it takes the slot), skips it, or ends the plan. */
static void step(struct daemon *d, struct member *m)
{
	const struct roles_change *c = &m->plan[m->next++];
	enum cons_role now = cons_role_of(&d->cons, c->id);
	if (now == cons_of(c->to))
		return; /* done meanwhile (a join made it a standby) */
	if (now != cons_of(c->from)) {
		m->next = m->nplan; /* the configuration moved under the plan */
		return;
	}
	char err[ERR_LEN];
	const struct node *n = table_get_u64(&d->store.nodes, c->id);
	log_info("role: %s %016llx -> %s (%s)", n ? n->name : "node", (unsigned long long)c->id, roles_role_name(c->to), c->why);
	d->change_inflight = true;
	if (cons_assign(&d->cons, c->id, cons_of(c->to), step_done, d, err)) {
		d->change_inflight = false;
		log_warn("%s", err);
		m->next = m->nplan;
	}
}

bool member_plan(struct daemon *d, const struct roles_change *c, size_t n)
{
	struct member *m = get(d);
	if (m->next < m->nplan)
		return false;
	free(m->plan);
	m->plan = n ? xmalloc(n * sizeof *c) : NULL;
	if (n)
		memcpy(m->plan, c, n * sizeof *c);
	m->nplan = n;
	m->next = 0;
	member_kick(d);
	return true;
}

/* ---- the slot ---------------------------------------------------------------------------- */

void member_kick(struct daemon *d)
{
	struct member *m = get(d);
	while (!d->change_inflight && !d->stopping) {
		if (!cons_is_leader(&d->cons)) {
			fail_queue(d, m);
			m->next = m->nplan;
			return;
		}
		/* role changes first: they restore fault tolerance; a plan is a few steps */
		if (m->next < m->nplan) {
			step(d, m);
			continue;
		}
		if (!m->queue)
			return;
		struct mjoin *j = m->queue;
		m->queue = j->next;
		if (!m->queue)
			m->tail = &m->queue;
		j->next = NULL;
		serve(d, m, j);
	}
}

void member_leadership(struct daemon *d)
{
	struct member *m = get(d);
	fail_queue(d, m);
	m->next = m->nplan;
}

void member_close(struct daemon *d)
{
	struct member *m = d->member;
	if (!m)
		return;
	while (m->queue) {
		struct mjoin *j = m->queue;
		m->queue = j->next;
		join_free(j);
	}
	free(m->plan);
	free(m);
	d->member = NULL;
}
