#include "registry/wire.h"
#include "util/err.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

/* ==== WWW-Authenticate ==== */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static size_t token_len(const char *p)
{
	size_t n = 0;
	while (p[n] && !strchr(" \t,=\"", p[n]))
		n++;
	return n;
}

/* Reads a quoted string or a token into out; returns the position after it. */
static const char *read_value(const char *p, char *out, size_t n, bool *bad)
{
	size_t o = 0;
	if (*p == '"') {
		p++;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			if (o + 1 < n)
				out[o++] = *p;
			else
				*bad = true;
			p++;
		}
		if (*p != '"')
			*bad = true;
		else
			p++;
	} else {
		size_t l = token_len(p);
		if (l + 1 > n)
			*bad = true;
		else
			memcpy(out, p, l), o = l;
		p += l;
	}
	out[o < n ? o : n - 1] = 0;
	return p;
}

int regwire_challenge_parse(const char *h, struct regwire_challenge *ch, char *err)
{
	memset(ch, 0, sizeof *ch);
	struct regwire_challenge cur;
	bool have = false, bad = false;
	const char *p = h ? h : "";
	memset(&cur, 0, sizeof cur);
	while (*(p = skip_ws(p))) {
		if (*p == ',') {
			p++;
			continue;
		}
		size_t l = token_len(p);
		if (!l)
			return errf(err, E_INVAL, "WWW-Authenticate \"%.80s\": malformed", h);
		const char *after = skip_ws(p + l);
		if (*after != '=') { /* a new scheme */
			if (have && !strcasecmp(cur.scheme, "bearer"))
				break; /* keep the first Bearer one */
			memset(&cur, 0, sizeof cur);
			snprintf(cur.scheme, sizeof cur.scheme, "%.*s", (int)l, p);
			have = true;
			p += l;
			continue;
		}
		if (!have)
			return errf(err, E_INVAL, "WWW-Authenticate \"%.80s\": parameter before a scheme", h);
		char key[32];
		snprintf(key, sizeof key, "%.*s", (int)(l < 31 ? l : 31), p);
		p = skip_ws(after + 1);
		char *dst = NULL;
		size_t dn = 0;
		char skip[1024];
		if (!strcasecmp(key, "realm"))
			dst = cur.realm, dn = sizeof cur.realm;
		else if (!strcasecmp(key, "service"))
			dst = cur.service, dn = sizeof cur.service;
		else if (!strcasecmp(key, "scope"))
			dst = cur.scope, dn = sizeof cur.scope;
		else
			dst = skip, dn = sizeof skip;
		p = read_value(p, dst, dn, &bad);
		if (bad)
			return errf(err, E_INVAL, "WWW-Authenticate \"%.80s\": malformed or too long value", h);
		p = skip_ws(p);
		if (*p && *p != ',')
			return errf(err, E_INVAL, "WWW-Authenticate \"%.80s\": expected ',' between parameters", h);
	}
	if (!have)
		return errf(err, E_INVAL, "WWW-Authenticate: no challenge");
	*ch = cur;
	if (!strcasecmp(ch->scheme, "bearer") && !ch->realm[0])
		return errf(err, E_INVAL, "WWW-Authenticate: Bearer challenge without a realm");
	return 0;
}

/* ==== media types ==== */

bool regwire_is_index(const char *mt)
{
	return mt && (!strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST));
}

bool regwire_is_manifest(const char *mt)
{
	return mt && (!strcmp(mt, MT_OCI_MANIFEST) || !strcmp(mt, MT_DOCKER_MANIFEST));
}

void regwire_media_type(const char *ct, const struct json *doc, char *out, size_t n)
{
	char t[128] = "";
	if (ct) {
		size_t l = strcspn(ct, "; \t");
		snprintf(t, sizeof t, "%.*s", (int)l, ct);
	}
	if (regwire_is_index(t) || regwire_is_manifest(t)) {
		snprintf(out, n, "%s", t);
		return;
	}
	const char *m = json_get_str(doc, "mediaType");
	if (!m && json_is(json_get(doc, "manifests"), JSON_ARR))
		m = MT_OCI_INDEX; /* OCI lets mediaType be absent: the shape tells */
	else if (!m && json_get(doc, "config"))
		m = MT_OCI_MANIFEST;
	snprintf(out, n, "%s", m ? m : "");
}

/* ==== platforms ==== */

static void normalise(struct regwire_platform *p)
{
	for (char *c = p->os; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	for (char *c = p->arch; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (!strcmp(p->arch, "x86_64") || !strcmp(p->arch, "x86-64"))
		snprintf(p->arch, sizeof p->arch, "amd64");
	else if (!strcmp(p->arch, "aarch64"))
		snprintf(p->arch, sizeof p->arch, "arm64");
	else if (!strcmp(p->arch, "armhf")) {
		snprintf(p->arch, sizeof p->arch, "arm");
		snprintf(p->variant, sizeof p->variant, "v7");
	} else if (!strcmp(p->arch, "armel")) {
		snprintf(p->arch, sizeof p->arch, "arm");
		snprintf(p->variant, sizeof p->variant, "v6");
	} else if (!strcmp(p->arch, "i386"))
		snprintf(p->arch, sizeof p->arch, "386");
	if (p->variant[0] >= '0' && p->variant[0] <= '9') { /* "7" → "v7" */
		char v[sizeof p->variant];
		snprintf(v, sizeof v, "v%.14s", p->variant);
		memcpy(p->variant, v, sizeof v);
	}
	if (!strcmp(p->arch, "arm64") && (!strcmp(p->variant, "v8") || !strcmp(p->variant, "v8.0")))
		p->variant[0] = 0;
	if (!strcmp(p->arch, "arm") && !p->variant[0])
		snprintf(p->variant, sizeof p->variant, "v7");
}

int regwire_platform_parse(const char *s, struct regwire_platform *p, char *err)
{
	memset(p, 0, sizeof *p);
	const char *a = strchr(s, '/');
	const char *v = a ? strchr(a + 1, '/') : NULL;
	size_t ol = a ? (size_t)(a - s) : 0;
	size_t al = a ? (v ? (size_t)(v - a - 1) : strlen(a + 1)) : 0;
	size_t vl = v ? strlen(v + 1) : 0;
	if (!a || !ol || !al || ol >= sizeof p->os || al >= sizeof p->arch || vl >= sizeof p->variant ||
	    (v && (!vl || strchr(v + 1, '/'))))
		return errf(err, E_INVAL, "platform \"%.60s\": expected os/architecture[/variant] like linux/amd64", s);
	memcpy(p->os, s, ol);
	memcpy(p->arch, a + 1, al);
	if (v)
		memcpy(p->variant, v + 1, vl);
	normalise(p);
	return 0;
}

void regwire_platform_host(struct regwire_platform *p)
{
	struct utsname u;
	memset(p, 0, sizeof *p);
	snprintf(p->os, sizeof p->os, "linux");
	snprintf(p->arch, sizeof p->arch, "%s", uname(&u) == 0 ? u.machine : "amd64");
	normalise(p);
}

void regwire_platform_format(const struct regwire_platform *p, char *out, size_t n)
{
	snprintf(out, n, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

/* "v7" → 7; 0 when not of that form. */
static int variant_num(const char *v)
{
	return v[0] == 'v' && isdigit((unsigned char)v[1]) ? atoi(v + 1) : 0;
}

int regwire_pick(const struct json *index, const struct regwire_platform *want, size_t *idx, char *err)
{
	const struct json *ms = json_get(index, "manifests");
	if (!json_is(ms, JSON_ARR) || ms->n == 0)
		return errf(err, E_INVAL, "image index lists no manifests");
	int best = -1, best_score = 0;
	char offered[200] = "";
	size_t olen = 0;
	for (size_t i = 0; i < ms->n; i++) {
		const struct json *pj = json_get(ms->items[i], "platform");
		const char *os = json_get_str(pj, "os"), *arch = json_get_str(pj, "architecture");
		const char *var = json_get_str(pj, "variant");
		if (!os || !arch)
			continue;
		struct regwire_platform p;
		memset(&p, 0, sizeof p);
		snprintf(p.os, sizeof p.os, "%s", os);
		snprintf(p.arch, sizeof p.arch, "%s", arch);
		snprintf(p.variant, sizeof p.variant, "%s", var ? var : "");
		normalise(&p);
		if (strcmp(p.os, "unknown")) { /* attestations are not platforms */
			char f[80];
			regwire_platform_format(&p, f, sizeof f);
			if (!strstr(offered, f) && olen + strlen(f) + 3 < sizeof offered)
				olen += (size_t)snprintf(offered + olen, sizeof offered - olen, "%s%s", olen ? ", " : "", f);
		}
		if (strcmp(p.os, want->os) || strcmp(p.arch, want->arch))
			continue;
		int score = 0;
		if (!strcmp(p.variant, want->variant))
			score = 1000;
		else if (!strcmp(p.arch, "arm") && variant_num(p.variant) && variant_num(p.variant) < variant_num(want->variant))
			score = variant_num(p.variant); /* an armv7 host runs v6 and v5 images */
		if (score > best_score) {
			best_score = score;
			best = (int)i;
		}
	}
	if (best < 0) {
		char w[80];
		regwire_platform_format(want, w, sizeof w);
		return errf(err, E_NOTFOUND, "no image for platform %s in the index (it offers: %s)", w,
			    offered[0] ? offered : "none");
	}
	*idx = (size_t)best;
	return 0;
}

/* ==== errors ==== */

bool regwire_transient(int status)
{
	return status >= 500 || status == 408 || status == 429;
}

int regwire_status_error(int status, const char *body, size_t blen, const char *retry_after, const char *what,
			 char *err)
{
	const char *code = NULL, *msg = NULL;
	struct json *doc = NULL;
	char perr[ERR_LEN];
	if (body && blen && !json_parse(body, blen, &doc, perr)) {
		const struct json *e0 = json_at(json_get(doc, "errors"), 0);
		code = json_get_str(e0, "code");
		msg = json_get_str(e0, "message");
	}
	char reg[160] = "";
	if (code || msg)
		snprintf(reg, sizeof reg, " (%s%s%.100s)", code ? code : "", code && msg ? ": " : "", msg ? msg : "");
	int rc;
	if (status == 401 || status == 403)
		rc = errf(err, E_AUTH, "%s: unauthorised%s: check the registry credentials", what, reg);
	else if (status == 404 || (code && (!strcmp(code, "MANIFEST_UNKNOWN") || !strcmp(code, "NAME_UNKNOWN") ||
					    !strcmp(code, "BLOB_UNKNOWN"))))
		rc = errf(err, E_NOTFOUND, "%s: not found%s", what, reg);
	else if (status == 429)
		rc = errf(err, E_BUSY, "%s: rate limited by the registry%s%s%.20s%s", what, reg,
			  retry_after ? ", retry after " : "", retry_after ? retry_after : "", retry_after ? " s" : "");
	else if (status >= 500)
		rc = errf(err, E_IO, "%s: registry error %d%s", what, status, reg);
	else
		rc = errf(err, E_FAIL, "%s: unexpected answer %d%s", what, status, reg);
	json_free(doc);
	return rc;
}
