/* A node's credentials and the cluster's, around pki/pki.h: what `orch init` creates, what
 * the leader reads from the replicated state to sign a joiner's CSR, and the join tokens.
 *
 * <data-dir>/tls/ holds node.key (0600), node.crt and ca.crt (net/tls.h). `orch init`
 * also leaves tls/bootstrap (0600) for its first leadership: the CA key and both token
 * secrets, sealed under the data key (secret/seal.h), which the leader puts into the
 * cluster.init command and then deletes. In the state they stay sealed: the CA key and the
 * secrets never enter the raft log in clear. */
#ifndef ORCH_CREDS_H
#define ORCH_CREDS_H
#include <stdbool.h>
#include <stdint.h>
#include "net/peer.h"
#include "net/token.h"
#include "state/store.h"
#include "util/mem.h"

#define CREDS_DEFAULT_DAYS 90
#define CREDS_MIN_SECS 60 /* the shortest --cert-expiry (tests) */

struct creds_init {
	const char *ca_cert_file, *ca_key_file; /* NULL: a new CA */
	uint64_t cert_secs;                     /* 0: the default */
};

/* orch init: the CA, this node's key and certificate (a manager), both tokens; writes
 * tls/ and tls/bootstrap under data_dir (whose datakey must exist). mgr gets the manager
 * token (to print), wrk the worker one. */
int creds_init(const char *data_dir, const uint8_t cluster_id[CLUSTER_ID_LEN], uint64_t node_id,
	       const struct creds_init *o, struct token *mgr, struct token *wrk, char *err);

/* The leader's first cluster.init: the fields tls/bootstrap gives (strings malloc'd into
 * b, freed with creds_boot_free). E_NOTFOUND when there is none. */
int creds_boot_load(const char *data_dir, struct cmd_cluster_init *b, char *err);
void creds_boot_free(struct cmd_cluster_init *b);
void creds_boot_remove(const char *data_dir);

/* Which token a joiner's secret is: 1 manager, 0 worker, -1 neither. */
int creds_token_kind(const struct store *s, const uint8_t secret[SECRET_LEN]);
/* Signs a joiner's (or a renewing node's) CSR with the CA of the state (its key opened
 * with the data key), for the cluster's validity (creds_validity). */
int creds_sign_node(const struct store *s, const char *data_dir, const char *csr, uint64_t node_id, bool manager,
		    struct buf *cert, char *err);
/* How long the cluster's node certificates are valid, in seconds. */
uint64_t creds_validity(const struct store *s);
/* The same for a user's client certificate (CN=user, OU=user:<role>), valid `days`. */
int creds_sign_user(const struct store *s, const char *data_dir, const char *csr, const char *user,
		    enum peer_role role, uint64_t days, struct buf *cert, char *err);
/* The token of the state (worker or manager), opened with the data key. */
int creds_token(const struct store *s, const char *data_dir, bool worker, struct token *t, char *err);
/* A new token for a rotation (t: the whole token, its cluster and CA pin from the state):
 * *hash and *sealed malloc'd (the cluster.tokens fields). */
int creds_token_new(const struct store *s, const char *data_dir, bool worker, struct token *t, char **hash,
		    char **sealed, char *err);

/* A CA rotation's start (node/carot.h): a new CA (generated, or new_cert/new_key given,
 * PEM) cross-signed by the current one; fills the cluster.ca command (strings malloc'd,
 * creds_ca_free). *fp: the new CA's fingerprint. */
int creds_ca_rotate(const struct store *s, const char *data_dir, const char *new_cert, const char *new_key,
		    struct cmd_cluster_ca *out, char fp[65], char *err);
void creds_ca_free(struct cmd_cluster_ca *c);
/* What a node's tls/node.crt holds after a signing: the certificate, then during a CA
 * rotation the cross-signed new CA (malloc'd). */
char *creds_chain(const struct store *s, const char *cert);
/* A joiner: a new key and its CSR (key kept in memory until the reply comes). */
int creds_csr(struct buf *key, struct buf *csr, char *err);
/* A node that left: its key and certificates go with its identity. */
void creds_remove(const char *data_dir);
/* A joiner after the reply: writes tls/ (key 0600). */
int creds_save(const char *data_dir, const char *key, const char *cert, const char *bundle, char *err);
/* A renewal: the new key, certificate and bundle replace tls/'s so that a crash at any
 * point leaves either the old pair or the new one (tls/next.key and next.crt first, then
 * renamed over; creds_recover finishes or undoes a half-done one). */
int creds_renew_save(const char *data_dir, const char *key, const char *cert, const char *bundle, char *err);
void creds_recover(const char *data_dir);

#endif
