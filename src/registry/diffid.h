/* A layer's diff_id (the sha256 of its uncompressed tar) computed while the layer streams
 * in, so a pull checks it against the image config without reading the layer again. */
#ifndef ORCH_DIFFID_H
#define ORCH_DIFFID_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

struct diffid {
	int kind; /* DIFFID_* below, decided by the first bytes */
	bool ended, bad;
	z_stream zs;
	void *md; /* EVP_MD_CTX */
	uint8_t head[4];
	size_t nhead;
	uint8_t *out;
};
enum { DIFFID_UNKNOWN, DIFFID_PLAIN, DIFFID_GZIP, DIFFID_OTHER };

void diffid_init(struct diffid *d);
void diffid_feed(struct diffid *d, const void *p, size_t n);
/* 1: the layer is a plain tar (its diff_id is its blob digest); 0: out holds the diff_id of a
 * gzip layer; E_UNSUPP for other encodings (zstd: not computed here); E_INVAL when the gzip
 * stream is corrupt or cut. */
int diffid_final(struct diffid *d, char *out, char *err);
void diffid_free(struct diffid *d);

#endif
