#include "console/console.h"
#include "console/assets.h"
#include "console/hist.h"
#include "console/hashes.h"
#include "codec/json.h"
#include "net/conn.h"
#include "net/httpreq.h"
#include "node/daemon.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CX_REQ_TIMEOUT_MS 10000 /* to send a request (plain listener) */
#define CX_OP_TIMEOUT_MS 20000  /* for an op to answer */
#define CX_STREAM_POLL_MS 1000  /* the event stream looks for new events */
#define CX_MAX 256              /* exchanges open at once */
#define CX_LOG_TAIL_MAX 2000

enum cx_kind { CX_PLAIN, CX_TLS };

/* One HTTP exchange: a request and its answer (or stream), on either listener. */
struct cx {
	struct console *con;
	struct cx *next, *prev;
	enum cx_kind kind;
	struct conn *tls; /* CX_TLS: the node port's conn (not ours) */
	uv_tcp_t *tcp;    /* CX_PLAIN */
	uv_timer_t *timer;
	int handles;      /* open handles of ours */
	struct buf in;    /* CX_PLAIN: the request so far */
	struct peer who;
	char method[8];
	struct conn *op;  /* the internal conn of the op running for it */
	uint64_t op_id;
	struct buf acc;   /* the answer's JSON so far (frames of a streamed reply) */
	unsigned nframes;
	bool multi;       /* a reply in frames ({more: true}...) */
	bool logs;        /* logs.cluster: data as text */
	bool stream;      /* GET /api/stream */
	bool answered, ended, gone;
	uint64_t since;   /* stream: the newest event sent */
	struct hashask *ask; /* GET /api/hashes in progress */
};

struct console {
	struct daemon *d;
	uv_tcp_t *srv;
	struct cx *xs;
	unsigned nxs;
	int handles;
	bool closing;
	void (*closed_cb)(void *);
	void *closed_arg;
	struct hist hist;
	struct conn *sampler;
	uint64_t last_sample, last_used;
	uint64_t next_id;
	char addr[64];
	/* internal conns done with, closed on the next turn of the loop: never inside their own
	 * send (a handler that sent the frame may still hold its pending request, which the
	 * close would free under it) */
	struct conn **reap;
	size_t nreap, capreap;
	uv_timer_t *reap_timer;
};

static uint64_t con_now(const struct console *con)
{
	return clock_now(con->d->clock);
}

static void console_maybe_done(struct console *con)
{
	if (con->closing && !con->handles && !con->xs) {
		hist_free(&con->hist);
		free(con->reap);
		if (con->closed_cb)
			con->closed_cb(con->closed_arg);
		free(con);
	}
}

/* ---- exchanges: writing and ending ------------------------------------------------------ */

static void cx_free_maybe(struct cx *x)
{
	if (x->handles || !x->ended)
		return;
	struct console *con = x->con;
	if (x->prev)
		x->prev->next = x->next;
	else if (con->xs == x)
		con->xs = x->next;
	if (x->next)
		x->next->prev = x->prev;
	con->nxs--;
	buf_free(&x->in);
	buf_free(&x->acc);
	free(x);
	console_maybe_done(con);
}

static void cx_handle_closed(uv_handle_t *h)
{
	struct cx *x = h->data;
	free(h);
	x->handles--;
	cx_free_maybe(x);
}

static void reap_now(struct console *con)
{
	while (con->nreap)
		conn_close(con->reap[--con->nreap], NULL);
}

static void reap_cb(uv_timer_t *t)
{
	reap_now(t->data);
}

/* Closes the internal conn c soon; nothing it sends reaches anyone meanwhile. */
static void retire(struct console *con, struct conn *c)
{
	c->sink_arg = NULL;
	if (con->nreap == con->capreap) {
		con->capreap = con->capreap ? con->capreap * 2 : 16;
		con->reap = xrealloc(con->reap, con->capreap * sizeof *con->reap);
	}
	con->reap[con->nreap++] = c;
	if (con->closing) {
		reap_now(con); /* from console_close: not inside a send */
		return;
	}
	if (!con->reap_timer) { /* made on first use: a node whose console is never used has none */
		con->reap_timer = xmalloc(sizeof *con->reap_timer);
		uv_timer_init(con->d->loop, con->reap_timer);
		con->reap_timer->data = con;
		con->handles++;
	}
	uv_timer_start(con->reap_timer, reap_cb, 0, 0);
}

static void cx_stop_op(struct cx *x)
{
	if (x->op) {
		struct conn *op = x->op;
		x->op = NULL;
		retire(x->con, op);
	}
}

/* Ends the exchange: the op stops, our handles close, the conn (plain) or the node port's
 * conn (after what was written) goes. */
static void cx_end(struct cx *x)
{
	if (x->ended)
		return;
	x->ended = true;
	cx_stop_op(x);
	if (x->ask) {
		hashes_cancel(x->ask);
		x->ask = NULL;
	}
	if (x->timer) {
		uv_close((uv_handle_t *)x->timer, cx_handle_closed);
		x->timer = NULL;
	}
	if (x->kind == CX_TLS) {
		if (x->tls && !x->gone)
			conn_close_after_write(x->tls);
		x->tls = NULL;
	} else if (x->tcp) {
		uv_close((uv_handle_t *)x->tcp, cx_handle_closed);
		x->tcp = NULL;
	}
	cx_free_maybe(x);
}

struct cx_wr {
	uv_write_t req;
	struct cx *x;
	bool last;
	char data[];
};

static void plain_written(uv_write_t *w, int status)
{
	struct cx_wr *wr = (struct cx_wr *)w;
	struct cx *x = wr->x;
	bool last = wr->last;
	free(wr);
	x->handles--;
	if (status || last)
		cx_end(x);
	else
		cx_free_maybe(x);
}

/* Bytes to the client; last: the answer is whole, the exchange ends once they are out. */
static void cx_write(struct cx *x, const void *p, size_t n, bool last)
{
	if (x->ended || x->gone)
		return;
	if (x->kind == CX_TLS) {
		if (conn_write_raw(x->tls, p, n))
			last = true;
		if (last)
			cx_end(x);
		return;
	}
	if (!x->tcp)
		return;
	/* a stream whose client does not read is cut rather than queued without bound */
	if (uv_stream_get_write_queue_size((uv_stream_t *)x->tcp) > (4u << 20)) {
		cx_end(x);
		return;
	}
	struct cx_wr *wr = xmalloc(sizeof *wr + n);
	memcpy(wr->data, p, n);
	wr->x = x;
	wr->last = last;
	uv_buf_t b = uv_buf_init(wr->data, (unsigned)n);
	x->handles++;
	if (uv_write(&wr->req, (uv_stream_t *)x->tcp, &b, 1, plain_written)) {
		x->handles--;
		free(wr);
		cx_end(x);
	}
}

static const char *status_text(int code)
{
	switch (code) {
	case 200: return "200 OK";
	case 400: return "400 Bad Request";
	case 403: return "403 Forbidden";
	case 404: return "404 Not Found";
	case 405: return "405 Method Not Allowed";
	case 409: return "409 Conflict";
	case 503: return "503 Service Unavailable";
	case 504: return "504 Gateway Timeout";
	default: return "500 Internal Server Error";
	}
}

static void cx_answer(struct cx *x, int code, const char *ctype, const void *body, size_t n)
{
	if (x->answered)
		return;
	x->answered = true;
	struct buf b = {0};
	buf_printf(&b,
		   "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
		   "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
		   "Content-Security-Policy: default-src 'self'; img-src 'self' data:; style-src 'self'\r\n"
		   "Connection: close\r\n\r\n",
		   status_text(code), ctype, n);
	if (strcmp(x->method, "HEAD"))
		buf_append(&b, body, n);
	cx_write(x, b.data, b.len, true);
	buf_free(&b);
}

/* {"rc": E, "err": msg} with the HTTP status that says the same. */
static void cx_error(struct cx *x, int code, int rc, const char *msg)
{
	struct buf b = {0};
	msgpack_object s = {.type = MSGPACK_OBJECT_STR, .via.str = {.ptr = msg, .size = (uint32_t)strlen(msg)}};
	buf_printf(&b, "{\"rc\":%d,\"err\":", rc);
	mp_to_json(&s, &b);
	buf_printf(&b, "}");
	cx_answer(x, code, "application/json", b.data, b.len);
	buf_free(&b);
}

static int http_code_of(int rc)
{
	switch (rc) {
	case 0: return 200;
	case E_AUTH: return 403;
	case E_NOTFOUND: return 404;
	case E_INVAL: return 400;
	case E_NOLEADER:
	case E_BUSY: return 503;
	default: return 409;
	}
}

/* ---- ops through an internal conn --------------------------------------------------------- */

/* One frame of a log stream as {"prefix", "text"|"warn"}: the bytes as text, not hex. */
static void log_frame_json(const msgpack_object *o, struct buf *out)
{
	const msgpack_object *pre = mp_get(o, "prefix"), *data = mp_get(o, "data"), *warn = mp_get(o, "warn");
	buf_printf(out, "{");
	if (mp_is_str(pre)) {
		buf_printf(out, "\"prefix\":");
		mp_to_json(pre, out);
	}
	if (data && (data->type == MSGPACK_OBJECT_BIN || data->type == MSGPACK_OBJECT_STR)) {
		msgpack_object s = {.type = MSGPACK_OBJECT_STR, .via.str = {.ptr = data->via.bin.ptr, .size = data->via.bin.size}};
		buf_printf(out, "%s\"text\":", mp_is_str(pre) ? "," : "");
		mp_to_json(&s, out);
	} else if (mp_is_str(warn)) {
		buf_printf(out, "%s\"warn\":", mp_is_str(pre) ? "," : "");
		mp_to_json(warn, out);
	}
	buf_printf(out, "}");
}

static void stream_sink(struct cx *x, const msgpack_object *o);

/* A reply frame of the op the exchange runs. */
static void op_sink(struct conn *c, const void *p, size_t n)
{
	struct cx *x = c->sink_arg;
	if (!x || x->ended || x->op != c)
		return;
	struct mpr r;
	if (mpr_decode(&r, p, n)) {
		cx_error(x, 500, E_FAIL, "the node's reply could not be read");
		return;
	}
	if (x->stream) {
		stream_sink(x, r.root);
		mpr_free(&r);
		return;
	}
	int64_t rc = 0;
	mp_get_i64(r.root, "rc", &rc);
	bool more = false;
	mp_get_bool(r.root, "more", &more);
	if (rc) {
		char msg[ERR_LEN] = "failed";
		mp_get_strbuf(r.root, "err", msg, sizeof msg);
		cx_error(x, http_code_of((int)rc), (int)rc, msg);
	} else if (more || x->multi) {
		/* a reply in frames (logs): collected into {"rc":0,"frames":[...]} */
		if (!x->multi)
			buf_printf(&x->acc, "{\"rc\":0,\"frames\":[");
		x->multi = true;
		if (more && (mp_get(r.root, "data") || mp_get(r.root, "warn"))) {
			if (x->nframes++)
				buf_printf(&x->acc, ",");
			if (x->logs)
				log_frame_json(r.root, &x->acc);
			else
				mp_to_json(r.root, &x->acc);
		}
		if (!more || x->acc.len > (8u << 20)) {
			buf_printf(&x->acc, "],\"complete\":%s}", more ? "false" : "true");
			cx_answer(x, 200, "application/json", x->acc.data, x->acc.len);
		}
	} else {
		struct buf b = {0};
		mp_to_json(r.root, &b);
		cx_answer(x, 200, "application/json", b.data, b.len);
		buf_free(&b);
	}
	mpr_free(&r);
}

/* Runs op with args (a packed msgpack map's entries, counted: nargs) as x's caller. */
static void cx_run(struct cx *x, const char *op, const struct mpw *args, uint32_t nargs)
{
	struct console *con = x->con;
	struct mpw w;
	mpw_init(&w);
	msgpack_pack_map(&w.pk, nargs + 2);
	x->op_id = ++con->next_id;
	mpw_kstr(&w, "op", op);
	mpw_ku64(&w, "id", x->op_id);
	if (args)
		mpw_raw(&w, args->sb.data, args->sb.size);
	struct mpr r;
	if (mpr_decode(&r, w.sb.data, w.sb.size)) {
		mpw_free(&w);
		cx_error(x, 400, E_INVAL, "bad arguments");
		return;
	}
	mpw_free(&w);
	cx_stop_op(x);
	x->op = daemon_conn_internal(con->d, &x->who, op_sink, x);
	/* the handler may answer at once (and end x): x stays allocated until we return,
	 * since freeing waits for the timer's close callback */
	rpc_dispatch(con->d, x->op, r.root, false);
	mpr_free(&r);
}

/* ---- the event stream ------------------------------------------------------------------ */

static void stream_sink(struct cx *x, const msgpack_object *o)
{
	int64_t rc = 0;
	mp_get_i64(o, "rc", &rc);
	cx_stop_op(x);
	if (rc) {
		char msg[ERR_LEN] = "failed", line[ERR_LEN + 64];
		mp_get_strbuf(o, "err", msg, sizeof msg);
		for (char *p = msg; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		int k = snprintf(line, sizeof line, "event: error\ndata: %s\n\n", msg);
		cx_write(x, line, (size_t)k, false);
		if (rc == E_AUTH)
			cx_end(x);
		return;
	}
	const msgpack_object *ev = mp_get(o, "events");
	struct buf b = {0};
	for (uint32_t i = 0; ev && ev->type == MSGPACK_OBJECT_ARRAY && i < ev->via.array.size; i++) {
		uint64_t id = 0;
		mp_get_u64(&ev->via.array.ptr[i], "id", &id);
		if (id <= x->since)
			continue;
		x->since = id;
		buf_printf(&b, "id: %llu\ndata: ", (unsigned long long)id);
		mp_to_json(&ev->via.array.ptr[i], &b); /* one line: JSON escapes newlines */
		buf_printf(&b, "\n\n");
	}
	if (!b.len)
		buf_printf(&b, ": idle\n\n"); /* a comment: tells a gone client from a quiet log */
	cx_write(x, b.data, b.len, false);
	buf_free(&b);
}

static void stream_poll(uv_timer_t *t)
{
	struct cx *x = t->data;
	if (x->ended || x->op)
		return;
	struct mpw a;
	mpw_init(&a);
	mpw_ku64(&a, "since", x->since);
	mpw_ku64(&a, "limit", 200);
	cx_run(x, "events", &a, 2);
	mpw_free(&a);
}

static void stream_start(struct cx *x, uint64_t since)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
				   "Connection: close\r\n\r\nretry: 2000\n\n";
	x->stream = true;
	x->answered = true;
	x->since = since;
	cx_write(x, head, sizeof head - 1, false);
	if (x->ended)
		return;
	uv_timer_stop(x->timer);
	uv_timer_start(x->timer, stream_poll, 0, CX_STREAM_POLL_MS);
}

/* ---- routing ---------------------------------------------------------------------------------- */

static const char *const read_ops[] = {"status", "nodes", "services", "service.get", "tasks",
				       "events", "top",   "images",   "logs.cluster", NULL};
static const char *const write_ops[] = {"service.scale", "service.update", "node.update", NULL};

static bool listed(const char *const *l, const char *s)
{
	for (; *l; l++)
		if (!strcmp(*l, s))
			return true;
	return false;
}

static int unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* URL-decodes s[0..n) into out (NUL-terminated); -1 when malformed or too long. */
static int url_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= n || (h = unhex(s[i + 1])) < 0 || (l = unhex(s[i + 2])) < 0)
				return -1;
			c = (char)(h * 16 + l);
			i += 2;
		} else if (c == '+')
			c = ' ';
		if (!c || k + 1 >= cap)
			return -1;
		out[k++] = c;
	}
	out[k] = 0;
	return 0;
}

/* The query's k=v pairs as msgpack map entries: "true"/"false" as booleans, digits as
 * numbers, anything else a string (the op's decoder checks the types). */
static int query_args(const char *q, struct mpw *w, uint32_t *n, bool *follow)
{
	while (q && *q) {
		const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
		const char *eq = memchr(q, '=', (size_t)(end - q));
		char k[64], v[512];
		if (!eq || url_decode(q, (size_t)(eq - q), k, sizeof k) || url_decode(eq + 1, (size_t)(end - eq - 1), v, sizeof v))
			return -1;
		/* tail: the console sets it (CX_LOG_TAIL_MAX) */
		if (!strcmp(k, "op") || !strcmp(k, "id") || !strcmp(k, "origin") || !strcmp(k, "tail") || *n >= 16)
			return -1;
		if (!strcmp(k, "follow")) { /* a page reads logs whole: the stream is /api/stream */
			*follow = true;
			q = amp ? amp + 1 : NULL;
			continue;
		}
		mpw_key(w, k);
		char *e;
		if (!strcmp(v, "true") || !strcmp(v, "false"))
			mpw_bool(w, v[0] == 't');
		else if (v[0] && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) && (strtoll(v, &e, 10), !*e))
			v[0] == '-' ? mpw_i64(w, strtoll(v, NULL, 10)) : mpw_u64(w, strtoull(v, NULL, 10));
		else
			mpw_str(w, v);
		(*n)++;
		q = amp ? amp + 1 : NULL;
	}
	return 0;
}

static void json_to_mp(const struct json *j, struct mpw *w)
{
	switch (j->type) {
	case JSON_NULL: mpw_nil(w); break;
	case JSON_BOOL: mpw_bool(w, j->b); break;
	case JSON_NUM: {
		uint64_t u;
		if (!json_u64(j, &u))
			mpw_u64(w, u);
		else if (j->num == (double)(int64_t)j->num)
			mpw_i64(w, (int64_t)j->num);
		else
			msgpack_pack_double(&w->pk, j->num);
		break;
	}
	case JSON_STR: mpw_str(w, j->str); break;
	case JSON_ARR:
		mpw_arr(w, (uint32_t)j->n);
		for (size_t i = 0; i < j->n; i++)
			json_to_mp(j->items[i], w);
		break;
	case JSON_OBJ:
		msgpack_pack_map(&w->pk, (uint32_t)j->n);
		for (size_t i = 0; i < j->n; i++) {
			mpw_key(w, j->keys[i]);
			json_to_mp(j->items[i], w);
		}
		break;
	}
}

static void api_whoami(struct cx *x)
{
	struct daemon *d = x->con->d;
	struct buf b = {0};
	msgpack_object u = {.type = MSGPACK_OBJECT_STR, .via.str = {.ptr = x->who.user, .size = (uint32_t)strlen(x->who.user)}};
	msgpack_object nm = {.type = MSGPACK_OBJECT_STR, .via.str = {.ptr = d->ident.name, .size = (uint32_t)strlen(d->ident.name)}};
	buf_printf(&b, "{\"role\":\"%s\",\"user\":", peer_role_name(x->who.kind == PEER_NODE ? PROLE_ADMIN : x->who.role));
	mp_to_json(&u, &b);
	buf_printf(&b, ",\"node\":");
	mp_to_json(&nm, &b);
	buf_printf(&b, ",\"plain\":%s,\"version\":\"%s\"}", x->kind == CX_PLAIN ? "true" : "false", ORCH_VERSION);
	cx_answer(x, 200, "application/json", b.data, b.len);
	buf_free(&b);
}

static void hashes_done(void *arg, const struct buf *json)
{
	struct cx *x = arg;
	x->ask = NULL;
	cx_answer(x, 200, "application/json", json->data, json->len);
}

static const char *ctype_of(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".js"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	return "application/octet-stream";
}

/* The Host a plain request names must be an address, not a name: a page of another site
 * whose name was pointed at 127.0.0.1 (DNS rebinding) must not reach the console. */
static bool host_ok(const char *host)
{
	if (!host[0])
		return false;
	char h[128];
	snprintf(h, sizeof h, "%s", host);
	char *colon = strrchr(h, ':');
	if (colon)
		*colon = 0;
	if (!strcmp(h, "localhost"))
		return true;
	for (const char *p = h; *p; p++)
		if (!(*p == '.' || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

static void cx_serve(struct cx *x, const struct httpreq *rq)
{
	struct console *con = x->con;
	con->last_used = con_now(con);
	snprintf(x->method, sizeof x->method, "%s", rq->method);
	char path[1024];
	snprintf(path, sizeof path, "%s", rq->path);
	char *query = strchr(path, '?');
	if (query)
		*query++ = 0;
	bool get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD"), post = !strcmp(rq->method, "POST");
	if (x->kind == CX_PLAIN && !host_ok(rq->host)) {
		cx_error(x, 403, E_AUTH, "the console answers only requests addressed to an IP address or localhost");
		return;
	}
	if (strncmp(path, "/api/", 5)) {
		if (!get) {
			cx_error(x, 405, E_INVAL, "only GET and HEAD here");
			return;
		}
		const char *want = !strcmp(path, "/") ? "/index.html" : path;
		for (const struct console_asset *a = console_assets; a->path; a++)
			if (!strcmp(a->path, want)) {
				cx_answer(x, 200, ctype_of(want), a->data, a->len);
				return;
			}
		cx_error(x, 404, E_NOTFOUND, "no such page");
		return;
	}
	const char *api = path + 5;
	if (get && !strcmp(api, "whoami")) {
		api_whoami(x);
		return;
	}
	if (get && !strcmp(api, "history")) {
		struct buf b = {0};
		hist_json(&con->hist, con_now(con), &b);
		cx_answer(x, 200, "application/json", b.data, b.len);
		buf_free(&b);
		return;
	}
	if (get && !strcmp(api, "hashes")) {
		x->ask = hashes_ask(con->d, hashes_done, x);
		return;
	}
	if (get && !strcmp(api, "stream")) {
		uint64_t since = 0;
		if (query && !strncmp(query, "since=", 6))
			since = strtoull(query + 6, NULL, 10);
		stream_start(x, since);
		return;
	}
	struct mpw a;
	mpw_init(&a);
	uint32_t n = 0;
	if (get && listed(read_ops, api)) {
		bool follow = false;
		if (query_args(query, &a, &n, &follow) || follow) {
			cx_error(x, 400, E_INVAL, "bad query: NAME=VALUE pairs of the op's fields (no follow, no tail)");
			goto out;
		}
		x->logs = !strcmp(api, "logs.cluster");
		if (x->logs) { /* the page asks for a tail, never the whole of a log */
			mpw_key(&a, "tail");
			mpw_i64(&a, CX_LOG_TAIL_MAX);
			n++;
		}
		cx_run(x, api, &a, n);
	} else if (post && listed(write_ops, api)) {
		/* a cross-site form can post, but not with this header (it would need CORS,
		 * which the console never grants) */
		if (!rq->console) {
			cx_error(x, 403, E_AUTH, "console actions need the X-Orch-Console header (sent by the console's pages)");
			goto out;
		}
		struct json *j = NULL;
		char err[ERR_LEN];
		if (json_parse(rq->body, rq->body_len, &j, err) || j->type != JSON_OBJ || j->n > 16) {
			cx_error(x, 400, E_INVAL, j ? "the body must be a JSON object of the op's fields" : err);
			json_free(j);
			goto out;
		}
		for (size_t i = 0; i < j->n; i++) {
			if (!strcmp(j->keys[i], "op") || !strcmp(j->keys[i], "id") || !strcmp(j->keys[i], "origin")) {
				cx_error(x, 400, E_INVAL, "the body may not set op, id or origin");
				json_free(j);
				goto out;
			}
			mpw_key(&a, j->keys[i]);
			json_to_mp(j->items[i], &a);
		}
		n = (uint32_t)j->n;
		json_free(j);
		log_info(con->d->ident.name, con->d->clock, "console: %s by %s", api,
			 x->who.kind == PEER_USER ? x->who.user : "the plain listener");
		cx_run(x, api, &a, n);
	} else if (listed(read_ops, api) || listed(write_ops, api))
		cx_error(x, 405, E_INVAL, post ? "this op is read with GET" : "this op is an action: POST it with its JSON args");
	else
		cx_error(x, 404, E_NOTFOUND, "no such API (see orch-console(1))");
out:
	mpw_free(&a);
}

/* ---- exchanges: making ----------------------------------------------------------------- */

static void cx_timeout(uv_timer_t *t)
{
	struct cx *x = t->data;
	if (!x->answered)
		cx_error(x, 504, E_TIMEOUT, "no answer in time (is there a leader?)");
	else
		cx_end(x);
}

static struct cx *cx_new(struct console *con, enum cx_kind kind)
{
	struct cx *x = xcalloc(1, sizeof *x);
	x->con = con;
	x->kind = kind;
	x->timer = xmalloc(sizeof *x->timer);
	uv_timer_init(con->d->loop, x->timer);
	x->timer->data = x;
	x->handles = 1;
	x->next = con->xs;
	if (con->xs)
		con->xs->prev = x;
	con->xs = x;
	con->nxs++;
	return x;
}

void console_tls(struct console *con, struct conn *c, const struct httpreq *rq)
{
	if (con->closing || con->nxs >= CX_MAX) {
		conn_close(c, "console busy");
		return;
	}
	struct cx *x = cx_new(con, CX_TLS);
	x->tls = c;
	conn_peer(c, &x->who);
	uv_timer_start(x->timer, cx_timeout, CX_OP_TIMEOUT_MS, 0);
	cx_serve(x, rq);
}

void console_conn_gone(struct console *con, struct conn *c)
{
	for (struct cx *x = con ? con->xs : NULL; x; x = x->next)
		if (x->kind == CX_TLS && x->tls == c) {
			x->gone = true;
			x->tls = NULL;
			cx_end(x);
			return;
		}
}

static void plain_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct cx *x = h->data;
	(void)suggested;
	buf_reserve(&x->in, 4096);
	b->base = (char *)x->in.data + x->in.len;
	b->len = x->in.cap - x->in.len;
}

static void plain_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct cx *x = s->data;
	(void)b;
	if (n < 0) {
		x->gone = true;
		cx_end(x);
		return;
	}
	if (x->answered || x->stream) /* one request per connection */
		return;
	x->in.len += (size_t)n;
	struct httpreq rq;
	char err[ERR_LEN];
	int k = httpreq_parse((const char *)x->in.data, x->in.len, &rq, err);
	if (k == 0)
		return;
	/* keep reading: the client going away must end a stream */
	if (k < 0) {
		snprintf(x->method, sizeof x->method, "GET");
		cx_error(x, 400, E_INVAL, err);
		return;
	}
	uv_timer_stop(x->timer);
	uv_timer_start(x->timer, cx_timeout, CX_OP_TIMEOUT_MS, 0);
	cx_serve(x, &rq);
}

static void plain_conn(uv_stream_t *srv, int status)
{
	struct console *con = srv->data;
	if (status || con->closing)
		return;
	struct cx *x = cx_new(con, CX_PLAIN);
	x->who = (struct peer){.kind = PEER_USER, .role = console_plain_role(con->d)};
	snprintf(x->who.user, sizeof x->who.user, "console-listen");
	x->tcp = xmalloc(sizeof *x->tcp);
	uv_tcp_init(con->d->loop, x->tcp);
	x->tcp->data = x;
	x->handles++;
	if (uv_accept(srv, (uv_stream_t *)x->tcp) || con->nxs > CX_MAX) {
		cx_end(x);
		return;
	}
	uv_tcp_nodelay(x->tcp, 1);
	uv_timer_start(x->timer, cx_timeout, CX_REQ_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)x->tcp, plain_alloc, plain_read);
}

/* ---- the console ------------------------------------------------------------------------------ */

enum peer_role console_plain_role(const struct daemon *d)
{
	return d->worker ? PROLE_VIEWER : CONSOLE_PLAIN_ROLE;
}

struct console *console_new(struct daemon *d)
{
	struct console *con = xcalloc(1, sizeof *con);
	con->d = d;
	return con;
}

int console_listen(struct console *con, const char *addr, char *err)
{
	struct sockaddr_in sa;
	if (parse_ipport(addr, &sa, err))
		return E_INVAL;
	con->srv = xmalloc(sizeof *con->srv);
	uv_tcp_init(con->d->loop, con->srv);
	con->srv->data = con;
	con->handles++;
	int rv = uv_tcp_bind(con->srv, (struct sockaddr *)&sa, 0);
	if (!rv)
		rv = uv_listen((uv_stream_t *)con->srv, 64, plain_conn);
	if (rv) {
		errf(err, E_IO, "console listener on %s: %s", addr, uv_strerror(rv));
		return E_IO;
	}
	con->last_used = con_now(con);
	snprintf(con->addr, sizeof con->addr, "%s", addr);
	return 0;
}

const char *console_addr(const struct console *con)
{
	return con ? con->addr : "";
}

static void sampler_sink(struct conn *c, const void *p, size_t n)
{
	struct console *con = c->sink_arg;
	if (!con)
		return;
	struct mpr r;
	int64_t rc = -1;
	if (!mpr_decode(&r, p, n)) {
		mp_get_i64(r.root, "rc", &rc);
		if (!rc)
			hist_add_top(&con->hist, con_now(con), r.root);
		mpr_free(&r);
	}
	if (con->sampler == c) {
		con->sampler = NULL;
		retire(con, c);
	}
}

void console_tick(struct console *con)
{
	uint64_t now = con_now(con);
	/* only a node whose console is in use samples (a listener, or a page seen within the
	 * hour): a process of many hollow nodes does not run the top op for each */
	if (con->closing || !con->last_used || now - con->last_used > 3600 * 1000 || now - con->last_sample < HIST_PERIOD_MS)
		return;
	if (con->sampler) { /* the last one never answered */
		struct conn *c = con->sampler;
		con->sampler = NULL;
		retire(con, c);
	}
	con->last_sample = now;
	struct peer self = {.kind = PEER_LOCAL, .role = PROLE_ADMIN};
	con->sampler = daemon_conn_internal(con->d, &self, sampler_sink, con);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "op", "top");
	mpw_ku64(&w, "id", ++con->next_id);
	mpw_map_end(&w);
	struct mpr r;
	if (!mpr_decode(&r, w.sb.data, w.sb.size)) {
		rpc_dispatch(con->d, con->sampler, r.root, false);
		mpr_free(&r);
	}
	mpw_free(&w);
}

static void con_handle_closed(uv_handle_t *h)
{
	struct console *con = h->data;
	free(h);
	con->handles--;
	console_maybe_done(con);
}

void console_close(struct console *con, void (*cb)(void *arg), void *arg)
{
	con->closing = true;
	con->closed_cb = cb;
	con->closed_arg = arg;
	if (con->sampler) {
		struct conn *c = con->sampler;
		con->sampler = NULL;
		retire(con, c);
	}
	for (struct cx *x = con->xs, *next; x; x = next) {
		next = x->next;
		cx_end(x);
	}
	reap_now(con);
	if (con->reap_timer) {
		uv_close((uv_handle_t *)con->reap_timer, con_handle_closed);
		con->reap_timer = NULL;
	}
	if (con->srv) {
		uv_close((uv_handle_t *)con->srv, con_handle_closed);
		con->srv = NULL;
	}
	console_maybe_done(con);
}
