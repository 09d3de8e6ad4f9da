/* The node port's framing limits (net/frame.h) without a socket: a frame too large for its
 * op is refused from its first bytes, before its body could be buffered; a client is held
 * lower than a node; a request not naming its op first gets the small default; a frame of
 * a million nils is refused before msgpack-c allocates an object for each; the local
 * socket's policy keeps only FRAME_MAX. */
#include "unit.h"
#include "net/frame.h"
#include "net/proto.h"
#include "util/err.h"
#include "util/mem.h"

/* A frame header claiming len bytes, then the start of a request {op: name, ...}. */
static size_t head(uint8_t *out, size_t len, const char *op)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	size_t n = 4, k = strlen(op);
	out[n++] = 0x83; /* map of 3 */
	memcpy(out + n, "\xa2op", 3);
	n += 3;
	out[n++] = (uint8_t)(0xa0 | k);
	memcpy(out + n, op, k);
	n += k;
	memcpy(out + n, "\xa2id\x01", 4);
	n += 4;
	while (n < 48)
		out[n++] = 0xc0;
	return n;
}

UNIT(frame_sized_by_op_before_the_body)
{
	struct frame_policy client = {.per_op = true}, node = {.per_op = true, .proved = true}, local = {0};
	uint8_t b[64];
	size_t n, got;
	char why[ERR_LEN];
	/* 5 MiB of apply: over a client's cap, under a node's; only 48 bytes arrived */
	n = head(b, 5u << 20, "apply");
	CHECK_EQ_INT(frame_next(b, n, &client, &got, why), E_INVAL);
	CHECK(strstr(why, "apply") && strstr(why, "client"));
	CHECK_EQ_INT(frame_next(b, n, &node, &got, why), FRAME_MORE);
	CHECK_EQ_INT(frame_next(b, n, &local, &got, why), FRAME_MORE);
	/* status carries nothing: 100 KiB is too much even from a node */
	n = head(b, 100u << 10, "status");
	CHECK_EQ_INT(frame_next(b, n, &node, &got, why), E_INVAL);
	CHECK_EQ_INT(proto_frame_max(OP_STATUS, true), PROTO_FRAME_SMALL);
	CHECK_EQ_INT(proto_frame_max(OP_APPLY, false), PROTO_FRAME_CLIENT);
	CHECK(proto_frame_max(OP_APPLY, true) > PROTO_FRAME_CLIENT);
	/* an op not first, or unknown: the small default */
	n = head(b, 100u << 10, "no.such");
	CHECK_EQ_INT(frame_next(b, n, &node, &got, why), E_INVAL);
	CHECK(strstr(why, "does not name its op first"));
	/* the op's name cut by a read: wait for it, do not guess */
	n = head(b, 5u << 20, "kv.set");
	CHECK_EQ_INT(frame_next(b, 10, &client, &got, why), FRAME_MORE);
	/* anything over FRAME_MAX, and an empty frame, whatever the policy */
	n = head(b, FRAME_MAX + 1, "apply");
	CHECK_EQ_INT(frame_next(b, n, &local, &got, why), E_INVAL);
	memset(b, 0, 4);
	CHECK_EQ_INT(frame_next(b, 4, &local, &got, why), E_INVAL);
}

UNIT(frame_complete_frames_split)
{
	struct frame_policy node = {.per_op = true, .proved = true};
	struct mpw w;
	mpw_init(&w);
	struct req_kv_set q = {.key = "k", .value = "v"};
	proto_encode(&w, OP_KV_SET, 7, &q);
	struct buf b = {0};
	uint8_t len[4] = {0, 0, (uint8_t)(w.sb.size >> 8), (uint8_t)w.sb.size};
	buf_append(&b, len, 4);
	buf_append(&b, w.sb.data, w.sb.size);
	buf_append(&b, len, 4); /* a second frame's header only */
	size_t got;
	char why[ERR_LEN];
	CHECK_EQ_INT(frame_next(b.data, 4 + w.sb.size - 1, &node, &got, why), FRAME_MORE);
	CHECK_EQ_INT(frame_next(b.data, b.len, &node, &got, why), FRAME_READY);
	CHECK_EQ_INT(got, w.sb.size);
	struct mpr r;
	CHECK_EQ_INT(frame_decode(b.data + 4, got, &node, &r, why), 0);
	CHECK(mp_str_eq(mp_get(r.root, "op"), "kv.set"));
	mpr_free(&r);
	buf_free(&b);
	mpw_free(&w);
}

UNIT(frame_element_budget)
{
	/* {op: apply, entry: [nil x 1M]}: 1 MiB of input, 24 MiB of msgpack objects */
	size_t nils = 1u << 20;
	struct buf b = {0};
	buf_append(&b, "\x82\xa2op\xa5" "apply\xa5" "entry\xdd", 17);
	uint8_t cnt[4] = {(uint8_t)(nils >> 24), (uint8_t)(nils >> 16), (uint8_t)(nils >> 8), (uint8_t)nils};
	buf_append(&b, cnt, 4);
	buf_reserve(&b, nils);
	memset(b.data + b.len, 0xc0, nils);
	b.len += nils;
	struct frame_policy node = {.per_op = true, .proved = true}, local = {0};
	struct mpr r;
	char why[ERR_LEN];
	CHECK_EQ_INT(frame_decode(b.data, b.len, &node, &r, why), E_INVAL);
	if (!strstr(why, "elements")) { fprintf(stderr, "  why: %s\n", why); exit(1); }
	CHECK(r.root == NULL);
	/* the local socket (root) is not held to the budget */
	CHECK_EQ_INT(frame_decode(b.data, b.len, &local, &r, why), 0);
	mpr_free(&r);
	/* under the budget: decodes */
	CHECK_EQ_INT(mpr_decode_max(&r, b.data, 0, 10), -1);
	buf_free(&b);
	b = (struct buf){0};
	buf_append(&b, "\x93\xc0\xc0\xc0", 4);
	CHECK_EQ_INT(mpr_decode_max(&r, b.data, b.len, 4), 0);
	mpr_free(&r);
	CHECK_EQ_INT(mpr_decode_max(&r, b.data, b.len, 3), MPR_TOO_MANY);
	buf_free(&b);
}
