/* JSON for the runtime: a writer into struct buf, and a bounded cursor reader over
 * untrusted text (runc output). The reader never allocates and never recurses deeper
 * than RTJSON_MAX_DEPTH. */
#include "runtime/rtjson.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ---- */

void rtjson_init(struct rtjson_w *w, struct buf *b)
{
	memset(w, 0, sizeof *w);
	w->b = b;
	w->first[0] = true;
}

/* Writes the separator a new value needs at the current position. */
static void sep(struct rtjson_w *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		buf_append(w->b, ",", 1);
	w->first[w->depth] = false;
}

static void open_(struct rtjson_w *w, char c)
{
	sep(w);
	buf_append(w->b, &c, 1);
	if (w->depth < RTJSON_MAX_DEPTH - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void close_(struct rtjson_w *w, char c)
{
	buf_append(w->b, &c, 1);
	if (w->depth > 0)
		w->depth--;
}

void rtjson_obj(struct rtjson_w *w) { open_(w, '{'); }
void rtjson_obj_end(struct rtjson_w *w) { close_(w, '}'); }
void rtjson_arr(struct rtjson_w *w) { open_(w, '['); }
void rtjson_arr_end(struct rtjson_w *w) { close_(w, ']'); }

static void quoted(struct buf *b, const char *s)
{
	buf_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': buf_append(b, "\\\"", 2); break;
		case '\\': buf_append(b, "\\\\", 2); break;
		case '\n': buf_append(b, "\\n", 2); break;
		case '\r': buf_append(b, "\\r", 2); break;
		case '\t': buf_append(b, "\\t", 2); break;
		case '\b': buf_append(b, "\\b", 2); break;
		case '\f': buf_append(b, "\\f", 2); break;
		default:
			if (*p < 0x20)
				buf_printf(b, "\\u%04x", *p);
			else
				buf_append(b, p, 1); /* UTF-8 passes through unchanged */
		}
	}
	buf_append(b, "\"", 1);
}

void rtjson_key(struct rtjson_w *w, const char *k)
{
	sep(w);
	quoted(w->b, k);
	buf_append(w->b, ":", 1);
	w->after_key = true;
}

void rtjson_str(struct rtjson_w *w, const char *s)
{
	sep(w);
	quoted(w->b, s ? s : "");
}

void rtjson_u64(struct rtjson_w *w, uint64_t v)
{
	sep(w);
	buf_printf(w->b, "%" PRIu64, v);
}

void rtjson_raw(struct rtjson_w *w, const struct rtjson_v *v)
{
	sep(w);
	buf_append(w->b, v->p, (size_t)(v->end - v->p));
}

void rtjson_i64(struct rtjson_w *w, int64_t v)
{
	sep(w);
	buf_printf(w->b, "%" PRId64, v);
}

void rtjson_bool(struct rtjson_w *w, bool v)
{
	sep(w);
	buf_printf(w->b, "%s", v ? "true" : "false");
}

void rtjson_kstr(struct rtjson_w *w, const char *k, const char *s) { rtjson_key(w, k); rtjson_str(w, s); }
void rtjson_ku64(struct rtjson_w *w, const char *k, uint64_t v) { rtjson_key(w, k); rtjson_u64(w, v); }
void rtjson_ki64(struct rtjson_w *w, const char *k, int64_t v) { rtjson_key(w, k); rtjson_i64(w, v); }
void rtjson_kbool(struct rtjson_w *w, const char *k, bool v) { rtjson_key(w, k); rtjson_bool(w, v); }

void rtjson_strv(struct rtjson_w *w, const char *const *v)
{
	rtjson_arr(w);
	for (; v && *v; v++)
		rtjson_str(w, *v);
	rtjson_arr_end(w);
}

/* ---- reader ---- */

static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Returns the pointer just past the string starting at p (at '"'), or NULL. */
static const char *skip_string(const char *p, const char *end)
{
	if (p >= end || *p != '"')
		return NULL;
	for (p++; p < end; p++) {
		if (*p == '\\') {
			p++;
			continue;
		}
		if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skip_value(const char *p, const char *end, int depth)
{
	p = ws(p, end);
	if (p >= end || depth > RTJSON_MAX_DEPTH)
		return NULL;
	switch (*p) {
	case '"':
		return skip_string(p, end);
	case '{':
	case '[': {
		char close = *p == '{' ? '}' : ']';
		int obj = *p == '{';
		p = ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = skip_string(ws(p, end), end);
				if (!p)
					return NULL;
				p = ws(p, end);
				if (p >= end || *p != ':')
					return NULL;
				p++;
			}
			p = skip_value(p, end, depth + 1);
			if (!p)
				return NULL;
			p = ws(p, end);
			if (p >= end)
				return NULL;
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p++;
		}
	}
	default: {
		const char *s = p;
		while (p < end && (strchr("+-.eE", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')))
			p++;
		if (p == s)
			return NULL;
		size_t n = (size_t)(p - s);
		if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5)) ||
		    (n == 4 && !memcmp(s, "null", 4)) || *s == '-' || (*s >= '0' && *s <= '9'))
			return p;
		return NULL;
	}
	}
}

int rtjson_parse(const char *text, size_t len, struct rtjson_v *out)
{
	const char *end = text + len;
	const char *p = ws(text, end);
	const char *q = skip_value(p, end, 0);
	if (!q || ws(q, end) != end)
		return -1;
	out->p = p;
	out->end = q;
	return 0;
}

char rtjson_type(const struct rtjson_v *v)
{
	if (!v->p || v->p >= v->end)
		return 0;
	switch (*v->p) {
	case '{': return 'o';
	case '[': return 'a';
	case '"': return 's';
	case 't': return 't';
	case 'f': return 'f';
	case 'n': return 'z';
	default: return 'n';
	}
}

int rtjson_get(const struct rtjson_v *obj, const char *key, struct rtjson_v *out)
{
	if (rtjson_type(obj) != 'o')
		return -1;
	const char *p = obj->p + 1, *end = obj->end;
	size_t klen = strlen(key);
	for (;;) {
		p = ws(p, end);
		if (p >= end || *p == '}')
			return -1;
		const char *ks = p;
		const char *ke = skip_string(p, end);
		if (!ke)
			return -1;
		p = ws(ke, end);
		if (p >= end || *p != ':')
			return -1;
		const char *vs = ws(p + 1, end);
		const char *ve = skip_value(vs, end, 1);
		if (!ve)
			return -1;
		/* Keys with escapes never match: OCI state keys are plain ASCII. */
		if ((size_t)(ke - ks) == klen + 2 && !memcmp(ks + 1, key, klen)) {
			out->p = vs;
			out->end = ve;
			return 0;
		}
		p = ws(ve, end);
		if (p < end && *p == ',')
			p++;
	}
}

int rtjson_next(const struct rtjson_v *arr, size_t *pos, struct rtjson_v *out)
{
	if (rtjson_type(arr) != 'a')
		return -1;
	const char *p = arr->p + 1 + *pos, *end = arr->end;
	p = ws(p, end);
	if (p < end && *p == ',')
		p = ws(p + 1, end);
	if (p >= end)
		return -1;
	if (*p == ']')
		return 0;
	const char *q = skip_value(p, end, 1);
	if (!q)
		return -1;
	out->p = p;
	out->end = q;
	*pos = (size_t)(q - (arr->p + 1));
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int rtjson_string(const struct rtjson_v *v, char *out, size_t cap)
{
	if (rtjson_type(v) != 's' || cap == 0)
		return -1;
	size_t n = 0;
	const char *p = v->p + 1, *end = v->end - 1; /* between the quotes */
	while (p < end) {
		char tmp[4];
		size_t tl = 1;
		if (*p != '\\') {
			tmp[0] = *p++;
		} else {
			if (p + 1 >= end)
				return -1;
			char e = p[1];
			p += 2;
			switch (e) {
			case 'n': tmp[0] = '\n'; break;
			case 't': tmp[0] = '\t'; break;
			case 'r': tmp[0] = '\r'; break;
			case 'b': tmp[0] = '\b'; break;
			case 'f': tmp[0] = '\f'; break;
			case 'u': {
				if (end - p < 4)
					return -1;
				unsigned cp = 0;
				for (int i = 0; i < 4; i++) {
					int h = hexval(p[i]);
					if (h < 0)
						return -1;
					cp = cp << 4 | (unsigned)h;
				}
				p += 4;
				/* Surrogate pairs are not combined: a lone '?' is good enough here. */
				if (cp < 0x80) {
					tmp[0] = (char)cp;
				} else if (cp < 0x800) {
					tmp[0] = (char)(0xc0 | cp >> 6);
					tmp[1] = (char)(0x80 | (cp & 0x3f));
					tl = 2;
				} else if (cp >= 0xd800 && cp < 0xe000) {
					tmp[0] = '?';
				} else {
					tmp[0] = (char)(0xe0 | cp >> 12);
					tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
					tmp[2] = (char)(0x80 | (cp & 0x3f));
					tl = 3;
				}
				break;
			}
			default: tmp[0] = e; break; /* \" \\ \/ */
			}
		}
		if (n + tl < cap) {
			memcpy(out + n, tmp, tl);
			n += tl;
		}
	}
	out[n] = 0;
	return 0;
}

int rtjson_int(const struct rtjson_v *v, int64_t *out)
{
	if (rtjson_type(v) != 'n')
		return -1;
	char tmp[32];
	size_t n = (size_t)(v->end - v->p);
	if (n == 0 || n >= sizeof tmp)
		return -1;
	memcpy(tmp, v->p, n);
	tmp[n] = 0;
	char *e = NULL;
	long long x = strtoll(tmp, &e, 10);
	if (*e)
		return -1;
	*out = x;
	return 0;
}

int rtjson_get_str(const struct rtjson_v *obj, const char *key, char *out, size_t cap)
{
	struct rtjson_v v;
	return rtjson_get(obj, key, &v) ? -1 : rtjson_string(&v, out, cap);
}

int rtjson_get_int(const struct rtjson_v *obj, const char *key, int64_t *out)
{
	struct rtjson_v v;
	return rtjson_get(obj, key, &v) ? -1 : rtjson_int(&v, out);
}
