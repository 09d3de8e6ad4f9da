#include "node/feed.h"
#include "spec/spec.h"
#include "util/mem.h"
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

void feed_doc(const struct store *s, uint64_t node_id, struct mpw *w)
{
	const struct node *self = table_get_u64(&s->nodes, node_id);
	uint32_t n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (t->node_id == node_id)
			n++;
	mpw_map_begin(w);
	mpw_ku64(w, "node_id", node_id);
	mpw_ku64(w, "subnet", self ? self->subnet : 0);
	mpw_key(w, "tasks");
	mpw_arr(w, n);
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (t->node_id != node_id)
			continue;
		const struct service *v = table_get_u64(&s->services, t->service_id);
		const struct image *im = NULL;
		mpw_map_begin(w);
		mpw_ku64(w, "id", t->id);
		mpw_kstr(w, "service", t->service);
		mpw_ku64(w, "slot", t->slot);
		mpw_ku64(w, "generation", t->generation);
		mpw_kstr(w, "desired", lifecycle_name(&lifecycle_desired, (int)t->desired));
		mpw_kstr(w, "state", task_state_name(t->state));
		mpw_ku64(w, "start_after", t->start_after);
		mpw_key(w, "spec");
		/* the spec of the task's own generation: current or previous */
		const struct rawmp *spec = NULL;
		if (v && t->generation == v->generation)
			spec = &v->spec;
		else if (v && v->prev_spec.len)
			spec = &v->prev_spec;
		if (spec && spec->len)
			mpw_raw(w, spec->data, spec->len);
		else
			mpw_nil(w);
		const struct svc_spec *sp = spec ? spec->dec : NULL;
		if (sp && sp->image)
			im = table_get_str(&s->images, sp->image);
		mpw_key(w, "image");
		if (im && im->info.len)
			mpw_raw(w, im->info.data, im->info.len);
		else
			mpw_nil(w);
		mpw_ku64(w, "image_node", im ? im->node_id : 0);
		mpw_kstr(w, "project", v && v->project ? v->project : "");
		mpw_map_end(w);
	}
	uint32_t np = 0;
	TABLE_FOREACH(&s->nodes, const struct node, nd)
		if (nd->state == NS_READY)
			np++;
	mpw_key(w, "peers");
	mpw_arr(w, np);
	TABLE_FOREACH(&s->nodes, const struct node, nd) {
		if (nd->state != NS_READY)
			continue;
		mpw_map_begin(w);
		mpw_ku64(w, "id", nd->id);
		mpw_kstr(w, "addr", nd->addr);
		mpw_map_end(w);
	}
	mpw_map_end(w);
}

void feed_add(struct feed *f, void *conn, uint64_t req_id, uint64_t node_id)
{
	for (struct feed_watcher *x = f->watchers; x; x = x->next)
		if (x->conn == conn && x->node_id == node_id) {
			x->sent = false;
			x->req_id = req_id;
			return;
		}
	struct feed_watcher *x = xcalloc(1, sizeof *x);
	x->conn = conn;
	x->req_id = req_id;
	x->node_id = node_id;
	x->next = f->watchers;
	f->watchers = x;
}

void feed_conn_gone(struct feed *f, const void *conn)
{
	for (struct feed_watcher **pp = &f->watchers; *pp;) {
		if ((*pp)->conn == conn) {
			struct feed_watcher *x = *pp;
			*pp = x->next;
			free(x);
		} else
			pp = &(*pp)->next;
	}
}

void feed_reset_self(struct feed *f)
{
	f->self_sent = false;
}

void feed_free(struct feed *f)
{
	while (f->watchers) {
		struct feed_watcher *x = f->watchers;
		f->watchers = x->next;
		free(x);
	}
}

void feed_push(struct feed *f, const struct store *s, uint64_t self_id, const struct feed_out *out)
{
	/* the documents are functions of the state: rebuilt only when it changed, or for a
	 * watcher that has not had its first one (when one node after another subscribes,
	 * as in a join storm, rebuilding every document for each newcomer cost the leader
	 * time in the cube of the cluster size: found by the simulation's 200-node storm) */
	bool changed = !f->built || s->revision != f->last_revision;
	bool fresh = false;
	for (struct feed_watcher *x = f->watchers; x; x = x->next)
		fresh |= !x->sent;
	if (!changed && !fresh && f->self_sent)
		return;
	f->built = true;
	f->last_revision = s->revision;
	struct mpw w;
	mpw_init(&w);
	uint8_t h[32];
	for (struct feed_watcher *x = f->watchers; x; x = x->next) {
		if (!changed && x->sent)
			continue;
		msgpack_sbuffer_clear(&w.sb);
		feed_doc(s, x->node_id, &w);
		SHA256((const uint8_t *)w.sb.data, w.sb.size, h);
		if (x->sent && !memcmp(h, x->last, 32))
			continue;
		memcpy(x->last, h, 32);
		x->sent = true;
		out->send(out->arg, x, w.sb.data, w.sb.size);
	}
	if (!changed && f->self_sent) {
		mpw_free(&w);
		return;
	}
	msgpack_sbuffer_clear(&w.sb);
	feed_doc(s, self_id, &w);
	SHA256((const uint8_t *)w.sb.data, w.sb.size, h);
	if (!f->self_sent || memcmp(h, f->self_last, 32)) {
		memcpy(f->self_last, h, 32);
		f->self_sent = true;
		struct mpr r;
		if (!mpr_decode(&r, w.sb.data, w.sb.size)) {
			out->self(out->arg, r.root);
			mpr_free(&r);
		}
	}
	mpw_free(&w);
}
