#include "net/token.h"
#include "util/err.h"
#include "util/mem.h"
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

void token_generate(struct token *t)
{
	random_bytes(t->cluster_id, sizeof t->cluster_id);
	random_bytes(t->secret, sizeof t->secret);
}

void token_format(const struct token *t, char out[TOKEN_STR_LEN + 1])
{
	char cid[17], sec[65];
	hex_encode(t->cluster_id, sizeof t->cluster_id, cid);
	hex_encode(t->secret, sizeof t->secret, sec);
	snprintf(out, TOKEN_STR_LEN + 1, "ORCH1-%s-%s", cid, sec);
}

int token_parse(const char *s, struct token *t, char *err)
{
	char cid[17], sec[65];
	if (!s || strlen(s) != TOKEN_STR_LEN || strncmp(s, "ORCH1-", 6) || s[22] != '-')
		return errf(err, E_INVAL, "malformed token: expected ORCH1-<16 hex>-<64 hex> as printed by orch init");
	memcpy(cid, s + 6, 16);
	cid[16] = 0;
	memcpy(sec, s + 23, 64);
	sec[64] = 0;
	if (hex_decode(cid, t->cluster_id, sizeof t->cluster_id) || hex_decode(sec, t->secret, sizeof t->secret))
		return errf(err, E_INVAL, "malformed token: non-hex characters");
	return 0;
}

void token_cluster_hex(const struct token *t, char out[17])
{
	hex_encode(t->cluster_id, sizeof t->cluster_id, out);
}

void token_secret_hash(const struct token *t, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(t->secret, sizeof t->secret, md);
	hex_encode(md, sizeof md, out);
}
