/* The framing of the node port and the local socket, as pure functions over the bytes
 * received so far (net/conn.c does the I/O; test/fuzz/frame.c feeds them anything): a frame
 * is a 4-byte big-endian length and one msgpack map.
 *
 * Limits, so that a peer cannot make the node buffer or allocate without bound:
 *   - a frame's length is checked against the largest its request may have
 *     (net/proto.h, PROTO_FRAME_SIZES) as soon as the first bytes name the op, before
 *     the body is buffered; a request that does not name its op first is held to the
 *     small default;
 *   - a peer that is not a proved node of the cluster is held to PROTO_FRAME_CLIENT;
 *   - decoding allocates one msgpack_object (24 bytes) per element whatever the element's
 *     encoded size (a nil is one byte), so the number of elements is capped too
 *     (FRAME_DECODE_BUDGET of objects) before msgpack-c allocates any. */
#ifndef ORCH_FRAME_H
#define ORCH_FRAME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"

#define FRAME_MAX (64u << 20)            /* any frame, either direction */
#define FRAME_DECODE_BUDGET (8u << 20)   /* decoded objects of one request frame, in bytes */

struct frame_policy {
	bool per_op;  /* requests from the node port: sizes by op, objects capped */
	bool proved;  /* the peer proved it is a node of this cluster */
};

enum { FRAME_MORE = 0, FRAME_READY = 1 };

/* FRAME_MORE: no complete frame yet (wait for more bytes); FRAME_READY: the body is
 * p[4, 4 + *n); E_INVAL with why (ERR_LEN) when the peer broke the framing or a limit
 * (close the connection). */
int frame_next(const uint8_t *p, size_t len, const struct frame_policy *pol, size_t *n, char *why);
/* Decodes a ready body into a map (r as mpr_decode); E_INVAL with why otherwise. */
int frame_decode(const uint8_t *body, size_t n, const struct frame_policy *pol, struct mpr *r, char *why);

#endif
