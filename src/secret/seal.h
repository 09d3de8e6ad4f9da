/* Sealing: AES-256-GCM under a 32-byte key, the form every secret value takes in the raft
 * log, in snapshots and on the wire to the node that runs a task (secret/secrets.h).
 *
 *   blob = "OSL1" | key id (8) | nonce (12, random) | ciphertext | tag (16)
 *
 * The key id (a hash of the key, not the key) lets a node tell "sealed under another data
 * key" from "tampered with". The associated data binds a value to what it is (its kind and
 * name): a sealed value moved under another name does not open. */
#ifndef ORCH_SEAL_H
#define ORCH_SEAL_H
#include <stddef.h>
#include <stdint.h>
#include "util/mem.h"

#define SEAL_KEY_LEN 32
#define SEAL_ID_LEN 8
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_OVERHEAD (4 + SEAL_ID_LEN + SEAL_NONCE_LEN + SEAL_TAG_LEN)

void seal_key_id(const uint8_t key[SEAL_KEY_LEN], uint8_t out[SEAL_ID_LEN]);
/* Appends the blob of pt to out. */
int seal_close(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aad_len, const void *pt, size_t n,
	       struct buf *out, char *err);
/* The same with a nonce derived from (key, aad, value) instead of a random one: the same
 * value under the same name seals to the same bytes, so a spec holding it compares and
 * hashes as its clear form did (a deploy that changes nothing stays "unchanged"; a changed
 * value still rolls the service). It reveals only that two sealed values are equal. */
int seal_close_fixed(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aad_len, const void *pt, size_t n,
		     struct buf *out, char *err);
/* Appends the value of blob to out: E_AUTH when the blob was sealed under another key or
 * does not verify (altered, or bound to another name), E_INVAL when it is not a blob. The
 * caller wipes out (OPENSSL_cleanse) once done with it. */
int seal_open(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aad_len, const void *blob, size_t n,
	      struct buf *out, char *err);

#endif
