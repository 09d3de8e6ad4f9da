#include "codec/json.h"
#include "util/err.h"
#include "util/mem.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct jp {
	const char *p;
	size_t n, i;
	char *err;
};

static int jp_fail(struct jp *j, const char *what)
{
	return errf(j->err, E_INVAL, "json: %s at offset %zu", what, j->i);
}

static void skip_ws(struct jp *j)
{
	while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' || j->p[j->i] == '\r'))
		j->i++;
}

static int hex4(struct jp *j, unsigned *out)
{
	if (j->n - j->i < 4)
		return jp_fail(j, "short \\u escape");
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		char c = j->p[j->i++];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return jp_fail(j, "bad \\u escape");
	}
	*out = v;
	return 0;
}

static void put_utf8(struct buf *b, unsigned cp)
{
	uint8_t o[4];
	size_t n;
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | (cp >> 6));
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | (cp >> 12));
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		o[0] = (uint8_t)(0xf0 | (cp >> 18));
		o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		o[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(b, o, n);
}

static int parse_escape(struct jp *j, struct buf *b)
{
	if (j->i >= j->n)
		return jp_fail(j, "unterminated string");
	char c = j->p[j->i++];
	const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
	const char *k = strchr(from, c);
	if (c && k) {
		buf_append(b, &to[k - from], 1);
		return 0;
	}
	if (c != 'u')
		return jp_fail(j, "bad escape");
	unsigned cp, lo;
	if (hex4(j, &cp))
		return E_INVAL;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (j->n - j->i < 2 || j->p[j->i] != '\\' || j->p[j->i + 1] != 'u')
			return jp_fail(j, "lone surrogate");
		j->i += 2;
		if (hex4(j, &lo))
			return E_INVAL;
		if (lo < 0xdc00 || lo > 0xdfff)
			return jp_fail(j, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	} else if (cp >= 0xdc00 && cp <= 0xdfff) {
		return jp_fail(j, "lone surrogate");
	}
	if (cp == 0)
		return jp_fail(j, "NUL character in string");
	put_utf8(b, cp);
	return 0;
}

static int parse_string(struct jp *j, char **out)
{
	struct buf b = {0};
	j->i++; /* opening quote */
	for (;;) {
		if (j->i >= j->n) {
			buf_free(&b);
			return jp_fail(j, "unterminated string");
		}
		unsigned char c = (unsigned char)j->p[j->i];
		if (c == '"') {
			j->i++;
			break;
		}
		if (c < 0x20) {
			buf_free(&b);
			return jp_fail(j, "control character in string");
		}
		if (c == '\\') {
			j->i++;
			if (parse_escape(j, &b)) {
				buf_free(&b);
				return E_INVAL;
			}
			continue;
		}
		buf_append(&b, &c, 1);
		j->i++;
	}
	buf_append(&b, "", 1);
	*out = (char *)b.data;
	return 0;
}

static int parse_number(struct jp *j, double *out)
{
	size_t s = j->i;
	const char *p = j->p;
	if (j->i < j->n && p[j->i] == '-')
		j->i++;
	if (j->i >= j->n || p[j->i] < '0' || p[j->i] > '9')
		return jp_fail(j, "bad number");
	if (p[j->i] == '0')
		j->i++;
	else
		while (j->i < j->n && p[j->i] >= '0' && p[j->i] <= '9')
			j->i++;
	if (j->i < j->n && p[j->i] == '.') {
		j->i++;
		if (j->i >= j->n || p[j->i] < '0' || p[j->i] > '9')
			return jp_fail(j, "bad number");
		while (j->i < j->n && p[j->i] >= '0' && p[j->i] <= '9')
			j->i++;
	}
	if (j->i < j->n && (p[j->i] == 'e' || p[j->i] == 'E')) {
		j->i++;
		if (j->i < j->n && (p[j->i] == '+' || p[j->i] == '-'))
			j->i++;
		if (j->i >= j->n || p[j->i] < '0' || p[j->i] > '9')
			return jp_fail(j, "bad number");
		while (j->i < j->n && p[j->i] >= '0' && p[j->i] <= '9')
			j->i++;
	}
	if (j->i - s > 64)
		return jp_fail(j, "number too long");
	char tmp[72];
	memcpy(tmp, p + s, j->i - s);
	tmp[j->i - s] = 0;
	*out = strtod(tmp, NULL);
	return 0;
}

static int parse_lit(struct jp *j, const char *lit)
{
	size_t l = strlen(lit);
	if (j->n - j->i < l || memcmp(j->p + j->i, lit, l))
		return jp_fail(j, "unexpected token");
	j->i += l;
	return 0;
}

static int parse_value(struct jp *j, int depth, struct json **out);

static void push(struct json *c, char *key, struct json *v)
{
	if ((c->n & (c->n - 1)) == 0) { /* grow at powers of two */
		size_t cap = c->n ? c->n * 2 : 1;
		c->items = xrealloc(c->items, cap * sizeof *c->items);
		if (c->type == JSON_OBJ)
			c->keys = xrealloc(c->keys, cap * sizeof *c->keys);
	}
	if (c->type == JSON_OBJ)
		c->keys[c->n] = key;
	c->items[c->n++] = v;
}

static int parse_container(struct jp *j, int depth, struct json *c)
{
	char close = c->type == JSON_OBJ ? '}' : ']';
	j->i++;
	skip_ws(j);
	if (j->i < j->n && j->p[j->i] == close) {
		j->i++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		struct json *v = NULL;
		skip_ws(j);
		if (c->type == JSON_OBJ) {
			if (j->i >= j->n || j->p[j->i] != '"')
				return jp_fail(j, "expected object key");
			if (parse_string(j, &key))
				return E_INVAL;
			skip_ws(j);
			if (j->i >= j->n || j->p[j->i] != ':') {
				free(key);
				return jp_fail(j, "expected ':'");
			}
			j->i++;
		}
		if (parse_value(j, depth + 1, &v)) {
			free(key);
			return E_INVAL;
		}
		push(c, key, v);
		skip_ws(j);
		if (j->i < j->n && j->p[j->i] == ',') {
			j->i++;
			continue;
		}
		if (j->i < j->n && j->p[j->i] == close) {
			j->i++;
			return 0;
		}
		return jp_fail(j, c->type == JSON_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int parse_value(struct jp *j, int depth, struct json **out)
{
	if (depth > JSON_MAX_DEPTH)
		return jp_fail(j, "nesting too deep");
	skip_ws(j);
	if (j->i >= j->n)
		return jp_fail(j, "unexpected end of input");
	struct json *v = xcalloc(1, sizeof *v);
	int rc = 0;
	switch (j->p[j->i]) {
	case '{': v->type = JSON_OBJ; rc = parse_container(j, depth, v); break;
	case '[': v->type = JSON_ARR; rc = parse_container(j, depth, v); break;
	case '"': v->type = JSON_STR; rc = parse_string(j, &v->str); break;
	case 't': v->type = JSON_BOOL; v->b = true; rc = parse_lit(j, "true"); break;
	case 'f': v->type = JSON_BOOL; rc = parse_lit(j, "false"); break;
	case 'n': v->type = JSON_NULL; rc = parse_lit(j, "null"); break;
	default: v->type = JSON_NUM; rc = parse_number(j, &v->num); break;
	}
	if (rc) {
		json_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

int json_parse(const char *p, size_t n, struct json **out, char *err)
{
	*out = NULL;
	if (n > JSON_MAX_SIZE)
		return errf(err, E_INVAL, "json: document of %zu bytes exceeds the %u byte limit", n, JSON_MAX_SIZE);
	struct jp j = {p, n, 0, err};
	struct json *v;
	if (parse_value(&j, 0, &v))
		return E_INVAL;
	skip_ws(&j);
	if (j.i != n) {
		json_free(v);
		return jp_fail(&j, "trailing data");
	}
	*out = v;
	return 0;
}

void json_free(struct json *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		json_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	free(v);
}

const struct json *json_get(const struct json *o, const char *key)
{
	if (!o || o->type != JSON_OBJ)
		return NULL;
	for (size_t i = o->n; i-- > 0;)
		if (!strcmp(o->keys[i], key))
			return o->items[i];
	return NULL;
}

const struct json *json_at(const struct json *a, size_t i)
{
	if (!a || a->type != JSON_ARR || i >= a->n)
		return NULL;
	return a->items[i];
}

const char *json_str(const struct json *v)
{
	return v && v->type == JSON_STR ? v->str : NULL;
}

const char *json_get_str(const struct json *o, const char *key)
{
	return json_str(json_get(o, key));
}

bool json_is(const struct json *v, enum json_type t)
{
	return v && v->type == t;
}

int json_u64(const struct json *v, uint64_t *out)
{
	if (!v || v->type != JSON_NUM || v->num < 0 || v->num >= 18446744073709551616.0 || floor(v->num) != v->num)
		return -1;
	*out = (uint64_t)v->num;
	return 0;
}
