#include "net/proto.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

#define PROTO_FIELD_(S, kind, field, presence, arg) \
	{#field, PK_##kind, PROTO_##presence##_, arg, offsetof(struct req_##S, field)},
#define PROTO_REQ_ true
#define PROTO_OPT_ false
/* each list ends with a sentinel, so that an op without fields still has an array */
#define PROTO_FIELDS_(ID, low, name, via, run, handler) \
	static const struct proto_field low##_fields_[] = {REQ_##low(PROTO_FIELD_, low){NULL, PK_STR, false, 0, 0}};
PROTO_OPS(PROTO_FIELDS_)

#define PROTO_OP_(ID, low, nm, via, run, handler) \
	[OP_##ID] = {nm, VIA_##via, RUN_##run, low##_fields_, sizeof low##_fields_ / sizeof low##_fields_[0] - 1, \
		     sizeof(struct req_##low)},
const struct proto_op proto_ops[OP__COUNT] = {PROTO_OPS(PROTO_OP_)};

int proto_lookup(const msgpack_object *name, enum op *op)
{
	if (!mp_is_str(name))
		return -1;
	for (int i = 0; i < OP__COUNT; i++) {
		const char *n = proto_ops[i].name;
		if (strlen(n) == name->via.str.size && !memcmp(n, name->via.str.ptr, name->via.str.size)) {
			*op = (enum op)i;
			return 0;
		}
	}
	return -1;
}

typedef const char *cstr;
#define AT(args, f, T) ((T *)((char *)(args) + (f)->off))
#define CAT(args, f, T) ((const T *)((const char *)(args) + (f)->off))

static const char *kind_says(enum proto_kind k)
{
	switch (k) {
	case PK_STR: return "a string";
	case PK_U64: return "a whole number >= 0";
	case PK_I64: return "a whole number";
	case PK_BOOL: return "true or false";
	case PK_MAP: return "a map";
	case PK_ARR: return "an array";
	case PK_BIN: return "binary";
	case PK_ANY: break;
	}
	return "a value";
}

static bool kind_ok(enum proto_kind k, const msgpack_object *o)
{
	switch (k) {
	case PK_STR: return o->type == MSGPACK_OBJECT_STR;
	case PK_U64: return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
	case PK_I64: {
		int64_t v;
		return !mp_as_i64(o, &v);
	}
	case PK_BOOL: return o->type == MSGPACK_OBJECT_BOOLEAN;
	case PK_MAP: return o->type == MSGPACK_OBJECT_MAP;
	case PK_ARR: return o->type == MSGPACK_OBJECT_ARRAY;
	case PK_BIN: return o->type == MSGPACK_OBJECT_BIN;
	case PK_ANY: return true;
	}
	return false;
}

int proto_decode(enum op op, const msgpack_object *req, void **args, char *err)
{
	const struct proto_op *d = &proto_ops[op];
	*args = NULL;
	if (!req || req->type != MSGPACK_OBJECT_MAP)
		return errf(err, E_INVAL, "%s: the request must be a map", d->name);
	/* check every field first, and size the strings: one allocation holds it all */
	size_t strings = 0;
	for (size_t i = 0; i < d->nfields; i++) {
		const struct proto_field *f = &d->fields[i];
		const msgpack_object *o = mp_get(req, f->name);
		if (!o || o->type == MSGPACK_OBJECT_NIL) {
			if (f->required)
				return errf(err, E_INVAL, "%s: field %s is required", d->name, f->name);
			continue;
		}
		if (!kind_ok(f->kind, o))
			return errf(err, E_INVAL, "%s: field %s must be %s", d->name, f->name, kind_says(f->kind));
		if (f->kind != PK_STR)
			continue;
		if (f->arg && o->via.str.size > (uint64_t)f->arg)
			return errf(err, E_INVAL, "%s: field %s is longer than %lld bytes", d->name, f->name, (long long)f->arg);
		if (memchr(o->via.str.ptr, 0, o->via.str.size))
			return errf(err, E_INVAL, "%s: field %s contains a NUL byte", d->name, f->name);
		strings += o->via.str.size + 1;
	}
	char *a = xcalloc(1, d->size + strings), *s = a + d->size;
	*(uint64_t *)a = 0; /* the id: the dispatcher's to set */
	for (size_t i = 0; i < d->nfields; i++) {
		const struct proto_field *f = &d->fields[i];
		const msgpack_object *o = mp_get(req, f->name);
		bool absent = !o || o->type == MSGPACK_OBJECT_NIL;
		switch (f->kind) {
		case PK_STR:
			if (!absent) {
				memcpy(s, o->via.str.ptr, o->via.str.size);
				*AT(a, f, cstr) = s;
				s += o->via.str.size + 1;
			}
			break;
		case PK_U64: *AT(a, f, uint64_t) = absent ? (uint64_t)f->arg : o->via.u64; break;
		case PK_I64:
			*AT(a, f, int64_t) = f->arg;
			if (!absent)
				mp_as_i64(o, AT(a, f, int64_t));
			break;
		case PK_BOOL: *AT(a, f, bool) = !absent && o->via.boolean; break;
		case PK_MAP:
		case PK_ARR:
		case PK_ANY: AT(a, f, struct proto_doc)->obj = absent ? NULL : o; break;
		case PK_BIN:
			if (!absent) {
				AT(a, f, struct proto_bin)->p = o->via.bin.ptr;
				AT(a, f, struct proto_bin)->n = o->via.bin.size;
			}
			break;
		}
	}
	*args = a;
	return 0;
}

void proto_encode(struct mpw *w, enum op op, uint64_t id, const void *args)
{
	const struct proto_op *d = &proto_ops[op];
	mpw_map_begin(w);
	mpw_kstr(w, "op", d->name);
	mpw_ku64(w, "id", id);
	for (size_t i = 0; args && i < d->nfields; i++) {
		const struct proto_field *f = &d->fields[i];
		switch (f->kind) {
		case PK_STR:
			if (*CAT(args, f, cstr))
				mpw_kstr(w, f->name, *CAT(args, f, cstr));
			break;
		case PK_U64: mpw_ku64(w, f->name, *CAT(args, f, uint64_t)); break;
		case PK_I64: mpw_ki64(w, f->name, *CAT(args, f, int64_t)); break;
		case PK_BOOL: mpw_kbool(w, f->name, *CAT(args, f, bool)); break;
		case PK_MAP:
		case PK_ARR:
		case PK_ANY: {
			const struct proto_doc *doc = CAT(args, f, struct proto_doc);
			if (doc->obj) {
				mpw_key(w, f->name);
				mpw_obj(w, doc->obj);
			} else if (doc->len) {
				mpw_key(w, f->name);
				mpw_raw(w, doc->raw, doc->len);
			}
			break;
		}
		case PK_BIN: {
			const struct proto_bin *b = CAT(args, f, struct proto_bin);
			if (b->p) {
				mpw_key(w, f->name);
				mpw_bin(w, b->p, b->n);
			}
			break;
		}
		}
	}
	mpw_map_end(w);
}
