#include "net/conn.h"
#include "net/httpreq.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HANDSHAKE_TIMEOUT_MS 10000
/* a relay side whose writes queue beyond this stops reading the other side */
#define RELAY_HIGH (4u << 20)

enum {
	ST_TLS = 1,     /* TLS handshake in progress (either side) */
	ST_S_PRE,       /* server: waiting for the preamble */
	ST_C_CONNECT,   /* client: TCP connect in progress */
	ST_C_ACK,       /* client: preamble sent, waiting for ack */
	ST_FRAMES,      /* RPC frames */
	ST_HTTP,        /* HTTP inside TLS */
	ST_RELAY,       /* raft: bytes relayed to and from libraft's socket pair end */
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
	tls_sess_free(&c->ts);
	free(c->extra);
	free(c);
}

static void handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if ((uv_handle_t *)c->stream == h) {
		raft_free(c->stream);
		c->stream = NULL;
	} else if ((uv_handle_t *)c->relay == h) {
		free(c->relay);
		c->relay = NULL;
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
	if (c->on_end) {
		void (*cb)(void *, bool) = c->on_end;
		c->on_end = NULL;
		cb(c->end_arg, c->lost);
	}
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, handle_closed);
	if (c->stream && !uv_is_closing((uv_handle_t *)c->stream))
		uv_close((uv_handle_t *)c->stream, handle_closed);
	if (c->relay && !uv_is_closing((uv_handle_t *)c->relay))
		uv_close((uv_handle_t *)c->relay, handle_closed);
}

static void timeout_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	conn_close(c, "handshake timed out");
}

struct wreq {
	uv_write_t req;
	uv_buf_t buf;
	struct conn *c;
};

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void relay_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);

/* A write to the socket finished: if it drained enough, libraft's side may send again. */
static void write_cb(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct conn *c = w->c;
	free(w->buf.base);
	free(w);
	(void)status; /* a failed write shows up as a read error / EOF */
	c->handles--;
	if (c->relay_paused && !c->closing && c->stream &&
	    uv_stream_get_write_queue_size(c->stream) < RELAY_HIGH / 2) {
		c->relay_paused = false;
		uv_read_start((uv_stream_t *)c->relay, relay_alloc, relay_read_cb);
	}
	maybe_free(c);
}

/* Raw bytes to the socket; takes ownership of p (malloc'd). */
static int sock_write(struct conn *c, char *p, size_t n)
{
	if (c->closing || !c->stream) {
		free(p);
		return -1;
	}
	/* not on the local socket: it is root's, and `orch logs` of a large log relays every
	 * node's output to it faster than a terminal reads */
	if (c->tcp && uv_stream_get_write_queue_size(c->stream) > CONN_WRITE_QUEUE_MAX) {
		free(p);
		conn_close(c, "the peer does not read what it asked for: too much output queued");
		return -1;
	}
	struct wreq *w = xmalloc(sizeof *w);
	w->buf = uv_buf_init(p, (unsigned)n);
	w->c = c;
	c->handles++; /* the conn outlives its writes */
	if (uv_write(&w->req, c->stream, &w->buf, 1, write_cb)) {
		c->handles--;
		free(p);
		free(w);
		conn_close(c, "write failed");
		return -1;
	}
	return 0;
}

/* Sends what TLS has ready (handshake records, encrypted data). */
static int tls_flush(struct conn *c)
{
	size_t n;
	char *p = tls_take(&c->ts, &n);
	return p ? sock_write(c, p, n) : 0;
}

/* Takes ownership of p (malloc'd): through TLS on the node port, as is on the local socket. */
static int write_owned(struct conn *c, char *p, size_t n)
{
	if (c->closing || !c->stream) {
		free(p);
		return -1;
	}
	if (!c->tcp)
		return sock_write(c, p, n);
	int rc = tls_write(&c->ts, p, n);
	free(p);
	if (rc) {
		conn_close(c, "TLS write failed");
		return -1;
	}
	return tls_flush(c);
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
	if (c->sink) {
		if (c->closing)
			return -1;
		c->sink(c, p, n);
		return 0;
	}
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
	if (c->sink)
		conn_close(c, NULL);
	if (c->closing || !c->stream)
		return;
	if (c->tcp && c->ts.done) { /* a clean end for TLS clients (curl) */
		tls_close_notify(&c->ts);
		tls_flush(c);
	}
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

/* TCP reads land in a scratch buffer (ciphertext, fed to TLS); local ones in rbuf. */
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;
	(void)suggested;
	if (c->tcp) {
		b->base = xmalloc(65536);
		b->len = 65536;
		return;
	}
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

static void relay_write_cb(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct conn *c = w->c;
	free(w->buf.base);
	free(w);
	c->handles--;
	if (status && !c->closing)
		conn_close(c, "raft relay: write to libraft failed");
	else if (c->tcp_paused && !c->closing && c->relay &&
		 uv_stream_get_write_queue_size((uv_stream_t *)c->relay) < RELAY_HIGH / 2) {
		c->tcp_paused = false;
		uv_read_start(c->stream, alloc_cb, read_cb);
	}
	maybe_free(c);
}

/* Plaintext from the peer to libraft's end. */
static void relay_in(struct conn *c)
{
	if (!c->rbuf.len || c->closing)
		return;
	struct wreq *w = xmalloc(sizeof *w);
	w->buf = uv_buf_init((char *)c->rbuf.data, (unsigned)c->rbuf.len);
	w->c = c;
	c->rbuf = (struct buf){0}; /* the write owns those bytes now */
	c->handles++;
	if (uv_write(&w->req, (uv_stream_t *)c->relay, &w->buf, 1, relay_write_cb)) {
		c->handles--;
		free(w->buf.base);
		free(w);
		conn_close(c, "raft relay: write failed");
		return;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)c->relay) > RELAY_HIGH) {
		c->tcp_paused = true;
		uv_read_stop(c->stream);
	}
}

static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	(void)suggested;
	b->base = xmalloc(65536);
	b->len = 65536;
}

/* Bytes libraft wrote, to the peer through TLS. */
static void relay_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	if (nread < 0) {
		free(b->base);
		/* libraft closed its end: end TLS cleanly, so the peer can tell this from a death */
		if (nread != UV_EOF)
			conn_close(c, uv_strerror((int)nread));
		else if (c->state == ST_RELAY)
			conn_close_after_write(c);
		else
			conn_close(c, NULL);
		return;
	}
	if (nread > 0) {
		write_owned(c, b->base, (size_t)nread); /* frees b->base */
		if (!c->closing && c->stream && uv_stream_get_write_queue_size(c->stream) > RELAY_HIGH) {
			c->relay_paused = true;
			uv_read_stop(s);
		}
	} else
		free(b->base);
}

/* A socket pair: one end relayed by the conn, the other a uv stream for libraft (allocated
 * with raft_malloc: libraft frees what it closes). NULL on failure (the conn closed). */
static uv_stream_t *relay_start(struct conn *c)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv)) {
		conn_close(c, "raft relay: socketpair failed");
		return NULL;
	}
	uv_loop_t *loop = c->stream->loop;
	uv_pipe_t *mine = xmalloc(sizeof *mine), *theirs = raft_malloc(sizeof *theirs);
	uv_pipe_init(loop, mine, 0);
	uv_pipe_init(loop, theirs, 0);
	uv_pipe_open(mine, sv[0]);
	uv_pipe_open(theirs, sv[1]);
	mine->data = c;
	c->relay = mine;
	c->handles++;
	c->state = ST_RELAY;
	uv_read_start((uv_stream_t *)mine, relay_alloc, relay_read_cb);
	relay_in(c); /* bytes that came with the preamble */
	return (uv_stream_t *)theirs;
}

/* Server: the preamble (after TLS). */
static void server_preamble(struct conn *c)
{
	const uint8_t *p = c->rbuf.data;
	if (c->rbuf.len < 4)
		return;
	if (!memcmp(p, "GET ", 4) || !memcmp(p, "HEAD", 4) || !memcmp(p, "POST", 4)) {
		if (c->who.kind == PEER_ANON) { /* health, metrics and the console need a certificate */
			conn_close(c, "http without a certificate");
			return;
		}
		c->state = ST_HTTP;
		return;
	}
	if (c->rbuf.len < AUTH_PRE_LEN)
		return;
	size_t elen;
	if (auth_preamble_parse(p, &c->kind, &elen)) {
		conn_close(c, "malformed preamble");
		return;
	}
	if (c->rbuf.len < AUTH_PRE_LEN + elen)
		return;
	if (c->rbuf.len > AUTH_PRE_LEN + elen) {
		conn_close(c, "bytes after the preamble");
		return;
	}
	uint64_t claimed = auth_node_get(p + AUTH_PRE_LEN, elen);
	if (c->kind == AUTH_KIND_RAFT && c->who.kind != PEER_NODE) {
		log_warn(NULL, NULL, "refused a raft connection from %s: no node certificate", c->peer);
		conn_close(c, "raft needs a node certificate");
		return;
	}
	if (claimed && (c->who.kind != PEER_NODE || claimed != c->who.node_id)) {
		log_warn(NULL, NULL, "refused a connection from %s: it claims node %016llx, its certificate says otherwise",
			 c->peer, (unsigned long long)claimed);
		conn_close(c, "claimed node id is not the certificate's");
		return;
	}
	uint8_t *extra = xmalloc(elen + 1);
	memcpy(extra, p + AUTH_PRE_LEN, elen);
	extra[elen] = 0;
	c->rbuf.len = 0;
	c->extra = extra;
	c->extra_len = elen;
	if (c->ops->admit && !c->ops->admit(c)) {
		log_warn(NULL, NULL, "refused a connection from %s: node %016llx is not a member (removed)", c->peer,
			 (unsigned long long)c->who.node_id);
		conn_close(c, "certificate of a node that is not a member");
		return;
	}
	uv_timer_stop(&c->timer);
	uint8_t ack = AUTH_ACK;
	conn_write_raw(c, &ack, 1);
	if (c->kind == AUTH_KIND_RAFT) {
		uv_stream_t *s = relay_start(c);
		if (s && c->ops->on_raft)
			c->ops->on_raft(c, s, extra, elen);
		return;
	}
	c->state = ST_FRAMES;
	if (c->ops->on_ready)
		c->ops->on_ready(c);
}

static void http_parse(struct conn *c)
{
	struct httpreq rq;
	char err[ERR_LEN];
	int k = httpreq_parse((const char *)c->rbuf.data, c->rbuf.len, &rq, err);
	if (k == 0)
		return;
	if (k < 0) {
		conn_close(c, err);
		return;
	}
	c->state = ST_DONE;
	uv_timer_stop(&c->timer);
	if (c->ops->on_http)
		c->ops->on_http(c, &rq); /* rq points into rbuf, which stays until we return */
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

static void client_ack(struct conn *c)
{
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

/* TLS is up: who the peer is, then the preamble (client) or waiting for it (server). */
static void tls_up(struct conn *c)
{
	char err[ERR_LEN];
	if (c->client) {
		if (c->pin[0]) {
			if (tls_pin_check(&c->ts, c->pin, err)) {
				conn_close(c, err);
				return;
			}
		} else {
			struct peer p;
			if (tls_peer(&c->ts, c->tls->cluster_hex, &p, err) || p.kind != PEER_NODE) {
				conn_close(c, p.kind == PEER_NODE ? err : "the server is not a node of this cluster");
				return;
			}
		}
		uint8_t pre[AUTH_PRE_LEN];
		auth_preamble(c->kind, c->extra_len, pre);
		char *m = xmalloc(AUTH_PRE_LEN + c->extra_len);
		memcpy(m, pre, AUTH_PRE_LEN);
		if (c->extra_len)
			memcpy(m + AUTH_PRE_LEN, c->extra, c->extra_len);
		c->state = ST_C_ACK;
		write_owned(c, m, AUTH_PRE_LEN + c->extra_len);
		return;
	}
	if (tls_peer(&c->ts, c->tls->cluster_hex, &c->who, err)) {
		log_warn(NULL, NULL, "refused a connection from %s: %s", c->peer, err);
		conn_close(c, err);
		return;
	}
	c->state = ST_S_PRE;
}

static void dispatch(struct conn *c)
{
	switch (c->state) {
	case ST_S_PRE: server_preamble(c); break;
	case ST_C_ACK: client_ack(c); break;
	case ST_FRAMES: frames(c); break;
	case ST_HTTP: http_parse(c); break;
	case ST_RELAY: relay_in(c); break;
	default:
		c->rbuf.len = 0; /* draining after close */
		break;
	}
	if (c->state == ST_HTTP && !c->closing)
		http_parse(c);
}

/* Ciphertext from the socket: the handshake, then plaintext into rbuf. */
static void tls_in(struct conn *c, const char *p, size_t n)
{
	char err[ERR_LEN];
	tls_feed(&c->ts, p, n);
	if (c->state == ST_TLS) {
		int r = tls_handshake(&c->ts, err);
		if (r < 0) {
			/* no alert, nothing at all, for a peer that fails the handshake; a refused
			 * certificate is worth a line (a plain client or a scanner is not) */
			if (c->client || strstr(err, "certificate"))
				log_warn(NULL, NULL, "%s %s: %s", c->client ? "connection to" : "refused a connection from", c->peer, err);
			conn_close(c, err);
			return;
		}
		tls_flush(c);
		if (r == 0 || c->closing)
			return;
		tls_up(c);
		if (c->closing)
			return;
	}
	int got = tls_read(&c->ts, &c->rbuf, err);
	tls_flush(c); /* TLS may answer (key updates, alerts) */
	if (got < 0) {
		c->lost = c->state == ST_RELAY && err[0]; /* a broken session, not a close_notify */
		if (c->state == ST_C_ACK)
			conn_close(c, err[0] ? err : "connection closed before the ack: the node refused this certificate");
		else
			conn_close(c, err[0] ? err : (c->why[0] ? c->why : NULL));
		return;
	}
	if (got > 0 || c->rbuf.len)
		dispatch(c);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	if (nread < 0) {
		if (c->tcp)
			free(b->base);
		/* TCP ended while relaying and TLS did not end first: the peer died or the
		 * connection broke. A close_notify that came with the last data shows only on
		 * another read of the session. */
		if (c->state == ST_RELAY && !c->closing) {
			char err[ERR_LEN];
			c->lost = !(tls_read(&c->ts, &c->rbuf, err) < 0 && !err[0]);
		}
		if (c->state == ST_TLS || c->state == ST_C_ACK)
			conn_close(c, c->client ? "connection closed during the TLS handshake: the node refused this certificate"
						: "connection closed during the handshake");
		else
			conn_close(c, nread == UV_EOF ? (c->why[0] ? c->why : NULL) : uv_strerror((int)nread));
		return;
	}
	if (c->tcp) {
		if (nread > 0 && !c->closing)
			tls_in(c, b->base, (size_t)nread);
		free(b->base);
		return;
	}
	c->rbuf.len += (size_t)nread;
	dispatch(c);
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

struct conn *conn_accept(uv_stream_t *server, bool tcp, const struct tlsctx *tls, const struct conn_ops *ops, void *data)
{
	struct conn *c = conn_new(server->loop, ops, data);
	c->tcp = tcp;
	c->tls = tls;
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
		char err[ERR_LEN];
		uv_tcp_nodelay((uv_tcp_t *)c->stream, 1);
		if (!uv_tcp_getpeername((uv_tcp_t *)c->stream, (struct sockaddr *)&ss, &len) && ss.ss_family == AF_INET) {
			struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
			char ip[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
			snprintf(c->peer, sizeof c->peer, "%s:%u", ip, ntohs(sa->sin_port));
		}
		if (!tls || tls_sess_init(&c->ts, tls->srv, true, err)) {
			conn_close(c, "no TLS credentials");
			return NULL;
		}
		c->state = ST_TLS;
		uv_timer_start(&c->timer, timeout_cb, HANDSHAKE_TIMEOUT_MS, 0);
	} else {
		snprintf(c->peer, sizeof c->peer, "local");
		c->state = ST_FRAMES;
	}
	uv_read_start(c->stream, alloc_cb, read_cb);
	return c;
}

struct conn *conn_internal(uv_loop_t *loop, const struct peer *who, conn_sink_fn sink, void *sink_arg,
			   const struct conn_ops *ops, void *data)
{
	struct conn *c = conn_new(loop, ops, data);
	c->who = *who;
	c->sink = sink;
	c->sink_arg = sink_arg;
	c->state = ST_FRAMES;
	snprintf(c->peer, sizeof c->peer, "console");
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
	c->state = ST_TLS;
	uv_read_start(c->stream, alloc_cb, read_cb);
	char err[ERR_LEN];
	if (tls_handshake(&c->ts, err) < 0) {
		conn_close(c, err);
		return;
	}
	tls_flush(c); /* the ClientHello */
}

static struct conn *connect_with(uv_loop_t *loop, const char *addr, void *ctx, enum auth_kind kind, const void *extra,
				 size_t extra_len, const struct conn_ops *ops, void *data)
{
	struct conn *c = conn_new(loop, ops, data);
	c->tcp = true;
	c->client = true;
	c->kind = kind;
	snprintf(c->peer, sizeof c->peer, "%s", addr);
	if (extra_len > AUTH_EXTRA_MAX)
		extra_len = AUTH_EXTRA_MAX;
	c->extra = xmalloc(extra_len + 1);
	if (extra_len)
		memcpy(c->extra, extra, extra_len);
	c->extra_len = extra_len;
	uv_tcp_t *t = raft_malloc(sizeof *t);
	uv_tcp_init(loop, t);
	c->stream = (uv_stream_t *)t;
	c->stream->data = c;
	c->handles++;
	c->state = ST_C_CONNECT;
	uv_timer_start(&c->timer, timeout_cb, HANDSHAKE_TIMEOUT_MS, 0);
	struct sockaddr_in sa;
	char err[ERR_LEN];
	if (!ctx || tls_sess_init(&c->ts, ctx, false, err)) {
		conn_close(c, "no TLS credentials");
		return c;
	}
	uv_connect_t *req = xmalloc(sizeof *req);
	req->data = c;
	if (parse_ipport(addr, &sa, err) || uv_tcp_connect(req, t, (struct sockaddr *)&sa, connect_cb)) {
		free(req);
		conn_close(c, "bad address");
	}
	return c;
}

struct conn *conn_connect(uv_loop_t *loop, const char *addr, enum auth_kind kind, const struct tlsctx *tls,
			  const void *extra, size_t extra_len, const struct conn_ops *ops, void *data)
{
	struct conn *c = connect_with(loop, addr, tls ? tls->cli : NULL, kind, extra, extra_len, ops, data);
	c->tls = tls;
	return c;
}

struct conn *conn_connect_pinned(uv_loop_t *loop, const char *addr, void *join_ctx, const char *pin,
				 const struct conn_ops *ops, void *data)
{
	struct conn *c = connect_with(loop, addr, join_ctx, AUTH_KIND_RPC, NULL, 0, ops, data);
	snprintf(c->pin, sizeof c->pin, "%s", pin);
	return c;
}

uint64_t conn_peer_node(const struct conn *c)
{
	return c->tcp && !c->client && c->who.kind == PEER_NODE ? c->who.node_id : 0;
}

bool conn_in_handshake(const struct conn *c)
{
	return !c->closing && !c->client && (c->state == ST_TLS || c->state == ST_S_PRE || c->state == ST_HTTP);
}

void conn_peer(const struct conn *c, struct peer *out)
{
	memset(out, 0, sizeof *out);
	if (c->sink)
		*out = c->who;
	else if (!c->tcp) {
		out->kind = PEER_LOCAL;
		out->role = PROLE_ADMIN;
	} else if (!c->client)
		*out = c->who;
}

void conn_on_end(struct conn *c, void (*cb)(void *arg, bool lost), void *arg)
{
	if (c->closing) {
		if (cb)
			cb(arg, c->lost);
		return;
	}
	c->on_end = cb;
	c->end_arg = arg;
}

static const struct conn_ops relay_ops = {0};

uv_stream_t *conn_detach(struct conn *c)
{
	c->ops = &relay_ops;
	c->data = NULL;
	c->detached = true;
	return relay_start(c);
}

size_t conn_backlog(const struct conn *c)
{
	return c->stream && !c->closing ? uv_stream_get_write_queue_size(c->stream) : 0;
}
