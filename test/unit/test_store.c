#include "unit.h"
#include "state/store.h"
#include "util/mem.h"

static void apply_cmd(struct store *s, const char *type, uint64_t seq, struct mpw *body, struct apply_res *res)
{
	size_t n;
	void *e = cmd_build(type, 7, seq, body->sb.data, body->sb.size, &n);
	CHECK(n % 8 == 0);
	store_apply(s, e, n, res);
	free(e);
	mpw_free(body);
}

static void add_node(struct store *s, uint64_t seq, uint64_t id, const char *name, struct apply_res *res)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 3);
	mpw_ku64(&w, "id", id);
	mpw_kstr(&w, "name", name);
	mpw_kstr(&w, "addr", "127.0.0.1:7420");
	apply_cmd(s, "node.add", seq, &w, res);
}

UNIT(store_apply_snapshot_roundtrip)
{
	struct store a, b;
	struct apply_res res;
	store_init(&a);
	store_init(&b);
	add_node(&a, 1, 42, "n1", &res);
	CHECK_EQ_INT(res.rc, 0);
	add_node(&a, 2, 43, "n2", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(a.nodes.n, 2);
	CHECK_EQ_INT(a.revision, 2);
	struct mpw w;
	mpw_init(&w);
	store_snapshot(&a, &w);
	char err[ERR_LEN];
	CHECK_EQ_INT(store_restore(&b, w.sb.data, w.sb.size, err), 0);
	mpw_free(&w);
	char ha[65], hb[65];
	store_hash(&a, ha);
	store_hash(&b, hb);
	CHECK_STR(ha, hb);
	CHECK_STR(((struct node *)table_get_u64(&b.nodes, 43))->name, "n2");
	store_free(&a);
	store_free(&b);
}

UNIT(store_duplicate_request_applied_once)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	add_node(&s, 5, 42, "n1", &res);
	CHECK_EQ_INT(res.rc, 0);
	add_node(&s, 5, 44, "n9", &res);
	CHECK_EQ_INT(res.rc, E_EXISTS);
	CHECK_EQ_INT(s.nodes.n, 1);
	store_free(&s);
}

UNIT(store_rejects_bad_commands_unchanged)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	char before[65], after[65];
	store_hash(&s, before);
	store_apply(&s, "garbage!", 8, &res);
	CHECK(res.rc != 0);
	add_node(&s, 1, 42, "bad name!", &res);
	CHECK_EQ_INT(res.rc, E_INVAL);
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 1);
	mpw_ku64(&w, "x", 1);
	apply_cmd(&s, "no.such.command", 2, &w, &res);
	CHECK_EQ_INT(res.rc, E_UNSUPP);
	/* truncated frame: header claims more bytes than present */
	size_t n;
	uint8_t *e = cmd_build("kv.set", 0, 0, NULL, 0, &n);
	e[7] = 200;
	store_apply(&s, e, n, &res);
	free(e);
	CHECK_EQ_INT(res.rc, E_INVAL);
	/* origin table changes for the rejected-but-sequenced commands are part of state; the
	 * object tables must stay empty */
	CHECK_EQ_INT(s.nodes.n, 0);
	CHECK_EQ_INT(s.revision, 0);
	(void)before;
	(void)after;
	store_free(&s);
}

UNIT(store_restore_rejects_garbage)
{
	struct store s;
	store_init(&s);
	char err[ERR_LEN];
	CHECK(store_restore(&s, "\x81\xa1v\x09", 4, err) != 0);
	CHECK(store_restore(&s, "\xff\xff", 2, err) != 0);
	store_free(&s);
}

UNIT(node_update_labels_and_state)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	add_node(&s, 1, 42, "n1", &res);
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 3);
	mpw_ku64(&w, "id", 42);
	mpw_kstr(&w, "state", "down");
	mpw_str(&w, "labels");
	mpw_map(&w, 1);
	mpw_kstr(&w, "zone", "a");
	apply_cmd(&s, "node.update", 2, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	struct node *n = table_get_u64(&s.nodes, 42);
	CHECK_STR(n->state, "down");
	CHECK_STR(labels_get(&n->labels, "zone"), "a");
	mpw_init(&w);
	mpw_map(&w, 2);
	mpw_ku64(&w, "id", 42);
	mpw_kstr(&w, "state", "sideways");
	apply_cmd(&s, "node.update", 3, &w, &res);
	CHECK_EQ_INT(res.rc, E_INVAL);
	CHECK_STR(n->state, "down");
	store_free(&s);
}

UNIT(mp_decode_rejects_lying_container_sizes)
{
	struct mpr r;
	/* array32 claiming 4 billion elements in a 6-byte frame */
	CHECK(mpr_decode(&r, "\xdd\xff\xff\xff\xff\x01", 6) != 0);
	/* map16 claiming 1000 pairs, 1 present */
	CHECK(mpr_decode(&r, "\xde\x03\xe8\x01\x02", 5) != 0);
	/* str32 longer than the buffer */
	CHECK(mpr_decode(&r, "\xdb\x00\x00\x10\x00xx", 7) != 0);
	/* a valid nested document still decodes */
	CHECK(mpr_decode(&r, "\x82\xa1" "a" "\x92\x01\x02\xa1" "b" "\xc0", 9) == 0);
	CHECK(mp_get(r.root, "a")->via.array.size == 2);
	mpr_free(&r);
}

#include "spec/spec.h"

static void put_service(struct store *s, uint64_t seq, const char *yaml, struct apply_res *res)
{
	struct spec_file *f = NULL;
	char err[ERR_LEN];
	CHECK(spec_parse_buf("t.yml", yaml, strlen(yaml), &f, err) == 0);
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 3);
	mpw_kstr(&w, "name", f->svc[0].name);
	mpw_ku64(&w, "at", 1);
	mpw_str(&w, "spec");
	svc_spec_encode(&f->svc[0], &w);
	spec_file_free(f);
	apply_cmd(s, "service.put", seq, &w, res);
}

UNIT(store_service_generations)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	put_service(&s, 1, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 3\n", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(res.msg, "created");
	struct service *v = store_service_by_name(&s, "web");
	CHECK_EQ_INT(v->generation, 1);
	/* the same file again: nothing */
	put_service(&s, 2, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 3\n", &res);
	CHECK_EQ_INT(res.rc, E_EXISTS);
	/* only replicas changed: a scale, same generation */
	put_service(&s, 3, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 5\n", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(res.msg, "scaled");
	CHECK_EQ_INT(v->generation, 1);
	CHECK_EQ_INT(v->replicas, 5);
	/* a real change: new generation, previous spec kept, rollout started */
	put_service(&s, 4, "services:\n  web:\n    image: demo\n    environment: {A: b}\n    deploy:\n      replicas: 5\n", &res);
	CHECK_STR(res.msg, "updated");
	CHECK_EQ_INT(v->generation, 2);
	CHECK(v->prev_spec.len > 0);
	CHECK_STR(v->update_state, "updating");
	store_free(&s);
}

UNIT(spec_dollar_dollar_is_a_literal_dollar)
{
	struct spec_file *f = NULL;
	char err[ERR_LEN];
	const char *y = "services:\n  a:\n    image: x\n    command: [\"sh\", \"-c\", \"echo $$HOME $$$$ $X\"]\n";
	CHECK(spec_parse_buf("t.yml", y, strlen(y), &f, err) == 0);
	CHECK_STR(f->svc[0].command.v[2], "echo $HOME $$ $X");
	spec_file_free(f);
}

UNIT(spec_stop_signal_checked)
{
	struct spec_file *f = NULL;
	char err[ERR_LEN];
	const char *bad = "services:\n  a:\n    image: x\n    stop_signal: SIGFOO\n";
	CHECK(spec_parse_buf("t.yml", bad, strlen(bad), &f, err) != 0);
	CHECK(strstr(err, "stop_signal SIGFOO") != NULL);
	const char *ok = "services:\n  a:\n    image: x\n    stop_signal: SIGQUIT\n";
	CHECK(spec_parse_buf("t.yml", ok, strlen(ok), &f, err) == 0);
	CHECK_EQ_INT(spec_signal(f->svc[0].stop_signal), 3);
	CHECK_EQ_INT(spec_signal("9"), 9);
	CHECK_EQ_INT(spec_signal("99"), 0);
	spec_file_free(f);
}
