#include "registry/diffid.h"
#include "util/err.h"
#include "util/mem.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CHUNK (1 << 16)

void diffid_init(struct diffid *d)
{
	memset(d, 0, sizeof *d);
}

void diffid_free(struct diffid *d)
{
	if (d->kind == DIFFID_GZIP)
		inflateEnd(&d->zs);
	if (d->md)
		EVP_MD_CTX_free(d->md);
	free(d->out);
	memset(d, 0, sizeof *d);
}

static void start_gzip(struct diffid *d)
{
	d->kind = DIFFID_GZIP;
	if (inflateInit2(&d->zs, 16 + MAX_WBITS) != Z_OK) {
		d->kind = DIFFID_OTHER;
		return;
	}
	d->md = EVP_MD_CTX_new();
	if (!d->md)
		abort();
	EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
	d->out = xmalloc(OUT_CHUNK);
}

static void inflate_some(struct diffid *d, const uint8_t *p, size_t n)
{
	d->zs.next_in = (Bytef *)(uintptr_t)p;
	d->zs.avail_in = (uInt)n;
	while (!d->bad) {
		if (d->ended) {
			if (!d->zs.avail_in)
				return;
			inflateReset(&d->zs); /* gzip members may follow one another */
			d->ended = false;
		}
		d->zs.next_out = d->out;
		d->zs.avail_out = OUT_CHUNK;
		int r = inflate(&d->zs, Z_NO_FLUSH);
		EVP_DigestUpdate(d->md, d->out, OUT_CHUNK - d->zs.avail_out);
		if (r == Z_STREAM_END)
			d->ended = true;
		else if (r == Z_BUF_ERROR || (r == Z_OK && !d->zs.avail_in && d->zs.avail_out))
			return; /* all input taken and no output pending */
		else if (r != Z_OK)
			d->bad = true;
	}
}

void diffid_feed(struct diffid *d, const void *p, size_t n)
{
	const uint8_t *b = p;
	if (d->kind == DIFFID_UNKNOWN) {
		while (n && d->nhead < sizeof d->head) {
			d->head[d->nhead++] = *b++;
			n--;
		}
		if (d->nhead < sizeof d->head)
			return;
		if (d->head[0] == 0x1f && d->head[1] == 0x8b) {
			start_gzip(d);
			if (d->kind == DIFFID_GZIP)
				inflate_some(d, d->head, d->nhead);
		} else
			d->kind = d->head[0] == 0x28 && d->head[1] == 0xb5 ? DIFFID_OTHER : DIFFID_PLAIN;
	}
	if (d->kind == DIFFID_GZIP && n)
		inflate_some(d, b, n);
}

int diffid_final(struct diffid *d, char *out, char *err)
{
	if (d->kind == DIFFID_UNKNOWN) /* shorter than the magic: a tiny plain blob */
		d->kind = d->nhead >= 2 && d->head[0] == 0x1f && d->head[1] == 0x8b ? DIFFID_GZIP : DIFFID_PLAIN;
	if (d->kind == DIFFID_PLAIN)
		return 1;
	if (d->kind == DIFFID_OTHER)
		return E_UNSUPP;
	if (d->bad || !d->ended || !d->md)
		return errf(err, E_INVAL, "layer: corrupt or truncated gzip data");
	unsigned char h[32];
	unsigned int hl = 0;
	EVP_DigestFinal_ex(d->md, h, &hl);
	memcpy(out, "sha256:", 7);
	hex_encode(h, 32, out + 7);
	return 0;
}
