#include "net/httpd.h"
#include "net/conn.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQ_MAX 4096
#define REQ_TIMEOUT_MS 5000

struct hconn {
	struct httpd *h;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	struct buf out;
	char req[REQ_MAX + 1];
	size_t len;
	int handles;
	bool closing;
	struct hconn *next, *prev;
};

struct httpd {
	uv_tcp_t srv;
	httpd_page_fn page;
	void *data;
	struct hconn *conns;
	unsigned nconns;
	int handles; /* the listener's and every connection's */
	bool closing;
	void (*closed_cb)(void *arg);
	void *closed_arg;
};

static void httpd_maybe_done(struct httpd *h)
{
	if (h->closing && h->handles == 0) {
		if (h->closed_cb)
			h->closed_cb(h->closed_arg);
		free(h);
	}
}

static void hconn_handle_closed(uv_handle_t *hd)
{
	struct hconn *c = hd->data;
	struct httpd *h = c->h;
	h->handles--;
	if (--c->handles)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nconns--;
	buf_free(&c->out);
	free(c);
	httpd_maybe_done(h);
}

static void hconn_close(struct hconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, hconn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, hconn_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
	hconn_close(t->data);
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	hconn_close(w->data);
}

void httpd_response(struct buf *resp, const char *method, const char *status, const char *ctype, const struct buf *body)
{
	buf_printf(resp, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
		   ctype, body->len);
	if (strcmp(method, "HEAD"))
		buf_append(resp, body->data, body->len);
}

static void respond(struct hconn *c)
{
	uv_read_stop((uv_stream_t *)&c->tcp);
	char method[8] = "", path[1024] = "";
	char *sp = memchr(c->req, ' ', c->len);
	char *sp2 = sp ? memchr(sp + 1, ' ', c->len - (size_t)(sp + 1 - c->req)) : NULL;
	struct buf body = {0};
	if (sp && sp2 && sp - c->req < (long)sizeof method && sp2 - sp - 1 < (long)sizeof path) {
		memcpy(method, c->req, (size_t)(sp - c->req));
		memcpy(path, sp + 1, (size_t)(sp2 - sp - 1));
	}
	if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
		c->h->page(c->h->data, method, path, &c->out);
	else {
		buf_printf(&body, "only GET and HEAD\n");
		httpd_response(&c->out, "GET", "405 Method Not Allowed", "text/plain; charset=utf-8", &body);
	}
	buf_free(&body);
	uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written))
		hconn_close(c);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
	struct hconn *c = hd->data;
	(void)suggested;
	*b = uv_buf_init(c->req + c->len, (unsigned)(REQ_MAX - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct hconn *c = s->data;
	(void)b;
	if (n < 0) {
		hconn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->req[c->len] = 0;
	if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
		respond(c);
	else if (c->len == REQ_MAX)
		hconn_close(c); /* a request this big is no scrape */
}

static void on_conn(uv_stream_t *srv, int status)
{
	struct httpd *h = srv->data;
	if (status || h->closing)
		return;
	struct hconn *c = xcalloc(1, sizeof *c);
	c->h = h;
	uv_tcp_init(srv->loop, &c->tcp);
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	h->handles += 2;
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->nconns++;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) || h->nconns > HTTPD_CONNS) {
		hconn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, REQ_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

struct httpd *httpd_start(uv_loop_t *loop, const char *addr, httpd_page_fn page, void *data, char *err)
{
	struct sockaddr_in sa;
	if (parse_ipport(addr, &sa, err))
		return NULL;
	struct httpd *h = xcalloc(1, sizeof *h);
	h->page = page;
	h->data = data;
	uv_tcp_init(loop, &h->srv);
	h->srv.data = h;
	h->handles = 1;
	int rv = uv_tcp_bind(&h->srv, (struct sockaddr *)&sa, 0);
	if (!rv)
		rv = uv_listen((uv_stream_t *)&h->srv, 64, on_conn);
	if (rv) {
		errf(err, E_IO, "metrics listener on %s: %s", addr, uv_strerror(rv));
		httpd_close(h, NULL, NULL);
		return NULL;
	}
	return h;
}

static void srv_closed(uv_handle_t *hd)
{
	struct httpd *h = hd->data;
	h->handles--;
	httpd_maybe_done(h);
}

void httpd_close(struct httpd *h, void (*cb)(void *arg), void *arg)
{
	h->closing = true;
	h->closed_cb = cb;
	h->closed_arg = arg;
	for (struct hconn *c = h->conns; c; c = c->next)
		hconn_close(c);
	uv_close((uv_handle_t *)&h->srv, srv_closed);
}
