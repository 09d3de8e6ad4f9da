/* Command handlers for workloads: services, tasks and images. As everywhere in the state
 * machine, each handler validates the whole command before changing anything. */
#include "state/apply.h"
#include "spec/spec.h"
#include "image/image_load.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

uint64_t apply_next_id(struct store *s)
{
	if (!s->cluster.next_id)
		s->cluster.next_id = 1;
	return s->cluster.next_id++;
}

/* Is the stored spec equal to the new one (packed in w) once its replica count is set to
 * `replicas` (UINT64_MAX: the stored one)? Then a deploy only scales. Compared as this
 * binary encodes both, never by the stored bytes: those may come from an older binary
 * (its own log replayed, or a snapshot it took), whose encoding of the same spec can
 * differ; every node then still decides alike (orch(8) UPGRADES). */
static bool same_but_replicas(const struct service *v, const struct mpw *w, uint64_t replicas)
{
	if (!service_spec(v))
		return false;
	struct svc_spec old = *service_spec(v); /* shallow: only encoded */
	if (replicas != UINT64_MAX)
		old.deploy.replicas = replicas;
	struct mpw o;
	mpw_init(&o);
	svc_spec_encode(&old, &o);
	bool same = o.sb.size == w->sb.size && !memcmp(o.sb.data, w->sb.data, o.sb.size);
	mpw_free(&o);
	return same;
}

/* The service's spec becomes the bytes packed in w (decoded once, here). */
static void set_spec(struct rawmp *r, struct mpw *w)
{
	size_t len;
	uint8_t *data = (uint8_t *)mpw_take(w, &len);
	rawmp_set(r, &spec_codec, data, len, NULL);
}

void service_next_generation(struct service *v, struct mpw *w, uint64_t at)
{
	rawmp_clear(&v->prev_spec, &spec_codec);
	v->prev_spec = v->spec; /* bytes and decoded form move together */
	memset(&v->spec, 0, sizeof v->spec);
	free(v->update_state);
	v->update_state = xstrdup("updating");
	free(v->update_msg);
	v->update_msg = xstrdup("");
	v->update_at = at;
	set_spec(&v->spec, w);
	v->generation++;
	v->updated_at = at;
}

/* service.put {name, project?, spec, at}: create, or update when the spec changed (new
 * generation), or set replicas back to the spec's when only they differ. */
int apply_service_put(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	char name[SPEC_NAME_MAX + 1], project[SPEC_NAME_MAX + 1] = "";
	uint64_t at = 0;
	const msgpack_object *spec = mp_get(c->body, "spec");
	if (mp_get_strbuf(c->body, "name", name, sizeof name) || !spec)
		return errf(res->msg, E_INVAL, "service.put: name and spec required");
	mp_get_strbuf(c->body, "project", project, sizeof project);
	mp_get_u64(c->body, "at", &at);
	struct svc_spec sp;
	int rc = svc_spec_decode(spec, &sp, res->msg);
	if (!rc && (!sp.name || strcmp(sp.name, name)))
		rc = errf(res->msg, E_INVAL, "service.put: spec names another service");
	if (!rc)
		rc = secret_pin(s, &sp, res->msg);
	if (rc) {
		svc_spec_free(&sp);
		return rc;
	}
	struct mpw w;
	mpw_init(&w);
	svc_spec_encode(&sp, &w);
	uint64_t replicas = sp.deploy.replicas;
	bool autoscaled = sp.deploy.autoscale.enabled;
	uint64_t amin = sp.deploy.autoscale.min, amax = sp.deploy.autoscale.max;
	svc_spec_free(&sp);
	struct service *v = store_service_by_name(s, name);
	if (v && same_but_replicas(v, &w, replicas)) {
		/* only the replica count changed: a scale, not a new generation */
		res->id = v->id;
		/* an autoscaled service keeps the count the autoscaler chose (within its range) */
		if (autoscaled && v->replicas >= amin && (!amax || v->replicas <= amax))
			replicas = v->replicas;
		if (v->replicas == replicas && same_but_replicas(v, &w, UINT64_MAX)) {
			mpw_free(&w);
			return errf(res->msg, E_EXISTS, "unchanged");
		}
		set_spec(&v->spec, &w);
		mpw_free(&w);
		v->replicas = replicas;
		v->updated_at = at;
		snprintf(res->msg, sizeof res->msg, "scaled");
		return 0;
	}
	if (!v) {
		v = xcalloc(1, sizeof *v);
		v->id = apply_next_id(s);
		v->name = xstrdup(name);
		v->created_at = at;
		table_put(&s->services, v);
		snprintf(res->msg, sizeof res->msg, "created");
		set_spec(&v->spec, &w);
		v->generation++;
	} else {
		service_next_generation(v, &w, at);
		snprintf(res->msg, sizeof res->msg, "updated");
	}
	free(v->project);
	v->project = xstrdup(project);
	mpw_free(&w);
	v->replicas = replicas;
	v->updated_at = at;
	res->id = v->id;
	return 0;
}

int apply_service_scale(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	char name[SPEC_NAME_MAX + 1];
	uint64_t replicas, at = 0;
	if (mp_get_strbuf(c->body, "name", name, sizeof name) || mp_get_u64(c->body, "replicas", &replicas))
		return errf(res->msg, E_INVAL, "service.scale: name and replicas required");
	if (replicas > 10000)
		return errf(res->msg, E_INVAL, "scale %s: at most 10000 replicas", name);
	struct service *v = store_service_by_name(s, name);
	if (!v)
		return errf(res->msg, E_NOTFOUND, "no service %s (see orch services)", name);
	const struct svc_spec *sp = service_spec(v);
	if (sp && sp->deploy.mode == DEPLOY_GLOBAL)
		return errf(res->msg, E_INVAL, "scale %s: a global service runs one task on every eligible node and cannot be "
			    "scaled (change its placement constraints, or deploy.mode: replicated)", name);
	mp_get_u64(c->body, "at", &at);
	res->id = v->id;
	if (v->replicas == replicas)
		return errf(res->msg, E_EXISTS, "unchanged");
	v->replicas = replicas;
	v->updated_at = at;
	return 0;
}

/* service.rm {name}: the service goes; its tasks are asked to shut down and are
 * garbage-collected by the leader once terminal. */
int apply_service_rm(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	char name[SPEC_NAME_MAX + 1];
	uint64_t at = 0;
	if (mp_get_strbuf(c->body, "name", name, sizeof name))
		return errf(res->msg, E_INVAL, "service.rm: name required");
	struct service *v = store_service_by_name(s, name);
	if (!v)
		return errf(res->msg, E_NOTFOUND, "no service %s (see orch services)", name);
	mp_get_u64(c->body, "at", &at);
	uint64_t id = v->id;
	TABLE_FOREACH(&s->tasks, struct task, t) {
		if (t->service_id != id || t->desired == TD_SHUTDOWN)
			continue;
		t->desired = TD_SHUTDOWN;
		if (t->state == TS_PENDING) { /* never placed: nothing to stop */
			t->state = TS_SHUTDOWN;
			t->state_at = at;
		}
	}
	table_del_u64(&s->services, id);
	res->id = id;
	return 0;
}

static bool valid_update_state(const char *st)
{
	static const char *const ok[] = {"updating", "paused", "rolling_back", "completed", "rolled_back", NULL};
	for (int i = 0; ok[i]; i++)
		if (!strcmp(st, ok[i]))
			return true;
	return false;
}

/* Sets a service's rollout state; rollback swaps in the previous spec as a new
 * generation. Validates first: 0 or an error with nothing changed. */
static int service_set_update(struct service *v, const msgpack_object *o, uint64_t at, char *msg)
{
	char st[32] = "", m[ERR_LEN] = "";
	bool rollback = false;
	const msgpack_object *so = mp_get(o, "update_state");
	if (so && (mp_get_strbuf(o, "update_state", st, sizeof st) || !valid_update_state(st)))
		return errf(msg, E_INVAL, "service update: bad update_state");
	mp_get_strbuf(o, "update_msg", m, sizeof m);
	mp_get_bool(o, "rollback", &rollback);
	if (rollback && !v->prev_spec.len)
		return errf(msg, E_INVAL, "service %s has no previous version to roll back to", v->name);
	if (rollback) {
		struct rawmp tmp = v->spec;
		v->spec = v->prev_spec;
		v->prev_spec = tmp;
		v->generation++;
		v->updated_at = at;
	}
	if (so) {
		free(v->update_state);
		v->update_state = xstrdup(st);
		free(v->update_msg);
		v->update_msg = xstrdup(m);
		v->update_at = at;
	}
	return 0;
}

/* service.update {name, update_state?, update_msg?, rollback?, at} (rollout pause, resume,
 * undo) */
int apply_service_update(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	char name[SPEC_NAME_MAX + 1];
	uint64_t at = 0;
	if (mp_get_strbuf(c->body, "name", name, sizeof name))
		return errf(res->msg, E_INVAL, "service.update: name required");
	struct service *v = store_service_by_name(s, name);
	if (!v)
		return errf(res->msg, E_NOTFOUND, "no service %s (see orch services)", name);
	mp_get_u64(c->body, "at", &at);
	res->id = v->id;
	return service_set_update(v, c->body, at, res->msg);
}

/* A change of state or desired state asked for by one update of a task.batch. */
struct move {
	uint64_t id;
	uint32_t idx; /* its place in the batch: moves of one task apply in batch order */
	int state, desired; /* -1: not changed */
};

static int by_task_then_order(const void *a, const void *b)
{
	const struct move *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Every move of the batch, in the order apply makes them, checked against the tables
 * (state/lifecycle.h): 0, or E_STATE naming the first illegal one. Tasks already
 * collected are skipped (a late report), as apply skips them. */
static int check_moves(const struct store *s, struct move *mv, size_t n, char *msg)
{
	qsort(mv, n, sizeof *mv, by_task_then_order);
	for (size_t i = 0; i < n;) {
		const struct task *t = table_get_u64(&s->tasks, mv[i].id);
		int st = t ? (int)t->state : 0, de = t ? (int)t->desired : 0;
		char obj[32];
		snprintf(obj, sizeof obj, "task:%llu", (unsigned long long)mv[i].id);
		size_t j = i;
		for (; j < n && mv[j].id == mv[i].id; j++) {
			if (!t)
				continue;
			if (mv[j].state >= 0 && lifecycle_check(&lifecycle_task, obj, st, mv[j].state, msg))
				return errwrap(msg, E_STATE, "%s", cmd_name(CMD_TASK_BATCH));
			if (mv[j].desired >= 0 && lifecycle_check(&lifecycle_desired, obj, de, mv[j].desired, msg))
				return errwrap(msg, E_STATE, "%s", cmd_name(CMD_TASK_BATCH));
			st = mv[j].state >= 0 ? mv[j].state : st;
			de = mv[j].desired >= 0 ? mv[j].desired : de;
		}
		i = j;
	}
	return 0;
}

/* Entries written before the tables (format < 3) moved a task's state by rank only and
 * skipped a report that would move it back, or from one ended state to another; they
 * replay under that rule. */
static bool legacy_stale(const struct task *t, enum task_state to)
{
	int old = task_state_rank(t->state), nw = task_state_rank(to);
	return nw < old || (old == 5 && to != t->state);
}

/* The named value of a state field of an update, or -1 when it is not a name of the set. */
static int parse_state(const struct lifecycle *l, const msgpack_object *o)
{
	int v = mp_is_str(o) ? lifecycle_parse(l, o->via.str.ptr, o->via.str.size) : -1;
	return v > 0 ? v : -1;
}

/* task.batch {at, create: [{service_id, slot, generation, restarts, failures, start_after,
 *                           err?}],
 *             update: [{id, <task fields>}], delete: [id]}
 * Every change of a task's state or desired state must be a move of its table
 * (state/lifecycle.h): one that is not refuses the whole batch (E_STATE). A task already
 * collected is skipped (a late report), not an error. */
int apply_task_batch(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	uint64_t at = 0;
	mp_get_u64(c->body, "at", &at);
	const msgpack_object *cr = mp_get(c->body, "create"), *up = mp_get(c->body, "update"), *del = mp_get(c->body, "delete");
	const msgpack_object *sv = mp_get(c->body, "services");
	if (sv && sv->type != MSGPACK_OBJECT_ARRAY)
		return errf(res->msg, E_INVAL, "task.batch: services must be an array");
	if ((cr && cr->type != MSGPACK_OBJECT_ARRAY) || (up && up->type != MSGPACK_OBJECT_ARRAY) ||
	    (del && del->type != MSGPACK_OBJECT_ARRAY))
		return errf(res->msg, E_INVAL, "task.batch: create, update and delete must be arrays");
	/* validate */
	for (uint32_t i = 0; cr && i < cr->via.array.size; i++) {
		const msgpack_object *o = &cr->via.array.ptr[i];
		uint64_t sid = 0, slot = 0;
		if (mp_get_u64(o, "service_id", &sid) || mp_get_u64(o, "slot", &slot) || !slot)
			return errf(res->msg, E_INVAL, "task.batch: create needs service_id and slot");
		if (!table_get_u64(&s->services, sid))
			return errf(res->msg, E_NOTFOUND, "task.batch: service %llu is gone", (unsigned long long)sid);
	}
	uint32_t nup = up ? up->via.array.size : 0;
	struct move *mv = xcalloc(nup ? nup : 1, sizeof *mv);
	size_t nmv = 0;
	int rc = 0;
	for (uint32_t i = 0; i < nup && !rc; i++) {
		const msgpack_object *o = &up->via.array.ptr[i];
		uint64_t id = 0;
		if (mp_get_u64(o, "id", &id)) {
			rc = errf(res->msg, E_INVAL, "task.batch: update needs an id");
			break;
		}
		const msgpack_object *st = mp_get(o, "state"), *de = mp_get(o, "desired");
		struct move m = {id, i, st ? parse_state(&lifecycle_task, st) : -1, de ? parse_state(&lifecycle_desired, de) : -1};
		if (st && m.state < 0)
			rc = errf(res->msg, E_INVAL, "task.batch: unknown state");
		else if (de && m.desired < 0)
			rc = errf(res->msg, E_INVAL, "task.batch: desired must be running or shutdown");
		if (rc)
			break;
		struct task probe = {0};
		rc = schema_decode(&task_schema, &probe, o, res->msg);
		schema_free(&task_schema, &probe);
		if (st || de)
			mv[nmv++] = m;
	}
	if (!rc && c->tables)
		rc = check_moves(s, mv, nmv, res->msg);
	free(mv);
	const msgpack_object *vols = mp_get(c->body, "volumes");
	if (!rc)
		rc = volumes_check(s, vols, res->msg);
	if (rc)
		return rc;
	/* apply */
	unsigned changed = volumes_add(s, vols, at);
	for (uint32_t i = 0; sv && i < sv->via.array.size; i++) {
		uint64_t sid = 0;
		struct service *v = NULL;
		if (mp_get_u64(&sv->via.array.ptr[i], "id", &sid) || !(v = table_get_u64(&s->services, sid)))
			continue;
		if (!service_set_update(v, &sv->via.array.ptr[i], at, res->msg))
			changed++;
	}
	for (uint32_t i = 0; cr && i < cr->via.array.size; i++) {
		const msgpack_object *o = &cr->via.array.ptr[i];
		struct task *t = xcalloc(1, sizeof *t);
		schema_decode(&task_schema, t, o, NULL);
		struct service *v = table_get_u64(&s->services, t->service_id);
		t->id = apply_next_id(s);
		free(t->service);
		t->service = xstrdup(v->name);
		if (!t->generation)
			t->generation = v->generation;
		t->desired = TD_RUNNING;
		t->state = TS_PENDING;
		t->node_id = 0;
		t->started_at = 0;
		t->created_at = t->state_at = at;
		table_put(&s->tasks, t);
		res->id = t->id;
		changed++;
	}
	for (uint32_t i = 0; i < nup; i++) {
		const msgpack_object *o = &up->via.array.ptr[i];
		uint64_t id = 0;
		mp_get_u64(o, "id", &id);
		struct task *t = table_get_u64(&s->tasks, id);
		if (!t)
			continue; /* already collected: a late report */
		struct task u = {0};
		schema_decode(&task_schema, &u, o, NULL);
		if (!c->tables && u.state && legacy_stale(t, u.state)) {
			schema_free(&task_schema, &u);
			continue;
		}
		const msgpack_object_kv *kv = o->via.map.ptr;
		for (uint32_t j = 0; j < o->via.map.size; j++) {
			const msgpack_object *k = &kv[j].key;
			if (mp_str_eq(k, "state") && u.state && u.state != t->state) {
				t->state = u.state;
				t->state_at = at;
				if (t->state == TS_RUNNING)
					t->started_at = at; /* how long it ran decides its slot's back-off */
			} else if (mp_str_eq(k, "desired") && u.desired) {
				t->desired = u.desired;
			} else if (mp_str_eq(k, "node_id")) {
				t->node_id = u.node_id;
			} else if (mp_str_eq(k, "err")) {
				free(t->err);
				t->err = u.err ? xstrdup(u.err) : NULL;
			} else if (mp_str_eq(k, "exit_code")) {
				t->exit_code = u.exit_code;
			} else if (mp_str_eq(k, "endpoint")) {
				endpoints_free(&t->endpoint);
				t->endpoint = u.endpoint;
				memset(&u.endpoint, 0, sizeof u.endpoint);
			} else if (mp_str_eq(k, "ip")) {
				free(t->ip);
				t->ip = u.ip ? xstrdup(u.ip) : NULL;
			} else if (mp_str_eq(k, "health")) {
				free(t->health);
				t->health = u.health ? xstrdup(u.health) : NULL;
			} else if (mp_str_eq(k, "oom")) {
				t->oom = u.oom;
			} else if (mp_str_eq(k, "ready")) {
				free(t->ready);
				t->ready = u.ready ? xstrdup(u.ready) : NULL;
			} else if (mp_str_eq(k, "check_output")) {
				free(t->check_output);
				t->check_output = u.check_output ? xstrdup(u.check_output) : NULL;
			}
		}
		schema_free(&task_schema, &u);
		changed++;
	}
	for (uint32_t i = 0; del && i < del->via.array.size; i++) {
		uint64_t id = 0;
		if (!mp_as_u64(&del->via.array.ptr[i], &id) && !table_del_u64(&s->tasks, id))
			changed++;
	}
	if (!changed)
		return errf(res->msg, E_EXISTS, "nothing changed");
	return 0;
}

int apply_image_put(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	struct image *im = xcalloc(1, sizeof *im);
	int rc = schema_decode(&image_schema, im, c->body, res->msg);
	if (!rc && (!im->name || !*im->name || !im->digest || !im->info.len))
		rc = errf(res->msg, E_INVAL, "image.put: name, digest and info required");
	if (!rc) {
		struct mpr r;
		struct image_info info;
		if (mpr_decode(&r, im->info.data, im->info.len))
			rc = errf(res->msg, E_INVAL, "image.put: info is not msgpack");
		else {
			rc = image_info_decode(r.root, &info, res->msg);
			if (!rc)
				image_info_free(&info);
			mpr_free(&r);
		}
	}
	if (rc) {
		schema_free(&image_schema, im);
		free(im);
		return rc;
	}
	/* Recorded under the canonical name whoever submits it (image_name_key), so "nginx",
	 * "nginx:latest" and "docker.io/library/nginx:latest" are one record; a record an
	 * older binary wrote under the short spelling gives way to it. */
	char key[IMAGE_NAME_MAX];
	image_name_key(im->name, key, sizeof key);
	free(im->name);
	im->name = xstrdup(key);
	for (size_t i = 0; i < s->images.n;) {
		const struct image *o = s->images.items[i];
		char ok[IMAGE_NAME_MAX];
		image_name_key(o->name, ok, sizeof ok);
		if (strcmp(o->name, key) && !strcmp(ok, key))
			table_del_str(&s->images, o->name);
		else
			i++;
	}
	struct image *old = table_get_str(&s->images, im->name);
	if (old && old->digest && !strcmp(old->digest, im->digest)) {
		schema_free(&image_schema, im);
		free(im);
		return errf(res->msg, E_EXISTS, "unchanged");
	}
	table_put(&s->images, im);
	return 0;
}

int apply_image_rm(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	char name[IMAGE_NAME_MAX];
	if (mp_get_strbuf(c->body, "name", name, sizeof name))
		return errf(res->msg, E_INVAL, "image.rm: name required");
	const struct image *im = store_image_by_name(s, name);
	if (!im)
		return errf(res->msg, E_NOTFOUND, "no image %.300s (see orch images)", name);
	table_del_str(&s->images, im->name);
	return 0;
}

/* service.port_error {name, node_id, msg}: a node could not publish a port of the service
 * (shown by orch inspect and orch ps); an empty msg clears the node's entry. */
int apply_service_port_error(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	char name[SPEC_NAME_MAX + 1], msg[ERR_LEN] = "";
	uint64_t node = 0;
	if (mp_get_strbuf(c->body, "name", name, sizeof name) || mp_get_u64(c->body, "node_id", &node))
		return errf(res->msg, E_INVAL, "service.port_error: name and node_id required");
	mp_get_strbuf(c->body, "msg", msg, sizeof msg);
	struct service *v = store_service_by_name(s, name);
	struct node *n = table_get_u64(&s->nodes, node);
	if (!v || !n)
		return errf(res->msg, E_NOTFOUND, "service.port_error: unknown service or node");
	struct labels nl = {0};
	for (size_t i = 0; i < v->port_errors.n; i++)
		if (strcmp(v->port_errors.k[i], n->name))
			labels_set(&nl, v->port_errors.k[i], v->port_errors.v[i]);
	if (msg[0])
		labels_set(&nl, n->name, msg);
	labels_free(&v->port_errors);
	v->port_errors = nl;
	res->id = v->id;
	return 0;
}
