#include "net/httpreq.h"
#include "util/err.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The end of the head: the offset after its blank line, or 0. */
static size_t head_end(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] == '\n' && p[i + 1] == '\n')
			return i + 2;
		if (i + 3 < n && !memcmp(p + i, "\r\n\r\n", 4))
			return i + 4;
	}
	return 0;
}

static void header_value(const char *v, const char *end, char *out, size_t cap)
{
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == ' '))
		end--;
	size_t k = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
	memcpy(out, v, k);
	out[k] = 0;
}

int httpreq_parse(const char *p, size_t n, struct httpreq *rq, char *err)
{
	size_t he = head_end(p, n);
	if (!he) {
		if (n > HTTPREQ_HEAD_MAX)
			return errf(err, E_INVAL, "http request head larger than %d bytes", HTTPREQ_HEAD_MAX), -1;
		return 0;
	}
	memset(rq, 0, sizeof *rq);
	const char *eol = memchr(p, '\n', he);
	const char *sp = memchr(p, ' ', (size_t)(eol - p));
	const char *sp2 = sp ? memchr(sp + 1, ' ', (size_t)(eol - sp - 1)) : NULL;
	if (!sp || !sp2 || (size_t)(sp - p) >= sizeof rq->method || (size_t)(sp2 - sp - 1) >= sizeof rq->path ||
	    sp2 == sp + 1 || sp[1] != '/')
		return errf(err, E_INVAL, "bad http request line"), -1;
	memcpy(rq->method, p, (size_t)(sp - p));
	memcpy(rq->path, sp + 1, (size_t)(sp2 - sp - 1));
	for (const char *c = rq->path; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return errf(err, E_INVAL, "bad http request path"), -1;
	bool have_len = false;
	unsigned long long clen = 0;
	for (const char *l = eol + 1; l < p + he;) {
		const char *le = memchr(l, '\n', (size_t)(p + he - l));
		if (!le)
			break;
		const char *colon = memchr(l, ':', (size_t)(le - l));
		if (colon) {
			size_t kl = (size_t)(colon - l);
			char v[256];
			header_value(colon + 1, le, v, sizeof v);
			if (kl == 14 && !strncasecmp(l, "Content-Length", 14)) {
				char *e;
				clen = strtoull(v, &e, 10);
				if (!isdigit((unsigned char)v[0]) || *e || clen > HTTPREQ_BODY_MAX)
					return errf(err, E_INVAL, "bad or too large Content-Length (at most %u bytes)", HTTPREQ_BODY_MAX), -1;
				have_len = true;
			} else if (kl == 17 && !strncasecmp(l, "Transfer-Encoding", 17))
				return errf(err, E_INVAL, "chunked request bodies are not accepted: send Content-Length"), -1;
			else if (kl == 4 && !strncasecmp(l, "Host", 4))
				snprintf(rq->host, sizeof rq->host, "%s", v);
			else if (kl == 6 && !strncasecmp(l, "Origin", 6))
				snprintf(rq->origin, sizeof rq->origin, "%s", v);
			else if (kl == 14 && !strncasecmp(l, "X-Orch-Console", 14))
				rq->console = true;
		}
		l = le + 1;
	}
	(void)have_len;
	if (n < he + clen)
		return 0;
	rq->body = p + he;
	rq->body_len = (size_t)clen;
	rq->total = he + (size_t)clen;
	return 1;
}
