#include "state/store.h"
#include "image/image_load.h"
#include "spec/spec.h"
#include "state/apply.h"
#include "util/mem.h"
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *spec_decode(const msgpack_object *o)
{
	struct svc_spec *sp = xcalloc(1, sizeof *sp);
	if (svc_spec_decode(o, sp, NULL)) {
		svc_spec_free(sp);
		free(sp);
		return NULL;
	}
	return sp;
}

static void spec_free(void *dec)
{
	svc_spec_free(dec);
	free(dec);
}

const struct raw_codec spec_codec = {spec_decode, spec_free};

SCHEMA_DEFINE(cluster, CLUSTER_FIELDS)
SCHEMA_DEFINE(node, NODE_FIELDS)
SCHEMA_DEFINE(kv, KV_FIELDS)
SCHEMA_DEFINE(origin, ORIGIN_FIELDS)
SCHEMA_DEFINE(service, SERVICE_FIELDS)
SCHEMA_DEFINE(task, TASK_FIELDS)
SCHEMA_DEFINE(image, IMAGE_FIELDS)
SCHEMA_DEFINE(event, EVENT_FIELDS)
SCHEMA_DEFINE(volume, VOLUME_FIELDS)
SCHEMA_DEFINE(secret, SECRET_FIELDS)
SCHEMA_DEFINE(user, USER_FIELDS)

#define CMD_MAGIC0 'O'
#define CMD_MAGIC1 'C'
#define CMD_FORMAT 1
/* Snapshot versions: 2 encodes task endpoints as typed fields (state/endpoint.h), 1 as
 * text; both restore (the endpoint decoder reads either form). */
#define SNAP_VERSION 2
#define SNAP_VERSION_TEXT_ENDPOINTS 1

const char *node_allows(const struct node *n, const char *opt)
{
	size_t len = strlen(opt);
	for (const char *p = n->security; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "")
		if (!strncmp(p, opt, len) && (opt[len - 1] == '=' || p[len] == '\n' || !p[len]))
			return p;
	return NULL;
}

void store_init(struct store *s)
{
	memset(s, 0, sizeof *s);
	table_init(&s->nodes, &node_schema);
	table_init(&s->kv, &kv_schema);
	table_init(&s->origins, &origin_schema);
	table_init(&s->services, &service_schema);
	table_init(&s->tasks, &task_schema);
	table_init(&s->images, &image_schema);
	table_init(&s->events, &event_schema);
	table_init(&s->volumes, &volume_schema);
	table_init(&s->secrets, &secret_schema);
	table_init(&s->users, &user_schema);
}

void store_free(struct store *s)
{
	schema_free(&cluster_schema, &s->cluster);
	table_clear(&s->nodes);
	table_clear(&s->kv);
	table_clear(&s->origins);
	table_clear(&s->services);
	table_clear(&s->tasks);
	table_clear(&s->images);
	table_clear(&s->events);
	table_clear(&s->volumes);
	table_clear(&s->secrets);
	table_clear(&s->users);
	s->has_cluster = false;
	s->revision = 0;
}

/* Payload versions: 1 identified a request by origin and a wall-clock sequence (a clock
 * set back, or any entry with a larger sequence, made later requests look like retries);
 * 2 adds the session; 3 (same identity as 2) checks every state change against the
 * tables of state/lifecycle.h and carries task endpoints as typed fields. Each still
 * applies under its own rules, so an old log replays as it first applied. */
#define CMD_V_LEGACY 1
#define CMD_V_SESSION 2
#define CMD_V_STATES 3

void *cmd_build(enum cmd type, const struct req_id *id, const void *body, size_t body_len, size_t *out_len)
{
	static const struct req_id none;
	if (!id)
		id = &none;
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "t", cmd_name(type));
	mpw_ku64(&w, "v", CMD_V_STATES);
	mpw_ku64(&w, "o", id->origin);
	mpw_ku64(&w, "n", id->session);
	mpw_ku64(&w, "s", id->seq);
	mpw_key(&w, "b");
	if (body && body_len)
		mpw_raw(&w, body, body_len);
	else {
		mpw_map_begin(&w);
		mpw_map_end(&w);
	}
	mpw_map_end(&w);
	void *p = cmd_frame(w.sb.data, w.sb.size, out_len);
	mpw_free(&w);
	return p;
}

void *cmd_frame(const void *payload, size_t n, size_t *out_len)
{
	size_t total = (8 + n + 7) & ~(size_t)7;
	uint8_t *p = xcalloc(1, total);
	p[0] = CMD_MAGIC0;
	p[1] = CMD_MAGIC1;
	p[2] = CMD_FORMAT >> 8;
	p[3] = CMD_FORMAT & 0xff;
	p[4] = (uint8_t)(n >> 24);
	p[5] = (uint8_t)(n >> 16);
	p[6] = (uint8_t)(n >> 8);
	p[7] = (uint8_t)n;
	memcpy(p + 8, payload, n);
	*out_len = total;
	return p;
}

int cmd_unframe(const void *buf, size_t len, const uint8_t **payload, size_t *payload_len)
{
	const uint8_t *p = buf;
	if (len < 8 || p[0] != CMD_MAGIC0 || p[1] != CMD_MAGIC1 || ((p[2] << 8) | p[3]) != CMD_FORMAT)
		return -1;
	size_t n = (size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7];
	if (n > len - 8)
		return -1;
	*payload = p + 8;
	*payload_len = n;
	return 0;
}

/* Decodes an entry into r (freed by the caller when this returns 0): type, version and
 * request identity; the body must be a map. */
static int cmd_decode(const void *buf, size_t len, struct mpr *r, const msgpack_object **type, uint64_t *ver,
		      struct cmd_ctx *c, char *err)
{
	const uint8_t *pl;
	size_t pn;
	memset(c, 0, sizeof *c);
	if (cmd_unframe(buf, len, &pl, &pn) || mpr_decode(r, pl, pn))
		return errf(err, E_INVAL, "command: malformed entry (%zu bytes)", len);
	*type = mp_get(r->root, "t");
	c->body = mp_get(r->root, "b");
	int rc = 0;
	if (!mp_is_str(*type) || mp_get_u64(r->root, "v", ver) || mp_get_u64(r->root, "o", &c->req.origin) ||
	    mp_get_u64(r->root, "s", &c->req.seq) || !c->body || c->body->type != MSGPACK_OBJECT_MAP)
		rc = errf(err, E_INVAL, "command: missing type, version, origin or body");
	else if (*ver < CMD_V_LEGACY || *ver > CMD_V_STATES)
		rc = errf(err, E_UNSUPP, "command %.*s: payload version %llu is newer than orch %s knows (%d)",
			  (int)((*type)->via.str.size > 40 ? 40 : (*type)->via.str.size), (*type)->via.str.ptr,
			  (unsigned long long)*ver, ORCH_VERSION, CMD_V_STATES);
	else if (*ver >= CMD_V_SESSION && mp_get_u64(r->root, "n", &c->req.session))
		rc = errf(err, E_INVAL, "command: missing session");
	c->tables = *ver >= CMD_V_STATES;
	if (rc)
		mpr_free(r);
	return rc;
}

int cmd_peek(const void *buf, size_t len, struct mpr *r, enum cmd *type, const msgpack_object **body, char *err)
{
	const msgpack_object *t;
	uint64_t ver;
	struct cmd_ctx c;
	int rc = cmd_decode(buf, len, r, &t, &ver, &c, err);
	if (rc)
		return rc;
	if (cmd_lookup(t, type)) {
		mpr_free(r);
		return errf(err, E_INVAL, "command: unknown type %.*s", (int)(t->via.str.size > 40 ? 40 : t->via.str.size),
			    t->via.str.ptr);
	}
	*body = c.body;
	return 0;
}

/* What a worker-only node's own parts submit: its agent's task reports, the images it
 * loaded, pulled or collected, its own settings and the mesh's port errors. Nothing that
 * manages the cluster: a worker's machine is trusted with its tasks, not with the rest. */
static bool worker_may_submit(const msgpack_object *t)
{
	enum cmd type;
	if (cmd_lookup(t, &type))
		return false;
	switch (type) {
	case CMD_TASK_BATCH:
	case CMD_IMAGE_PUT:
	case CMD_IMAGE_RM:
	case CMD_NODE_UPDATE:
	case CMD_SERVICE_PORT_ERROR: return true;
	default: return false;
	}
}

int cmd_check_origin(const void *buf, size_t len, uint64_t peer, bool worker, char *err)
{
	struct mpr r;
	const msgpack_object *t;
	uint64_t ver;
	struct cmd_ctx c;
	int rc = cmd_decode(buf, len, &r, &t, &ver, &c, err);
	if (rc)
		return rc;
	enum cmd known;
	if (cmd_lookup(t, &known))
		rc = errf(err, E_UNSUPP, "apply: command %.*s is unknown to the leader (orch %s): a node may submit only "
			  "what every node applies; upgrade the leader first (orch(8) UPGRADES)",
			  (int)(t->via.str.size > 40 ? 40 : t->via.str.size), t->via.str.ptr, ORCH_VERSION);
	else if (worker && !worker_may_submit(t))
		rc = errf(err, E_AUTH, "apply: node %016llx is a worker; it may not submit %.*s", (unsigned long long)peer,
			  (int)(t->via.str.size > 40 ? 40 : t->via.str.size), t->via.str.ptr);
	mpr_free(&r);
	if (rc)
		return rc;
	if (!peer)
		return errf(err, E_AUTH, "apply: only a member node's own link may submit entries");
	if (c.req.origin != peer)
		return errf(err, E_AUTH, "apply: entry from node %016llx claims origin %016llx: refused",
			    (unsigned long long)peer, (unsigned long long)c.req.origin);
	return 0;
}

static struct origin *origin_of(struct store *s, uint64_t id)
{
	struct origin *o = table_get_u64(&s->origins, id);
	if (!o) {
		o = xcalloc(1, sizeof *o);
		o->id = id;
		table_put(&s->origins, o);
	}
	return o;
}

/* Is this entry a request already seen? Then res holds the answer (the first one's result
 * for a true repeat) and the entry must change nothing. */
static bool seen_before(struct store *s, uint64_t ver, const struct req_id *q, struct apply_res *res)
{
	if (!q->origin || !q->seq)
		return false;
	struct origin *o = table_get_u64(&s->origins, q->origin);
	if (ver == CMD_V_LEGACY) {
		if (!o || q->seq > o->seq)
			return false;
		/* not reported as success: whether this request applied is not known */
		res->rc = errf(res->msg, E_BUSY, "request %016llx/%llu (old format) is not newer than the last one of its node: not applied; retry",
			       (unsigned long long)q->origin, (unsigned long long)q->seq);
		return true;
	}
	if (!q->session || !o || o->session != q->session || q->seq > o->last)
		return false;
	if (q->seq == o->last) {
		res->rc = (int)o->rc;
		snprintf(res->msg, sizeof res->msg, "%s", o->msg ? o->msg : "");
		res->id = o->obj;
		return true;
	}
	/* An older request of the session arriving after a newer one applied: only the last
	 * result is kept, so it cannot be answered as the original was. The counter grows in
	 * submission order and the log keeps that order, so this is a reordering on the way
	 * to the leader; the sender should build a new request. */
	res->rc = errf(res->msg, E_BUSY, "request %016llx/%llu came after a newer one of its node (%llu): not applied; retry",
		       (unsigned long long)q->origin, (unsigned long long)q->seq, (unsigned long long)o->last);
	return true;
}

static void remember(struct store *s, uint64_t ver, const struct req_id *q, const struct apply_res *res)
{
	if (!q->origin || !q->seq)
		return;
	struct origin *o = origin_of(s, q->origin);
	if (ver == CMD_V_LEGACY) {
		o->seq = q->seq;
		return;
	}
	if (!q->session)
		return;
	o->session = q->session;
	o->last = q->seq;
	o->rc = res->rc;
	free(o->msg);
	o->msg = xstrdup(res->msg);
	o->obj = res->id;
}

typedef int (*apply_fn)(struct store *s, const struct cmd_ctx *c, struct apply_res *res);
#define APPLY_FN_(ID, low, name, fn) [CMD_##ID] = fn,
static const apply_fn apply_fns[CMD__COUNT] = {CMD_TYPES(APPLY_FN_)};

void store_apply(struct store *s, const void *buf, size_t len, struct apply_res *res)
{
	memset(res, 0, sizeof *res);
	struct mpr r;
	struct cmd_ctx c;
	const msgpack_object *t;
	uint64_t ver;
	if ((res->rc = cmd_decode(buf, len, &r, &t, &ver, &c, res->msg))) {
		res->too_new = res->rc == E_UNSUPP;
		return;
	}
	if (seen_before(s, ver, &c.req, res))
		goto out;
	enum cmd type;
	if (cmd_lookup(t, &type)) {
		res->rc = errf(res->msg, E_UNSUPP, "command %.*s: unknown to orch %s (written by a newer node)",
			       (int)(t->via.str.size > 40 ? 40 : t->via.str.size), t->via.str.ptr, ORCH_VERSION);
		res->too_new = true;
		goto out; /* not remembered either: nothing of it applied */
	} else if (!(res->rc = cmd_check(type, c.body, res->msg)))
		res->rc = apply_fns[type](s, &c, res);
	if (res->rc == 0) {
		uint64_t at = 0;
		mp_get_u64(c.body, "at", &at);
		events_apply(s, mp_get(c.body, "events"), at);
		s->revision++;
	}
	/* a rejected request is remembered too: its retry gets the same error */
	remember(s, ver, &c.req, res);
out:
	mpr_free(&r);
}

void store_snapshot(const struct store *s, struct mpw *w)
{
	mpw_map_begin(w);
	mpw_ku64(w, "v", SNAP_VERSION);
	mpw_ku64(w, "revision", s->revision);
	mpw_key(w, "cluster");
	if (s->has_cluster)
		schema_encode(&cluster_schema, &s->cluster, w);
	else
		mpw_nil(w);
	mpw_key(w, "nodes");
	table_encode(&s->nodes, w);
	mpw_key(w, "kv");
	table_encode(&s->kv, w);
	mpw_key(w, "origins");
	table_encode(&s->origins, w);
	mpw_key(w, "services");
	table_encode(&s->services, w);
	mpw_key(w, "tasks");
	table_encode(&s->tasks, w);
	mpw_key(w, "images");
	table_encode(&s->images, w);
	mpw_key(w, "events");
	table_encode(&s->events, w);
	mpw_key(w, "volumes");
	table_encode(&s->volumes, w);
	mpw_key(w, "secrets");
	table_encode(&s->secrets, w);
	/* written only once there is one, so the state hash of a cluster without users is what
	 * it was before users existed */
	if (s->users.n) {
		mpw_key(w, "users");
		table_encode(&s->users, w);
	}
	mpw_map_end(w);
}

int store_restore(struct store *s, const void *buf, size_t len, char *err)
{
	struct mpr r;
	if (mpr_decode(&r, buf, len))
		return errf(err, E_INVAL, "snapshot: not a msgpack document");
	uint64_t v = 0;
	struct store n;
	store_init(&n);
	int rc = 0;
	if (mp_get_u64(r.root, "v", &v) || v < SNAP_VERSION_TEXT_ENDPOINTS || v > SNAP_VERSION) {
		rc = errf(err, E_UNSUPP, "snapshot: unsupported version %llu", (unsigned long long)v);
		goto out;
	}
	mp_get_u64(r.root, "revision", &n.revision);
	const msgpack_object *c = mp_get(r.root, "cluster");
	if (c && c->type == MSGPACK_OBJECT_MAP) {
		if ((rc = schema_decode(&cluster_schema, &n.cluster, c, err)))
			goto out;
		n.has_cluster = true;
	}
	if ((rc = table_decode(&n.nodes, mp_get(r.root, "nodes"), err)) ||
	    (rc = table_decode(&n.kv, mp_get(r.root, "kv"), err)) ||
	    (rc = table_decode(&n.origins, mp_get(r.root, "origins"), err)) ||
	    (rc = table_decode(&n.services, mp_get(r.root, "services"), err)) ||
	    (rc = table_decode(&n.tasks, mp_get(r.root, "tasks"), err)) ||
	    (rc = table_decode(&n.images, mp_get(r.root, "images"), err)))
		goto out;
	/* snapshots from before the events table have none */
	if (mp_get(r.root, "events") && (rc = table_decode(&n.events, mp_get(r.root, "events"), err)))
		goto out;
	/* nor from before volumes */
	if (mp_get(r.root, "volumes") && (rc = table_decode(&n.volumes, mp_get(r.root, "volumes"), err)))
		goto out;
	/* nor from before secrets */
	if (mp_get(r.root, "secrets") && (rc = table_decode(&n.secrets, mp_get(r.root, "secrets"), err)))
		goto out;
	if (mp_get(r.root, "users") && (rc = table_decode(&n.users, mp_get(r.root, "users"), err)))
		goto out;
out:
	mpr_free(&r);
	if (rc) {
		store_free(&n);
		return rc;
	}
	store_free(s);
	*s = n;
	return 0;
}

void store_hash(const struct store *s, char out[65])
{
	struct mpw w;
	mpw_init(&w);
	store_snapshot(s, &w);
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256((const uint8_t *)w.sb.data, w.sb.size, md);
	hex_encode(md, sizeof md, out);
	mpw_free(&w);
}

struct node *store_node_by_name(const struct store *s, const char *name)
{
	TABLE_FOREACH(&s->nodes, struct node, n)
		if (n->name && !strcmp(n->name, name))
			return n;
	return NULL;
}

bool node_hollow(const struct node *n)
{
	return n && n->runtime && !strcmp(n->runtime, "hollow");
}

bool node_spare_only(const struct node *n)
{
	return n && (n->worker || node_hollow(n));
}

struct node *store_node_find(const struct store *s, const char *ref)
{
	struct node *n = store_node_by_name(s, ref), *hit = NULL;
	if (n)
		return n;
	size_t len = strlen(ref);
	if (!len)
		return NULL;
	TABLE_FOREACH(&s->nodes, struct node, m) {
		char hex[17];
		snprintf(hex, sizeof hex, "%016llx", (unsigned long long)m->id);
		if (!strncmp(hex, ref, len)) {
			if (hit)
				return NULL; /* ambiguous */
			hit = m;
		}
	}
	return hit;
}

struct service *store_service_by_name(const struct store *s, const char *name)
{
	TABLE_FOREACH(&s->services, struct service, v)
		if (v->name && !strcmp(v->name, name))
			return v;
	return NULL;
}

struct image *store_image_by_name(const struct store *s, const char *name)
{
	char key[IMAGE_NAME_MAX];
	image_name_key(name, key, sizeof key);
	struct image *im = table_get_str(&s->images, key);
	return im ? im : table_get_str(&s->images, name);
}

bool task_terminal(const struct task *t)
{
	return task_state_ended(t->state);
}
