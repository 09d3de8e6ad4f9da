/* The raft command table (state/cmd.h) as the state machine applies it: a body missing a
 * required field, or with one of the wrong type, is refused naming the field and changes
 * nothing but the request's own record; random entries of every type never crash the
 * apply, and two stores given the same entries agree. */
#include "unit.h"
#include "reqgen.h"
#include "state/store.h"
#include "util/mem.h"

#define ORIGIN 9
#define SESSION 0xce55

static void apply_body(struct store *s, enum cmd t, uint64_t seq, const struct mpw *body, struct apply_res *res)
{
	struct req_id q = {ORIGIN, SESSION, seq};
	size_t n;
	void *e = cmd_build(t, &q, body->sb.data, body->sb.size, &n);
	store_apply(s, e, n, res);
	free(e);
}

static uint64_t revision_and_objects(const struct store *s)
{
	return s->revision + s->nodes.n + s->kv.n + s->services.n + s->tasks.n + s->images.n + s->events.n;
}

UNIT(cmd_every_body_field_checked_by_name)
{
	struct store s;
	store_init(&s);
	uint64_t seq = 0;
	int checked = 0;
	for (int t = 0; t < CMD__COUNT; t++) {
		const struct cmd_type *ct = &cmd_types[t];
		CHECK(ct->name && ct->nfields > 0);
		for (size_t i = 0; i < ct->nfields; i++) {
			const struct fl_field *f = &ct->fields[i];
			for (int how = 0; how < 2; how++) {
				if ((how == 0 && !f->required) || (how == 1 && f->kind == FL_ANY))
					continue;
				struct mpw w;
				mpw_init(&w);
				mpw_map_begin(&w);
				reqgen_fields(&w, ct->fields, ct->nfields, i, how == 1, false);
				mpw_map_end(&w);
				uint64_t before = revision_and_objects(&s);
				struct apply_res res;
				apply_body(&s, (enum cmd)t, ++seq, &w, &res);
				mpw_free(&w);
				char want[96];
				snprintf(want, sizeof want, "%s: field %s ", ct->name, f->name);
				if (res.rc != E_INVAL || !strstr(res.msg, want)) {
					fprintf(stderr, "  %s with %s %s: rc %d \"%s\"\n", ct->name, f->name,
						how ? "of the wrong type" : "missing", res.rc, res.msg);
					exit(1);
				}
				CHECK_EQ_INT(revision_and_objects(&s), before);
				checked++;
			}
		}
	}
	CHECK(checked > 30);
	store_free(&s);
}

UNIT(cmd_names_unique_and_found)
{
	for (int a = 0; a < CMD__COUNT; a++) {
		for (int b = a + 1; b < CMD__COUNT; b++)
			CHECK(strcmp(cmd_types[a].name, cmd_types[b].name));
		msgpack_object o = {.type = MSGPACK_OBJECT_STR};
		o.via.str.ptr = cmd_types[a].name;
		o.via.str.size = (uint32_t)strlen(cmd_types[a].name);
		enum cmd found;
		CHECK_EQ_INT(cmd_lookup(&o, &found), 0);
		CHECK_EQ_INT(found, a);
	}
}

/* A body from its struct applies as the hand-packed one did. */
UNIT(cmd_body_from_struct_applies)
{
	struct store s;
	store_init(&s);
	struct cmd_kv_set kv = {.key = "k", .value = "v"};
	struct mpw w;
	mpw_init(&w);
	cmd_body(&w, CMD_KV_SET, &kv);
	struct apply_res res;
	apply_body(&s, CMD_KV_SET, 1, &w, &res);
	mpw_free(&w);
	CHECK_EQ_INT(res.rc, 0);
	const struct kv *got = table_get_str(&s.kv, "k");
	CHECK(got && !strcmp(got->value, "v"));
	store_free(&s);
}

UNIT(cmd_random_entries_apply_alike)
{
	struct store a, b;
	store_init(&a);
	store_init(&b);
	struct prng g = {0xc0ffee};
	/* something for the commands to act on */
	struct cmd_cluster_init ci = {.id = "c", .secret_hash = "h"};
	struct cmd_node_add na = {.id = 1, .name = "n1", .addr = "127.0.0.1:1"};
	struct mpw w;
	struct apply_res ra, rb;
	uint64_t seq = 0;
	mpw_init(&w);
	cmd_body(&w, CMD_CLUSTER_INIT, &ci);
	apply_body(&a, CMD_CLUSTER_INIT, ++seq, &w, &ra);
	apply_body(&b, CMD_CLUSTER_INIT, seq, &w, &rb);
	mpw_free(&w);
	mpw_init(&w);
	cmd_body(&w, CMD_NODE_ADD, &na);
	apply_body(&a, CMD_NODE_ADD, ++seq, &w, &ra);
	apply_body(&b, CMD_NODE_ADD, seq, &w, &rb);
	mpw_free(&w);
	CHECK_EQ_INT(ra.rc, 0);
	int applied = 0;
	for (int i = 0; i < 5000; i++) {
		enum cmd t = (enum cmd)prng_below(&g, CMD__COUNT);
		mpw_init(&w);
		mpw_map_begin(&w);
		reqgen_random_fields(&g, &w, cmd_types[t].fields, cmd_types[t].nfields);
		mpw_map_end(&w);
		apply_body(&a, t, ++seq, &w, &ra);
		apply_body(&b, t, seq, &w, &rb);
		mpw_free(&w);
		CHECK_EQ_INT(ra.rc, rb.rc);
		CHECK_STR(ra.msg, rb.msg);
		applied += !ra.rc;
	}
	char ha[65], hb[65];
	store_hash(&a, ha);
	store_hash(&b, hb);
	CHECK_STR(ha, hb);
	CHECK(applied > 0);
	store_free(&a);
	store_free(&b);
}
