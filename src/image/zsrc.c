#include "image/zsrc.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* Frames needing a window above this are refused rather than given the memory: 2^27
 * (128 MiB) is zstd's own default limit and what `zstd -19` and skopeo stay under. */
#define ZSTD_WINDOW_LOG_MAX 27

const char *zsrc_kind_name(enum zsrc_kind k)
{
	return k == ZSRC_GZIP ? "gzip" : k == ZSRC_ZSTD ? "zstd" : "uncompressed";
}

static ssize_t fd_read(void *ctx, void *p, size_t n, char *err)
{
	struct zsrc *z = ctx;
	for (;;) {
		ssize_t r = read(z->fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errf(err, E_IO, "%s: read: %s", z->label, strerror(errno));
		return r;
	}
}

/* Appends raw input after what the buffer still holds (compacting it first). */
static int fill(struct zsrc *z, char *err)
{
	if (z->eof)
		return 0;
	if (z->in_pos) {
		memmove(z->in, z->in + z->in_pos, z->in_len - z->in_pos);
		z->in_len -= z->in_pos;
		z->in_pos = 0;
	}
	if (z->in_len == ZSRC_INBUF)
		return 0;
	ssize_t n = z->read(z->ctx, z->in + z->in_len, ZSRC_INBUF - z->in_len, err);
	if (n < 0)
		return (int)n;
	if (n == 0)
		z->eof = true;
	z->in_len += (size_t)n;
	return 0;
}

static bool is_zstd(const uint8_t *b)
{
	/* a frame (28 b5 2f fd) or a skippable frame (5X 2a 4d 18) */
	return (b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) ||
	       ((b[0] & 0xf0) == 0x50 && b[1] == 0x2a && b[2] == 0x4d && b[3] == 0x18);
}

static int start(struct zsrc *z, zsrc_read_fn fn, void *ctx, const char *label, bool hash, char *err)
{
	z->read = fn;
	z->ctx = ctx;
	z->label = xstrdup(label ? label : "stream");
	z->in = xmalloc(ZSRC_INBUF);
	if (hash) {
		z->md = EVP_MD_CTX_new();
		if (!z->md)
			abort();
		EVP_DigestInit_ex(z->md, EVP_sha256(), NULL);
	}
	/* The magic needs 4 bytes; a source may hand them over one at a time. */
	while (z->in_len < 4 && !z->eof) {
		int rc = fill(z, err);
		if (rc)
			return rc;
	}
	if (z->in_len >= 2 && z->in[0] == 0x1f && z->in[1] == 0x8b) {
		z_stream *zs = xcalloc(1, sizeof *zs);
		if (inflateInit2(zs, 15 + 16) != Z_OK) {
			free(zs);
			return errf(err, E_FAIL, "%s: cannot start the gzip decoder", z->label);
		}
		z->dec = zs;
		z->kind = ZSRC_GZIP;
	} else if (z->in_len >= 4 && is_zstd(z->in)) {
		ZSTD_DStream *ds = ZSTD_createDStream();
		if (!ds || ZSTD_isError(ZSTD_DCtx_setParameter(ds, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX))) {
			ZSTD_freeDStream(ds);
			return errf(err, E_FAIL, "%s: cannot start the zstd decoder", z->label);
		}
		z->dec = ds;
		z->kind = ZSRC_ZSTD;
	}
	return 0;
}

int zsrc_open(struct zsrc *z, zsrc_read_fn fn, void *ctx, const char *label, bool hash, char *err)
{
	memset(z, 0, sizeof *z);
	z->fd = -1;
	return start(z, fn, ctx, label, hash, err);
}

int zsrc_open_fd(struct zsrc *z, int fd, const char *label, bool hash, char *err)
{
	memset(z, 0, sizeof *z);
	z->fd = fd;
	return start(z, fd_read, z, label, hash, err);
}

static ssize_t truncated(struct zsrc *z, char *err)
{
	return errf(err, E_INVAL, "%s: truncated %s stream after %llu bytes of content", z->label, zsrc_kind_name(z->kind),
		    (unsigned long long)z->out);
}

static ssize_t read_plain(struct zsrc *z, uint8_t *p, size_t n, char *err)
{
	if (z->in_pos == z->in_len) {
		int rc = fill(z, err);
		if (rc)
			return rc;
	}
	size_t k = z->in_len - z->in_pos;
	if (k > n)
		k = n;
	memcpy(p, z->in + z->in_pos, k);
	z->in_pos += k;
	return (ssize_t)k;
}

static ssize_t read_gzip(struct zsrc *z, uint8_t *p, size_t n, char *err)
{
	z_stream *zs = z->dec;
	int rc;
	for (;;) {
		if (z->in_pos == z->in_len && (rc = fill(z, err)))
			return rc;
		if (z->frame_end) {
			if (z->in_pos == z->in_len)
				return 0;
			if (inflateReset(zs) != Z_OK)
				return errf(err, E_INVAL, "%s: corrupt gzip data", z->label);
			z->frame_end = false;
		}
		zs->next_in = z->in + z->in_pos;
		zs->avail_in = (uInt)(z->in_len - z->in_pos);
		zs->next_out = p;
		zs->avail_out = (uInt)(n > (1u << 30) ? (1u << 30) : n);
		uInt before = zs->avail_out;
		int r = inflate(zs, Z_NO_FLUSH);
		z->in_pos = z->in_len - zs->avail_in;
		size_t got = before - zs->avail_out;
		if (r == Z_STREAM_END)
			z->frame_end = true;
		else if (r == Z_BUF_ERROR && z->eof && z->in_pos == z->in_len)
			return truncated(z, err);
		else if (r != Z_OK && r != Z_BUF_ERROR)
			return errf(err, E_INVAL, "%s: corrupt gzip data after %llu bytes of content: %s", z->label,
				    (unsigned long long)z->out, zs->msg ? zs->msg : "inflate failed");
		if (got)
			return (ssize_t)got;
		if (!z->frame_end && z->eof && z->in_pos == z->in_len)
			return truncated(z, err);
	}
}

static ssize_t read_zstd(struct zsrc *z, uint8_t *p, size_t n, char *err)
{
	int rc;
	for (;;) {
		if (z->in_pos == z->in_len && (rc = fill(z, err)))
			return rc;
		/* Called with empty input too: output of a full buffer may still be pending. */
		ZSTD_inBuffer in = {z->in, z->in_len, z->in_pos};
		ZSTD_outBuffer out = {p, n, 0};
		size_t r = ZSTD_decompressStream(z->dec, &out, &in);
		bool moved = in.pos != z->in_pos || out.pos;
		z->in_pos = in.pos;
		if (ZSTD_isError(r))
			return errf(err, E_INVAL, "%s: corrupt zstd data after %llu bytes of content: %s", z->label,
				    (unsigned long long)z->out, ZSTD_getErrorName(r));
		/* 0: a frame ended and all of it was handed out; another may follow. A call that
		 * moved nothing (between frames) says nothing new. */
		if (moved)
			z->frame_end = r == 0;
		if (out.pos)
			return (ssize_t)out.pos;
		if (z->in_pos == z->in_len && z->eof)
			return z->frame_end ? 0 : truncated(z, err);
	}
}

ssize_t zsrc_read(struct zsrc *z, void *p, size_t n, char *err)
{
	if (n == 0)
		return 0;
	ssize_t got = z->kind == ZSRC_GZIP ? read_gzip(z, p, n, err)
		    : z->kind == ZSRC_ZSTD ? read_zstd(z, p, n, err)
					   : read_plain(z, p, n, err);
	if (got > 0) {
		z->out += (uint64_t)got;
		if (z->md)
			EVP_DigestUpdate(z->md, p, (size_t)got);
	}
	return got;
}

int zsrc_drain(struct zsrc *z, char *err)
{
	uint8_t *b = xmalloc(1 << 16);
	ssize_t k;
	while ((k = zsrc_read(z, b, 1 << 16, err)) > 0)
		;
	free(b);
	return k < 0 ? (int)k : 0;
}

int zsrc_diff_id(struct zsrc *z, char *out, char *err)
{
	if (!z->md || !z->eof || z->in_pos != z->in_len)
		return errf(err, E_FAIL, "%s: content digest asked before the end of the stream", z->label);
	uint8_t h[32];
	unsigned hl = 0;
	EVP_DigestFinal_ex(z->md, h, &hl);
	memcpy(out, "sha256:", 7);
	hex_encode(h, 32, out + 7);
	EVP_DigestInit_ex(z->md, EVP_sha256(), NULL); /* a second call must not reuse a finished context */
	return 0;
}

void zsrc_close(struct zsrc *z)
{
	if (z->kind == ZSRC_GZIP && z->dec) {
		inflateEnd(z->dec);
		free(z->dec);
	} else if (z->kind == ZSRC_ZSTD) {
		ZSTD_freeDStream(z->dec);
	}
	if (z->md)
		EVP_MD_CTX_free(z->md);
	free(z->in);
	free(z->label);
	memset(z, 0, sizeof *z);
	z->fd = -1;
}
