#include "net/conn.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDSHAKE_TIMEOUT_MS 10000

enum {
	ST_SNIFF = 1,   /* server: waiting for first bytes */
	ST_S_PROOF,     /* server: challenge sent, waiting for proof */
	ST_C_CONNECT,   /* client: TCP connect in progress */
	ST_C_CHAL,      /* client: hello sent, waiting for challenge */
	ST_C_ACK,       /* client: proof sent, waiting for ack */
	ST_FRAMES,      /* authenticated RPC frames */
	ST_HTTP,        /* plain HTTP */
	ST_DONE,        /* handed off or closing */
};

static void trace_id(const struct conn *c, char out[32])
{
	snprintf(out, 32, "conn:%08llx", (unsigned long long)c->id);
}

static void maybe_free(struct conn *c)
{
	if (c->handles > 0)
		return;
	buf_free(&c->rbuf);
	free(c->extra);
	free(c);
}

static void handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if ((uv_handle_t *)c->stream == h) {
		raft_free(c->stream);
		c->stream = NULL;
	}
	c->handles--;
	maybe_free(c);
}

void conn_close(struct conn *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = true;
	c->state = ST_DONE;
	char tid[32];
	trace_id(c, tid);
	TRACE("conn", tid, "close %s: %s", c->peer, why ? why : "ok");
	if (c->ops->on_close)
		c->ops->on_close(c, why);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, handle_closed);
	if (c->stream && !uv_is_closing((uv_handle_t *)c->stream))
		uv_close((uv_handle_t *)c->stream, handle_closed);
}

static void timeout_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	conn_close(c, "handshake timed out");
}

struct wreq {
	uv_write_t req;
	uv_buf_t buf;
};

static void write_cb(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	free(w->buf.base);
	free(w);
	(void)status; /* a failed write shows up as a read error / EOF */
}

/* Takes ownership of p (malloc'd). */
static int write_owned(struct conn *c, char *p, size_t n)
{
	if (c->closing || !c->stream) {
		free(p);
		return -1;
	}
	if (uv_stream_get_write_queue_size(c->stream) > CONN_WRITE_QUEUE_MAX) {
		free(p);
		conn_close(c, "the peer does not read what it asked for: too much output queued");
		return -1;
	}
	struct wreq *w = xmalloc(sizeof *w);
	w->buf = uv_buf_init(p, (unsigned)n);
	if (uv_write(&w->req, c->stream, &w->buf, 1, write_cb)) {
		free(p);
		free(w);
		conn_close(c, "write failed");
		return -1;
	}
	return 0;
}

int conn_write_raw(struct conn *c, const void *p, size_t n)
{
	char *copy = xmalloc(n);
	memcpy(copy, p, n);
	return write_owned(c, copy, n);
}

int conn_send(struct conn *c, const void *p, size_t n)
{
	if (n > FRAME_MAX)
		return -1;
	char *f = xmalloc(n + 4);
	f[0] = (char)(n >> 24);
	f[1] = (char)(n >> 16);
	f[2] = (char)(n >> 8);
	f[3] = (char)n;
	memcpy(f + 4, p, n);
	return write_owned(c, f, n + 4);
}

int conn_send_mpw(struct conn *c, struct mpw *w)
{
	int rc = conn_send(c, w->sb.data, w->sb.size);
	msgpack_sbuffer_clear(&w->sb);
	w->depth = 0;
	return rc;
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;
	free(req);
	c->handles--;
	conn_close(c, NULL);
	maybe_free(c);
}

void conn_close_after_write(struct conn *c)
{
	if (c->closing || !c->stream)
		return;
	uv_shutdown_t *req = xmalloc(sizeof *req);
	req->data = c;
	c->handles++; /* keep the memory alive until shutdown_cb */
	c->state = ST_DONE;
	if (uv_shutdown(req, c->stream, shutdown_cb)) {
		free(req);
		c->handles--;
		conn_close(c, NULL);
	}
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;
	(void)suggested;
	buf_reserve(&c->rbuf, 65536);
	b->base = (char *)c->rbuf.data + c->rbuf.len;
	b->len = c->rbuf.cap - c->rbuf.len;
}

static void send_err_and_close(struct conn *c, const char *msg)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ki64(&w, "rc", E_INVAL);
	mpw_kstr(&w, "err", msg);
	mpw_map_end(&w);
	conn_send_mpw(c, &w);
	mpw_free(&w);
	snprintf(c->why, sizeof c->why, "%s", msg);
	conn_close_after_write(c);
}

/* Server: after the full proof arrived. */
static void server_proof(struct conn *c)
{
	const uint8_t *p = c->rbuf.data;
	size_t need = AUTH_PROOF_LEN + 2;
	if (c->rbuf.len < need)
		return;
	size_t elen = (size_t)p[AUTH_PROOF_LEN] << 8 | p[AUTH_PROOF_LEN + 1];
	if (elen > AUTH_EXTRA_MAX) {
		conn_close(c, "handshake: oversized extra");
		return;
	}
	if (c->rbuf.len < need + elen)
		return;
	if (c->rbuf.len > need + elen) {
		conn_close(c, "handshake: bytes after proof");
		return;
	}
	if (!auth_proof_ok(c->tok, c->hello, c->chal, p)) {
		log_warn(NULL, NULL, "rejected connection from %s: bad token proof", c->peer);
		conn_close(c, "bad token proof");
		return;
	}
	uint8_t *extra = xmalloc(elen + 1);
	memcpy(extra, p + need, elen);
	extra[elen] = 0;
	c->rbuf.len = 0;
	uv_timer_stop(&c->timer);
	uint8_t ack = AUTH_ACK;
	if (c->kind == AUTH_KIND_RAFT) {
		uv_read_stop(c->stream);
		conn_write_raw(c, &ack, 1);
		uv_stream_t *s = c->stream;
		c->stream = NULL; /* now libraft's */
		c->detached = true;
		c->handles--;
		c->state = ST_DONE;
		if (c->ops->on_raft)
			c->ops->on_raft(c, s, extra, elen);
		free(extra);
		c->closing = true;
		uv_close((uv_handle_t *)&c->timer, handle_closed);
		return;
	}
	c->extra = extra;
	c->extra_len = elen;
	c->state = ST_FRAMES;
	conn_write_raw(c, &ack, 1);
	if (c->ops->on_ready)
		c->ops->on_ready(c);
}

static void server_sniff(struct conn *c)
{
	const uint8_t *p = c->rbuf.data;
	if (c->rbuf.len < 4)
		return;
	if (!memcmp(p, "GET ", 4) || !memcmp(p, "HEAD", 4)) {
		c->state = ST_HTTP;
		return;
	}
	if (memcmp(p, "ORCH", 4) || !c->tok) {
		conn_close(c, "unknown protocol");
		return;
	}
	if (c->rbuf.len < AUTH_HELLO_LEN)
		return;
	uint8_t cid[CLUSTER_ID_LEN];
	if (c->rbuf.len > AUTH_HELLO_LEN || auth_hello_parse(p, &c->kind, cid)) {
		conn_close(c, "malformed hello");
		return;
	}
	if (memcmp(cid, c->tok->cluster_id, CLUSTER_ID_LEN)) {
		log_warn(NULL, NULL, "rejected connection from %s: token of another cluster", c->peer);
		conn_close(c, "unknown cluster id");
		return;
	}
	memcpy(c->hello, p, AUTH_HELLO_LEN);
	c->rbuf.len = 0;
	auth_challenge(c->tok, c->hello, c->chal);
	c->state = ST_S_PROOF;
	conn_write_raw(c, c->chal, AUTH_CHAL_LEN);
}

static void http_parse(struct conn *c)
{
	char *p = (char *)c->rbuf.data;
	buf_reserve(&c->rbuf, 1);
	p = (char *)c->rbuf.data;
	p[c->rbuf.len] = 0;
	if (!strstr(p, "\r\n\r\n") && !strstr(p, "\n\n")) {
		if (c->rbuf.len > 8192)
			conn_close(c, "http request too large");
		return;
	}
	char method[8] = "", path[256] = "";
	if (sscanf(p, "%7s %255s", method, path) != 2) {
		conn_close(c, "bad http request");
		return;
	}
	c->state = ST_DONE;
	uv_timer_stop(&c->timer);
	if (c->ops->on_http)
		c->ops->on_http(c, method, path);
	else
		conn_close(c, NULL);
}

static void frames(struct conn *c)
{
	/* requests from the node port are held to the limits of net/frame.h; what the local
	 * socket (root) and the node this side dialled send only to FRAME_MAX */
	struct peer who;
	conn_peer(c, &who);
	struct frame_policy pol = {.per_op = c->tcp && !c->client, .proved = who.kind == PEER_NODE};
	char why[ERR_LEN];
	while (!c->closing && c->state == ST_FRAMES) {
		size_t n;
		int k = frame_next(c->rbuf.data, c->rbuf.len, &pol, &n, why);
		if (k == FRAME_MORE)
			break;
		struct mpr r;
		if (k < 0 || frame_decode(c->rbuf.data + 4, n, &pol, &r, why)) {
			send_err_and_close(c, why);
			return;
		}
		/* The handler may close the conn; the buffer stays valid until we return. */
		if (c->ops->on_frame)
			c->ops->on_frame(c, r.root);
		mpr_free(&r);
		if (c->closing)
			return;
		buf_consume(&c->rbuf, n + 4);
	}
	/* a large frame grew the buffer: give it back rather than keep it per connection */
	if (!c->rbuf.len && c->rbuf.cap > (1u << 20))
		buf_free(&c->rbuf);
}

static void client_progress(struct conn *c)
{
	if (c->state == ST_C_CHAL) {
		if (c->rbuf.len < AUTH_CHAL_LEN)
			return;
		if (c->rbuf.len > AUTH_CHAL_LEN) {
			conn_close(c, "handshake: unexpected bytes");
			return;
		}
		memcpy(c->chal, c->rbuf.data, AUTH_CHAL_LEN);
		c->rbuf.len = 0;
		if (!auth_challenge_ok(c->tok, c->hello, c->chal)) {
			conn_close(c, "token rejected: the peer does not know this token's secret");
			return;
		}
		size_t n = AUTH_PROOF_LEN + 2 + c->extra_len;
		char *m = xmalloc(n);
		auth_proof(c->tok, c->hello, c->chal, (uint8_t *)m);
		m[AUTH_PROOF_LEN] = (char)(c->extra_len >> 8);
		m[AUTH_PROOF_LEN + 1] = (char)c->extra_len;
		if (c->extra_len)
			memcpy(m + AUTH_PROOF_LEN + 2, c->extra, c->extra_len);
		c->state = ST_C_ACK;
		write_owned(c, m, n);
		return;
	}
	if (c->state == ST_C_ACK) {
		if (c->rbuf.len < 1)
			return;
		if (c->rbuf.data[0] != AUTH_ACK) {
			conn_close(c, "handshake: bad ack");
			return;
		}
		buf_consume(&c->rbuf, 1);
		uv_timer_stop(&c->timer);
		c->state = ST_FRAMES;
		if (c->ops->on_ready)
			c->ops->on_ready(c);
		if (!c->detached && !c->closing)
			frames(c);
	}
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	(void)b;
	if (nread < 0) {
		if (c->state == ST_C_CHAL)
			conn_close(c, "connection closed during handshake: token rejected or wrong cluster");
		else if (c->state == ST_C_ACK)
			conn_close(c, "connection closed during handshake: token proof rejected");
		else
			conn_close(c, nread == UV_EOF ? (c->why[0] ? c->why : NULL) : uv_strerror((int)nread));
		return;
	}
	c->rbuf.len += (size_t)nread;
	switch (c->state) {
	case ST_SNIFF: server_sniff(c); break;
	case ST_S_PROOF: server_proof(c); break;
	case ST_C_CHAL:
	case ST_C_ACK: client_progress(c); break;
	case ST_FRAMES: frames(c); break;
	case ST_HTTP: http_parse(c); break;
	default:
		c->rbuf.len = 0; /* draining after close */
		break;
	}
	if (c->state == ST_SNIFF && !c->closing && c->rbuf.len == 0)
		return;
	if (c->state == ST_HTTP && !c->closing)
		http_parse(c);
}

static struct conn *conn_new(uv_loop_t *loop, const struct conn_ops *ops, void *data)
{
	struct conn *c = xcalloc(1, sizeof *c);
	c->ops = ops;
	c->data = data;
	/* random rather than counted: a counter would be state shared by every node of the
	 * process; 32 bits tell a trace's connections apart */
	uint32_t rid;
	random_bytes(&rid, sizeof rid);
	c->id = rid;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->handles = 1;
	return c;
}

struct conn *conn_accept(uv_stream_t *server, bool tcp, const struct token *tok, const struct conn_ops *ops, void *data)
{
	struct conn *c = conn_new(server->loop, ops, data);
	c->tcp = tcp;
	c->tok = tok;
	if (tcp) {
		uv_tcp_t *t = raft_malloc(sizeof *t);
		uv_tcp_init(server->loop, t);
		c->stream = (uv_stream_t *)t;
	} else {
		uv_pipe_t *p = raft_malloc(sizeof *p);
		uv_pipe_init(server->loop, p, 0);
		c->stream = (uv_stream_t *)p;
	}
	c->stream->data = c;
	c->handles++;
	if (uv_accept(server, c->stream)) {
		conn_close(c, "accept failed");
		return NULL;
	}
	if (tcp) {
		struct sockaddr_storage ss;
		int len = sizeof ss;
		uv_tcp_nodelay((uv_tcp_t *)c->stream, 1);
		if (!uv_tcp_getpeername((uv_tcp_t *)c->stream, (struct sockaddr *)&ss, &len) && ss.ss_family == AF_INET) {
			struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
			char ip[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
			snprintf(c->peer, sizeof c->peer, "%s:%u", ip, ntohs(sa->sin_port));
		}
		c->state = ST_SNIFF;
		uv_timer_start(&c->timer, timeout_cb, HANDSHAKE_TIMEOUT_MS, 0);
	} else {
		snprintf(c->peer, sizeof c->peer, "local");
		c->state = ST_FRAMES;
	}
	uv_read_start(c->stream, alloc_cb, read_cb);
	return c;
}

int parse_ipport(const char *s, struct sockaddr_in *sa, char *err)
{
	char ip[64];
	const char *colon = s ? strrchr(s, ':') : NULL;
	if (!colon || (size_t)(colon - s) >= sizeof ip)
		return errf(err, E_INVAL, "address %s: expected IPv4:PORT", s ? s : "(none)");
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535 || end == colon + 1)
		return errf(err, E_INVAL, "address %s: bad port", s);
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
		return errf(err, E_INVAL, "address %s: %s is not an IPv4 address", s, ip);
	return 0;
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	free(req);
	if (c->closing)
		return;
	if (status) {
		char why[128];
		snprintf(why, sizeof why, "connect %s: %s", c->peer, uv_strerror(status));
		conn_close(c, why);
		return;
	}
	uv_tcp_nodelay((uv_tcp_t *)c->stream, 1);
	c->state = ST_C_CHAL;
	uv_read_start(c->stream, alloc_cb, read_cb);
	conn_write_raw(c, c->hello, AUTH_HELLO_LEN);
}

struct conn *conn_connect(uv_loop_t *loop, const char *addr, enum auth_kind kind, const struct token *tok,
			  const void *extra, size_t extra_len, const struct conn_ops *ops, void *data)
{
	struct conn *c = conn_new(loop, ops, data);
	c->tcp = true;
	c->client = true;
	c->tok = tok;
	c->kind = kind;
	snprintf(c->peer, sizeof c->peer, "%s", addr);
	if (extra_len > AUTH_EXTRA_MAX)
		extra_len = AUTH_EXTRA_MAX;
	c->extra = xmalloc(extra_len + 1);
	if (extra_len)
		memcpy(c->extra, extra, extra_len);
	c->extra_len = extra_len;
	auth_hello(tok, kind, c->hello);
	uv_tcp_t *t = raft_malloc(sizeof *t);
	uv_tcp_init(loop, t);
	c->stream = (uv_stream_t *)t;
	c->stream->data = c;
	c->handles++;
	c->state = ST_C_CONNECT;
	uv_timer_start(&c->timer, timeout_cb, HANDSHAKE_TIMEOUT_MS, 0);
	struct sockaddr_in sa;
	char err[ERR_LEN];
	uv_connect_t *req = xmalloc(sizeof *req);
	req->data = c;
	if (parse_ipport(addr, &sa, err) || uv_tcp_connect(req, t, (struct sockaddr *)&sa, connect_cb)) {
		free(req);
		conn_close(c, "bad address");
	}
	return c;
}

uint64_t conn_peer_node(const struct conn *c)
{
	return c->tcp && !c->client && c->extra_len == AUTH_NODE_LEN ? auth_node_get(c->extra, c->extra_len) : 0;
}

bool conn_in_handshake(const struct conn *c)
{
	return !c->closing && (c->state == ST_SNIFF || c->state == ST_S_PROOF || c->state == ST_HTTP);
}

void conn_peer(const struct conn *c, struct peer *out)
{
	memset(out, 0, sizeof *out);
	if (!c->tcp) {
		out->kind = PEER_LOCAL;
		out->role = PROLE_ADMIN;
	} else if ((out->node_id = conn_peer_node(c))) {
		out->kind = PEER_NODE;
		out->manager = true; /* every node may become a voter while one secret admits all */
	} else if (!c->client && c->state == ST_FRAMES) {
		/* a remote client that proved the cluster secret: today that is full access */
		out->kind = PEER_USER;
		out->role = PROLE_ADMIN;
		snprintf(out->user, sizeof out->user, "token");
	}
}

uv_stream_t *conn_detach(struct conn *c)
{
	uv_stream_t *s = c->stream;
	uv_read_stop(s);
	c->stream = NULL;
	c->detached = true;
	c->closing = true;
	c->state = ST_DONE;
	c->handles--;
	s->data = NULL;
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	return s;
}
