/* The node port's frames as conn.c reads them (net/frame.h), then the RPC dispatch's first
 * steps on each: the op lookup, the field decoder of the op's request (net/proto.h) and the
 * documents the handlers decode next (a service spec, a node record). The first byte picks
 * the peer (a proved node or a client) and how the stream is cut into reads. */
#include "common.h"
#include "net/frame.h"
#include "net/proto.h"
#include "spec/spec.h"
#include "state/store.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

static void request(const msgpack_object *req)
{
	char err[ERR_LEN];
	enum op op;
	if (proto_lookup(mp_get(req, "op"), &op))
		return;
	void *args;
	if (proto_decode(op, req, &args, err))
		return;
	if (op == OP_SERVICE_PUT) {
		struct svc_spec sp;
		svc_spec_init(&sp);
		svc_spec_decode(((struct req_service_put *)args)->spec.obj, &sp, err);
		svc_spec_free(&sp);
	} else if (op == OP_JOIN) {
		struct node n;
		memset(&n, 0, sizeof n);
		schema_decode(&node_schema, &n, ((struct req_join *)args)->node.obj, err);
		schema_free(&node_schema, &n);
	}
	free(args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct frame_policy pol = {.per_op = data[0] & 1, .proved = data[0] & 2};
	struct pieces s = {data + 1, size - 1, data[0]};
	struct buf rb = {0};
	const uint8_t *p;
	size_t k;
	char why[ERR_LEN];
	bool broken = false;
	while (!broken && (k = pieces_next(&s, &p))) {
		buf_append(&rb, p, k);
		for (;;) {
			size_t n;
			int rc = frame_next(rb.data, rb.len, &pol, &n, why);
			if (rc == FRAME_MORE)
				break;
			struct mpr r;
			if (rc < 0 || frame_decode(rb.data + 4, n, &pol, &r, why)) {
				broken = true;
				break;
			}
			request(r.root);
			mpr_free(&r);
			buf_consume(&rb, n + 4);
		}
	}
	buf_free(&rb);
	return 0;
}
