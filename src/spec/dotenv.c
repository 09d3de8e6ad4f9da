/* KEY=value files (see dotenv.h). */
#include "spec/dotenv.h"
#include "spec/interp.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOTENV_MAX (16u << 20)

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* A quoted value from p (just after the opening quote) up to the closing quote, which may
 * be on a later line; *lineno counts the newlines crossed. NULL when never closed. */
static const char *quoted(const char *p, const char *end, char q, struct buf *v, size_t *lineno)
{
	for (; p < end; p++) {
		if (*p == q)
			return p + 1;
		if (*p == '\n')
			++*lineno;
		if (q == '"' && *p == '\\' && p + 1 < end) {
			char e = *++p;
			char r = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
			if (!strchr("ntr\\\"$", e))
				buf_append(v, "\\", 1);
			buf_append(v, &r, 1);
			continue;
		}
		buf_append(v, p, 1);
	}
	return NULL;
}

int dotenv_parse(const char *name, const char *data, size_t len, const struct labels *outer, struct labels *out,
		 char *err)
{
	/* scope: what values may refer to, the outer variables overridden by earlier lines */
	struct labels scope = {0};
	for (size_t i = 0; outer && i < outer->n; i++)
		labels_set(&scope, outer->k[i], outer->v[i]);
	const char *p = data, *end = data + len;
	size_t lineno = 0;
	int rc = 0;
	while (!rc && p < end) {
		lineno++;
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		while (p < eol && blank(*p))
			p++;
		if (p == eol || *p == '#') {
			p = eol + 1;
			continue;
		}
		if ((size_t)(eol - p) > 7 && !strncmp(p, "export", 6) && blank(p[6]))
			for (p += 7; p < eol && blank(*p); p++)
				;
		const char *k = p;
		while (p < eol && *p != '=' && !blank(*p))
			p++;
		char *key = xstrndup(k, (size_t)(p - k));
		while (p < eol && blank(*p))
			p++;
		size_t at = lineno;
		if (!*key || (p < eol && *p != '=')) {
			rc = errf(err, E_INVAL, "%s:%zu: expected NAME=value", name, at);
			free(key);
			break;
		}
		if (p == eol) { /* a name alone: the outer variable, if any */
			const char *v = interp_lookup(outer, key);
			if (v) {
				labels_set(out, key, v);
				labels_set(&scope, key, v);
			}
			free(key);
			p = eol + 1;
			continue;
		}
		for (p++; p < eol && blank(*p); p++)
			;
		struct buf v = {0};
		bool literal = false;
		if (p < eol && (*p == '\'' || *p == '"')) {
			literal = *p == '\'';
			const char *after = quoted(p + 1, end, *p, &v, &lineno);
			if (!after) {
				rc = errf(err, E_INVAL, "%s:%zu: %s has an unterminated %s quote", name, at, key,
					  literal ? "single" : "double");
			} else {
				eol = memchr(after, '\n', (size_t)(end - after));
				if (!eol)
					eol = end;
				while (after < eol && blank(*after))
					after++;
				if (after < eol && *after != '#')
					rc = errf(err, E_INVAL, "%s:%zu: %s: unexpected text after the closing quote", name,
						  lineno, key);
			}
		} else {
			const char *e = p;
			while (e < eol && !(*e == '#' && e > p && blank(e[-1])))
				e++;
			while (e > p && blank(e[-1]))
				e--;
			buf_append(&v, p, (size_t)(e - p));
		}
		buf_append(&v, "", 1);
		if (!rc && literal) {
			labels_set(out, key, (char *)v.data);
			labels_set(&scope, key, (char *)v.data);
		} else if (!rc) {
			struct interp_res r;
			char msg[ERR_LEN];
			if (interp_string((char *)v.data, &scope, &r, msg)) {
				rc = errf(err, E_INVAL, "%s:%zu: %s: %s", name, at, key, msg);
			} else {
				labels_set(out, key, r.out);
				labels_set(&scope, key, r.out);
				free(r.out);
			}
		}
		buf_free(&v);
		free(key);
		p = eol + 1;
	}
	labels_free(&scope);
	return rc;
}

int dotenv_read(const char *path, const struct labels *outer, struct labels *out, char *err)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return errf(err, errno == ENOENT ? E_NOTFOUND : E_IO, "open %s: %s", path, strerror(errno));
	struct buf b = {0};
	char chunk[65536];
	size_t n;
	int rc = 0;
	while (!rc && (n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
		if (b.len + n > DOTENV_MAX)
			rc = errf(err, E_INVAL, "%s: larger than %u MiB; not an env file?", path, DOTENV_MAX >> 20);
		else
			buf_append(&b, chunk, n);
	}
	if (!rc && ferror(fp))
		rc = errf(err, E_IO, "read %s: %s", path, strerror(errno));
	fclose(fp);
	if (!rc && memchr(b.data ? (char *)b.data : "", 0, b.len))
		rc = errf(err, E_INVAL, "%s: contains a NUL byte; not an env file?", path);
	if (!rc)
		rc = dotenv_parse(path, b.data ? (const char *)b.data : "", b.len, outer, out, err);
	buf_free(&b);
	return rc;
}
