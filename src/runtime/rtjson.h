/* A minimal JSON writer and a read-only cursor over JSON text, enough for OCI
 * config.json and the state/list output of runc and crun. Kept inside the runtime
 * module: it trades generality for having no dependency and no allocation when reading. */
#ifndef ORCH_RTJSON_H
#define ORCH_RTJSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/mem.h"

/* Writer: appends compact JSON to a buf; commas are inserted automatically. */
#define RTJSON_MAX_DEPTH 32
struct rtjson_w {
	struct buf *b;
	int depth;
	bool first[RTJSON_MAX_DEPTH]; /* no element written yet at this depth */
	bool after_key;
};
void rtjson_init(struct rtjson_w *w, struct buf *b);
void rtjson_obj(struct rtjson_w *w);
void rtjson_obj_end(struct rtjson_w *w);
void rtjson_arr(struct rtjson_w *w);
void rtjson_arr_end(struct rtjson_w *w);
void rtjson_key(struct rtjson_w *w, const char *k);
void rtjson_str(struct rtjson_w *w, const char *s);
void rtjson_u64(struct rtjson_w *w, uint64_t v);
void rtjson_i64(struct rtjson_w *w, int64_t v);
void rtjson_bool(struct rtjson_w *w, bool v);
struct rtjson_v;
/* A value parsed by rtjson_parse, copied as it is. */
void rtjson_raw(struct rtjson_w *w, const struct rtjson_v *v);
/* Shorthands for "key": value. */
void rtjson_kstr(struct rtjson_w *w, const char *k, const char *s);
void rtjson_ku64(struct rtjson_w *w, const char *k, uint64_t v);
void rtjson_ki64(struct rtjson_w *w, const char *k, int64_t v);
void rtjson_kbool(struct rtjson_w *w, const char *k, bool v);
/* Array of strings from a NULL-terminated list. */
void rtjson_strv(struct rtjson_w *w, const char *const *v);

/* Reader: a span of JSON text. Functions return NULL / -1 on malformed input,
 * never read past end. */
struct rtjson_v {
	const char *p, *end; /* one value, leading whitespace skipped */
};
/* Parses text as one value (trailing whitespace allowed); 0 or -1. */
int rtjson_parse(const char *text, size_t len, struct rtjson_v *out);
/* Type letter of a value: 'o' object, 'a' array, 's' string, 'n' number,
 * 't'/'f' booleans, 'z' null, 0 malformed. */
char rtjson_type(const struct rtjson_v *v);
/* Member of an object by key; 0 if found, -1 if absent or not an object. */
int rtjson_get(const struct rtjson_v *obj, const char *key, struct rtjson_v *out);
/* Array iteration: *pos starts at 0; returns 1 with the next element, 0 at the end,
 * -1 on malformed input. */
int rtjson_next(const struct rtjson_v *arr, size_t *pos, struct rtjson_v *out);
/* Decodes a string value into out (truncates to cap-1, always terminates); 0 or -1. */
int rtjson_string(const struct rtjson_v *v, char *out, size_t cap);
int rtjson_int(const struct rtjson_v *v, int64_t *out);
/* Conveniences: member lookup + decode; 0 or -1. */
int rtjson_get_str(const struct rtjson_v *obj, const char *key, char *out, size_t cap);
int rtjson_get_int(const struct rtjson_v *obj, const char *key, int64_t *out);

#endif
