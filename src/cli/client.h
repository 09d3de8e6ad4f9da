/* The CLI side of the RPC protocol: blocking sockets, one request at a time. Used by every
 * command (local Unix socket of the data directory), by `orch join` (node port, TLS with
 * no certificate, the server's CA checked against the token's pin) and by nodes fetching
 * blobs from peers (node port, TLS with the node's certificate). */
#ifndef ORCH_CLIENT_H
#define ORCH_CLIENT_H
#include <stdbool.h>
#include <stdint.h>
#include "codec/mp.h"
#include "net/proto.h"
#include "net/tls.h"
#include "net/token.h"

struct client {
	int fd;
	struct tls_sess *ts; /* node port */
	uint64_t next_id;
	char peer[128];
};

/* Where the CLI's requests go: the local socket of data_dir (file permissions: root), or,
 * when host is set, any node's port over mutual TLS with a user's certificate bundle
 * (orch-user(1): its key, certificate and the cluster CA). */
struct client_target {
	const char *data_dir;
	const char *host;   /* "IP:PORT" */
	const char *bundle; /* a file */
};

/* Opens the target's connection: the local socket, or the remote node with TLS. */
int client_open(struct client *c, const struct client_target *t, int timeout_ms, char *err);

int client_open_local(struct client *c, const char *data_dir, char *err);
/* E_AUTH when TLS or the peer's certificate fails. */
int client_open_tcp(struct client *c, const char *addr, const struct tlsctx *tls, int timeout_ms, char *err);
/* With no certificate, for a join: the server's chain must hold the CA pin names. */
int client_open_join(struct client *c, const char *addr, const char *pin, int timeout_ms, char *err);
void client_close(struct client *c);
uint64_t client_id(struct client *c);
/* Sends a request (a packed map that contains "op" and "id") and waits for the reply with
 * the same id. Returns the reply's rc (err holds its message) or a transport error. */
int client_call(struct client *c, const struct mpw *req, struct mpr *resp, int timeout_ms, char *err);
/* Sends the request of op (args: its struct req_<op>, NULL for none) with a new id. */
int client_send_req(struct client *c, enum op op, const void *args, char *err);
/* The same, then waits for its reply (as client_call). */
int client_call_req(struct client *c, enum op op, const void *args, struct mpr *resp, int timeout_ms, char *err);
/* Reads the next frame (for streams). */
int client_read(struct client *c, struct mpr *resp, int timeout_ms, char *err);
int client_send(struct client *c, const struct mpw *req, char *err);

/* Opens the target, sends the request of op and returns the reply (waiting up to
 * timeout_ms for it, < 0: for good), retrying while the cluster has no leader (up to
 * retry_ms). */
int cli_call(const struct client_target *t, enum op op, const void *args, struct mpr *resp, int retry_ms, int timeout_ms,
	     char *err);

/* For requests answered late or by a stream of frames: opens the target and sends the
 * request of op; then read with cli_stream_next, and client_close. */
int cli_request(struct client *c, const struct client_target *t, enum op op, const void *args, char *err);
/* The next frame answering the request sent by cli_request: its rc (err holds the
 * message), *more = whether more frames follow. timeout_ms < 0 waits for good. */
int cli_stream_next(struct client *c, struct mpr *frame, bool *more, int timeout_ms, char *err);

#endif
