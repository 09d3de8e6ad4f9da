/* Backups (state/snapfile.h): a file round-trips into a new cluster's state through
 * state.load with ids, versions and sealed values intact; every truncation and every
 * flipped byte is refused by the checksum; a wrong passphrase does not open the key; a
 * state.load into a cluster that already holds services is refused and changes nothing;
 * the state's sealed values require a key. */
#include "unit.h"
#include "entry.h"
#include "secret/seal.h"
#include "spec/spec.h"
#include "state/snapfile.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

static const char *const APP = "name: p\nservices:\n  web:\n    image: demo\n    environment: {K: v1}\n    deploy: {replicas: 3}\n";

static void cluster(struct store *s, const char *id)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "id", id);
	mpw_kstr(&w, "secret_hash", "none");
	mpw_map_end(&w);
	struct apply_res res;
	entry_apply(s, CMD_CLUSTER_INIT, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
}

static void secret(struct store *s, const uint8_t *key, const char *name, const char *v)
{
	struct buf sealed = {0};
	char err[ERR_LEN];
	CHECK_EQ_INT(seal_close(key, name, strlen(name), v, strlen(v), &sealed, err), 0);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "kind", "secret");
	mpw_kstr(&w, "name", name);
	mpw_key(&w, "data");
	mpw_bin(&w, sealed.data, sealed.len);
	mpw_ku64(&w, "size", strlen(v));
	mpw_map_end(&w);
	buf_free(&sealed);
	struct apply_res res;
	entry_apply(s, CMD_SECRET_PUT, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
}

static void load(struct store *s, const uint8_t *body, size_t n, struct apply_res *res)
{
	struct mpw w;
	mpw_init(&w);
	mpw_raw(&w, body, n);
	entry_apply(s, CMD_STATE_LOAD, &w, res);
}

UNIT(snapfile_round_trip_into_a_new_cluster)
{
	uint8_t key[SEAL_KEY_LEN];
	memset(key, 9, sizeof key);
	struct store a;
	store_init(&a);
	cluster(&a, "aaaa");
	struct apply_res res;
	entry_put_service_sealed(&a, APP, key, &res);
	CHECK_EQ_INT(res.rc, 0);
	secret(&a, key, "pw", "one");
	secret(&a, key, "pw", "two");
	char err[ERR_LEN];
	struct snapfile_meta m = {.index = 77, .term = 3};
	snprintf(m.cluster, sizeof m.cluster, "aaaa");
	struct buf f = {0};
	CHECK(snapfile_needs_key(&a));
	CHECK_EQ_INT(snapfile_build(&a, &m, NULL, NULL, &f, err), E_INVAL); /* sealed values, no key */
	struct snapfile_kek kek;
	CHECK_EQ_INT(snapfile_kek_derive("correct horse", &kek, err), 0);
	CHECK_EQ_INT(snapfile_build(&a, &m, key, &kek, &f, err), 0);
	CHECK(!memmem(f.data, f.len, key, sizeof key)); /* the key is not in clear */

	struct snapfile_meta g;
	const uint8_t *body;
	size_t blen;
	CHECK_EQ_INT(snapfile_parse(f.data, f.len, &g, &body, &blen, err), 0);
	CHECK_EQ_INT(g.index, 77);
	CHECK_EQ_INT(g.term, 3);
	CHECK_EQ_INT(g.services, 1);
	CHECK_EQ_INT(g.secrets, 1); /* version 1 went: no spec names it */
	CHECK_EQ_INT(g.key, SNAPKEY_PASSPHRASE);
	CHECK_STR(g.cluster, "aaaa");
	uint8_t got[SEAL_KEY_LEN];
	CHECK_EQ_INT(snapfile_key(f.data, f.len, "wrong", got, err), E_AUTH);
	CHECK_EQ_INT(snapfile_key(f.data, f.len, NULL, got, err), E_AUTH);
	CHECK_EQ_INT(snapfile_key(f.data, f.len, "correct horse", got, err), 0);
	CHECK(!memcmp(got, key, sizeof key));
	CHECK_EQ_INT(snapfile_check(body, blen, err), 0);

	/* every truncation and a flip of every 7th byte: refused, never a crash */
	for (size_t n = 0; n < f.len; n++)
		CHECK(snapfile_parse(f.data, n, &g, &body, &blen, err) != 0);
	for (size_t i = 0; i < f.len; i += 7) {
		f.data[i] ^= 0x5a;
		CHECK(snapfile_parse(f.data, f.len, &g, &body, &blen, err) != 0);
		f.data[i] ^= 0x5a;
	}
	CHECK_EQ_INT(snapfile_parse(f.data, f.len, &g, &body, &blen, err), 0);

	/* a new cluster: its own id; the objects keep ids and versions; ids continue after them */
	struct store b;
	store_init(&b);
	cluster(&b, "bbbb");
	load(&b, body, blen, &res);
	CHECK_EQ_INT(res.rc, 0);
	CHECK_STR(b.cluster.id, "bbbb");
	CHECK_EQ_INT(b.services.n, 1);
	CHECK_EQ_INT(b.secrets.n, 1);
	const struct service *v = store_service_by_name(&b, "web");
	CHECK(v && v->replicas == 3 && service_spec(v));
	CHECK(service_spec(v)->env_sealed.len > 0);
	const struct secret *x = store_secret_latest(&b, "secret", "pw");
	CHECK(x && x->version == 2);
	const struct secret *ox = store_secret_latest(&a, "secret", "pw"); /* sealed bytes as they were */
	CHECK(ox && ox->id == x->id && ox->data.len == x->data.len && !memcmp(ox->data.data, x->data.data, x->data.len));
	CHECK(b.cluster.next_id > x->id && b.cluster.next_id > v->id);

	/* once only: the loaded cluster refuses a second load, unchanged */
	uint64_t rev = b.revision;
	load(&b, body, blen, &res);
	CHECK_EQ_INT(res.rc, E_EXISTS);
	CHECK_EQ_INT(b.revision, rev);
	CHECK_EQ_INT(b.services.n, 1);

	/* a key in clear opens without a passphrase */
	struct buf f2 = {0};
	CHECK_EQ_INT(snapfile_build(&a, &m, key, NULL, &f2, err), 0);
	CHECK_EQ_INT(snapfile_key(f2.data, f2.len, NULL, got, err), 0);
	CHECK(!memcmp(got, key, sizeof key));
	buf_free(&f2);
	buf_free(&f);
	store_free(&a);
	store_free(&b);
}

/* An entry of a newer orch (a command type or payload version this binary does not know)
 * changes nothing and says so (apply_res.too_new: the node stops there, raft/consensus.c);
 * a leader refuses to put such an entry of a peer in the log. */
static void *future_entry(const char *type, uint64_t ver, size_t *n)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "t", type);
	mpw_ku64(&w, "v", ver);
	mpw_ku64(&w, "o", 5);
	mpw_ku64(&w, "n", 6);
	mpw_ku64(&w, "s", 1);
	mpw_key(&w, "b");
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "x");
	mpw_map_end(&w);
	mpw_map_end(&w);
	void *e = cmd_frame(w.sb.data, w.sb.size, n);
	mpw_free(&w);
	return e;
}

UNIT(entry_of_a_newer_orch_is_not_skipped)
{
	struct store s;
	store_init(&s);
	cluster(&s, "cccc");
	uint64_t rev = s.revision;
	char before[65], after[65], err[ERR_LEN];
	store_hash(&s, before);
	const struct {
		const char *type;
		uint64_t ver;
	} cases[] = {{"service.teleport", 3}, {"service.put", 99}};
	for (size_t i = 0; i < 2; i++) {
		size_t n;
		void *e = future_entry(cases[i].type, cases[i].ver, &n);
		struct apply_res res;
		store_apply(&s, e, n, &res);
		CHECK_EQ_INT(res.rc, E_UNSUPP);
		CHECK(res.too_new);
		CHECK(strstr(res.msg, cases[i].type) != NULL);
		CHECK_EQ_INT(s.revision, rev);
		store_hash(&s, after);
		CHECK_STR(after, before);
		CHECK_EQ_INT(cmd_check_origin(e, n, 5, false, err), E_UNSUPP);
		free(e);
	}
	/* what this binary knows is not too new, even when refused */
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "nope");
	mpw_map_end(&w);
	struct apply_res res;
	entry_apply(&s, CMD_SERVICE_RM, &w, &res);
	CHECK(res.rc != 0 && !res.too_new);
	store_free(&s);
}
