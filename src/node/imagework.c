#include "node/imagework.h"
#include "node/daemon.h"
#include "node/imgrec.h"
#include "node/ingest.h"
#include "agent/agent.h"
#include "image/imagegc.h"
#include "image/image_load.h"
#include "image/ref.h"
#include "net/conn.h"
#include "registry/registry.h"
#include "spec/spec.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The collector's pass: unused blobs are looked for this often. */
#define GC_EVERY_MS (5 * 60 * 1000)
/* Progress frames of a pull, at most this often (a change of phase goes at once). */
#define FRAME_MS 200

enum iw_action { A_PULL, A_GC, A_DISK };

struct iwimg {
	char *name;
	char **dg; /* the blobs it is made of */
	size_t n;
	uint64_t bytes;
};

struct iwjob {
	uv_work_t req;
	uv_async_t async;
	bool async_on;
	struct daemon *d;
	struct pending *p; /* NULL: the node's own collector */
	enum iw_action action;
	char data_dir[512];
	struct reg_config cfg; /* pull: the node's options, with login's credentials */
	struct reg_login login;
	struct image_ref ref;
	char name[REF_STR_MAX + 1]; /* the pinned name a pull is recorded under */
	char **keep;
	size_t nkeep;
	char **keep_extra; /* digests of keep that are the job's own */
	size_t nextra;
	struct iwimg *imgs;
	size_t nimgs;
	uint64_t grace_s, now_s;
	uv_mutex_t mu;          /* guards prog, phase, prog_new (the pull's threads write them) */
	struct reg_progress prog;
	char phase[16], sent_phase[16];
	bool prog_new;
	uint64_t sent_at;
	struct image_info im;
	struct imagegc_res gc;
	int rc;
	char err[ERR_LEN];
};

int imagework_pulled(const struct image *im)
{
	struct image_ref r;
	char e[ERR_LEN];
	return im->name && !image_ref_parse(im->name, &r, e) && r.digest[0];
}

int imagework_used(const struct store *s, const struct image *im)
{
	TABLE_FOREACH(&s->services, const struct service, v) {
		const struct svc_spec *a = service_spec(v), *b = service_prev_spec(v);
		if ((a && a->image && !strcmp(a->image, im->name)) || (b && b->image && !strcmp(b->image, im->name)))
			return 1;
	}
	return 0;
}

static bool dropped(const msgpack_object *drop, const char *name)
{
	for (uint32_t i = 0; drop && drop->type == MSGPACK_OBJECT_ARRAY && i < drop->via.array.size; i++) {
		const msgpack_object *o = &drop->via.array.ptr[i];
		if (mp_is_str(o) && o->via.str.size == strlen(name) && !memcmp(o->via.str.ptr, name, o->via.str.size))
			return true;
	}
	return false;
}

static void add_dg(struct iwimg *m, const char *dg)
{
	if (!dg || !digest_valid(dg))
		return;
	m->dg = xrealloc(m->dg, (m->n + 1) * sizeof *m->dg);
	m->dg[m->n++] = xstrdup(dg);
}

/* The images the node keeps (every record but those in drop) and their blobs. */
static void collect(struct iwjob *j, const struct store *s, const msgpack_object *drop)
{
	j->imgs = xcalloc(s->images.n + 1, sizeof *j->imgs);
	TABLE_FOREACH(&s->images, const struct image, x) {
		if (!x->name || dropped(drop, x->name))
			continue;
		struct iwimg *m = &j->imgs[j->nimgs++];
		m->name = xstrdup(x->name);
		struct image_ref r;
		char e[ERR_LEN];
		if (!image_ref_parse(x->name, &r, e))
			add_dg(m, r.digest); /* the index a pinned name may name */
		add_dg(m, x->digest);
		struct mpr mr;
		struct image_info info;
		if (x->info.len && !mpr_decode(&mr, x->info.data, x->info.len)) {
			if (!image_info_decode(mr.root, &info, e)) {
				add_dg(m, info.config_digest);
				for (size_t i = 0; i < info.nlayers; i++)
					add_dg(m, info.layers[i]);
				image_info_free(&info);
			}
			mpr_free(&mr);
		}
		j->keep = xrealloc(j->keep, (j->nkeep + m->n + 1) * sizeof *j->keep);
		for (size_t i = 0; i < m->n; i++)
			j->keep[j->nkeep++] = m->dg[i];
	}
}

/* What this node's own tasks use is kept too: an image forgotten by the cluster (orch
 * image rm) may still be running here. Its strings are owned by keep_extra. */
static void add_used(void *ctx, const char *digest)
{
	struct iwjob *j = ctx;
	if (!digest || !digest_valid(digest))
		return;
	j->keep_extra = xrealloc(j->keep_extra, (j->nextra + 1) * sizeof *j->keep_extra);
	j->keep_extra[j->nextra++] = xstrdup(digest);
	j->keep = xrealloc(j->keep, (j->nkeep + 1) * sizeof *j->keep);
	j->keep[j->nkeep++] = j->keep_extra[j->nextra - 1];
}

static void collect_all(struct iwjob *j, struct daemon *d, const msgpack_object *drop)
{
	collect(j, &d->store, drop);
	agent_used_blobs(d->agent, add_used, j);
	imagegc_sort(j->keep, j->nkeep);
}

static void job_free(struct iwjob *j)
{
	for (size_t i = 0; i < j->nimgs; i++) {
		for (size_t k = 0; k < j->imgs[i].n; k++)
			free(j->imgs[i].dg[k]);
		free(j->imgs[i].dg);
		free(j->imgs[i].name);
	}
	free(j->imgs);
	free(j->keep); /* its strings are the images' and keep_extra's */
	for (size_t i = 0; i < j->nextra; i++)
		free(j->keep_extra[i]);
	free(j->keep_extra);
	image_info_free(&j->im);
	regopts_wipe(&j->login);
	if (j->p)
		pending_free(j->p);
	uv_mutex_destroy(&j->mu);
	free(j);
}

/* ---- on a worker thread ------------------------------------------------------------------- */

static void on_progress(void *ctx, const struct reg_progress *p)
{
	struct iwjob *j = ctx;
	uv_mutex_lock(&j->mu);
	j->prog = *p;
	snprintf(j->phase, sizeof j->phase, "%s", p->phase ? p->phase : "");
	j->prog.phase = NULL;
	j->prog_new = true;
	uv_mutex_unlock(&j->mu);
	uv_async_send(&j->async);
}

static void iw_work(uv_work_t *req)
{
	struct iwjob *j = req->data;
	struct blobstore bs = {0};
	switch (j->action) {
	case A_PULL:
		if (!(j->rc = blob_init(&bs, j->data_dir, j->err)))
			j->rc = registry_pull(&j->cfg, &bs, &j->ref, &j->im, on_progress, j, j->err);
		if (!j->rc)
			j->rc = ingest_check_layers(j->data_dir, &j->im, j->err);
		blob_fini(&bs);
		break;
	case A_GC:
		j->rc = imagegc_run(j->data_dir, j->keep, j->nkeep, true, j->grace_s, j->now_s, &j->gc, j->err);
		break;
	case A_DISK:
		j->rc = imagegc_run(j->data_dir, j->keep, j->nkeep, false, 0, j->now_s, &j->gc, j->err);
		for (size_t i = 0; !j->rc && i < j->nimgs; i++)
			for (size_t k = 0; k < j->imgs[i].n; k++) {
				bool seen = false; /* an index and its manifest may be the same blob */
				for (size_t m = 0; m < k; m++)
					seen = seen || !strcmp(j->imgs[i].dg[m], j->imgs[i].dg[k]);
				if (!seen)
					j->imgs[i].bytes += imagegc_blob_bytes(j->data_dir, j->imgs[i].dg[k]);
			}
		break;
	}
}

/* ---- back on the loop ------------------------------------------------------------------------- */

static void send_progress(uv_async_t *h)
{
	struct iwjob *j = h->data;
	struct reg_progress p;
	char phase[16];
	uv_mutex_lock(&j->mu);
	bool fresh = j->prog_new;
	p = j->prog;
	snprintf(phase, sizeof phase, "%s", j->phase);
	j->prog_new = false;
	uv_mutex_unlock(&j->mu);
	uint64_t now = clock_now(j->d->clock);
	bool moved = strcmp(phase, j->sent_phase) != 0;
	if (!fresh || !j->p || !j->p->conn || (!moved && now - j->sent_at < FRAME_MS))
		return;
	j->sent_at = now;
	snprintf(j->sent_phase, sizeof j->sent_phase, "%s", phase);
	struct mpw w;
	rpc_reply_begin(&w, j->p->req_id, 0);
	mpw_kbool(&w, "more", true);
	mpw_kstr(&w, "phase", phase);
	mpw_ku64(&w, "done", p.bytes_done);
	mpw_ku64(&w, "total", p.bytes_total);
	mpw_ku64(&w, "layers_done", p.layers_done);
	mpw_ku64(&w, "layers_total", p.layers_total);
	rpc_reply_send(j->p->conn, &w);
}

static void closed(uv_handle_t *h)
{
	struct iwjob *j = h->data;
	struct daemon *d = j->d;
	job_free(j);
	daemon_job_done(d);
}

static void iw_done(uv_work_t *req, int status)
{
	struct iwjob *j = req->data;
	struct daemon *d = j->d;
	struct conn *c = j->p ? j->p->conn : NULL;
	if (!j->rc && (status || d->stopping))
		j->rc = errf(j->err, E_BUSY, "the node is stopping");
	if (j->action == A_PULL)
		d->imgw.pulls--;
	else if (!j->p)
		d->imgw.busy = false;
	struct mpw w;
	if (j->rc) {
		char m[ERR_LEN + 600];
		snprintf(m, sizeof m, "%s%s%s", j->action == A_PULL ? j->name : "", j->action == A_PULL ? ": " : "", j->err);
		if (j->p)
			rpc_reply_err(c, j->p->req_id, j->rc, m);
		else
			log_warn(d->ident.name, d->clock, "image gc: %s", m);
	} else if (j->action == A_PULL) {
		free(j->im.name);
		j->im.name = xstrdup(j->name);
		mpw_init(&w);
		image_info_encode(&j->im, &w);
		char e[ERR_LEN];
		if (imgrec_submit(&d->host, (const uint8_t *)w.sb.data, w.sb.size, e))
			log_warn(d->ident.name, d->clock, "pulled %s, not recorded: %s", j->name, e);
		mpw_free(&w);
		log_info(d->ident.name, d->clock, "pulled %s (%zu layers, %llu bytes)", j->name, j->im.nlayers,
			 (unsigned long long)j->im.size);
		rpc_reply_begin(&w, j->p->req_id, 0);
		mpw_kstr(&w, "name", j->name);
		mpw_kstr(&w, "digest", j->im.digest);
		mpw_ku64(&w, "size", j->im.size);
		mpw_ku64(&w, "layers", j->im.nlayers);
		rpc_reply_send(c, &w);
	} else if (j->p) {
		rpc_reply_begin(&w, j->p->req_id, 0);
		mpw_ku64(&w, "blob_bytes", j->gc.blob_bytes);
		mpw_ku64(&w, "layer_bytes", j->gc.layer_bytes);
		if (j->action == A_GC) {
			mpw_ku64(&w, "freed_bytes", j->gc.freed_bytes);
			mpw_ku64(&w, "freed_blobs", j->gc.freed_blobs);
			mpw_ku64(&w, "freed_layers", j->gc.freed_layers);
		} else {
			mpw_key(&w, "images");
			mpw_arr(&w, (uint32_t)j->nimgs);
			for (size_t i = 0; i < j->nimgs; i++) {
				mpw_map_begin(&w);
				mpw_kstr(&w, "name", j->imgs[i].name);
				mpw_ku64(&w, "bytes", j->imgs[i].bytes);
				mpw_map_end(&w);
			}
		}
		rpc_reply_send(c, &w);
	} else if (j->gc.freed_blobs || j->gc.freed_layers) {
		log_info(d->ident.name, d->clock, "image gc: freed %llu bytes (%llu blobs, %llu layers) unused for %llus",
			 (unsigned long long)j->gc.freed_bytes, (unsigned long long)j->gc.freed_blobs,
			 (unsigned long long)j->gc.freed_layers, (unsigned long long)j->grace_s);
	}
	if (j->async_on)
		uv_close((uv_handle_t *)&j->async, closed);
	else
		closed((uv_handle_t *)&j->async);
}

static struct iwjob *job_new(struct daemon *d, struct conn *c, uint64_t req_id, enum iw_action action)
{
	struct iwjob *j = xcalloc(1, sizeof *j);
	j->d = d;
	j->action = action;
	j->p = c ? pending_new(d, c, req_id) : NULL;
	j->req.data = j->async.data = j;
	j->now_s = clock_wall(d->clock) / 1000;
	snprintf(j->data_dir, sizeof j->data_dir, "%s", d->data_dir);
	uv_mutex_init(&j->mu);
	return j;
}

static void job_queue(struct iwjob *j)
{
	j->d->jobs++;
	uv_queue_work(j->d->loop, &j->req, iw_work, iw_done);
}

/* A pull or a task still preparing may be writing blobs no record names yet. */
static bool pulling(const struct daemon *d)
{
	if (d->imgw.pulls)
		return true;
	TABLE_FOREACH(&d->store.tasks, const struct task, t)
		if (t->node_id == d->ident.id && (t->state == TS_ASSIGNED || t->state == TS_PREPARING))
			return true;
	return false;
}

void imagework_start(struct daemon *d, struct conn *c, const struct req_image_node *a)
{
	char m[ERR_LEN];
	if (d->opts.hollow) {
		rpc_reply_err(c, a->id, E_UNSUPP, "a hollow node holds no images");
		return;
	}
	enum iw_action act = !strcmp(a->action, "pull") ? A_PULL : !strcmp(a->action, "gc") ? A_GC : A_DISK;
	if (act == A_DISK && strcmp(a->action, "disk")) {
		rpc_reply_err(c, a->id, E_INVAL, "image.node: action must be pull, gc or disk");
		return;
	}
	int lrc = act == A_PULL ? diskwatch_local(d, "image pull", m) : 0;
	if (lrc) { /* a pull fills the disk the alarm is about */
		rpc_reply_err(c, a->id, lrc, m);
		return;
	}
	if (act == A_GC && pulling(d)) {
		rpc_reply_err(c, a->id, E_BUSY, "an image is being pulled here; prune again once it is done");
		return;
	}
	struct iwjob *j = job_new(d, c, a->id, act);
	if (act == A_PULL) {
		int prc = a->ref ? image_ref_parse(a->ref, &j->ref, m) : errf(m, E_INVAL, "image.node pull: ref required");
		if (!prc && !j->ref.digest[0])
			prc = errf(m, E_INVAL, "image.node pull: %.200s is not pinned to a digest", a->ref);
		if (prc) {
			rpc_reply_err(c, a->id, E_INVAL, m);
			job_free(j);
			return;
		}
		image_ref_canonical(&j->ref, j->name, sizeof j->name);
		regopts_login(&d->host, &d->reg, &j->ref, &j->login);
		if (!j->login.n) /* a worker: given by the node that asked, opened (node/feed.h) */
			regopts_given(&j->login, a->creds.obj);
		regopts_bind(&j->cfg, &d->reg, &j->login);
		uv_async_init(d->loop, &j->async, send_progress);
		j->async_on = true;
		d->imgw.pulls++;
	} else {
		collect_all(j, d, a->drop.obj);
		j->grace_s = a->grace_s;
	}
	job_queue(j);
}

/* ---- the node's own collector ---------------------------------------------------------------- */

static void forget_unused(struct imagework_state *s, size_t i)
{
	free(s->unused[i]);
	s->unused[i] = s->unused[s->nunused - 1];
	s->unused_since[i] = s->unused_since[s->nunused - 1];
	s->nunused--;
}

/* While leading: pulled records unused for the grace period are removed from the cluster. */
static void expire_records(struct daemon *d, uint64_t now, uint64_t grace_ms)
{
	struct imagework_state *s = &d->imgw;
	for (size_t i = 0; i < s->nunused;) {
		const struct image *im = table_get_str(&d->store.images, s->unused[i]);
		if (!im || imagework_used(&d->store, im))
			forget_unused(s, i);
		else
			i++;
	}
	TABLE_FOREACH(&d->store.images, const struct image, im) {
		if (!imagework_pulled(im) || imagework_used(&d->store, im))
			continue;
		size_t i = 0;
		while (i < s->nunused && strcmp(s->unused[i], im->name))
			i++;
		if (i == s->nunused) {
			s->unused = xrealloc(s->unused, (i + 1) * sizeof *s->unused);
			s->unused_since = xrealloc(s->unused_since, (i + 1) * sizeof *s->unused_since);
			s->unused[i] = xstrdup(im->name);
			s->unused_since[i] = now;
			s->nunused++;
		} else if (now - s->unused_since[i] >= grace_ms) {
			struct cmd_image_rm b = {.name = im->name};
			struct mpw w;
			char err[ERR_LEN];
			mpw_init(&w);
			cmd_body(&w, CMD_IMAGE_RM, &b);
			if (!daemon_submit_data(d, CMD_IMAGE_RM, w.sb.data, w.sb.size, NULL, NULL, err))
				log_info(d->ident.name, d->clock, "image gc: %s unused for %llus, removed", im->name,
					 (unsigned long long)(grace_ms / 1000));
			mpw_free(&w);
		}
	}
}

void imagework_tick(struct daemon *d)
{
	uint64_t mono = clock_now(d->clock);
	/* not at start: a node replaying its log does not know every image yet */
	if (!d->imgw.last_ms)
		d->imgw.last_ms = mono;
	if (d->opts.hollow || mono - d->imgw.last_ms < GC_EVERY_MS || !d->store.has_cluster)
		return;
	d->imgw.last_ms = mono;
	if (cons_is_leader(&d->cons))
		expire_records(d, clock_wall(d->clock), d->reg.gc_grace_ms);
	else
		imagework_free(d); /* a new leader starts counting afresh */
	if (d->imgw.busy || pulling(d))
		return;
	struct iwjob *j = job_new(d, NULL, 0, A_GC);
	collect_all(j, d, NULL);
	j->grace_s = d->reg.gc_grace_ms / 1000;
	d->imgw.busy = true;
	job_queue(j);
}

void imagework_free(struct daemon *d)
{
	struct imagework_state *s = &d->imgw;
	for (size_t i = 0; i < s->nunused; i++)
		free(s->unused[i]);
	free(s->unused);
	free(s->unused_since);
	s->unused = NULL;
	s->unused_since = NULL;
	s->nunused = 0;
}
