/* Join tokens: "ORCH2-<cluster id, 16 hex>-<CA fingerprint, 64 hex>-<secret, 64 hex>".
 *
 * The fingerprint pins the cluster CA (sha256 of its certificate, pki/pki.h): a joiner
 * accepts a node only if the chain it shows holds that CA, so a man in the middle cannot
 * pose as the cluster. The secret admits a new node: the cluster keeps two (manager and
 * worker, each rotatable, node/tokens.h) and its state only their hashes and sealed
 * copies. A joined node never keeps its token: it proves itself with its certificate. */
#ifndef ORCH_TOKEN_H
#define ORCH_TOKEN_H
#include <stdint.h>

#define CLUSTER_ID_LEN 8
#define SECRET_LEN 32
#define TOKEN_STR_LEN (6 + 16 + 1 + 64 + 1 + 64)

struct token {
	uint8_t cluster_id[CLUSTER_ID_LEN];
	char ca_fp[65]; /* hex */
	uint8_t secret[SECRET_LEN];
};

void token_generate_secret(struct token *t);
void token_format(const struct token *t, char out[TOKEN_STR_LEN + 1]);
/* 0, or E_INVAL with a message naming the part that is wrong. */
int token_parse(const char *s, struct token *t, char *err);
void token_cluster_hex(const uint8_t cluster_id[CLUSTER_ID_LEN], char out[17]);
/* sha256 of the secret, hex: what the replicated state checks a joiner's secret against. */
void token_secret_hash(const uint8_t secret[SECRET_LEN], char out[65]);

#endif
