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
/* A request of op, id: every field given a good value of its kind except field `bad`
 * (REQGEN_NONE: none), which is left out, or with wrong given a value of another kind, or
 * with too_long a string one byte over its limit. */
void reqgen_request(struct mpw *w, enum op op, uint64_t id, size_t bad, bool wrong, bool too_long);
/* A random request map naming op (now and then another name): some of its fields and
 * some others, each of a random kind (often the right one), nested documents included. */
void reqgen_random(struct prng *g, struct mpw *w, enum op op, uint64_t id);

#endif
