/* The cluster data key: 32 random bytes made by `orch init`, under which every secret,
 * config and registry credential is sealed (secret/seal.h) before it enters the raft log.
 * It lives in <data-dir>/datakey (mode 0600, util/layout.h) on every node that holds the
 * raft log — every manager node, since any may become a voter or leader; never on a
 * worker-only node (node/worker.h) — and nowhere in the log, snapshots or any other file.
 *
 * A joining node gets it in the leader's reply to its join (node/rpc_cluster.c), which rides
 * on TLS (net/tls.h), wrapped (sealed) under a key derived from the join token's secret as
 * a second layer; only a manager-capable joiner gets it (a worker-token joiner never holds
 * the log). The CA key and the join tokens' secrets are sealed under it in the state
 * (node/creds.h). With autolock the file would hold the key sealed under the operator's
 * unlock key (datakey_load then needs the unlock key). */
#ifndef ORCH_DATAKEY_H
#define ORCH_DATAKEY_H
#include <stddef.h>
#include <stdint.h>
#include "net/token.h"
#include "secret/seal.h"
#include "util/mem.h"

struct datakey {
	uint8_t k[SEAL_KEY_LEN];
};

void datakey_generate(struct datakey *k);
/* 0, E_NOTFOUND when the data dir has no key (a node from before secrets existed), other
 * codes on an unreadable or malformed file. */
int datakey_load(const char *data_dir, struct datakey *k, char *err);
/* Written atomically with mode 0600. */
int datakey_save(const char *data_dir, const struct datakey *k, char *err);
void datakey_remove(const char *data_dir);
void datakey_wipe(struct datakey *k);

/* The key sealed for a joiner that holds the token (appended to out), and back. */
int datakey_wrap(const struct datakey *k, const struct token *t, struct buf *out, char *err);
int datakey_unwrap(const void *blob, size_t n, const struct token *t, struct datakey *k, char *err);

#endif
