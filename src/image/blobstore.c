#include "image/blobstore.h"
#include "util/layout.h"
#include "image/fsutil.h"
#include "image/zsrc.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX "sha256:"
#define PREFIX_LEN 7

bool digest_valid(const char *d)
{
	if (!d || strncmp(d, PREFIX, PREFIX_LEN) || strlen(d) != PREFIX_LEN + 64)
		return false;
	for (const char *p = d + PREFIX_LEN; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

void digest_short(const char *d, char *out, size_t size)
{
	snprintf(out, size, "%.*s", PREFIX_LEN + 12, d ? d : "(none)");
}

int blob_init(struct blobstore *s, const char *root, char *err)
{
	char dir[LAYOUT_PATH_MAX];
	if (!layout_path(dir, sizeof dir, root, LAYOUT_BLOBS))
		return errf(err, E_INVAL, "blob store under %s: path too long", root);
	s->dir = xstrdup(dir);
	int rc = fs_mkdir_p(s->dir, 0700, err);
	if (rc) {
		free(s->dir);
		s->dir = NULL;
	}
	return rc;
}

void blob_fini(struct blobstore *s)
{
	free(s->dir);
	s->dir = NULL;
}

char *blob_path(const struct blobstore *s, const char *digest)
{
	if (!digest_valid(digest))
		return NULL;
	return xasprintf("%s/%s", s->dir, digest + PREFIX_LEN);
}

bool blob_has(const struct blobstore *s, const char *digest)
{
	char *p = blob_path(s, digest);
	struct stat st;
	bool ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
	free(p);
	return ok;
}

int blob_open(const struct blobstore *s, const char *digest, char *err)
{
	char *p = blob_path(s, digest);
	if (!p)
		return errf(err, E_INVAL, "invalid digest \"%.80s\": expected sha256:<64 hex>", digest ? digest : "");
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	int e = errno;
	free(p);
	if (fd < 0) {
		char sd[32];
		digest_short(digest, sd, sizeof sd);
		return errf(err, e == ENOENT ? E_NOTFOUND : E_IO, "blob %s: %s", sd, strerror(e));
	}
	return fd;
}

int blob_read_all(const struct blobstore *s, const char *digest, size_t max, struct buf *out, char *err)
{
	int fd = blob_open(s, digest, err);
	if (fd < 0)
		return fd;
	char sd[32];
	digest_short(digest, sd, sizeof sd);
	size_t got = 0;
	for (;;) {
		buf_reserve(out, 65536);
		ssize_t r = read(fd, out->data + out->len, 65536);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return errf(err, E_IO, "read blob %s: %s", sd, strerror(e));
		}
		if (r == 0)
			break;
		out->len += (size_t)r;
		got += (size_t)r;
		if (got > max) {
			close(fd);
			return errf(err, E_INVAL, "blob %s is larger than the %zu byte limit", sd, max);
		}
	}
	close(fd);
	return 0;
}

static void md_hex(EVP_MD_CTX *md, char *out_digest)
{
	uint8_t h[32];
	unsigned hl = 0;
	EVP_DigestFinal_ex(md, h, &hl);
	memcpy(out_digest, PREFIX, PREFIX_LEN);
	hex_encode(h, 32, out_digest + PREFIX_LEN);
}

void sha256_digest(const void *p, size_t n, char *out_digest)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		abort();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, p, n);
	md_hex(md, out_digest);
	EVP_MD_CTX_free(md);
}

int blob_writer_begin(struct blob_writer *w, const struct blobstore *s, char *err)
{
	memset(w, 0, sizeof *w);
	w->store = s;
	w->tmp = xasprintf("%s/.tmp-XXXXXX", s->dir);
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0) {
		int e = errno;
		free(w->tmp);
		w->tmp = NULL;
		return errf(err, E_IO, "create temp blob in %s: %s", s->dir, strerror(e));
	}
	w->md = EVP_MD_CTX_new();
	if (!w->md)
		abort();
	EVP_DigestInit_ex(w->md, EVP_sha256(), NULL);
	return 0;
}

int blob_writer_write(struct blob_writer *w, const void *p, size_t n, char *err)
{
	EVP_DigestUpdate(w->md, p, n);
	w->size += n;
	const char *c = p;
	while (n > 0) {
		ssize_t r = write(w->fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errf(err, E_IO, "write temp blob %s: %s", w->tmp, strerror(errno));
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

void blob_writer_abort(struct blob_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->tmp)
		unlink(w->tmp);
	free(w->tmp);
	w->tmp = NULL;
	EVP_MD_CTX_free(w->md);
	w->md = NULL;
}

int blob_writer_commit(struct blob_writer *w, const char *expected, char *out_digest, bool *created, char *err)
{
	char got[DIGEST_LEN], sd[32], se[32];
	md_hex(w->md, got);
	if (created)
		*created = false;
	if (expected && strcmp(expected, got)) {
		digest_short(got, sd, sizeof sd);
		digest_short(expected, se, sizeof se);
		blob_writer_abort(w);
		return errf(err, E_INVAL, "blob %s: content hashes to %s: corrupt or tampered data rejected", se, sd);
	}
	if (fsync(w->fd)) {
		int e = errno;
		blob_writer_abort(w);
		return errf(err, E_IO, "fsync temp blob: %s", strerror(e));
	}
	char *dst = blob_path(w->store, got);
	struct stat st;
	bool existed = stat(dst, &st) == 0;
	int rc = 0;
	if (!existed && rename(w->tmp, dst))
		rc = errf(err, E_IO, "rename blob into %s: %s", dst, strerror(errno));
	else if (!existed) {
		free(w->tmp); /* renamed: nothing left to unlink */
		w->tmp = NULL;
		if (created)
			*created = true;
	}
	free(dst);
	blob_writer_abort(w);
	if (rc == 0 && out_digest)
		memcpy(out_digest, got, strlen(got) + 1);
	return rc;
}

int blob_put_file(const struct blobstore *s, const char *expected, int src_fd, int64_t size, char *out_digest, char *err)
{
	struct blob_writer w;
	int rc = blob_writer_begin(&w, s, err);
	if (rc)
		return rc;
	uint8_t *b = xmalloc(1 << 16);
	int64_t left = size;
	while (size < 0 || left > 0) {
		size_t want = 1 << 16;
		if (size >= 0 && (uint64_t)left < want)
			want = (size_t)left;
		ssize_t r = read(src_fd, b, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = errf(err, E_IO, "read blob source: %s", strerror(errno));
			break;
		}
		if (r == 0) {
			if (size >= 0)
				rc = errf(err, E_INVAL, "blob source ended after %llu of %lld bytes",
					  (unsigned long long)w.size, (long long)size);
			break;
		}
		if ((rc = blob_writer_write(&w, b, (size_t)r, err)))
			break;
		left -= r;
	}
	free(b);
	if (rc) {
		blob_writer_abort(&w);
		return rc;
	}
	return blob_writer_commit(&w, expected, out_digest, NULL, err);
}

int blob_put_mem(const struct blobstore *s, const char *expected, const void *p, size_t n, char *out_digest, char *err)
{
	struct blob_writer w;
	int rc = blob_writer_begin(&w, s, err);
	if (rc)
		return rc;
	if ((rc = blob_writer_write(&w, p, n, err))) {
		blob_writer_abort(&w);
		return rc;
	}
	return blob_writer_commit(&w, expected, out_digest, NULL, err);
}

int blob_diff_id(const struct blobstore *s, const char *digest, char *out_digest, char *err)
{
	int fd = blob_open(s, digest, err);
	if (fd < 0)
		return fd;
	char label[40];
	snprintf(label, sizeof label, "blob ");
	digest_short(digest, label + 5, sizeof label - 5);
	struct zsrc z;
	int rc = zsrc_open_fd(&z, fd, label, true, err);
	if (!rc && z.kind == ZSRC_PLAIN) {
		memcpy(out_digest, digest, strlen(digest) + 1); /* its own digest: no second read */
	} else if (!rc) {
		rc = zsrc_drain(&z, err);
		if (!rc)
			rc = zsrc_diff_id(&z, out_digest, err);
	}
	zsrc_close(&z);
	close(fd);
	return rc;
}
