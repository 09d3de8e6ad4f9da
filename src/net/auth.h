/* The node-port handshake, as pure functions over byte buffers (the I/O lives in
 * handshake.c). Every connection is authenticated before libraft or the RPC layer sees
 * a byte; both sides prove knowledge of the cluster secret:
 *
 *   client -> server  HELLO  "ORCH" ver kind 0 0 | cluster id (8) | client nonce (32)   48 B
 *   server -> client  CHAL   server nonce (32) | HMAC(secret, "srv" HELLO nonce_s)      64 B
 *   client -> server  PROOF  HMAC(secret, "cli" HELLO nonce_s) (32) | extra (len 2 + bytes)
 *   server -> client  ACK    'K'                                                          1 B
 *
 * The client sends nothing after PROOF until ACK, so the server never reads bytes that
 * belong to the next layer (important when the stream is handed to libraft).
 * A server that does not know the cluster id closes the connection after HELLO. */
#ifndef ORCH_AUTH_H
#define ORCH_AUTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "net/token.h"

#define AUTH_HELLO_LEN 48
#define AUTH_CHAL_LEN 64
#define AUTH_PROOF_LEN 32
#define AUTH_EXTRA_MAX 512
#define AUTH_ACK 'K'

enum auth_kind { AUTH_KIND_RAFT = 1, AUTH_KIND_RPC = 2 };

/* The extra a node sends on its RPC connections: its id, 8 bytes big endian (raft
 * connections start with the same 8 bytes). A leader binds the entries a connection
 * forwards to that id. The claim is only as strong as the shared cluster secret: any
 * member, or anyone holding the join token, can claim any id; per-node certificates
 * (issue 11) will make it a proof. */
#define AUTH_NODE_LEN 8
void auth_node_put(uint64_t id, uint8_t out[AUTH_NODE_LEN]);
/* The node id an extra starts with (len >= 8), else 0. */
uint64_t auth_node_get(const uint8_t *extra, size_t len);

void auth_hello(const struct token *t, enum auth_kind kind, uint8_t out[AUTH_HELLO_LEN]);
/* Parses a HELLO: kind and cluster id; -1 if it is not one. */
int auth_hello_parse(const uint8_t in[AUTH_HELLO_LEN], enum auth_kind *kind, uint8_t cluster_id[CLUSTER_ID_LEN]);
void auth_challenge(const struct token *t, const uint8_t hello[AUTH_HELLO_LEN], uint8_t out[AUTH_CHAL_LEN]);
bool auth_challenge_ok(const struct token *t, const uint8_t hello[AUTH_HELLO_LEN], const uint8_t chal[AUTH_CHAL_LEN]);
void auth_proof(const struct token *t, const uint8_t hello[AUTH_HELLO_LEN], const uint8_t chal[AUTH_CHAL_LEN], uint8_t out[AUTH_PROOF_LEN]);
bool auth_proof_ok(const struct token *t, const uint8_t hello[AUTH_HELLO_LEN], const uint8_t chal[AUTH_CHAL_LEN], const uint8_t proof[AUTH_PROOF_LEN]);

#endif
