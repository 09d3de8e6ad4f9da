/* A small blocking HTTP/1.1 client for the registry protocol: one request at a time on a
 * connection (plain TCP or TLS through libssl), bodies framed by Content-Length, chunked
 * encoding or the connection's end, every socket operation bounded by a timeout. It runs
 * on pulling threads only, never on the node's loop. Redirects, authentication and
 * retries are the caller's (registry/registry.c): they depend on what is being fetched. */
#ifndef ORCH_HTTP_H
#define ORCH_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "util/mem.h"

#define HTTP_HOST_MAX 255
#define HTTP_TARGET_MAX 4096
#define HTTP_HEAD_MAX (64 * 1024) /* status line + headers */
#define HTTP_HEADERS_MAX 100

struct http_url {
	bool tls;
	char host[HTTP_HOST_MAX + 1]; /* without IPv6 brackets */
	unsigned port;
	char target[HTTP_TARGET_MAX]; /* path + query, "/" at least */
};

/* "https://host[:port]/path?q"; 0 or E_INVAL. A relative reference ("/v2/...") is resolved
 * against base when base is given (Location headers may be either). */
int http_url_parse(const char *s, const struct http_url *base, struct http_url *u, char *err);
/* "host:port" as a registry names it: the port is left out when it is the scheme's default. */
void http_url_hostport(const struct http_url *u, char *out, size_t n);

/* TLS settings shared by the connections of one pull: peers verified against the system CAs
 * and the PEM files of ca_files (NULL-terminated, may be NULL); TLS 1.2 at least. */
struct http_tls;
int http_tls_new(struct http_tls **out, const char *const *ca_files, char *err);
void http_tls_free(struct http_tls *t);

struct http_conn {
	int fd;
	void *ssl; /* SSL *, NULL for plain TCP */
	char host[HTTP_HOST_MAX + 1];
	unsigned port;
	bool tls;
	struct buf in; /* bytes read but not consumed */
	size_t off;
	int timeout_ms;
};

struct http_hdr {
	char *name, *value;
};

struct http_resp {
	int status;
	struct http_hdr h[HTTP_HEADERS_MAX];
	size_t nh;
	/* body framing */
	bool chunked, to_close, done;
	uint64_t left; /* bytes left in the body (Content-Length) or in the current chunk */
	bool keep_alive;
	int64_t length; /* Content-Length, -1 when absent */
};

/* Connects (tls: handshake with SNI and host name check). tls may be NULL for plain. */
int http_connect(struct http_conn *c, const struct http_url *u, struct http_tls *tls, int timeout_ms, char *err);
/* A connection wrapped around an fd already connected (tests: a socketpair). */
void http_conn_fd(struct http_conn *c, int fd, int timeout_ms);
void http_close(struct http_conn *c);
/* True when c is connected to u's host, port and scheme (a kept-alive connection). */
bool http_conn_matches(const struct http_conn *c, const struct http_url *u);

/* Sends "METHOD target HTTP/1.1" with Host, the extra header lines ("Name: value", NULL-ended
 * array, may be NULL) and no body. */
int http_send(struct http_conn *c, const char *method, const struct http_url *u, const char *const *headers, char *err);
/* Reads the status line and headers and sets up body framing (HEAD: no body). */
int http_read_head(struct http_conn *c, struct http_resp *r, bool head, char *err);
/* Reads up to n body bytes: the count, 0 at the body's end, or a negative E_*. */
ssize_t http_read_body(struct http_conn *c, struct http_resp *r, void *p, size_t n, char *err);
/* Reads the whole body into out (at most max bytes, E_INVAL beyond). */
int http_read_all(struct http_conn *c, struct http_resp *r, size_t max, struct buf *out, char *err);
void http_resp_free(struct http_resp *r);

/* The value of a header (case-insensitive name; the last one when repeated), or NULL. */
const char *http_header(const struct http_resp *r, const char *name);
/* Parses a head ("HTTP/1.1 200 OK\r\nA: b\r\n\r\n", len bytes) into r; exported for tests. */
int http_parse_head(const char *p, size_t len, struct http_resp *r, bool head, char *err);

#endif
