#include "state/schema.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

/* F_ENUM fields are C enums, read and written as int */
_Static_assert(sizeof(enum task_state) == sizeof(int) && sizeof(enum task_desired) == sizeof(int) &&
		       sizeof(enum node_state) == sizeof(int) && sizeof(enum node_avail) == sizeof(int),
	       "state enums are int-sized");

#define AT(obj, f, T) ((T *)((char *)(obj) + (f)->off))
#define CAT(obj, f, T) ((const T *)((const char *)(obj) + (f)->off))

void schema_encode(const struct schema *s, const void *obj, struct mpw *w)
{
	mpw_map_begin(w);
	for (size_t i = 0; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];
		mpw_key(w, f->name);
		switch (f->kind) {
		case F_U64: mpw_u64(w, *CAT(obj, f, uint64_t)); break;
		case F_I64: mpw_i64(w, *CAT(obj, f, int64_t)); break;
		case F_BOOL: mpw_bool(w, *CAT(obj, f, bool)); break;
		case F_STR: { const char *const *sp = (const char *const *)((const char *)obj + f->off); mpw_str(w, *sp ? *sp : ""); break; }
		case F_LABELS: {
			labels_encode(CAT(obj, f, struct labels), w);
			break;
		}
		case F_RAW: {
			const struct rawmp *r = CAT(obj, f, struct rawmp);
			if (r->len)
				mpw_raw(w, r->data, r->len);
			else
				mpw_nil(w);
			break;
		}
		case F_ENUM: mpw_str(w, lifecycle_name(f->states, *CAT(obj, f, int))); break;
		case F_ENDPOINTS: endpoints_encode(CAT(obj, f, struct endpoints), w); break;
		}
	}
	mpw_map_end(w);
}

int schema_decode(const struct schema *s, void *obj, const msgpack_object *map, char *err)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return errf(err, E_INVAL, "%s: expected a map", s->name);
	/* every field is decoded even after a bad one: the first error is reported, and a
	 * caller that keeps the object despite it keeps all the good fields */
	int rc = 0;
	for (size_t i = 0; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];
		const msgpack_object *o = mp_get(map, f->name);
		if (!o || o->type == MSGPACK_OBJECT_NIL)
			continue;
		int bad = 0;
		switch (f->kind) {
		case F_U64: bad = mp_as_u64(o, AT(obj, f, uint64_t)); break;
		case F_I64: bad = mp_as_i64(o, AT(obj, f, int64_t)); break;
		case F_BOOL:
			if (o->type != MSGPACK_OBJECT_BOOLEAN)
				bad = -1;
			else
				*AT(obj, f, bool) = o->via.boolean;
			break;
		case F_STR: {
			char *v = mp_as_strdup(o);
			if (!v)
				bad = -1;
			else {
				free(*AT(obj, f, char *));
				*AT(obj, f, char *) = v;
			}
			break;
		}
		case F_LABELS: {
			if (o->type != MSGPACK_OBJECT_MAP) {
				bad = -1;
				break;
			}
			if (labels_decode(o, AT(obj, f, struct labels)))
				bad = -1;
			break;
		}
		case F_ENUM: {
			int v = mp_is_str(o) ? lifecycle_parse(f->states, o->via.str.ptr, o->via.str.size) : -1;
			if (v < 0 && !rc)
				rc = errf(err, E_INVAL, "%s: field %s: not a %s", s->name, f->name, f->states->what);
			if (v >= 0)
				*AT(obj, f, int) = v;
			break;
		}
		case F_ENDPOINTS: {
			struct endpoints *e = AT(obj, f, struct endpoints);
			endpoints_free(e);
			bad = endpoints_decode(o, e);
			break;
		}
		case F_RAW: {
			/* Re-pack the subtree so the stored bytes are canonical. */
			struct mpw w;
			mpw_init(&w);
			msgpack_pack_object(&w.pk, *o);
			size_t len;
			uint8_t *data = (uint8_t *)mpw_take(&w, &len);
			mpw_free(&w);
			rawmp_set(AT(obj, f, struct rawmp), f->codec, data, len, f->codec ? f->codec->decode(o) : NULL);
			break;
		}
		}
		if (bad && !rc)
			rc = errf(err, E_INVAL, "%s: field %s has the wrong type", s->name, f->name);
	}
	return rc;
}

void schema_free(const struct schema *s, void *obj)
{
	if (!obj)
		return;
	for (size_t i = 0; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];
		switch (f->kind) {
		case F_STR: free(*AT(obj, f, char *)); *AT(obj, f, char *) = NULL; break;
		case F_LABELS: labels_free(AT(obj, f, struct labels)); break;
		case F_RAW: rawmp_clear(AT(obj, f, struct rawmp), f->codec); break;
		case F_ENDPOINTS: endpoints_free(AT(obj, f, struct endpoints)); break;
		default: break;
		}
	}
}

void *schema_dup(const struct schema *s, const void *obj)
{
	struct mpw w;
	mpw_init(&w);
	schema_encode(s, obj, &w);
	struct mpr r;
	void *copy = xcalloc(1, s->size);
	if (mpr_decode(&r, w.sb.data, w.sb.size) == 0) {
		schema_decode(s, copy, r.root, NULL);
		mpr_free(&r);
	}
	mpw_free(&w);
	return copy;
}

void rawmp_clear(struct rawmp *r, const struct raw_codec *c)
{
	if (r->dec && c)
		c->free(r->dec);
	free(r->data);
	memset(r, 0, sizeof *r);
}

void rawmp_set(struct rawmp *r, const struct raw_codec *c, uint8_t *data, size_t len, void *dec)
{
	rawmp_clear(r, c);
	r->data = data;
	r->len = len;
	if (!dec && c && len) {
		struct mpr m;
		if (!mpr_decode(&m, data, len)) {
			dec = c->decode(m.root);
			mpr_free(&m);
		}
	}
	r->dec = c ? dec : NULL;
}

const char *labels_get(const struct labels *l, const char *k)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->k[i], k))
			return l->v[i];
	return NULL;
}

void labels_set(struct labels *l, const char *k, const char *v)
{
	size_t i = 0;
	while (i < l->n && strcmp(l->k[i], k) < 0)
		i++;
	if (i < l->n && !strcmp(l->k[i], k)) {
		free(l->v[i]);
		l->v[i] = xstrdup(v);
		return;
	}
	l->k = xrealloc(l->k, (l->n + 1) * sizeof *l->k);
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	memmove(l->k + i + 1, l->k + i, (l->n - i) * sizeof *l->k);
	memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof *l->v);
	l->k[i] = xstrdup(k);
	l->v[i] = xstrdup(v);
	l->n++;
}

void labels_encode(const struct labels *l, struct mpw *w)
{
	mpw_map_begin(w);
	for (size_t i = 0; i < l->n; i++)
		mpw_kstr(w, l->k[i], l->v[i]);
	mpw_map_end(w);
}

int labels_decode(const msgpack_object *o, struct labels *l)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return -1;
	int rc = 0;
	for (uint32_t j = 0; j < o->via.map.size; j++) {
		char *k = mp_as_strdup(&o->via.map.ptr[j].key), *v = mp_as_strdup(&o->via.map.ptr[j].val);
		if (k && v)
			labels_set(l, k, v);
		else
			rc = -1;
		free(k);
		free(v);
	}
	return rc;
}

void labels_free(struct labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->k[i]);
		free(l->v[i]);
	}
	free(l->k);
	free(l->v);
	memset(l, 0, sizeof *l);
}
