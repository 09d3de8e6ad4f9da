/* state.load: the objects of a backup (state/snapfile.h) enter a new cluster, once. They
 * keep their ids, generations and versions (a spec pins secret versions by number); what
 * named the old cluster's nodes is cleared (a service's port errors, an image's holder,
 * a rollout in progress: the new cluster starts every service afresh). */
#include "state/apply.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

/* Moves every object of from into to (replacing those of the same key); from ends empty. */
static void move_all(struct table *to, struct table *from)
{
	for (size_t i = 0; i < from->n; i++)
		table_put(to, from->items[i]);
	free(from->items);
	from->items = NULL;
	from->n = from->cap = 0;
}

static int decode_opt(struct table *t, const msgpack_object *body, const char *k, char *err)
{
	const msgpack_object *a = mp_get(body, k);
	return a ? table_decode(t, a, err) : 0;
}

int apply_state_load(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	if (!s->has_cluster)
		return errf(res->msg, E_STATE, "state.load: no cluster yet");
	if (s->services.n || s->secrets.n)
		return errf(res->msg, E_EXISTS, "state.load: this cluster already holds services or secrets; a snapshot is "
				  "restored into a new cluster only (orch init --restore)");
	struct table sv, se, im, kv;
	table_init(&sv, &service_schema);
	table_init(&se, &secret_schema);
	table_init(&im, &image_schema);
	table_init(&kv, &kv_schema);
	int rc = 0;
	if ((rc = decode_opt(&sv, c->body, "services", res->msg)) || (rc = decode_opt(&se, c->body, "secrets", res->msg)) ||
	    (rc = decode_opt(&im, c->body, "images", res->msg)) || (rc = decode_opt(&kv, c->body, "kv", res->msg)))
		goto out;
	uint64_t max_id = 0;
	TABLE_FOREACH(&sv, struct service, v) {
		if (!v->id || !v->name || !service_spec(v)) {
			rc = errf(res->msg, E_INVAL, "state.load: service %s has no id or no valid spec", v->name ? v->name : "?");
			goto out;
		}
		if (v->id > max_id)
			max_id = v->id;
	}
	TABLE_FOREACH(&se, struct secret, x) {
		if (!x->id || !x->kind || !x->name || !x->version) {
			rc = errf(res->msg, E_INVAL, "state.load: a secret lacks its id, kind, name or version");
			goto out;
		}
		if (x->id > max_id)
			max_id = x->id;
	}
	TABLE_FOREACH(&sv, struct service, v) {
		free(v->update_state);
		free(v->update_msg);
		v->update_state = xstrdup("");
		v->update_msg = NULL;
		v->update_at = 0;
		labels_free(&v->port_errors);
	}
	TABLE_FOREACH(&im, struct image, i)
		i->node_id = 0;
	move_all(&s->services, &sv);
	move_all(&s->secrets, &se);
	move_all(&s->images, &im);
	move_all(&s->kv, &kv);
	if (s->cluster.next_id <= max_id)
		s->cluster.next_id = max_id + 1;
out:
	table_clear(&sv);
	table_clear(&se);
	table_clear(&im);
	table_clear(&kv);
	return rc;
}
