/* Secrets and configs on the node side: the values a node opens with its data key
 * (secret/datakey.h) when it needs them, and nowhere else.
 *
 * Where values live: the raft log and snapshots hold each version sealed (secret/seal.h)
 * in the store's secrets table (state/store.h); a task's values reach the node that runs
 * it in that node's assignment document (node/feed.c), still sealed, and are opened only
 * on that node, into a tmpfs of the task (secret/secfs.h) — except on a worker-only node,
 * which holds no key: the leader opens them for it (node/feed.h). Registry credentials are a
 * secret of the internal kind "registry", named by registry host, used by every node. */
#ifndef ORCH_SECRETS_H
#define ORCH_SECRETS_H
#include <stddef.h>
#include <stdint.h>
#include "node/host.h"
#include "util/mem.h"

/* The credentials `orch registry login HOST` stored for a registry host ("ghcr.io",
 * "127.0.0.1:5000"; compared as given, without a scheme): 0 with user and pass filled,
 * E_NOTFOUND when none are stored (pull anonymously), another code with err when they
 * cannot be read (no data key on this node, a value sealed under another key, too long
 * for the buffers). Reads this node's replica of the state (h->store) and its data key
 * (h->data_dir): call it on the node's loop thread and copy the result into a worker
 * job; never log pass. */
int secrets_registry_creds(const struct host *h, const char *host, char *user, size_t user_cap, char *pass,
			   size_t pass_cap, char *err);

/* The same from any thread: a copy of every registry credential, still sealed, taken on
 * the loop thread (secrets_creds_take) and handed to a worker job; secrets_creds_get has
 * the signature of registry/registry.h's reg_creds_fn (ctx: the copy) and opens the one
 * asked for with the node's data key, on the calling thread. */
struct secrets_creds;
struct secrets_creds *secrets_creds_take(const struct host *h);
int secrets_creds_get(void *creds, const char *host, char *user, size_t user_cap, char *pass, size_t pass_cap,
		      char *err);
void secrets_creds_free(struct secrets_creds *c);

/* Seals value for the secret (kind, name) under this node's data key (appended to out). */
int secrets_seal(const char *data_dir, const char *kind, const char *name, const void *value, size_t n,
		 struct buf *out, char *err);
/* Opens a sealed value of (kind, name) with this node's data key, into out (the caller
 * wipes and frees it: secrets_wipe). */
int secrets_open(const char *data_dir, const char *kind, const char *name, const void *blob, size_t n,
		 struct buf *out, char *err);
/* The value of a stored version (0: the newest) from a replica of the state, opened. */
int secrets_open_stored(const struct store *s, const char *data_dir, const char *kind, const char *name,
			uint64_t version, struct buf *out, char *err);
void secrets_wipe(struct buf *b);

#endif
