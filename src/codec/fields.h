/* Typed field lists of a msgpack map, written once as an X-macro list from which come a C
 * struct (one member per field), a descriptor table, a checking decoder and an encoder.
 * What the RPC requests (net/proto.h) and the raft command bodies (state/cmd.h) are made
 * of. A list is a macro F(S, kind, field, REQ|OPT, arg):
 *   STR   const char *, NULL when absent; arg: most bytes (0: no limit); no NUL inside
 *   U64   uint64_t, arg when absent           I64  int64_t, arg when absent
 *   BOOL  bool, false when absent
 *   MAP, ARR, ANY  a document (struct fl_doc): decoded, it points into the map; to send,
 *         packed bytes (raw) or a decoded object
 *   BIN   binary (struct fl_bin), pointing into the map when decoded
 * nil counts as absent. Keys not in the list are ignored (a newer sender may add some). */
#ifndef ORCH_FIELDS_H
#define ORCH_FIELDS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"

struct fl_doc {
	const msgpack_object *obj;
	const void *raw;
	size_t len;
};

struct fl_bin {
	const void *p;
	size_t n;
};

#define FLT_STR const char *
#define FLT_U64 uint64_t
#define FLT_I64 int64_t
#define FLT_BOOL bool
#define FLT_MAP struct fl_doc
#define FLT_ARR struct fl_doc
#define FLT_ANY struct fl_doc
#define FLT_BIN struct fl_bin

enum fl_kind { FL_STR, FL_U64, FL_I64, FL_BOOL, FL_MAP, FL_ARR, FL_ANY, FL_BIN };

struct fl_field {
	const char *name;
	enum fl_kind kind;
	bool required;
	int64_t arg;
	size_t off;
};

/* For a list F: members of struct S (FL_MEMBER_) and descriptors (FL_FIELD_, S the whole
 * struct type). */
#define FL_MEMBER_(S, kind, field, presence, arg) FLT_##kind field;
#define FL_FIELD_(S, kind, field, presence, arg) {#field, FL_##kind, FL_##presence##_, arg, offsetof(S, field)},
#define FL_REQ_ true
#define FL_OPT_ false

/* Checks map against the fields: E_INVAL "<what>: field <name> ..." for the first missing
 * or wrong one. With out, decodes into a new zeroed struct of size bytes (*out, one
 * allocation with its strings: free() it; documents point into map). */
int fl_decode(const char *what, const struct fl_field *f, size_t n, const msgpack_object *map, size_t size, void **out,
	      char *err);
/* Writes the fields of obj as entries of the open map: absent strings, documents and
 * binaries are left out, numbers and booleans always written. */
void fl_encode(struct mpw *w, const struct fl_field *f, size_t n, const void *obj);

#endif
