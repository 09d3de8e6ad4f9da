/* The cluster PKI: ECDSA P-256 keys, the cluster CA (self-signed, long-lived), CSRs, and
 * certificates whose subject says what their holder is:
 *
 *   node  CN=<node id, 16 hex>  OU=manager|worker   O=<cluster id, 16 hex>
 *   user  CN=<user name>        OU=user:<viewer|operator|admin>  O=<cluster id>
 *
 * Everything crosses module boundaries as PEM text (keys, CSRs, certificates, bundles), so
 * callers need no OpenSSL types. The CA fingerprint (what a join token pins) is the sha256
 * of the CA certificate's DER encoding, as 64 hex digits. A bundle is one or more CA
 * certificates concatenated: a node trusts each, so a CA rotation can add one before
 * retiring the other. */
#ifndef ORCH_PKI_H
#define ORCH_PKI_H
#include <stdbool.h>
#include <stdint.h>
#include "net/peer.h"
#include "util/mem.h"

#define PKI_FP_HEX 65
#define PKI_DEFAULT_DAYS 90
#define PKI_CA_DAYS (20 * 365)
/* Issued certificates start this long before the signing time, so a peer whose clock is a
 * little behind accepts them at once. */
#define PKI_BACKDATE_S 300

enum pki_kind { PKI_NODE = 1, PKI_USER };

/* A new private key, PEM (PKCS#8), appended to key. */
int pki_key_new(struct buf *key, char *err);
/* A self-signed CA certificate for the cluster (cluster_hex: 16 hex), valid `days`. */
int pki_ca_new(const char *key_pem, const char *cluster_hex, unsigned days, struct buf *cert, char *err);
/* The same for a CA rotation: generation gen (> 0) names it apart from the ones before
 * ("orch cluster CA <cluster> #<gen>"), as a cross-signature needs. */
int pki_ca_next(const char *key_pem, const char *cluster_hex, unsigned gen, unsigned days, struct buf *cert, char *err);
/* A certificate of the new CA (its name and key) signed by the old CA: during a CA
 * rotation nodes send it after their certificate, so a peer that still trusts only the
 * old CA accepts a certificate of the new one. Valid until the earlier of the two ends. */
int pki_cross_sign(const char *old_cert_pem, const char *old_key_pem, const char *new_cert_pem, struct buf *cross,
		   char *err);
/* A CSR for key (its subject is not trusted: the signer sets the subject). */
int pki_csr_new(const char *key_pem, struct buf *csr, char *err);

struct pki_subject {
	enum pki_kind kind;
	uint64_t node_id;        /* PKI_NODE */
	bool manager;            /* PKI_NODE */
	const char *user;        /* PKI_USER */
	enum peer_role role;     /* PKI_USER */
	const char *cluster_hex; /* O= */
};
/* Signs csr (whose signature must verify) with the CA into a certificate for subj, valid
 * for `seconds` from now, with a random serial. */
int pki_sign(const char *ca_cert_pem, const char *ca_key_pem, const char *csr_pem, const struct pki_subject *subj,
	     uint64_t seconds, struct buf *cert, char *err);

/* A user name a certificate may carry: 1-63 of [A-Za-z0-9._@-]. */
bool pki_user_name_ok(const char *name);
/* sha256 of the first certificate's DER in pem, hex. */
int pki_fingerprint(const char *cert_pem, char out[PKI_FP_HEX], char *err);
/* Whether any certificate of the bundle has this fingerprint. */
bool pki_bundle_has(const char *bundle_pem, const char *fp_hex);
/* Whether cert verifies against the bundle (chain, validity period); certificates after
 * the first in cert_pem are intermediates it may go through (a cross-signed CA). */
int pki_verify(const char *bundle_pem, const char *cert_pem, char *err);
/* The serial number of a certificate, hex (for logs and revocation). */
int pki_serial(const char *cert_pem, char *out, size_t n, char *err);
/* When the certificate stops being valid (seconds since the epoch). */
int pki_not_after(const char *cert_pem, int64_t *out, char *err);
/* When it starts being valid (the signing time less PKI_BACKDATE_S for ours). */
int pki_not_before(const char *cert_pem, int64_t *out, char *err);
/* Whether the key belongs to the certificate. */
bool pki_key_matches(const char *cert_pem, const char *key_pem);

/* Who the holder of a verified certificate is (its subject, pki_subject's form), and its
 * cluster (O=, 16 hex): E_AUTH when the subject is not one this module issues. The X509
 * is an OpenSSL X509 * (net/tls.c hands the verified peer certificate here). */
int pki_peer_of(void *x509, struct peer *p, char cluster_hex[17], char *err);
int pki_peer_of_pem(const char *cert_pem, struct peer *p, char cluster_hex[17], char *err);

/* Reads a whole (small) file as a NUL-terminated string; writes one atomically with mode. */
int pki_read_file(const char *path, struct buf *out, char *err);
int pki_write_file(const char *path, const void *p, size_t n, unsigned mode, char *err);
/* err = "what: <OpenSSL's first queued error>" (the queue is cleared); returns code. */
int pki_ossl_err(char *err, int code, const char *what);

#endif
