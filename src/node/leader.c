/* Work done on every tick while this node leads: commit the cluster record after
 * bootstrap, track liveness from heartbeats (committing node up/down transitions only),
 * and manage Raft roles: 3 voters once there are 3 nodes, 5 once there are 5, every other
 * node a standby (it receives the log, so promoting it is instant). One membership change
 * at a time, as libraft requires. */
#include "node/leader.h"
#include "orchestrator/reconcile.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t now(const struct leader *l)
{
	return clock_now(l->host->clock);
}

static uint64_t wall(const struct leader *l)
{
	return clock_wall(l->host->clock);
}

static uint64_t failure_timeout(const struct leader *l)
{
	const struct store *s = l->host->store;
	return s->has_cluster && s->cluster.failure_timeout_ms ? s->cluster.failure_timeout_ms : 5000;
}

void leader_init(struct leader *l, const struct leader_host *host, const struct leader_config *cfg)
{
	memset(l, 0, sizeof *l);
	l->host = host;
	l->cfg = *cfg;
}

void leader_free(struct leader *l)
{
	free(l->seen);
	l->seen = NULL;
	l->nseen = 0;
}

void leader_start(struct leader *l)
{
	l->leader_since = now(l);
	l->change_inflight = false;
}

void leader_saw(struct leader *l, uint64_t id)
{
	for (size_t i = 0; i < l->nseen; i++)
		if (l->seen[i].id == id) {
			l->seen[i].last_ms = now(l);
			return;
		}
	l->seen = xrealloc(l->seen, (l->nseen + 1) * sizeof *l->seen);
	l->seen[l->nseen].id = id;
	l->seen[l->nseen].last_ms = now(l);
	l->nseen++;
}

static uint64_t seen_at(const struct leader *l, uint64_t id)
{
	for (size_t i = 0; i < l->nseen; i++)
		if (l->seen[i].id == id)
			return l->seen[i].last_ms;
	return 0;
}

static bool seen_recently(const struct leader *l, uint64_t id)
{
	uint64_t last = seen_at(l, id);
	return id == l->host->ident->id || (last && now(l) - last < failure_timeout(l));
}

/* A node counts as alive when it heartbeated within the failure timeout, or, during the
 * first failure timeout of this leadership (liveness is not replicated), by default. */
bool leader_alive(const struct leader *l, uint64_t id)
{
	return seen_recently(l, id) || now(l) - l->leader_since < failure_timeout(l);
}

static enum cons_role role_of(const struct leader *l, uint64_t id)
{
	const struct leader_host *h = l->host;
	unsigned n = h->nservers(h->data);
	for (unsigned i = 0; i < n; i++) {
		uint64_t sid;
		enum cons_role role;
		h->server(h->data, i, &sid, &role);
		if (sid == id)
			return role;
	}
	return ROLE_NONE;
}

int leader_heartbeat(struct leader *l, uint64_t id, char *err)
{
	if (!table_get_u64(&l->host->store->nodes, id) && role_of(l, id) == ROLE_NONE && now(l) - l->leader_since > 5000)
		return errf(err, E_NOTFOUND, "this node is not a member of the cluster (removed?)");
	leader_saw(l, id);
	return 0;
}

/* ---- joins ------------------------------------------------------------------------------- */

struct join {
	struct leader *l;
	struct node *n; /* the record to commit */
	leader_join_cb cb;
	void *data;
};

static void join_end(struct join *j, int rc, const char *msg)
{
	if (!rc)
		log_info("node %s (%016llx) joined from %s", j->n->name, (unsigned long long)j->n->id, j->n->addr);
	j->cb(j->data, rc, msg);
	schema_free(&node_schema, j->n);
	free(j->n);
	free(j);
}

static void join_committed(void *data, int rc, const struct apply_res *res)
{
	join_end(data, rc == E_EXISTS ? 0 : rc, res->msg);
}

static void join_commit(struct join *j)
{
	const struct leader_host *h = j->l->host;
	char err[ERR_LEN];
	struct mpw w;
	mpw_init(&w);
	schema_encode(&node_schema, j->n, &w);
	if (h->submit(h->data, "node.add", w.sb.data, w.sb.size, join_committed, j, err))
		join_end(j, E_NOLEADER, err);
	mpw_free(&w);
}

static void join_added(void *data, int status, const char *msg)
{
	struct join *j = data;
	j->l->change_inflight = false;
	if (status) {
		char m[ERR_LEN];
		snprintf(m, sizeof m, "adding the node to the raft configuration failed: %s", msg ? msg : "");
		join_end(j, E_FAIL, m);
		return;
	}
	leader_saw(j->l, j->n->id);
	join_commit(j);
}

int leader_join(struct leader *l, struct node *n, leader_join_cb cb, void *data, char *err)
{
	const struct leader_host *h = l->host;
	const struct node *same = store_node_by_name(h->store, n->name);
	int rc = 0;
	if (same && same->id != n->id)
		rc = errf(err, E_EXISTS, "join: the name %s is already used by node %016llx; pick another --name", n->name,
			  (unsigned long long)same->id);
	else if (role_of(l, n->id) == ROLE_NONE && l->change_inflight)
		rc = errf(err, E_BUSY, "join: another membership change is in progress; retry");
	if (rc) {
		schema_free(&node_schema, n);
		free(n);
		return rc;
	}
	free(n->state);
	n->state = xstrdup("ready");
	free(n->availability);
	n->availability = xstrdup("active");
	n->joined_at = wall(l);
	struct join *j = xcalloc(1, sizeof *j);
	*j = (struct join){l, n, cb, data};
	if (role_of(l, n->id) != ROLE_NONE) {
		leader_saw(l, n->id);
		join_commit(j); /* known server announcing itself again */
		return 0;
	}
	l->change_inflight = true;
	if (h->add(h->data, n->id, n->addr, join_added, j, err)) {
		l->change_inflight = false;
		free(j);
		schema_free(&node_schema, n);
		free(n);
		return E_BUSY;
	}
	return 0;
}

/* ---- bootstrap record ------------------------------------------------------------------ */

static void init_done(void *data, int rc, const struct apply_res *res)
{
	struct leader *l = data;
	l->init_inflight = false;
	if (rc && rc != E_EXISTS) {
		log_error("committing the cluster record failed: %s", res->msg);
		return;
	}
}

static void self_added(void *data, int rc, const struct apply_res *res)
{
	struct leader *l = data;
	l->init_inflight = false;
	if (rc && rc != E_EXISTS) {
		log_error("committing this node's record failed: %s", res->msg);
		return;
	}
	l->host->ready(l->host->data, "ok");
}

static void self_record(struct leader *l, struct node *n)
{
	const struct identity *id = l->host->ident;
	memset(n, 0, sizeof *n);
	n->id = id->id;
	n->name = xstrdup(id->name);
	n->addr = xstrdup(id->advertise);
	n->state = xstrdup("ready");
	n->availability = xstrdup("active");
	n->cpus_milli = l->cfg.cpus_milli;
	n->memory = l->cfg.memory;
	n->joined_at = wall(l);
	n->version = xstrdup(ORCH_VERSION);
	for (size_t i = 0; i < l->cfg.nlabels; i++) {
		const char *eq = strchr(l->cfg.labels[i], '=');
		char *k = xstrndup(l->cfg.labels[i], (size_t)(eq - l->cfg.labels[i]));
		labels_set(&n->labels, k, eq + 1);
		free(k);
	}
}

static void ensure_records(struct leader *l)
{
	const struct leader_host *h = l->host;
	char err[ERR_LEN];
	if (l->init_inflight)
		return;
	if (!h->store->has_cluster) {
		if (!l->cfg.bootstrap)
			return;
		char cid[17], hash[65];
		token_cluster_hex(&h->ident->tok, cid);
		token_secret_hash(&h->ident->tok, hash);
		struct mpw w;
		mpw_init(&w);
		mpw_map(&w, 4);
		mpw_ku64(&w, "failure_timeout_ms", l->cfg.failure_timeout_ms ? l->cfg.failure_timeout_ms : 5000);
		mpw_kstr(&w, "id", cid);
		mpw_kstr(&w, "secret_hash", hash);
		mpw_ku64(&w, "created_at", wall(l));
		l->init_inflight = !h->submit(h->data, "cluster.init", w.sb.data, w.sb.size, init_done, l, err);
		mpw_free(&w);
		return;
	}
	if (!table_get_u64(&h->store->nodes, h->ident->id)) {
		struct node n;
		self_record(l, &n);
		struct mpw w;
		mpw_init(&w);
		schema_encode(&node_schema, &n, &w);
		schema_free(&node_schema, &n);
		l->init_inflight = !h->submit(h->data, "node.add", w.sb.data, w.sb.size, self_added, l, err);
		mpw_free(&w);
		return;
	}
	h->ready(h->data, "ok");
}

/* ---- liveness ------------------------------------------------------------------------------ */

static void liveness_done(void *data, int rc, const struct apply_res *res)
{
	struct leader *l = data;
	(void)rc;
	(void)res;
	l->liveness_inflight = false;
}

/* The "events" entry of a node.update: node_down / node_ready, with why. */
static void liveness_event(const struct leader *l, const struct node *n, const char *want, struct mpw *w)
{
	char msg[256];
	if (!strcmp(want, "down"))
		snprintf(msg, sizeof msg, "node %s is down: no heartbeat for %llu ms; its tasks are rescheduled", n->name,
			 (unsigned long long)failure_timeout(l));
	else
		snprintf(msg, sizeof msg, "node %s is ready: heartbeats resumed", n->name);
	mpw_str(w, "events");
	mpw_arr(w, 1);
	mpw_map(w, 3);
	mpw_kstr(w, "kind", !strcmp(want, "down") ? "node_down" : "node_ready");
	mpw_ku64(w, "node", n->id);
	mpw_kstr(w, "message", msg);
}

static void liveness(struct leader *l)
{
	const struct leader_host *h = l->host;
	if (l->liveness_inflight)
		return;
	TABLE_FOREACH(&h->store->nodes, const struct node, n) {
		const char *want = seen_recently(l, n->id) ? "ready" : !leader_alive(l, n->id) ? "down" : NULL;
		if (!want)
			continue;
		if (!n->state || !strcmp(n->state, want))
			continue;
		char err[ERR_LEN];
		struct mpw w;
		mpw_init(&w);
		mpw_map(&w, 4);
		mpw_ku64(&w, "id", n->id);
		mpw_kstr(&w, "state", want);
		mpw_ku64(&w, "at", wall(l));
		liveness_event(l, n, want, &w);
		log_info("node %s is %s", n->name, want);
		l->liveness_inflight = !h->submit(h->data, "node.update", w.sb.data, w.sb.size, liveness_done, l, err);
		mpw_free(&w);
		return; /* one at a time */
	}
}

/* ---- roles ----------------------------------------------------------------------------------- */

static void role_done(void *data, int status, const char *msg)
{
	struct leader *l = data;
	l->change_inflight = false;
	if (status)
		log_warn("role change failed: %s", msg ? msg : "");
}

static void assign(struct leader *l, uint64_t id, enum cons_role role, const char *why)
{
	const struct leader_host *h = l->host;
	char err[ERR_LEN];
	const struct node *n = table_get_u64(&h->store->nodes, id);
	log_info("role: %s %016llx -> %s (%s)", n ? n->name : "node", (unsigned long long)id, cons_role_name(role), why);
	l->change_inflight = true;
	if (h->assign(h->data, id, role, role_done, l, err)) {
		l->change_inflight = false;
		log_warn("%s", err);
	}
}

static void roles(struct leader *l)
{
	const struct leader_host *h = l->host;
	if (l->change_inflight)
		return;
	unsigned n = h->nservers(h->data), voters = 0, alive_voters = 0;
	unsigned target = n >= 5 ? 5 : n >= 3 ? 3 : 1;
	uint64_t spare_alive = 0, standby_alive = 0, dead_voter = 0, extra_voter = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t id;
		enum cons_role role;
		h->server(h->data, i, &id, &role);
		bool alive = leader_alive(l, id);
		/* Only nodes that have a record (joined completely) are given a role. */
		bool known = table_get_u64(&h->store->nodes, id) != NULL;
		if (role == ROLE_VOTER) {
			voters++;
			if (alive) {
				alive_voters++;
				if (id != h->ident->id)
					extra_voter = id;
			} else
				dead_voter = id;
		} else if (role == ROLE_SPARE && alive && known) {
			spare_alive = id;
		} else if (role == ROLE_STANDBY && alive && known) {
			standby_alive = id;
		}
	}
	if (alive_voters < target && standby_alive) {
		assign(l, standby_alive, ROLE_VOTER, dead_voter ? "replacing a voter that is down" : "growing the voter set");
		return;
	}
	if (voters > target && dead_voter) {
		assign(l, dead_voter, ROLE_SPARE, "voter is down and has been replaced");
		return;
	}
	if (alive_voters > target && extra_voter) {
		assign(l, extra_voter, ROLE_STANDBY, "more voters than needed");
		return;
	}
	if (spare_alive) {
		assign(l, spare_alive, ROLE_STANDBY, "keeping a standby ready for promotion");
		return;
	}
}

/* ---- workloads ------------------------------------------------------------------------------ */

/* Only nodes that heartbeated recently get new tasks: a leader just elected does not
 * place work on a node (the old leader, say) it has not heard from yet. */
static bool placeable(uint64_t node, void *arg)
{
	return seen_recently(arg, node);
}

static void reconciled(void *data, int rc, const struct apply_res *res)
{
	struct leader *l = data;
	l->reconcile_inflight = false;
	if (rc && rc != E_EXISTS)
		log_warn("reconcile batch rejected: %s", res->msg);
}

static void workloads(struct leader *l)
{
	const struct leader_host *h = l->host;
	if (l->reconcile_inflight)
		return;
	struct mpw w;
	mpw_init(&w);
	if (reconcile_live(h->store, wall(l), &w, placeable, l)) {
		char err[ERR_LEN];
		TRACE("sched", h->ident->name, "task batch %zu bytes", (size_t)w.sb.size);
		l->reconcile_inflight = !h->submit(h->data, "task.batch", w.sb.data, w.sb.size, reconciled, l, err);
	}
	mpw_free(&w);
}

void leader_tick(struct leader *l)
{
	const struct leader_host *h = l->host;
	leader_saw(l, h->ident->id);
	ensure_records(l);
	if (!h->store->has_cluster)
		return;
	liveness(l);
	roles(l);
	workloads(l);
	if (h->autoscale)
		h->autoscale(h->data);
	if (h->watch_push)
		h->watch_push(h->data);
}
