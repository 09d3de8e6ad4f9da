/* TLS 1.3 on the node port, both sides verified against the cluster CA bundle (pki/pki.h).
 *
 * A node's credentials live in <data-dir>/tls/: node.key (0600), node.crt, ca.crt (the
 * bundle). tls_load builds two contexts from them: the server one presents the node
 * certificate and asks for a client certificate (one that does not verify fails the
 * handshake; none at all leaves the peer anonymous, which may only join), the client one
 * presents it and verifies the server's. A joiner has no certificate yet: tls_join_ctx
 * accepts any chain during the handshake and tls_pin_check then requires that the chain
 * the server sent holds the CA whose fingerprint the join token pins and that the server's
 * certificate verifies against it.
 *
 * The engine (struct tls_sess) works over memory buffers, for libuv connections: bytes
 * read from the socket go in with tls_feed, plaintext comes out of tls_read, plaintext
 * goes in with tls_write and the ciphertext to send comes out of tls_take. The blocking
 * variant (tls_fd_*) runs over a connected socket, for the CLI's client. */
#ifndef ORCH_TLS_H
#define ORCH_TLS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "net/peer.h"
#include "util/mem.h"

#define TLS_DIR "tls"

struct tlsctx {
	void *srv, *cli; /* SSL_CTX * */
	char cluster_hex[17];
	uint64_t node_id; /* this node's (from its certificate), 0 for a user */
	int refs;
	/* the contexts a tls_reload replaced: kept one reload longer, because a blob fetch on
	 * a worker thread may have just read the old pointer (agent/fetch.c) */
	void *old_srv, *old_cli;
};

/* Loads dir/{node.key,node.crt,ca.crt}. E_NOTFOUND when dir has no certificate. */
int tls_load(struct tlsctx *t, const char *dir, char *err);
/* From PEM text (a user's client credentials, tests). */
int tls_load_pem(struct tlsctx *t, const char *key, const char *cert, const char *bundle, char *err);
void tls_free(struct tlsctx *t);
/* Loads dir again (a renewed certificate): new connections use it, open ones keep theirs
 * (each session holds its context). The node and cluster must stay the same. */
int tls_reload(struct tlsctx *t, const char *dir, char *err);
/* A client context with no certificate that verifies nothing by itself (tls_pin_check). */
void *tls_join_ctx(char *err);
void tls_ctx_free(void *ctx);
/* <data-dir>/tls */
void tls_dir(const char *data_dir, char *out, size_t n);

struct tls_sess {
	void *ssl, *rb, *wb;
	bool server, done;
};

int tls_sess_init(struct tls_sess *s, void *ctx, bool server, char *err);
void tls_sess_free(struct tls_sess *s);
void tls_feed(struct tls_sess *s, const void *p, size_t n);
/* Advances the handshake: 1 done, 0 needs more bytes, E_AUTH with err on failure. */
int tls_handshake(struct tls_sess *s, char *err);
/* Plaintext appended to out: > 0 bytes, 0 none yet, -1 the peer closed or broke the
 * session (err says how when it is not a clean close). */
int tls_read(struct tls_sess *s, struct buf *out, char *err);
int tls_write(struct tls_sess *s, const void *p, size_t n);
/* The ciphertext ready to send (malloc'd, caller frees), NULL when none. */
char *tls_take(struct tls_sess *s, size_t *n);
/* Queues TLS's close_notify (then tls_take it). */
void tls_close_notify(struct tls_sess *s);
/* Who the verified peer is (pki_peer_of); PEER_ANON when it sent no certificate. E_AUTH
 * when its certificate is of another cluster or not one orch issues. */
int tls_peer(struct tls_sess *s, const char *cluster_hex, struct peer *p, char *err);

/* Blocking: a TLS session over the connected socket fd (client side), handshake done. */
int tls_fd_connect(struct tls_sess *s, void *ctx, int fd, char *err);
/* The server's chain must hold the CA of fingerprint pin and verify against it. */
int tls_pin_check(struct tls_sess *s, const char *pin, char *err);
/* Blocking I/O on such a session: bytes (> 0), 0 on close, -1 on error. */
long tls_fd_read(struct tls_sess *s, void *p, size_t n);
long tls_fd_write(struct tls_sess *s, const void *p, size_t n);
/* Whether plaintext is buffered inside the session (poll() would not show it). */
bool tls_fd_pending(struct tls_sess *s);

#endif
