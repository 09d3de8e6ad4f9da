/* Assignments from the leader to the agents: each node's agent holds a watch on the
 * leader (over its link; the leader's own agent directly). On every leader tick the
 * assignment document of each watching node is rebuilt and sent when it changed; a new
 * watch (after a reconnect) always gets the full document first. The document is all a
 * node needs to run its tasks, so agents work whatever their raft role. */
#include "node/daemon.h"
#include "agent/agent.h"
#include "net/conn.h"
#include "spec/spec.h"
#include "util/log.h"
#include "util/mem.h"
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>


void watch_doc(const struct store *s, uint64_t node_id, struct mpw *w)
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

void watch_add(struct daemon *d, struct conn *c, uint64_t req_id, uint64_t node_id)
{
	for (struct watcher *x = d->watch.watchers; x; x = x->next)
		if (x->conn == c && x->node_id == node_id) {
			x->sent = false;
			x->req_id = req_id;
			watch_push(d);
			return;
		}
	struct watcher *x = xcalloc(1, sizeof *x);
	x->conn = c;
	x->req_id = req_id;
	x->node_id = node_id;
	x->next = d->watch.watchers;
	d->watch.watchers = x;
	TRACE("watch", c->peer, "node %016llx watches its assignments", (unsigned long long)node_id);
	watch_push(d);
}

void watch_conn_gone(struct daemon *d, struct conn *c)
{
	for (struct watcher **pp = &d->watch.watchers; *pp;) {
		if ((*pp)->conn == c) {
			struct watcher *x = *pp;
			*pp = x->next;
			free(x);
		} else
			pp = &(*pp)->next;
	}
}

void watch_reset_self(struct daemon *d)
{
	d->watch.self_sent = false;
}

void watch_free(struct daemon *d)
{
	while (d->watch.watchers) {
		struct watcher *x = d->watch.watchers;
		d->watch.watchers = x->next;
		free(x);
	}
}

void watch_push(struct daemon *d)
{
	if (!cons_is_leader(&d->cons))
		return;
	/* the documents are functions of the state: rebuild them only when it changed, or
	 * for a watcher that has not had its first one */
	struct watch *wa = &d->watch;
	bool fresh = false;
	for (struct watcher *x = wa->watchers; x; x = x->next)
		fresh |= !x->sent;
	if (wa->built && d->store.revision == wa->last_revision && !fresh && wa->self_sent)
		return;
	wa->built = true;
	wa->last_revision = d->store.revision;
	struct mpw w;
	mpw_init(&w);
	uint8_t h[32];
	for (struct watcher *x = wa->watchers; x; x = x->next) {
		msgpack_sbuffer_clear(&w.sb);
		watch_doc(&d->store, x->node_id, &w);
		SHA256((const uint8_t *)w.sb.data, w.sb.size, h);
		if (x->sent && !memcmp(h, x->last, 32))
			continue;
		memcpy(x->last, h, 32);
		x->sent = true;
		struct mpw m;
		rpc_reply_begin(&m, x->req_id, 0);
		mpw_key(&m, "doc");
		mpw_raw(&m, w.sb.data, w.sb.size);
		rpc_reply_send(x->conn, &m);
	}
	/* this node's own agent */
	msgpack_sbuffer_clear(&w.sb);
	watch_doc(&d->store, d->ident.id, &w);
	SHA256((const uint8_t *)w.sb.data, w.sb.size, h);
	if (!wa->self_sent || memcmp(h, wa->self_last, 32)) {
		memcpy(wa->self_last, h, 32);
		wa->self_sent = true;
		struct mpr r;
		if (!mpr_decode(&r, w.sb.data, w.sb.size)) {
			agent_assignments(d->agent, r.root);
			mpr_free(&r);
		}
	}
	mpw_free(&w);
}
