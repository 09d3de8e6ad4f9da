/* Command handlers of the state machine. Each validates its body fully before changing
 * anything, so a rejected command leaves the store untouched. */
#include "state/apply.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int apply_cluster_init(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	if (s->has_cluster)
		return errf(res->msg, E_EXISTS, "cluster already initialised");
	struct cluster cl = {0};
	int rc = schema_decode(&cluster_schema, &cl, c->body, res->msg);
	if (rc || !cl.id || !*cl.id || !cl.secret_hash) {
		schema_free(&cluster_schema, &cl);
		return rc ? rc : errf(res->msg, E_INVAL, "cluster.init: id and secret_hash required");
	}
	if (!cl.next_id)
		cl.next_id = 1;
	if (!cl.failure_timeout_ms)
		cl.failure_timeout_ms = 5000;
	s->cluster = cl;
	s->has_cluster = true;
	return 0;
}

/* cluster.tokens: a rotation replaces a token's hash and sealed secret together. */
int apply_cluster_tokens(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	if (!s->has_cluster)
		return errf(res->msg, E_STATE, "cluster.tokens: no cluster yet");
	char *mh = mp_get_strdup(c->body, "secret_hash"), *mt = mp_get_strdup(c->body, "manager_token"),
	     *wh = mp_get_strdup(c->body, "worker_hash"), *wt = mp_get_strdup(c->body, "worker_token");
	int rc = 0;
	if (!mh != !mt || !wh != !wt || (!mh && !wh))
		rc = errf(res->msg, E_INVAL, "cluster.tokens: a token's hash and sealed secret go together");
	if (!rc && mh) {
		free(s->cluster.secret_hash);
		free(s->cluster.manager_token);
		s->cluster.secret_hash = mh;
		s->cluster.manager_token = mt;
		mh = mt = NULL;
	}
	if (!rc && wh) {
		free(s->cluster.worker_hash);
		free(s->cluster.worker_token);
		s->cluster.worker_hash = wh;
		s->cluster.worker_token = wt;
		wh = wt = NULL;
	}
	free(mh);
	free(mt);
	free(wh);
	free(wt);
	return rc;
}

/* cluster.ca: a CA rotation starts or ends (node/carot.h). */
int apply_cluster_ca(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	if (!s->has_cluster)
		return errf(res->msg, E_STATE, "cluster.ca: no cluster yet");
	char *certs = mp_get_strdup(c->body, "ca_certs"), *key = mp_get_strdup(c->body, "ca_key"),
	     *cross = mp_get_strdup(c->body, "ca_cross"), *old = mp_get_strdup(c->body, "ca_old");
	int rc = 0;
	if (!certs || !*certs || !cross || !old)
		rc = errf(res->msg, E_INVAL, "cluster.ca: ca_certs, ca_cross and ca_old required");
	if (!rc) {
		uint64_t gen = 0;
		if (!mp_get_u64(c->body, "ca_gen", &gen))
			s->cluster.ca_gen = gen;
		free(s->cluster.ca_certs);
		free(s->cluster.ca_cross);
		free(s->cluster.ca_old);
		s->cluster.ca_certs = certs;
		s->cluster.ca_cross = cross;
		s->cluster.ca_old = old;
		certs = cross = old = NULL;
		if (key) {
			free(s->cluster.ca_key);
			s->cluster.ca_key = key;
			key = NULL;
		}
	}
	free(certs);
	free(key);
	free(cross);
	free(old);
	return rc;
}

static bool valid_name(const char *n)
{
	size_t len = strlen(n);
	if (!len || len > 63)
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

/* node.add: upsert of a joining node (same id again = the same node re-announcing). */
int apply_node_add(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	struct node *n = xcalloc(1, sizeof *n);
	int rc = schema_decode(&node_schema, n, c->body, res->msg);
	if (!rc && (!n->id || !n->name || !valid_name(n->name) || !n->addr))
		rc = errf(res->msg, E_INVAL, "node.add: id, a valid name and addr required");
	struct node *same = rc ? NULL : store_node_by_name(s, n->name);
	if (!rc && same && same->id != n->id)
		rc = errf(res->msg, E_EXISTS, "node name %s is already used by node %016llx", n->name, (unsigned long long)same->id);
	if (rc) {
		schema_free(&node_schema, n);
		free(n);
		return rc;
	}
	/* Each node gets a container subnet index, unique in the cluster (so several nodes can
	 * share one machine): kept across re-announcements, else the lowest free one. A hollow
	 * node has no network: none. */
	struct node *prev = table_get_u64(&s->nodes, n->id);
	if (node_hollow(n))
		n->subnet = 0;
	else if (prev && prev->subnet)
		n->subnet = prev->subnet;
	else {
		size_t cap = s->nodes.n + 2; /* the lowest free index is at most nodes + 1 */
		bool *used = xcalloc(cap, sizeof *used);
		TABLE_FOREACH(&s->nodes, struct node, m)
			if (m->subnet < cap)
				used[m->subnet] = true;
		uint64_t idx = 1;
		while (used[idx])
			idx++;
		free(used);
		n->subnet = idx;
	}
	if (!n->state)
		n->state = NS_READY;
	if (!n->availability)
		n->availability = NA_ACTIVE;
	res->id = n->id;
	table_put(&s->nodes, n);
	return 0;
}

/* node.update: {id, state?, availability?, labels?, at} */
int apply_node_update(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	uint64_t id = 0, at = 0;
	if (mp_get_u64(c->body, "id", &id))
		return errf(res->msg, E_INVAL, "node.update: id required");
	struct node *n = table_get_u64(&s->nodes, id);
	if (!n)
		return errf(res->msg, E_NOTFOUND, "node %016llx not found", (unsigned long long)id);
	const msgpack_object *st = mp_get(c->body, "state"), *av = mp_get(c->body, "availability");
	const msgpack_object *lb = mp_get(c->body, "labels");
	int state = st && mp_is_str(st) ? lifecycle_parse(&lifecycle_node, st->via.str.ptr, st->via.str.size) : -1;
	int avail = av && mp_is_str(av) ? lifecycle_parse(&lifecycle_avail, av->via.str.ptr, av->via.str.size) : -1;
	if (st && state <= NS_NONE)
		return errf(res->msg, E_INVAL, "node.update: state must be ready or down");
	if (av && avail <= NA_NONE)
		return errf(res->msg, E_INVAL, "node.update: availability must be active, pause or drain");
	if (lb && lb->type != MSGPACK_OBJECT_MAP)
		return errf(res->msg, E_INVAL, "node.update: labels must be a map");
	if (lb)
		for (uint32_t i = 0; i < lb->via.map.size; i++)
			if (!mp_is_str(&lb->via.map.ptr[i].key) ||
			    (!mp_is_str(&lb->via.map.ptr[i].val) && lb->via.map.ptr[i].val.type != MSGPACK_OBJECT_NIL))
				return errf(res->msg, E_INVAL, "node.update: labels must map strings to strings (nil removes)");
	char obj[32];
	snprintf(obj, sizeof obj, "node %016llx", (unsigned long long)id);
	if (c->tables && st && lifecycle_check(&lifecycle_node, obj, (int)n->state, state, res->msg))
		return E_STATE;
	mp_get_u64(c->body, "at", &at);
	if (st && (int)n->state != state) {
		n->state = (enum node_state)state;
		n->state_at = at;
	}
	if (av)
		n->availability = (enum node_avail)avail;
	const msgpack_object *bd = mp_get(c->body, "binds");
	if (bd && mp_is_str(bd)) {
		free(n->binds);
		n->binds = mp_as_strdup(bd);
	}
	/* a disk report (node/diskwatch.h) carries disk_dir; other node.updates carry the disk
	 * figures as zeros and do not touch them */
	const msgpack_object *dd = mp_get(c->body, "disk_dir");
	if (dd && mp_is_str(dd)) {
		n->disk_free = n->disk_alarm_at = n->disk_floor = 0;
		mp_get_u64(c->body, "disk_free", &n->disk_free);
		mp_get_u64(c->body, "disk_alarm_at", &n->disk_alarm_at);
		mp_get_u64(c->body, "disk_floor", &n->disk_floor);
		free(n->disk_dir);
		n->disk_dir = mp_as_strdup(dd);
	}
	const msgpack_object *sc = mp_get(c->body, "security");
	if (sc && mp_is_str(sc)) {
		free(n->security);
		n->security = mp_as_strdup(sc);
	}
	uint64_t ce = 0;
	const msgpack_object *ca = mp_get(c->body, "cert_ca");
	/* 0 is "not said": cmd_body writes every number field, and a node.update about labels
	 * or availability must not wipe the certificate's expiry */
	if (!mp_get_u64(c->body, "cert_expires", &ce) && ce)
		n->cert_expires = ce;
	if (ca && mp_is_str(ca)) {
		free(n->cert_ca);
		n->cert_ca = mp_as_strdup(ca);
	}
	if (lb) {
		struct labels nl = {0};
		for (size_t i = 0; i < n->labels.n; i++)
			labels_set(&nl, n->labels.k[i], n->labels.v[i]);
		for (uint32_t i = 0; i < lb->via.map.size; i++) {
			char *k = mp_as_strdup(&lb->via.map.ptr[i].key), *v = mp_as_strdup(&lb->via.map.ptr[i].val);
			if (v)
				labels_set(&nl, k, v);
			else { /* remove */
				struct labels keep = {0};
				for (size_t j = 0; j < nl.n; j++)
					if (strcmp(nl.k[j], k))
						labels_set(&keep, nl.k[j], nl.v[j]);
				labels_free(&nl);
				nl = keep;
			}
			free(k);
			free(v);
		}
		labels_free(&n->labels);
		n->labels = nl;
	}
	res->id = id;
	return 0;
}

/* node.states {at, nodes: [{id, state}], events}: the failure detector's verdicts of one tick,
 * together (after a partition heals, every node it cut off is ready again at once). Each
 * must be a move of the node table; a node gone meanwhile refuses the command (the next
 * tick decides again). Nodes already in that state are left alone. */
int apply_node_states(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	uint64_t at = 0;
	const msgpack_object *ns = mp_get(c->body, "nodes");
	if (!ns || ns->type != MSGPACK_OBJECT_ARRAY)
		return errf(res->msg, E_INVAL, "node.states: nodes must be an array");
	for (uint32_t i = 0; i < ns->via.array.size; i++) {
		const msgpack_object *o = &ns->via.array.ptr[i], *st = mp_get(o, "state");
		uint64_t id = 0;
		int state = mp_is_str(st) ? lifecycle_parse(&lifecycle_node, st->via.str.ptr, st->via.str.size) : -1;
		if (mp_get_u64(o, "id", &id) || state <= NS_NONE)
			return errf(res->msg, E_INVAL, "node.states: each entry needs an id and a state (ready or down)");
		const struct node *n = table_get_u64(&s->nodes, id);
		if (!n)
			return errf(res->msg, E_NOTFOUND, "node.states: node %016llx not found", (unsigned long long)id);
		char obj[32];
		snprintf(obj, sizeof obj, "node:%016llx", (unsigned long long)id);
		if (lifecycle_check(&lifecycle_node, obj, (int)n->state, state, res->msg))
			return errwrap(res->msg, E_STATE, "%s", cmd_name(CMD_NODE_STATES));
	}
	mp_get_u64(c->body, "at", &at);
	unsigned changed = 0;
	for (uint32_t i = 0; i < ns->via.array.size; i++) {
		const msgpack_object *o = &ns->via.array.ptr[i], *st = mp_get(o, "state");
		uint64_t id = 0;
		mp_get_u64(o, "id", &id);
		struct node *n = table_get_u64(&s->nodes, id);
		enum node_state state = (enum node_state)lifecycle_parse(&lifecycle_node, st->via.str.ptr, st->via.str.size);
		if (n->state != state) {
			n->state = state;
			n->state_at = at;
			changed++;
		}
	}
	if (!changed)
		return errf(res->msg, E_EXISTS, "unchanged");
	return 0;
}

int apply_node_rm(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	uint64_t id = 0;
	if (mp_get_u64(c->body, "id", &id))
		return errf(res->msg, E_INVAL, "node.rm: id required");
	if (table_del_u64(&s->nodes, id))
		return errf(res->msg, E_NOTFOUND, "node %016llx not found", (unsigned long long)id);
	res->id = id;
	return 0;
}

int apply_kv_set(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	struct kv *kv = xcalloc(1, sizeof *kv);
	int rc = schema_decode(&kv_schema, kv, c->body, res->msg);
	if (!rc && (!kv->key || !*kv->key || strlen(kv->key) > 256 || !kv->value))
		rc = errf(res->msg, E_INVAL, "kv.set: key (1-256 bytes) and value required");
	if (rc) {
		schema_free(&kv_schema, kv);
		free(kv);
		return rc;
	}
	kv->rev = s->revision + 1;
	table_put(&s->kv, kv);
	return 0;
}
