/* One connection on the node port or the local Unix socket, on the libuv loop.
 *
 * Accepted TCP connections are sniffed: "ORCH" starts the authenticated handshake (auth.h),
 * "GET "/"HEAD" is plain HTTP (metrics, health), anything else is closed. After the
 * handshake a raft connection is handed to libraft (the conn lets go of the stream); an RPC
 * connection carries frames: a 4-byte big-endian length and one msgpack map. Unix-socket
 * connections are local (file permissions guard them) and start directly with frames.
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
#include "util/mem.h"

/* A connection whose queued, unsent output is over this when another write comes is
 * closed: a peer that sends requests and never reads the replies would otherwise make the
 * node queue without bound. One write may still be larger (a snapshot for a follower). */
#define CONN_WRITE_QUEUE_MAX (16u << 20)

struct conn;
struct conn_ops {
	void (*on_ready)(struct conn *c);                               /* handshake done */
	void (*on_frame)(struct conn *c, const msgpack_object *msg);     /* one decoded frame */
	/* server side, kind raft: the stream now belongs to the callee (conn is gone after) */
	void (*on_raft)(struct conn *c, uv_stream_t *stream, const uint8_t *extra, size_t extra_len);
	void (*on_http)(struct conn *c, const char *method, const char *path);
	void (*on_close)(struct conn *c, const char *why); /* why: NULL on a clean close */
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
	const struct token *tok;
	enum auth_kind kind;
	uint8_t hello[AUTH_HELLO_LEN], chal[AUTH_CHAL_LEN];
	uint8_t *extra;
	size_t extra_len;
	struct buf rbuf;
	char why[256];
};

/* Server side: accept one pending connection from `server`. tok == NULL for Unix sockets. */
struct conn *conn_accept(uv_stream_t *server, bool tcp, const struct token *tok, const struct conn_ops *ops, void *data);
/* Client side: connect to "IP:PORT" and authenticate; on_ready or on_close follows. */
struct conn *conn_connect(uv_loop_t *loop, const char *addr, enum auth_kind kind, const struct token *tok,
			  const void *extra, size_t extra_len, const struct conn_ops *ops, void *data);
/* Sends one frame (payload = packed msgpack). Returns 0 or -1 if the conn is closing. */
int conn_send(struct conn *c, const void *p, size_t n);
int conn_send_mpw(struct conn *c, struct mpw *w); /* sends and resets w */
int conn_write_raw(struct conn *c, const void *p, size_t n);
/* Client side, after on_ready: takes the stream (for libraft); the conn is freed. */
uv_stream_t *conn_detach(struct conn *c);
void conn_close(struct conn *c, const char *why);
/* Closes after pending writes are flushed (uv_shutdown). */
void conn_close_after_write(struct conn *c);

/* Server side, RPC connections: the node id the peer claimed in the handshake (see
 * auth_node_put), or 0 for a peer that claimed none (a remote CLI) and for local ones. */
uint64_t conn_peer_node(const struct conn *c);
/* Server side: the peer has not finished its handshake or its HTTP request yet (daemon.c
 * caps how many may be). */
bool conn_in_handshake(const struct conn *c);
/* Who the peer is (net/peer.h); valid once on_ready was called (or from accept, locally). */
void conn_peer(const struct conn *c, struct peer *out);

int parse_ipport(const char *s, struct sockaddr_in *sa, char *err);

#endif
