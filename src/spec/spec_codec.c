/* Defaults, canonical msgpack encoding, decoding and freeing of service specs, all by
 * walking the field lists in spec_table.c. Every field is always encoded (defaults
 * filled) in table order, so equal specs give identical bytes. */
#include "spec/spec_table.h"
#include "spec/units.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT(obj, f, T) ((T *)((char *)(obj) + (f)->off))
#define CAT(obj, f, T) ((const T *)((const char *)(obj) + (f)->off))

static bool is_u64_kind(enum sf_kind k)
{
	return k == SF_U64 || k == SF_DUR || k == SF_BYTES || k == SF_CPUS || k == SF_MODE;
}

static void table_defaults(const struct sf_table *t, void *obj)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct sf *f = &t->f[i];
		if (is_u64_kind(f->kind))
			*AT(obj, f, uint64_t) = f->def;
		else if (f->kind == SF_BOOL)
			*AT(obj, f, bool) = f->def != 0;
		else if (f->kind == SF_ENUM)
			*AT(obj, f, int) = (int)f->def;
		else if (f->kind == SF_RATIO)
			*AT(obj, f, double) = 0;
		else if (f->kind == SF_SUB)
			table_defaults(f->sub, AT(obj, f, char));
	}
}

void svc_spec_init(struct svc_spec *s)
{
	memset(s, 0, sizeof *s);
	table_defaults(&svc_table, s);
}

static void table_free_mounts(struct mount_list *l)
{
	for (size_t j = 0; j < l->n; j++)
		mount_spec_free(&l->v[j]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void table_free(const struct sf_table *t, void *obj)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct sf *f = &t->f[i];
		switch (f->kind) {
		case SF_STR: {
			char **p = AT(obj, f, char *);
			free(*p);
			*p = NULL;
			break;
		}
		case SF_ARGV: strv_free(AT(obj, f, struct strv)); break;
		case SF_ENV:
		case SF_LABELS: labels_free(AT(obj, f, struct labels)); break;
		case SF_PORTS: {
			struct port_list *l = AT(obj, f, struct port_list);
			free(l->v);
			l->v = NULL;
			l->n = 0;
			break;
		}
		case SF_MOUNTS: table_free_mounts(AT(obj, f, struct mount_list)); break;
		case SF_CONSTRAINTS: {
			struct constraint_list *l = AT(obj, f, struct constraint_list);
			for (size_t j = 0; j < l->n; j++) {
				free(l->v[j].label);
				free(l->v[j].value);
			}
			free(l->v);
			l->v = NULL;
			l->n = 0;
			break;
		}
		case SF_HCTEST: strv_free(&AT(obj, f, struct healthcheck)->test); break;
		case SF_SUB: table_free(f->sub, AT(obj, f, char)); break;
		case SF_LIST:
		case SF_NAMED: {
			struct sf_list *l = AT(obj, f, struct sf_list);
			for (size_t j = 0; j < l->n; j++)
				table_free(f->sub, (char *)l->v + j * f->size);
			free(l->v);
			l->v = NULL;
			l->n = 0;
			break;
		}
		case SF_FILES: {
			struct file_ref_list *l = AT(obj, f, struct file_ref_list);
			for (size_t j = 0; j < l->n; j++)
				table_free(f->sub, &l->v[j]);
			free(l->v);
			l->v = NULL;
			l->n = 0;
			break;
		}
		default: break;
		}
	}
}

void svc_spec_free(struct svc_spec *s)
{
	table_free(&svc_table, s);
	buf_free(&s->env_sealed);
}

/* ---- encoding ---- */

static const char *const hc_words[] = {NULL, "NONE", "CMD", "CMD-SHELL"};

static void table_encode(const struct sf_table *t, const void *obj, struct mpw *w);

static void field_encode(const struct sf *f, const void *obj, struct mpw *w)
{
	switch (f->kind) {
	case SF_STR: mpw_str(w, *(char *const *)((const char *)obj + f->off)); break;
	case SF_U64:
	case SF_MODE:
	case SF_BYTES: mpw_u64(w, *CAT(obj, f, uint64_t)); break;
	case SF_FILES: {
		const struct file_ref_list *l = CAT(obj, f, struct file_ref_list);
		mpw_arr(w, (uint32_t)l->n);
		for (size_t i = 0; i < l->n; i++)
			table_encode(f->sub, &l->v[i], w);
		break;
	}
	/* Text with units, so `inspect -o yaml` output means the same thing in a spec file. */
	case SF_DUR:
	case SF_CPUS: {
		char t[64];
		if (f->kind == SF_DUR)
			format_duration_ms(*CAT(obj, f, uint64_t), t, sizeof t);
		else
			format_cpus_milli(*CAT(obj, f, uint64_t), t, sizeof t);
		mpw_str(w, t);
		break;
	}
	case SF_BOOL: mpw_bool(w, *CAT(obj, f, bool)); break;
	case SF_RATIO: msgpack_pack_double(&w->pk, *CAT(obj, f, double)); break;
	case SF_ENUM: mpw_str(w, f->names[*CAT(obj, f, int)]); break;
	case SF_ARGV: {
		const struct strv *v = CAT(obj, f, struct strv);
		mpw_arr(w, (uint32_t)v->n);
		for (size_t i = 0; i < v->n; i++)
			mpw_str(w, v->v[i]);
		break;
	}
	case SF_ENV: { /* only svc_spec's environment has this kind: obj is the spec */
		const struct svc_spec *sp = obj;
		if (sp->env_sealed.len)
			mpw_bin(w, sp->env_sealed.data, sp->env_sealed.len);
		else
			labels_encode(&sp->env, w);
		break;
	}
	case SF_LABELS: labels_encode(CAT(obj, f, struct labels), w); break;
	case SF_PORTS: {
		const struct port_list *l = CAT(obj, f, struct port_list);
		mpw_arr(w, (uint32_t)l->n);
		for (size_t i = 0; i < l->n; i++)
			table_encode(&port_table, &l->v[i], w);
		break;
	}
	case SF_MOUNTS: {
		const struct mount_list *l = CAT(obj, f, struct mount_list);
		mpw_arr(w, (uint32_t)l->n);
		for (size_t i = 0; i < l->n; i++)
			table_encode(&mount_table, &l->v[i], w);
		break;
	}
	case SF_CONSTRAINTS: {
		const struct constraint_list *l = CAT(obj, f, struct constraint_list);
		mpw_arr(w, (uint32_t)l->n);
		for (size_t i = 0; i < l->n; i++) {
			char s[512];
			spec_format_constraint(&l->v[i], s, sizeof s);
			mpw_str(w, s);
		}
		break;
	}
	case SF_HCTEST: {
		const struct healthcheck *h = CAT(obj, f, struct healthcheck);
		if (h->kind == HC_INHERIT) {
			mpw_arr(w, 0);
			break;
		}
		mpw_arr(w, (uint32_t)(h->test.n + 1));
		mpw_str(w, hc_words[h->kind]);
		for (size_t i = 0; i < h->test.n; i++)
			mpw_str(w, h->test.v[i]);
		break;
	}
	case SF_SUB: table_encode(f->sub, CAT(obj, f, char), w); break;
	case SF_LIST:
	case SF_NAMED: {
		const struct sf_list *l = CAT(obj, f, struct sf_list);
		mpw_arr(w, (uint32_t)l->n);
		for (size_t i = 0; i < l->n; i++)
			table_encode(f->sub, (const char *)l->v + i * f->size, w);
		break;
	}
	}
}

static void table_encode(const struct sf_table *t, const void *obj, struct mpw *w)
{
	mpw_map_begin(w);
	for (size_t i = 0; i < t->n; i++) {
		if (t->f[i].flags & SFF_NOCODEC)
			continue;
		mpw_key(w, t->f[i].key);
		field_encode(&t->f[i], obj, w);
	}
	mpw_map_end(w);
}

void svc_spec_encode(const struct svc_spec *s, struct mpw *w)
{
	mpw_map_begin(w);
	mpw_ku64(w, "v", SPEC_ENCODING_VERSION);
	for (size_t i = 0; i < svc_table.n; i++) {
		if (svc_table.f[i].flags & SFF_NOCODEC)
			continue;
		mpw_key(w, svc_table.f[i].key);
		field_encode(&svc_table.f[i], s, w);
	}
	mpw_map_end(w);
}

int svc_spec_equal(const struct svc_spec *a, const struct svc_spec *b)
{
	struct mpw wa, wb;
	mpw_init(&wa);
	mpw_init(&wb);
	svc_spec_encode(a, &wa);
	svc_spec_encode(b, &wb);
	int eq = wa.sb.size == wb.sb.size && !memcmp(wa.sb.data, wb.sb.data, wa.sb.size);
	mpw_free(&wa);
	mpw_free(&wb);
	return eq;
}

/* ---- decoding ---- */

/* A string object as a NUL-terminated copy; NULL if not a string or it holds a NUL. */
static char *str_dup(const msgpack_object *o)
{
	if (!mp_is_str(o) || memchr(o->via.str.ptr, 0, o->via.str.size))
		return NULL;
	return xstrndup(o->via.str.ptr, o->via.str.size);
}

static int enum_index(const char *const *names, const msgpack_object *o)
{
	for (int i = 0; names[i]; i++)
		if (mp_str_eq(o, names[i]))
			return i;
	return -1;
}

static int table_decode(const struct sf_table *t, void *obj, const msgpack_object *map, const char *path, char *err);


static int field_decode(const struct sf *f, void *obj, const msgpack_object *o, const char *path, char *err)
{
	switch (f->kind) {
	case SF_STR: {
		char **p = AT(obj, f, char *);
		free(*p);
		*p = NULL;
		if (o->type == MSGPACK_OBJECT_NIL)
			return 0;
		if (!(*p = str_dup(o)))
			goto bad;
		return 0;
	}
	case SF_FILES: {
		struct file_ref_list *l = AT(obj, f, struct file_ref_list);
		if (o->type != MSGPACK_OBJECT_ARRAY)
			goto bad;
		for (size_t j = 0; j < l->n; j++)
			table_free(f->sub, &l->v[j]);
		free(l->v);
		l->n = 0;
		l->v = xcalloc(o->via.array.size ? o->via.array.size : 1, sizeof *l->v);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			table_defaults(f->sub, &l->v[i]);
			l->n++;
			int rc = table_decode(f->sub, &l->v[i], &o->via.array.ptr[i], path, err);
			if (rc)
				return rc;
		}
		return 0;
	}
	case SF_U64:
	case SF_MODE:
	case SF_BYTES: {
		uint64_t v;
		if (mp_as_u64(o, &v) < 0 || v < f->lo || (f->hi && v > f->hi))
			goto bad;
		*AT(obj, f, uint64_t) = v;
		return 0;
	}
	case SF_DUR:
	case SF_CPUS: {
		char t[64];
		uint64_t v;
		if (!mp_is_str(o) || o->via.str.size >= sizeof t)
			goto bad;
		memcpy(t, o->via.str.ptr, o->via.str.size);
		t[o->via.str.size] = 0;
		if ((f->kind == SF_DUR ? parse_duration_ms(t, &v) : parse_cpus_milli(t, &v)) < 0)
			goto bad;
		*AT(obj, f, uint64_t) = v;
		return 0;
	}
	case SF_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			goto bad;
		*AT(obj, f, bool) = o->via.boolean;
		return 0;
	case SF_RATIO: {
		double d;
		if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
			d = o->via.f64;
		else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= 1)
			d = (double)o->via.u64;
		else
			goto bad;
		if (!(d >= 0 && d <= 1))
			goto bad;
		*AT(obj, f, double) = d;
		return 0;
	}
	case SF_ENUM: {
		int i = enum_index(f->names, o);
		if (i < 0)
			goto bad;
		*AT(obj, f, int) = i;
		return 0;
	}
	case SF_ARGV: {
		struct strv *v = AT(obj, f, struct strv);
		strv_free(v);
		if (o->type != MSGPACK_OBJECT_ARRAY)
			goto bad;
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			char *s = str_dup(&o->via.array.ptr[i]);
			if (!s)
				goto bad;
			strv_push(v, s);
			free(s);
		}
		return 0;
	}
	case SF_ENV:
		if (o->type == MSGPACK_OBJECT_BIN) { /* sealed (see svc_spec.env_sealed) */
			struct buf *b = &((struct svc_spec *)obj)->env_sealed;
			b->len = 0;
			buf_append(b, o->via.bin.ptr, o->via.bin.size);
			return 0;
		}
		__attribute__((fallthrough));
	case SF_LABELS: {
		struct labels *l = AT(obj, f, struct labels);
		labels_free(l);
		if (o->type != MSGPACK_OBJECT_MAP)
			goto bad;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			char *k = str_dup(&o->via.map.ptr[i].key), *v = str_dup(&o->via.map.ptr[i].val);
			if (k && v)
				labels_set(l, k, v);
			free(k);
			free(v);
			if (!k || !v)
				goto bad;
		}
		return 0;
	}
	case SF_PORTS: {
		struct port_list *l = AT(obj, f, struct port_list);
		free(l->v);
		l->v = NULL;
		l->n = 0;
		if (o->type != MSGPACK_OBJECT_ARRAY)
			goto bad;
		l->v = xcalloc(o->via.array.size ? o->via.array.size : 1, sizeof *l->v);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			table_defaults(&port_table, &l->v[i]);
			l->n++;
			int rc = table_decode(&port_table, &l->v[i], &o->via.array.ptr[i], path, err);
			if (rc)
				return rc;
		}
		return 0;
	}
	case SF_MOUNTS: {
		struct mount_list *l = AT(obj, f, struct mount_list);
		table_free_mounts(l);
		if (o->type != MSGPACK_OBJECT_ARRAY)
			goto bad;
		l->v = xcalloc(o->via.array.size ? o->via.array.size : 1, sizeof *l->v);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			table_defaults(&mount_table, &l->v[i]);
			l->n++;
			int rc = table_decode(&mount_table, &l->v[i], &o->via.array.ptr[i], path, err);
			if (rc)
				return rc;
			char msg[ERR_LEN];
			if (spec_mount_valid(&l->v[i], msg))
				goto bad;
		}
		return 0;
	}
	case SF_CONSTRAINTS: {
		struct constraint_list *l = AT(obj, f, struct constraint_list);
		if (o->type != MSGPACK_OBJECT_ARRAY)
			goto bad;
		l->v = xcalloc(o->via.array.size ? o->via.array.size : 1, sizeof *l->v);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			char *s = str_dup(&o->via.array.ptr[i]);
			char msg[ERR_LEN];
			int rc = s ? spec_parse_constraint(s, &l->v[i], msg) : -1;
			free(s);
			if (rc)
				goto bad;
			l->n++;
		}
		return 0;
	}
	case SF_HCTEST: {
		struct healthcheck *h = AT(obj, f, struct healthcheck);
		strv_free(&h->test);
		h->kind = HC_INHERIT;
		if (o->type != MSGPACK_OBJECT_ARRAY)
			goto bad;
		if (o->via.array.size == 0)
			return 0;
		int k = -1;
		for (int i = HC_NONE; i <= HC_CMD_SHELL; i++)
			if (mp_str_eq(&o->via.array.ptr[0], hc_words[i]))
				k = i;
		if (k < 0)
			goto bad;
		for (uint32_t i = 1; i < o->via.array.size; i++) {
			char *s = str_dup(&o->via.array.ptr[i]);
			if (!s)
				goto bad;
			strv_push(&h->test, s);
			free(s);
		}
		h->kind = k;
		return 0;
	}
	case SF_SUB: return table_decode(f->sub, AT(obj, f, char), o, path, err);
	case SF_LIST:
	case SF_NAMED: {
		struct sf_list *l = AT(obj, f, struct sf_list);
		if (o->type != MSGPACK_OBJECT_ARRAY)
			goto bad;
		l->v = xcalloc(o->via.array.size ? o->via.array.size : 1, f->size);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			void *e = (char *)l->v + i * f->size;
			table_defaults(f->sub, e);
			l->n++;
			int rc = table_decode(f->sub, e, &o->via.array.ptr[i], path, err);
			if (rc)
				return rc;
			/* list elements' rules are checks only (a spread names a label, aliases are
			 * names): what the parser refuses, a decoded spec does not carry either */
			char msg[ERR_LEN];
			if (f->sub->check && f->sub->check(e, msg))
				goto bad;
		}
		/* the name is what identifies an entry: a document without it is not ours */
		for (size_t i = 0; f->kind == SF_NAMED && i < l->n; i++)
			if (!*(char **)((char *)l->v + i * f->size + f->sub->f[0].off))
				goto bad;
		return 0;
	}
	}
bad:
	return errf(err, E_INVAL, "service spec: field %s%s%s has a wrong type or value", path, *path ? "." : "",
		    f->key);
}

static int table_decode(const struct sf_table *t, void *obj, const msgpack_object *map, const char *path, char *err)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return errf(err, E_INVAL, "service spec: %s is not a map", *path ? path : "document");
	for (size_t i = 0; i < t->n; i++) {
		const struct sf *f = &t->f[i];
		const msgpack_object *o = (f->flags & SFF_NOCODEC) ? NULL : mp_get(map, f->key);
		if (!o)
			continue; /* written by an older version: keep the default */
		char sub[256];
		snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", f->key);
		bool nested = f->kind == SF_SUB || f->kind == SF_PORTS || f->kind == SF_FILES || f->kind == SF_MOUNTS ||
			      f->kind == SF_LIST || f->kind == SF_NAMED;
		int rc = field_decode(f, obj, o, nested ? sub : path, err);
		if (rc)
			return rc;
	}
	return 0;
}

int svc_spec_decode(const msgpack_object *o, struct svc_spec *s, char *err)
{
	svc_spec_init(s);
	uint64_t v;
	if (mp_get_u64(o, "v", &v) < 0)
		return errf(err, E_INVAL, "service spec: missing encoding version");
	if (v != SPEC_ENCODING_VERSION)
		return errf(err, E_UNSUPP, "service spec: encoding version %llu is not supported by this binary (%d); "
			    "upgrade orch", (unsigned long long)v, SPEC_ENCODING_VERSION);
	return table_decode(&svc_table, s, o, "", err);
}

void svc_spec_copy(struct svc_spec *dst, const struct svc_spec *src)
{
	struct mpw w;
	struct mpr r;
	char err[ERR_LEN];
	mpw_init(&w);
	svc_spec_encode(src, &w);
	if (mpr_decode(&r, w.sb.data, w.sb.size) < 0 || svc_spec_decode(r.root, dst, err) < 0)
		abort(); /* our own encoding always decodes */
	mpr_free(&r);
	mpw_free(&w);
}

void sf_table_defaults(const struct sf_table *t, void *obj)
{
	table_defaults(t, obj);
}

void sf_table_free(const struct sf_table *t, void *obj)
{
	table_free(t, obj);
}
