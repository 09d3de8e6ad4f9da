#include "traffic/relay.h"
#include "util/err.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RELAY_HIGH_WATER (1u << 20) /* queued bytes towards one side before reading pauses */

struct rconn;

struct relay {
	uv_tcp_t lsn;
	struct sockaddr_in to;
	struct rconn *conns;
	unsigned refs; /* the listener and each connection */
};

/* side[0] the client, side[1] the task; each side's reads go to the other one. */
struct rconn {
	struct relay *r;
	uv_tcp_t side[2];
	uv_connect_t creq;
	int handles;
	bool eof[2], closing;
	int shut; /* directions ended and flushed: both, and the connection is done */
	struct rconn *next, *prev;
};

struct rwrite {
	uv_write_t req;
	uv_buf_t buf;
	struct rconn *c;
	int to; /* index of the side written to */
};

static void relay_unref(struct relay *r)
{
	if (--r->refs == 0)
		free(r);
}

static void rc_closed(uv_handle_t *h)
{
	struct rconn *c = h->data;
	if (--c->handles == 0) {
		relay_unref(c->r);
		free(c);
	}
}

/* reset: the client learns that the task refused or went away, as with a DNAT'ed port */
static void rc_close(struct rconn *c, bool reset)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	/* a reset needs a socket that is not shutting down: else a plain close */
	if (!reset || uv_tcp_close_reset(&c->side[0], rc_closed))
		uv_close((uv_handle_t *)&c->side[0], rc_closed);
	uv_close((uv_handle_t *)&c->side[1], rc_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(suggested);
	b->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static int side_of(const struct rconn *c, const uv_stream_t *s)
{
	return s == (const uv_stream_t *)&c->side[0] ? 0 : 1;
}

static void on_written(uv_write_t *req, int status)
{
	struct rwrite *w = (struct rwrite *)req;
	struct rconn *c = w->c;
	int to = w->to, from = 1 - to;
	free(w->buf.base);
	free(w);
	if (c->closing)
		return;
	if (status) {
		rc_close(c, true);
		return;
	}
	if (!c->eof[from] && uv_stream_get_write_queue_size((uv_stream_t *)&c->side[to]) < RELAY_HIGH_WATER / 4)
		uv_read_start((uv_stream_t *)&c->side[from], on_alloc, on_read);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct rconn *c = req->data;
	free(req);
	if (c->closing) /* canceled by the close: c lives until its handles closed */
		return;
	if (status || ++c->shut == 2)
		rc_close(c, false);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct rconn *c = s->data;
	int from = side_of(c, s), to = 1 - from;
	if (n == 0) {
		free(b->base);
		return;
	}
	if (n < 0) {
		free(b->base);
		if (n != UV_EOF) {
			rc_close(c, from == 1);
			return;
		}
		/* half-close: pass the end on once what was read is written (a shutdown waits for
		 * the writes queued before it), keep the other direction going */
		c->eof[from] = true;
		uv_read_stop(s);
		uv_shutdown_t *req = xmalloc(sizeof *req);
		req->data = c;
		if (uv_shutdown(req, (uv_stream_t *)&c->side[to], on_shutdown)) {
			free(req);
			rc_close(c, false);
		}
		return;
	}
	struct rwrite *w = xcalloc(1, sizeof *w);
	w->buf = uv_buf_init(b->base, (unsigned)n);
	w->c = c;
	w->to = to;
	if (uv_write(&w->req, (uv_stream_t *)&c->side[to], &w->buf, 1, on_written)) {
		free(b->base);
		free(w);
		rc_close(c, true);
		return;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->side[to]) > RELAY_HIGH_WATER)
		uv_read_stop(s);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct rconn *c = req->data;
	if (c->closing || status == UV_ECANCELED)
		return;
	if (status) {
		rc_close(c, true);
		return;
	}
	for (int i = 0; i < 2; i++) {
		uv_tcp_nodelay(&c->side[i], 1);
		uv_read_start((uv_stream_t *)&c->side[i], on_alloc, on_read);
	}
}

static void on_accept(uv_stream_t *srv, int status)
{
	struct relay *r = srv->data;
	if (status)
		return;
	struct rconn *c = xcalloc(1, sizeof *c);
	c->r = r;
	r->refs++;
	for (int i = 0; i < 2; i++) {
		uv_tcp_init(srv->loop, &c->side[i]);
		c->side[i].data = c;
	}
	c->handles = 2;
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	c->creq.data = c;
	/* the client's bytes wait in its socket until the task answered */
	if (uv_accept(srv, (uv_stream_t *)&c->side[0]) ||
	    uv_tcp_connect(&c->creq, &c->side[1], (struct sockaddr *)&r->to, on_connect))
		rc_close(c, true);
}

static void lsn_closed(uv_handle_t *h)
{
	relay_unref(h->data);
}

struct relay *relay_listen(uv_loop_t *loop, int fd, const char *ip, uint16_t port, char *err)
{
	struct relay *r = xcalloc(1, sizeof *r);
	r->to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, ip, &r->to.sin_addr) != 1) {
		close(fd);
		free(r);
		errf(err, E_INVAL, "relay to a bad address \"%s\"", ip);
		return NULL;
	}
	r->refs = 1;
	uv_tcp_init(loop, &r->lsn);
	r->lsn.data = r;
	int rc = uv_tcp_open(&r->lsn, fd);
	if (rc)
		close(fd);
	else
		rc = uv_listen((uv_stream_t *)&r->lsn, 128, on_accept);
	if (rc) {
		errf(err, E_IO, "relay to %s:%u: %s", ip, port, uv_strerror(rc));
		uv_close((uv_handle_t *)&r->lsn, lsn_closed);
		return NULL;
	}
	return r;
}

void relay_close(struct relay *r)
{
	if (!r)
		return;
	while (r->conns)
		rc_close(r->conns, true);
	uv_close((uv_handle_t *)&r->lsn, lsn_closed);
}
