#include "codec/fields.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

typedef const char *cstr;
#define AT(obj, f, T) ((T *)((char *)(obj) + (f)->off))
#define CAT(obj, f, T) ((const T *)((const char *)(obj) + (f)->off))

static const char *kind_says(enum fl_kind k)
{
	switch (k) {
	case FL_STR: return "a string";
	case FL_U64: return "a whole number >= 0";
	case FL_I64: return "a whole number";
	case FL_BOOL: return "true or false";
	case FL_MAP: return "a map";
	case FL_ARR: return "an array";
	case FL_BIN: return "binary";
	case FL_ANY: break;
	}
	return "a value";
}

static bool kind_ok(enum fl_kind k, const msgpack_object *o)
{
	int64_t v;
	switch (k) {
	case FL_STR: return o->type == MSGPACK_OBJECT_STR;
	case FL_U64: return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
	case FL_I64: return !mp_as_i64(o, &v);
	case FL_BOOL: return o->type == MSGPACK_OBJECT_BOOLEAN;
	case FL_MAP: return o->type == MSGPACK_OBJECT_MAP;
	case FL_ARR: return o->type == MSGPACK_OBJECT_ARRAY;
	case FL_BIN: return o->type == MSGPACK_OBJECT_BIN;
	case FL_ANY: return true;
	}
	return false;
}

static const msgpack_object *present(const msgpack_object *map, const struct fl_field *f)
{
	const msgpack_object *o = mp_get(map, f->name);
	return o && o->type != MSGPACK_OBJECT_NIL ? o : NULL;
}

int fl_decode(const char *what, const struct fl_field *f, size_t n, const msgpack_object *map, size_t size, void **out,
	      char *err)
{
	if (out)
		*out = NULL;
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return errf(err, E_INVAL, "%s: expected a map", what);
	/* check every field first, and size the strings: one allocation holds it all */
	size_t strings = 0;
	for (size_t i = 0; i < n; i++) {
		const msgpack_object *o = present(map, &f[i]);
		if (!o) {
			if (f[i].required)
				return errf(err, E_INVAL, "%s: field %s is required", what, f[i].name);
			continue;
		}
		if (!kind_ok(f[i].kind, o))
			return errf(err, E_INVAL, "%s: field %s must be %s", what, f[i].name, kind_says(f[i].kind));
		if (f[i].kind != FL_STR)
			continue;
		if (f[i].arg && o->via.str.size > (uint64_t)f[i].arg)
			return errf(err, E_INVAL, "%s: field %s is longer than %lld bytes", what, f[i].name, (long long)f[i].arg);
		if (memchr(o->via.str.ptr, 0, o->via.str.size))
			return errf(err, E_INVAL, "%s: field %s contains a NUL byte", what, f[i].name);
		strings += o->via.str.size + 1;
	}
	if (!out)
		return 0;
	char *a = xcalloc(1, size + strings), *s = a + size;
	for (size_t i = 0; i < n; i++) {
		const msgpack_object *o = present(map, &f[i]);
		switch (f[i].kind) {
		case FL_STR:
			if (o) {
				memcpy(s, o->via.str.ptr, o->via.str.size);
				*AT(a, &f[i], cstr) = s;
				s += o->via.str.size + 1;
			}
			break;
		case FL_U64: *AT(a, &f[i], uint64_t) = o ? o->via.u64 : (uint64_t)f[i].arg; break;
		case FL_I64:
			*AT(a, &f[i], int64_t) = f[i].arg;
			if (o)
				mp_as_i64(o, AT(a, &f[i], int64_t));
			break;
		case FL_BOOL: *AT(a, &f[i], bool) = o && o->via.boolean; break;
		case FL_MAP:
		case FL_ARR:
		case FL_ANY: AT(a, &f[i], struct fl_doc)->obj = o; break;
		case FL_BIN:
			if (o) {
				AT(a, &f[i], struct fl_bin)->p = o->via.bin.ptr;
				AT(a, &f[i], struct fl_bin)->n = o->via.bin.size;
			}
			break;
		}
	}
	*out = a;
	return 0;
}

void fl_encode(struct mpw *w, const struct fl_field *f, size_t n, const void *obj)
{
	for (size_t i = 0; i < n; i++) {
		switch (f[i].kind) {
		case FL_STR:
			if (*CAT(obj, &f[i], cstr))
				mpw_kstr(w, f[i].name, *CAT(obj, &f[i], cstr));
			break;
		case FL_U64: mpw_ku64(w, f[i].name, *CAT(obj, &f[i], uint64_t)); break;
		case FL_I64: mpw_ki64(w, f[i].name, *CAT(obj, &f[i], int64_t)); break;
		case FL_BOOL: mpw_kbool(w, f[i].name, *CAT(obj, &f[i], bool)); break;
		case FL_MAP:
		case FL_ARR:
		case FL_ANY: {
			const struct fl_doc *doc = CAT(obj, &f[i], struct fl_doc);
			if (doc->obj) {
				mpw_key(w, f[i].name);
				mpw_obj(w, doc->obj);
			} else if (doc->len) {
				mpw_key(w, f[i].name);
				mpw_raw(w, doc->raw, doc->len);
			}
			break;
		}
		case FL_BIN: {
			const struct fl_bin *b = CAT(obj, &f[i], struct fl_bin);
			if (b->p) {
				mpw_key(w, f[i].name);
				mpw_bin(w, b->p, b->n);
			}
			break;
		}
		}
	}
}
