/* Content-addressed blob store: <dir>/blobs/sha256/<hex>. A blob only ever appears under
 * its name after its bytes hashed to that name: writes go to a temp file beside it, are
 * hashed while written, fsync'd, checked against the expected digest, then renamed. */
#ifndef ORCH_BLOBSTORE_H
#define ORCH_BLOBSTORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct buf;

#define DIGEST_LEN 72 /* "sha256:" + 64 hex + NUL, rounded up */

struct blobstore {
	char *dir;   /* <root>/blobs/sha256 */
};

/* "sha256:<64 lowercase hex>" only: other algorithms are rejected, not guessed at. */
bool digest_valid(const char *digest);
/* "sha256:ab12cd34ef56" for messages. out: at least 20 bytes. */
void digest_short(const char *digest, char *out, size_t size);

/* Creates <root>/blobs/sha256 if needed. */
int blob_init(struct blobstore *s, const char *root, char *err);
void blob_fini(struct blobstore *s);
/* malloc'd path of a blob (whether or not present); NULL if digest is invalid. */
char *blob_path(const struct blobstore *s, const char *digest);
bool blob_has(const struct blobstore *s, const char *digest);
/* Opens a stored blob read-only: an fd, or a negative E_* code. */
int blob_open(const struct blobstore *s, const char *digest, char *err);
/* Reads a whole blob of at most max bytes into out (appended). */
int blob_read_all(const struct blobstore *s, const char *digest, size_t max, struct buf *out, char *err);

/* Streaming writer: begin, write any number of times, then commit or abort. */
struct blob_writer {
	const struct blobstore *store;
	int fd;
	char *tmp;
	void *md; /* EVP_MD_CTX */
	uint64_t size;
};
int blob_writer_begin(struct blob_writer *w, const struct blobstore *s, char *err);
int blob_writer_write(struct blob_writer *w, const void *p, size_t n, char *err);
/* Verifies against expected (NULL: accept any), renames into place and fills out_digest.
 * *created (may be NULL) says whether the blob was new. The writer is finished either way. */
int blob_writer_commit(struct blob_writer *w, const char *expected, char *out_digest, bool *created, char *err);
void blob_writer_abort(struct blob_writer *w);

/* Copies size bytes (or to EOF when size < 0) from src_fd into the store. */
int blob_put_file(const struct blobstore *s, const char *expected, int src_fd, int64_t size,
		  char *out_digest, char *err);
int blob_put_mem(const struct blobstore *s, const char *expected, const void *p, size_t n,
		 char *out_digest, char *err);

/* sha256 of a byte range, as "sha256:<hex>". */
void sha256_digest(const void *p, size_t n, char *out_digest);
/* sha256 of the uncompressed content of a blob (gzip and zstd told by their magic,
 * image/zsrc.h): what an image config's rootfs.diff_ids name. */
int blob_diff_id(const struct blobstore *s, const char *digest, char *out_digest, char *err);

#endif
