/* The unlock key of an autolocked cluster (`orch init --autolock`, as Swarm's SWMKEY): 32
 * random bytes the operator holds, shown as "ORCHKEY-1-<64 hex>". With autolock, each
 * node's data key file holds the data key sealed under it (secret/datakey.h), so a node
 * restarted from its data directory stays locked until `orch unlock` gives it the key.
 *
 * The cluster's current unlock key lives in the raft log as a secret of the internal kind
 * "unlock" (name "cluster"), sealed under the data key like any secret: any unlocked
 * manager can show it (`orch unlock-key`) and a rotation reaches every node through the
 * log; each node then re-seals its own file (node/autolock.c). A record of size 0 means
 * autolock was turned off. */
#ifndef ORCH_UNLOCK_H
#define ORCH_UNLOCK_H
#include <stdint.h>
#include "secret/seal.h"

#define UNLOCK_PREFIX "ORCHKEY-1-"
#define UNLOCK_STR_LEN (10 + 2 * SEAL_KEY_LEN)
#define UNLOCK_KIND "unlock"
#define UNLOCK_NAME "cluster"

struct unlock_key {
	uint8_t k[SEAL_KEY_LEN];
};

void unlock_generate(struct unlock_key *u);
void unlock_format(const struct unlock_key *u, char out[UNLOCK_STR_LEN + 1]);
/* text as the operator typed it (surrounding blanks and a newline allowed) */
int unlock_parse(const char *text, struct unlock_key *u, char *err);
/* The key that seals the data key file: derived, so the unlock key itself seals nothing. */
void unlock_wrap_key(const struct unlock_key *u, uint8_t out[SEAL_KEY_LEN]);
void unlock_wipe(struct unlock_key *u);

#endif
