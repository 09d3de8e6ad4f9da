/* A table of schema objects kept sorted by key (the schema's first field, U64 or STR),
 * so iteration order — and therefore snapshots and state hashes — is deterministic. */
#ifndef ORCH_TABLE_H
#define ORCH_TABLE_H
#include "state/schema.h"

struct table {
	const struct schema *schema;
	void **items;
	size_t n, cap;
};

void table_init(struct table *t, const struct schema *s);
void table_clear(struct table *t);
void *table_get_u64(const struct table *t, uint64_t key);
/* The position of the object with that key (U64 keys), or -1: for callers that keep
 * something per object in an array of the table's size. */
long table_index_u64(const struct table *t, uint64_t key);
void *table_get_str(const struct table *t, const char *key);
/* Inserts obj (taking ownership) or replaces the object with the same key (freed). */
void table_put(struct table *t, void *obj);
/* Removes and frees; returns 0, or -1 when absent. */
int table_del_u64(struct table *t, uint64_t key);
int table_del_str(struct table *t, const char *key);
void table_encode(const struct table *t, struct mpw *w);
int table_decode(struct table *t, const msgpack_object *arr, char *err);

#define TABLE_FOREACH(t, T, var) \
	for (size_t var##_i_ = 0; var##_i_ < (t)->n; var##_i_++) \
		for (T *var = (T *)(t)->items[var##_i_]; var; var = NULL)

#endif
