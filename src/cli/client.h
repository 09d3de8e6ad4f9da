/* The CLI side of the RPC protocol: blocking sockets, one request at a time. Used by every
 * command (local Unix socket of the data directory) and by `orch join` (node port, with
 * the authenticated handshake). */
#ifndef ORCH_CLIENT_H
#define ORCH_CLIENT_H
#include <stdint.h>
#include "codec/mp.h"
#include "net/token.h"

struct client {
	int fd;
	uint64_t next_id;
	char peer[128];
};

int client_open_local(struct client *c, const char *data_dir, char *err);
int client_open_tcp(struct client *c, const char *addr, const struct token *tok, int timeout_ms, char *err);
void client_close(struct client *c);
uint64_t client_id(struct client *c);
/* Sends a request (a packed map that contains "op" and "id") and waits for the reply with
 * the same id. Returns the reply's rc (err holds its message) or a transport error. */
int client_call(struct client *c, const struct mpw *req, struct mpr *resp, int timeout_ms, char *err);
/* The same for {op, id, ...fields}: `fields` is a packed map body of nfields pairs. */
int client_call_op(struct client *c, const char *op, const struct mpw *fields, uint32_t nfields, struct mpr *resp,
		   int timeout_ms, char *err);
/* Reads the next frame (for streams). */
int client_read(struct client *c, struct mpr *resp, int timeout_ms, char *err);
int client_send(struct client *c, const struct mpw *req, char *err);

/* Opens the local socket, sends {op, id, ...fields} and returns the reply, retrying while
 * the cluster has no leader (up to retry_ms). `fields` is a packed map body: n pairs. */
int cli_call(const char *data_dir, const char *op, const struct mpw *fields, uint32_t nfields, struct mpr *resp,
	     int retry_ms, char *err);

#endif
