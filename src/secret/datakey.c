#include "secret/datakey.h"
#include "util/err.h"
#include "util/layout.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void datakey_generate(struct datakey *k)
{
	random_bytes(k->k, sizeof k->k);
}

void datakey_wipe(struct datakey *k)
{
	OPENSSL_cleanse(k->k, sizeof k->k);
}

/* ---- the keys this process holds unlocked --------------------------------------------- */

/* An autolocked node's file holds its key sealed; once unlocked the key stays in this
 * process's memory only, by data dir (several nodes share a process in the simulation),
 * read by the loop and by worker threads alike. */
static struct held {
	char dir[LAYOUT_PATH_MAX];
	struct datakey k;
} *held;
static size_t nheld, capheld;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

static bool held_get(const char *dir, struct datakey *k)
{
	bool found = false;
	pthread_mutex_lock(&held_mu);
	for (size_t i = 0; i < nheld && !found; i++)
		if (!strcmp(held[i].dir, dir)) {
			*k = held[i].k;
			found = true;
		}
	pthread_mutex_unlock(&held_mu);
	return found;
}

static void held_set(const char *dir, const struct datakey *k)
{
	pthread_mutex_lock(&held_mu);
	size_t i = 0;
	while (i < nheld && strcmp(held[i].dir, dir))
		i++;
	if (i == nheld) {
		if (nheld == capheld) {
			/* moved by hand: the old block is wiped before it is freed */
			size_t cap = capheld ? capheld * 2 : 4;
			struct held *bigger = xcalloc(cap, sizeof *bigger);
			if (nheld)
				memcpy(bigger, held, nheld * sizeof *held);
			if (held)
				OPENSSL_cleanse(held, capheld * sizeof *held);
			free(held);
			held = bigger;
			capheld = cap;
		}
		snprintf(held[i].dir, sizeof held[i].dir, "%s", dir);
		nheld++;
	}
	held[i].k = *k;
	pthread_mutex_unlock(&held_mu);
}

void datakey_forget(const char *data_dir)
{
	pthread_mutex_lock(&held_mu);
	for (size_t i = 0; i < nheld; i++)
		if (!strcmp(held[i].dir, data_dir)) {
			OPENSSL_cleanse(&held[i].k, sizeof held[i].k);
			held[i] = held[--nheld];
			break;
		}
	pthread_mutex_unlock(&held_mu);
}

/* ---- the file ---------------------------------------------------------------------------- */

#define LOCKED_TAG "locked1 "
#define LOCK_AAD "orch data key lock"
#define FILE_MAX 512

/* The file's text (NUL-terminated, wiped by the caller). */
static int read_file(const char *data_dir, char *text, char *err)
{
	char path[LAYOUT_PATH_MAX];
	layout_path(path, sizeof path, data_dir, LAYOUT_DATAKEY);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? errf(err, E_NOTFOUND, "this node has no data key (%s): it was created before secrets existed; secrets need a node of a cluster made by this version", path)
				       : errf(err, E_IO, "open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, text, FILE_MAX - 1);
	close(fd);
	if (n < 0)
		return errf(err, E_IO, "read %s: %s", path, strerror(errno));
	text[n] = 0;
	return 0;
}

/* A locked file's parts: the id of the unlock record it is sealed for, the sealed key. */
static int parse_locked(const char *text, uint64_t *lock_id, uint8_t *blob, size_t *blob_len)
{
	const char *p = text + strlen(LOCKED_TAG);
	char idhex[17], *end;
	if (strlen(p) < 17 || p[16] != ' ')
		return -1;
	memcpy(idhex, p, 16);
	idhex[16] = 0;
	*lock_id = strtoull(idhex, &end, 16);
	if (*end)
		return -1;
	p += 17;
	size_t hn = strcspn(p, "\n");
	if (hn % 2 || hn / 2 != SEAL_KEY_LEN + SEAL_OVERHEAD)
		return -1;
	char hex[2 * (SEAL_KEY_LEN + SEAL_OVERHEAD) + 1];
	memcpy(hex, p, hn);
	hex[hn] = 0;
	*blob_len = hn / 2;
	return hex_decode(hex, blob, *blob_len);
}

int datakey_lock_state(const char *data_dir, uint64_t *lock_id, char *err)
{
	char text[FILE_MAX];
	*lock_id = 0;
	int rc = read_file(data_dir, text, err);
	if (rc)
		return rc;
	uint8_t blob[SEAL_KEY_LEN + SEAL_OVERHEAD];
	size_t bn;
	if (strncmp(text, LOCKED_TAG, strlen(LOCKED_TAG)))
		rc = 0;
	else if (parse_locked(text, lock_id, blob, &bn))
		rc = errf(err, E_INVAL, "the data key file of %s is damaged", data_dir);
	else
		rc = 1;
	OPENSSL_cleanse(text, sizeof text);
	return rc;
}

bool datakey_locked(const char *data_dir)
{
	struct datakey k;
	uint64_t id;
	char err[ERR_LEN];
	if (held_get(data_dir, &k)) {
		datakey_wipe(&k);
		return false;
	}
	return datakey_lock_state(data_dir, &id, err) == 1;
}

int datakey_load(const char *data_dir, struct datakey *k, char *err)
{
	if (held_get(data_dir, k))
		return 0;
	char text[FILE_MAX];
	int rc = read_file(data_dir, text, err);
	if (rc)
		return rc;
	size_t n = strcspn(text, "\n");
	if (!strncmp(text, LOCKED_TAG, strlen(LOCKED_TAG)))
		rc = errf(err, E_AUTH, "this node is locked (autolock): give it the unlock key with orch unlock");
	else if (n != 2 * SEAL_KEY_LEN) {
		char path[LAYOUT_PATH_MAX];
		layout_path(path, sizeof path, data_dir, LAYOUT_DATAKEY);
		rc = errf(err, E_INVAL, "%s: not a data key", path);
	} else {
		text[2 * SEAL_KEY_LEN] = 0;
		if (hex_decode(text, k->k, sizeof k->k))
			rc = errf(err, E_INVAL, "the data key file of %s is not a data key", data_dir);
	}
	OPENSSL_cleanse(text, sizeof text);
	return rc;
}

int datakey_unlock(const char *data_dir, const struct unlock_key *u, char *err)
{
	char text[FILE_MAX];
	int rc = read_file(data_dir, text, err);
	if (rc)
		return rc;
	uint8_t blob[SEAL_KEY_LEN + SEAL_OVERHEAD], wk[SEAL_KEY_LEN];
	size_t bn = 0;
	uint64_t id;
	if (strncmp(text, LOCKED_TAG, strlen(LOCKED_TAG)) || parse_locked(text, &id, blob, &bn))
		rc = errf(err, E_STATE, "this node is not locked");
	OPENSSL_cleanse(text, sizeof text);
	if (rc)
		return rc;
	unlock_wrap_key(u, wk);
	struct buf out = {0};
	char e2[ERR_LEN];
	rc = seal_open(wk, LOCK_AAD, strlen(LOCK_AAD), blob, bn, &out, e2);
	OPENSSL_cleanse(wk, sizeof wk);
	if (rc || out.len != SEAL_KEY_LEN)
		rc = errf(err, E_AUTH, "wrong unlock key: the node stays locked (orch unlock-key on an unlocked manager "
			  "shows the current one)");
	else {
		struct datakey k;
		memcpy(k.k, out.data, SEAL_KEY_LEN);
		held_set(data_dir, &k);
		datakey_wipe(&k);
	}
	if (out.data)
		OPENSSL_cleanse(out.data, out.len);
	buf_free(&out);
	return rc;
}

/* Writes text atomically with mode 0600. */
static int write_file(const char *data_dir, const char *text, size_t n, char *err)
{
	char path[LAYOUT_PATH_MAX], tmp[LAYOUT_PATH_MAX + 8];
	layout_path(path, sizeof path, data_dir, LAYOUT_DATAKEY);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errf(err, E_IO, "create %s: %s", tmp, strerror(errno));
	int rc = 0;
	if (write(fd, text, n) != (ssize_t)n || fsync(fd))
		rc = errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	close(fd);
	if (!rc && rename(tmp, path))
		rc = errf(err, E_IO, "rename %s: %s", path, strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}

int datakey_save(const char *data_dir, const struct datakey *k, char *err)
{
	return datakey_save_locked(data_dir, k, NULL, 0, err);
}

int datakey_save_locked(const char *data_dir, const struct datakey *k, const struct unlock_key *u, uint64_t lock_id,
			char *err)
{
	char text[FILE_MAX];
	size_t n;
	int rc = 0;
	if (!u) {
		hex_encode(k->k, sizeof k->k, text);
		n = 2 * SEAL_KEY_LEN;
	} else {
		uint8_t wk[SEAL_KEY_LEN];
		unlock_wrap_key(u, wk);
		struct buf blob = {0};
		rc = seal_close(wk, LOCK_AAD, strlen(LOCK_AAD), k->k, sizeof k->k, &blob, err);
		OPENSSL_cleanse(wk, sizeof wk);
		if (!rc) {
			n = (size_t)snprintf(text, sizeof text, "%s%016llx ", LOCKED_TAG, (unsigned long long)lock_id);
			hex_encode(blob.data, blob.len, text + n);
			n += 2 * blob.len;
		}
		buf_free(&blob);
		if (rc)
			return rc;
		held_set(data_dir, k); /* locked on disk, held in memory */
	}
	text[n++] = '\n';
	rc = write_file(data_dir, text, n, err);
	OPENSSL_cleanse(text, sizeof text);
	return rc;
}

void datakey_remove(const char *data_dir)
{
	datakey_forget(data_dir);
	char path[LAYOUT_PATH_MAX];
	layout_path(path, sizeof path, data_dir, LAYOUT_DATAKEY);
	unlink(path);
}

/* The wrapping key: an HMAC of the token secret under a fixed label, so it is never the
 * secret itself (which also authenticates connections). */
static void wrap_key(const struct token *t, uint8_t out[SEAL_KEY_LEN])
{
	unsigned len = SEAL_KEY_LEN;
	HMAC(EVP_sha256(), t->secret, SECRET_LEN, (const uint8_t *)"orch data key wrap v1", 21, out, &len);
}

int datakey_wrap(const struct datakey *k, const struct token *t, struct buf *out, char *err)
{
	uint8_t wk[SEAL_KEY_LEN];
	wrap_key(t, wk);
	int rc = seal_close(wk, t->cluster_id, CLUSTER_ID_LEN, k->k, sizeof k->k, out, err);
	OPENSSL_cleanse(wk, sizeof wk);
	return rc;
}

int datakey_unwrap(const void *blob, size_t n, const struct token *t, struct datakey *k, char *err)
{
	uint8_t wk[SEAL_KEY_LEN];
	wrap_key(t, wk);
	struct buf b = {0};
	int rc = seal_open(wk, t->cluster_id, CLUSTER_ID_LEN, blob, n, &b, err);
	OPENSSL_cleanse(wk, sizeof wk);
	if (!rc && b.len != sizeof k->k)
		rc = errf(err, E_INVAL, "the data key in the join reply has the wrong length");
	if (!rc)
		memcpy(k->k, b.data, sizeof k->k);
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	return rc;
}
