/* Join tokens: "ORCH1-<cluster id, 16 hex>-<secret, 64 hex>". The secret authenticates every
 * connection on the node port; the cluster id lets a node refuse a token of another cluster. */
#ifndef ORCH_TOKEN_H
#define ORCH_TOKEN_H
#include <stdint.h>

#define CLUSTER_ID_LEN 8
#define SECRET_LEN 32
#define TOKEN_STR_LEN (6 + 16 + 1 + 64)

struct token {
	uint8_t cluster_id[CLUSTER_ID_LEN];
	uint8_t secret[SECRET_LEN];
};

void token_generate(struct token *t);
void token_format(const struct token *t, char out[TOKEN_STR_LEN + 1]);
int token_parse(const char *s, struct token *t, char *err);
void token_cluster_hex(const struct token *t, char out[17]);
/* sha256 of the secret, hex: what the replicated state keeps (never the secret). */
void token_secret_hash(const struct token *t, char out[65]);

#endif
