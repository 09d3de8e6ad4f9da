/* Autolock on a node (secret/unlock.h has the keys and where they live).
 *
 * A node whose data key file is sealed, and which holds no unlocked copy, starts locked:
 * it serves its local socket only (status, unlock), runs no raft, no agent, no task, opens
 * no node port. `orch unlock` gives it the unlock key; a wrong key is refused and changes
 * nothing; the right one lets the node start as usual.
 *
 * The cluster's unlock key is a record in the log (kind "unlock"); each node re-seals its
 * own file when it applies a newer record than the one its file was sealed for (the id
 * kept in the file): under the new key after a rotation or when autolock was turned on,
 * in clear when turned off. Joiners do the same once caught up. Only a newer record acts,
 * so a node replaying an older state never unseals its file. */
#ifndef ORCH_AUTOLOCK_H
#define ORCH_AUTOLOCK_H
#include <stdbool.h>
#include <stdint.h>

struct daemon;
struct conn;

/* At start: 1 (and the node stays locked) when the key file is sealed and this process
 * holds no copy; 0 to go on (noting which record the file is sealed for); an error code
 * for a damaged key file (the node does not start). */
int autolock_gate(struct daemon *d, char *err);
/* The status of a locked node (the only thing it tells). */
void autolock_status(struct daemon *d, struct conn *c, uint64_t id);
/* The join reply's part (a map's fields): with autolock on, the unlock key wrapped under
 * the joiner's token secret like the data key ("unlock") and its record ("unlock_id"), so
 * a joiner's file is sealed from the start. */
struct mpw;
struct token;
void autolock_join_reply(struct daemon *d, struct mpw *w, const struct token *joiner);
/* Every tick of an unlocked node: records init's key once leading, re-seals the file. */
void autolock_tick(struct daemon *d);

#endif
