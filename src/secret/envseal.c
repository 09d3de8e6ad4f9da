#include "secret/envseal.h"
#include "codec/mp.h"
#include "secret/datakey.h"
#include "util/err.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

static size_t aad_of(const struct svc_spec *sp, char *out, size_t cap)
{
	int n = snprintf(out, cap, "orch environment\n%s", sp->name ? sp->name : "");
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Frees a buffer that held clear values. */
static void wipe_free(void *p, size_t n)
{
	if (p)
		OPENSSL_cleanse(p, n);
	free(p);
}

static void wipe_env(struct labels *env)
{
	for (size_t i = 0; i < env->n; i++)
		OPENSSL_cleanse(env->v[i], strlen(env->v[i]));
	labels_free(env);
}

void envseal_spec_free(struct svc_spec *sp)
{
	wipe_env(&sp->env);
	svc_spec_free(sp);
}

int envseal_close(const uint8_t key[SEAL_KEY_LEN], struct svc_spec *sp, char *err)
{
	if (!sp->env.n || sp->env_sealed.len)
		return 0;
	struct mpw w;
	mpw_init(&w);
	labels_encode(&sp->env, &w);
	char aad[SPEC_NAME_MAX + 32];
	struct buf out = {0};
	int rc = seal_close_fixed(key, aad, aad_of(sp, aad, sizeof aad), w.sb.data, w.sb.size, &out, err);
	OPENSSL_cleanse(w.sb.data, w.sb.size);
	mpw_free(&w);
	if (rc) {
		buf_free(&out);
		return errwrap(err, rc, "service %s: seal its environment", sp->name ? sp->name : "");
	}
	wipe_env(&sp->env);
	buf_free(&sp->env_sealed);
	sp->env_sealed = out;
	return 0;
}

int envseal_open(const uint8_t key[SEAL_KEY_LEN], struct svc_spec *sp, char *err)
{
	if (!sp->env_sealed.len)
		return 0;
	char aad[SPEC_NAME_MAX + 32];
	struct buf pt = {0};
	int rc = seal_open(key, aad, aad_of(sp, aad, sizeof aad), sp->env_sealed.data, sp->env_sealed.len, &pt, err);
	struct mpr r = {0};
	if (!rc && mpr_decode(&r, pt.data, pt.len))
		rc = errf(err, E_INVAL, "not an environment");
	struct labels env = {0};
	if (!rc && labels_decode(r.root, &env))
		rc = errf(err, E_INVAL, "not an environment");
	if (r.copy)
		OPENSSL_cleanse(r.copy, pt.len);
	mpr_free(&r);
	wipe_free(pt.data, pt.len);
	if (rc) {
		labels_free(&env);
		return errwrap(err, rc, "service %s: open its environment", sp->name ? sp->name : "");
	}
	labels_free(&sp->env);
	sp->env = env;
	buf_free(&sp->env_sealed);
	return 0;
}

static int with_node_key(const char *data_dir, bool open, struct svc_spec *sp, char *err)
{
	/* nothing to do needs no key (a node of a cluster from before data keys has none) */
	if (open ? !sp->env_sealed.len : (!sp->env.n || sp->env_sealed.len))
		return 0;
	struct datakey k;
	int rc = datakey_load(data_dir, &k, err);
	if (rc)
		return rc;
	rc = open ? envseal_open(k.k, sp, err) : envseal_close(k.k, sp, err);
	datakey_wipe(&k);
	return rc;
}

int envseal_close_node(const char *data_dir, struct svc_spec *sp, char *err)
{
	return with_node_key(data_dir, false, sp, err);
}

int envseal_open_node(const char *data_dir, struct svc_spec *sp, char *err)
{
	return with_node_key(data_dir, true, sp, err);
}

int envseal_open_encoded(const char *data_dir, const void *spec, size_t n, struct buf *out, char *err)
{
	struct mpr r;
	struct svc_spec sp;
	svc_spec_init(&sp);
	if (mpr_decode(&r, spec, n))
		return errf(err, E_INVAL, "stored spec unreadable");
	int rc = svc_spec_decode(r.root, &sp, err);
	mpr_free(&r);
	if (!rc)
		rc = envseal_open_node(data_dir, &sp, err);
	if (!rc) {
		struct mpw w;
		mpw_init(&w);
		svc_spec_encode(&sp, &w);
		buf_append(out, w.sb.data, w.sb.size);
		OPENSSL_cleanse(w.sb.data, w.sb.size);
		mpw_free(&w);
	}
	envseal_spec_free(&sp);
	return rc;
}
