#include "codec/mp.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mpw_init(struct mpw *w)
{
	w->depth = 0;
	msgpack_sbuffer_init(&w->sb);
	msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
}

void mpw_free(struct mpw *w)
{
	msgpack_sbuffer_destroy(&w->sb);
}

char *mpw_take(struct mpw *w, size_t *len)
{
	*len = w->sb.size;
	w->depth = 0;
	if (!w->sb.data)
		return xstrdup("");
	/* trimmed: the buffer grows in 8 KB steps, and what is taken is often kept (an agent
	 * keeps each task's spec and image, a hundred tasks a node) */
	char *p = msgpack_sbuffer_release(&w->sb);
	return xrealloc(p, *len ? *len : 1);
}

void mpw_map_begin(struct mpw *w)
{
	static const char reserved[5] = {(char)0xdf, 0, 0, 0, 0};
	if (w->depth == MPW_DEPTH)
		abort(); /* nesting is fixed by the code that writes, never by input */
	w->open[w->depth].off = w->sb.size;
	w->open[w->depth].n = 0;
	w->depth++;
	msgpack_sbuffer_write(&w->sb, reserved, sizeof reserved);
}

void mpw_map_end(struct mpw *w)
{
	if (!w->depth)
		abort();
	w->depth--;
	size_t off = w->open[w->depth].off, body = w->sb.size - off - 5;
	uint32_t n = w->open[w->depth].n;
	uint8_t *p = (uint8_t *)w->sb.data + off;
	size_t h;
	if (n < 16) {
		p[0] = (uint8_t)(0x80 | n);
		h = 1;
	} else if (n < 65536) {
		p[0] = 0xde;
		p[1] = (uint8_t)(n >> 8);
		p[2] = (uint8_t)n;
		h = 3;
	} else {
		p[0] = 0xdf;
		p[1] = (uint8_t)(n >> 24);
		p[2] = (uint8_t)(n >> 16);
		p[3] = (uint8_t)(n >> 8);
		p[4] = (uint8_t)n;
		h = 5;
	}
	if (h < 5) {
		memmove(p + h, p + 5, body);
		w->sb.size -= 5 - h;
	}
}

static void count_entry(struct mpw *w)
{
	if (w->depth)
		w->open[w->depth - 1].n++;
}

void mpw_key(struct mpw *w, const char *k)
{
	count_entry(w);
	mpw_str(w, k);
}

void mpw_keyn(struct mpw *w, const char *k, size_t n)
{
	count_entry(w);
	mpw_strn(w, k, n);
}

void mpw_key_obj(struct mpw *w, const msgpack_object *k)
{
	count_entry(w);
	msgpack_pack_object(&w->pk, *k);
}

void mpw_obj(struct mpw *w, const msgpack_object *o)
{
	msgpack_pack_object(&w->pk, *o);
}

void mpw_arr(struct mpw *w, uint32_t n) { msgpack_pack_array(&w->pk, n); }
void mpw_u64(struct mpw *w, uint64_t v) { msgpack_pack_uint64(&w->pk, v); }
void mpw_i64(struct mpw *w, int64_t v) { msgpack_pack_int64(&w->pk, v); }
void mpw_nil(struct mpw *w) { msgpack_pack_nil(&w->pk); }
void mpw_bool(struct mpw *w, bool v) { v ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk); }

void mpw_strn(struct mpw *w, const char *s, size_t n)
{
	msgpack_pack_str(&w->pk, n);
	msgpack_pack_str_body(&w->pk, s, n);
}

void mpw_str(struct mpw *w, const char *s)
{
	if (!s)
		mpw_nil(w);
	else
		mpw_strn(w, s, strlen(s));
}

void mpw_bin(struct mpw *w, const void *p, size_t n)
{
	msgpack_pack_bin(&w->pk, n);
	msgpack_pack_bin_body(&w->pk, p, n);
}

void mpw_raw(struct mpw *w, const void *p, size_t n)
{
	if (!n)
		return;
	msgpack_sbuffer_write(&w->sb, p, n);
}

void mpw_kstr(struct mpw *w, const char *k, const char *v) { mpw_key(w, k); mpw_str(w, v); }
void mpw_ku64(struct mpw *w, const char *k, uint64_t v) { mpw_key(w, k); mpw_u64(w, v); }
void mpw_ki64(struct mpw *w, const char *k, int64_t v) { mpw_key(w, k); mpw_i64(w, v); }
void mpw_kbool(struct mpw *w, const char *k, bool v) { mpw_key(w, k); mpw_bool(w, v); }

/* Walks the encoding without allocating and checks that every container's declared
 * size fits in the bytes that remain (each element takes at least one byte). msgpack-c
 * allocates what a header declares before reading the elements, so a 10-byte frame
 * claiming 4 billion entries would otherwise ask for tens of GiB. */
static int mp_validate(const uint8_t *p, size_t n, size_t max_objects)
{
	size_t pos = 0, pending = 1, objects = 0;
	while (pending) {
		if (pos >= n)
			return -1;
		if (max_objects && ++objects > max_objects)
			return MPR_TOO_MANY;
		uint8_t b = p[pos++];
		pending--;
		uint64_t len = 0, count = 0;
		size_t hdr = 0;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			continue;
		if ((b & 0xf0) == 0x80)
			count = 2u * (b & 0x0f);
		else if ((b & 0xf0) == 0x90)
			count = b & 0x0f;
		else if ((b & 0xe0) == 0xa0)
			len = b & 0x1f;
		else {
			switch (b) {
			case 0xc4: case 0xd9: hdr = 1; break;
			case 0xc5: case 0xda: hdr = 2; break;
			case 0xc6: case 0xdb: hdr = 4; break;
			case 0xc7: hdr = 1; len = 1; break;
			case 0xc8: hdr = 2; len = 1; break;
			case 0xc9: hdr = 4; len = 1; break;
			case 0xca: len = 4; break;
			case 0xcb: len = 8; break;
			case 0xcc: case 0xd0: len = 1; break;
			case 0xcd: case 0xd1: len = 2; break;
			case 0xce: case 0xd2: len = 4; break;
			case 0xcf: case 0xd3: len = 8; break;
			case 0xd4: len = 2; break;
			case 0xd5: len = 3; break;
			case 0xd6: len = 5; break;
			case 0xd7: len = 9; break;
			case 0xd8: len = 17; break;
			case 0xdc: case 0xde: hdr = 2; break;
			case 0xdd: case 0xdf: hdr = 4; break;
			default: return -1; /* 0xc1 */
			}
			if (hdr) {
				if (n - pos < hdr)
					return -1;
				uint64_t v = 0;
				for (size_t i = 0; i < hdr; i++)
					v = v << 8 | p[pos + i];
				pos += hdr;
				if (b == 0xdc || b == 0xdd)
					count = v;
				else if (b == 0xde || b == 0xdf)
					count = 2 * v;
				else
					len += v;
			}
		}
		if (len > n - pos)
			return -1;
		pos += len;
		if (count > n - pos)
			return -1;
		pending += count;
		if (pending > n - pos + 1)
			return -1;
	}
	return 0;
}

int mpr_decode(struct mpr *r, const void *p, size_t n)
{
	return mpr_decode_max(r, p, n, 0);
}

int mpr_decode_max(struct mpr *r, const void *p, size_t n, size_t max_objects)
{
	r->root = NULL;
	r->copy = NULL;
	int rc = mp_validate(p, n, max_objects);
	if (rc)
		return rc;
	size_t off = 0;
	msgpack_unpacked_init(&r->u);
	r->root = NULL;
	r->copy = xmalloc(n ? n : 1);
	if (n)
		memcpy(r->copy, p, n);
	if (msgpack_unpack_next(&r->u, r->copy, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n) {
		msgpack_unpacked_destroy(&r->u);
		free(r->copy);
		r->copy = NULL;
		r->root = NULL;
		return -1;
	}
	r->root = &r->u.data;
	return 0;
}

void mpr_free(struct mpr *r)
{
	if (!r->root)
		return;
	msgpack_unpacked_destroy(&r->u);
	free(r->copy);
	r->copy = NULL;
	r->root = NULL;
}

bool mp_is_str(const msgpack_object *o)
{
	return o && o->type == MSGPACK_OBJECT_STR;
}

bool mp_str_eq(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return mp_is_str(o) && o->via.str.size == n && !memcmp(o->via.str.ptr, s, n);
}

int mp_str_find(const msgpack_object *o, const void *table, size_t n, size_t stride)
{
	if (!mp_is_str(o))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *name = *(const char *const *)((const char *)table + i * stride);
		if (strlen(name) == o->via.str.size && !memcmp(name, o->via.str.ptr, o->via.str.size))
			return (int)i;
	}
	return -1;
}

const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (mp_str_eq(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

int mp_as_u64(const msgpack_object *o, uint64_t *out)
{
	if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*out = o->via.u64;
	return 0;
}

int mp_as_i64(const msgpack_object *o, int64_t *out)
{
	if (!o)
		return -1;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
		*out = (int64_t)o->via.u64;
		return 0;
	}
	return -1;
}

char *mp_as_strdup(const msgpack_object *o)
{
	if (!mp_is_str(o))
		return NULL;
	return xstrndup(o->via.str.ptr, o->via.str.size);
}

int mp_get_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
	return mp_as_u64(mp_get(map, key), out);
}

int mp_get_i64(const msgpack_object *map, const char *key, int64_t *out)
{
	return mp_as_i64(mp_get(map, key), out);
}

int mp_get_bool(const msgpack_object *map, const char *key, bool *out)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
		return -1;
	*out = o->via.boolean;
	return 0;
}

int mp_get_strbuf(const msgpack_object *map, const char *key, char *buf, size_t size)
{
	const msgpack_object *o = mp_get(map, key);
	if (!mp_is_str(o) || o->via.str.size >= size || memchr(o->via.str.ptr, 0, o->via.str.size))
		return -1;
	memcpy(buf, o->via.str.ptr, o->via.str.size);
	buf[o->via.str.size] = 0;
	return 0;
}

char *mp_get_strdup(const msgpack_object *map, const char *key)
{
	return mp_as_strdup(mp_get(map, key));
}

static void json_str(const char *p, size_t n, struct buf *out)
{
	buf_append(out, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			buf_append(out, e, 2);
		} else if (c < 0x20) {
			buf_printf(out, "\\u%04x", c);
		} else {
			buf_append(out, &p[i], 1);
		}
	}
	buf_append(out, "\"", 1);
}

void mp_to_json(const msgpack_object *o, struct buf *out)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: buf_printf(out, "null"); break;
	case MSGPACK_OBJECT_BOOLEAN: buf_printf(out, o->via.boolean ? "true" : "false"); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: buf_printf(out, "%llu", (unsigned long long)o->via.u64); break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: buf_printf(out, "%lld", (long long)o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: buf_printf(out, "%.17g", o->via.f64); break;
	case MSGPACK_OBJECT_STR: json_str(o->via.str.ptr, o->via.str.size, out); break;
	case MSGPACK_OBJECT_BIN: {
		char *h = xmalloc(o->via.bin.size * 2 + 1);
		hex_encode((const uint8_t *)o->via.bin.ptr, o->via.bin.size, h);
		json_str(h, strlen(h), out);
		free(h);
		break;
	}
	case MSGPACK_OBJECT_ARRAY:
		buf_append(out, "[", 1);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				buf_append(out, ",", 1);
			mp_to_json(&o->via.array.ptr[i], out);
		}
		buf_append(out, "]", 1);
		break;
	case MSGPACK_OBJECT_MAP:
		buf_append(out, "{", 1);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			if (i)
				buf_append(out, ",", 1);
			const msgpack_object *k = &o->via.map.ptr[i].key;
			if (k->type == MSGPACK_OBJECT_STR)
				json_str(k->via.str.ptr, k->via.str.size, out);
			else {
				struct buf kb = {0};
				mp_to_json(k, &kb);
				json_str((const char *)kb.data, kb.len, out);
				buf_free(&kb);
			}
			buf_append(out, ":", 1);
			mp_to_json(&o->via.map.ptr[i].val, out);
		}
		buf_append(out, "}", 1);
		break;
	default: buf_printf(out, "null"); break;
	}
}
