/* One HTTP/1.1 request read from a byte stream, for the listeners that speak HTTP (the
 * node port inside TLS, net/conn.h, and the console's plain listener, console/console.h):
 * the request line, the few headers the node looks at, and a body of at most
 * HTTPREQ_BODY_MAX bytes (Content-Length; chunked bodies are refused). */
#ifndef ORCH_HTTPREQ_H
#define ORCH_HTTPREQ_H
#include <stdbool.h>
#include <stddef.h>

#define HTTPREQ_HEAD_MAX 8192
#define HTTPREQ_BODY_MAX (64u << 10)

struct httpreq {
	char method[8];
	char path[1024]; /* as sent, with the query */
	char host[128];
	char origin[256];
	bool console;    /* an X-Orch-Console header: a page's own request (console/console.h) */
	const char *body; /* into the parsed bytes */
	size_t body_len;
	size_t total; /* bytes of head and body */
};

/* 1: a whole request is in p[0..n) (rq filled); 0: more bytes are needed; -1: malformed
 * or too large (err says why). */
int httpreq_parse(const char *p, size_t n, struct httpreq *rq, char *err);

#endif
