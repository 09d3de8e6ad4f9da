/* Secrets, configs and registry credentials in the state machine. Values arrive sealed
 * (secret/seal.h) and stay so: nothing here can or needs to open them.
 *
 * Versions: a new value under an existing name is a new version (Swarm wants a new name;
 * our users asked to keep the name). Every service whose spec names it gets a new
 * generation pinned to the new version in the same command, so the change rolls out as any
 * spec change does (update_config, health gates, rollback to the previous generation, which
 * still names the version it ran with). Older versions stay while a spec or a previous
 * spec names them. */
#include "state/apply.h"
#include "spec/spec.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_VALUE_MAX (500 * 1024) /* as Swarm's limit: these are files of settings, not data */

/* "unlock": the cluster's unlock key (secret/unlock.h) */
static const char *const kinds[] = {"secret", "config", "registry", "unlock", NULL};

struct secret *store_secret_version(const struct store *s, const char *kind, const char *name, uint64_t version)
{
	TABLE_FOREACH(&s->secrets, struct secret, x)
		if (x->version == version && !strcmp(x->kind, kind) && !strcmp(x->name, name))
			return x;
	return NULL;
}

struct secret *store_secret_latest(const struct store *s, const char *kind, const char *name)
{
	struct secret *best = NULL;
	TABLE_FOREACH(&s->secrets, struct secret, x)
		if (!strcmp(x->kind, kind) && !strcmp(x->name, name) && (!best || x->version > best->version))
			best = x;
	return best;
}

static bool is_config(const char *kind)
{
	return !strcmp(kind, "config");
}

/* The references of kind in a spec (registry credentials have none). */
static const struct file_ref_list *refs_of(const struct svc_spec *sp, const char *kind)
{
	static const struct file_ref_list none;
	if (!sp || (strcmp(kind, "secret") && !is_config(kind)))
		return &none;
	return is_config(kind) ? &sp->configs : &sp->secrets;
}

bool store_spec_uses_secret(const struct svc_spec *sp, const char *kind, const char *name, uint64_t version)
{
	const struct file_ref_list *l = refs_of(sp, kind);
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].source, name) && (!version || l->v[i].version == version))
			return true;
	return false;
}

int secret_pin(const struct store *s, struct svc_spec *sp, char *msg)
{
	for (int k = 0; k < 2; k++) {
		const char *kind = k ? "config" : "secret";
		const struct file_ref_list *l = refs_of(sp, kind);
		for (size_t i = 0; i < l->n; i++) {
			const struct secret *x = store_secret_latest(s, kind, l->v[i].source);
			if (!x)
				return errf(msg, E_NOTFOUND, "service %s uses %s %s, which does not exist (orch %s create %s FILE)",
					    sp->name ? sp->name : "?", kind, l->v[i].source, kind, l->v[i].source);
			l->v[i].version = x->version;
		}
	}
	return 0;
}

static bool name_ok(const char *kind, const char *name)
{
	size_t n = strlen(name);
	if (!n || n > (strcmp(kind, "registry") ? 64 : 255))
		return false;
	const char *set = strcmp(kind, "registry") ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
						   : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]";
	return strspn(name, set) == n && name[0] != '.' && name[0] != '-';
}

/* The fields both commands start with, checked. */
static int kind_name(const struct cmd_ctx *c, char *kind, char *name, const char *what, char *msg)
{
	if (mp_get_strbuf(c->body, "kind", kind, 16) || mp_get_strbuf(c->body, "name", name, 256))
		return errf(msg, E_INVAL, "%s: kind and name required", what);
	bool known = false;
	for (int i = 0; kinds[i]; i++)
		known |= !strcmp(kinds[i], kind);
	if (!known)
		return errf(msg, E_INVAL, "%s: unknown kind %s", what, kind);
	if (!name_ok(kind, name))
		return errf(msg, E_INVAL, "invalid %s name \"%s\": use letters, digits, '_', '.' and '-' (at most 64)",
			    kind, name);
	return 0;
}

/* A service named in a spec rolls to the new version: its spec again, pinned anew. */
static void roll(struct store *s, struct service *v, uint64_t at)
{
	struct svc_spec sp;
	svc_spec_copy(&sp, service_spec(v));
	char msg[ERR_LEN];
	if (!secret_pin(s, &sp, msg)) {
		struct mpw w;
		mpw_init(&w);
		svc_spec_encode(&sp, &w);
		service_next_generation(v, &w, at);
		mpw_free(&w);
	}
	svc_spec_free(&sp);
}

/* Drops the versions of (kind, name) that are not the newest and no spec names. */
static void prune(struct store *s, const char *kind, const char *name, uint64_t newest)
{
	for (size_t i = 0; i < s->secrets.n;) {
		struct secret *x = s->secrets.items[i];
		bool keep = x->version == newest || strcmp(x->kind, kind) || strcmp(x->name, name);
		TABLE_FOREACH(&s->services, const struct service, v)
			keep = keep || store_spec_uses_secret(service_spec(v), kind, name, x->version) ||
			       store_spec_uses_secret(service_prev_spec(v), kind, name, x->version);
		if (keep)
			i++;
		else
			table_del_u64(&s->secrets, x->id);
	}
}

/* secret.put {kind, name, data, size, at} */
int apply_secret_put(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	char kind[16], name[256];
	int rc = kind_name(c, kind, name, "secret.put", res->msg);
	if (rc)
		return rc;
	const msgpack_object *data = mp_get(c->body, "data");
	uint64_t size = 0, at = 0;
	mp_get_u64(c->body, "size", &size);
	mp_get_u64(c->body, "at", &at);
	if (!data || data->type != MSGPACK_OBJECT_BIN || !data->via.bin.size)
		return errf(res->msg, E_INVAL, "secret.put: data must be a sealed value");
	/* a sealed value is its size plus a fixed overhead (secret/seal.h): far more is a lie */
	if (size > SECRET_VALUE_MAX || data->via.bin.size > size + 1024)
		return errf(res->msg, E_INVAL, "%s %s: %llu bytes is more than the %d allowed", kind, name,
			    (unsigned long long)size, SECRET_VALUE_MAX);
	const struct secret *cur = store_secret_latest(s, kind, name);
	struct secret *x = xcalloc(1, sizeof *x);
	x->id = apply_next_id(s);
	x->kind = xstrdup(kind);
	x->name = xstrdup(name);
	x->version = cur ? cur->version + 1 : 1;
	x->size = size;
	x->created_at = at;
	struct mpw w;
	mpw_init(&w);
	mpw_obj(&w, data);
	size_t len;
	uint8_t *bytes = (uint8_t *)mpw_take(&w, &len);
	mpw_free(&w);
	rawmp_set(&x->data, NULL, bytes, len, NULL);
	uint64_t version = x->version;
	table_put(&s->secrets, x);
	TABLE_FOREACH(&s->services, struct service, v)
		if (store_spec_uses_secret(service_spec(v), kind, name, 0))
			roll(s, v, at);
	prune(s, kind, name, version);
	res->id = x->id;
	snprintf(res->msg, sizeof res->msg, "%s %s version %llu", kind, name, (unsigned long long)version);
	return 0;
}

/* secret.rm {kind, name}: every version, unless a service's spec names it */
int apply_secret_rm(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	char kind[16], name[256];
	int rc = kind_name(c, kind, name, "secret.rm", res->msg);
	if (rc)
		return rc;
	if (!store_secret_latest(s, kind, name))
		return errf(res->msg, E_NOTFOUND, "no %s %s (see orch %s ls)", kind, name, is_config(kind) ? "config" : "secret");
	/* E_FAIL, not E_BUSY: clients retry E_BUSY, and this answer stands until the
	 * service changes */
	TABLE_FOREACH(&s->services, const struct service, v)
		if (store_spec_uses_secret(service_spec(v), kind, name, 0))
			return errf(res->msg, E_FAIL, "%s %s is in use by service %s: remove it from the service first", kind,
				    name, v->name);
	for (size_t i = 0; i < s->secrets.n;) {
		struct secret *x = s->secrets.items[i];
		if (!strcmp(x->kind, kind) && !strcmp(x->name, name))
			table_del_u64(&s->secrets, x->id);
		else
			i++;
	}
	return 0;
}
