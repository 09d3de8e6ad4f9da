#include "net/proto.h"

/* each list ends with a sentinel, so that an op without fields still has an array */
#define PROTO_FIELDS_(ID, low, name, via, run, need, handler) \
	static const struct fl_field low##_fields_[] = {REQ_##low(FL_FIELD_, struct req_##low){NULL, FL_STR, false, 0, 0}};
PROTO_OPS(PROTO_FIELDS_)

#define PROTO_OP_(ID, low, nm, via, run, need, handler) \
	[OP_##ID] = {nm, VIA_##via, RUN_##run, NEED_##need, low##_fields_, sizeof low##_fields_ / sizeof low##_fields_[0] - 1, \
		     sizeof(struct req_##low)},
const struct proto_op proto_ops[OP__COUNT] = {PROTO_OPS(PROTO_OP_)};

int proto_lookup(const msgpack_object *name, enum op *op)
{
	int i = mp_str_find(name, proto_ops, OP__COUNT, sizeof proto_ops[0]);
	if (i >= 0)
		*op = (enum op)i;
	return i < 0 ? -1 : 0;
}

int proto_decode(enum op op, const msgpack_object *req, void **args, char *err)
{
	const struct proto_op *d = &proto_ops[op];
	return fl_decode(d->name, d->fields, d->nfields, req, d->size, args, err);
}

void proto_encode(struct mpw *w, enum op op, uint64_t id, const void *args)
{
	const struct proto_op *d = &proto_ops[op];
	mpw_map_begin(w);
	mpw_kstr(w, "op", d->name);
	mpw_ku64(w, "id", id);
	if (args)
		fl_encode(w, d->fields, d->nfields, args);
	mpw_map_end(w);
}

#define PROTO_SIZE_(ID, max) [OP_##ID] = max,
static const size_t frame_sizes[OP__COUNT] = {PROTO_FRAME_SIZES(PROTO_SIZE_)};

size_t proto_frame_max(int op, bool node)
{
	size_t max = op >= 0 && op < OP__COUNT && frame_sizes[op] ? frame_sizes[op] : PROTO_FRAME_SMALL;
	return node || max < PROTO_FRAME_CLIENT ? max : PROTO_FRAME_CLIENT;
}
