#include "node/fanout.h"
#include "node/daemon.h"
#include "net/conn.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>

static void fan_release(struct fanout *f)
{
	if (--f->open)
		return;
	f->ops->on_done(f);
	pending_free(f->p);
	free(f->src);
	free(f);
}

static void src_ready(struct conn *c)
{
	struct fanout_src *s = c->data;
	s->f->ops->on_ready(s, c);
}

static void src_frame(struct conn *c, const msgpack_object *resp)
{
	struct fanout_src *s = c->data;
	if (s->ended)
		return;
	int64_t rc = 0;
	bool more = false;
	mp_get_i64(resp, "rc", &rc);
	mp_get_bool(resp, "more", &more);
	if (s->f->ops->on_frame(s, resp, rc, more)) {
		s->ended = true;
		conn_close(c, NULL);
	}
}

static void src_close(struct conn *c, const char *why)
{
	struct fanout_src *s = c->data;
	s->closed = true;
	s->conn = NULL;
	if (!s->ended) {
		s->ended = true;
		s->f->ops->on_close(s, why);
	}
	fan_release(s->f);
}

/* The CLI went away: stop asking (what a source was doing for it is its own affair). */
static void fan_gone(struct pending *p)
{
	struct fanout *f = p->ctx;
	f->open++;
	for (size_t i = 0; i < f->n; i++)
		if (!f->src[i].closed && f->src[i].conn)
			conn_close(f->src[i].conn, "the client went away");
	fan_release(f);
}

static const struct conn_ops src_ops = {
	.on_ready = src_ready,
	.on_frame = src_frame,
	.on_close = src_close,
};

struct fanout *fanout_new(struct daemon *d, struct pending *p, size_t cap, const struct fanout_ops *ops, void *ctx)
{
	struct fanout *f = xcalloc(1, sizeof *f);
	f->d = d;
	f->p = p;
	f->ops = ops;
	f->ctx = ctx;
	f->cap = cap ? cap : 1;
	f->src = xcalloc(f->cap, sizeof *f->src);
	f->open = 1; /* held while the sources start: a synchronous failure must not end it */
	p->ctx = f;
	p->on_gone = fan_gone;
	return f;
}

struct fanout_src *fanout_dial(struct fanout *f, const char *name, const char *addr, void *ctx)
{
	if (f->n == f->cap)
		return NULL;
	struct fanout_src *s = &f->src[f->n++];
	s->f = f;
	s->ctx = ctx;
	snprintf(s->name, sizeof s->name, "%s", name ? name : "");
	snprintf(s->addr, sizeof s->addr, "%s", addr);
	f->open++;
	uint8_t me[AUTH_NODE_LEN];
	auth_node_put(f->d->ident.id, me);
	struct conn *sc = conn_connect(f->d->loop, s->addr, AUTH_KIND_RPC, &f->d->ident.tls, me, sizeof me, &src_ops, s);
	if (!s->closed)
		s->conn = sc;
	return s;
}

void fanout_started(struct fanout *f)
{
	fan_release(f);
}

struct fanout *fanout_find(struct daemon *d, const struct conn *c, uint64_t req_id, const struct fanout_ops *ops)
{
	for (struct pending *p = d->pending; p; p = p->next)
		if (p->conn == c && p->req_id == req_id && p->on_gone == fan_gone && ((struct fanout *)p->ctx)->ops == ops)
			return p->ctx;
	return NULL;
}
