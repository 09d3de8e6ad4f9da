#include "orchestrator/volplace.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void volplace_init(struct volplace *vp)
{
	memset(vp, 0, sizeof *vp);
	mpw_init(&vp->w);
}

void volplace_free(struct volplace *vp)
{
	for (uint32_t i = 0; i < vp->n; i++)
		free(vp->names[i]);
	free(vp->names);
	free(vp->nodes);
	mpw_free(&vp->w);
}

/* The node holding volume `name`: its record's, or one made earlier in this pass; 0. */
static uint64_t holder(const struct volplace *vp, const struct store *s, const char *name)
{
	const struct volume *v = table_get_str(&s->volumes, name);
	if (v)
		return v->node_id;
	for (uint32_t i = 0; i < vp->n; i++)
		if (!strcmp(vp->names[i], name))
			return vp->nodes[i];
	return 0;
}

static bool named(const struct mount_spec *m)
{
	return m->type == MOUNT_VOLUME && m->source;
}

int volplace_pin(const struct volplace *vp, const struct store *s, const struct svc_spec *sp, uint64_t slot,
		 uint64_t *pin, char *reason, size_t rlen)
{
	char name[128], first[128] = "";
	*pin = 0;
	for (size_t i = 0; i < sp->mounts.n; i++) {
		const struct mount_spec *m = &sp->mounts.v[i];
		if (!named(m))
			continue;
		if (!spec_volume_name(m->source, slot, name, sizeof name)) {
			snprintf(reason, rlen, "volume %s: not a valid name for slot %llu", m->source, (unsigned long long)slot);
			return -1;
		}
		uint64_t node = holder(vp, s, name);
		if (!node && m->external) {
			snprintf(reason, rlen, "external volume %s does not exist (deploy the project that creates it first)", name);
			return -1;
		}
		if (node && *pin && node != *pin) {
			snprintf(reason, rlen, "volumes %s and %s live on different nodes; a task can use only one node's volumes",
				 first, name);
			return -1;
		}
		if (node && !*pin) {
			*pin = node;
			snprintf(first, sizeof first, "%s", name);
		}
	}
	return 0;
}

void volplace_reason(const struct store *s, const struct svc_spec *sp, uint64_t slot, uint64_t pin,
		     const char *sched_reason, char *reason, size_t rlen)
{
	char name[128] = "?";
	for (size_t i = 0; i < sp->mounts.n; i++) {
		const struct mount_spec *m = &sp->mounts.v[i];
		const struct volume *v;
		if (named(m) && spec_volume_name(m->source, slot, name, sizeof name) &&
		    (v = table_get_str(&s->volumes, name)) && v->node_id == pin)
			break;
	}
	const struct node *n = table_get_u64(&s->nodes, pin);
	if (!n)
		snprintf(reason, rlen, "volume %s is on node %016llx, which left the cluster (orch volume rm %s to start afresh)",
			 name, (unsigned long long)pin, name);
	else if (n->state != NS_READY)
		snprintf(reason, rlen, "volume %s is on node %s, which is %s; the task waits for it", name, n->name,
			 lifecycle_name(&lifecycle_node, (int)n->state));
	else if (n->availability != NA_ACTIVE)
		snprintf(reason, rlen, "volume %s is on node %s, which is %s; the task waits for it", name, n->name,
			 lifecycle_name(&lifecycle_avail, (int)n->availability));
	else
		snprintf(reason, rlen, "volume %s pins the task to node %s: %s", name, n->name, sched_reason);
}

void volplace_commit(struct volplace *vp, const struct store *s, const struct svc_spec *sp, const char *service,
		     uint64_t slot, uint64_t node)
{
	char name[128];
	for (size_t i = 0; i < sp->mounts.n; i++) {
		const struct mount_spec *m = &sp->mounts.v[i];
		if (!named(m) || !spec_volume_name(m->source, slot, name, sizeof name) || holder(vp, s, name))
			continue;
		vp->names = xrealloc(vp->names, (vp->n + 1) * sizeof *vp->names);
		vp->nodes = xrealloc(vp->nodes, (vp->n + 1) * sizeof *vp->nodes);
		vp->names[vp->n] = xstrdup(name);
		vp->nodes[vp->n] = node;
		vp->n++;
		mpw_map_begin(&vp->w);
		mpw_kstr(&vp->w, "name", name);
		mpw_ku64(&vp->w, "node_id", node);
		mpw_kstr(&vp->w, "service", service);
		mpw_key(&vp->w, "labels");
		labels_encode(&m->labels, &vp->w);
		mpw_map_end(&vp->w);
	}
}

bool volplace_binds_ok(const struct svc_spec *sp, const struct node *n)
{
	for (size_t i = 0; i < sp->mounts.n; i++) {
		const struct mount_spec *m = &sp->mounts.v[i];
		if (m->type == MOUNT_BIND && m->source && !spec_path_allowed(n->binds, m->source))
			return false;
	}
	return true;
}

static const char *store_node_binds(void *ctx, size_t i)
{
	const struct store *s = ctx;
	if (i >= s->nodes.n)
		return NULL;
	const struct node *n = s->nodes.items[i];
	return n->binds ? n->binds : "";
}

const char *volplace_bind_nowhere(const struct store *s, const struct svc_spec *sp)
{
	return spec_bind_nowhere(sp, store_node_binds, (void *)(uintptr_t)s);
}
