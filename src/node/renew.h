/* Certificate renewal: every node replaces its key and certificate well before the
 * certificate expires, so a cluster lives past its certificates' lifetime with no one
 * acting. Once about 2/3 of the lifetime has passed (less a jitter of up to a tenth of it,
 * fixed per node, so a cluster's nodes spread their renewals), the node makes a new key
 * and CSR and sends it over its link to the leader (cert.renew, an op only a node's own
 * certificate may call); the leader signs it for the node and role its state records
 * (never what the request says), with the current CA, and records the new expiry in the
 * node's record. The leader renews its own by signing locally. The node writes tls/
 * (node/creds.h creds_renew_save) and reloads its TLS contexts: new connections use the
 * new certificate, open ones keep theirs.
 *
 * A node whose certificate already expired (off longer than its lifetime) cannot renew:
 * no peer accepts it any more. It says so and how to come back: remove it on a manager
 * (orch node rm), wipe its data directory and join again with a token. */
#ifndef ORCH_RENEW_H
#define ORCH_RENEW_H
#include <stdbool.h>
#include <stdint.h>
#include "util/mem.h"

struct daemon;
struct conn;
struct req_cert_renew;

struct renew_state {
	int64_t due;        /* when to renew (seconds since the epoch), 0: not read yet */
	int64_t not_after;  /* of the certificate in use */
	uint64_t sent_ms;   /* a request in flight since (the node's monotonic clock), 0: none */
	uint64_t warned_ms; /* the last "expired" error logged */
	unsigned generation; /* renewals done by this process (a reply for an older one is dropped) */
	bool recorded;      /* while leading: its own record's expiry checked */
	bool carot_inflight; /* while leading: the end of a CA rotation submitted (node/carot.h) */
	uint64_t ca_tag;    /* of the bundle in tls/ca.crt (feed_ca_tag) */
	uint64_t want_tag;  /* of the cluster's bundle, as a worker's feed said (0: not yet) */
};

/* When a certificate valid from not_before (ours are backdated by PKI_BACKDATE_S) to
 * not_after is renewed by node id: pure, for tests. */
int64_t renew_due(int64_t not_before, int64_t not_after, uint64_t node_id);

/* Reads the certificate in use at start. An expired one: E_AUTH with the way back for a
 * worker (nobody will ever accept it); logged for a manager, which may be the sole voter
 * and then signs its own once it leads. */
int renew_start(struct daemon *d, char *err);
/* Renews when due (the daemon's periodic tick). */
void renew_tick(struct daemon *d);
/* The leader: records in node_id's record the expiry and CA of cert, just issued. */
void renew_record(struct daemon *d, uint64_t node_id, const char *cert);

#endif
