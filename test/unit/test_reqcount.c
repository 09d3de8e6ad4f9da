/* The mesh's HTTP request counter (traffic/reqcount.h): pipelined requests with bodies
 * counted once each in any cut of the stream, a chunked body stops the counting, a
 * non-HTTP stream counts nothing, a header named like another does not fool it. */
#include "unit.h"
#include "traffic/reqcount.h"
#include <stdlib.h>

static unsigned count_cut(const char *s, size_t step)
{
	struct reqcount *h = calloc(1, sizeof *h);
	unsigned n = 0;
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i += step)
		n += reqcount_feed(h, s + i, len - i < step ? len - i : step);
	free(h);
	return n;
}

UNIT(reqcount_pipelined_and_cut)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
			"POST /x HTTP/1.1\r\nContent-Length: 22\r\n\r\nGET / HTTP/1.1\r\n\r\nxxxx"
			"PUT /y HTTP/1.1\r\ncontent-length:  0\r\n\r\n"
			"DELETE /z HTTP/1.1\r\n\r\n";
	for (size_t step = 1; step < 40; step++)
		CHECK_EQ_INT(count_cut(s, step), 4);
	CHECK_EQ_INT(count_cut(s, 4096), 4);
}

UNIT(reqcount_chunked_and_not_http)
{
	CHECK_EQ_INT(count_cut("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\n"
			       "GET / HTTP/1.1\r\n\r\n", 7), 1);
	/* "chunked" in another header is not the body's framing */
	CHECK_EQ_INT(count_cut("GET / HTTP/1.1\r\nX-Note: chunked\r\n\r\nGET / HTTP/1.1\r\n\r\n", 3), 2);
	CHECK_EQ_INT(count_cut("\x16\x03\x01 GET / HTTP/1.1\r\n\r\n", 5), 0);
	CHECK_EQ_INT(count_cut("SSH-2.0-x\r\n\r\n", 2), 0);
}
