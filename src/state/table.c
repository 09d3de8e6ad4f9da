#include "state/table.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

void table_init(struct table *t, const struct schema *s)
{
	memset(t, 0, sizeof *t);
	t->schema = s;
}

void table_clear(struct table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		schema_free(t->schema, t->items[i]);
		free(t->items[i]);
	}
	free(t->items);
	t->items = NULL;
	t->n = t->cap = 0;
}

static bool str_key(const struct table *t)
{
	return t->schema->fields[0].kind == F_STR;
}

static int cmp_key(const struct table *t, const void *obj, uint64_t k64, const char *kstr)
{
	const char *p = (const char *)obj + t->schema->fields[0].off;
	if (str_key(t)) {
		const char *s = *(char *const *)p;
		return strcmp(s ? s : "", kstr ? kstr : "");
	}
	uint64_t v = *(const uint64_t *)p;
	return v < k64 ? -1 : v > k64;
}

/* Index of the first item >= key; *found when equal. */
static size_t lower(const struct table *t, uint64_t k64, const char *kstr, bool *found)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cmp_key(t, t->items[mid], k64, kstr) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < t->n && cmp_key(t, t->items[lo], k64, kstr) == 0;
	return lo;
}

void *table_get_u64(const struct table *t, uint64_t key)
{
	bool f;
	size_t i = lower(t, key, NULL, &f);
	return f ? t->items[i] : NULL;
}

long table_index_u64(const struct table *t, uint64_t key)
{
	bool f;
	size_t i = lower(t, key, NULL, &f);
	return f ? (long)i : -1;
}

void *table_get_str(const struct table *t, const char *key)
{
	bool f;
	size_t i = lower(t, 0, key, &f);
	return f ? t->items[i] : NULL;
}

void table_put(struct table *t, void *obj)
{
	const char *p = (const char *)obj + t->schema->fields[0].off;
	uint64_t k64 = str_key(t) ? 0 : *(const uint64_t *)p;
	const char *kstr = str_key(t) ? *(char *const *)p : NULL;
	bool f;
	size_t i = lower(t, k64, kstr, &f);
	if (f) {
		schema_free(t->schema, t->items[i]);
		free(t->items[i]);
		t->items[i] = obj;
		return;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->items = xrealloc(t->items, t->cap * sizeof *t->items);
	}
	memmove(t->items + i + 1, t->items + i, (t->n - i) * sizeof *t->items);
	t->items[i] = obj;
	t->n++;
}

static int del_at(struct table *t, size_t i, bool f)
{
	if (!f)
		return -1;
	schema_free(t->schema, t->items[i]);
	free(t->items[i]);
	memmove(t->items + i, t->items + i + 1, (t->n - i - 1) * sizeof *t->items);
	t->n--;
	return 0;
}

int table_del_u64(struct table *t, uint64_t key)
{
	bool f;
	size_t i = lower(t, key, NULL, &f);
	return del_at(t, i, f);
}

int table_del_str(struct table *t, const char *key)
{
	bool f;
	size_t i = lower(t, 0, key, &f);
	return del_at(t, i, f);
}

void table_encode(const struct table *t, struct mpw *w)
{
	mpw_arr(w, (uint32_t)t->n);
	for (size_t i = 0; i < t->n; i++)
		schema_encode(t->schema, t->items[i], w);
}

int table_decode(struct table *t, const msgpack_object *arr, char *err)
{
	if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
		return errf(err, E_INVAL, "%s table: expected an array", t->schema->name);
	for (uint32_t i = 0; i < arr->via.array.size; i++) {
		void *obj = xcalloc(1, t->schema->size);
		int rc = schema_decode(t->schema, obj, &arr->via.array.ptr[i], err);
		if (rc) {
			schema_free(t->schema, obj);
			free(obj);
			return rc;
		}
		table_put(t, obj);
	}
	return 0;
}
