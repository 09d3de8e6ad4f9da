/* Secrets and configs on the node side: the values a node opens with its data key
 * (secret/datakey.h) when it needs them, and nowhere else.
 *
 * Where values live: the raft log and snapshots hold each version sealed (secret/seal.h)
 * in the store's secrets table (state/store.h); a task's values reach the node that runs
 * it in that node's assignment document (node/feed.c), still sealed, and are opened only
 * on that node, into a tmpfs of the task (secret/secfs.h). Registry credentials are a
 * secret of the internal kind "registry", named by registry host, used by every node. */
#ifndef ORCH_SECRETS_H
#define ORCH_SECRETS_H
#include <stddef.h>
#include "node/host.h"

/* The credentials `orch registry login HOST` stored for a registry host ("ghcr.io",
 * "127.0.0.1:5000"; compared as given, without a scheme): 0 with user and pass filled,
 * E_NOTFOUND when none are stored (pull anonymously), another code with err when they
 * cannot be read (no data key on this node, a value sealed under another key, too long
 * for the buffers). Reads this node's replica of the state (h->store) and its data key
 * (h->data_dir): call it on the node's loop thread and copy the result into a worker
 * job; never log pass. */
int secrets_registry_creds(const struct host *h, const char *host, char *user, size_t user_cap, char *pass,
			   size_t pass_cap, char *err);

#endif
