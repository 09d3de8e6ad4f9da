#include "secret/datakey.h"
#include "util/err.h"
#include "util/layout.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
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

int datakey_load(const char *data_dir, struct datakey *k, char *err)
{
	char path[LAYOUT_PATH_MAX], text[2 * SEAL_KEY_LEN + 2];
	layout_path(path, sizeof path, data_dir, LAYOUT_DATAKEY);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? errf(err, E_NOTFOUND, "this node has no data key (%s): it was created before secrets existed; secrets need a node of a cluster made by this version", path)
				       : errf(err, E_IO, "open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, text, sizeof text);
	close(fd);
	int rc = 0;
	if (n < 2 * SEAL_KEY_LEN || (n > 2 * SEAL_KEY_LEN && text[2 * SEAL_KEY_LEN] != '\n'))
		rc = errf(err, E_INVAL, "%s: not a data key", path);
	else {
		text[2 * SEAL_KEY_LEN] = 0;
		if (hex_decode(text, k->k, sizeof k->k))
			rc = errf(err, E_INVAL, "%s: not a data key", path);
	}
	OPENSSL_cleanse(text, sizeof text);
	return rc;
}

int datakey_save(const char *data_dir, const struct datakey *k, char *err)
{
	char path[LAYOUT_PATH_MAX], tmp[LAYOUT_PATH_MAX + 8], text[2 * SEAL_KEY_LEN + 2];
	layout_path(path, sizeof path, data_dir, LAYOUT_DATAKEY);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errf(err, E_IO, "create %s: %s", tmp, strerror(errno));
	hex_encode(k->k, sizeof k->k, text);
	text[2 * SEAL_KEY_LEN] = '\n';
	int rc = 0;
	if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1) || fsync(fd))
		rc = errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	OPENSSL_cleanse(text, sizeof text);
	close(fd);
	if (!rc && rename(tmp, path))
		rc = errf(err, E_IO, "rename %s: %s", path, strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}

void datakey_remove(const char *data_dir)
{
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
