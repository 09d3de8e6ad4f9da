#include "node/imagefan.h"
#include "node/daemon.h"
#include "node/imagework.h"
#include "image/ref.h"
#include "net/conn.h"
#include "registry/registry.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct imagefan;

/* One node's share. */
struct fansrc {
	struct imagefan *f;
	struct conn *conn;
	char name[64], addr[64];
	bool ended, closed;
	bool worker; /* holds no key: a pull is sent the credentials opened (node/worker.h) */
};

struct imagefan {
	struct daemon *d;
	struct pending *p; /* the CLI's request; p->conn is NULL once the CLI has gone */
	struct fansrc *src;
	size_t n, open;
	unsigned failed;
	const char *action;
	char ref[REF_STR_MAX + 1];
	struct mpw drop; /* prune: the names of the records removed */
	uint32_t ndrop;
	/* pull: the tag resolved on a worker thread first */
	uv_work_t req;
	struct reg_config cfg; /* the node's options, with login's credentials */
	struct reg_login login;
	struct image_ref iref;
	char digest[DIGEST_LEN];
	int rc;
	char err[ERR_LEN];
};

static void frame_begin(struct imagefan *f, struct mpw *w, bool more)
{
	rpc_reply_begin(w, f->p->req_id, 0);
	mpw_kbool(w, "more", more);
}

static void fan_free(struct imagefan *f)
{
	if (f->p->conn) {
		struct mpw w;
		frame_begin(f, &w, false);
		mpw_ku64(&w, "nodes", f->n);
		mpw_ku64(&w, "failed", f->failed);
		if (f->ndrop) {
			mpw_key(&w, "removed");
			mpw_raw(&w, f->drop.sb.data, f->drop.sb.size);
		}
		rpc_reply_send(f->p->conn, &w);
	}
	pending_free(f->p);
	mpw_free(&f->drop);
	free(f->src);
	free(f);
}

static void fan_release(struct imagefan *f)
{
	if (--f->open == 0)
		fan_free(f);
}

/* A node's frame, passed on with its name: every key but the reply's own. */
static void relay(struct fansrc *s, const msgpack_object *resp, int64_t rc, bool more)
{
	struct imagefan *f = s->f;
	if (!f->p->conn)
		return;
	struct mpw w;
	frame_begin(f, &w, true);
	mpw_kstr(&w, "node", s->name);
	mpw_kbool(&w, "node_more", more);
	mpw_ki64(&w, "node_rc", rc);
	for (uint32_t i = 0; resp->type == MSGPACK_OBJECT_MAP && i < resp->via.map.size; i++) {
		const msgpack_object_kv *kv = &resp->via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR)
			continue;
		const char *k = kv->key.via.str.ptr;
		size_t kn = kv->key.via.str.size;
		if ((kn == 2 && !memcmp(k, "id", 2)) || (kn == 2 && !memcmp(k, "rc", 2)) || (kn == 4 && !memcmp(k, "more", 4)))
			continue;
		mpw_key_obj(&w, &kv->key);
		msgpack_pack_object(&w.pk, kv->val);
	}
	rpc_reply_send(f->p->conn, &w);
}

static void src_ready(struct conn *c)
{
	struct fansrc *s = c->data;
	struct imagefan *f = s->f;
	struct req_image_node q = {.action = f->action, .ref = f->ref[0] ? f->ref : NULL};
	if (f->ndrop)
		q.drop = (struct fl_doc){.raw = f->drop.sb.data, .len = f->drop.sb.size};
	struct mpw w, cw;
	mpw_init(&w);
	mpw_init(&cw);
	if (s->worker && !strcmp(f->action, "pull")) {
		struct feed_out out = {.arg = f->d, .open = watch_open_sealed};
		feed_registry_creds(&f->d->store, &out, true, f->iref.domain, &cw);
		q.creds = (struct fl_doc){.raw = cw.sb.data, .len = cw.sb.size};
	}
	proto_encode(&w, OP_IMAGE_NODE, 1, &q);
	conn_send_mpw(c, &w);
	if (cw.sb.data)
		explicit_bzero(cw.sb.data, cw.sb.size);
	mpw_free(&cw);
	if (w.sb.data)
		explicit_bzero(w.sb.data, w.sb.size);
	mpw_free(&w);
}

static void src_frame(struct conn *c, const msgpack_object *resp)
{
	struct fansrc *s = c->data;
	if (s->ended)
		return;
	int64_t rc = 0;
	bool more = false;
	mp_get_i64(resp, "rc", &rc);
	mp_get_bool(resp, "more", &more);
	relay(s, resp, rc, more && !rc);
	if (rc || !more) {
		s->f->failed += rc != 0;
		s->ended = true;
		conn_close(c, NULL);
	}
}

static void src_close(struct conn *c, const char *why)
{
	struct fansrc *s = c->data;
	s->closed = true;
	s->conn = NULL;
	if (!s->ended) {
		s->ended = true;
		s->f->failed++;
		if (s->f->p->conn) {
			struct mpw w;
			frame_begin(s->f, &w, true);
			mpw_kstr(&w, "node", s->name);
			mpw_kbool(&w, "node_more", false);
			mpw_ki64(&w, "node_rc", E_IO);
			mpw_kstr(&w, "err", why ? why : "the node closed the connection before answering");
			rpc_reply_send(s->f->p->conn, &w);
		}
	}
	fan_release(s->f);
}

static const struct conn_ops src_ops = {
	.on_ready = src_ready,
	.on_frame = src_frame,
	.on_close = src_close,
};

/* The CLI went away: stop asking (a node's pull goes on and is recorded all the same). */
static void fan_gone(struct pending *p)
{
	struct imagefan *f = p->ctx;
	f->open++;
	for (size_t i = 0; i < f->n; i++)
		if (!f->src[i].closed && f->src[i].conn)
			conn_close(f->src[i].conn, "the client went away");
	fan_release(f);
}

static struct imagefan *fan_new(struct daemon *d, struct conn *c, uint64_t id, const char *action)
{
	struct imagefan *f = xcalloc(1, sizeof *f);
	f->d = d;
	f->action = action;
	f->p = pending_new(d, c, id);
	f->p->ctx = f;
	f->p->on_gone = fan_gone;
	f->req.data = f;
	mpw_init(&f->drop);
	return f;
}

/* Asks every ready node that can hold images. */
static void fan_out(struct imagefan *f)
{
	struct daemon *d = f->d;
	size_t n = 0;
	TABLE_FOREACH(&d->store.nodes, const struct node, nd)
		n += nd->state == NS_READY && !node_hollow(nd) && nd->addr && nd->addr[0];
	f->src = xcalloc(n + 1, sizeof *f->src);
	f->p->on_gone = fan_gone;
	f->open = 1; /* held while the sources start: a synchronous failure must not end it */
	uint8_t me[AUTH_NODE_LEN];
	auth_node_put(d->ident.id, me);
	TABLE_FOREACH(&d->store.nodes, const struct node, nd) {
		if (nd->state != NS_READY || node_hollow(nd) || !nd->addr || !nd->addr[0])
			continue;
		struct fansrc *s = &f->src[f->n++];
		s->f = f;
		snprintf(s->name, sizeof s->name, "%s", nd->name ? nd->name : "?");
		snprintf(s->addr, sizeof s->addr, "%s", nd->addr);
		s->worker = nd->worker;
		f->open++;
		struct conn *sc = conn_connect(d->loop, s->addr, AUTH_KIND_RPC, &d->ident.tls, me, sizeof me, &src_ops, s);
		if (!s->closed)
			s->conn = sc;
	}
	TRACE("image", f->action, "asked %zu nodes", f->n);
	fan_release(f);
}

/* ---- pull ------------------------------------------------------------------------------------ */

static void resolve_work(uv_work_t *req)
{
	struct imagefan *f = req->data;
	f->rc = registry_resolve(&f->cfg, &f->iref, f->digest, NULL, 0, f->err);
}

static void resolve_done(uv_work_t *req, int status)
{
	struct imagefan *f = req->data;
	struct daemon *d = f->d;
	if (!f->rc && (status || d->stopping))
		f->rc = errf(f->err, E_BUSY, "the node is stopping");
	regopts_wipe(&f->login);
	if (f->rc) {
		char m[ERR_LEN + 600], fam[REF_STR_MAX + 1];
		image_ref_familiar(&f->iref, fam, sizeof fam);
		snprintf(m, sizeof m, "image pull %s: %s", fam, f->err);
		rpc_reply_err(f->p->conn, f->p->req_id, f->rc, m);
		f->p->on_gone = NULL;
		pending_free(f->p);
		mpw_free(&f->drop);
		free(f);
	} else {
		snprintf(f->iref.digest, sizeof f->iref.digest, "%s", f->digest);
		image_ref_canonical(&f->iref, f->ref, sizeof f->ref);
		if (f->p->conn) {
			struct mpw w;
			frame_begin(f, &w, true);
			mpw_kstr(&w, "resolved", f->ref);
			rpc_reply_send(f->p->conn, &w);
		}
		fan_out(f);
	}
	daemon_job_done(d);
}

void imagefan_pull(struct daemon *d, struct conn *c, const struct req_image_pull *a)
{
	char err[ERR_LEN];
	struct imagefan *f = fan_new(d, c, a->id, "pull");
	if (image_ref_parse(a->ref, &f->iref, err)) {
		rpc_reply_err(c, a->id, E_INVAL, err);
		f->p->on_gone = NULL;
		pending_free(f->p);
		mpw_free(&f->drop);
		free(f);
		return;
	}
	f->p->on_gone = NULL; /* the resolve runs to its end and finds p->conn NULL */
	regopts_login(&d->host, &d->reg, &f->iref, &f->login);
	regopts_bind(&f->cfg, &d->reg, &f->login);
	d->jobs++;
	uv_queue_work(d->loop, &f->req, resolve_work, resolve_done);
}

/* ---- prune, disk ---------------------------------------------------------------------------- */

void imagefan_prune(struct daemon *d, struct conn *c, const struct req_image_prune *a)
{
	struct imagefan *f = fan_new(d, c, a->id, "gc");
	TABLE_FOREACH(&d->store.images, const struct image, im)
		f->ndrop += imagework_pulled(im) && !imagework_used(&d->store, im);
	mpw_arr(&f->drop, f->ndrop);
	TABLE_FOREACH(&d->store.images, const struct image, im) {
		if (!imagework_pulled(im) || imagework_used(&d->store, im))
			continue;
		mpw_str(&f->drop, im->name);
		struct cmd_image_rm b = {.name = im->name};
		struct mpw w;
		char err[ERR_LEN];
		mpw_init(&w);
		cmd_body(&w, CMD_IMAGE_RM, &b);
		if (daemon_submit_data(d, CMD_IMAGE_RM, w.sb.data, w.sb.size, NULL, NULL, err))
			log_warn(d->ident.name, d->clock, "image prune: %s not removed: %s", im->name, err);
		mpw_free(&w);
	}
	fan_out(f);
}

void imagefan_disk(struct daemon *d, struct conn *c, const struct req_image_disk *a)
{
	fan_out(fan_new(d, c, a->id, "disk"));
}
