/* Work done on every tick while this node leads: commit the cluster record after
 * bootstrap, track liveness from heartbeats (committing node up/down transitions only),
 * and manage Raft roles: 3 voters once there are 3 nodes, 5 once there are 5, every other
 * live node a standby (it receives the log, so promoting it is instant), planned by
 * orchestrator/roles.c and run by node/member.c. */
#include "node/daemon.h"
#include "metrics/scaling.h"
#include "node/member.h"
#include "orchestrator/roles.h"
#include "orchestrator/reconcile.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t failure_timeout(const struct daemon *d)
{
	return d->store.has_cluster && d->store.cluster.failure_timeout_ms ? d->store.cluster.failure_timeout_ms : 5000;
}

void leader_saw(struct daemon *d, uint64_t id)
{
	for (size_t i = 0; i < d->nseen; i++)
		if (d->seen[i].id == id) {
			d->seen[i].last_ms = now_ms();
			return;
		}
	d->seen = xrealloc(d->seen, (d->nseen + 1) * sizeof *d->seen);
	d->seen[d->nseen].id = id;
	d->seen[d->nseen].last_ms = now_ms();
	d->nseen++;
}

static uint64_t seen_at(const struct daemon *d, uint64_t id)
{
	for (size_t i = 0; i < d->nseen; i++)
		if (d->seen[i].id == id)
			return d->seen[i].last_ms;
	return 0;
}

static bool seen_recently(const struct daemon *d, uint64_t id)
{
	uint64_t last = seen_at(d, id);
	return id == d->ident.id || (last && now_ms() - last < failure_timeout(d));
}

/* A node counts as alive when it heartbeated within the failure timeout, or, during the
 * first failure timeout of this leadership (liveness is not replicated), by default. */
bool leader_alive(struct daemon *d, uint64_t id)
{
	return seen_recently(d, id) || now_ms() - d->leader_since < failure_timeout(d);
}

/* ---- bootstrap record ------------------------------------------------------------------ */

static bool init_inflight;

void leader_reset(void);
void leader_reset(void)
{
	init_inflight = false;
}

static void init_done(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)data;
	init_inflight = false;
	if (rc && rc != E_EXISTS) {
		log_error("committing the cluster record failed: %s", res->msg);
		return;
	}
}

static void self_added(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)data;
	init_inflight = false;
	if (rc && rc != E_EXISTS) {
		log_error("committing this node's record failed: %s", res->msg);
		return;
	}
	daemon_ready(d, "ok");
}

static void self_record(struct daemon *d, struct node *n)
{
	memset(n, 0, sizeof *n);
	n->id = d->ident.id;
	n->name = xstrdup(d->ident.name);
	n->addr = xstrdup(d->ident.advertise);
	n->state = xstrdup("ready");
	n->availability = xstrdup("active");
	n->cpus_milli = d->opts.cpus_milli;
	n->memory = d->opts.memory;
	n->joined_at = wall_ms();
	n->version = xstrdup(ORCH_VERSION);
	for (size_t i = 0; i < d->opts.nlabels; i++) {
		const char *eq = strchr(d->opts.labels[i], '=');
		char *k = xstrndup(d->opts.labels[i], (size_t)(eq - d->opts.labels[i]));
		labels_set(&n->labels, k, eq + 1);
		free(k);
	}
}

static void ensure_records(struct daemon *d)
{
	char err[ERR_LEN];
	if (init_inflight)
		return;
	if (!d->store.has_cluster) {
		if (!d->opts.bootstrap)
			return;
		char cid[17], hash[65];
		token_cluster_hex(&d->ident.tok, cid);
		token_secret_hash(&d->ident.tok, hash);
		struct mpw w;
		mpw_init(&w);
		mpw_map(&w, 4);
		mpw_ku64(&w, "failure_timeout_ms", d->opts.failure_timeout_ms ? d->opts.failure_timeout_ms : 5000);
		mpw_kstr(&w, "id", cid);
		mpw_kstr(&w, "secret_hash", hash);
		mpw_ku64(&w, "created_at", wall_ms());
		init_inflight = !daemon_submit(d, "cluster.init", w.sb.data, w.sb.size, init_done, NULL, err);
		mpw_free(&w);
		return;
	}
	if (!table_get_u64(&d->store.nodes, d->ident.id)) {
		struct node n;
		self_record(d, &n);
		struct mpw w;
		mpw_init(&w);
		schema_encode(&node_schema, &n, &w);
		schema_free(&node_schema, &n);
		init_inflight = !daemon_submit(d, "node.add", w.sb.data, w.sb.size, self_added, NULL, err);
		mpw_free(&w);
		return;
	}
	daemon_ready(d, "ok");
}

/* ---- liveness ------------------------------------------------------------------------------ */

static bool liveness_inflight;

static void liveness_done(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)d;
	(void)data;
	(void)rc;
	(void)res;
	liveness_inflight = false;
}

/* The "events" entry of a node.update: node_down / node_ready, with why. */
static void liveness_event(struct daemon *d, const struct node *n, const char *want, struct mpw *w)
{
	char msg[256];
	if (!strcmp(want, "down"))
		snprintf(msg, sizeof msg, "node %s is down: no heartbeat for %llu ms; its tasks are rescheduled", n->name,
			 (unsigned long long)failure_timeout(d));
	else
		snprintf(msg, sizeof msg, "node %s is ready: heartbeats resumed", n->name);
	mpw_str(w, "events");
	mpw_arr(w, 1);
	mpw_map(w, 3);
	mpw_kstr(w, "kind", !strcmp(want, "down") ? "node_down" : "node_ready");
	mpw_ku64(w, "node", n->id);
	mpw_kstr(w, "message", msg);
}

static void liveness(struct daemon *d)
{
	if (liveness_inflight)
		return;
	TABLE_FOREACH(&d->store.nodes, struct node, n) {
		const char *want = seen_recently(d, n->id) ? "ready" : !leader_alive(d, n->id) ? "down" : NULL;
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
		mpw_ku64(&w, "at", wall_ms());
		liveness_event(d, n, want, &w);
		log_info("node %s is %s", n->name, want);
		liveness_inflight = !daemon_submit(d, "node.update", w.sb.data, w.sb.size, liveness_done, NULL, err);
		mpw_free(&w);
		return; /* one at a time */
	}
}

/* ---- roles ----------------------------------------------------------------------------------- */

/* The whole cluster is planned at once (orchestrator/roles.h) and the plan runs change
 * after change (node/member.c), so a join storm does not outrun the failure timeout. */
static void roles(struct daemon *d)
{
	unsigned n = cons_nservers(&d->cons);
	struct roles_server *s = xcalloc(n ? n : 1, sizeof *s);
	struct roles_change *out = xcalloc(n ? n : 1, sizeof *out);
	for (unsigned i = 0; i < n; i++) {
		raft_id id;
		const char *addr;
		enum cons_role role;
		cons_server(&d->cons, i, &id, &addr, &role);
		s[i].id = id;
		s[i].role = role == ROLE_VOTER ? ROLES_VOTER : role == ROLE_STANDBY ? ROLES_STANDBY : ROLES_SPARE;
		s[i].live = seen_recently(d, id) ? ROLES_UP : leader_alive(d, id) ? ROLES_UNKNOWN : ROLES_DOWN;
		s[i].record = table_get_u64(&d->store.nodes, id) != NULL;
	}
	size_t k = roles_plan(s, n, roles_target(n), d->ident.id, out);
	if (k)
		member_plan(d, out, k);
	free(s);
	free(out);
}

/* ---- workloads ------------------------------------------------------------------------------ */

static bool reconcile_inflight;

/* Only nodes that heartbeated recently get new tasks: a leader just elected does not
 * place work on a node (the old leader, say) it has not heard from yet. */
static bool placeable(uint64_t node, void *arg)
{
	return seen_recently(arg, node);
}

static void reconciled(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)d;
	(void)data;
	reconcile_inflight = false;
	if (rc && rc != E_EXISTS)
		log_warn("reconcile batch rejected: %s", res->msg);
}

static void workloads(struct daemon *d)
{
	if (reconcile_inflight)
		return;
	struct mpw w;
	mpw_init(&w);
	if (reconcile_live(&d->store, wall_ms(), &w, placeable, d)) {
		char err[ERR_LEN];
		TRACE("sched", d->ident.name, "task batch %zu bytes", (size_t)w.sb.size);
		reconcile_inflight = !daemon_submit(d, "task.batch", w.sb.data, w.sb.size, reconciled, NULL, err);
	}
	mpw_free(&w);
}

void leader_tick(struct daemon *d)
{
	leader_saw(d, d->ident.id);
	ensure_records(d);
	if (!d->store.has_cluster)
		return;
	liveness(d);
	roles(d);
	workloads(d);
	scaling_tick(d);
	watch_push(d);
}
