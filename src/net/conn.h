/* One connection on the node port or the local Unix socket, on the libuv loop.
 *
 * The node port speaks only TLS 1.3 (net/tls.h), both sides verified against the cluster
 * CA; who the peer is comes from its certificate (conn_peer). Inside TLS the client's
 * preamble (net/auth.h) says what follows: an RPC connection carries frames (a 4-byte
 * big-endian length and one msgpack map); a raft connection is relayed to libraft through
 * a socket pair (libraft reads and writes a plain uv stream, the conn moves the bytes
 * through TLS both ways, pausing a side whose writes pile up); "GET "/"HEAD" instead of a
 * preamble is HTTP (metrics, health) inside TLS. Unix-socket connections are local (file
 * permissions guard them) and start directly with frames.
 *
 * Lifetime: conn_close() is idempotent; on_close is called once; the memory is freed after
 * libuv has closed the handles, never inside a callback of the conn itself. */
#ifndef ORCH_CONN_H
#define ORCH_CONN_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "codec/mp.h"
#include "net/auth.h"
#include "net/frame.h"
#include "net/peer.h"
#include "net/tls.h"
#include "pki/pki.h"
#include "util/mem.h"

/* A node-port connection whose queued, unsent output is over this when another write
 * comes is closed: a peer that sends requests and never reads the replies would otherwise
 * make the node queue without bound. One write may still be larger (a snapshot for a
 * follower). The local socket (root's own CLI) is not cut. */
#define CONN_WRITE_QUEUE_MAX (16u << 20)

struct conn;
struct httpreq;
/* An internal conn's output: one reply frame's payload (packed msgpack). */
typedef void (*conn_sink_fn)(struct conn *c, const void *p, size_t n);
struct conn_ops {
	void (*on_ready)(struct conn *c);                               /* handshake done */
	void (*on_frame)(struct conn *c, const msgpack_object *msg);     /* one decoded frame */
	/* server side, kind raft: the stream now belongs to the callee (conn is gone after) */
	void (*on_raft)(struct conn *c, uv_stream_t *stream, const uint8_t *extra, size_t extra_len);
	/* an HTTP request inside TLS (GET, HEAD or POST): the conn writes nothing more on its
	 * own; the callee answers with conn_write_raw and ends with conn_close_after_write */
	void (*on_http)(struct conn *c, const struct httpreq *rq);
	void (*on_close)(struct conn *c, const char *why); /* why: NULL on a clean close */
	/* server side, once the peer's certificate and preamble are known: false refuses it
	 * (a removed node); NULL admits every certificate of the cluster */
	bool (*admit)(struct conn *c);
	/* server side: a number every reply sent on this conn carries as "ri" (0: none); the
	 * leader's commit index for member nodes (node/rywait.h) */
	uint64_t (*reply_stamp)(struct conn *c);
};

struct conn {
	void *data; /* owner's */
	const struct conn_ops *ops;
	char peer[64];
	uint64_t id; /* for tracing */
	/* private */
	uv_stream_t *stream;
	uv_timer_t timer;
	int state;
	bool tcp, client, closing, detached;
	int handles; /* open handles left to close before freeing */
	const struct tlsctx *tls;
	struct tls_sess ts;
	char pin[PKI_FP_HEX]; /* client of a join: the CA fingerprint the token pins */
	struct peer who;      /* server side: from the certificate */
	enum auth_kind kind;
	uint8_t *extra;
	size_t extra_len;
	struct buf rbuf;
	uv_pipe_t *relay; /* raft: our end of the socket pair */
	bool relay_paused, tcp_paused;
	bool lost; /* the peer's side ended without TLS's close_notify */
	void (*on_end)(void *arg, bool lost);
	void *end_arg;
	char why[256];
	conn_sink_fn sink; /* an internal conn (conn_internal) */
	void *sink_arg;
};

/* Server side: accept one pending connection from `server`. tls == NULL for Unix sockets. */
struct conn *conn_accept(uv_stream_t *server, bool tcp, const struct tlsctx *tls, const struct conn_ops *ops, void *data);
/* Client side: connect to "IP:PORT" with this node's certificate; on_ready or on_close
 * follows. */
struct conn *conn_connect(uv_loop_t *loop, const char *addr, enum auth_kind kind, const struct tlsctx *tls,
			  const void *extra, size_t extra_len, const struct conn_ops *ops, void *data);
/* Client side, no certificate (a join): join_ctx from tls_join_ctx; the server must prove
 * the CA of fingerprint pin. */
struct conn *conn_connect_pinned(uv_loop_t *loop, const char *addr, void *join_ctx, const char *pin,
				 const struct conn_ops *ops, void *data);
/* An internal conn: requests the node runs for one of its own parts on someone's behalf
 * (the console, console/console.h), dispatched as if they came on the node port from
 * `who`, with every check that implies. What is sent on it goes to sink (sink_arg is the
 * caller's); nothing is read from it. Close it with conn_close. */
struct conn *conn_internal(uv_loop_t *loop, const struct peer *who, conn_sink_fn sink, void *sink_arg,
			   const struct conn_ops *ops, void *data);
/* Sends one frame (payload = packed msgpack). Returns 0 or -1 if the conn is closing. */
int conn_send(struct conn *c, const void *p, size_t n);
int conn_send_mpw(struct conn *c, struct mpw *w); /* sends and resets w */
int conn_write_raw(struct conn *c, const void *p, size_t n);
/* Client side, after on_ready: a stream for libraft, relayed through the conn's TLS; the
 * conn's callbacks are not called any more (it closes when libraft closes the stream). */
uv_stream_t *conn_detach(struct conn *c);
void conn_close(struct conn *c, const char *why);
/* A raft relay's end: cb(arg, lost) once, when the conn closes (or at once if it has);
 * lost = the peer's side ended without TLS's close_notify, as when its process died (the
 * kernel closes its sockets) or the connection broke; false when either side closed it
 * cleanly (a relay whose libraft end closes sends close_notify). NULL cb: no call. */
void conn_on_end(struct conn *c, void (*cb)(void *arg, bool lost), void *arg);
/* Bytes queued and not yet sent: a streaming producer (orch exec's output) pauses above a
 * bound instead of reaching CONN_WRITE_QUEUE_MAX. */
size_t conn_backlog(const struct conn *c);
/* Closes after pending writes are flushed (uv_shutdown). */
void conn_close_after_write(struct conn *c);

/* Server side: the node id of the peer's certificate, 0 for users, anonymous and local
 * peers. */
uint64_t conn_peer_node(const struct conn *c);
/* Server side: the peer has not finished its handshake or its HTTP request yet (daemon.c
 * caps how many may be). */
bool conn_in_handshake(const struct conn *c);
/* Who the peer is (net/peer.h); valid once on_ready was called (or from accept, locally). */
void conn_peer(const struct conn *c, struct peer *out);

int parse_ipport(const char *s, struct sockaddr_in *sa, char *err);

#endif
