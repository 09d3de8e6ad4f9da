#include "secret/secrets.h"
#include "secret/datakey.h"
#include "util/err.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

/* What a sealed value is bound to: its kind and name (secret/seal.h). */
static size_t aad_of(const char *kind, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "orch %s\n%s", kind, name);
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Seals (open false) or opens a value under the node's data key, bound to its kind and name. */
static int with_key(const char *data_dir, bool open, const char *kind, const char *name, const void *in, size_t n,
		    struct buf *out, char *err)
{
	struct datakey k;
	int rc = datakey_load(data_dir, &k, err);
	if (rc)
		return rc;
	char aad[300];
	size_t alen = aad_of(kind, name, aad, sizeof aad);
	rc = open ? seal_open(k.k, aad, alen, in, n, out, err) : seal_close(k.k, aad, alen, in, n, out, err);
	datakey_wipe(&k);
	return rc;
}

int secrets_seal(const char *data_dir, const char *kind, const char *name, const void *value, size_t n,
		 struct buf *out, char *err)
{
	return with_key(data_dir, false, kind, name, value, n, out, err);
}

int secrets_open(const char *data_dir, const char *kind, const char *name, const void *blob, size_t n,
		 struct buf *out, char *err)
{
	int rc = with_key(data_dir, true, kind, name, blob, n, out, err);
	if (rc)
		errwrap(err, rc, "%s %s", kind, name);
	return rc;
}

int secrets_open_stored(const struct store *s, const char *data_dir, const char *kind, const char *name,
			uint64_t version, struct buf *out, char *err)
{
	const struct secret *x = version ? store_secret_version(s, kind, name, version) : store_secret_latest(s, kind, name);
	if (!x)
		return errf(err, E_NOTFOUND, "no %s %s", kind, name);
	struct mpr r;
	if (!x->data.len || mpr_decode(&r, x->data.data, x->data.len))
		return errf(err, E_INVAL, "%s %s: stored value unreadable", kind, name);
	int rc = r.root->type == MSGPACK_OBJECT_BIN
			 ? secrets_open(data_dir, kind, name, r.root->via.bin.ptr, r.root->via.bin.size, out, err)
			 : errf(err, E_INVAL, "%s %s: stored value unreadable", kind, name);
	mpr_free(&r);
	return rc;
}

void secrets_wipe(struct buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->cap);
	buf_free(b);
}

/* Registry credentials as stored: sealed, by host. */
struct secrets_creds {
	char *data_dir;
	size_t n;
	struct cred_copy {
		char *host;
		uint8_t *sealed;
		size_t len;
	} *v;
};

struct secrets_creds *secrets_creds_take(const struct host *h)
{
	struct secrets_creds *c = xcalloc(1, sizeof *c);
	c->data_dir = xstrdup(h->data_dir);
	c->v = xcalloc(h->store->secrets.n + 1, sizeof *c->v);
	TABLE_FOREACH(&h->store->secrets, const struct secret, x) {
		struct mpr r;
		if (strcmp(x->kind, "registry") || store_secret_latest(h->store, "registry", x->name) != x || !x->data.len ||
		    mpr_decode(&r, x->data.data, x->data.len))
			continue;
		if (r.root->type == MSGPACK_OBJECT_BIN) {
			struct cred_copy *cc = &c->v[c->n++];
			cc->host = xstrdup(x->name);
			cc->len = r.root->via.bin.size;
			cc->sealed = xmalloc(cc->len ? cc->len : 1);
			memcpy(cc->sealed, r.root->via.bin.ptr, cc->len);
		}
		mpr_free(&r);
	}
	return c;
}

void secrets_creds_free(struct secrets_creds *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].host);
		free(c->v[i].sealed);
	}
	free(c->v);
	free(c->data_dir);
	free(c);
}

/* The value of registry credentials: user, a NUL, password (cmd_secret.c writes it). */
int secrets_creds_get(void *creds, const char *host, char *user, size_t user_cap, char *pass, size_t pass_cap,
		      char *err)
{
	const struct secrets_creds *c = creds;
	const struct cred_copy *cc = NULL;
	for (size_t i = 0; c && i < c->n && !cc; i++)
		if (!strcmp(c->v[i].host, host))
			cc = &c->v[i];
	if (!cc)
		return E_NOTFOUND;
	struct buf b = {0};
	int rc = secrets_open(c->data_dir, "registry", host, cc->sealed, cc->len, &b, err);
	if (!rc) {
		const uint8_t *nul = memchr(b.data, 0, b.len);
		size_t ul = nul ? (size_t)(nul - b.data) : 0, pl = nul ? b.len - ul - 1 : 0;
		if (!nul)
			rc = errf(err, E_INVAL, "registry %s: stored credentials malformed", host);
		else if (ul >= user_cap || pl >= pass_cap)
			rc = errf(err, E_INVAL, "registry %s: stored credentials too long", host);
		else {
			memcpy(user, b.data, ul);
			user[ul] = 0;
			memcpy(pass, nul + 1, pl);
			pass[pl] = 0;
		}
	}
	secrets_wipe(&b);
	return rc;
}

int secrets_registry_creds(const struct host *h, const char *host, char *user, size_t user_cap, char *pass,
			   size_t pass_cap, char *err)
{
	struct secrets_creds *c = secrets_creds_take(h);
	int rc = secrets_creds_get(c, host, user, user_cap, pass, pass_cap, err);
	secrets_creds_free(c);
	return rc;
}
