/* Volume records in the state machine: made by the leader's placements (a task.batch
 * carries them with the placement that needs them, so a volume and the first task pinned
 * to it commit together) and forgotten by volume.rm. */
#include "spec/spec.h"
#include "state/apply.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

int volumes_check(const struct store *s, const msgpack_object *vols, char *msg)
{
	if (!vols)
		return 0;
	if (vols->type != MSGPACK_OBJECT_ARRAY)
		return errf(msg, E_INVAL, "task.batch: volumes must be an array");
	for (uint32_t i = 0; i < vols->via.array.size; i++) {
		struct volume v = {0};
		int rc = schema_decode(&volume_schema, &v, &vols->via.array.ptr[i], msg);
		if (!rc && (!v.name || !spec_volume_name_valid(v.name) || strstr(v.name, SPEC_SLOT_TEMPLATE)))
			rc = errf(msg, E_INVAL, "task.batch: a volume needs a valid name");
		else if (!rc && !table_get_u64(&s->nodes, v.node_id))
			rc = errf(msg, E_NOTFOUND, "task.batch: volume %s: node %llu is not a member", v.name,
				  (unsigned long long)v.node_id);
		schema_free(&volume_schema, &v);
		if (rc)
			return rc;
	}
	return 0;
}

unsigned volumes_add(struct store *s, const msgpack_object *vols, uint64_t at)
{
	unsigned n = 0;
	for (uint32_t i = 0; vols && i < vols->via.array.size; i++) {
		struct volume *v = xcalloc(1, sizeof *v);
		schema_decode(&volume_schema, v, &vols->via.array.ptr[i], NULL);
		if (table_get_str(&s->volumes, v->name)) { /* the first placement keeps it */
			schema_free(&volume_schema, v);
			free(v);
			continue;
		}
		v->created_at = at;
		table_put(&s->volumes, v);
		n++;
	}
	return n;
}

int apply_volume_rm(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	const char *name = NULL;
	const msgpack_object *o = mp_get(c->body, "name");
	char *copy = o && mp_is_str(o) ? xstrndup(o->via.str.ptr, o->via.str.size) : NULL;
	name = copy;
	int rc = 0;
	if (!name || table_del_str(&s->volumes, name))
		rc = errf(res->msg, E_NOTFOUND, "no volume %s", name ? name : "");
	free(copy);
	return rc;
}
