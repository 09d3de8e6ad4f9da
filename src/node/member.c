#include "node/member.h"
#include "node/leader.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A join from op_join to its reply: queued, then holding the change slot (add, assign),
 * then committing its record. */
struct mjoin {
	struct leader *l;
	struct member_reply r;
	struct node *n;
	struct mjoin *next;
};

struct member {
	struct mjoin *queue, **tail; /* waiting for the slot, in arrival order */
	struct mjoin *committing;    /* records in flight: their names are taken */
	struct mjoin *serving;       /* the join holding the change slot */
	struct roles_change *plan;
	size_t nplan, next;
};

static struct member *get(struct leader *l)
{
	if (!l->member) {
		l->member = xcalloc(1, sizeof *l->member);
		l->member->tail = &l->member->queue;
	}
	return l->member;
}

/* ---- joins ------------------------------------------------------------------------------ */

static void join_free(struct mjoin *j)
{
	schema_free(&node_schema, j->n);
	free(j->n);
	free(j);
}

static void join_fail(struct mjoin *j, int rc, const char *msg)
{
	j->r.done(j->r.data, rc, msg, 0);
	join_free(j);
}

/* The joiner waits until it has applied commit_index: then `orch nodes` on it lists every
 * node the leader knew when it answered, itself included. */
static void join_reply(struct mjoin *j)
{
	const struct leader_host *h = j->l->host;
	j->r.done(j->r.data, 0, NULL, h->commit_index(h->data));
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

static void record_committed(void *data, int rc, const struct apply_res *res)
{
	struct mjoin *j = data;
	unlink_committing(get(j->l), j);
	/* E_EXISTS here is another node's name, not this node again (that is an upsert) */
	if (rc) {
		join_fail(j, rc, res->msg);
		return;
	}
	log_info(j->l->host->ident->name, j->l->host->clock, "node %s (%016llx) joined from %s", j->n->name, (unsigned long long)j->n->id, j->n->addr);
	join_reply(j);
}

static void commit_record(struct mjoin *j)
{
	const struct leader_host *h = j->l->host;
	struct member *m = get(j->l);
	char err[ERR_LEN];
	j->next = m->committing;
	m->committing = j;
	struct mpw w;
	mpw_init(&w);
	schema_encode(&node_schema, j->n, &w);
	if (h->submit(h->data, CMD_NODE_ADD, w.sb.data, w.sb.size, record_committed, j, err)) {
		struct apply_res res = {.rc = E_NOLEADER};
		snprintf(res.msg, sizeof res.msg, "%s", err);
		record_committed(j, E_NOLEADER, &res);
	}
	mpw_free(&w);
}

/* A change that failed because leadership moved is worth a retry elsewhere. */
static int change_rc(const struct leader *l)
{
	return l->host->is_leader(l->host->data) ? E_FAIL : E_NOLEADER;
}

static void standby_assigned(void *data, int status, const char *msg)
{
	struct mjoin *j = data;
	struct leader *l = j->l;
	l->change_inflight = false;
	get(l)->serving = NULL;
	if (status) {
		char m[ERR_LEN];
		snprintf(m, sizeof m, "join: making the node a standby failed: %s; retry", msg ? msg : "");
		join_fail(j, change_rc(l), m);
	} else {
		leader_saw(l, j->n->id);
		commit_record(j);
	}
	member_kick(l);
}

static void added(void *data, int status, const char *msg)
{
	struct mjoin *j = data;
	struct leader *l = j->l;
	const struct leader_host *h = l->host;
	char err[ERR_LEN];
	if (!status && node_spare_only(j->n)) { /* a hollow or worker node stays a spare (orchestrator/roles.h) */
		l->change_inflight = false;
		get(l)->serving = NULL;
		leader_saw(l, j->n->id);
		commit_record(j);
		member_kick(l);
		return;
	}
	if (!status && !h->assign(h->data, j->n->id, ROLE_STANDBY, standby_assigned, j, err))
		return; /* the slot stays taken: add and assign are one step for the queue */
	l->change_inflight = false;
	get(l)->serving = NULL;
	char m[ERR_LEN];
	snprintf(m, sizeof m, "join: adding the node to the raft configuration failed: %s; retry", status ? (msg ? msg : "") : err);
	join_fail(j, change_rc(l), m);
	member_kick(l);
}

static const struct mjoin *committing_named(struct member *m, const char *name, uint64_t id)
{
	for (const struct mjoin *j = m->committing; j; j = j->next)
		if (j->n->id != id && !strcmp(j->n->name, name))
			return j;
	return NULL;
}

/* Starts a join's change (it takes the slot), or answers it at once. */
static void serve(struct leader *l, struct member *m, struct mjoin *j)
{
	const struct leader_host *h = l->host;
	char err[ERR_LEN];
	if (j->r.waiting && !j->r.waiting(j->r.data)) { /* the joiner gave up waiting: it will not start */
		join_fail(j, E_TIMEOUT, "join: the joiner stopped waiting");
		return;
	}
	const struct node *same = store_node_by_name(h->store, j->n->name);
	const struct mjoin *other = committing_named(m, j->n->name, j->n->id);
	uint64_t taken = same && same->id != j->n->id ? same->id : other ? other->n->id : 0;
	if (taken) {
		snprintf(err, sizeof err, "join: the name %s is already used by node %016llx; pick another --name", j->n->name,
			 (unsigned long long)taken);
		join_fail(j, E_EXISTS, err);
		return;
	}
	enum cons_role role = leader_role_of(l, j->n->id);
	int rc = 0;
	if (role == ROLE_NONE)
		rc = h->add(h->data, j->n->id, j->n->addr, added, j, err);
	else if (role == ROLE_SPARE && !node_spare_only(j->n)) /* a join cut short by a leader change, announced again */
		rc = h->assign(h->data, j->n->id, ROLE_STANDBY, standby_assigned, j, err);
	else {
		leader_saw(l, j->n->id);
		commit_record(j); /* known server announcing itself again */
		return;
	}
	if (rc)
		join_fail(j, rc == E_NOLEADER ? E_NOLEADER : E_FAIL, err);
	else {
		l->change_inflight = true;
		m->serving = j;
	}
}

bool member_joining_spare(const struct leader *l, uint64_t id)
{
	const struct member *m = l->member;
	if (!m)
		return false;
	if (m->serving && m->serving->n->id == id)
		return node_spare_only(m->serving->n);
	for (const struct mjoin *j = m->committing; j; j = j->next)
		if (j->n->id == id)
			return node_spare_only(j->n);
	return false;
}

void member_join(struct leader *l, struct node *n, const struct member_reply *r)
{
	struct member *m = get(l);
	struct mjoin *j = xcalloc(1, sizeof *j);
	j->l = l;
	j->r = *r;
	j->n = n;
	*m->tail = j;
	m->tail = &j->next;
	member_kick(l);
}

static void fail_queue(struct member *m)
{
	while (m->queue) {
		struct mjoin *j = m->queue;
		m->queue = j->next;
		join_fail(j, E_NOLEADER, "join: leadership changed while the join waited; retry");
	}
	m->tail = &m->queue;
}

/* ---- role plan -------------------------------------------------------------------------- */

static enum cons_role cons_of(enum roles_role r)
{
	return r == ROLES_VOTER ? ROLE_VOTER : r == ROLES_STANDBY ? ROLE_STANDBY : ROLE_SPARE;
}

static void step_done(void *data, int status, const char *msg)
{
	struct leader *l = data;
	l->change_inflight = false;
	if (status) {
		/* later steps assumed this one: plan again at the next tick */
		log_warn(l->host->ident->name, l->host->clock, "role change failed: %s", msg ? msg : "");
		get(l)->next = get(l)->nplan;
	}
	member_kick(l);
}

/* Issues the next step of the plan (it takes the slot), skips it, or ends the plan. */
static void step(struct leader *l, struct member *m)
{
	const struct leader_host *h = l->host;
	const struct roles_change *c = &m->plan[m->next++];
	enum cons_role now = leader_role_of(l, c->id);
	if (now == cons_of(c->to))
		return; /* done meanwhile (a join made it a standby) */
	if (now != cons_of(c->from)) {
		m->next = m->nplan; /* the configuration moved under the plan */
		return;
	}
	char err[ERR_LEN];
	const struct node *n = table_get_u64(&h->store->nodes, c->id);
	log_info(h->ident->name, h->clock, "role: %s %016llx -> %s (%s)", n ? n->name : "node", (unsigned long long)c->id, roles_role_name(c->to), c->why);
	l->change_inflight = true;
	if (h->assign(h->data, c->id, cons_of(c->to), step_done, l, err)) {
		l->change_inflight = false;
		log_warn(h->ident->name, h->clock, "%s", err);
		m->next = m->nplan;
	}
}

bool member_plan(struct leader *l, const struct roles_change *c, size_t n)
{
	struct member *m = get(l);
	if (m->next < m->nplan)
		return false;
	free(m->plan);
	m->plan = n ? xmalloc(n * sizeof *c) : NULL;
	if (n)
		memcpy(m->plan, c, n * sizeof *c);
	m->nplan = n;
	m->next = 0;
	member_kick(l);
	return true;
}

/* ---- the slot ---------------------------------------------------------------------------- */

void member_kick(struct leader *l)
{
	const struct leader_host *h = l->host;
	struct member *m = get(l);
	while (!l->change_inflight) {
		if (!h->is_leader(h->data)) {
			fail_queue(m);
			m->next = m->nplan;
			return;
		}
		if (!l->caught_up)
			return; /* served once the state holds the whole log (node/leader.h) */
		/* role changes first: they restore fault tolerance; a plan is a few steps */
		if (m->next < m->nplan) {
			step(l, m);
			continue;
		}
		if (!m->queue)
			return;
		struct mjoin *j = m->queue;
		m->queue = j->next;
		if (!m->queue)
			m->tail = &m->queue;
		j->next = NULL;
		serve(l, m, j);
	}
}

void member_leadership(struct leader *l)
{
	struct member *m = get(l);
	fail_queue(m);
	m->next = m->nplan;
}

void member_close(struct leader *l)
{
	struct member *m = l->member;
	if (!m)
		return;
	fail_queue(m);
	free(m->plan);
	free(m);
	l->member = NULL;
}
