#include "net/token.h"
#include "util/err.h"
#include "util/mem.h"
#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

void token_generate_secret(struct token *t)
{
	random_bytes(t->secret, sizeof t->secret);
}

void token_format(const struct token *t, char out[TOKEN_STR_LEN + 1])
{
	char cid[17], sec[65];
	hex_encode(t->cluster_id, sizeof t->cluster_id, cid);
	hex_encode(t->secret, sizeof t->secret, sec);
	snprintf(out, TOKEN_STR_LEN + 1, "ORCH2-%s-%s-%s", cid, t->ca_fp, sec);
}

static int part(const char *p, size_t n, const char *what, char *err)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
			return errf(err, E_INVAL, "malformed token: the %s is not %zu lowercase hex digits", what, n);
	return 0;
}

int token_parse(const char *s, struct token *t, char *err)
{
	if (!s || !*s)
		return errf(err, E_INVAL, "malformed token: empty");
	if (!strncmp(s, "ORCH1-", 6))
		return errf(err, E_INVAL, "token of an older orch (ORCH1-): ask the cluster for a current one (orch token show)");
	if (strncmp(s, "ORCH2-", 6))
		return errf(err, E_INVAL, "malformed token: expected ORCH2-<cluster id>-<CA fingerprint>-<secret> as printed by orch init or orch token show");
	const char *cid = s + 6, *d1 = strchr(cid, '-'), *fp = d1 ? d1 + 1 : NULL, *d2 = fp ? strchr(fp, '-') : NULL,
		   *sec = d2 ? d2 + 1 : NULL;
	if (!d1 || !d2)
		return errf(err, E_INVAL, "malformed token: expected four parts separated by '-'");
	if (d1 - cid != 16)
		return errf(err, E_INVAL, "malformed token: the cluster id is not 16 hex digits");
	if (d2 - fp != 64)
		return errf(err, E_INVAL, "malformed token: the CA fingerprint is not 64 hex digits");
	if (strlen(sec) != 64)
		return errf(err, E_INVAL, "malformed token: the secret is not 64 hex digits");
	int rc;
	if ((rc = part(cid, 16, "cluster id", err)) || (rc = part(fp, 64, "CA fingerprint", err)) ||
	    (rc = part(sec, 64, "secret", err)))
		return rc;
	char cbuf[17], sbuf[65];
	memcpy(cbuf, cid, 16);
	cbuf[16] = 0;
	memcpy(sbuf, sec, 64);
	sbuf[64] = 0;
	memcpy(t->ca_fp, fp, 64);
	t->ca_fp[64] = 0;
	if (hex_decode(cbuf, t->cluster_id, sizeof t->cluster_id) || hex_decode(sbuf, t->secret, sizeof t->secret))
		return errf(err, E_INVAL, "malformed token: non-hex characters");
	return 0;
}

void token_cluster_hex(const uint8_t cluster_id[CLUSTER_ID_LEN], char out[17])
{
	hex_encode(cluster_id, CLUSTER_ID_LEN, out);
}

void token_secret_hash(const uint8_t secret[SECRET_LEN], char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(secret, SECRET_LEN, md);
	hex_encode(md, sizeof md, out);
}
