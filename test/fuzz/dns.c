/* A DNS query as the node's resolver gets it from a task (traffic/dns.h dns_answer): any
 * packet, answered or dropped, and an answer never longer than the buffer it was given. */
#include "common.h"
#include "traffic/dns.h"
#include <stdlib.h>
#include <string.h>

static uint32_t lookup(const char *name, void *arg)
{
	(void)arg;
	size_t n = strlen(name);
	if (n >= 256)
		abort(); /* dns_answer promised a name of at most 255 bytes */
	return n % 3 ? 0x0100000a + (uint32_t)n : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	/* the answer buffer: as small as the first byte says, to find writes past it */
	size_t cap = (size_t)data[0] * 8;
	uint8_t *out = malloc(cap ? cap : 1);
	size_t n = dns_answer(data + 1, size - 1, out, cap, lookup, NULL);
	if (n > cap)
		abort();
	free(out);
	return 0;
}
