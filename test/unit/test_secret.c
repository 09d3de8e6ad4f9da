/* Secrets: sealing round trips and refuses tampering, other keys and other names; the
 * data key file and its wrapping for joiners; the spec's secrets/configs (short and long
 * syntax, defaults, top-level declarations and their errors); the state machine's
 * versions, pinning, rolling, pruning, rm refused in use, and no value in clear in a
 * snapshot. */
#include "unit.h"
#include "entry.h"
#include "node/feed.h"
#include "secret/datakey.h"
#include "secret/seal.h"
#include "secret/secrets.h"
#include "spec/spec.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void key_of(uint8_t k[SEAL_KEY_LEN], uint8_t b)
{
	memset(k, b, SEAL_KEY_LEN);
}

UNIT(seal_round_trip_and_tamper_refused)
{
	uint8_t k[SEAL_KEY_LEN], other[SEAL_KEY_LEN];
	key_of(k, 7);
	key_of(other, 8);
	const char *v = "hunter2-and-more";
	struct buf b = {0}, out = {0};
	char err[ERR_LEN];
	CHECK_EQ_INT(seal_close(k, "secret db", 9, v, strlen(v), &b, err), 0);
	CHECK_EQ_INT(b.len, strlen(v) + SEAL_OVERHEAD);
	CHECK(!memmem(b.data, b.len, v, strlen(v))); /* not in clear */
	CHECK_EQ_INT(seal_open(k, "secret db", 9, b.data, b.len, &out, err), 0);
	CHECK(out.len == strlen(v) && !memcmp(out.data, v, out.len));
	/* two seals of one value differ (random nonce) */
	struct buf b2 = {0};
	CHECK_EQ_INT(seal_close(k, "secret db", 9, v, strlen(v), &b2, err), 0);
	CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len));
	/* every byte flipped in turn is refused */
	for (size_t i = 0; i < b.len; i++) {
		struct buf o = {0};
		b.data[i] ^= 0x01;
		CHECK(seal_open(k, "secret db", 9, b.data, b.len, &o, err) != 0);
		b.data[i] ^= 0x01;
		buf_free(&o);
	}
	/* bound to its name, and to its key */
	struct buf o = {0};
	CHECK_EQ_INT(seal_open(k, "secret dc", 9, b.data, b.len, &o, err), E_AUTH);
	CHECK_EQ_INT(seal_open(other, "secret db", 9, b.data, b.len, &o, err), E_AUTH);
	CHECK(strstr(err, "another data key") != NULL);
	CHECK_EQ_INT(seal_open(k, "secret db", 9, b.data, 10, &o, err), E_INVAL);
	/* an empty value seals too */
	struct buf e = {0};
	CHECK_EQ_INT(seal_close(k, NULL, 0, "", 0, &e, err), 0);
	CHECK_EQ_INT(seal_open(k, NULL, 0, e.data, e.len, &o, err), 0);
	CHECK_EQ_INT(o.len, 0);
	buf_free(&b);
	buf_free(&b2);
	buf_free(&e);
	buf_free(&o);
	buf_free(&out);
}

UNIT(datakey_file_and_join_wrap)
{
	char dir[] = "/tmp/orch-unit-dk-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char err[ERR_LEN];
	struct datakey k, got;
	CHECK_EQ_INT(datakey_load(dir, &got, err), E_NOTFOUND);
	datakey_generate(&k);
	CHECK_EQ_INT(datakey_save(dir, &k, err), 0);
	char path[600];
	snprintf(path, sizeof path, "%s/datakey", dir);
	struct stat st;
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(datakey_load(dir, &got, err), 0);
	CHECK(!memcmp(k.k, got.k, sizeof k.k));
	/* wrapped for a joiner: the right token opens it, another does not */
	struct token t, t2;
	memset(&t, 0, sizeof t);
	memset(&t2, 0, sizeof t2);
	token_generate_secret(&t);
	token_generate_secret(&t2);
	struct buf w = {0};
	CHECK_EQ_INT(datakey_wrap(&k, &t, &w, err), 0);
	CHECK(!memmem(w.data, w.len, k.k, sizeof k.k));
	memset(&got, 0, sizeof got);
	CHECK_EQ_INT(datakey_unwrap(w.data, w.len, &t, &got, err), 0);
	CHECK(!memcmp(k.k, got.k, sizeof k.k));
	CHECK(datakey_unwrap(w.data, w.len, &t2, &got, err) != 0);
	buf_free(&w);
	/* a sealed value opens with the node's key file */
	struct buf s = {0}, o = {0};
	CHECK_EQ_INT(secrets_seal(dir, "secret", "db", "v1", 2, &s, err), 0);
	CHECK_EQ_INT(secrets_open(dir, "secret", "db", s.data, s.len, &o, err), 0);
	CHECK(o.len == 2 && !memcmp(o.data, "v1", 2));
	CHECK(secrets_open(dir, "config", "db", s.data, s.len, &o, err) != 0);
	buf_free(&s);
	secrets_wipe(&o);
	/* a malformed key file is an error, not a key */
	FILE *f = fopen(path, "w");
	fputs("not hex\n", f);
	fclose(f);
	CHECK_EQ_INT(datakey_load(dir, &got, err), E_INVAL);
	datakey_remove(dir);
	CHECK_EQ_INT(datakey_load(dir, &got, err), E_NOTFOUND);
	rmdir(dir);
}

static struct spec_file *parse_n(const char *yml, size_t n, char *err)
{
	struct spec_file *f = NULL;
	if (spec_parse_buf("app.yml", yml, n, &f, err))
		return NULL;
	return f;
}

static struct spec_file *parse(const char *yml, char *err)
{
	return parse_n(yml, strlen(yml), err);
}

UNIT(spec_secrets_and_configs)
{
	char err[ERR_LEN] = "";
	struct spec_file *f = parse("secrets:\n  db_password:\n    file: ./pw.txt\n  ext:\n    external: true\n    name: shared\n"
				    "configs:\n  nginx:\n    file: nginx.conf\n"
				    "services:\n  web:\n    image: demo\n    secrets:\n      - db_password\n"
				    "      - source: ext\n        target: api_key\n        uid: \"103\"\n        gid: 7\n        mode: 0400\n"
				    "    configs:\n      - source: nginx\n        target: /etc/nginx/nginx.conf\n        mode: 0o440\n      - nginx\n",
				    err);
	if (!f)
		fprintf(stderr, "  %s\n", err);
	CHECK(f != NULL);
	const struct svc_spec *s = &f->svc[0];
	CHECK_EQ_INT(s->secrets.n, 2);
	CHECK_STR(s->secrets.v[0].source, "db_password");
	CHECK_STR(s->secrets.v[0].target, "/run/secrets/db_password");
	CHECK_EQ_INT(s->secrets.v[0].mode, 0444);
	CHECK_STR(s->secrets.v[1].target, "/run/secrets/api_key");
	CHECK_EQ_INT(s->secrets.v[1].uid, 103);
	CHECK_EQ_INT(s->secrets.v[1].gid, 7);
	CHECK_EQ_INT(s->secrets.v[1].mode, 0400);
	CHECK_EQ_INT(s->configs.n, 2);
	CHECK_STR(s->configs.v[0].target, "/etc/nginx/nginx.conf");
	CHECK_EQ_INT(s->configs.v[0].mode, 0440);
	CHECK_STR(s->configs.v[1].target, "/nginx");
	const struct file_def *d = spec_file_def(&f->secrets, "ext");
	CHECK(d && d->external && !d->file);
	CHECK_STR(d->name, "shared");
	d = spec_file_def(&f->secrets, "db_password");
	CHECK(d && !d->external);
	CHECK_STR(d->file, "./pw.txt");
	CHECK_STR(spec_file_def(&f->configs, "nginx")->file, "nginx.conf");
	/* the encoding round-trips */
	struct mpw w;
	mpw_init(&w);
	svc_spec_encode(s, &w);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	struct svc_spec back;
	CHECK_EQ_INT(svc_spec_decode(r.root, &back, err), 0);
	CHECK_EQ_INT(svc_spec_equal(&back, s), 1);
	CHECK_EQ_INT(back.secrets.v[1].mode, 0400);
	svc_spec_free(&back);
	mpr_free(&r);
	mpw_free(&w);
	spec_file_free(f);

	static const struct {
		const char *yml, *want;
	} bad[] = {
		{"services:\n  web:\n    image: demo\n    secrets: [nope]\n", "secret nope is not declared under the top-level secrets"},
		{"secrets:\n  a:\n    file: x\n    external: true\nservices:\n  web:\n    image: demo\n", "exactly one of file: and external"},
		{"secrets:\n  a: {}\nservices:\n  web:\n    image: demo\n", "exactly one of file: and external"},
		{"secrets:\n  a:\n    environment: X\nservices:\n  web:\n    image: demo\n", "not supported"},
		{"secrets:\n  a:\n    file: x\nservices:\n  web:\n    image: demo\n    secrets:\n      - source: a\n        mode: 0999\n", "file mode"},
		{"secrets:\n  a:\n    file: x\nservices:\n  web:\n    image: demo\n    secrets:\n      - target: /x\n", "missing required key \"source\""},
		{"secrets:\n  a:\n    file: x\nservices:\n  web:\n    image: demo\n    secrets:\n      - source: a\n        target: /run/../etc/x\n", "must not contain"},
		{"secrets:\n  a:\n    file: x\n  b:\n    file: y\nservices:\n  web:\n    image: demo\n    secrets:\n      - source: a\n        target: /k\n      - source: b\n        target: /k\n", "both mounted at /k"},
		{"secrets:\n  a:\n    file: x\nservices:\n  web:\n    image: demo\n    secrets:\n      - source: a\n        colour: red\n", "colour"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		f = parse(bad[i].yml, err);
		if (f || !strstr(err, bad[i].want))
			fprintf(stderr, "  case %zu: got \"%s\", want \"%s\"\n", i, f ? "(parsed)" : err, bad[i].want);
		CHECK(f == NULL);
		CHECK(strstr(err, bad[i].want) != NULL);
		CHECK(strstr(err, "app.yml:") == err); /* located */
	}
}

/* secret.put of a sealed value (sealed under a fixed key: the state machine never opens
 * it). */
static void put(struct store *s, const char *kind, const char *name, const char *value, struct apply_res *res)
{
	uint8_t k[SEAL_KEY_LEN];
	key_of(k, 3);
	struct buf b = {0};
	char err[ERR_LEN];
	CHECK_EQ_INT(seal_close(k, name, strlen(name), value, strlen(value), &b, err), 0);
	struct mpw w;
	mpw_init(&w);
	struct cmd_secret_put body = {.kind = kind, .name = name, .data = {b.data, b.len}, .size = strlen(value), .at = 1000};
	cmd_body(&w, CMD_SECRET_PUT, &body);
	entry_apply(s, CMD_SECRET_PUT, &w, res);
	buf_free(&b);
}

static void rm(struct store *s, const char *kind, const char *name, struct apply_res *res)
{
	struct mpw w;
	mpw_init(&w);
	struct cmd_secret_rm body = {.kind = kind, .name = name};
	cmd_body(&w, CMD_SECRET_RM, &body);
	entry_apply(s, CMD_SECRET_RM, &w, res);
}

static const struct file_ref *ref0(const struct service *v)
{
	return &service_spec(v)->secrets.v[0];
}

UNIT(store_secret_versions_roll_and_rm)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	const char *yml = "secrets:\n  db:\n    external: true\nservices:\n  web:\n    image: demo\n    secrets: [db]\n";
	/* a service cannot name a secret that does not exist */
	entry_put_service(&s, yml, &res);
	CHECK_EQ_INT(res.rc, E_NOTFOUND);
	CHECK(strstr(res.msg, "secret db, which does not exist") != NULL);
	put(&s, "secret", "db", "first-value", &res);
	CHECK_EQ_INT(res.rc, 0);
	entry_put_service(&s, yml, &res);
	CHECK_EQ_INT(res.rc, 0);
	struct service *v = store_service_by_name(&s, "web");
	CHECK_EQ_INT(v->generation, 1);
	CHECK_EQ_INT(ref0(v)->version, 1); /* pinned */
	/* the same spec again changes nothing */
	entry_put_service(&s, yml, &res);
	CHECK_EQ_INT(res.rc, E_EXISTS);
	/* a new value: version 2, the service rolls to it, version 1 stays for the previous
	 * generation (rollback) */
	put(&s, "secret", "db", "second-value", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(store_secret_latest(&s, "secret", "db")->version, 2);
	v = store_service_by_name(&s, "web");
	CHECK_EQ_INT(v->generation, 2);
	CHECK_EQ_INT(ref0(v)->version, 2);
	CHECK_EQ_INT(service_prev_spec(v)->secrets.v[0].version, 1);
	CHECK_STR(v->update_state, "updating");
	CHECK(store_secret_version(&s, "secret", "db", 1) != NULL);
	/* a third: version 1 is named by no spec any more and goes */
	put(&s, "secret", "db", "third-value", &res);
	CHECK_EQ_INT(store_service_by_name(&s, "web")->generation, 3);
	CHECK(store_secret_version(&s, "secret", "db", 1) == NULL);
	CHECK(store_secret_version(&s, "secret", "db", 2) != NULL);
	/* another kind or name rolls nothing */
	put(&s, "config", "db", "c", &res);
	put(&s, "registry", "ghcr.io", "u\0p", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(store_service_by_name(&s, "web")->generation, 3);
	/* bad input changes nothing */
	uint64_t rev = s.revision;
	put(&s, "secret", "../x", "v", &res);
	CHECK_EQ_INT(res.rc, E_INVAL);
	put(&s, "token", "x", "v", &res);
	CHECK_EQ_INT(res.rc, E_INVAL);
	CHECK_EQ_INT(s.revision, rev);
	/* no value in clear in a snapshot; the snapshot restores the versions */
	struct mpw w;
	mpw_init(&w);
	store_snapshot(&s, &w);
	CHECK(!memmem(w.sb.data, w.sb.size, "third-value", 11));
	struct store t;
	store_init(&t);
	char err[ERR_LEN];
	CHECK_EQ_INT(store_restore(&t, w.sb.data, w.sb.size, err), 0);
	CHECK_EQ_INT(store_secret_latest(&t, "secret", "db")->version, 3);
	char h1[65], h2[65];
	store_hash(&s, h1);
	store_hash(&t, h2);
	CHECK_STR(h1, h2);
	store_free(&t);
	mpw_free(&w);
	/* rm: refused while in use, then every version goes */
	rm(&s, "secret", "db", &res);
	CHECK_EQ_INT(res.rc, E_FAIL); /* not E_BUSY: clients retry that */
	CHECK(strstr(res.msg, "in use by service web") != NULL);
	rm(&s, "config", "db", &res);
	CHECK_EQ_INT(res.rc, 0);
	rm(&s, "config", "db", &res);
	CHECK_EQ_INT(res.rc, E_NOTFOUND);
	struct mpw rmw;
	mpw_init(&rmw);
	mpw_map_begin(&rmw);
	mpw_kstr(&rmw, "name", "web");
	mpw_map_end(&rmw);
	entry_apply(&s, CMD_SERVICE_RM, &rmw, &res);
	CHECK_EQ_INT(res.rc, 0);
	rm(&s, "secret", "db", &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK(store_secret_latest(&s, "secret", "db") == NULL);
	CHECK(store_secret_latest(&s, "registry", "ghcr.io") != NULL);
	store_free(&s);
}

/* The assignment feed: a task's sealed values go to the node that runs it, nowhere else. */
UNIT(feed_sends_values_only_to_the_task_node)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	entry_add_node(&s, 2, "n2", &res);
	entry_add_node(&s, 3, "n3", &res);
	put(&s, "secret", "db", "the-value", &res);
	CHECK_EQ_INT(res.rc, 0);
	entry_put_service(&s, "secrets:\n  db:\n    external: true\nservices:\n  web:\n    image: demo\n"
			      "    secrets:\n      - source: db\n        mode: 0400\n", &res);
	CHECK_EQ_INT(res.rc, 0);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_key(&w, "create");
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_ku64(&w, "service_id", store_service_by_name(&s, "web")->id);
	mpw_ku64(&w, "slot", 1);
	mpw_map_end(&w);
	mpw_map_end(&w);
	entry_apply(&s, CMD_TASK_BATCH, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	struct task *t = table_get_u64(&s.tasks, res.id);
	t->node_id = 2;
	t->state = TS_ASSIGNED;
	const struct secret *x = store_secret_latest(&s, "secret", "db");
	struct mpw d2, d3;
	mpw_init(&d2);
	mpw_init(&d3);
	feed_doc(&s, 2, &d2);
	feed_doc(&s, 3, &d3);
	CHECK(memmem(d2.sb.data, d2.sb.size, x->data.data, x->data.len) != NULL);
	CHECK(!memmem(d3.sb.data, d3.sb.size, x->data.data, x->data.len));
	CHECK(!memmem(d2.sb.data, d2.sb.size, "the-value", 9));
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, d2.sb.data, d2.sb.size), 0);
	const msgpack_object *f = mp_get(&mp_get(r.root, "tasks")->via.array.ptr[0], "files");
	CHECK(f && f->type == MSGPACK_OBJECT_ARRAY && f->via.array.size == 1);
	char target[64];
	uint64_t mode = 0, ver = 0;
	CHECK_EQ_INT(mp_get_strbuf(&f->via.array.ptr[0], "target", target, sizeof target), 0);
	CHECK_STR(target, "/run/secrets/db");
	mp_get_u64(&f->via.array.ptr[0], "mode", &mode);
	mp_get_u64(&f->via.array.ptr[0], "version", &ver);
	CHECK_EQ_INT(mode, 0400);
	CHECK_EQ_INT(ver, 1);
	mpr_free(&r);
	mpw_free(&d2);
	mpw_free(&d3);
	store_free(&s);
}

/* The leader's opener of a worker's values (node/feed.h): the test's key, as put() sealed. */
static int open_with_test_key(void *arg, const char *kind, const char *name, const void *blob, size_t n, struct buf *out,
			      char *err)
{
	(void)arg;
	(void)kind;
	uint8_t k[SEAL_KEY_LEN];
	key_of(k, 3);
	return seal_open(k, name, strlen(name), blob, n, out, err);
}

static void doc_sent(void *arg, const struct feed_watcher *x, const void *doc, size_t len)
{
	(void)x;
	struct mpw *w = arg;
	msgpack_sbuffer_clear(&w->sb);
	msgpack_sbuffer_write(&w->sb, doc, len);
}

static void doc_self(void *arg, const msgpack_object *doc)
{
	(void)arg;
	(void)doc;
}

/* A worker holds no data key: its task's values reach it opened by the leader ("value"),
 * never sealed; a manager-capable node still gets them sealed; with no opener (no key on
 * the leader) the worker is told why instead. */
UNIT(feed_opens_values_for_a_worker_only)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	entry_add_node(&s, 2, "n2", &res);
	entry_add_node(&s, 3, "w3", &res);
	((struct node *)table_get_u64(&s.nodes, 3))->worker = true;
	put(&s, "secret", "db", "the-value", &res);
	CHECK_EQ_INT(res.rc, 0);
	entry_put_service(&s, "secrets:\n  db:\n    external: true\nservices:\n  web:\n    image: demo\n"
			      "    secrets:\n      - source: db\n", &res);
	CHECK_EQ_INT(res.rc, 0);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_key(&w, "create");
	mpw_arr(&w, 2);
	for (uint64_t slot = 1; slot <= 2; slot++) {
		mpw_map_begin(&w);
		mpw_ku64(&w, "service_id", store_service_by_name(&s, "web")->id);
		mpw_ku64(&w, "slot", slot);
		mpw_map_end(&w);
	}
	mpw_map_end(&w);
	entry_apply(&s, CMD_TASK_BATCH, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	uint64_t on = 2;
	TABLE_FOREACH(&s.tasks, struct task, t) {
		t->node_id = on++;
		t->state = TS_ASSIGNED;
	}
	const struct secret *x = store_secret_latest(&s, "secret", "db");
	struct mpw d2, d3;
	mpw_init(&d2);
	mpw_init(&d3);
	struct feed f = {0};
	struct feed_out o2 = {doc_sent, doc_self, &d2, open_with_test_key}, o3 = {doc_sent, doc_self, &d3, open_with_test_key};
	feed_add(&f, (void *)2, 1, 2, &s, &o2);
	CHECK(memmem(d2.sb.data, d2.sb.size, x->data.data, x->data.len) != NULL);
	CHECK(!memmem(d2.sb.data, d2.sb.size, "the-value", 9));
	feed_add(&f, (void *)3, 1, 3, &s, &o3);
	CHECK(!memmem(d3.sb.data, d3.sb.size, x->data.data, x->data.len));
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, d3.sb.data, d3.sb.size), 0);
	const msgpack_object *fl = mp_get(&mp_get(r.root, "tasks")->via.array.ptr[0], "files");
	CHECK(fl && fl->type == MSGPACK_OBJECT_ARRAY && fl->via.array.size == 1);
	const msgpack_object *v = mp_get(&fl->via.array.ptr[0], "value");
	CHECK(v && v->type == MSGPACK_OBJECT_BIN && v->via.bin.size == 9 && !memcmp(v->via.bin.ptr, "the-value", 9));
	CHECK(mp_get(&fl->via.array.ptr[0], "data") == NULL);
	mpr_free(&r);
	feed_free(&f);
	/* no key to open with: the worker is told why, and gets nothing sealed either */
	struct feed g = {0};
	o3.open = NULL;
	feed_add(&g, (void *)3, 1, 3, &s, &o3);
	CHECK(!memmem(d3.sb.data, d3.sb.size, "the-value", 9));
	CHECK(!memmem(d3.sb.data, d3.sb.size, x->data.data, x->data.len));
	CHECK(memmem(d3.sb.data, d3.sb.size, "open_err", 8) != NULL);
	feed_free(&g);
	mpw_free(&d2);
	mpw_free(&d3);
	store_free(&s);
}

/* What the registry helper calls when it pulls: the credentials of orch registry login. */
UNIT(registry_creds_from_the_replica)
{
	char dir[] = "/tmp/orch-unit-reg-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char err[ERR_LEN], user[64], pass[64];
	struct datakey k;
	datakey_generate(&k);
	CHECK_EQ_INT(datakey_save(dir, &k, err), 0);
	struct store s;
	store_init(&s);
	struct host h = {.store = &s, .data_dir = dir};
	CHECK_EQ_INT(secrets_registry_creds(&h, "127.0.0.1:5000", user, sizeof user, pass, sizeof pass, err), E_NOTFOUND);
	/* stored as orch registry login does: user, NUL, password, sealed by this node */
	struct buf b = {0};
	CHECK_EQ_INT(secrets_seal(dir, "registry", "127.0.0.1:5000", "alice\0pa:ss", 11, &b, err), 0);
	struct mpw w;
	mpw_init(&w);
	struct cmd_secret_put body = {.kind = "registry", .name = "127.0.0.1:5000", .data = {b.data, b.len}, .size = 11};
	cmd_body(&w, CMD_SECRET_PUT, &body);
	struct apply_res res;
	entry_apply(&s, CMD_SECRET_PUT, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(secrets_registry_creds(&h, "127.0.0.1:5000", user, sizeof user, pass, sizeof pass, err), 0);
	CHECK_STR(user, "alice");
	CHECK_STR(pass, "pa:ss");
	CHECK_EQ_INT(secrets_registry_creds(&h, "127.0.0.1:5001", user, sizeof user, pass, sizeof pass, err), E_NOTFOUND);
	/* too small a buffer is an error, not a cut password */
	CHECK_EQ_INT(secrets_registry_creds(&h, "127.0.0.1:5000", user, sizeof user, pass, 4, err), E_INVAL);
	/* another node's key cannot open them */
	struct datakey other;
	datakey_generate(&other);
	CHECK_EQ_INT(datakey_save(dir, &other, err), 0);
	CHECK_EQ_INT(secrets_registry_creds(&h, "127.0.0.1:5000", user, sizeof user, pass, sizeof pass, err), E_AUTH);
	CHECK_EQ_INT(datakey_save(dir, &k, err), 0);
	/* the copy for a worker thread answers the same, whatever the store does after */
	struct secrets_creds *copy = secrets_creds_take(&h);
	struct mpw rmw;
	mpw_init(&rmw);
	struct cmd_secret_rm rb = {.kind = "registry", .name = "127.0.0.1:5000"};
	cmd_body(&rmw, CMD_SECRET_RM, &rb);
	entry_apply(&s, CMD_SECRET_RM, &rmw, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_EQ_INT(secrets_registry_creds(&h, "127.0.0.1:5000", user, sizeof user, pass, sizeof pass, err), E_NOTFOUND);
	memset(pass, 0, sizeof pass);
	CHECK_EQ_INT(secrets_creds_get(copy, "127.0.0.1:5000", user, sizeof user, pass, sizeof pass, err), 0);
	CHECK_STR(pass, "pa:ss");
	secrets_creds_free(copy);
	buf_free(&b);
	store_free(&s);
	datakey_remove(dir);
	rmdir(dir);
}

/* Every byte of a file with secrets and configs replaced in turn by each of a few
 * troublesome characters, and every truncation: each parse ends in a spec that survives
 * the codec or a located error, never a crash. */
UNIT(spec_secrets_every_byte_mangled)
{
	static const char yml[] = "secrets:\n  db:\n    file: ./pw\n  ext:\n    external: true\n    name: shared\n"
				  "configs:\n  conf:\n    file: c.conf\n"
				  "services:\n  web:\n    image: demo\n    secrets:\n      - db\n      - source: ext\n"
				  "        target: k\n        uid: \"1\"\n        mode: 0400\n    configs:\n      - source: conf\n"
				  "        target: /etc/c.conf\n";
	entry_spec_mangle(yml);
}
