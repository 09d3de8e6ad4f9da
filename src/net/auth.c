#include "net/auth.h"
#include "util/mem.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#define AUTH_VERSION 1

void auth_node_put(uint64_t id, uint8_t out[AUTH_NODE_LEN])
{
	for (int i = 0; i < AUTH_NODE_LEN; i++)
		out[i] = (uint8_t)(id >> (56 - 8 * i));
}

uint64_t auth_node_get(const uint8_t *extra, size_t len)
{
	uint64_t id = 0;
	if (!extra || len < AUTH_NODE_LEN)
		return 0;
	for (int i = 0; i < AUTH_NODE_LEN; i++)
		id = id << 8 | extra[i];
	return id;
}

void auth_hello(const struct token *t, enum auth_kind kind, uint8_t out[AUTH_HELLO_LEN])
{
	memcpy(out, "ORCH", 4);
	out[4] = AUTH_VERSION;
	out[5] = (uint8_t)kind;
	out[6] = out[7] = 0;
	memcpy(out + 8, t->cluster_id, CLUSTER_ID_LEN);
	random_bytes(out + 16, 32);
}

int auth_hello_parse(const uint8_t in[AUTH_HELLO_LEN], enum auth_kind *kind, uint8_t cluster_id[CLUSTER_ID_LEN])
{
	if (memcmp(in, "ORCH", 4) || in[4] != AUTH_VERSION || (in[5] != AUTH_KIND_RAFT && in[5] != AUTH_KIND_RPC))
		return -1;
	*kind = (enum auth_kind)in[5];
	memcpy(cluster_id, in + 8, CLUSTER_ID_LEN);
	return 0;
}

static void mac(const struct token *t, const char *label, const uint8_t hello[AUTH_HELLO_LEN], const uint8_t nonce_s[32], uint8_t out[32])
{
	uint8_t msg[3 + AUTH_HELLO_LEN + 32];
	memcpy(msg, label, 3);
	memcpy(msg + 3, hello, AUTH_HELLO_LEN);
	memcpy(msg + 3 + AUTH_HELLO_LEN, nonce_s, 32);
	unsigned int len = 32;
	HMAC(EVP_sha256(), t->secret, SECRET_LEN, msg, sizeof msg, out, &len);
}

void auth_challenge(const struct token *t, const uint8_t hello[AUTH_HELLO_LEN], uint8_t out[AUTH_CHAL_LEN])
{
	random_bytes(out, 32);
	mac(t, "srv", hello, out, out + 32);
}

bool auth_challenge_ok(const struct token *t, const uint8_t hello[AUTH_HELLO_LEN], const uint8_t chal[AUTH_CHAL_LEN])
{
	uint8_t want[32];
	mac(t, "srv", hello, chal, want);
	return CRYPTO_memcmp(want, chal + 32, 32) == 0;
}

void auth_proof(const struct token *t, const uint8_t hello[AUTH_HELLO_LEN], const uint8_t chal[AUTH_CHAL_LEN], uint8_t out[AUTH_PROOF_LEN])
{
	mac(t, "cli", hello, chal, out);
}

bool auth_proof_ok(const struct token *t, const uint8_t hello[AUTH_HELLO_LEN], const uint8_t chal[AUTH_CHAL_LEN], const uint8_t proof[AUTH_PROOF_LEN])
{
	uint8_t want[32];
	mac(t, "cli", hello, chal, want);
	return CRYPTO_memcmp(want, proof, 32) == 0;
}
