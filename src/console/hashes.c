#include "console/hashes.h"
#include "net/auth.h"
#include "net/conn.h"
#include "node/daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hsrc {
	struct hashask *a;
	struct conn *c;
	char name[64], addr[64];
	char hash[65], err[128];
	uint64_t applied;
	bool done;
};

struct hashask {
	struct daemon *d;
	hashes_cb cb;
	void *arg;
	struct hsrc src[HASHES_MAX];
	size_t n;
	int conns; /* open */
	uv_timer_t timer;
	bool answered, starting, timer_closing;
};

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Freed once answered (or cancelled) with no conn open: the timer closes, then the memory. */
static void ask_maybe_free(struct hashask *a)
{
	if (a->answered && !a->conns && !a->starting && !a->timer_closing) {
		a->timer_closing = true;
		uv_close((uv_handle_t *)&a->timer, timer_closed);
	}
}

static void ask_answer(struct hashask *a)
{
	if (a->answered)
		return;
	a->answered = true;
	uv_timer_stop(&a->timer);
	struct buf b = {0};
	buf_printf(&b, "{\"nodes\":[");
	for (size_t i = 0; i < a->n; i++) {
		const struct hsrc *s = &a->src[i];
		msgpack_object nm = {.type = MSGPACK_OBJECT_STR, .via.str = {.ptr = s->name, .size = (uint32_t)strlen(s->name)}};
		buf_printf(&b, "%s{\"name\":", i ? "," : "");
		mp_to_json(&nm, &b);
		buf_printf(&b, ",\"addr\":\"%s\",", s->addr); /* an IPv4:port of the state */
		if (s->done && !s->err[0])
			buf_printf(&b, "\"applied\":%llu,\"hash\":\"%s\"}", (unsigned long long)s->applied, s->hash);
		else {
			msgpack_object e = {.type = MSGPACK_OBJECT_STR,
					    .via.str = {.ptr = s->err[0] ? s->err : "no answer in time",
							.size = (uint32_t)strlen(s->err[0] ? s->err : "no answer in time")}};
			buf_printf(&b, "\"err\":");
			mp_to_json(&e, &b);
			buf_printf(&b, "}");
		}
	}
	buf_printf(&b, "]}");
	if (a->cb)
		a->cb(a->arg, &b);
	buf_free(&b);
	/* what is still open goes now */
	for (size_t i = 0; i < a->n; i++)
		if (a->src[i].c)
			conn_close(a->src[i].c, NULL);
	ask_maybe_free(a);
}

static void maybe_answer(struct hashask *a)
{
	for (size_t i = 0; i < a->n; i++)
		if (!a->src[i].done)
			return;
	ask_answer(a);
}

static void src_ready(struct conn *c)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "op", "status");
	mpw_ku64(&w, "id", 1);
	mpw_map_end(&w);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void src_frame(struct conn *c, const msgpack_object *resp)
{
	struct hsrc *s = c->data;
	if (s->done)
		return;
	int64_t rc = -1;
	mp_get_i64(resp, "rc", &rc);
	if (rc || mp_get_strbuf(resp, "state_hash", s->hash, sizeof s->hash) || mp_get_u64(resp, "applied_index", &s->applied))
		snprintf(s->err, sizeof s->err, "%s", "status refused or malformed");
	s->done = true;
	conn_close(c, NULL); /* on_close answers when it is the last */
}

static void src_close(struct conn *c, const char *why)
{
	struct hsrc *s = c->data;
	struct hashask *a = s->a;
	s->c = NULL;
	if (!s->done) {
		snprintf(s->err, sizeof s->err, "%s", why ? why : "closed before it answered");
		s->done = true;
	}
	a->conns--;
	if (!a->answered && !a->starting)
		maybe_answer(a);
	ask_maybe_free(a);
}

static const struct conn_ops src_ops = {
	.on_ready = src_ready,
	.on_frame = src_frame,
	.on_close = src_close,
};

static void timer_fired(uv_timer_t *t)
{
	ask_answer(t->data);
}

struct hashask *hashes_ask(struct daemon *d, hashes_cb cb, void *arg)
{
	struct hashask *a = xcalloc(1, sizeof *a);
	a->d = d;
	a->cb = cb;
	a->arg = arg;
	a->starting = true; /* a conn that fails at once must not answer or free it yet */
	uv_timer_init(d->loop, &a->timer);
	a->timer.data = a;
	uv_timer_start(&a->timer, timer_fired, HASHES_TIMEOUT_MS, 0);
	for (unsigned i = 0, ns = cons_nservers(&d->cons); i < ns && a->n < HASHES_MAX; i++) {
		raft_id id;
		const char *addr;
		enum cons_role role;
		cons_server(&d->cons, i, &id, &addr, &role);
		if ((role != ROLE_VOTER && role != ROLE_STANDBY) || !addr)
			continue;
		const struct node *nd = table_get_u64(&d->store.nodes, id);
		struct hsrc *s = &a->src[a->n++];
		s->a = a;
		snprintf(s->name, sizeof s->name, "%s", nd && nd->name ? nd->name : "?");
		snprintf(s->addr, sizeof s->addr, "%s", addr);
	}
	uint8_t me[AUTH_NODE_LEN];
	auth_node_put(d->ident.id, me);
	for (size_t i = 0; i < a->n; i++) {
		struct hsrc *s = &a->src[i];
		a->conns++;
		/* this node too, the same way: its answer is as fresh as the others' */
		struct conn *c = conn_connect(d->loop, s->addr, AUTH_KIND_RPC, &d->ident.tls, me, sizeof me, &src_ops, s);
		if (!s->done)
			s->c = c;
	}
	a->starting = false;
	maybe_answer(a); /* nobody to ask, or every dial failed at once */
	if (a->answered) {
		ask_maybe_free(a);
		return NULL; /* answered already: nothing to cancel */
	}
	return a;
}

void hashes_cancel(struct hashask *a)
{
	if (!a)
		return;
	a->cb = NULL;
	ask_answer(a); /* to nobody; closes what is open */
}
