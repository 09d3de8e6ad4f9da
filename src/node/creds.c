#include "node/creds.h"
#include "net/tls.h"
#include "pki/pki.h"
#include "secret/datakey.h"
#include "secret/seal.h"
#include "util/err.h"
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AAD_CA "orch ca key"
#define AAD_MGR "orch token manager"
#define AAD_WRK "orch token worker"

static void path_in(const char *data_dir, const char *name, char *out, size_t n)
{
	char dir[700];
	tls_dir(data_dir, dir, sizeof dir);
	snprintf(out, n, "%s/%s", dir, name);
}

static int seal_hex(const char *data_dir, const char *aad, const void *p, size_t n, char **out, char *err)
{
	struct datakey k;
	int rc = datakey_load(data_dir, &k, err);
	if (rc)
		return rc;
	struct buf b = {0};
	rc = seal_close(k.k, aad, strlen(aad), p, n, &b, err);
	datakey_wipe(&k);
	if (!rc) {
		*out = xmalloc(2 * b.len + 1);
		hex_encode(b.data, b.len, *out);
	}
	buf_free(&b);
	return rc;
}

/* out holds the value (NUL-terminated); the caller wipes and frees it. */
static int open_hex(const char *data_dir, const char *aad, const char *hex, struct buf *out, char *err)
{
	size_t hl = hex ? strlen(hex) : 0;
	if (!hl || hl % 2)
		return errf(err, E_NOTFOUND, "the cluster state holds no %s (a cluster made by an older orch)", aad + 5);
	uint8_t *blob = xmalloc(hl / 2);
	if (hex_decode(hex, blob, hl / 2)) {
		free(blob);
		return errf(err, E_INVAL, "%s: not hex", aad + 5);
	}
	struct datakey k;
	int rc = datakey_load(data_dir, &k, err);
	if (!rc)
		rc = seal_open(k.k, aad, strlen(aad), blob, hl / 2, out, err);
	datakey_wipe(&k);
	free(blob);
	if (!rc) {
		buf_reserve(out, 1);
		out->data[out->len] = 0;
	}
	return rc;
}

static void wipe(struct buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->cap);
	buf_free(b);
}

int creds_token_new(const struct store *s, const char *data_dir, bool worker, struct token *t, char **hash,
		    char **sealed, char *err)
{
	*hash = NULL;
	if (!s->has_cluster || !s->cluster.ca_certs || !s->cluster.id || hex_decode(s->cluster.id, t->cluster_id, CLUSTER_ID_LEN))
		return errf(err, E_STATE, "the cluster state holds no CA");
	int rc = pki_fingerprint(s->cluster.ca_certs, t->ca_fp, err);
	if (rc)
		return rc;
	token_generate_secret(t);
	*hash = xmalloc(65);
	token_secret_hash(t->secret, *hash);
	rc = seal_hex(data_dir, worker ? AAD_WRK : AAD_MGR, t->secret, SECRET_LEN, sealed, err);
	if (rc) {
		free(*hash);
		*hash = NULL;
	}
	return rc;
}

int creds_save(const char *data_dir, const char *key, const char *cert, const char *bundle, char *err)
{
	char dir[700], p[800];
	tls_dir(data_dir, dir, sizeof dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return errf(err, E_IO, "create %s: %s", dir, strerror(errno));
	int rc;
	path_in(data_dir, "node.key", p, sizeof p);
	if ((rc = pki_write_file(p, key, strlen(key), 0600, err)))
		return rc;
	path_in(data_dir, "ca.crt", p, sizeof p);
	if ((rc = pki_write_file(p, bundle, strlen(bundle), 0644, err)))
		return rc;
	path_in(data_dir, "node.crt", p, sizeof p); /* last: its presence means tls/ is complete */
	return pki_write_file(p, cert, strlen(cert), 0644, err);
}

int creds_csr(struct buf *key, struct buf *csr, char *err)
{
	int rc = pki_key_new(key, err);
	return rc ? rc : pki_csr_new((char *)key->data, csr, err);
}

int creds_init(const char *data_dir, const uint8_t cluster_id[CLUSTER_ID_LEN], uint64_t node_id,
	       const struct creds_init *o, struct token *mgr, struct token *wrk, char *err)
{
	char cid[17];
	token_cluster_hex(cluster_id, cid);
	struct buf cakey = {0}, cacert = {0}, key = {0}, csr = {0}, cert = {0}, boot = {0};
	char *sk = NULL, *sm = NULL, *sw = NULL, hm[65], hw[65], fp[PKI_FP_HEX];
	int rc;
	uint64_t secs = o->cert_secs ? o->cert_secs : CREDS_DEFAULT_DAYS * 86400ull;
	if (o->ca_cert_file) {
		if ((rc = pki_read_file(o->ca_cert_file, &cacert, err)) || (rc = pki_read_file(o->ca_key_file, &cakey, err)))
			goto out;
		if (!pki_key_matches((char *)cacert.data, (char *)cakey.data)) {
			rc = errf(err, E_INVAL, "%s is not the key of %s", o->ca_key_file, o->ca_cert_file);
			goto out;
		}
	} else if ((rc = pki_key_new(&cakey, err)) || (rc = pki_ca_new((char *)cakey.data, cid, PKI_CA_DAYS, &cacert, err)))
		goto out;
	struct pki_subject subj = {.kind = PKI_NODE, .node_id = node_id, .manager = true, .cluster_hex = cid};
	if ((rc = pki_fingerprint((char *)cacert.data, fp, err)) || (rc = creds_csr(&key, &csr, err)) ||
	    (rc = pki_sign((char *)cacert.data, (char *)cakey.data, (char *)csr.data, &subj, secs, &cert, err)))
		goto out;
	if (o->ca_cert_file && (rc = pki_verify((char *)cacert.data, (char *)cert.data, err)))
		goto out; /* a given CA that cannot issue (not a CA, expired) */
	memcpy(mgr->cluster_id, cluster_id, CLUSTER_ID_LEN);
	memcpy(wrk->cluster_id, cluster_id, CLUSTER_ID_LEN);
	snprintf(mgr->ca_fp, sizeof mgr->ca_fp, "%s", fp);
	snprintf(wrk->ca_fp, sizeof wrk->ca_fp, "%s", fp);
	token_generate_secret(mgr);
	token_generate_secret(wrk);
	token_secret_hash(mgr->secret, hm);
	token_secret_hash(wrk->secret, hw);
	if ((rc = seal_hex(data_dir, AAD_CA, cakey.data, cakey.len, &sk, err)) ||
	    (rc = seal_hex(data_dir, AAD_MGR, mgr->secret, SECRET_LEN, &sm, err)) ||
	    (rc = seal_hex(data_dir, AAD_WRK, wrk->secret, SECRET_LEN, &sw, err)))
		goto out;
	if ((rc = creds_save(data_dir, (char *)key.data, (char *)cert.data, (char *)cacert.data, err)))
		goto out;
	buf_printf(&boot, "secret_hash=%s\nworker_hash=%s\nmanager_token=%s\nworker_token=%s\nca_key=%s\ncert_days=%llu\ncert_secs=%llu\n",
		   hm, hw, sm, sw, sk, (unsigned long long)((secs + 86399) / 86400), (unsigned long long)secs);
	char p[800];
	path_in(data_dir, "bootstrap", p, sizeof p);
	rc = pki_write_file(p, boot.data, boot.len, 0600, err);
out:
	wipe(&cakey);
	wipe(&key);
	buf_free(&cacert);
	buf_free(&csr);
	buf_free(&cert);
	buf_free(&boot);
	free(sk);
	free(sm);
	free(sw);
	return rc;
}

int creds_boot_load(const char *data_dir, struct cmd_cluster_init *b, char *err)
{
	char p[800];
	struct buf f = {0}, ca = {0};
	path_in(data_dir, "bootstrap", p, sizeof p);
	int rc = pki_read_file(p, &f, err);
	if (!rc) {
		path_in(data_dir, "ca.crt", p, sizeof p);
		rc = pki_read_file(p, &ca, err);
	}
	if (rc) {
		buf_free(&f);
		buf_free(&ca);
		return rc;
	}
	b->ca_certs = (char *)ca.data;
	char *save = NULL;
	for (char *line = strtok_r((char *)f.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq++ = 0;
		if (!strcmp(line, "secret_hash"))
			b->secret_hash = xstrdup(eq);
		else if (!strcmp(line, "worker_hash"))
			b->worker_hash = xstrdup(eq);
		else if (!strcmp(line, "manager_token"))
			b->manager_token = xstrdup(eq);
		else if (!strcmp(line, "worker_token"))
			b->worker_token = xstrdup(eq);
		else if (!strcmp(line, "ca_key"))
			b->ca_key = xstrdup(eq);
		else if (!strcmp(line, "cert_days"))
			b->cert_days = strtoull(eq, NULL, 10);
		else if (!strcmp(line, "cert_secs"))
			b->cert_secs = strtoull(eq, NULL, 10);
	}
	buf_free(&f);
	if (!b->secret_hash || !b->worker_hash || !b->manager_token || !b->worker_token || !b->ca_key) {
		creds_boot_free(b);
		return errf(err, E_INVAL, "%s: incomplete", p);
	}
	return 0;
}

void creds_boot_free(struct cmd_cluster_init *b)
{
	free((char *)(uintptr_t)b->secret_hash);
	free((char *)(uintptr_t)b->worker_hash);
	free((char *)(uintptr_t)b->manager_token);
	free((char *)(uintptr_t)b->worker_token);
	free((char *)(uintptr_t)b->ca_key);
	free((char *)(uintptr_t)b->ca_certs);
	b->secret_hash = b->worker_hash = b->manager_token = b->worker_token = b->ca_key = b->ca_certs = NULL;
}

void creds_remove(const char *data_dir)
{
	static const char *const names[] = {"node.key", "node.crt", "ca.crt", "bootstrap", "next.key", "next.crt"};
	char p[800];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		path_in(data_dir, names[i], p, sizeof p);
		unlink(p);
	}
}

void creds_boot_remove(const char *data_dir)
{
	char p[800];
	path_in(data_dir, "bootstrap", p, sizeof p);
	unlink(p);
}

int creds_token_kind(const struct store *s, const uint8_t secret[SECRET_LEN])
{
	char h[65];
	token_secret_hash(secret, h);
	if (!s->has_cluster)
		return -1;
	if (s->cluster.secret_hash && CRYPTO_memcmp(h, s->cluster.secret_hash, 64) == 0 && strlen(s->cluster.secret_hash) == 64)
		return 1;
	if (s->cluster.worker_hash && CRYPTO_memcmp(h, s->cluster.worker_hash, 64) == 0 && strlen(s->cluster.worker_hash) == 64)
		return 0;
	return -1;
}

/* subj's cluster comes from the state */
static int sign(const struct store *s, const char *data_dir, const char *csr, struct pki_subject *subj, uint64_t secs,
		struct buf *cert, char *err)
{
	if (!s->has_cluster || !s->cluster.ca_certs)
		return errf(err, E_STATE, "the cluster has no CA yet");
	struct buf key = {0};
	int rc = open_hex(data_dir, AAD_CA, s->cluster.ca_key, &key, err);
	if (rc)
		return errwrap(err, rc, "CA key");
	subj->cluster_hex = s->cluster.id;
	/* the first certificate of the bundle is the one that signs */
	rc = pki_sign(s->cluster.ca_certs, (char *)key.data, csr, subj, secs, cert, err);
	wipe(&key);
	return rc;
}

int creds_sign_node(const struct store *s, const char *data_dir, const char *csr, uint64_t node_id, bool manager,
		    struct buf *cert, char *err)
{
	struct pki_subject subj = {.kind = PKI_NODE, .node_id = node_id, .manager = manager};
	return sign(s, data_dir, csr, &subj, creds_validity(s), cert, err);
}

uint64_t creds_validity(const struct store *s)
{
	if (s->cluster.cert_secs)
		return s->cluster.cert_secs;
	return (s->cluster.cert_days ? s->cluster.cert_days : CREDS_DEFAULT_DAYS) * 86400ull;
}

int creds_sign_user(const struct store *s, const char *data_dir, const char *csr, const char *user,
		    enum peer_role role, uint64_t days, struct buf *cert, char *err)
{
	struct pki_subject subj = {.kind = PKI_USER, .user = user, .role = role};
	return sign(s, data_dir, csr, &subj, (days ? days : CREDS_DEFAULT_DAYS) * 86400ull, cert, err);
}

int creds_token(const struct store *s, const char *data_dir, bool worker, struct token *t, char *err)
{
	if (!s->has_cluster || !s->cluster.ca_certs)
		return errf(err, E_STATE, "the cluster has no CA yet");
	struct buf sec = {0};
	int rc = open_hex(data_dir, worker ? AAD_WRK : AAD_MGR, worker ? s->cluster.worker_token : s->cluster.manager_token, &sec, err);
	if (!rc && sec.len != SECRET_LEN)
		rc = errf(err, E_INVAL, "sealed token: wrong length");
	if (!rc && hex_decode(s->cluster.id, t->cluster_id, CLUSTER_ID_LEN))
		rc = errf(err, E_INVAL, "cluster id not hex");
	if (!rc)
		rc = pki_fingerprint(s->cluster.ca_certs, t->ca_fp, err);
	if (!rc)
		memcpy(t->secret, sec.data, SECRET_LEN);
	wipe(&sec);
	return rc;
}

int creds_renew_save(const char *data_dir, const char *key, const char *cert, const char *bundle, char *err)
{
	char nk[800], nc[800], k[800], c[800], b[800];
	path_in(data_dir, "next.key", nk, sizeof nk);
	path_in(data_dir, "next.crt", nc, sizeof nc);
	path_in(data_dir, "node.key", k, sizeof k);
	path_in(data_dir, "node.crt", c, sizeof c);
	path_in(data_dir, "ca.crt", b, sizeof b);
	int rc;
	/* the bundle first: it trusts the CA of the old certificate and of the new one */
	if ((rc = pki_write_file(b, bundle, strlen(bundle), 0644, err)) ||
	    (rc = pki_write_file(nk, key, strlen(key), 0600, err)) || (rc = pki_write_file(nc, cert, strlen(cert), 0644, err)))
		return rc;
	if (rename(nk, k))
		return errf(err, E_IO, "rename %s: %s", nk, strerror(errno));
	if (rename(nc, c))
		return errf(err, E_IO, "rename %s: %s", nc, strerror(errno));
	return 0;
}

void creds_recover(const char *data_dir)
{
	char nk[800], nc[800], k[800], c[800];
	path_in(data_dir, "next.key", nk, sizeof nk);
	path_in(data_dir, "next.crt", nc, sizeof nc);
	path_in(data_dir, "node.key", k, sizeof k);
	path_in(data_dir, "node.crt", c, sizeof c);
	struct buf key = {0}, cert = {0};
	char err[ERR_LEN];
	if (!pki_read_file(nc, &cert, err)) {
		if (!pki_read_file(nk, &key, err)) {
			/* stopped before the key was renamed: the old pair is whole */
			if (pki_key_matches((char *)cert.data, (char *)key.data) && !rename(nk, k))
				(void)rename(nc, c);
		} else if (!pki_read_file(k, &key, err) && pki_key_matches((char *)cert.data, (char *)key.data))
			(void)rename(nc, c); /* the key was: the certificate must follow */
	}
	wipe(&key);
	buf_free(&cert);
	unlink(nk);
	unlink(nc);
}

int creds_ca_rotate(const struct store *s, const char *data_dir, const char *new_cert, const char *new_key,
		    struct cmd_cluster_ca *out, char fp[65], char *err)
{
	memset(out, 0, sizeof *out);
	if (!s->has_cluster || !s->cluster.ca_certs || !s->cluster.id)
		return errf(err, E_STATE, "the cluster has no CA yet");
	if (s->cluster.ca_old && *s->cluster.ca_old)
		return errf(err, E_STATE, "a CA rotation is in progress (orch ca show says how far); rotate again once it ended");
	struct buf oldkey = {0}, key = {0}, cert = {0}, cross = {0}, bundle = {0};
	char *sealed = NULL, oldfp[PKI_FP_HEX];
	int rc = open_hex(data_dir, AAD_CA, s->cluster.ca_key, &oldkey, err);
	if (rc) {
		errwrap(err, rc, "CA key");
		goto out;
	}
	unsigned gen = (unsigned)s->cluster.ca_gen + 1;
	if (new_cert) {
		buf_append(&cert, new_cert, strlen(new_cert) + 1);
		cert.len--;
		buf_append(&key, new_key, strlen(new_key) + 1);
		key.len--;
		if (!pki_key_matches(new_cert, new_key)) {
			rc = errf(err, E_INVAL, "the key given is not the key of the CA certificate given");
			goto out;
		}
	} else if ((rc = pki_key_new(&key, err)) ||
		   (rc = pki_ca_next((char *)key.data, s->cluster.id, gen, PKI_CA_DAYS, &cert, err)))
		goto out;
	/* the first certificate of the bundle is the CA that signs now */
	if ((rc = pki_fingerprint(s->cluster.ca_certs, oldfp, err)) || (rc = pki_fingerprint((char *)cert.data, fp, err)) ||
	    (rc = pki_cross_sign(s->cluster.ca_certs, (char *)oldkey.data, (char *)cert.data, &cross, err)))
		goto out;
	if (!strcmp(oldfp, fp)) {
		rc = errf(err, E_INVAL, "the CA given is the current one");
		goto out;
	}
	{
		/* a node certificate the new CA issues must verify through the cross-signature
		 * against the old CA alone, or the transition would cut nodes off */
		struct pki_subject subj = {.kind = PKI_NODE, .node_id = 1, .cluster_hex = s->cluster.id};
		struct buf tk = {0}, tcsr = {0}, tc = {0}, chain = {0};
		rc = creds_csr(&tk, &tcsr, err);
		if (!rc)
			rc = pki_sign((char *)cert.data, (char *)key.data, (char *)tcsr.data, &subj, 600, &tc, err);
		if (!rc) {
			buf_append(&chain, tc.data, tc.len);
			buf_append(&chain, cross.data, cross.len);
			buf_append(&chain, "", 1);
			rc = pki_verify(s->cluster.ca_certs, (char *)chain.data, err);
			if (rc)
				errwrap(err, rc, "the new CA (a trial certificate does not verify against the old CA through the cross-signature)");
		}
		wipe(&tk);
		buf_free(&tcsr);
		buf_free(&tc);
		buf_free(&chain);
		if (rc)
			goto out;
	}
	/* the new CA, then the old one (only the one that signed: older ones left already) */
	{
		const char *o = s->cluster.ca_certs, *end = strstr(o, "-----END CERTIFICATE-----");
		size_t olen = end ? (size_t)(end - o) + strlen("-----END CERTIFICATE-----\n") : strlen(o);
		if (olen > strlen(o))
			olen = strlen(o);
		buf_printf(&bundle, "%s", (char *)cert.data);
		if (bundle.len && bundle.data[bundle.len - 1] != '\n')
			buf_printf(&bundle, "\n");
		buf_printf(&bundle, "%.*s", (int)olen, o);
	}
	if ((rc = seal_hex(data_dir, AAD_CA, key.data, key.len, &sealed, err)))
		goto out;
	out->ca_certs = xstrdup((char *)bundle.data);
	out->ca_key = sealed;
	sealed = NULL;
	out->ca_cross = xstrdup((char *)cross.data);
	out->ca_old = xstrdup(oldfp);
	out->ca_gen = gen;
out:
	wipe(&oldkey);
	wipe(&key);
	buf_free(&cert);
	buf_free(&cross);
	buf_free(&bundle);
	free(sealed);
	return rc;
}

void creds_ca_free(struct cmd_cluster_ca *c)
{
	free((char *)(uintptr_t)c->ca_certs);
	free((char *)(uintptr_t)c->ca_key);
	free((char *)(uintptr_t)c->ca_cross);
	free((char *)(uintptr_t)c->ca_old);
	memset(c, 0, sizeof *c);
}

char *creds_chain(const struct store *s, const char *cert)
{
	struct buf b = {0};
	buf_printf(&b, "%s", cert);
	if (s->cluster.ca_cross && *s->cluster.ca_cross) {
		if (b.len && b.data[b.len - 1] != '\n')
			buf_printf(&b, "\n");
		buf_printf(&b, "%s", s->cluster.ca_cross);
	}
	if (!b.data)
		return xstrdup("");
	return (char *)b.data;
}
