#include "traffic/reqcount.h"
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* The value of a header line [p, end) named name (with its colon), or NULL. */
static const char *header_value(const char *p, const char *end, const char *name)
{
	size_t k = strlen(name);
	if ((size_t)(end - p) < k || strncasecmp(p, name, k))
		return NULL;
	return p + k;
}

/* Looks through the head [0, end) for the body's framing. */
static void body_framing(const char *h, size_t end, uint64_t *length, bool *chunked)
{
	*length = 0;
	*chunked = false;
	for (size_t i = 0; i < end;) {
		const char *line = h + i, *nl = memchr(line, '\n', end - i);
		const char *eol = nl ? nl : h + end;
		const char *v;
		if ((v = header_value(line, eol, "content-length:"))) {
			uint64_t n = 0;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			for (; v < eol && *v >= '0' && *v <= '9'; v++)
				n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + (uint64_t)(*v - '0');
			*length = n;
		} else if ((v = header_value(line, eol, "transfer-encoding:"))) {
			for (; v + 7 <= eol; v++)
				if (!strncasecmp(v, "chunked", 7))
					*chunked = true;
		}
		i = (size_t)(eol - h) + 1;
	}
}

unsigned reqcount_feed(struct reqcount *h, const char *p, size_t n)
{
	static const char *const methods[] = {"GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC", "CONN", "TRAC"};
	unsigned count = 0;
	while (n && h->mode != 2 && h->st != 2) {
		if (h->st == 1) {
			size_t k = n < h->body_left ? n : (size_t)h->body_left;
			h->body_left -= k;
			p += k;
			n -= k;
			if (!h->body_left)
				h->st = 0;
			continue;
		}
		size_t k = n < sizeof h->head - h->hlen ? n : sizeof h->head - h->hlen;
		if (!k) {
			h->st = 2;
			break;
		}
		memcpy(h->head + h->hlen, p, k);
		size_t old = h->hlen;
		h->hlen += k;
		if (h->mode == 0 && h->hlen >= 4) {
			h->mode = 2;
			for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
				if (!memcmp(h->head, methods[i], 4))
					h->mode = 1;
			if (h->mode == 2)
				break;
		}
		/* the end of the head: searched from a little before the old end */
		size_t from = old > 3 ? old - 3 : 0, end = 0;
		for (size_t i = from; i + 4 <= h->hlen; i++)
			if (!memcmp(h->head + i, "\r\n\r\n", 4)) {
				end = i + 4;
				break;
			}
		if (!end) {
			p += k;
			n -= k;
			continue;
		}
		count++;
		uint64_t length;
		bool chunked;
		body_framing(h->head, end, &length, &chunked);
		size_t used = end - old; /* bytes of this piece that belonged to the head */
		p += used;
		n -= used;
		h->hlen = 0;
		if (chunked)
			h->st = 2;
		else if (length) {
			h->st = 1;
			h->body_left = length;
		}
	}
	return count;
}
