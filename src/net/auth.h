/* What a connection on the node port carries, said once TLS (net/tls.h) is up: the client
 * sends a preamble, the server answers one byte before either side sends anything else
 * (so the server never reads bytes that belong to the next layer, which matters when the
 * stream is handed to libraft):
 *
 *   client -> server  "ORCH" ver kind | extra length (2, big endian) | extra
 *   server -> client  'K'
 *
 * Who the client is comes from its certificate, never from the preamble: a node's extra
 * starts with its id (auth_node_put) and the server refuses an id that is not the one its
 * certificate names. */
#ifndef ORCH_AUTH_H
#define ORCH_AUTH_H
#include <stddef.h>
#include <stdint.h>

#define AUTH_PRE_LEN 8
#define AUTH_EXTRA_MAX 512
#define AUTH_ACK 'K'
#define AUTH_VERSION 2

enum auth_kind { AUTH_KIND_RAFT = 1, AUTH_KIND_RPC = 2 };

#define AUTH_NODE_LEN 8
void auth_node_put(uint64_t id, uint8_t out[AUTH_NODE_LEN]);
/* The node id an extra starts with (len >= 8), else 0. */
uint64_t auth_node_get(const uint8_t *extra, size_t len);

void auth_preamble(enum auth_kind kind, size_t extra_len, uint8_t out[AUTH_PRE_LEN]);
/* Parses a preamble: kind and extra length; -1 if it is not one. */
int auth_preamble_parse(const uint8_t in[AUTH_PRE_LEN], enum auth_kind *kind, size_t *extra_len);

#endif
