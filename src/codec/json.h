/* A small JSON reader: parses a document into a DOM of objects, arrays, strings, numbers
 * and booleans. Built for untrusted input (image manifests and configs): nesting depth,
 * document size and element counts are bounded, and every malformed byte is an error
 * that names its offset, never a crash. */
#ifndef ORCH_JSON_H
#define ORCH_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64
#define JSON_MAX_SIZE (16u << 20) /* 16 MiB: far above any manifest or config */

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
	enum json_type type;
	bool b;
	double num;
	char *str;      /* JSON_STR: NUL-terminated UTF-8 (embedded NULs are rejected) */
	size_t n;       /* JSON_ARR / JSON_OBJ: number of items */
	struct json **items;
	char **keys;    /* JSON_OBJ: keys[i] names items[i] */
};

/* Parses exactly one value (surrounding whitespace allowed). *out is freed with json_free. */
int json_parse(const char *p, size_t n, struct json **out, char *err);
void json_free(struct json *j);

/* Lookups that tolerate NULL and wrong types (they return NULL / false). When a key
 * appears twice the last one wins, as in most parsers. */
const struct json *json_get(const struct json *obj, const char *key);
const struct json *json_at(const struct json *arr, size_t i);
const char *json_str(const struct json *j);        /* NULL unless a string */
const char *json_get_str(const struct json *obj, const char *key);
bool json_is(const struct json *j, enum json_type t);
/* An integral, non-negative number that fits in u64 exactly; -1 otherwise. */
int json_u64(const struct json *j, uint64_t *out);

#endif
