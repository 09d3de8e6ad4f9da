/* Requests for the protocol tests (test_proto.c, test_dispatch.c): well-formed ones with
 * one field left out or of the wrong kind, and random ones from a seeded generator. */
#ifndef ORCH_TEST_REQGEN_H
#define ORCH_TEST_REQGEN_H
#include <stdint.h>
#include "net/proto.h"

struct prng {
	uint64_t s;
};
uint64_t prng_next(struct prng *g);
uint64_t prng_below(struct prng *g, uint64_t n);

#define REQGEN_NONE ((size_t)-1)
/* The fields f as entries of the open map, each a good value of its kind except field
 * `bad` (REQGEN_NONE: none): left out, or with wrong of another kind, or with too_long a
 * string one byte over its limit. */
void reqgen_fields(struct mpw *w, const struct fl_field *f, size_t n, size_t bad, bool wrong, bool too_long);
/* Random values for the fields f (some left out, often of the right kind). */
void reqgen_random_fields(struct prng *g, struct mpw *w, const struct fl_field *f, size_t n);
/* A request of op, id, its fields as reqgen_fields writes them. */
void reqgen_request(struct mpw *w, enum op op, uint64_t id, size_t bad, bool wrong, bool too_long);
/* A random request map naming op (now and then another name): some of its fields and
 * some others, each of a random kind (often the right one), nested documents included. */
void reqgen_random(struct prng *g, struct mpw *w, enum op op, uint64_t id);

#endif
