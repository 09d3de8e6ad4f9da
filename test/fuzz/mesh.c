/* The mesh's HTTP request counter (traffic/reqcount.h) over a client stream cut into reads
 * as the first byte says; the same stream fed whole must count the same requests. */
#include "common.h"
#include "traffic/reqcount.h"
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	struct reqcount *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
	struct pieces s = {data + 1, size - 1, data[0]};
	const uint8_t *p;
	size_t k;
	unsigned pieces = 0;
	while ((k = pieces_next(&s, &p)))
		pieces += reqcount_feed(a, (const char *)p, k);
	unsigned whole = reqcount_feed(b, (const char *)data + 1, size - 1);
	if (pieces != whole) {
		fprintf(stderr, "%u requests counted in pieces, %u whole\n", pieces, whole);
		abort();
	}
	free(a);
	free(b);
	return 0;
}
