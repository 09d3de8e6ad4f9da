#include "net/frame.h"
#include "net/proto.h"
#include "util/err.h"
#include <string.h>

/* A request names its op first (proto_encode writes it so): map header, "op", the name.
 * 1: *op set; 0: not enough bytes yet to tell; -1: the body does not start like a known op.
 * avail bytes of the body (n long) have arrived. */
static int peek_op_in(const uint8_t *b, size_t avail, enum op *op)
{
	if (avail < 1)
		return 0;
	size_t pos;
	if ((b[0] & 0xf0) == 0x80)
		pos = 1;
	else if (b[0] == 0xde)
		pos = 3;
	else if (b[0] == 0xdf)
		pos = 5;
	else
		return -1;
	static const uint8_t key[3] = {0xa2, 'o', 'p'};
	for (size_t i = 0; i < 3; i++) {
		if (avail <= pos + i)
			return 0;
		if (b[pos + i] != key[i])
			return -1;
	}
	pos += 3;
	if (avail <= pos)
		return 0;
	size_t len;
	if ((b[pos] & 0xe0) == 0xa0)
		len = b[pos++] & 0x1f;
	else if (b[pos] == 0xd9) {
		if (avail <= pos + 1)
			return 0;
		len = b[pos + 1];
		pos += 2;
	} else
		return -1;
	if (len > avail - pos)
		return 0;
	msgpack_object name = {.type = MSGPACK_OBJECT_STR, .via.str = {(uint32_t)len, (const char *)b + pos}};
	return proto_lookup(&name, op) ? -1 : 1;
}

static int peek_op(const uint8_t *b, size_t avail, size_t n, enum op *op)
{
	int k = peek_op_in(b, avail < n ? avail : n, op);
	return !k && avail >= n ? -1 : k; /* the whole body is here and it did not tell */
}

int frame_next(const uint8_t *p, size_t len, const struct frame_policy *pol, size_t *n, char *why)
{
	if (len < 4)
		return FRAME_MORE;
	size_t fl = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	if (fl > FRAME_MAX || fl == 0)
		return errf(why, E_INVAL, "frame: bad length");
	if (pol->per_op) {
		enum op op;
		int k = peek_op(p + 4, len - 4, fl, &op);
		if (!k)
			return FRAME_MORE;
		size_t max = proto_frame_max(k > 0 ? (int)op : -1, pol->proved);
		if (fl > max)
			return errf(why, E_INVAL, "frame: %zu bytes is over the limit of %zu for %s%s", fl, max,
				    k > 0 ? proto_name(op) : "a request that does not name its op first",
				    pol->proved ? "" : " from a client");
	}
	if (len - 4 < fl)
		return FRAME_MORE;
	*n = fl;
	return FRAME_READY;
}

int frame_decode(const uint8_t *body, size_t n, const struct frame_policy *pol, struct mpr *r, char *why)
{
	size_t max = pol->per_op ? FRAME_DECODE_BUDGET / sizeof(msgpack_object) : 0;
	int rc = mpr_decode_max(r, body, n, max);
	if (rc == MPR_TOO_MANY)
		return errf(why, E_INVAL, "frame: more than %zu elements", max);
	if (rc || r->root->type != MSGPACK_OBJECT_MAP) {
		mpr_free(r);
		return errf(why, E_INVAL, "frame: not a msgpack map");
	}
	return 0;
}
