#include "node/imagefan.h"
#include "node/daemon.h"
#include "node/fanout.h"
#include "node/imagework.h"
#include "image/ref.h"
#include "net/conn.h"
#include "registry/registry.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fan's own part (node/fanout.h holds the sources). */
struct imagefan {
	struct daemon *d;
	struct pending *p; /* the CLI's request; p->conn is NULL once the CLI has gone */
	bool *worker;      /* per source: holds no key, so a pull is sent the credentials opened (node/worker.h) */
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
	mpw_free(&f->drop);
	free(f->worker);
	free(f);
}

static void fan_done(struct fanout *fo)
{
	struct imagefan *f = fo->ctx;
	if (f->p->conn) {
		struct mpw w;
		frame_begin(f, &w, false);
		mpw_ku64(&w, "nodes", fo->n);
		mpw_ku64(&w, "failed", f->failed);
		if (f->ndrop) {
			mpw_key(&w, "removed");
			mpw_raw(&w, f->drop.sb.data, f->drop.sb.size);
		}
		rpc_reply_send(f->p->conn, &w);
	}
	fan_free(f);
}

/* A node's frame, passed on with its name: every key but the reply's own. */
static void relay(struct fanout_src *s, const msgpack_object *resp, int64_t rc, bool more)
{
	struct imagefan *f = s->f->ctx;
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

static void src_ready(struct fanout_src *s, struct conn *c)
{
	struct imagefan *f = s->f->ctx;
	struct req_image_node q = {.action = f->action, .ref = f->ref[0] ? f->ref : NULL};
	if (f->ndrop)
		q.drop = (struct fl_doc){.raw = f->drop.sb.data, .len = f->drop.sb.size};
	struct mpw w, cw;
	mpw_init(&w);
	mpw_init(&cw);
	if (*(bool *)s->ctx && !strcmp(f->action, "pull")) {
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

static bool src_frame(struct fanout_src *s, const msgpack_object *resp, int64_t rc, bool more)
{
	relay(s, resp, rc, more && !rc);
	if (rc || !more) {
		((struct imagefan *)s->f->ctx)->failed += rc != 0;
		return true;
	}
	return false;
}

static void src_close(struct fanout_src *s, const char *why)
{
	struct imagefan *f = s->f->ctx;
	f->failed++;
	if (f->p->conn) {
		struct mpw w;
		frame_begin(f, &w, true);
		mpw_kstr(&w, "node", s->name);
		mpw_kbool(&w, "node_more", false);
		mpw_ki64(&w, "node_rc", E_IO);
		mpw_kstr(&w, "err", why ? why : "the node closed the connection before answering");
		rpc_reply_send(f->p->conn, &w);
	}
}

static const struct fanout_ops fan_ops = {
	.on_ready = src_ready,
	.on_frame = src_frame,
	.on_close = src_close,
	.on_done = fan_done,
};

static struct imagefan *fan_new(struct daemon *d, struct conn *c, uint64_t id, const char *action)
{
	struct imagefan *f = xcalloc(1, sizeof *f);
	f->d = d;
	f->action = action;
	f->p = pending_new(d, c, id);
	f->req.data = f;
	mpw_init(&f->drop);
	return f;
}

/* Asks every ready node that can hold images (the CLI going away stops the asking; a
 * node's pull goes on and is recorded all the same). */
static void fan_out(struct imagefan *f)
{
	struct daemon *d = f->d;
	size_t n = 0;
	TABLE_FOREACH(&d->store.nodes, const struct node, nd)
		n += nd->state == NS_READY && !node_hollow(nd) && nd->addr && nd->addr[0];
	f->worker = xcalloc(n + 1, sizeof *f->worker);
	struct fanout *fo = fanout_new(d, f->p, n, &fan_ops, f);
	TABLE_FOREACH(&d->store.nodes, const struct node, nd) {
		if (nd->state != NS_READY || node_hollow(nd) || !nd->addr || !nd->addr[0] || fo->n == fo->cap)
			continue;
		f->worker[fo->n] = nd->worker;
		fanout_dial(fo, nd->name ? nd->name : "?", nd->addr, &f->worker[fo->n]);
	}
	TRACE("image", f->action, "asked %zu nodes", fo->n);
	fanout_started(fo);
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
		pending_free(f->p);
		fan_free(f);
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
		pending_free(f->p);
		fan_free(f);
		return;
	}
	/* no on_gone yet: the resolve runs to its end and finds p->conn NULL */
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
