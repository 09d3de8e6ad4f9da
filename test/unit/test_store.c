#include "unit.h"
#include "entry.h"
#include "state/store.h"
#include "image/image_load.h"
#include <stdio.h>
#include "util/mem.h"

#define SESSION 0x5e55
#define ORIGIN 7

static void apply_cmd(struct store *s, enum cmd type, uint64_t seq, struct mpw *body, struct apply_res *res)
{
	size_t n;
	struct req_id q = {ORIGIN, SESSION, seq};
	void *e = cmd_build(type, &q, body->sb.data, body->sb.size, &n);
	CHECK(n % 8 == 0);
	store_apply(s, e, n, res);
	free(e);
	mpw_free(body);
}

static void add_node(struct store *s, uint64_t seq, uint64_t id, const char *name, struct apply_res *res)
{
	struct mpw w;
	entry_node_body(&w, id, name);
	apply_cmd(s, CMD_NODE_ADD, seq, &w, res);
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

UNIT(store_node_subnets_are_the_lowest_free_ones)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	uint64_t seq = 0;
	for (uint64_t i = 1; i <= 6; i++) {
		char name[8];
		snprintf(name, sizeof name, "n%llu", (unsigned long long)i);
		add_node(&s, ++seq, i, name, &res);
		CHECK_EQ_INT(res.rc, 0);
		CHECK_EQ_INT(((const struct node *)table_get_u64(&s.nodes, i))->subnet, i);
	}
	/* a node announced again keeps its subnet; one removed frees its own */
	add_node(&s, ++seq, 3, "n3", &res);
	CHECK_EQ_INT(((const struct node *)table_get_u64(&s.nodes, 3))->subnet, 3);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", 2);
	mpw_map_end(&w);
	apply_cmd(&s, CMD_NODE_RM, ++seq, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	add_node(&s, ++seq, 9, "n9", &res);
	CHECK_EQ_INT(((const struct node *)table_get_u64(&s.nodes, 9))->subnet, 2);
	add_node(&s, ++seq, 10, "n10", &res);
	CHECK_EQ_INT(((const struct node *)table_get_u64(&s.nodes, 10))->subnet, 7);
	store_free(&s);
}

/* ---- request identity ---------------------------------------------------------------- */

static void *kv_entry(const struct req_id *q, const char *key, const char *value, size_t *n)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "key", key);
	mpw_kstr(&w, "value", value);
	mpw_map_end(&w);
	void *e = cmd_build(CMD_KV_SET, q, w.sb.data, w.sb.size, n);
	mpw_free(&w);
	return e;
}

static void kv_apply(struct store *s, const struct req_id *q, const char *key, const char *value, struct apply_res *res)
{
	size_t n;
	void *e = kv_entry(q, key, value, &n);
	store_apply(s, e, n, res);
	free(e);
}

static const char *kv_value(struct store *s, const char *key)
{
	struct kv *kv = table_get_str(&s->kv, key);
	return kv ? kv->value : "(none)";
}

/* A format-1 entry, as nodes built them before sessions: {t, v: 1, o, s, b}. */
static void *legacy_entry(uint64_t origin, uint64_t seq, const char *key, const char *value, size_t *n)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "key", key);
	mpw_kstr(&w, "value", value);
	mpw_map_end(&w);
	struct req_id q = {origin, 0, seq};
	void *p = entry_old(1, CMD_KV_SET, &q, w.sb.data, w.sb.size, n);
	mpw_free(&w);
	return p;
}

UNIT(store_duplicate_request_answers_as_first)
{
	struct store s;
	struct apply_res res, again;
	store_init(&s);
	/* the same entry twice (a retry, or a "lost" entry that committed after all) */
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", 42);
	mpw_kstr(&w, "name", "n1");
	mpw_kstr(&w, "addr", "127.0.0.1:7420");
	struct req_id q = {ORIGIN, SESSION, 5};
	size_t n;
	mpw_map_end(&w);
	void *e = cmd_build(CMD_NODE_ADD, &q, w.sb.data, w.sb.size, &n);
	mpw_free(&w);
	store_apply(&s, e, n, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(res.id, 42);
	uint64_t rev = s.revision;
	char h1[65], h2[65];
	store_hash(&s, h1);
	store_apply(&s, e, n, &again);
	free(e);
	CHECK_EQ_INT(again.rc, res.rc);
	CHECK_EQ_INT(again.id, res.id);
	CHECK_STR(again.msg, res.msg);
	CHECK_EQ_INT(s.revision, rev);
	store_hash(&s, h2);
	CHECK_STR(h2, h1);
	/* the same identity with another body is still that request: answered, not applied */
	add_node(&s, 5, 44, "n9", &again);
	CHECK_EQ_INT(again.rc, 0);
	CHECK_EQ_INT(again.id, 42);
	CHECK_EQ_INT(s.nodes.n, 1);
	/* a rejected request repeated gets its error again, not a success */
	struct req_id bad = {ORIGIN, SESSION, 6};
	kv_apply(&s, &bad, "", "empty key", &res);
	CHECK_EQ_INT(res.rc, E_INVAL);
	kv_apply(&s, &bad, "", "empty key", &again);
	CHECK_EQ_INT(again.rc, E_INVAL);
	CHECK_STR(again.msg, res.msg);
	/* the remembered answer survives a snapshot (a node restored from one must agree) */
	struct store t;
	store_init(&t);
	mpw_init(&w);
	store_snapshot(&s, &w);
	char err[ERR_LEN];
	CHECK_EQ_INT(store_restore(&t, w.sb.data, w.sb.size, err), 0);
	mpw_free(&w);
	kv_apply(&t, &bad, "", "empty key", &again);
	CHECK_EQ_INT(again.rc, E_INVAL);
	CHECK_STR(again.msg, res.msg);
	store_hash(&s, h1);
	store_hash(&t, h2);
	CHECK_STR(h2, h1);
	store_free(&t);
	store_free(&s);
}

UNIT(store_older_request_of_session_is_not_a_success)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	struct req_id a = {ORIGIN, SESSION, 1}, b = {ORIGIN, SESSION, 2};
	kv_apply(&s, &a, "k", "1", &res);
	CHECK_EQ_INT(res.rc, 0);
	kv_apply(&s, &b, "k", "2", &res);
	CHECK_EQ_INT(res.rc, 0);
	/* request 1 again after 2: its result is no longer kept, so no answer claims success */
	uint64_t rev = s.revision;
	kv_apply(&s, &a, "k", "1", &res);
	CHECK_EQ_INT(res.rc, E_BUSY);
	CHECK(strstr(res.msg, "not applied"));
	CHECK_STR(kv_value(&s, "k"), "2");
	CHECK_EQ_INT(s.revision, rev);
	store_free(&s);
}

UNIT(store_new_session_after_restart_applies_lower_counter)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	/* the node's previous run got far (or something recorded a huge counter for it) */
	struct req_id before = {ORIGIN, 0x1111, 1ull << 62};
	kv_apply(&s, &before, "replicas", "1", &res);
	CHECK_EQ_INT(res.rc, 0);
	/* restarted: a new session counts from 1 again, and its requests apply */
	struct req_id after = {ORIGIN, 0x2222, 1};
	kv_apply(&s, &after, "replicas", "2", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(kv_value(&s, "replicas"), "2");
	after.seq = 2;
	kv_apply(&s, &after, "replicas", "3", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(kv_value(&s, "replicas"), "3");
	/* another node's identity is its own: the same session and counter do not clash */
	struct req_id other = {ORIGIN + 1, 0x2222, 2};
	kv_apply(&s, &other, "replicas", "4", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(kv_value(&s, "replicas"), "4");
	/* no identity: never taken for a retry */
	kv_apply(&s, NULL, "replicas", "5", &res);
	CHECK_EQ_INT(res.rc, 0);
	kv_apply(&s, NULL, "replicas", "6", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(kv_value(&s, "replicas"), "6");
	store_free(&s);
}

UNIT(store_request_identity_ignores_the_clock)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	/* format 1 sequences were wall-clock milliseconds << 10: one from a clock set far
	 * ahead, as the old nodes wrote it */
	uint64_t ahead = (wall_ms() + 10ull * 365 * 86400 * 1000) << 10;
	size_t n;
	void *e = legacy_entry(ORIGIN, ahead, "k", "old", &n);
	store_apply(&s, e, n, &res);
	free(e);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(kv_value(&s, "k"), "old");
	/* old entries still replay under their own rule: a smaller one is not applied, and is
	 * not reported as a success either */
	e = legacy_entry(ORIGIN, ahead - 1, "k", "older", &n);
	store_apply(&s, e, n, &res);
	free(e);
	CHECK_EQ_INT(res.rc, E_BUSY);
	CHECK_STR(kv_value(&s, "k"), "old");
	/* the recorded high-water mark does not hold back requests with a session */
	struct req_id q = {ORIGIN, SESSION, 1};
	kv_apply(&s, &q, "k", "new", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(kv_value(&s, "k"), "new");
	/* a snapshot written before sessions existed (origins with only id and seq) restores
	 * and leaves the same behaviour */
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "v", 1);
	mpw_ku64(&w, "revision", 3);
	mpw_key(&w, "cluster");
	mpw_nil(&w);
	const char *empty[] = {"nodes", "kv", "services", "tasks", "images"};
	for (int i = 0; i < 5; i++) {
		mpw_key(&w, empty[i]);
		mpw_arr(&w, 0);
	}
	mpw_key(&w, "origins");
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", ORIGIN);
	mpw_ku64(&w, "seq", ahead);
	char err[ERR_LEN];
	struct store old;
	store_init(&old);
	mpw_map_end(&w);
	mpw_map_end(&w);
	CHECK_EQ_INT(store_restore(&old, w.sb.data, w.sb.size, err), 0);
	mpw_free(&w);
	kv_apply(&old, &q, "k", "after restore", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(kv_value(&old, "k"), "after restore");
	store_free(&old);
	store_free(&s);
}

UNIT(store_forged_origin_refused)
{
	char err[ERR_LEN];
	size_t n;
	struct req_id q = {ORIGIN, SESSION, 1};
	void *e = kv_entry(&q, "k", "v", &n);
	/* the leader takes an entry only from the node it names */
	CHECK_EQ_INT(cmd_check_origin(e, n, ORIGIN, false, err), 0);
	CHECK_EQ_INT(cmd_check_origin(e, n, ORIGIN + 1, false, err), E_AUTH);
	CHECK(strstr(err, "claims origin"));
	/* a connection that named no node (a remote CLI) submits no entries */
	CHECK_EQ_INT(cmd_check_origin(e, n, 0, false, err), E_AUTH);
	/* a worker-only node does not manage the cluster: no kv.set from it */
	CHECK_EQ_INT(cmd_check_origin(e, n, ORIGIN, true, err), E_AUTH);
	CHECK(strstr(err, "is a worker"));
	free(e);
	/* format-1 entries are bound the same way */
	e = legacy_entry(ORIGIN, 99, "k", "v", &n);
	CHECK_EQ_INT(cmd_check_origin(e, n, ORIGIN, false, err), 0);
	CHECK_EQ_INT(cmd_check_origin(e, n, 3, false, err), E_AUTH);
	free(e);
	CHECK_EQ_INT(cmd_check_origin("garbage!", 8, ORIGIN, false, err), E_INVAL);
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
	/* a type this node does not know (a newer node's) */
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "t", "no.such.command");
	mpw_ku64(&w, "v", 2);
	mpw_ku64(&w, "o", ORIGIN);
	mpw_ku64(&w, "n", SESSION);
	mpw_ku64(&w, "s", 2);
	mpw_key(&w, "b");
	mpw_map_begin(&w);
	mpw_ku64(&w, "x", 1);
	mpw_map_end(&w);
	mpw_map_end(&w);
	size_t n;
	uint8_t *e = cmd_frame(w.sb.data, w.sb.size, &n);
	mpw_free(&w);
	store_apply(&s, e, n, &res);
	free(e);
	CHECK_EQ_INT(res.rc, E_UNSUPP);
	/* truncated frame: header claims more bytes than present */
	e = cmd_build(CMD_KV_SET, NULL, NULL, 0, &n);
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
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", 42);
	mpw_kstr(&w, "state", "down");
	mpw_key(&w, "labels");
	mpw_map_begin(&w);
	mpw_kstr(&w, "zone", "a");
	mpw_map_end(&w);
	mpw_map_end(&w);
	apply_cmd(&s, CMD_NODE_UPDATE, 2, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	struct node *n = table_get_u64(&s.nodes, 42);
	CHECK_EQ_INT(n->state, NS_DOWN);
	CHECK_STR(labels_get(&n->labels, "zone"), "a");
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", 42);
	mpw_kstr(&w, "state", "sideways");
	mpw_map_end(&w);
	apply_cmd(&s, CMD_NODE_UPDATE, 3, &w, &res);
	CHECK_EQ_INT(res.rc, E_INVAL);
	CHECK_EQ_INT(n->state, NS_DOWN);
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

UNIT(store_service_generations)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	entry_put_service(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 3\n", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(res.msg, "created");
	struct service *v = store_service_by_name(&s, "web");
	CHECK_EQ_INT(v->generation, 1);
	/* the same file again: nothing */
	entry_put_service(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 3\n", &res);
	CHECK_EQ_INT(res.rc, E_EXISTS);
	/* only replicas changed: a scale, same generation */
	entry_put_service(&s, "services:\n  web:\n    image: demo\n    deploy:\n      replicas: 5\n", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(res.msg, "scaled");
	CHECK_EQ_INT(v->generation, 1);
	CHECK_EQ_INT(v->replicas, 5);
	/* a real change: new generation, previous spec kept, rollout started */
	entry_put_service(&s, "services:\n  web:\n    image: demo\n    environment: {A: b}\n    deploy:\n      replicas: 5\n", &res);
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
	/* $X is a reference (unset here: empty, as in Compose) */
	CHECK_STR(f->svc[0].command.v[2], "echo $HOME $$ ");
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

/* image.put records under the canonical name whatever the spelling, replaces a record an
 * older binary kept under the short one, and lookups and image.rm accept every spelling. */
static void put_image(struct store *s, const char *name, const char *digest, struct apply_res *res)
{
	struct image_info im = {0};
	im.name = xstrdup(name);
	snprintf(im.digest, sizeof im.digest, "%s", digest);
	im.config_digest = xstrdup(digest);
	im.layers = xcalloc(2, sizeof *im.layers);
	im.layers[0] = xstrdup(digest);
	im.nlayers = 1;
	struct mpw info, w;
	mpw_init(&info);
	image_info_encode(&im, &info);
	image_info_free(&im);
	struct cmd_image_put b = {.name = name, .digest = digest, .size = 1,
				  .info = {.raw = info.sb.data, .len = info.sb.size}, .node_id = 1};
	mpw_init(&w);
	cmd_body(&w, CMD_IMAGE_PUT, &b);
	mpw_free(&info);
	entry_apply(s, CMD_IMAGE_PUT, &w, res);
}

UNIT(store_images_by_normalised_name)
{
	struct store s;
	store_init(&s);
	struct apply_res res;
	const char *d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
	const char *d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	/* a record as an older binary wrote it: the short spelling as key */
	struct image *old = xcalloc(1, sizeof *old);
	old->name = xstrdup("nginx:latest");
	old->digest = xstrdup(d1);
	table_put(&s.images, old);
	CHECK(store_image_by_name(&s, "nginx:latest") == old);
	CHECK(store_image_by_name(&s, "nginx") == NULL); /* not the same spelling, not canonical */
	/* now put under any spelling: one canonical record, the old one gone */
	put_image(&s, "nginx", d2, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(s.images.n, 1);
	const struct image *im = store_image_by_name(&s, "nginx");
	CHECK(im);
	CHECK_STR(im->name, "docker.io/library/nginx:latest");
	CHECK_STR(im->digest, d2);
	CHECK(store_image_by_name(&s, "docker.io/library/nginx:latest") == im);
	CHECK(store_image_by_name(&s, "index.docker.io/library/nginx:latest") == im);
	CHECK(store_image_by_name(&s, "nginx:1.27") == NULL);
	put_image(&s, "docker.io/library/nginx:latest", d2, &res);
	CHECK_EQ_INT(res.rc, E_EXISTS); /* the same image again: unchanged */
	put_image(&s, "ghcr.io/org/app:1", d1, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(s.images.n, 2);
	/* image.rm by a short spelling */
	struct mpw w;
	mpw_init(&w);
	struct cmd_image_rm rm = {.name = "nginx"};
	cmd_body(&w, CMD_IMAGE_RM, &rm);
	entry_apply(&s, CMD_IMAGE_RM, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(s.images.n, 1);
	CHECK(store_image_by_name(&s, "nginx") == NULL);
	CHECK(store_image_by_name(&s, "ghcr.io/org/app:1"));
	store_free(&s);
}
