/* Service environments at rest: sealed in the spec a node writes (secret/envseal.h), with
 * a fixed seal so an unchanged spec stays unchanged and a changed value rolls the service;
 * never in clear in the encoded spec or a snapshot; opened only with the data key and
 * only under the service's own name; entries from before sealing still apply. */
#include "unit.h"
#include "entry.h"
#include "secret/envseal.h"
#include "spec/spec.h"
#include "state/store.h"
#include "util/err.h"
#include <stdlib.h>
#include <unistd.h>

static const char *yml_a = "services:\n  web:\n    image: demo\n    environment:\n      DB_PASS: s3cr3t-alpha\n      MODE: prod\n";
static const char *yml_b = "services:\n  web:\n    image: demo\n    environment:\n      DB_PASS: s3cr3t-bravo\n      MODE: prod\n";

static void parse_one(const char *yml, struct svc_spec *out)
{
	struct spec_file *f = NULL;
	char err[ERR_LEN];
	CHECK_EQ_INT(spec_parse_buf("t.yml", yml, strlen(yml), &f, err), 0);
	spec_file_qualify(f, NULL);
	svc_spec_copy(out, &f->svc[0]);
	spec_file_free(f);
}

static void encode(const struct svc_spec *sp, struct mpw *w)
{
	mpw_init(w);
	svc_spec_encode(sp, w);
}

UNIT(seal_fixed_is_deterministic_and_bound)
{
	uint8_t k[SEAL_KEY_LEN], other[SEAL_KEY_LEN];
	memset(k, 3, sizeof k);
	memset(other, 4, sizeof other);
	char err[ERR_LEN];
	struct buf a = {0}, b = {0}, c = {0}, d = {0}, o = {0};
	CHECK_EQ_INT(seal_close_fixed(k, "n1", 2, "value", 5, &a, err), 0);
	CHECK_EQ_INT(seal_close_fixed(k, "n1", 2, "value", 5, &b, err), 0);
	CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len)); /* same value, same bytes */
	CHECK_EQ_INT(seal_close_fixed(k, "n2", 2, "value", 5, &c, err), 0);
	CHECK(!memcmp(a.data, c.data, 4 + SEAL_ID_LEN) && memcmp(a.data, c.data, a.len)); /* another name */
	CHECK_EQ_INT(seal_close_fixed(k, "n1", 2, "valuf", 5, &d, err), 0);
	/* another value: another nonce too (a nonce never serves two values) */
	CHECK(memcmp(a.data + 4 + SEAL_ID_LEN, d.data + 4 + SEAL_ID_LEN, SEAL_NONCE_LEN));
	CHECK(!memmem(a.data, a.len, "value", 5));
	CHECK_EQ_INT(seal_open(k, "n1", 2, a.data, a.len, &o, err), 0);
	CHECK(o.len == 5 && !memcmp(o.data, "value", 5));
	CHECK_EQ_INT(seal_open(k, "n2", 2, a.data, a.len, &o, err), E_AUTH);
	CHECK_EQ_INT(seal_open(other, "n1", 2, a.data, a.len, &o, err), E_AUTH);
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
	buf_free(&d);
	buf_free(&o);
}

UNIT(envseal_round_trip_and_codec)
{
	uint8_t k[SEAL_KEY_LEN], other[SEAL_KEY_LEN];
	memset(k, 9, sizeof k);
	memset(other, 10, sizeof other);
	char err[ERR_LEN];
	struct svc_spec sp, again, back;
	parse_one(yml_a, &sp);
	parse_one(yml_a, &again);
	CHECK_EQ_INT(envseal_close(k, &sp, err), 0);
	CHECK_EQ_INT(sp.env.n, 0);
	CHECK(sp.env_sealed.len > 0);
	struct mpw w;
	encode(&sp, &w);
	CHECK(!memmem(w.sb.data, w.sb.size, "s3cr3t-alpha", 12));
	CHECK(!memmem(w.sb.data, w.sb.size, "DB_PASS", 7)); /* names too */
	/* the same environment seals to the same spec bytes */
	CHECK_EQ_INT(envseal_close(k, &again, err), 0);
	CHECK(svc_spec_equal(&sp, &again));
	/* sealing twice changes nothing */
	CHECK_EQ_INT(envseal_close(k, &again, err), 0);
	CHECK(svc_spec_equal(&sp, &again));
	/* decodes into the sealed form, opens into the values */
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	CHECK_EQ_INT(svc_spec_decode(r.root, &back, err), 0);
	mpr_free(&r);
	CHECK(back.env_sealed.len == sp.env_sealed.len && back.env.n == 0);
	CHECK_EQ_INT(envseal_open(other, &back, err), E_AUTH);
	CHECK(back.env_sealed.len > 0); /* a failed open changes nothing */
	CHECK_EQ_INT(envseal_open(k, &back, err), 0);
	CHECK_EQ_INT(back.env.n, 2);
	CHECK_STR(labels_get(&back.env, "DB_PASS"), "s3cr3t-alpha");
	CHECK_STR(labels_get(&back.env, "MODE"), "prod");
	CHECK_EQ_INT(back.env_sealed.len, 0);
	/* under another service's name it does not open */
	struct svc_spec moved;
	svc_spec_copy(&moved, &sp);
	free(moved.name);
	moved.name = xstrdup("api");
	CHECK_EQ_INT(envseal_open(k, &moved, err), E_AUTH);
	/* an empty environment stays a map: a spec without one encodes as before */
	struct svc_spec none;
	parse_one("services:\n  web:\n    image: demo\n", &none);
	struct mpw w0, w1;
	encode(&none, &w0);
	CHECK_EQ_INT(envseal_close(k, &none, err), 0);
	encode(&none, &w1);
	CHECK(w0.sb.size == w1.sb.size && !memcmp(w0.sb.data, w1.sb.data, w0.sb.size));
	mpw_free(&w0);
	mpw_free(&w1);
	mpw_free(&w);
	svc_spec_free(&none);
	svc_spec_free(&moved);
	envseal_spec_free(&back);
	svc_spec_free(&again);
	svc_spec_free(&sp);
}

UNIT(envseal_in_the_store_rolls_on_change_only)
{
	uint8_t k[SEAL_KEY_LEN];
	memset(k, 5, sizeof k);
	struct store s;
	struct apply_res res;
	store_init(&s);
	/* an entry written before sealing existed: the environment in clear, still applied */
	entry_put_service(&s, yml_a, &res);
	CHECK_EQ_INT(res.rc, 0);
	struct service *v = store_service_by_name(&s, "web");
	CHECK_EQ_INT(v->generation, 1);
	CHECK_STR(labels_get(&service_spec(v)->env, "DB_PASS"), "s3cr3t-alpha");
	/* the same spec sealed: a new generation once (the log's form changed) */
	entry_put_service_sealed(&s, yml_a, k, &res);
	CHECK_EQ_INT(res.rc, 0);
	v = store_service_by_name(&s, "web");
	CHECK_EQ_INT(v->generation, 2);
	/* again: unchanged, no roll */
	entry_put_service_sealed(&s, yml_a, k, &res);
	CHECK_EQ_INT(res.rc, E_EXISTS);
	CHECK_EQ_INT(store_service_by_name(&s, "web")->generation, 2);
	/* a changed value rolls the service */
	entry_put_service_sealed(&s, yml_b, k, &res);
	CHECK_EQ_INT(res.rc, 0);
	v = store_service_by_name(&s, "web");
	CHECK_EQ_INT(v->generation, 3);
	CHECK_STR(v->update_state, "updating");
	/* the replica holds it sealed, and a snapshot too; the restored copy opens */
	CHECK(!memmem(v->spec.data, v->spec.len, "s3cr3t-bravo", 12));
	CHECK(!memmem(v->prev_spec.data, v->prev_spec.len, "s3cr3t-alpha", 12));
	struct mpw snap;
	mpw_init(&snap);
	store_snapshot(&s, &snap);
	CHECK(!memmem(snap.sb.data, snap.sb.size, "s3cr3t-bravo", 12));
	mpw_free(&snap);
	struct store t;
	entry_restore_copy(&s, &t);
	struct svc_spec sp;
	svc_spec_copy(&sp, service_spec(store_service_by_name(&t, "web")));
	char err[ERR_LEN];
	CHECK_EQ_INT(envseal_open(k, &sp, err), 0);
	CHECK_STR(labels_get(&sp.env, "DB_PASS"), "s3cr3t-bravo");
	envseal_spec_free(&sp);
	store_free(&t);
	store_free(&s);
}

/* A node without a data key (a cluster from before them) runs and deploys services whose
 * environment is not sealed; one that is sealed cannot be opened there, saying why. */
UNIT(envseal_node_without_a_key)
{
	char dir[] = "/tmp/orch-unit-env-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char err[ERR_LEN];
	struct svc_spec clear, none, sealed;
	parse_one(yml_a, &clear);
	parse_one("services:\n  web:\n    image: demo\n", &none);
	CHECK_EQ_INT(envseal_open_node(dir, &clear, err), 0); /* nothing sealed: nothing to open */
	CHECK_EQ_INT(envseal_close_node(dir, &none, err), 0); /* nothing to seal */
	CHECK_EQ_INT(envseal_close_node(dir, &clear, err), E_NOTFOUND);
	CHECK_EQ_INT(clear.env.n, 2); /* unchanged */
	uint8_t k[SEAL_KEY_LEN];
	memset(k, 1, sizeof k);
	parse_one(yml_a, &sealed);
	CHECK_EQ_INT(envseal_close(k, &sealed, err), 0);
	CHECK_EQ_INT(envseal_open_node(dir, &sealed, err), E_NOTFOUND);
	CHECK(sealed.env_sealed.len > 0);
	svc_spec_free(&clear);
	svc_spec_free(&none);
	svc_spec_free(&sealed);
	rmdir(dir);
}
