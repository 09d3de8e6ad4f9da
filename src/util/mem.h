/* Allocation that aborts on exhaustion: a node that cannot allocate a few bytes cannot
 * make progress safely, and every caller checking NULL would hide real errors. */
#ifndef ORCH_MEM_H
#define ORCH_MEM_H
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable byte buffer. */
struct buf {
	uint8_t *data;
	size_t len, cap;
};
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
void buf_free(struct buf *b);

uint64_t now_ms(void);    /* monotonic */
uint64_t wall_ms(void);   /* realtime */
void random_bytes(void *p, size_t n);
void hex_encode(const uint8_t *in, size_t n, char *out); /* out: 2n+1 */
int hex_decode(const char *in, uint8_t *out, size_t n);  /* exactly 2n hex chars; 0 or -1 */

#endif
