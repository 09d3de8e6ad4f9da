/* A node's identity, kept in <data-dir>/identity (mode 0600): what lets a node started
 * again on its data directory resume instead of joining again. It holds no token: the node
 * proves itself with its key and certificate in <data-dir>/tls/ (net/tls.h), loaded with
 * it. */
#ifndef ORCH_IDENTITY_H
#define ORCH_IDENTITY_H
#include <stdint.h>
#include "net/tls.h"
#include "net/token.h"

struct identity {
	uint64_t id;
	char name[64];
	char listen[64];    /* IP:PORT bound */
	char advertise[64]; /* IP:PORT peers use (also the raft address) */
	uint8_t cluster_id[CLUSTER_ID_LEN];
	struct tlsctx tls; /* loaded by identity_load (identity_save does not write it) */
};

/* 0 when loaded, E_NOTFOUND when the data dir has no identity, other codes on a bad file
 * or missing TLS credentials. */
int identity_load(const char *data_dir, struct identity *id, char *err);
int identity_save(const char *data_dir, const struct identity *id, char *err);
void identity_remove(const char *data_dir);
uint64_t identity_new_id(void);

#endif
