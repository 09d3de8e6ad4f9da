/* Interpolation as Compose's template rules describe it (see interp.h). Recursive only
 * through nested defaults, bounded by DEPTH_MAX; every byte is visited a bounded number of
 * times per level, so a long value costs linear time. */
#include "spec/interp.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 16

const char *interp_lookup(const struct labels *env, const char *name)
{
	size_t lo = 0, hi = env ? env->n : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(env->k[mid], name);
		if (!c)
			return env->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool name_start(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool name_char(char c)
{
	return name_start(c) || (c >= '0' && c <= '9');
}

struct ictx {
	const struct labels *env;
	struct interp_res *res;
	char *msg;
};

static int expand(struct ictx *c, const char *s, size_t len, struct buf *out, int depth);

/* The end of a braced argument starting at s: the '}' that closes the reference, skipping
 * nested "${...}" and "$$". */
static const char *arg_end(const char *s, const char *end)
{
	int depth = 1;
	while (s < end) {
		if (s[0] == '$' && s + 1 < end && (s[1] == '$' || s[1] == '{')) {
			depth += s[1] == '{';
			s += 2;
			continue;
		}
		if (*s == '}' && --depth == 0)
			return s;
		s++;
	}
	return NULL;
}

static void note_unset(struct ictx *c, const char *name, size_t n)
{
	if (!c->res->unset[0] && n <= INTERP_NAME_MAX) {
		memcpy(c->res->unset, name, n);
		c->res->unset[n] = 0;
	}
}

/* One "${...}" whose body is body[0..len); appends its value. */
static int braced(struct ictx *c, const char *body, size_t len, struct buf *out, int depth)
{
	size_t n = 0;
	while (n < len && (n ? name_char(body[n]) : name_start(body[n])))
		n++;
	if (!n || n > INTERP_NAME_MAX)
		return errf(c->msg, E_INVAL, "invalid interpolation \"${%.*s}\": expected a variable name "
			    "(write $$ for a literal '$')", (int)(len > 60 ? 60 : len), body);
	char name[INTERP_NAME_MAX + 1];
	memcpy(name, body, n);
	name[n] = 0;
	const char *val = interp_lookup(c->env, name);
	if (n == len) {
		if (!val)
			note_unset(c, name, n);
		buf_append(out, val ? val : "", val ? strlen(val) : 0);
		return 0;
	}
	bool colon = body[n] == ':';
	size_t op = n + colon;
	if (op >= len || !strchr("-?+", body[op]))
		return errf(c->msg, E_INVAL, "invalid interpolation \"${%.*s}\": after the name expected '}', "
			    ":-, -, :?, ?, :+ or +", (int)(len > 60 ? 60 : len), body);
	const char *arg = body + op + 1;
	size_t alen = len - op - 1;
	/* with the colon an empty value counts as unset, as in the shell */
	bool set = val && (!colon || *val);
	switch (body[op]) {
	case '-':
		if (set) {
			buf_append(out, val, strlen(val));
			return 0;
		}
		return expand(c, arg, alen, out, depth + 1);
	case '+':
		return set ? expand(c, arg, alen, out, depth + 1) : 0;
	default: { /* '?' */
		if (set) {
			buf_append(out, val, strlen(val));
			return 0;
		}
		struct buf m = {0};
		int rc = expand(c, arg, alen, &m, depth + 1);
		buf_append(&m, "", 1);
		if (!rc)
			rc = errf(c->msg, E_INVAL, "required variable %s is %s%s%s", name, val ? "empty" : "not set",
				  alen ? ": " : "", (char *)m.data);
		buf_free(&m);
		return rc;
	}
	}
}

static int expand(struct ictx *c, const char *s, size_t len, struct buf *out, int depth)
{
	if (depth > DEPTH_MAX)
		return errf(c->msg, E_INVAL, "interpolation nested more than %d levels deep", DEPTH_MAX);
	const char *end = s + len;
	while (s < end) {
		const char *d = memchr(s, '$', (size_t)(end - s));
		if (!d) {
			buf_append(out, s, (size_t)(end - s));
			break;
		}
		buf_append(out, s, (size_t)(d - s));
		s = d + 1;
		if (s < end && *s == '$') {
			buf_append(out, "$", 1);
			s++;
			c->res->changed = true;
		} else if (s < end && *s == '{') {
			const char *close = arg_end(s + 1, end);
			if (!close)
				return errf(c->msg, E_INVAL, "invalid interpolation: \"${\" without its closing '}'");
			int rc = braced(c, s + 1, (size_t)(close - s - 1), out, depth);
			if (rc)
				return rc;
			s = close + 1;
			c->res->changed = true;
		} else if (s < end && name_start(*s)) {
			const char *n = s;
			while (s < end && name_char(*s))
				s++;
			if ((size_t)(s - n) > INTERP_NAME_MAX)
				return errf(c->msg, E_INVAL, "invalid interpolation: variable name longer than %d characters",
					    INTERP_NAME_MAX);
			char name[INTERP_NAME_MAX + 1];
			memcpy(name, n, (size_t)(s - n));
			name[s - n] = 0;
			const char *val = interp_lookup(c->env, name);
			if (!val)
				note_unset(c, name, (size_t)(s - n));
			buf_append(out, val ? val : "", val ? strlen(val) : 0);
			c->res->changed = true;
		} else {
			buf_append(out, "$", 1); /* not a reference: kept, as Compose keeps it */
		}
	}
	return 0;
}

int interp_string(const char *in, const struct labels *env, struct interp_res *res, char *msg)
{
	memset(res, 0, sizeof *res);
	struct ictx c = {env, res, msg};
	struct buf out = {0};
	int rc = expand(&c, in, strlen(in), &out, 0);
	if (rc) {
		buf_free(&out);
		return rc;
	}
	buf_append(&out, "", 1);
	res->out = (char *)out.data;
	return 0;
}
