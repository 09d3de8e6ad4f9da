/* Counts the HTTP/1.x requests on a client stream the mesh proxies (traffic/mesh.c), for
 * the per-service request figures: a pure function over the bytes as they arrive, in any
 * pieces. A stream that does not start with an HTTP method is not HTTP and is not counted;
 * a chunked body or a head larger than the buffer stops the counting for the stream (the
 * bytes still flow: the mesh forwards them whatever this says). */
#ifndef ORCH_REQCOUNT_H
#define ORCH_REQCOUNT_H
#include <stddef.h>
#include <stdint.h>

#define REQCOUNT_HEAD_MAX 4096

struct reqcount {
	int mode;   /* 0 unknown, 1 http, 2 other */
	int st;     /* 0 head, 1 body, 2 stop counting */
	uint64_t body_left;
	size_t hlen;
	char head[REQCOUNT_HEAD_MAX];
};

/* Feeds the next n bytes of the client stream; returns the requests whose head ended in
 * them. */
unsigned reqcount_feed(struct reqcount *h, const char *p, size_t n);

#endif
