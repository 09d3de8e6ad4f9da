#include "pki/pki.h"
#include "util/err.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pki_ossl_err(char *err, int code, const char *what)
{
	unsigned long e = ERR_get_error();
	char m[160] = "";
	if (e)
		ERR_error_string_n(e, m, sizeof m);
	ERR_clear_error();
	return errf(err, code, "%s%s%s", what, m[0] ? ": " : "", m);
}

static int bio_out(BIO *b, struct buf *out)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	if (n <= 0)
		return -1;
	buf_append(out, p, (size_t)n);
	buf_reserve(out, 1);
	out->data[out->len] = 0;
	return 0;
}

static EVP_PKEY *key_read(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return k;
}

static X509 *cert_read(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

static int cert_out(X509 *x, struct buf *out)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc = b && PEM_write_bio_X509(b, x) ? bio_out(b, out) : -1;
	BIO_free(b);
	return rc;
}

int pki_key_new(struct buf *key, char *err)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	if (!k)
		return pki_ossl_err(err, E_FAIL, "key generation");
	BIO *b = BIO_new(BIO_s_mem());
	int rc = b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) && !bio_out(b, key) ? 0
												  : pki_ossl_err(err, E_FAIL, "key encoding");
	BIO_free(b);
	EVP_PKEY_free(k);
	return rc;
}

static int name_add(X509_NAME *n, const char *field, const char *v)
{
	return X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, (const unsigned char *)v, -1, -1, 0) ? 0 : -1;
}

static int serial_random(X509 *x)
{
	uint8_t r[16];
	if (RAND_bytes(r, sizeof r) != 1)
		return -1;
	r[0] &= 0x7f; /* positive */
	r[0] |= 0x01; /* and never zero-led */
	BIGNUM *bn = BN_bin2bn(r, sizeof r, NULL);
	int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static int ext_add(X509 *x, X509 *issuer, int nid, const char *v)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, v);
	int ok = e && X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

int pki_ca_new(const char *key_pem, const char *cluster_hex, unsigned days, struct buf *cert, char *err)
{
	return pki_ca_next(key_pem, cluster_hex, 0, days, cert, err);
}

int pki_ca_next(const char *key_pem, const char *cluster_hex, unsigned gen, unsigned days, struct buf *cert, char *err)
{
	EVP_PKEY *k = key_read(key_pem);
	if (!k)
		return pki_ossl_err(err, E_INVAL, "CA key: not a PEM private key");
	X509 *x = X509_new();
	int rc = 0;
	char cn[80];
	if (gen)
		snprintf(cn, sizeof cn, "orch cluster CA %s #%u", cluster_hex, gen);
	else
		snprintf(cn, sizeof cn, "orch cluster CA %s", cluster_hex);
	X509_NAME *n = X509_get_subject_name(x);
	if (X509_set_version(x, 2) != 1 || serial_random(x) || !X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_S) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) || name_add(n, "O", cluster_hex) ||
	    name_add(n, "CN", cn) || X509_set_issuer_name(x, n) != 1 || X509_set_pubkey(x, k) != 1 ||
	    ext_add(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
	    ext_add(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    ext_add(x, x, NID_subject_key_identifier, "hash") || !X509_sign(x, k, EVP_sha256()) || cert_out(x, cert))
		rc = pki_ossl_err(err, E_FAIL, "CA certificate");
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

int pki_csr_new(const char *key_pem, struct buf *csr, char *err)
{
	EVP_PKEY *k = key_read(key_pem);
	if (!k)
		return pki_ossl_err(err, E_INVAL, "key: not a PEM private key");
	X509_REQ *r = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	int rc = 0;
	if (!r || !b || X509_REQ_set_version(r, 0) != 1 || name_add(X509_REQ_get_subject_name(r), "CN", "orch") ||
	    X509_REQ_set_pubkey(r, k) != 1 || !X509_REQ_sign(r, k, EVP_sha256()) || !PEM_write_bio_X509_REQ(b, r) ||
	    bio_out(b, csr))
		rc = pki_ossl_err(err, E_FAIL, "CSR");
	BIO_free(b);
	X509_REQ_free(r);
	EVP_PKEY_free(k);
	return rc;
}

static bool hex16(const char *s)
{
	if (!s || strlen(s) != 16)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

bool pki_user_name_ok(const char *u)
{
	size_t n = u ? strlen(u) : 0;
	if (!n || n > 63)
		return false;
	for (; *u; u++)
		if (!((*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') || (*u >= '0' && *u <= '9') || *u == '-' ||
		      *u == '_' || *u == '.' || *u == '@'))
			return false;
	return true;
}

int pki_sign(const char *ca_cert_pem, const char *ca_key_pem, const char *csr_pem, const struct pki_subject *subj,
	     uint64_t seconds, struct buf *cert, char *err)
{
	char cn[80], ou[40];
	if (!hex16(subj->cluster_hex))
		return errf(err, E_INVAL, "sign: cluster id must be 16 hex digits");
	if (subj->kind == PKI_NODE) {
		if (!subj->node_id)
			return errf(err, E_INVAL, "sign: node id 0");
		snprintf(cn, sizeof cn, "%016llx", (unsigned long long)subj->node_id);
		snprintf(ou, sizeof ou, "%s", subj->manager ? "manager" : "worker");
	} else if (subj->kind == PKI_USER) {
		if (!pki_user_name_ok(subj->user))
			return errf(err, E_INVAL, "sign: user name must be 1-63 of [A-Za-z0-9._@-]");
		if (subj->role == PROLE_NONE)
			return errf(err, E_INVAL, "sign: a user needs a role (viewer, operator or admin)");
		snprintf(cn, sizeof cn, "%s", subj->user);
		snprintf(ou, sizeof ou, "user:%s", peer_role_name(subj->role));
	} else
		return errf(err, E_INVAL, "sign: unknown subject kind");
	if (!seconds || seconds > 100ull * 365 * 86400)
		return errf(err, E_INVAL, "sign: validity out of range");
	BIO *b = BIO_new_mem_buf(csr_pem, -1);
	X509_REQ *r = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!r)
		return pki_ossl_err(err, E_INVAL, "sign: not a PEM CSR");
	EVP_PKEY *pub = X509_REQ_get0_pubkey(r);
	if (!pub || X509_REQ_verify(r, pub) != 1) {
		X509_REQ_free(r);
		return pki_ossl_err(err, E_INVAL, "sign: the CSR's signature does not verify");
	}
	X509 *ca = cert_read(ca_cert_pem);
	EVP_PKEY *cak = key_read(ca_key_pem);
	X509 *x = X509_new();
	int rc = 0;
	if (!ca || !cak || X509_check_private_key(ca, cak) != 1) {
		rc = pki_ossl_err(err, E_INVAL, "sign: the CA certificate and key do not match");
		goto out;
	}
	X509_NAME *n = X509_get_subject_name(x);
	if (X509_set_version(x, 2) != 1 || serial_random(x) || !X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_S) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)seconds) || name_add(n, "O", subj->cluster_hex) ||
	    name_add(n, "OU", ou) || name_add(n, "CN", cn) ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 || X509_set_pubkey(x, pub) != 1 ||
	    ext_add(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    ext_add(x, ca, NID_key_usage, "critical,digitalSignature") ||
	    ext_add(x, ca, NID_ext_key_usage, subj->kind == PKI_NODE ? "serverAuth,clientAuth" : "clientAuth") ||
	    ext_add(x, ca, NID_authority_key_identifier, "keyid") || !X509_sign(x, cak, EVP_sha256()) ||
	    cert_out(x, cert))
		rc = pki_ossl_err(err, E_FAIL, "sign");
out:
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(cak);
	X509_REQ_free(r);
	return rc;
}

static void fp_of(X509 *x, char out[PKI_FP_HEX])
{
	uint8_t md[32];
	unsigned n = sizeof md;
	X509_digest(x, EVP_sha256(), md, &n);
	hex_encode(md, 32, out);
}

int pki_fingerprint(const char *cert_pem, char out[PKI_FP_HEX], char *err)
{
	X509 *x = cert_read(cert_pem);
	if (!x)
		return pki_ossl_err(err, E_INVAL, "not a PEM certificate");
	fp_of(x, out);
	X509_free(x);
	return 0;
}

bool pki_bundle_has(const char *bundle_pem, const char *fp_hex)
{
	BIO *b = BIO_new_mem_buf(bundle_pem, -1);
	bool found = false;
	X509 *x;
	while (b && !found && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		char fp[PKI_FP_HEX];
		fp_of(x, fp);
		found = !strcmp(fp, fp_hex);
		X509_free(x);
	}
	ERR_clear_error();
	BIO_free(b);
	return found;
}

int pki_verify(const char *bundle_pem, const char *cert_pem, char *err)
{
	X509 *x = cert_read(cert_pem);
	if (!x)
		return pki_ossl_err(err, E_INVAL, "not a PEM certificate");
	X509_STORE *st = X509_STORE_new();
	BIO *b = BIO_new_mem_buf(bundle_pem, -1);
	X509 *ca;
	int nca = 0;
	while (b && (ca = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		X509_STORE_add_cert(st, ca);
		X509_free(ca);
		nca++;
	}
	ERR_clear_error();
	BIO_free(b);
	/* what follows the certificate: intermediates (a cross-signed CA), not trusted */
	STACK_OF(X509) *more = sk_X509_new_null();
	BIO *cb = BIO_new_mem_buf(cert_pem, -1);
	X509 *m = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	X509_free(m);
	while (cb && more && (m = PEM_read_bio_X509(cb, NULL, NULL, NULL)))
		if (!sk_X509_push(more, m))
			X509_free(m);
	ERR_clear_error();
	BIO_free(cb);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = 0;
	if (!nca)
		rc = errf(err, E_INVAL, "the CA bundle holds no certificate");
	else if (!ctx || X509_STORE_CTX_init(ctx, st, x, more) != 1 || X509_verify_cert(ctx) != 1)
		rc = errf(err, E_AUTH, "certificate does not verify: %s",
			  X509_verify_cert_error_string(ctx ? X509_STORE_CTX_get_error(ctx) : 0));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	sk_X509_pop_free(more, X509_free);
	X509_free(x);
	return rc;
}

static void serial_hex(X509 *x, char *out, size_t n)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;
	snprintf(out, n, "%s", h ? h : "");
	OPENSSL_free(h);
	BN_free(bn);
}

int pki_serial(const char *cert_pem, char *out, size_t n, char *err)
{
	X509 *x = cert_read(cert_pem);
	if (!x)
		return pki_ossl_err(err, E_INVAL, "not a PEM certificate");
	serial_hex(x, out, n);
	X509_free(x);
	return 0;
}

static int cert_time(const char *cert_pem, bool after, int64_t *out, char *err)
{
	X509 *x = cert_read(cert_pem);
	if (!x)
		return pki_ossl_err(err, E_INVAL, "not a PEM certificate");
	struct tm tm;
	int rc = ASN1_TIME_to_tm(after ? X509_get0_notAfter(x) : X509_get0_notBefore(x), &tm) == 1
			 ? 0
			 : errf(err, E_INVAL, "certificate: bad validity time");
	if (!rc)
		*out = (int64_t)timegm(&tm);
	X509_free(x);
	return rc;
}

int pki_not_after(const char *cert_pem, int64_t *out, char *err)
{
	return cert_time(cert_pem, true, out, err);
}

int pki_not_before(const char *cert_pem, int64_t *out, char *err)
{
	return cert_time(cert_pem, false, out, err);
}

bool pki_key_matches(const char *cert_pem, const char *key_pem)
{
	X509 *x = cert_read(cert_pem);
	EVP_PKEY *k = key_read(key_pem);
	bool ok = x && k && X509_check_private_key(x, k) == 1;
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return ok;
}

static int entry_of(X509_NAME *n, int nid, char *out, size_t len)
{
	int i = X509_NAME_get_index_by_NID(n, nid, -1);
	if (i < 0 || X509_NAME_get_index_by_NID(n, nid, i) >= 0) /* absent, or twice */
		return -1;
	ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
	int l = ASN1_STRING_length(s);
	if (l <= 0 || (size_t)l >= len)
		return -1;
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)l);
	out[l] = 0;
	return strlen(out) == (size_t)l ? 0 : -1; /* no NUL inside */
}

int pki_peer_of(void *x509, struct peer *p, char cluster_hex[17], char *err)
{
	X509_NAME *n = X509_get_subject_name(x509);
	char cn[80], ou[40], o[40];
	memset(p, 0, sizeof *p);
	if (!n || entry_of(n, NID_commonName, cn, sizeof cn) || entry_of(n, NID_organizationalUnitName, ou, sizeof ou) ||
	    entry_of(n, NID_organizationName, o, sizeof o) || !hex16(o))
		return errf(err, E_AUTH, "certificate subject is not an orch node or user");
	snprintf(cluster_hex, 17, "%s", o);
	if (!strcmp(ou, "manager") || !strcmp(ou, "worker")) {
		if (!hex16(cn))
			return errf(err, E_AUTH, "node certificate: CN is not a node id");
		p->kind = PEER_NODE;
		p->node_id = strtoull(cn, NULL, 16);
		p->manager = !strcmp(ou, "manager");
		if (!p->node_id)
			return errf(err, E_AUTH, "node certificate: node id 0");
		return 0;
	}
	if (!strncmp(ou, "user:", 5) && pki_user_name_ok(cn)) {
		p->kind = PEER_USER;
		p->role = peer_role_parse(ou + 5);
		snprintf(p->user, sizeof p->user, "%s", cn);
		serial_hex(x509, p->serial, sizeof p->serial); /* revocation: state/store.h users */
		if (p->role == PROLE_NONE)
			return errf(err, E_AUTH, "user certificate: unknown role %s", ou + 5);
		return 0;
	}
	return errf(err, E_AUTH, "certificate subject is not an orch node or user");
}

int pki_peer_of_pem(const char *cert_pem, struct peer *p, char cluster_hex[17], char *err)
{
	X509 *x = cert_read(cert_pem);
	if (!x)
		return pki_ossl_err(err, E_INVAL, "not a PEM certificate");
	int rc = pki_peer_of(x, p, cluster_hex, err);
	X509_free(x);
	return rc;
}

int pki_read_file(const char *path, struct buf *out, char *err)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return errf(err, errno == ENOENT ? E_NOTFOUND : E_IO, "open %s: %s", path, strerror(errno));
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0 && out->len < (1u << 20))
		buf_append(out, tmp, n);
	fclose(f);
	buf_reserve(out, 1);
	out->data[out->len] = 0;
	return 0;
}

int pki_write_file(const char *path, const void *p, size_t n, unsigned mode, char *err)
{
	char tmp[800];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return errf(err, E_IO, "create %s: %s", tmp, strerror(errno));
	if (write(fd, p, n) != (ssize_t)n || fsync(fd)) {
		close(fd);
		unlink(tmp);
		return errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	}
	close(fd);
	if (rename(tmp, path))
		return errf(err, E_IO, "rename %s: %s", path, strerror(errno));
	return 0;
}

int pki_cross_sign(const char *old_cert_pem, const char *old_key_pem, const char *new_cert_pem, struct buf *cross,
		   char *err)
{
	X509 *oc = cert_read(old_cert_pem), *nc = cert_read(new_cert_pem), *x = NULL;
	EVP_PKEY *ok = key_read(old_key_pem);
	int rc = 0;
	if (!oc || !nc || !ok || X509_check_private_key(oc, ok) != 1) {
		rc = pki_ossl_err(err, E_INVAL, "cross-sign: the old CA certificate and key do not match");
		goto out;
	}
	if (X509_check_ca(nc) != 1) {
		rc = errf(err, E_INVAL, "cross-sign: the new certificate is no CA");
		goto out;
	}
	if (!X509_NAME_cmp(X509_get_subject_name(oc), X509_get_subject_name(nc))) {
		rc = errf(err, E_INVAL, "cross-sign: the new CA must have another name than the old");
		goto out;
	}
	/* the new CA's name and key, vouched for by the old one: a verifier that trusts only
	 * the old CA builds leaf -> this -> old CA */
	x = X509_new();
	const ASN1_TIME *ona = X509_get0_notAfter(oc), *nna = X509_get0_notAfter(nc);
	if (!x || X509_set_version(x, 2) != 1 || serial_random(x) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_S) ||
	    X509_set1_notAfter(x, ASN1_TIME_compare(ona, nna) < 0 ? ona : nna) != 1 ||
	    X509_set_subject_name(x, X509_get_subject_name(nc)) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(oc)) != 1 || X509_set_pubkey(x, X509_get0_pubkey(nc)) != 1 ||
	    ext_add(x, oc, NID_basic_constraints, "critical,CA:TRUE") ||
	    ext_add(x, oc, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    ext_add(x, x, NID_subject_key_identifier, "hash") ||
	    ext_add(x, oc, NID_authority_key_identifier, "keyid") || !X509_sign(x, ok, EVP_sha256()) || cert_out(x, cross))
		rc = pki_ossl_err(err, E_FAIL, "cross-sign");
out:
	X509_free(x);
	X509_free(oc);
	X509_free(nc);
	EVP_PKEY_free(ok);
	return rc;
}
