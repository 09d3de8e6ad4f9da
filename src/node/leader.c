/* Work done on every tick while this node leads: commit the cluster record after
 * bootstrap, track liveness from heartbeats (committing node up/down transitions only),
 * and manage Raft roles: 3 voters once there are 3 nodes, 5 once there are 5, every other
 * live node a standby (it receives the log, so promoting it is instant), planned by
 * orchestrator/roles.c and run by node/member.c. */
#include "node/leader.h"
#include "node/creds.h"
#include "node/member.h"
#include "node/restore.h"
#include "orchestrator/roles.h"
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
	member_close(l);
	free(l->seen);
	l->seen = NULL;
	l->nseen = l->capseen = 0;
}

static void barrier_done(void *data, int status, const char *msg)
{
	struct leader *l = data;
	l->barrier_inflight = false;
	if (status) {
		TRACE("leader", l->host->ident->name, "barrier failed: %s", msg ? msg : "");
		return; /* retried on the next tick while this node leads */
	}
	l->caught_up = true;
	member_kick(l); /* joins queued meanwhile */
}

/* Until the barrier of this leadership is applied, nothing is decided from the state (a
 * new leader elected with its predecessor's last reconcile batch in its log, not applied
 * yet, computed it again: a slot ran two tasks; found by the simulation's flapping
 * partition too). */
static bool catch_up(struct leader *l)
{
	const struct leader_host *h = l->host;
	if (l->caught_up || !h->barrier)
		return true;
	char err[ERR_LEN];
	if (!l->barrier_inflight)
		l->barrier_inflight = !h->barrier(h->data, barrier_done, l, err);
	return false;
}

bool leader_new_term(const struct leader *l)
{
	const struct leader_host *h = l->host;
	return h->is_leader(h->data) && h->term(h->data) != l->term;
}

void leader_start(struct leader *l)
{
	l->term = l->host->term(l->host->data);
	l->leader_since = now(l);
	l->change_inflight = false;
	l->caught_up = false;
	l->reconcile_rev = 0;
	member_leadership(l);
	catch_up(l);
}

/* The heartbeat table is sorted by node id: a thousand nodes heartbeat twice a second and
 * the scheduler asks about each of them. */
static size_t seen_pos(const struct leader *l, uint64_t id)
{
	size_t lo = 0, hi = l->nseen;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (l->seen[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void leader_saw(struct leader *l, uint64_t id)
{
	size_t i = seen_pos(l, id);
	if (i < l->nseen && l->seen[i].id == id) {
		l->seen[i].last_ms = now(l);
		return;
	}
	if (l->nseen == l->capseen)
		l->seen = xrealloc(l->seen, (l->capseen = l->capseen ? l->capseen * 2 : 16) * sizeof *l->seen);
	memmove(l->seen + i + 1, l->seen + i, (l->nseen - i) * sizeof *l->seen);
	l->seen[i] = (struct seen){.id = id, .last_ms = now(l)};
	l->nseen++;
}

static uint64_t seen_at(const struct leader *l, uint64_t id)
{
	size_t i = seen_pos(l, id);
	return i < l->nseen && l->seen[i].id == id ? l->seen[i].last_ms : 0;
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

enum cons_role leader_role_of(const struct leader *l, uint64_t id)
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

/* A follower that applies nothing of what raft believes it holds (node/leader.h): libraft
 * 0.15 can take a follower's answer for proof of entries it lacks and then never send
 * them (found by the simulation's flapping partition, seed 49: three nodes stuck one entry
 * behind for good). */
static void check_behind(struct leader *l, uint64_t id, uint64_t applied)
{
	const struct leader_host *h = l->host;
	size_t i = seen_pos(l, id);
	if (i >= l->nseen || l->seen[i].id != id || !applied || !h->match_index || !h->reprobe || id == h->ident->id)
		return;
	struct seen *s = &l->seen[i];
	uint64_t match = h->match_index(h->data, id), commit = h->commit_index(h->data);
	if (applied >= match || applied >= commit) {
		s->behind_since = 0;
		return;
	}
	/* stuck, not merely behind: under steady writes a follower is a few entries short at
	 * every heartbeat while it applies on; only one whose applied index stands still for
	 * LEADER_STUCK_MS has met libraft 0.15's follower bug */
	if (!s->behind_since || applied != s->behind_at) {
		s->behind_since = now(l);
		s->behind_at = applied;
		return;
	}
	if (now(l) - s->behind_since < LEADER_STUCK_MS)
		return;
	const struct node *n = table_get_u64(&h->store->nodes, id);
	log_warn(h->ident->name, h->clock, "node %s applies nothing past %llu though raft believes it holds %llu: "
		 "sending it the log again from there", n ? n->name : "?", (unsigned long long)applied,
		 (unsigned long long)match);
	h->reprobe(h->data, id, applied);
	s->behind_since = now(l);
}

int leader_heartbeat(struct leader *l, uint64_t id, uint64_t applied, char *err)
{
	if (!table_get_u64(&l->host->store->nodes, id) && leader_role_of(l, id) == ROLE_NONE && now(l) - l->leader_since > 5000)
		return errf(err, E_NOTFOUND, "this node is not a member of the cluster (removed?)");
	leader_saw(l, id);
	check_behind(l, id, applied);
	return 0;
}

/* ---- bootstrap record ------------------------------------------------------------------ */

static void init_done(void *data, int rc, const struct apply_res *res)
{
	struct leader *l = data;
	l->init_inflight = false;
	if (rc && rc != E_EXISTS) {
		log_error(l->host->ident->name, l->host->clock, "committing the cluster record failed: %s", res->msg);
		return;
	}
	if (l->cfg.data_dir) /* its sealed contents are in the state now */
		creds_boot_remove(l->cfg.data_dir);
}

static void self_added(void *data, int rc, const struct apply_res *res)
{
	struct leader *l = data;
	l->init_inflight = false;
	if (rc && rc != E_EXISTS) {
		log_error(l->host->ident->name, l->host->clock, "committing this node's record failed: %s", res->msg);
		return;
	}
	if (!l->cfg.data_dir || !restore_staged(l->cfg.data_dir)) /* else ready once it is loaded */
		l->host->ready(l->host->data, "ok");
}

static void restore_loaded(void *data, int rc, const struct apply_res *res)
{
	struct leader *l = data;
	l->init_inflight = false;
	if (rc > 0) { /* libraft's: leadership lost, outcome unknown; the next leader tries again */
		log_warn(l->host->ident->name, l->host->clock, "restoring the snapshot: not known to be committed (raft %d); retried", rc);
		return;
	}
	/* once either way: orch init --restore checked the file whole before it wrote anything,
	 * so a refusal here is final (the cluster stays empty, its parent says why) */
	restore_done(l->cfg.data_dir);
	if (rc && rc != E_EXISTS) {
		log_error(l->host->ident->name, l->host->clock, "restoring the snapshot failed: %s", res->msg);
		l->host->ready(l->host->data, res->msg[0] ? res->msg : "restoring the snapshot failed");
		return;
	}
	log_info(l->host->ident->name, l->host->clock, "snapshot restored: %s", rc ? res->msg : "services, secrets and images loaded");
	l->host->ready(l->host->data, "ok");
}

/* orch init --restore (node/restore.h): the backup's objects, once both records are in. */
static bool ensure_restored(struct leader *l)
{
	/* also on a resumed node: it may have stopped before the objects were committed */
	if (!l->cfg.data_dir || !restore_staged(l->cfg.data_dir))
		return true;
	struct buf b = {0};
	char err[ERR_LEN];
	int rc = restore_load(l->cfg.data_dir, &b, err);
	if (rc)
		log_error(l->host->ident->name, l->host->clock, "restore: %s", err);
	else
		l->init_inflight = !l->host->submit(l->host->data, CMD_STATE_LOAD, b.data, b.len, restore_loaded, l, err);
	if (!rc && !l->init_inflight)
		log_error(l->host->ident->name, l->host->clock, "restore: %s", err);
	buf_free(&b);
	return false;
}

static void self_record(struct leader *l, struct node *n)
{
	const struct identity *id = l->host->ident;
	memset(n, 0, sizeof *n);
	if (l->cfg.runtime && l->cfg.runtime[0])
		n->runtime = xstrdup(l->cfg.runtime);
	n->id = id->id;
	n->name = xstrdup(id->name);
	n->addr = xstrdup(id->advertise);
	n->state = NS_READY;
	n->availability = NA_ACTIVE;
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
		char cid[17];
		token_cluster_hex(h->ident->cluster_id, cid);
		struct cmd_cluster_init b = {0};
		int rc = l->cfg.data_dir ? creds_boot_load(l->cfg.data_dir, &b, err) : E_NOTFOUND;
		if (rc && rc != E_NOTFOUND) {
			log_error(h->ident->name, h->clock, "cannot create the cluster record: %s", err);
			return;
		}
		if (rc)
			b.secret_hash = xstrdup("none"); /* never a sha256: no token matches */
		b.id = cid;
		b.created_at = wall(l);
		b.failure_timeout_ms = l->cfg.failure_timeout_ms ? l->cfg.failure_timeout_ms : 5000;
		struct mpw w;
		mpw_init(&w);
		cmd_body(&w, CMD_CLUSTER_INIT, &b);
		b.id = NULL;
		creds_boot_free(&b);
		l->init_inflight = !h->submit(h->data, CMD_CLUSTER_INIT, w.sb.data, w.sb.size, init_done, l, err);
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
		l->init_inflight = !h->submit(h->data, CMD_NODE_ADD, w.sb.data, w.sb.size, self_added, l, err);
		mpw_free(&w);
		return;
	}
	if (!ensure_restored(l))
		return;
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

/* One "events" entry of a node.states: node_down / node_ready, with why. */
static void liveness_event(const struct leader *l, const struct node *n, enum node_state want, struct mpw *w)
{
	char msg[256];
	if (want == NS_DOWN)
		snprintf(msg, sizeof msg, "node %s is down: no heartbeat for %llu ms; its tasks are rescheduled", n->name,
			 (unsigned long long)failure_timeout(l));
	else
		snprintf(msg, sizeof msg, "node %s is ready: heartbeats resumed", n->name);
	mpw_map_begin(w);
	mpw_kstr(w, "kind", want == NS_DOWN ? "node_down" : "node_ready");
	mpw_ku64(w, "node", n->id);
	mpw_kstr(w, "message", msg);
	mpw_map_end(w);
}

/* What the failure detector says of node n now (NS_NONE: nothing to change). */
static enum node_state liveness_want(const struct leader *l, const struct node *n)
{
	enum node_state want = seen_recently(l, n->id) ? NS_READY : !leader_alive(l, n->id) ? NS_DOWN : NS_NONE;
	return !want || !n->state || n->state == want ? NS_NONE : want;
}

/* Every node whose state changed in this tick, in one node.states command (one event per
 * node): after a partition heals, all the nodes it cut off are ready again together, not
 * one per tick. */
static void liveness(struct leader *l)
{
	const struct leader_host *h = l->host;
	if (l->liveness_inflight)
		return;
	uint32_t n = 0;
	TABLE_FOREACH(&h->store->nodes, const struct node, nd)
		n += liveness_want(l, nd) != NS_NONE;
	if (!n)
		return;
	struct mpw nodes, ev, w;
	mpw_init(&nodes);
	mpw_init(&ev);
	mpw_arr(&nodes, n);
	mpw_arr(&ev, n);
	TABLE_FOREACH(&h->store->nodes, const struct node, nd) {
		enum node_state want = liveness_want(l, nd);
		if (want == NS_NONE)
			continue;
		const char *name = lifecycle_name(&lifecycle_node, (int)want);
		mpw_map_begin(&nodes);
		mpw_ku64(&nodes, "id", nd->id);
		mpw_kstr(&nodes, "state", name);
		mpw_map_end(&nodes);
		liveness_event(l, nd, want, &ev);
		log_info(l->host->ident->name, l->host->clock, "node %s is %s", nd->name, name);
	}
	struct cmd_node_states b = {.at = wall(l), .nodes = {.raw = nodes.sb.data, .len = nodes.sb.size},
				    .events = {.raw = ev.sb.data, .len = ev.sb.size}};
	mpw_init(&w);
	cmd_body(&w, CMD_NODE_STATES, &b);
	char err[ERR_LEN];
	l->liveness_inflight = !h->submit(h->data, CMD_NODE_STATES, w.sb.data, w.sb.size, liveness_done, l, err);
	mpw_free(&w);
	mpw_free(&ev);
	mpw_free(&nodes);
}

/* ---- roles ----------------------------------------------------------------------------------- */

/* The whole cluster is planned at once (orchestrator/roles.h) and the plan runs change
 * after change (node/member.c), so a join storm does not outrun the failure timeout. */
static void roles(struct leader *l)
{
	const struct leader_host *h = l->host;
	unsigned n = h->nservers(h->data);
	struct roles_server *s = xcalloc(n ? n : 1, sizeof *s);
	struct roles_change *out = xcalloc(n ? n : 1, sizeof *out);
	unsigned spares_only = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t id;
		enum cons_role role;
		h->server(h->data, i, &id, &role);
		const struct node *rec = table_get_u64(&h->store->nodes, id);
		s[i].id = id;
		s[i].role = role == ROLE_VOTER ? ROLES_VOTER : role == ROLE_STANDBY ? ROLES_STANDBY : ROLES_SPARE;
		s[i].live = seen_recently(l, id) ? ROLES_UP : leader_alive(l, id) ? ROLES_UNKNOWN : ROLES_DOWN;
		s[i].record = rec != NULL;
		s[i].keep_spare = node_spare_only(rec) || member_joining_spare(l, id);
		spares_only += s[i].keep_spare != 0;
	}
	/* the voter count comes from the servers that may vote */
	unsigned target = roles_target(n - spares_only);
	size_t k = roles_plan(s, n, target, h->ident->id, out);
	unsigned short_by = roles_shortage(s, n, target, out, k);
	if (short_by && short_by != l->voter_shortage)
		log_warn(h->ident->name, h->clock, "role: %u voters wanted, %u missing: no live manager-capable node to promote (workers are never voters)",
			 target, short_by);
	else if (!short_by && l->voter_shortage)
		log_info(h->ident->name, h->clock, "role: the voter set is whole again (%u wanted)", target);
	l->voter_shortage = short_by;
	l->voters_wanted = target;
	if (k)
		member_plan(l, out, k);
	free(s);
	free(out);
}

/* ---- workloads ------------------------------------------------------------------------------ */

/* Only nodes that heartbeated recently get new tasks: a leader just elected does not
 * place work on a node (the old leader, say) it has not heard from yet. */
static bool placeable(uint64_t node, void *arg)
{
	return seen_recently(arg, node);
}

/* node.role == manager: the raft voters (orchestrator/roles.h keeps 3 or 5). */
static bool manager(uint64_t node, void *arg)
{
	return leader_role_of(arg, node) == ROLE_VOTER;
}

static void reconciled(void *data, int rc, const struct apply_res *res)
{
	struct leader *l = data;
	l->reconcile_inflight = false;
	if (rc && rc != E_EXISTS)
		log_warn(l->host->ident->name, l->host->clock, "reconcile batch rejected: %s", res->msg);
	else if (l->reconcile_more && l->host->kick)
		l->host->kick(l->host->data); /* a capped pass left work: the next one at once */
}

static void workloads(struct leader *l)
{
	const struct leader_host *h = l->host;
	if (l->reconcile_inflight)
		return;
	/* A pass over 100,000 tasks is not free: when the state did not change since a pass
	 * that found nothing to do, the next one waits up to RECONCILE_IDLE_MS (what only time
	 * changes — back-offs, rollout windows, nodes heard again — waits that long). */
	uint64_t t = now(l);
	if (!l->reconcile_more && h->store->revision == l->reconcile_rev && t - l->reconcile_at < RECONCILE_IDLE_MS)
		return;
	l->reconcile_rev = h->store->revision;
	l->reconcile_at = t;
	struct mpw w;
	mpw_init(&w);
	struct reconcile_out ro = {0};
	bool work = reconcile_live(h->store, wall(l), &w, placeable, manager, l, &ro);
	l->reconcile_more = ro.capped;
	if (work) {
		l->reconcile_rev = 0; /* its batch changes the state: look again after it */
		char err[ERR_LEN];
		/* bench/scale.sh reads these lines (ORCH_TRACE=sched) */
		TRACE("sched", h->ident->name, "task batch %zu bytes: %u created, %u placed in %llu ms%s", (size_t)w.sb.size,
		      ro.created, ro.placed, (unsigned long long)(now(l) - t), ro.capped ? ", more to do" : "");
		l->reconcile_inflight = !h->submit(h->data, CMD_TASK_BATCH, w.sb.data, w.sb.size, reconciled, l, err);
	}
	mpw_free(&w);
}

void leader_kicked(struct leader *l)
{
	const struct leader_host *h = l->host;
	if (!h->is_leader(h->data) || !h->store->has_cluster || !l->caught_up)
		return;
	workloads(l);
	if (h->watch_push)
		h->watch_push(h->data);
}

void leader_tick(struct leader *l)
{
	const struct leader_host *h = l->host;
	leader_saw(l, h->ident->id);
	if (!catch_up(l))
		return;
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
