#include "secret/seal.h"
#include "util/err.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <string.h>

static const uint8_t magic[4] = {'O', 'S', 'L', '1'};

void seal_key_id(const uint8_t key[SEAL_KEY_LEN], uint8_t out[SEAL_ID_LEN])
{
	/* a domain-separated hash: the id says which key, never helps guess it */
	uint8_t in[16 + SEAL_KEY_LEN], md[SHA256_DIGEST_LENGTH];
	memcpy(in, "orch seal key id", 16);
	memcpy(in + 16, key, SEAL_KEY_LEN);
	SHA256(in, sizeof in, md);
	OPENSSL_cleanse(in, sizeof in);
	memcpy(out, md, SEAL_ID_LEN);
}

/* One GCM pass: enc 1 seals (tag out), 0 opens (tag in, checked). */
static int gcm(int enc, const uint8_t *key, const uint8_t *nonce, const void *aad, size_t aad_len, const uint8_t *in,
	       size_t n, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ok = c != NULL, len = 0;
	ok = ok && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN, NULL) == 1;
	ok = ok && EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1;
	ok = ok && (!aad_len || EVP_CipherUpdate(c, NULL, &len, aad, (int)aad_len) == 1);
	ok = ok && (!n || EVP_CipherUpdate(c, out, &len, in, (int)n) == 1);
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) == 1;
	ok = ok && EVP_CipherFinal_ex(c, out + (n ? len : 0), &len) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

/* The synthetic nonce of a fixed seal: a MAC of (aad, value) under a key derived from the
 * data key, so two different values get the same nonce only with probability 2^-96. */
static void synthetic_nonce(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aad_len, const void *pt,
			    size_t n, uint8_t *nonce)
{
	uint8_t nk[SHA256_DIGEST_LENGTH], md[SHA256_DIGEST_LENGTH];
	unsigned len = sizeof nk;
	HMAC(EVP_sha256(), key, SEAL_KEY_LEN, (const uint8_t *)"orch seal synthetic nonce v1", 28, nk, &len);
	/* (aad length, aad, value) in one buffer: the length keeps (aad, value) splits apart */
	struct buf in = {0};
	uint8_t alen[8];
	for (int i = 0; i < 8; i++)
		alen[i] = (uint8_t)((uint64_t)aad_len >> (8 * i));
	buf_append(&in, alen, 8);
	buf_append(&in, aad, aad_len);
	buf_append(&in, pt, n);
	len = sizeof md;
	if (!HMAC(EVP_sha256(), nk, sizeof nk, in.data, in.len, md, &len))
		random_bytes(md, sizeof md); /* never a fixed nonce: at worst a fresh one */
	OPENSSL_cleanse(in.data, in.len);
	buf_free(&in);
	memcpy(nonce, md, SEAL_NONCE_LEN);
	OPENSSL_cleanse(nk, sizeof nk);
}

static int seal_with(bool fixed, const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aad_len, const void *pt,
		     size_t n, struct buf *out, char *err)
{
	if (n > (1u << 30) || aad_len > (1u << 20))
		return errf(err, E_INVAL, "seal: value too large");
	buf_reserve(out, n + SEAL_OVERHEAD);
	uint8_t *p = out->data + out->len;
	memcpy(p, magic, 4);
	seal_key_id(key, p + 4);
	uint8_t *nonce = p + 4 + SEAL_ID_LEN;
	if (fixed)
		synthetic_nonce(key, aad, aad_len, pt, n, nonce);
	else
		random_bytes(nonce, SEAL_NONCE_LEN);
	uint8_t *ct = nonce + SEAL_NONCE_LEN;
	if (gcm(1, key, nonce, aad, aad_len, pt, n, ct, ct + n))
		return errf(err, E_FAIL, "seal: the cipher failed");
	out->len += n + SEAL_OVERHEAD;
	return 0;
}

int seal_close(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aad_len, const void *pt, size_t n,
	       struct buf *out, char *err)
{
	return seal_with(false, key, aad, aad_len, pt, n, out, err);
}

int seal_close_fixed(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aad_len, const void *pt, size_t n,
		     struct buf *out, char *err)
{
	return seal_with(true, key, aad, aad_len, pt, n, out, err);
}

int seal_open(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aad_len, const void *blob, size_t n,
	      struct buf *out, char *err)
{
	const uint8_t *p = blob;
	if (n < SEAL_OVERHEAD || memcmp(p, magic, 4))
		return errf(err, E_INVAL, "not a sealed value");
	uint8_t id[SEAL_ID_LEN];
	seal_key_id(key, id);
	if (memcmp(id, p + 4, SEAL_ID_LEN))
		return errf(err, E_AUTH, "sealed under another data key than this node's");
	size_t ctn = n - SEAL_OVERHEAD;
	const uint8_t *nonce = p + 4 + SEAL_ID_LEN, *ct = nonce + SEAL_NONCE_LEN;
	uint8_t tag[SEAL_TAG_LEN];
	memcpy(tag, ct + ctn, SEAL_TAG_LEN);
	buf_reserve(out, ctn + 1);
	if (gcm(0, key, nonce, aad, aad_len, ct, ctn, out->data + out->len, tag)) {
		OPENSSL_cleanse(out->data + out->len, ctn);
		return errf(err, E_AUTH, "sealed value does not verify (altered, or bound to another name)");
	}
	out->len += ctn;
	return 0;
}
