#include "state/snapfile.h"
#include "spec/spec.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC_LEN 8
#define SALT_LEN SNAPFILE_SALT_LEN
/* scrypt's cost: ~100 ms and 32 MiB here, paid once per save and per restore */
#define SCRYPT_N 32768
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_MAXMEM (64u << 20)
/* what a sealed key is bound to (secret/seal.h associated data) */
#define KEY_AAD "orch snapshot data key"

static const char *const key_names[] = {"none", "passphrase", "clear"};

bool snapfile_needs_key(const struct store *s)
{
	if (s->secrets.n)
		return true;
	TABLE_FOREACH(&s->services, const struct service, v) {
		const struct svc_spec *a = service_spec(v), *b = service_prev_spec(v);
		if ((a && a->env_sealed.len) || (b && b->env_sealed.len))
			return true;
	}
	return false;
}

static int derive(const char *pass, const uint8_t *salt, uint8_t out[SEAL_KEY_LEN], char *err)
{
	if (EVP_PBE_scrypt(pass, strlen(pass), salt, SALT_LEN, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_MAXMEM, out,
			   SEAL_KEY_LEN) != 1)
		return errf(err, E_FAIL, "snapshot: deriving a key from the passphrase failed");
	return 0;
}

int snapfile_kek_derive(const char *passphrase, struct snapfile_kek *kek, char *err)
{
	random_bytes(kek->salt, sizeof kek->salt);
	return derive(passphrase, kek->salt, kek->k, err);
}

int snapfile_build(const struct store *s, struct snapfile_meta *m, const uint8_t *key, const struct snapfile_kek *kek,
		   struct buf *out, char *err)
{
	if (!key && snapfile_needs_key(s))
		return errf(err, E_INVAL, "snapshot: the state holds sealed values but no data key was given");
	struct mpw body;
	mpw_init(&body);
	mpw_map_begin(&body);
	mpw_key(&body, "services");
	table_encode(&s->services, &body);
	mpw_key(&body, "secrets");
	table_encode(&s->secrets, &body);
	mpw_key(&body, "images");
	table_encode(&s->images, &body);
	mpw_key(&body, "kv");
	table_encode(&s->kv, &body);
	if (s->has_cluster)
		mpw_kstr(&body, "from", s->cluster.id);
	mpw_map_end(&body);

	m->format = SNAPFILE_FORMAT;
	m->services = s->services.n;
	m->secrets = s->secrets.n;
	m->images = s->images.n;
	m->kv = s->kv.n;
	m->key = !key ? SNAPKEY_NONE : kek ? SNAPKEY_PASSPHRASE : SNAPKEY_CLEAR;
	struct mpw h;
	mpw_init(&h);
	mpw_map_begin(&h);
	mpw_ku64(&h, "format", m->format);
	mpw_kstr(&h, "orch_version", m->version);
	mpw_kstr(&h, "cluster", m->cluster);
	mpw_ku64(&h, "index", m->index);
	mpw_ku64(&h, "term", m->term);
	mpw_ku64(&h, "created_at", m->created_at);
	mpw_ku64(&h, "services", m->services);
	mpw_ku64(&h, "secrets", m->secrets);
	mpw_ku64(&h, "images", m->images);
	mpw_ku64(&h, "kv", m->kv);
	mpw_ku64(&h, "body_len", body.sb.size);
	mpw_kstr(&h, "key", key_names[m->key]);
	int rc = 0;
	if (m->key == SNAPKEY_PASSPHRASE) {
		struct buf sealed = {0};
		rc = seal_close(kek->k, KEY_AAD, strlen(KEY_AAD), key, SEAL_KEY_LEN, &sealed, err);
		mpw_key(&h, "salt");
		mpw_bin(&h, kek->salt, sizeof kek->salt);
		mpw_ku64(&h, "scrypt_n", SCRYPT_N);
		mpw_ku64(&h, "scrypt_r", SCRYPT_R);
		mpw_ku64(&h, "scrypt_p", SCRYPT_P);
		mpw_key(&h, "data_key");
		mpw_bin(&h, sealed.data, sealed.len);
		buf_free(&sealed);
	} else if (m->key == SNAPKEY_CLEAR) {
		mpw_key(&h, "data_key");
		mpw_bin(&h, key, SEAL_KEY_LEN);
	}
	mpw_map_end(&h);
	if (!rc) {
		size_t start = out->len;
		uint8_t hl[4] = {(uint8_t)(h.sb.size >> 24), (uint8_t)(h.sb.size >> 16), (uint8_t)(h.sb.size >> 8),
				 (uint8_t)h.sb.size};
		buf_append(out, SNAPFILE_MAGIC, MAGIC_LEN);
		buf_append(out, hl, sizeof hl);
		buf_append(out, h.sb.data, h.sb.size);
		buf_append(out, body.sb.data, body.sb.size);
		uint8_t md[SHA256_DIGEST_LENGTH];
		SHA256(out->data + start, out->len - start, md);
		buf_append(out, md, sizeof md);
	}
	OPENSSL_cleanse(h.sb.data, h.sb.size);
	mpw_free(&h);
	mpw_free(&body);
	return rc;
}

/* The header, decoded into r (freed by the caller on success), and the body's bounds. */
static int parse(const void *p, size_t n, struct mpr *r, struct snapfile_meta *m, const uint8_t **body,
		 size_t *body_len, char *err)
{
	const uint8_t *b = p;
	memset(m, 0, sizeof *m);
	if (n < MAGIC_LEN || memcmp(b, SNAPFILE_MAGIC, MAGIC_LEN))
		return errf(err, E_INVAL, "not an orch snapshot (no ORCHSNAP magic)");
	if (n < MAGIC_LEN + 4 + SHA256_DIGEST_LENGTH)
		return errf(err, E_INVAL, "truncated snapshot (%zu bytes)", n);
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(b, n - SHA256_DIGEST_LENGTH, md);
	if (CRYPTO_memcmp(md, b + n - SHA256_DIGEST_LENGTH, sizeof md))
		return errf(err, E_INVAL, "snapshot checksum mismatch: the file is truncated or damaged (%zu bytes)", n);
	size_t hl = (size_t)b[8] << 24 | (size_t)b[9] << 16 | (size_t)b[10] << 8 | b[11];
	size_t room = n - MAGIC_LEN - 4 - SHA256_DIGEST_LENGTH;
	if (hl > room || mpr_decode(r, b + MAGIC_LEN + 4, hl))
		return errf(err, E_INVAL, "snapshot header does not decode");
	uint64_t blen = 0;
	char key[16] = "";
	if (mp_get_u64(r->root, "format", &m->format) || mp_get_u64(r->root, "body_len", &blen) ||
	    mp_get_strbuf(r->root, "key", key, sizeof key)) {
		mpr_free(r);
		return errf(err, E_INVAL, "snapshot header lacks its format, body length or key mode");
	}
	if (m->format != SNAPFILE_FORMAT) {
		mpr_free(r);
		return errf(err, E_UNSUPP, "snapshot format %llu is not known to orch %s (it reads format %d)",
			    (unsigned long long)m->format, ORCH_VERSION, SNAPFILE_FORMAT);
	}
	if (blen != room - hl) {
		mpr_free(r);
		return errf(err, E_INVAL, "snapshot body is %zu bytes, its header says %llu", room - hl, (unsigned long long)blen);
	}
	int k = -1;
	for (int i = 0; i < 3; i++)
		if (!strcmp(key, key_names[i]))
			k = i;
	if (k < 0) {
		mpr_free(r);
		return errf(err, E_UNSUPP, "snapshot key mode %s is not known", key);
	}
	m->key = (enum snapfile_key)k;
	mp_get_strbuf(r->root, "orch_version", m->version, sizeof m->version);
	mp_get_strbuf(r->root, "cluster", m->cluster, sizeof m->cluster);
	mp_get_u64(r->root, "index", &m->index);
	mp_get_u64(r->root, "term", &m->term);
	mp_get_u64(r->root, "created_at", &m->created_at);
	mp_get_u64(r->root, "services", &m->services);
	mp_get_u64(r->root, "secrets", &m->secrets);
	mp_get_u64(r->root, "images", &m->images);
	mp_get_u64(r->root, "kv", &m->kv);
	*body = b + MAGIC_LEN + 4 + hl;
	*body_len = (size_t)blen;
	return 0;
}

int snapfile_parse(const void *p, size_t n, struct snapfile_meta *m, const uint8_t **body, size_t *body_len,
		   char *err)
{
	struct mpr r;
	int rc = parse(p, n, &r, m, body, body_len, err);
	if (rc)
		return rc;
	mpr_free(&r);
	struct mpr bd;
	if (mpr_decode(&bd, *body, *body_len) || bd.root->type != MSGPACK_OBJECT_MAP) {
		mpr_free(&bd);
		return errf(err, E_INVAL, "snapshot body does not decode");
	}
	mpr_free(&bd);
	return 0;
}

static const msgpack_object *bin_of(const msgpack_object *map, const char *k)
{
	const msgpack_object *o = mp_get(map, k);
	return o && o->type == MSGPACK_OBJECT_BIN ? o : NULL;
}

int snapfile_key(const void *p, size_t n, const char *passphrase, uint8_t key[SEAL_KEY_LEN], char *err)
{
	struct mpr r;
	struct snapfile_meta m;
	const uint8_t *body;
	size_t blen;
	int rc = parse(p, n, &r, &m, &body, &blen, err);
	if (rc)
		return rc;
	const msgpack_object *dk = bin_of(r.root, "data_key"), *salt = bin_of(r.root, "salt");
	uint64_t sn = 0, sr = 0, sp = 0;
	if (m.key == SNAPKEY_NONE)
		rc = errf(err, E_INVAL, "the snapshot carries no data key");
	else if (m.key == SNAPKEY_CLEAR) {
		if (!dk || dk->via.bin.size != SEAL_KEY_LEN)
			rc = errf(err, E_INVAL, "snapshot header: malformed data key");
		else
			memcpy(key, dk->via.bin.ptr, SEAL_KEY_LEN);
	} else if (!passphrase)
		rc = errf(err, E_AUTH, "the snapshot's data key is sealed under a passphrase: give it with --passphrase-file");
	else if (!dk || !salt || salt->via.bin.size != SALT_LEN || mp_get_u64(r.root, "scrypt_n", &sn) ||
		 mp_get_u64(r.root, "scrypt_r", &sr) || mp_get_u64(r.root, "scrypt_p", &sp))
		rc = errf(err, E_INVAL, "snapshot header: malformed sealed data key");
	else if (sn != SCRYPT_N || sr != SCRYPT_R || sp != SCRYPT_P)
		rc = errf(err, E_UNSUPP, "snapshot: scrypt parameters %llu/%llu/%llu are not this binary's", (unsigned long long)sn,
			  (unsigned long long)sr, (unsigned long long)sp);
	else {
		uint8_t kek[SEAL_KEY_LEN];
		struct buf pt = {0};
		if (!(rc = derive(passphrase, (const uint8_t *)salt->via.bin.ptr, kek, err))) {
			rc = seal_open(kek, KEY_AAD, strlen(KEY_AAD), dk->via.bin.ptr, dk->via.bin.size, &pt, err);
			if (rc == E_AUTH)
				errf(err, E_AUTH, "wrong passphrase: the snapshot's data key does not open");
			else if (!rc && pt.len != SEAL_KEY_LEN)
				rc = errf(err, E_INVAL, "snapshot: the sealed data key has %zu bytes", pt.len);
			if (!rc)
				memcpy(key, pt.data, SEAL_KEY_LEN);
		}
		OPENSSL_cleanse(kek, sizeof kek);
		if (pt.data)
			OPENSSL_cleanse(pt.data, pt.len);
		buf_free(&pt);
	}
	mpr_free(&r);
	return rc;
}

int snapfile_check(const uint8_t *body, size_t n, char *err)
{
	struct store s;
	store_init(&s);
	s.has_cluster = true;
	s.cluster.id = xstrdup("check");
	size_t len;
	void *e = cmd_build(CMD_STATE_LOAD, NULL, body, n, &len);
	struct apply_res res;
	store_apply(&s, e, len, &res);
	free(e);
	store_free(&s);
	return res.rc ? errf(err, res.rc, "%s", res.msg) : 0;
}
