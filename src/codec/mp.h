/* Thin helpers over msgpack-c: a writer that packs into a growable buffer, and
 * checked readers over a decoded msgpack_object tree. Readers never trust their
 * input: a missing key or a wrong type is an error, never a crash. */
#ifndef ORCH_MP_H
#define ORCH_MP_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

/* Maps count their own entries: mpw_map_begin reserves a header, every key written with
 * mpw_key (or a mpw_k* helper) counts one entry of the innermost open map, and
 * mpw_map_end writes the smallest header for the count and closes the gap, so the bytes
 * are those of a map packed with its size known up front (canonical: snapshots, state
 * hashes and spec comparisons depend on it). Maps nest up to MPW_DEPTH deep. */
#define MPW_DEPTH 16

struct mpw {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	unsigned depth;
	struct {
		size_t off;  /* where the reserved header starts */
		uint32_t n;  /* entries so far */
	} open[MPW_DEPTH];
};

void mpw_init(struct mpw *w);
void mpw_free(struct mpw *w);
/* Hands the packed bytes to the caller (free() them); the writer is reset. */
char *mpw_take(struct mpw *w, size_t *len);
void mpw_map_begin(struct mpw *w);
void mpw_map_end(struct mpw *w);
/* A key of the innermost open map (counts one entry); the value follows. */
void mpw_key(struct mpw *w, const char *k);
void mpw_keyn(struct mpw *w, const char *k, size_t n);
/* A key given as a decoded object (copying a map): counts one entry. */
void mpw_key_obj(struct mpw *w, const msgpack_object *k);
/* A decoded object packed as is (a value). */
void mpw_obj(struct mpw *w, const msgpack_object *o);
void mpw_arr(struct mpw *w, uint32_t n);
void mpw_str(struct mpw *w, const char *s); /* NULL packs nil */
void mpw_strn(struct mpw *w, const char *s, size_t n);
void mpw_u64(struct mpw *w, uint64_t v);
void mpw_i64(struct mpw *w, int64_t v);
void mpw_bool(struct mpw *w, bool v);
void mpw_nil(struct mpw *w);
void mpw_bin(struct mpw *w, const void *p, size_t n);
void mpw_raw(struct mpw *w, const void *p, size_t n); /* already-packed bytes */
/* key + value in one call, for maps */
void mpw_kstr(struct mpw *w, const char *k, const char *v);
void mpw_ku64(struct mpw *w, const char *k, uint64_t v);
void mpw_ki64(struct mpw *w, const char *k, int64_t v);
void mpw_kbool(struct mpw *w, const char *k, bool v);

/* A decoded message: owns the zone that backs `root`. */
struct mpr {
	msgpack_unpacked u;
	const msgpack_object *root;
	char *copy; /* the decoded tree points into this copy of the input */
};
/* Decodes exactly one object filling [p, p+n); trailing bytes are an error. On error
 * root is NULL. mpr_free is a no-op when root is NULL. */
int mpr_decode(struct mpr *r, const void *p, size_t n);
/* The same, refusing (MPR_TOO_MANY) an encoding of more than max_objects elements (each
 * key, value and array element counts one; 0: no cap) before anything is allocated:
 * msgpack-c allocates a 24-byte object per element, so a frame of one-byte nils would
 * cost 24 times its size. */
#define MPR_TOO_MANY (-2)
int mpr_decode_max(struct mpr *r, const void *p, size_t n, size_t max_objects);
void mpr_free(struct mpr *r);

/* Lookups on a map; NULL when absent or when `map` is not a map. */
const msgpack_object *mp_get(const msgpack_object *map, const char *key);
bool mp_is_str(const msgpack_object *o);
/* Typed getters: 0 on success, -1 on wrong type or absent. */
int mp_get_u64(const msgpack_object *map, const char *key, uint64_t *out);
int mp_get_i64(const msgpack_object *map, const char *key, int64_t *out);
int mp_get_bool(const msgpack_object *map, const char *key, bool *out);
/* Copies a string into buf (NUL-terminated); -1 if absent, not a string or too long. */
int mp_get_strbuf(const msgpack_object *map, const char *key, char *buf, size_t size);
/* Returns a malloc'd copy, or NULL if absent / not a string. */
char *mp_get_strdup(const msgpack_object *map, const char *key);
int mp_as_u64(const msgpack_object *o, uint64_t *out);
int mp_as_i64(const msgpack_object *o, int64_t *out);
char *mp_as_strdup(const msgpack_object *o);
bool mp_str_eq(const msgpack_object *o, const char *s);
/* The index of the entry of a table (n entries of stride bytes, each starting with its
 * name as a const char *) whose name the string o is; -1 when none is. */
int mp_str_find(const msgpack_object *o, const void *table, size_t n, size_t stride);

/* Writes the object as JSON (for -o json and debugging). */
struct buf;
void mp_to_json(const msgpack_object *o, struct buf *out);

#endif
