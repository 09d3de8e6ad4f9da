/* Shared by the libFuzzer harnesses of test/fuzz (built by scripts/fuzz.sh): each harness
 * is one target, LLVMFuzzerTestOneInput over bytes a peer, a registry, a file or a task
 * could send, and must neither crash, leak, nor take unbounded time or memory on any. */
#ifndef ORCH_FUZZ_COMMON_H
#define ORCH_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input split as a stream arrives: each piece's length from a byte of the input, so
 * the fuzzer explores the ways a parser can be fed one message in several reads. */
struct pieces {
	const uint8_t *p;
	size_t n;
	uint8_t seed;
};

static inline size_t pieces_next(struct pieces *s, const uint8_t **out)
{
	if (!s->n)
		return 0;
	size_t k = (size_t)(s->seed % 97) + 1;
	s->seed = (uint8_t)(s->seed * 31 + 7);
	if (k > s->n)
		k = s->n;
	*out = s->p;
	s->p += k;
	s->n -= k;
	return k;
}

#endif
