/* The protocol table's codec (net/proto.h), without a node: every op refuses a missing or
 * wrong-typed field with a message naming it, what an encoder packs decodes to the same
 * values, and random maps never make the decoder fail other than with such a message. */
#include "unit.h"
#include "net/proto.h"
#include "util/err.h"
#include "util/mem.h"
#include "reqgen.h"

static int decode_packed(enum op op, const struct mpw *w, void **args, char *err)
{
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w->sb.data, w->sb.size), 0);
	int rc = proto_decode(op, r.root, args, err);
	mpr_free(&r);
	return rc;
}

static void expect_refused(enum op op, const struct mpw *w, const char *field)
{
	void *args = NULL;
	char err[ERR_LEN] = "", want[128];
	CHECK_EQ_INT(decode_packed(op, w, &args, err), E_INVAL);
	CHECK(args == NULL);
	snprintf(want, sizeof want, "field %s ", field);
	if (!strstr(err, want) || strncmp(err, proto_name(op), strlen(proto_name(op)))) {
		fprintf(stderr, "  %s: message \"%s\" does not name field %s\n", proto_name(op), err, field);
		exit(1);
	}
}

UNIT(proto_every_field_checked_by_name)
{
	int checked = 0;
	for (int op = 0; op < OP__COUNT; op++) {
		const struct proto_op *d = &proto_ops[op];
		CHECK(d->name && d->name[0]);
		/* all good: decodes */
		struct mpw w;
		mpw_init(&w);
		reqgen_request(&w, (enum op)op, 5, REQGEN_NONE, false, false);
		void *args = NULL;
		char err[ERR_LEN] = "";
		CHECK_EQ_INT(decode_packed((enum op)op, &w, &args, err), 0);
		CHECK(args != NULL);
		free(args);
		mpw_free(&w);
		for (size_t i = 0; i < d->nfields; i++) {
			const struct fl_field *f = &d->fields[i];
			if (f->required) {
				mpw_init(&w);
				reqgen_request(&w, (enum op)op, 5, i, false, false);
				expect_refused((enum op)op, &w, f->name);
				mpw_free(&w);
				checked++;
			}
			if (f->kind != FL_ANY) {
				mpw_init(&w);
				reqgen_request(&w, (enum op)op, 5, i, true, false);
				expect_refused((enum op)op, &w, f->name);
				mpw_free(&w);
				checked++;
			}
			if (f->kind == FL_STR && f->arg) {
				mpw_init(&w);
				reqgen_request(&w, (enum op)op, 5, i, false, true);
				expect_refused((enum op)op, &w, f->name);
				mpw_free(&w);
				checked++;
			}
		}
	}
	CHECK(checked > 40);
}

UNIT(proto_names_unique_and_found)
{
	for (int a = 0; a < OP__COUNT; a++) {
		for (int b = a + 1; b < OP__COUNT; b++)
			CHECK(strcmp(proto_ops[a].name, proto_ops[b].name));
		msgpack_object o = {.type = MSGPACK_OBJECT_STR};
		o.via.str.ptr = proto_ops[a].name;
		o.via.str.size = (uint32_t)strlen(proto_ops[a].name);
		enum op found;
		CHECK_EQ_INT(proto_lookup(&o, &found), 0);
		CHECK_EQ_INT(found, a);
	}
	msgpack_object o = {.type = MSGPACK_OBJECT_STR};
	o.via.str.ptr = "kv.se";
	o.via.str.size = 5;
	enum op found;
	CHECK(proto_lookup(&o, &found) != 0);
	o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
	CHECK(proto_lookup(&o, &found) != 0);
}

UNIT(proto_encode_decode_roundtrip)
{
	/* strings, numbers, booleans, a packed document and binary survive the trip */
	struct mpw doc;
	mpw_init(&doc);
	mpw_map_begin(&doc);
	mpw_kstr(&doc, "zone", "a");
	mpw_map_end(&doc);
	struct req_node_update u = {.node = "n1", .availability = "drain", .labels = {.raw = doc.sb.data, .len = doc.sb.size}};
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, OP_NODE_UPDATE, 9, &u);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	CHECK(mp_str_eq(mp_get(r.root, "op"), proto_name(OP_NODE_UPDATE)));
	void *args;
	char err[ERR_LEN];
	CHECK_EQ_INT(proto_decode(OP_NODE_UPDATE, r.root, &args, err), 0);
	const struct req_node_update *got = args;
	CHECK_STR(got->node, "n1");
	CHECK_STR(got->availability, "drain");
	CHECK(got->labels.obj && got->labels.obj->type == MSGPACK_OBJECT_MAP);
	CHECK(mp_str_eq(mp_get(got->labels.obj, "zone"), "a"));
	free(args);
	mpr_free(&r);
	mpw_free(&w);
	mpw_free(&doc);

	struct req_logs_cluster l = {.service = "web", .tail = -1, .follow = true};
	mpw_init(&w);
	proto_encode(&w, OP_LOGS_CLUSTER, 3, &l);
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	CHECK_EQ_INT(proto_decode(OP_LOGS_CLUSTER, r.root, &args, err), 0);
	const struct req_logs_cluster *lg = args;
	CHECK_STR(lg->service, "web");
	CHECK_EQ_INT(lg->tail, -1);
	CHECK(lg->follow);
	CHECK_EQ_INT(lg->task_id, 0);
	free(args);
	mpr_free(&r);
	mpw_free(&w);

	struct req_apply a = {.entry = {"abcdefgh", 8}};
	mpw_init(&w);
	proto_encode(&w, OP_APPLY, 1, &a);
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	CHECK_EQ_INT(proto_decode(OP_APPLY, r.root, &args, err), 0);
	const struct req_apply *ap = args;
	CHECK_EQ_INT(ap->entry.n, 8);
	CHECK(!memcmp(ap->entry.p, "abcdefgh", 8));
	free(args);
	mpr_free(&r);
	mpw_free(&w);

	/* absent optional fields take their defaults: tail -1, not 0 */
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "op", proto_name(OP_LOGS));
	mpw_ku64(&w, "task_id", 4);
	mpw_map_end(&w);
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	CHECK_EQ_INT(proto_decode(OP_LOGS, r.root, &args, err), 0);
	CHECK_EQ_INT(((const struct req_logs *)args)->tail, -1);
	CHECK(!((const struct req_logs *)args)->follow);
	free(args);
	mpr_free(&r);
	mpw_free(&w);
}

/* NUL bytes inside a string field are refused (handlers use them as C strings). */
UNIT(proto_refuses_nul_in_strings)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "op", proto_name(OP_KV_GET));
	mpw_key(&w, "key");
	mpw_strn(&w, "a\0b", 3);
	mpw_map_end(&w);
	expect_refused(OP_KV_GET, &w, "key");
	mpw_free(&w);
}

UNIT(proto_random_maps_decode_or_refuse)
{
	struct prng g = {0x5eed};
	for (int round = 0; round < 20000; round++) {
		enum op op = (enum op)prng_below(&g, OP__COUNT);
		struct mpw w;
		mpw_init(&w);
		reqgen_random(&g, &w, op, (uint64_t)round);
		struct mpr r;
		CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
		void *args = NULL;
		char err[ERR_LEN] = "";
		int rc = proto_decode(op, r.root, &args, err);
		if (rc) {
			CHECK_EQ_INT(rc, E_INVAL);
			CHECK(args == NULL && strstr(err, proto_name(op)) == err);
		} else {
			/* every string decoded equals the request's */
			const struct proto_op *d = &proto_ops[op];
			for (size_t i = 0; i < d->nfields; i++) {
				const struct fl_field *f = &d->fields[i];
				const msgpack_object *o = mp_get(r.root, f->name);
				const char *s = *(const char *const *)((const char *)args + f->off);
				if (f->kind == FL_STR && o && o->type == MSGPACK_OBJECT_STR)
					CHECK(s && strlen(s) == o->via.str.size && !memcmp(s, o->via.str.ptr, o->via.str.size));
				else if (f->kind == FL_STR)
					CHECK(s == NULL);
			}
			free(args);
		}
		mpr_free(&r);
		mpw_free(&w);
	}
}
