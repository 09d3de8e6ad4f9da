/* Each stored object type is written once, as a field list, from which come its C struct,
 * its msgpack encoder and decoder (via a field descriptor table) and its JSON form.
 *
 *   #define FOO_FIELDS(X, S) X(S, U64, id) X(S, STR, name)
 *   SCHEMA_DECLARE(foo, FOO_FIELDS)      -- in a header: struct foo + extern schema
 *   SCHEMA_DEFINE(foo, FOO_FIELDS)       -- in one .c file: the descriptor table
 *
 * The first field is the object's key (U64 or STR). Encodings are msgpack maps keyed by
 * field name, so a newer binary can add fields without breaking older snapshots. A state
 * field (TSTATE, DESIRED, NSTATE, AVAIL) is a C enum encoded by its name from its
 * state/lifecycle.h table; ENDPOINTS is a list of typed endpoints (state/endpoint.h). */
#ifndef ORCH_SCHEMA_H
#define ORCH_SCHEMA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"
#include "state/endpoint.h"
#include "state/lifecycle.h"

struct labels {
	size_t n;
	char **k, **v;
};

/* Already-packed msgpack bytes (a nested document such as a service spec) and, for a
 * field whose kind has a codec (SPEC), the document decoded: made whenever the bytes are
 * set (schema_decode, rawmp_set), freed with them, never encoded. Readers use the decoded
 * form instead of decoding the bytes again (NULL when they do not decode). */
struct rawmp {
	size_t len;
	uint8_t *data;
	void *dec;
};

struct raw_codec {
	void *(*decode)(const msgpack_object *o); /* NULL when o is not a valid document */
	void (*free)(void *dec);
};

enum field_kind { F_U64, F_I64, F_STR, F_BOOL, F_LABELS, F_RAW, F_ENUM, F_ENDPOINTS };

#define CT_U64 uint64_t
#define CT_I64 int64_t
#define CT_STR char *
#define CT_BOOL bool
#define CT_LABELS struct labels
#define CT_RAW struct rawmp
#define CT_TSTATE enum task_state
#define CT_DESIRED enum task_desired
#define CT_NSTATE enum node_state
#define CT_AVAIL enum node_avail
#define CT_ENDPOINTS struct endpoints
#define CT_SPEC struct rawmp

/* The descriptor of each kind (designated initializers of struct field). */
#define FK_U64 .kind = F_U64
#define FK_I64 .kind = F_I64
#define FK_STR .kind = F_STR
#define FK_BOOL .kind = F_BOOL
#define FK_LABELS .kind = F_LABELS
#define FK_RAW .kind = F_RAW
#define FK_TSTATE .kind = F_ENUM, .states = &lifecycle_task
#define FK_DESIRED .kind = F_ENUM, .states = &lifecycle_desired
#define FK_NSTATE .kind = F_ENUM, .states = &lifecycle_node
#define FK_AVAIL .kind = F_ENUM, .states = &lifecycle_avail
#define FK_ENDPOINTS .kind = F_ENDPOINTS
#define FK_SPEC .kind = F_RAW, .codec = &spec_codec

struct field {
	const char *name;
	enum field_kind kind;
	size_t off;
	const struct lifecycle *states; /* F_ENUM: its values and names */
	const struct raw_codec *codec;  /* F_RAW: how to decode the bytes, if they are kept decoded */
};

/* A service spec (spec/spec.h), kept decoded next to its bytes (state/store.c). */
extern const struct raw_codec spec_codec;

struct schema {
	const char *name;
	size_t size;
	size_t nfields;
	const struct field *fields;
};

#define SF_MEMBER_(S, kind, fname) CT_##kind fname;
#define SF_DESC_(S, kind, fname) {.name = #fname, FK_##kind, .off = offsetof(struct S, fname)},
#define SCHEMA_DECLARE(S, FIELDS) \
	struct S { FIELDS(SF_MEMBER_, S) }; \
	extern const struct schema S##_schema;
#define SCHEMA_DEFINE(S, FIELDS) \
	static const struct field S##_fields_[] = {FIELDS(SF_DESC_, S)}; \
	const struct schema S##_schema = {#S, sizeof(struct S), sizeof S##_fields_ / sizeof S##_fields_[0], S##_fields_};

void schema_encode(const struct schema *s, const void *obj, struct mpw *w);
/* Fills a zeroed obj from a map. Unknown keys are ignored; a known key of the wrong type
 * is an error naming the field. On error obj is left freeable. */
int schema_decode(const struct schema *s, void *obj, const msgpack_object *map, char *err);
void schema_free(const struct schema *s, void *obj); /* frees members, not obj */
void *schema_dup(const struct schema *s, const void *obj);

/* Replaces r's bytes with data (taken), and its decoded form with dec (taken) or, when
 * dec is NULL and there is a codec, with the bytes decoded. */
void rawmp_set(struct rawmp *r, const struct raw_codec *c, uint8_t *data, size_t len, void *dec);
void rawmp_clear(struct rawmp *r, const struct raw_codec *c);

const char *labels_get(const struct labels *l, const char *k);
void labels_set(struct labels *l, const char *k, const char *v); /* keeps keys sorted */
void labels_free(struct labels *l);
void labels_encode(const struct labels *l, struct mpw *w); /* a map of strings */
/* Adds the entries of a map of strings to l: -1 when o is not one (the strings that were
 * are added). */
int labels_decode(const msgpack_object *o, struct labels *l);

#endif
