/* A byte source that undoes a layer's compression: gzip, zstd or none, chosen by the
 * first bytes of the input (the media type of a layer is advice; the bytes are what gets
 * decoded). Input comes from a pull callback, so the same reader serves a blob file and a
 * body arriving over the network. Concatenated gzip members and zstd frames read as one
 * stream, as `gzip -d` and `zstd -d` treat them. Corrupt or truncated input is an error
 * naming the label given at open, never a crash.
 *
 * Optionally the sha256 of everything decoded is kept: what an image config's
 * rootfs.diff_ids name (zsrc_diff_id after the end was read). */
#ifndef ORCH_ZSRC_H
#define ORCH_ZSRC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads up to n raw bytes into p: the count, 0 at the end of input, or a negative E_*
 * code with err filled. A source that checks a digest can fail at its end: the reader
 * reads every source to its end before it reports success (zsrc_drain). */
typedef ssize_t (*zsrc_read_fn)(void *ctx, void *p, size_t n, char *err);

enum zsrc_kind { ZSRC_PLAIN, ZSRC_GZIP, ZSRC_ZSTD };

#define ZSRC_INBUF (64 * 1024)

struct zsrc {
	zsrc_read_fn read;
	void *ctx;
	int fd;               /* for zsrc_open_fd */
	char *label;
	enum zsrc_kind kind;
	uint8_t *in;
	size_t in_len, in_pos;
	bool eof, frame_end;  /* raw input ended; the last gzip member/zstd frame is complete */
	void *dec;            /* z_stream or ZSTD_DStream */
	uint64_t out;         /* bytes decoded so far */
	void *md;             /* EVP_MD_CTX when hashing */
};

/* Starts reading. hash: keep the sha256 of the decoded bytes. */
int zsrc_open(struct zsrc *z, zsrc_read_fn fn, void *ctx, const char *label, bool hash, char *err);
/* The same over a file descriptor (not closed by the reader). */
int zsrc_open_fd(struct zsrc *z, int fd, const char *label, bool hash, char *err);
/* Decoded bytes: count, 0 at the clean end of the stream, negative on error. */
ssize_t zsrc_read(struct zsrc *z, void *p, size_t n, char *err);
/* Reads and discards the rest (a tar's trailing blocks, a source's final check). */
int zsrc_drain(struct zsrc *z, char *err);
/* "sha256:<hex>" of all decoded bytes; only with hash and after the end was reached. */
int zsrc_diff_id(struct zsrc *z, char *out, char *err);
const char *zsrc_kind_name(enum zsrc_kind k);
void zsrc_close(struct zsrc *z);

#endif
