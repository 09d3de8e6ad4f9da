#include "net/tls.h"
#include "pki/pki.h"
#include "util/err.h"
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tls_dir(const char *data_dir, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", data_dir, TLS_DIR);
}

static SSL_CTX *ctx_new(bool server)
{
	SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!c)
		return NULL;
	SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
	SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (server) {
		SSL_CTX_set_num_tickets(c, 0); /* nodes reconnect with their certificate, no resumption */
		SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	}
	return c;
}

static int add_bundle(SSL_CTX *c, const char *bundle, bool chain, char *err)
{
	X509_STORE *st = SSL_CTX_get_cert_store(c);
	BIO *b = BIO_new_mem_buf(bundle, -1);
	X509 *x;
	int n = 0;
	while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		X509_STORE_add_cert(st, x);
		/* the server sends the CA along: a joiner compares it with the token's pin */
		if (chain)
			SSL_CTX_add_extra_chain_cert(c, x); /* takes x */
		else
			X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(b);
	return n ? 0 : errf(err, E_INVAL, "the CA bundle holds no certificate");
}

static int use_pem(SSL_CTX *c, const char *key, const char *cert, char *err)
{
	BIO *kb = BIO_new_mem_buf(key, -1), *cb = BIO_new_mem_buf(cert, -1);
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	int rc = 0;
	if (!k || !x || SSL_CTX_use_certificate(c, x) != 1 || SSL_CTX_use_PrivateKey(c, k) != 1 ||
	    SSL_CTX_check_private_key(c) != 1)
		rc = pki_ossl_err(err, E_INVAL, "node key and certificate");
	/* what follows the certificate is sent after it, before the CA bundle: during a CA
	 * rotation the new CA cross-signed by the old (pki/pki.h pki_cross_sign), which a peer
	 * trusting only the old CA must meet first on its way to a root */
	X509 *more;
	while (!rc && (more = PEM_read_bio_X509(cb, NULL, NULL, NULL)))
		if (SSL_CTX_add_extra_chain_cert(c, more) != 1) {
			X509_free(more);
			rc = pki_ossl_err(err, E_INVAL, "node certificate chain");
		}
	ERR_clear_error();
	EVP_PKEY_free(k);
	X509_free(x);
	BIO_free(kb);
	BIO_free(cb);
	return rc;
}

int tls_load_pem(struct tlsctx *t, const char *key, const char *cert, const char *bundle, char *err)
{
	memset(t, 0, sizeof *t);
	struct peer p;
	char e2[ERR_LEN];
	if (pki_peer_of_pem(cert, &p, t->cluster_hex, e2))
		return errf(err, E_INVAL, "certificate: %s", e2);
	t->node_id = p.kind == PEER_NODE ? p.node_id : 0;
	SSL_CTX *s = ctx_new(true), *c = ctx_new(false);
	int rc = 0;
	if (!s || !c)
		rc = pki_ossl_err(err, E_FAIL, "TLS context");
	else if (use_pem(s, key, cert, err) || use_pem(c, key, cert, err) || add_bundle(s, bundle, true, err) ||
		 add_bundle(c, bundle, false, err))
		rc = E_INVAL;
	if (rc) {
		SSL_CTX_free(s);
		SSL_CTX_free(c);
		return rc;
	}
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL); /* no certificate: anonymous (join only) */
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	t->srv = s;
	t->cli = c;
	t->refs = 1;
	return 0;
}

int tls_load(struct tlsctx *t, const char *dir, char *err)
{
	char p[800];
	struct buf k = {0}, c = {0}, b = {0};
	int rc;
	snprintf(p, sizeof p, "%s/node.crt", dir);
	if ((rc = pki_read_file(p, &c, err)))
		goto out;
	snprintf(p, sizeof p, "%s/node.key", dir);
	if ((rc = pki_read_file(p, &k, err)))
		goto out;
	snprintf(p, sizeof p, "%s/ca.crt", dir);
	if ((rc = pki_read_file(p, &b, err)))
		goto out;
	rc = tls_load_pem(t, (char *)k.data, (char *)c.data, (char *)b.data, err);
out:
	if (k.data)
		OPENSSL_cleanse(k.data, k.len);
	buf_free(&k);
	buf_free(&c);
	buf_free(&b);
	return rc;
}

void tls_free(struct tlsctx *t)
{
	SSL_CTX_free(t->srv);
	SSL_CTX_free(t->cli);
	SSL_CTX_free(t->old_srv);
	SSL_CTX_free(t->old_cli);
	t->srv = t->cli = t->old_srv = t->old_cli = NULL;
}

int tls_reload(struct tlsctx *t, const char *dir, char *err)
{
	struct tlsctx n;
	int rc = tls_load(&n, dir, err);
	if (rc)
		return rc;
	if (n.node_id != t->node_id || strcmp(n.cluster_hex, t->cluster_hex)) {
		tls_free(&n);
		return errf(err, E_INVAL, "%s/node.crt: not this node's certificate any more", dir);
	}
	SSL_CTX_free(t->old_srv);
	SSL_CTX_free(t->old_cli);
	t->old_srv = t->srv;
	t->old_cli = t->cli;
	t->srv = n.srv;
	t->cli = n.cli;
	return 0;
}

static int accept_any(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

void *tls_join_ctx(char *err)
{
	SSL_CTX *c = ctx_new(false);
	if (!c) {
		pki_ossl_err(err, E_FAIL, "TLS context");
		return NULL;
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, accept_any);
	return c;
}

void tls_ctx_free(void *ctx)
{
	SSL_CTX_free(ctx);
}

int tls_sess_init(struct tls_sess *s, void *ctx, bool server, char *err)
{
	memset(s, 0, sizeof *s);
	s->server = server;
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return pki_ossl_err(err, E_FAIL, "TLS session");
	s->ssl = ssl;
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return 0;
}

static void mem_bios(struct tls_sess *s)
{
	if (s->rb)
		return;
	BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(r, -1); /* empty: "retry", not EOF */
	SSL_set_bio(s->ssl, r, w);
	s->rb = r;
	s->wb = w;
}

void tls_sess_free(struct tls_sess *s)
{
	SSL_free(s->ssl); /* frees the BIOs */
	memset(s, 0, sizeof *s);
}

void tls_feed(struct tls_sess *s, const void *p, size_t n)
{
	mem_bios(s);
	BIO_write(s->rb, p, (int)n);
}

static int hs_error(SSL *ssl, int r, char *err)
{
	int e = SSL_get_error(ssl, r);
	long v = SSL_get_verify_result(ssl);
	/* a node that was off during a whole CA rotation meets peers of a CA it never saw */
	if ((v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN) &&
	    !SSL_is_server(ssl))
		return errf(err, E_AUTH, "TLS: the peer's CA is not one this node trusts (the cluster rotated its CA "
				  "while this node was off? then it must join again: orch-ca(1))");
	if (v != X509_V_OK)
		return errf(err, E_AUTH, "TLS: certificate refused: %s", X509_verify_cert_error_string(v));
	return pki_ossl_err(err, E_AUTH, e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ? "TLS handshake: connection closed" : "TLS handshake");
}

int tls_handshake(struct tls_sess *s, char *err)
{
	mem_bios(s);
	if (s->done)
		return 1;
	int r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->done = true;
		return 1;
	}
	int e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	return hs_error(s->ssl, r, err);
}

int tls_read(struct tls_sess *s, struct buf *out, char *err)
{
	int total = 0;
	for (;;) {
		buf_reserve(out, 16384);
		size_t got = 0;
		int r = SSL_read_ex(s->ssl, out->data + out->len, out->cap - out->len, &got);
		if (r == 1) {
			out->len += got;
			total += (int)got;
			continue;
		}
		int e = SSL_get_error(s->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return total;
		if (total)
			return total; /* the close shows on the next call */
		if (e == SSL_ERROR_ZERO_RETURN) {
			if (err)
				err[0] = 0;
			return -1;
		}
		pki_ossl_err(err, E_AUTH, "TLS");
		return -1;
	}
}

int tls_write(struct tls_sess *s, const void *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		size_t w = 0;
		if (SSL_write_ex(s->ssl, (const char *)p + done, n - done, &w) != 1) {
			ERR_clear_error();
			return -1;
		}
		done += w;
	}
	return 0;
}

char *tls_take(struct tls_sess *s, size_t *n)
{
	size_t pend = s->wb ? BIO_ctrl_pending(s->wb) : 0;
	*n = 0;
	if (!pend)
		return NULL;
	char *p = xmalloc(pend);
	int r = BIO_read(s->wb, p, (int)pend);
	if (r <= 0) {
		free(p);
		return NULL;
	}
	*n = (size_t)r;
	return p;
}

void tls_close_notify(struct tls_sess *s)
{
	SSL_shutdown(s->ssl);
	ERR_clear_error();
}

int tls_peer(struct tls_sess *s, const char *cluster_hex, struct peer *p, char *err)
{
	memset(p, 0, sizeof *p);
	X509 *x = SSL_get1_peer_certificate(s->ssl);
	if (!x) {
		p->kind = PEER_ANON;
		return 0;
	}
	char cl[17];
	int rc = SSL_get_verify_result(s->ssl) == X509_V_OK ? pki_peer_of(x, p, cl, err)
							 : errf(err, E_AUTH, "peer certificate not verified");
	X509_free(x);
	if (!rc && cluster_hex && strcmp(cl, cluster_hex))
		rc = errf(err, E_AUTH, "peer certificate of cluster %s, not %s", cl, cluster_hex);
	if (rc)
		memset(p, 0, sizeof *p);
	return rc;
}

int tls_fd_connect(struct tls_sess *s, void *ctx, int fd, char *err)
{
	int rc = tls_sess_init(s, ctx, false, err);
	if (rc)
		return rc;
	SSL_set_fd(s->ssl, fd);
	int r = SSL_connect(s->ssl);
	if (r != 1) {
		rc = hs_error(s->ssl, r, err);
		tls_sess_free(s);
		return rc;
	}
	s->done = true;
	return 0;
}

int tls_pin_check(struct tls_sess *s, const char *pin, char *err)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(s->ssl);
	X509 *leaf = SSL_get0_peer_certificate(s->ssl);
	X509 *ca = NULL;
	for (int i = 0; chain && i < sk_X509_num(chain) && !ca; i++) {
		X509 *x = sk_X509_value(chain, i);
		uint8_t md[32];
		unsigned n = sizeof md;
		char fp[PKI_FP_HEX];
		X509_digest(x, EVP_sha256(), md, &n);
		hex_encode(md, 32, fp);
		if (!strcmp(fp, pin))
			ca = x;
	}
	if (!leaf || !ca)
		return errf(err, E_AUTH, "the server's CA is not the one the token pins (wrong token for this cluster, or a man in the middle)");
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, ca);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = 0;
	if (!ctx || X509_STORE_CTX_init(ctx, st, leaf, NULL) != 1 || X509_verify_cert(ctx) != 1)
		rc = errf(err, E_AUTH, "the server's certificate does not verify against the pinned CA: %s",
			  X509_verify_cert_error_string(ctx ? X509_STORE_CTX_get_error(ctx) : 0));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}

long tls_fd_read(struct tls_sess *s, void *p, size_t n)
{
	size_t got = 0;
	int r = SSL_read_ex(s->ssl, p, n, &got);
	if (r == 1)
		return (long)got;
	int e = SSL_get_error(s->ssl, r);
	ERR_clear_error();
	return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

long tls_fd_write(struct tls_sess *s, const void *p, size_t n)
{
	size_t w = 0;
	if (SSL_write_ex(s->ssl, p, n, &w) == 1)
		return (long)w;
	ERR_clear_error();
	return -1;
}

bool tls_fd_pending(struct tls_sess *s)
{
	return s->ssl && SSL_pending(s->ssl) > 0;
}
