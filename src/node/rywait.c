#include "node/rywait.h"
#include "node/daemon.h"
#include "util/clock.h"
#include "util/mem.h"
#include <stdlib.h>

struct rywait {
	struct rywait *next;
	struct pending *p;
	struct mpw resp;
	uint64_t ri, deadline;
};

#define POLL_MS 2

static bool holds_log(struct daemon *d)
{
	enum cons_role r = cons_role_of(&d->cons, d->ident.id);
	return !d->worker && (r == ROLE_VOTER || r == ROLE_STANDBY);
}

static void release(struct daemon *d, struct rywait *w)
{
	struct mpr r;
	bool ok = !mpr_decode(&r, w->resp.sb.data, w->resp.sb.size);
	rpc_relay(w->p, ok ? r.root : NULL);
	if (ok)
		mpr_free(&r);
	pending_free(w->p);
	mpw_free(&w->resp);
	free(w);
	(void)d;
}

static void poll_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t applied = cons_applied_index(&d->cons), now = clock_now(d->clock);
	for (struct rywait **pp = &d->parked; *pp;) {
		struct rywait *w = *pp;
		if (w->ri <= applied || now >= w->deadline || !w->p->conn) {
			*pp = w->next;
			release(d, w);
		} else
			pp = &w->next;
	}
	if (!d->parked)
		uv_timer_stop(t);
}

bool rywait_park(struct daemon *d, struct pending *p, const msgpack_object *resp)
{
	uint64_t ri = 0;
	int64_t rc = -1;
	if (!resp || mp_get_i64(resp, "rc", &rc) || rc || mp_get_u64(resp, "ri", &ri) || !ri ||
	    !p->conn || p->on_reply || d->stopping || !d->park_ready ||
	    ri <= cons_applied_index(&d->cons) || !holds_log(d))
		return false;
	struct rywait *w = xcalloc(1, sizeof *w);
	w->p = p;
	w->ri = ri;
	w->deadline = clock_now(d->clock) + RYWAIT_MAX_MS;
	mpw_init(&w->resp);
	mpw_obj(&w->resp, resp);
	w->next = d->parked;
	d->parked = w;
	if (!uv_is_active((uv_handle_t *)&d->park_timer))
		uv_timer_start(&d->park_timer, poll_cb, POLL_MS, POLL_MS);
	return true;
}

uint64_t rywait_stamp(struct daemon *d, const struct peer *peer)
{
	/* the commit index, not the applied one: libraft calls an entry's apply callback (which
	 * sends the reply) before it counts the entry as applied */
	return peer->kind == PEER_NODE && d->cons_ready && cons_is_leader(&d->cons) ? cons_commit_index(&d->cons) : 0;
}

void rywait_drop(struct daemon *d)
{
	while (d->parked) {
		struct rywait *w = d->parked;
		d->parked = w->next;
		mpw_free(&w->resp);
		free(w); /* its pending goes with the others */
	}
}
