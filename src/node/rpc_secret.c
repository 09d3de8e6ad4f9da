/* Requests about secrets, configs and registry credentials (net/proto.h). A value comes in
 * clear from the CLI on this node's local socket and is sealed here, before the command
 * that carries it is built (and forwarded to the leader, and written to the log); reads
 * give metadata only: no reply of any op carries a value. */
#include "node/daemon.h"
#include "secret/secrets.h"
#include "secret/unlock.h"
#include "spec/spec.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <string.h>

static const char *kind_of(const char *k)
{
	return k && *k ? k : "secret";
}

/* The unlock record is written by the autolock ops alone (node/autolock.h). */
static bool refuse_internal(struct conn *c, uint64_t id, const char *kind)
{
	if (strcmp(kind, UNLOCK_KIND))
		return false;
	rpc_reply_err(c, id, E_INVAL, "the unlock key is changed with orch unlock-key --rotate and orch cluster update --autolock");
	return true;
}

static void put_done(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct pending *p = data;
	(void)d;
	if (p->conn) {
		struct mpw w;
		rpc_reply_begin(&w, p->req_id, rc);
		mpw_kstr(&w, rc ? "err" : "result", res->msg);
		mpw_ku64(&w, "obj", res->id);
		rpc_reply_send(p->conn, &w);
	}
	pending_free(p);
}

void rpc_secret_create(struct daemon *d, struct conn *c, const struct req_secret_create *a)
{
	const char *kind = kind_of(a->kind);
	char err[ERR_LEN];
	if (refuse_internal(c, a->id, kind))
		return;
	/* the same value again is no new version (a deploy run twice rolls nothing) */
	const struct secret *cur = store_secret_latest(&d->store, kind, a->name);
	if (cur) {
		struct buf old = {0};
		int rc = secrets_open_stored(&d->store, d->data_dir, kind, a->name, 0, &old, err);
		bool same = !rc && old.len == a->value.n && (!old.len || !memcmp(old.data, a->value.p, old.len));
		secrets_wipe(&old);
		if (same) {
			struct mpw w;
			rpc_reply_begin(&w, a->id, 0);
			snprintf(err, sizeof err, "%s %s version %llu unchanged", kind, a->name, (unsigned long long)cur->version);
			mpw_kstr(&w, "result", err);
			mpw_ku64(&w, "obj", cur->id);
			rpc_reply_send(c, &w);
			return;
		}
	}
	struct buf sealed = {0};
	if (secrets_seal(d->data_dir, kind, a->name, a->value.p, a->value.n, &sealed, err)) {
		rpc_reply_err(c, a->id, E_FAIL, err);
		buf_free(&sealed);
		return;
	}
	/* one event per service that rolls to the new value (orch events) */
	struct mpw ev;
	mpw_init(&ev);
	uint32_t nev = 0;
	TABLE_FOREACH(&d->store.services, const struct service, v)
		nev += store_spec_uses_secret(service_spec(v), kind, a->name, 0);
	mpw_arr(&ev, nev);
	TABLE_FOREACH(&d->store.services, const struct service, v) {
		if (!store_spec_uses_secret(service_spec(v), kind, a->name, 0))
			continue;
		char m[ERR_LEN];
		snprintf(m, sizeof m, "%s %s version %llu: the service rolls to it", kind, a->name,
			 (unsigned long long)(cur ? cur->version + 1 : 1));
		mpw_map_begin(&ev);
		mpw_kstr(&ev, "kind", !strcmp(kind, "config") ? "config_updated" : "secret_updated");
		mpw_kstr(&ev, "service", v->name);
		mpw_kstr(&ev, "message", m);
		mpw_map_end(&ev);
	}
	struct cmd_secret_put b = {.kind = kind, .name = a->name, .data = {sealed.data, sealed.len}, .size = a->value.n,
				   .at = clock_wall(d->clock), .events = {.raw = ev.sb.data, .len = ev.sb.size}};
	rpc_submit(d, c, a->id, CMD_SECRET_PUT, &b, put_done);
	mpw_free(&ev);
	buf_free(&sealed);
}

/* Metadata of one version: never its value, nor a digest of it (a digest of a short
 * password is a way to guess it). */
static void meta(struct mpw *w, const struct secret *x)
{
	char hid[17];
	snprintf(hid, sizeof hid, "%016llx", (unsigned long long)x->id);
	mpw_kstr(w, "id", hid);
	mpw_kstr(w, "name", x->name);
	mpw_kstr(w, "kind", x->kind);
	mpw_ku64(w, "version", x->version);
	mpw_ku64(w, "size", x->size);
	mpw_ku64(w, "created_at", x->created_at);
}

/* The services whose spec names it, as an array. */
static void used_by(struct mpw *w, const struct store *s, const char *kind, const char *name)
{
	uint32_t n = 0;
	TABLE_FOREACH(&s->services, const struct service, v)
		n += store_spec_uses_secret(service_spec(v), kind, name, 0);
	mpw_key(w, "services");
	mpw_arr(w, n);
	TABLE_FOREACH(&s->services, const struct service, v)
		if (store_spec_uses_secret(service_spec(v), kind, name, 0))
			mpw_str(w, v->name);
}

void rpc_secrets(struct daemon *d, struct conn *c, const struct req_secrets *a)
{
	const char *kind = kind_of(a->kind);
	uint32_t n = 0;
	TABLE_FOREACH(&d->store.secrets, const struct secret, x)
		n += !strcmp(x->kind, kind) && store_secret_latest(&d->store, kind, x->name) == x;
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_key(&w, "secrets");
	mpw_arr(&w, n);
	TABLE_FOREACH(&d->store.secrets, const struct secret, x) {
		if (strcmp(x->kind, kind) || store_secret_latest(&d->store, kind, x->name) != x)
			continue;
		mpw_map_begin(&w);
		meta(&w, x);
		used_by(&w, &d->store, kind, x->name);
		mpw_map_end(&w);
	}
	rpc_reply_send(c, &w);
}

void rpc_secret_get(struct daemon *d, struct conn *c, const struct req_secret_get *a)
{
	const char *kind = kind_of(a->kind);
	const struct secret *cur = store_secret_latest(&d->store, kind, a->name);
	if (!cur) {
		char m[ERR_LEN];
		snprintf(m, sizeof m, "no %s %s (see orch %s ls)", kind, a->name, kind);
		rpc_reply_err(c, a->id, E_NOTFOUND, m);
		return;
	}
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_key(&w, "secret");
	mpw_map_begin(&w);
	meta(&w, cur);
	used_by(&w, &d->store, kind, a->name);
	uint32_t n = 0;
	TABLE_FOREACH(&d->store.secrets, const struct secret, x)
		n += !strcmp(x->kind, kind) && !strcmp(x->name, a->name);
	mpw_key(&w, "versions");
	mpw_arr(&w, n);
	TABLE_FOREACH(&d->store.secrets, const struct secret, x) {
		if (strcmp(x->kind, kind) || strcmp(x->name, a->name))
			continue;
		mpw_map_begin(&w);
		meta(&w, x);
		mpw_map_end(&w);
	}
	mpw_map_end(&w);
	rpc_reply_send(c, &w);
}

void rpc_secret_rm(struct daemon *d, struct conn *c, const struct req_secret_rm *a)
{
	struct cmd_secret_rm b = {.kind = kind_of(a->kind), .name = a->name};
	if (refuse_internal(c, a->id, b.kind))
		return;
	rpc_submit(d, c, a->id, CMD_SECRET_RM, &b, put_done);
}
