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
 * (node/creds.h). With autolock the file holds the key sealed under the operator's unlock
 * key (secret/unlock.h): the process holds the key in memory once `orch unlock` opened the
 * file (datakey_unlock), and datakey_load finds it there. */
#ifndef ORCH_DATAKEY_H
#define ORCH_DATAKEY_H
#include <stddef.h>
#include <stdint.h>
#include "net/token.h"
#include "secret/seal.h"
#include "secret/unlock.h"
#include <stdbool.h>
#include "util/mem.h"

struct datakey {
	uint8_t k[SEAL_KEY_LEN];
};

void datakey_generate(struct datakey *k);
/* 0, E_NOTFOUND when the data dir has no key (a node from before secrets existed), E_AUTH
 * when the file is locked and this process holds no unlocked copy, other codes on an
 * unreadable or malformed file. */
int datakey_load(const char *data_dir, struct datakey *k, char *err);
/* Written atomically with mode 0600: in clear (u NULL), or sealed under the unlock key u
 * (secret/unlock.h) for the unlock record lock_id; a sealed key is also held in this
 * process's memory, where datakey_load finds it. */
int datakey_save(const char *data_dir, const struct datakey *k, char *err);
int datakey_save_locked(const char *data_dir, const struct datakey *k, const struct unlock_key *u, uint64_t lock_id,
			char *err);
/* 1 when the file holds the key sealed (lock_id: the unlock record it was sealed for),
 * 0 in clear, or an error code. */
int datakey_lock_state(const char *data_dir, uint64_t *lock_id, char *err);
/* The file is sealed and this process holds no unlocked copy: the node is locked. */
bool datakey_locked(const char *data_dir);
/* Opens the sealed file with u and holds the key in memory: E_AUTH for a wrong key
 * (nothing changes), E_STATE when the file is not sealed. */
int datakey_unlock(const char *data_dir, const struct unlock_key *u, char *err);
/* Drops this process's unlocked copy (the node stops or leaves). */
void datakey_forget(const char *data_dir);
void datakey_remove(const char *data_dir);
void datakey_wipe(struct datakey *k);

/* The key sealed for a joiner that holds the token (appended to out), and back. */
int datakey_wrap(const struct datakey *k, const struct token *t, struct buf *out, char *err);
int datakey_unwrap(const void *blob, size_t n, const struct token *t, struct datakey *k, char *err);

#endif
