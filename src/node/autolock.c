/* Autolock on a node: the locked start, orch unlock, orch unlock-key [--rotate], orch
 * cluster update --autolock, and the re-sealing of the key file (node/autolock.h). */
#include "node/autolock.h"
#include "node/daemon.h"
#include "codec/mp.h"
#include "net/conn.h"
#include "secret/datakey.h"
#include "secret/secrets.h"
#include "util/log.h"
#include "util/mem.h"
#include <openssl/crypto.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

int autolock_gate(struct daemon *d, char *err)
{
	uint64_t id = 0;
	int rc = datakey_lock_state(d->data_dir, &id, err);
	if (rc == E_NOTFOUND) /* a cluster from before data keys */
		return 0;
	if (rc < 0)
		return rc;
	if (datakey_locked(d->data_dir)) {
		d->locked = true;
		return 1;
	}
	if (rc == 1) /* sealed and held (init --autolock): the file's record */
		d->lock_seen = id;
	return 0;
}

void autolock_status(struct daemon *d, struct conn *c, uint64_t id)
{
	char hid[17], cid[17];
	snprintf(hid, sizeof hid, "%016llx", (unsigned long long)d->ident.id);
	token_cluster_hex(d->ident.cluster_id, cid);
	struct mpw w;
	rpc_reply_begin(&w, id, 0);
	mpw_kstr(&w, "cluster", cid);
	mpw_kstr(&w, "node_id", hid);
	mpw_kstr(&w, "name", d->ident.name);
	mpw_kstr(&w, "addr", d->ident.advertise);
	mpw_kbool(&w, "locked", true);
	mpw_kstr(&w, "raft_state", "locked");
	mpw_kstr(&w, "version", ORCH_VERSION);
	rpc_reply_send(c, &w);
}

void rpc_unlock(struct daemon *d, struct conn *c, const struct req_unlock *a)
{
	char err[ERR_LEN];
	if (!d->locked) {
		rpc_reply_err(c, a->id, E_STATE, "this node is not locked");
		return;
	}
	struct unlock_key u;
	int rc = unlock_parse(a->key, &u, err);
	if (!rc)
		rc = datakey_unlock(d->data_dir, &u, err);
	unlock_wipe(&u);
	if (rc) {
		log_warn(d->ident.name, d->clock, "unlock refused: %s", err);
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	d->locked = false;
	uint64_t id = 0;
	if (datakey_lock_state(d->data_dir, &id, err) == 1)
		d->lock_seen = id;
	log_info(d->ident.name, d->clock, "unlocked: starting");
	rc = daemon_start_unlocked(d, err);
	if (rc) {
		log_error(d->ident.name, d->clock, "%s", err);
		rpc_reply_err(c, a->id, rc, err);
		daemon_stop(d, 1);
		return;
	}
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_kstr(&w, "result", "unlocked; the node is starting");
	rpc_reply_send(c, &w);
}

/* ---- the record in the log ------------------------------------------------------------------- */

/* The cluster's current unlock key, opened: E_NOTFOUND when autolock is off. */
static int current_key(struct daemon *d, struct unlock_key *u, char *err)
{
	const struct secret *x = store_secret_latest(&d->store, UNLOCK_KIND, UNLOCK_NAME);
	if (!x || x->size != sizeof u->k)
		return errf(err, E_NOTFOUND, "autolock is off (turn it on with orch cluster update --autolock=true)");
	struct buf b = {0};
	int rc = secrets_open_stored(&d->store, d->data_dir, UNLOCK_KIND, UNLOCK_NAME, 0, &b, err);
	if (!rc && b.len != sizeof u->k)
		rc = errf(err, E_INVAL, "the cluster's unlock key record is damaged");
	if (!rc)
		memcpy(u->k, b.data, sizeof u->k);
	secrets_wipe(&b);
	return rc;
}

/* The reply to a write of the record: its result, and the new key (p->ctx, taken) when
 * autolock is on. Not read back from the store: on a follower the reply of the leader
 * comes before the entry is applied here. */
static void record_done(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct pending *p = data;
	struct unlock_key *u = p->ctx;
	(void)d;
	if (p->conn) {
		struct mpw w;
		rpc_reply_begin(&w, p->req_id, rc);
		mpw_kstr(&w, rc ? "err" : "result", rc ? res->msg : u ? "autolock on" : "autolock off");
		if (!rc && u) {
			char text[UNLOCK_STR_LEN + 1];
			unlock_format(u, text);
			mpw_kstr(&w, "key", text);
			OPENSSL_cleanse(text, sizeof text);
		}
		rpc_reply_send(p->conn, &w);
	}
	if (u)
		unlock_wipe(u);
	free(u);
	p->ctx = NULL;
	pending_free(p);
}

/* A pending reply to request id on c that gives the key u (NULL: none) once written. */
static struct pending *record_pending(struct daemon *d, struct conn *c, uint64_t id, const struct unlock_key *u)
{
	struct pending *p = pending_new(d, c, id);
	if (u) {
		struct unlock_key *copy = xmalloc(sizeof *copy);
		*copy = *u;
		p->ctx = copy;
	}
	return p;
}

/* Submits a new record: the key u (NULL: autolock off), sealed under the data key. cb is
 * called with data for a submission that was not made too (rc, res.msg says why). */
static void record_put(struct daemon *d, const struct unlock_key *u, submit_cb cb, void *data)
{
	struct apply_res res = {0};
	struct buf sealed = {0};
	int rc = secrets_seal(d->data_dir, UNLOCK_KIND, UNLOCK_NAME, u ? u->k : (const uint8_t *)"", u ? sizeof u->k : 0,
			      &sealed, res.msg);
	if (!rc) {
		struct cmd_secret_put b = {.kind = UNLOCK_KIND, .name = UNLOCK_NAME, .data = {sealed.data, sealed.len},
					   .size = u ? sizeof u->k : 0, .at = clock_wall(d->clock)};
		struct mpw w;
		mpw_init(&w);
		cmd_body(&w, CMD_SECRET_PUT, &b);
		rc = daemon_submit(d, CMD_SECRET_PUT, w.sb.data, w.sb.size, cb, data, res.msg);
		mpw_free(&w);
	}
	buf_free(&sealed);
	if (rc)
		cb(d, data, rc, &res);
}

void rpc_unlock_key(struct daemon *d, struct conn *c, const struct req_unlock_key *a)
{
	char err[ERR_LEN];
	struct unlock_key u;
	int rc = current_key(d, &u, err);
	if (rc) {
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	if (a->rotate) {
		unlock_generate(&u);
		record_put(d, &u, record_done, record_pending(d, c, a->id, &u));
		unlock_wipe(&u);
		return;
	}
	char text[UNLOCK_STR_LEN + 1];
	unlock_format(&u, text);
	unlock_wipe(&u);
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_kstr(&w, "key", text);
	OPENSSL_cleanse(text, sizeof text);
	rpc_reply_send(c, &w);
}

void rpc_autolock(struct daemon *d, struct conn *c, const struct req_autolock *a)
{
	char err[ERR_LEN];
	struct unlock_key u;
	bool on = !current_key(d, &u, err);
	unlock_wipe(&u);
	if (on == a->enable) {
		struct mpw w;
		rpc_reply_begin(&w, a->id, 0);
		mpw_kstr(&w, "result", on ? "autolock is already on (orch unlock-key shows the key)" : "autolock is already off");
		rpc_reply_send(c, &w);
		return;
	}
	if (a->enable)
		unlock_generate(&u);
	record_put(d, a->enable ? &u : NULL, record_done, record_pending(d, c, a->id, a->enable ? &u : NULL));
	unlock_wipe(&u);
}

void autolock_join_reply(struct daemon *d, struct mpw *w, const struct token *joiner)
{
	char err[ERR_LEN];
	struct unlock_key u;
	if (current_key(d, &u, err))
		return;
	struct datakey as_key; /* the token wrap takes a key of the same length */
	memcpy(as_key.k, u.k, sizeof as_key.k);
	unlock_wipe(&u);
	struct buf wk = {0};
	if (!datakey_wrap(&as_key, joiner, &wk, err)) {
		mpw_key(w, "unlock");
		mpw_bin(w, wk.data, wk.len);
		mpw_ku64(w, "unlock_id", store_secret_latest(&d->store, UNLOCK_KIND, UNLOCK_NAME)->id);
	}
	datakey_wipe(&as_key);
	buf_free(&wk);
}

/* ---- every tick ------------------------------------------------------------------------------- */

static void recorded(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)data;
	if (rc) {
		d->lock_recorded = false; /* tried again next tick */
		log_warn(d->ident.name, d->clock, "autolock: recording the unlock key: %s", res->msg);
		return;
	}
	d->opts.autolock = false; /* the log has it now; this copy goes */
	unlock_wipe(&d->opts.autolock_key);
}

/* The key file re-sealed for record x (under its key, or in clear when it is off). */
static void reseal(struct daemon *d, const struct secret *x)
{
	char err[ERR_LEN];
	struct datakey k;
	struct unlock_key u;
	int rc = datakey_load(d->data_dir, &k, err);
	if (rc == E_NOTFOUND) { /* a node without a data key has nothing to seal */
		d->lock_seen = x->id;
		return;
	}
	if (!rc && x->size)
		rc = current_key(d, &u, err);
	if (!rc)
		rc = datakey_save_locked(d->data_dir, &k, x->size ? &u : NULL, x->id, err);
	datakey_wipe(&k);
	unlock_wipe(&u);
	d->lock_seen = x->id; /* once: a failure is logged, not retried every tick */
	if (rc)
		log_error(d->ident.name, d->clock, "autolock: re-sealing the data key file: %s", err);
	else
		log_info(d->ident.name, d->clock, "autolock %s: the data key file is %s", x->size ? "on" : "off",
			 x->size ? "sealed under the cluster's unlock key" : "in clear");
}

void autolock_tick(struct daemon *d)
{
	if (d->locked || d->stopping)
		return;
	const struct secret *x = store_secret_latest(&d->store, UNLOCK_KIND, UNLOCK_NAME);
	if (d->opts.autolock && !d->lock_recorded && !x && cons_is_leader(&d->cons) &&
	    d->store.has_cluster) {
		d->lock_recorded = true;
		record_put(d, &d->opts.autolock_key, recorded, NULL);
	}
	if (x && x->id > d->lock_seen)
		reseal(d, x);
}
