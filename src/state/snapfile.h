/* The backup file of orch snapshot save / orch init --restore (orch-snapshot(1)):
 *
 *   "ORCHSNAP" | header length (4, big-endian) | header (msgpack map) | body | sha256 (32)
 *
 * The trailing sha256 covers every byte before it, so a truncated or altered file is
 * refused before anything reads its body. The header says what the file is (format,
 * the orch version and cluster that wrote it, the raft index and term of the state, when,
 * how many objects of each kind) and how the cluster's data key travels: "none" (the
 * state held nothing sealed), "passphrase" (sealed under a key derived from the
 * operator's passphrase with scrypt) or "clear" (the key itself: the file is then as
 * secret as the data key, written 0600). The body is the body of a state.load command
 * (state/cmd.h): the services, secrets, configs, registry credentials, images and
 * settings of the state; nodes, tasks, volumes, users, tokens and the CA stay behind
 * (a restored cluster has its own, orch(8) BACKUPS). */
#ifndef ORCH_SNAPFILE_H
#define ORCH_SNAPFILE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "secret/seal.h"
#include "state/store.h"
#include "util/mem.h"

#define SNAPFILE_MAGIC "ORCHSNAP"
#define SNAPFILE_FORMAT 1

enum snapfile_key { SNAPKEY_NONE, SNAPKEY_PASSPHRASE, SNAPKEY_CLEAR };

struct snapfile_meta {
	uint64_t format;
	char version[32];    /* orch's, of the node that wrote it */
	char cluster[33];    /* the cluster id, hex */
	uint64_t index, term, created_at;
	uint64_t services, secrets, images, kv;
	enum snapfile_key key;
};

/* What the state holds sealed under the data key (secrets, configs, registry
 * credentials, services' environments): a file of it needs the key. */
bool snapfile_needs_key(const struct store *s);
#define SNAPFILE_SALT_LEN 16
/* A key derived from the operator's passphrase (scrypt, ~100 ms and 32 MiB: the CLI
 * derives it, never the node's loop thread) with the random salt it was derived with. */
struct snapfile_kek {
	uint8_t salt[SNAPFILE_SALT_LEN];
	uint8_t k[SEAL_KEY_LEN];
};
int snapfile_kek_derive(const char *passphrase, struct snapfile_kek *kek, char *err);

/* The file of the state s (appended to out). key: the data key (NULL: the state must hold
 * nothing sealed); kek: seal it under that (NULL: the key in clear). */
int snapfile_build(const struct store *s, struct snapfile_meta *m, const uint8_t *key, const struct snapfile_kek *kek,
		   struct buf *out, char *err);
/* Checks a file (magic, checksum, header) and gives its header and body; E_INVAL saying
 * what is wrong, E_UNSUPP for a format this binary does not know. */
int snapfile_parse(const void *p, size_t n, struct snapfile_meta *m, const uint8_t **body, size_t *body_len,
		   char *err);
/* Applies a body to an empty cluster in a scratch store (what the new cluster's state.load
 * will do): 0, or the error that command would meet. */
int snapfile_check(const uint8_t *body, size_t n, char *err);
/* The data key the file carries: E_INVAL when it carries none, E_AUTH for a wrong
 * passphrase (passphrase ignored for a key in clear). */
int snapfile_key(const void *p, size_t n, const char *passphrase, uint8_t key[SEAL_KEY_LEN], char *err);

#endif
