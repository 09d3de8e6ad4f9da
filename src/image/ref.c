#include "image/ref.h"
#include "util/err.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>

static bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* One path component: [a-z0-9]+ joined by '.', '_', '__' or runs of '-'. */
static bool path_component_ok(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i < n; i++) {
		if (is_lower_alnum(s[i]))
			continue;
		size_t j = i;
		while (j < n && !is_lower_alnum(s[j]))
			j++;
		size_t run = j - i;
		bool dashes = strspn(s + i, "-") >= run;
		bool ok = (run == 1 && (s[i] == '.' || s[i] == '_' || s[i] == '-')) ||
			  (run == 2 && s[i] == '_' && s[i + 1] == '_') || dashes;
		if (!ok)
			return false;
		i = j - 1;
	}
	return true;
}

/* host[:port], host being dot-separated labels of letters, digits and inner '-', or an
 * IPv6 address in brackets. */
static bool domain_ok(const char *s, size_t n)
{
	size_t hostlen = n;
	const char *colon = NULL;
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		hostlen = (size_t)(close - s) + 1;
		if (hostlen < n) {
			if (s[hostlen] != ':')
				return false;
			colon = s + hostlen;
		}
	} else {
		colon = memchr(s, ':', n);
		if (colon)
			hostlen = (size_t)(colon - s);
		if (hostlen == 0)
			return false;
		size_t start = 0;
		for (size_t i = 0; i <= hostlen; i++) {
			if (i < hostlen && s[i] != '.')
				continue;
			size_t len = i - start;
			if (len == 0 || !isalnum((unsigned char)s[start]) || !isalnum((unsigned char)s[i - 1]))
				return false;
			for (size_t k = start; k < i; k++)
				if (!isalnum((unsigned char)s[k]) && s[k] != '-')
					return false;
			start = i + 1;
		}
	}
	if (colon) {
		size_t plen = n - (size_t)(colon + 1 - s);
		if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") < plen)
			return false;
	}
	return true;
}

static bool tag_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > REF_TAG_MAX || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

bool image_digest_valid(const char *s)
{
	if (strncmp(s, "sha256:", 7) || strlen(s) != 71)
		return false;
	for (const char *p = s + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static bool looks_like_domain(const char *s, size_t n)
{
	if (n == 9 && !memcmp(s, "localhost", 9))
		return true;
	return memchr(s, '.', n) || memchr(s, ':', n) || (n && s[0] == '[');
}

int image_ref_parse(const char *s, struct image_ref *r, char *err)
{
	memset(r, 0, sizeof *r);
	if (!s || !*s)
		return errf(err, E_INVAL, "image reference is empty");
	size_t len = strlen(s);
	if (len > REF_STR_MAX)
		return errf(err, E_INVAL, "image reference is longer than %d characters", REF_STR_MAX);
	char buf[REF_STR_MAX + 1];
	memcpy(buf, s, len + 1);

	char *at = strchr(buf, '@');
	if (at) {
		*at = 0;
		if (!image_digest_valid(at + 1))
			return errf(err, E_INVAL, "image reference \"%.80s\": digest \"%.80s\" is not sha256:<64 lowercase hex>", s, at + 1);
		memcpy(r->digest, at + 1, 72);
	}
	char *slash = strrchr(buf, '/');
	char *colon = strrchr(buf, ':');
	if (colon && (!slash || colon > slash)) {
		*colon = 0;
		if (!tag_ok(colon + 1))
			return errf(err, E_INVAL, "image reference \"%.80s\": tag \"%.130s\" is not valid (letters, digits, '_', '.', '-'; at most %d)", s, colon + 1, REF_TAG_MAX);
		snprintf(r->tag, sizeof r->tag, "%s", colon + 1);
	}
	const char *name = buf;
	const char *first_slash = strchr(name, '/');
	const char *path = name;
	if (first_slash && looks_like_domain(name, (size_t)(first_slash - name))) {
		size_t dn = (size_t)(first_slash - name);
		if (dn > REF_DOMAIN_MAX || !domain_ok(name, dn))
			return errf(err, E_INVAL, "image reference \"%.80s\": registry \"%.*s\" is not a valid host[:port]", s, (int)(dn > 200 ? 200 : dn), name);
		memcpy(r->domain, name, dn);
		path = first_slash + 1;
	} else {
		strcpy(r->domain, REF_DEFAULT_DOMAIN);
	}
	if (!strcmp(r->domain, "index.docker.io"))
		strcpy(r->domain, REF_DEFAULT_DOMAIN);
	if (!*path)
		return errf(err, E_INVAL, "image reference \"%.80s\": no repository name", s);
	for (const char *p = path; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			return errf(err, E_INVAL, "image reference \"%.80s\": repository name must be lowercase", s);
	for (const char *c = path;;) {
		const char *e = strchr(c, '/');
		size_t cn = e ? (size_t)(e - c) : strlen(c);
		if (!path_component_ok(c, cn))
			return errf(err, E_INVAL, "image reference \"%.80s\": \"%.*s\" is not a valid repository path part", s, (int)(cn > 200 ? 200 : cn), c);
		if (!e)
			break;
		c = e + 1;
	}
	bool library = !strcmp(r->domain, REF_DEFAULT_DOMAIN) && !strchr(path, '/');
	if (strlen(path) + (library ? 8 : 0) + strlen(r->domain) + 1 > REF_PATH_MAX)
		return errf(err, E_INVAL, "image reference \"%.80s\": name is longer than %d characters", s, REF_PATH_MAX);
	snprintf(r->path, sizeof r->path, "%s%s", library ? "library/" : "", path);
	if (!r->tag[0] && !r->digest[0])
		strcpy(r->tag, "latest");
	return 0;
}

/* prefix + "/"-joined repository + ":tag" + "@digest", truncated to n-1. */
static size_t put(char *out, size_t n, const char *prefix, const char *path, const struct image_ref *r)
{
	int k = snprintf(out, n, "%s%s%s%s%s%s%s", prefix, *prefix ? "/" : "", path, r->tag[0] ? ":" : "", r->tag,
			 r->digest[0] ? "@" : "", r->digest);
	return k < 0 ? 0 : (size_t)k >= n ? (n ? n - 1 : 0) : (size_t)k;
}

size_t image_ref_canonical(const struct image_ref *r, char *out, size_t n)
{
	return put(out, n, r->domain, r->path, r);
}

size_t image_ref_familiar(const struct image_ref *r, char *out, size_t n)
{
	if (strcmp(r->domain, REF_DEFAULT_DOMAIN))
		return image_ref_canonical(r, out, n);
	const char *p = r->path;
	if (!strncmp(p, "library/", 8) && !strchr(p + 8, '/'))
		p += 8;
	return put(out, n, "", p, r);
}

size_t image_ref_repo(const struct image_ref *r, char *out, size_t n)
{
	struct image_ref bare = *r;
	bare.tag[0] = bare.digest[0] = 0;
	return put(out, n, r->domain, r->path, &bare);
}

int image_ref_normalise(const char *s, char *out, size_t n, char *err)
{
	struct image_ref r;
	int rc = image_ref_parse(s, &r, err);
	if (rc)
		return rc;
	image_ref_canonical(&r, out, n);
	return 0;
}
