#include "secret/unlock.h"
#include "util/err.h"
#include "util/mem.h"
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

void unlock_generate(struct unlock_key *u)
{
	random_bytes(u->k, sizeof u->k);
}

void unlock_wipe(struct unlock_key *u)
{
	OPENSSL_cleanse(u->k, sizeof u->k);
}

void unlock_format(const struct unlock_key *u, char out[UNLOCK_STR_LEN + 1])
{
	memcpy(out, UNLOCK_PREFIX, 10);
	hex_encode(u->k, sizeof u->k, out + 10);
}

int unlock_parse(const char *text, struct unlock_key *u, char *err)
{
	while (isspace((unsigned char)*text))
		text++;
	size_t n = strlen(text);
	while (n && isspace((unsigned char)text[n - 1]))
		n--;
	char hex[2 * SEAL_KEY_LEN + 1];
	if (n != UNLOCK_STR_LEN || strncmp(text, UNLOCK_PREFIX, 10))
		return errf(err, E_INVAL, "not an unlock key (expected %s followed by 64 hex digits, as orch init --autolock "
			    "printed it)", UNLOCK_PREFIX);
	memcpy(hex, text + 10, 2 * SEAL_KEY_LEN);
	hex[2 * SEAL_KEY_LEN] = 0;
	int rc = hex_decode(hex, u->k, sizeof u->k) ? errf(err, E_INVAL, "not an unlock key (bad hex digits)") : 0;
	OPENSSL_cleanse(hex, sizeof hex);
	return rc;
}

void unlock_wrap_key(const struct unlock_key *u, uint8_t out[SEAL_KEY_LEN])
{
	unsigned len = SEAL_KEY_LEN;
	HMAC(EVP_sha256(), u->k, sizeof u->k, (const uint8_t *)"orch data key lock v1", 21, out, &len);
}
