#include "registry/http.h"
#include "util/err.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define LINE_MAX_ 4096
#define READ_CHUNK 65536
/* Debian's bundle and hashed directory; the static libssl's own default paths point at its
 * build prefix, so they are named here. */
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define SYSTEM_CA_DIR "/etc/ssl/certs"

/* ==== URLs ==== */

int http_url_parse(const char *s, const struct http_url *base, struct http_url *u, char *err)
{
	memset(u, 0, sizeof *u);
	if (s[0] == '/' && s[1] != '/' && base) {
		char abs[HTTP_TARGET_MAX + HTTP_HOST_MAX + 32], hp[HTTP_HOST_MAX + 16];
		http_url_hostport(base, hp, sizeof hp);
		if (strlen(s) >= HTTP_TARGET_MAX)
			return errf(err, E_INVAL, "url path too long");
		snprintf(abs, sizeof abs, "%s://%s%s", base->tls ? "https" : "http", hp, s);
		int rc = http_url_parse(abs, NULL, u, err);
		if (!rc)
			u->port = base->port;
		return rc;
	}
	if (s[0] == '/' && s[1] == '/' && base) { /* scheme-relative */
		char abs[HTTP_TARGET_MAX + HTTP_HOST_MAX + 32];
		if (strlen(s) >= sizeof abs - 8)
			return errf(err, E_INVAL, "url too long");
		snprintf(abs, sizeof abs, "%s:%s", base->tls ? "https" : "http", s);
		return http_url_parse(abs, NULL, u, err);
	}
	const char *p;
	if (!strncasecmp(s, "https://", 8)) {
		u->tls = true;
		p = s + 8;
	} else if (!strncasecmp(s, "http://", 7))
		p = s + 7;
	else
		return errf(err, E_INVAL, "url \"%.80s\": expected http:// or https://", s);
	u->port = u->tls ? 443 : 80;
	const char *hend;
	if (*p == '[') {
		hend = strchr(p, ']');
		if (!hend)
			return errf(err, E_INVAL, "url \"%.80s\": unterminated [ipv6] host", s);
		if ((size_t)(hend - p - 1) > HTTP_HOST_MAX)
			return errf(err, E_INVAL, "url \"%.80s\": host too long", s);
		memcpy(u->host, p + 1, (size_t)(hend - p - 1));
		hend++;
	} else {
		hend = p + strcspn(p, ":/?#");
		if ((size_t)(hend - p) > HTTP_HOST_MAX)
			return errf(err, E_INVAL, "url \"%.80s\": host too long", s);
		memcpy(u->host, p, (size_t)(hend - p));
	}
	if (!u->host[0])
		return errf(err, E_INVAL, "url \"%.80s\": no host", s);
	for (const char *h = u->host; *h; h++)
		if (!isalnum((unsigned char)*h) && !strchr("-._:%", *h))
			return errf(err, E_INVAL, "url \"%.80s\": bad character in the host", s);
	p = hend;
	if (*p == ':') {
		char *e;
		unsigned long port = strtoul(p + 1, &e, 10);
		if (e == p + 1 || port == 0 || port > 65535)
			return errf(err, E_INVAL, "url \"%.80s\": bad port", s);
		u->port = (unsigned)port;
		p = e;
	}
	if (*p && *p != '/' && *p != '?')
		return errf(err, E_INVAL, "url \"%.80s\": unexpected character after the host", s);
	size_t tl = strcspn(p, "#");
	if (tl + 2 > sizeof u->target)
		return errf(err, E_INVAL, "url \"%.80s\": path too long", s);
	for (size_t i = 0; i < tl; i++) /* it goes into a request line as is */
		if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
			return errf(err, E_INVAL, "url \"%.80s\": space or control character in the path", s);
	snprintf(u->target, sizeof u->target, "%s%.*s", *p == '/' ? "" : "/", (int)tl, p);
	return 0;
}

void http_url_hostport(const struct http_url *u, char *out, size_t n)
{
	bool v6 = strchr(u->host, ':') != NULL;
	if (u->port == (u->tls ? 443u : 80u))
		snprintf(out, n, v6 ? "[%s]" : "%s", u->host);
	else
		snprintf(out, n, v6 ? "[%s]:%u" : "%s:%u", u->host, u->port);
}

/* ==== TLS ==== */

struct http_tls {
	SSL_CTX *ctx;
};

static int ssl_errf(char *err, int code, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[200] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	return errf(err, code, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

int http_tls_new(struct http_tls **out, const char *const *ca_files, char *err)
{
	*out = NULL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return ssl_errf(err, E_FAIL, "tls: cannot create a context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* Storage services close without close_notify after a body framed by its length. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (!SSL_CTX_load_verify_locations(ctx, access(SYSTEM_CA_FILE, R_OK) ? NULL : SYSTEM_CA_FILE, SYSTEM_CA_DIR))
		ERR_clear_error(); /* no system CAs: only ca_file can vouch for a peer */
	for (size_t i = 0; ca_files && ca_files[i]; i++)
		if (!SSL_CTX_load_verify_locations(ctx, ca_files[i], NULL)) {
			SSL_CTX_free(ctx);
			char what[300];
			snprintf(what, sizeof what, "tls: CA file %.200s is not readable PEM", ca_files[i]);
			return ssl_errf(err, E_INVAL, what);
		}
	*out = xcalloc(1, sizeof **out);
	(*out)->ctx = ctx;
	return 0;
}

void http_tls_free(struct http_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* ==== connections ==== */

static int connect_addr(const struct sockaddr *sa, socklen_t len, int timeout_ms, char *err, const char *label)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errf(err, E_IO, "%s: socket: %s", label, strerror(errno));
	if (connect(fd, sa, len) && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return errf(err, E_IO, "connect to %s: %s", label, strerror(e));
	}
	struct pollfd pf = {.fd = fd, .events = POLLOUT};
	int r;
	while ((r = poll(&pf, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	if (r == 0) {
		close(fd);
		return errf(err, E_TIMEOUT, "connect to %s: timed out after %d ms", label, timeout_ms);
	}
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (r < 0 || soerr) {
		close(fd);
		return errf(err, E_IO, "connect to %s: %s", label, strerror(soerr ? soerr : errno));
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

void http_conn_fd(struct http_conn *c, int fd, int timeout_ms)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int tls_handshake(struct http_conn *c, struct http_tls *tls, const char *label, char *err)
{
	SSL *ssl = SSL_new(tls->ctx);
	if (!ssl)
		return ssl_errf(err, E_FAIL, "tls: SSL_new");
	c->ssl = ssl;
	SSL_set_fd(ssl, c->fd);
	struct in6_addr a6;
	struct in_addr a4;
	bool ip = inet_pton(AF_INET, c->host, &a4) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1;
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	if (ip) /* no SNI for addresses (RFC 6066); the certificate must carry the IP */
		X509_VERIFY_PARAM_set1_ip_asc(vp, c->host);
	else {
		SSL_set_tlsext_host_name(ssl, c->host);
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		X509_VERIFY_PARAM_set1_host(vp, c->host, 0);
	}
	if (SSL_connect(ssl) == 1)
		return 0;
	long vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK) {
		ERR_clear_error();
		return errf(err, E_AUTH, "tls to %s: certificate not trusted: %s (give the registry's CA file)", label,
			    X509_verify_cert_error_string(vr));
	}
	char what[300];
	snprintf(what, sizeof what, "tls handshake with %s failed", label);
	return ssl_errf(err, errno == EAGAIN ? E_TIMEOUT : E_IO, what);
}

int http_connect(struct http_conn *c, const struct http_url *u, struct http_tls *tls, int timeout_ms, char *err)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	char label[HTTP_HOST_MAX + 16];
	http_url_hostport(u, label, sizeof label);
	if (u->tls && !tls)
		return errf(err, E_INVAL, "%s: https without a tls context", label);
	char port[8];
	snprintf(port, sizeof port, "%u", u->port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
	int g = getaddrinfo(u->host, port, &hints, &res);
	if (g)
		return errf(err, E_IO, "resolve %s: %s", u->host, gai_strerror(g));
	int fd = E_IO;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		if ((fd = connect_addr(ai->ai_addr, ai->ai_addrlen, timeout_ms, err, label)) >= 0)
			break;
	freeaddrinfo(res);
	if (fd < 0)
		return fd;
	http_conn_fd(c, fd, timeout_ms);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	snprintf(c->host, sizeof c->host, "%s", u->host);
	c->port = u->port;
	c->tls = u->tls;
	if (u->tls) {
		int rc = tls_handshake(c, tls, label, err);
		if (rc) {
			http_close(c);
			return rc;
		}
	}
	return 0;
}

void http_close(struct http_conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
	c->off = 0;
}

bool http_conn_matches(const struct http_conn *c, const struct http_url *u)
{
	return c->fd >= 0 && c->tls == u->tls && c->port == u->port && !strcasecmp(c->host, u->host);
}

/* ==== raw I/O ==== */

static ssize_t raw_read(struct http_conn *c, void *p, size_t n, char *err)
{
	for (;;) {
		if (c->ssl) {
			ERR_clear_error();
			int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
			if (r > 0)
				return r;
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
				return 0;
			if (e == SSL_ERROR_SYSCALL && errno == EINTR)
				continue;
			/* SO_RCVTIMEO expiring surfaces as a retry request from the socket BIO */
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
			    (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))) {
				ERR_clear_error();
				return errf(err, E_TIMEOUT, "read from %s: no data for %d ms", c->host, c->timeout_ms);
			}
			return ssl_errf(err, E_IO, "tls read failed");
		}
		ssize_t r = recv(c->fd, p, n, 0);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return errf(err, E_TIMEOUT, "read from %s: no data for %d ms", c->host[0] ? c->host : "peer",
				    c->timeout_ms);
		return errf(err, E_IO, "read from %s: %s", c->host[0] ? c->host : "peer", strerror(errno));
	}
}

static int raw_write(struct http_conn *c, const void *p, size_t n, char *err)
{
	const char *b = p;
	while (n) {
		ssize_t r;
		if (c->ssl) {
			ERR_clear_error();
			int w = SSL_write(c->ssl, b, n > INT32_MAX ? INT32_MAX : (int)n);
			if (w <= 0)
				return ssl_errf(err, errno == EAGAIN ? E_TIMEOUT : E_IO, "tls write failed");
			r = w;
		} else {
			r = send(c->fd, b, n, MSG_NOSIGNAL);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return errf(err, errno == EAGAIN ? E_TIMEOUT : E_IO, "write to %s: %s", c->host, strerror(errno));
		}
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Reads more into the buffer; the count, 0 at EOF. */
static ssize_t fill(struct http_conn *c, char *err)
{
	if (c->off == c->in.len)
		c->off = c->in.len = 0;
	buf_reserve(&c->in, READ_CHUNK);
	ssize_t r = raw_read(c, c->in.data + c->in.len, READ_CHUNK, err);
	if (r > 0)
		c->in.len += (size_t)r;
	return r;
}

/* Buffered bytes first, then straight from the connection (big bodies skip the copy). */
static ssize_t conn_read(struct http_conn *c, void *p, size_t n, char *err)
{
	size_t have = c->in.len - c->off;
	if (have) {
		size_t k = have < n ? have : n;
		memcpy(p, c->in.data + c->off, k);
		c->off += k;
		return (ssize_t)k;
	}
	return raw_read(c, p, n, err);
}

/* One CRLF- (or LF-) terminated line without its terminator, at most LINE_MAX_ bytes. */
static int read_line(struct http_conn *c, char *line, size_t n, char *err)
{
	for (;;) {
		char *s = c->in.data ? (char *)c->in.data + c->off : NULL;
		size_t have = c->in.len - c->off;
		char *nl = have ? memchr(s, '\n', have) : NULL;
		if (nl) {
			size_t l = (size_t)(nl - s);
			if (l && s[l - 1] == '\r')
				l--;
			if (l >= n)
				return errf(err, E_INVAL, "http: line too long");
			memcpy(line, s, l);
			line[l] = 0;
			c->off += (size_t)(nl - s) + 1;
			return 0;
		}
		if (have > LINE_MAX_)
			return errf(err, E_INVAL, "http: line too long");
		if (c->off && c->off == c->in.len)
			c->off = c->in.len = 0;
		ssize_t r = fill(c, err);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return errf(err, E_IO, "http: connection closed in the middle of a response");
	}
}

/* ==== requests and responses ==== */

int http_send(struct http_conn *c, const char *method, const struct http_url *u, const char *const *headers, char *err)
{
	char hp[HTTP_HOST_MAX + 16];
	http_url_hostport(u, hp, sizeof hp);
	struct buf b = {0};
	buf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: orch/%s\r\n", method, u->target, hp, ORCH_VERSION);
	for (size_t i = 0; headers && headers[i]; i++)
		buf_printf(&b, "%s\r\n", headers[i]);
	buf_printf(&b, "\r\n");
	int rc = raw_write(c, b.data, b.len, err);
	buf_free(&b);
	return rc;
}

void http_resp_free(struct http_resp *r)
{
	for (size_t i = 0; i < r->nh; i++) {
		free(r->h[i].name);
		free(r->h[i].value);
	}
	memset(r, 0, sizeof *r);
}

const char *http_header(const struct http_resp *r, const char *name)
{
	for (size_t i = r->nh; i-- > 0;)
		if (!strcasecmp(r->h[i].name, name))
			return r->h[i].value;
	return NULL;
}

static bool token_char(char ch)
{
	return ch > 32 && ch < 127 && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

/* Whether a comma-separated header value lists tok (case-insensitive). */
static bool list_has(const char *v, const char *tok)
{
	size_t tl = strlen(tok);
	while (v && *v) {
		v += strspn(v, " \t,");
		size_t l = strcspn(v, ",");
		size_t e = l;
		while (e && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e == tl && !strncasecmp(v, tok, tl))
			return true;
		v += l;
	}
	return false;
}

int http_parse_head(const char *p, size_t len, struct http_resp *r, bool head, char *err)
{
	memset(r, 0, sizeof *r);
	r->length = -1;
	const char *end = p + len, *line = p;
	int minor = -1;
	bool first = true;
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end;
		size_t l = (size_t)(le - line);
		if (l && line[l - 1] == '\r')
			l--;
		if (first) {
			if (l < 12 || strncmp(line, "HTTP/1.", 7) || !isdigit((unsigned char)line[7]) || line[8] != ' ' ||
			    !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
			    !isdigit((unsigned char)line[11]) || (l > 12 && line[12] != ' '))
				return errf(err, E_INVAL, "http: malformed status line \"%.60s\"", line);
			minor = line[7] - '0';
			r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
			first = false;
		} else if (l == 0) {
			break;
		} else {
			if (line[0] == ' ' || line[0] == '\t')
				return errf(err, E_INVAL, "http: folded header lines are not accepted");
			const char *colon = memchr(line, ':', l);
			if (!colon || colon == line)
				return errf(err, E_INVAL, "http: malformed header line \"%.60s\"", line);
			for (const char *q = line; q < colon; q++)
				if (!token_char(*q))
					return errf(err, E_INVAL, "http: bad character in header name \"%.*s\"", (int)(colon - line), line);
			if (r->nh == HTTP_HEADERS_MAX)
				return errf(err, E_INVAL, "http: more than %d header lines", HTTP_HEADERS_MAX);
			const char *v = colon + 1, *ve = line + l;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			r->h[r->nh].name = xstrndup(line, (size_t)(colon - line));
			r->h[r->nh].value = xstrndup(v, (size_t)(ve - v));
			r->nh++;
		}
		line = nl ? nl + 1 : end;
	}
	if (first)
		return errf(err, E_INVAL, "http: empty response");
	const char *te = http_header(r, "Transfer-Encoding");
	const char *conn = http_header(r, "Connection");
	r->keep_alive = minor >= 1 ? !list_has(conn, "close") : list_has(conn, "keep-alive");
	for (size_t i = 0; i < r->nh; i++) {
		if (strcasecmp(r->h[i].name, "Content-Length"))
			continue;
		const char *v = r->h[i].value;
		char *e;
		errno = 0;
		unsigned long long n = strtoull(v, &e, 10);
		if (!isdigit((unsigned char)v[0]) || *e || errno)
			return errf(err, E_INVAL, "http: bad Content-Length \"%.40s\"", v);
		if (r->length >= 0 && (uint64_t)r->length != n)
			return errf(err, E_INVAL, "http: conflicting Content-Length headers");
		r->length = (int64_t)n;
	}
	if (head || r->status / 100 == 1 || r->status == 204 || r->status == 304) {
		r->done = true;
	} else if (te) {
		if (!list_has(te, "chunked"))
			return errf(err, E_UNSUPP, "http: unsupported Transfer-Encoding \"%.40s\"", te);
		r->chunked = true; /* chunked wins over any Content-Length (RFC 9112 6.3) */
		r->length = -1;
	} else if (r->length >= 0) {
		r->left = (uint64_t)r->length;
		r->done = r->left == 0;
	} else {
		r->to_close = true;
		r->keep_alive = false;
	}
	return 0;
}

int http_read_head(struct http_conn *c, struct http_resp *r, bool head, char *err)
{
	memset(r, 0, sizeof *r);
	for (;;) {
		const char *s = c->in.data ? (const char *)c->in.data + c->off : "";
		size_t have = c->in.len - c->off;
		const char *e = have >= 4 ? memmem(s, have, "\r\n\r\n", 4) : NULL;
		size_t hl = e ? (size_t)(e - s) + 4 : 0;
		if (!e && have >= 2 && (e = memmem(s, have, "\n\n", 2)))
			hl = (size_t)(e - s) + 2;
		if (e) {
			int rc = http_parse_head(s, hl, r, head, err);
			c->off += hl;
			if (rc)
				http_resp_free(r);
			return rc;
		}
		if (have > HTTP_HEAD_MAX)
			return errf(err, E_INVAL, "http: response head larger than %d bytes", HTTP_HEAD_MAX);
		ssize_t n = fill(c, err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return errf(err, E_IO, "http: %s closed the connection before answering", c->host[0] ? c->host : "peer");
	}
}

ssize_t http_read_body(struct http_conn *c, struct http_resp *r, void *p, size_t n, char *err)
{
	if (r->done || n == 0)
		return 0;
	if (r->chunked && r->left == 0) {
		char line[LINE_MAX_];
		int rc = read_line(c, line, sizeof line, err);
		if (rc)
			return rc;
		char *e;
		errno = 0;
		unsigned long long sz = strtoull(line, &e, 16);
		if (e == line || errno || (*e && *e != ';' && *e != ' ' && *e != '\t'))
			return errf(err, E_INVAL, "http: bad chunk size \"%.40s\"", line);
		if (sz == 0) {
			do { /* trailer fields, ignored */
				if ((rc = read_line(c, line, sizeof line, err)))
					return rc;
			} while (line[0]);
			r->done = true;
			return 0;
		}
		r->left = sz;
	}
	size_t want = n;
	if (!r->to_close && want > r->left)
		want = (size_t)r->left;
	ssize_t got = conn_read(c, p, want, err);
	if (got < 0)
		return got;
	if (got == 0) {
		if (r->to_close) {
			r->done = true;
			return 0;
		}
		return errf(err, E_IO, "http: connection closed with %llu body bytes still to come",
			    (unsigned long long)r->left);
	}
	if (!r->to_close) {
		r->left -= (uint64_t)got;
		if (r->left == 0 && r->chunked) {
			char line[8];
			int rc = read_line(c, line, sizeof line, err);
			if (rc)
				return rc;
			if (line[0])
				return errf(err, E_INVAL, "http: chunk longer than its size");
		} else if (r->left == 0)
			r->done = true;
	}
	return got;
}

int http_read_all(struct http_conn *c, struct http_resp *r, size_t max, struct buf *out, char *err)
{
	for (;;) {
		buf_reserve(out, 16384);
		ssize_t n = http_read_body(c, r, out->data + out->len, out->cap - out->len, err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;
		out->len += (size_t)n;
		if (out->len > max)
			return errf(err, E_INVAL, "http: body larger than %zu bytes", max);
	}
}
