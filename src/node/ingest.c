#include "node/ingest.h"
#include "node/daemon.h"
#include "util/layout.h"
#include "image/blobstore.h"
#include "image/image_load.h"
#include "image/unpack.h"
#include "net/conn.h"
#include "util/log.h"
#include "util/mem.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ingest {
	uv_work_t req;
	struct pending *p; /* the CLI may go away meanwhile */
	char data_dir[512];
	char path[PATH_MAX];
	struct image_info im;
	int rc;
	char err[ERR_LEN];
};

/* Unpacks every layer into the node's layer cache (where the agent would unpack it anyway).
 * A layer that fails is dropped from the blob store so nothing can run it later. */
int ingest_check_layers(const char *data_dir, const struct image_info *im, char *err)
{
	char root[600];
	struct blobstore bs;
	int rc = blob_init(&bs, data_dir, err);
	if (rc)
		return rc;
	layout_path(root, sizeof root, data_dir, LAYOUT_LAYERS);
	mkdir(root, 0700);
	for (size_t i = 0; !rc && i < im->nlayers; i++) {
		char *bp = blob_path(&bs, im->layers[i]), *ld = layer_dir(root, im->layers[i]);
		struct stat st;
		if (!bp || !ld)
			rc = errf(err, E_INVAL, "layer %zu: bad digest", i);
		else if (stat(ld, &st) && (rc = layer_unpack(bp, ld, err)) && stat(ld, &st) == 0)
			rc = 0; /* unpacked concurrently by the agent: it passed the same checks */
		else if (rc) {
			errwrap(err, rc, "layer %zu rejected", i);
			unlink(bp);
		}
		free(bp);
		free(ld);
	}
	blob_fini(&bs);
	return rc;
}

/* a worker thread: reading, hashing and unpacking never run on the loop */
static void ingest_work(uv_work_t *req)
{
	struct ingest *j = req->data;
	j->rc = image_load(j->data_dir, j->path, &j->im, j->err);
	if (!j->rc)
		j->rc = ingest_check_layers(j->data_dir, &j->im, j->err);
}

static void ingest_free(struct ingest *j)
{
	pending_free(j->p);
	image_info_free(&j->im); /* zeroed when image_load failed: freeing it again is harmless */
	free(j);
}

static void recorded(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct ingest *j = data;
	struct conn *c = j->p->conn;
	if (c && rc && rc != E_EXISTS)
		rpc_reply_err(c, j->p->req_id, rc, res->msg);
	else if (c) {
		struct mpw w;
		rpc_reply_begin(&w, j->p->req_id, 0);
		/* "unchanged": the same image was loaded before */
		mpw_kstr(&w, "result", rc == E_EXISTS ? res->msg : "loaded");
		mpw_kstr(&w, "name", j->im.name);
		mpw_kstr(&w, "digest", j->im.digest);
		mpw_ku64(&w, "size", j->im.size);
		mpw_ku64(&w, "layers", j->im.nlayers);
		rpc_reply_send(c, &w);
	}
	if (!rc)
		log_info(d->ident.name, d->clock, "image %s (%s) loaded from %s", j->im.name, j->im.digest, j->path);
	ingest_free(j);
}

static void ingest_done(uv_work_t *req, int status)
{
	struct ingest *j = req->data;
	struct daemon *d = j->p->d;
	char m[ERR_LEN + 64];
	if (!j->rc && (status || d->stopping))
		j->rc = errf(j->err, E_BUSY, "the node is stopping");
	if (j->rc) {
		snprintf(m, sizeof m, "image load %s: %s", j->path, j->err);
		rpc_reply_err(j->p->conn, j->p->req_id, j->rc == E_BUSY ? E_BUSY : E_INVAL, m);
		ingest_free(j);
		daemon_job_done(d);
		return;
	}
	struct mpw info, w;
	mpw_init(&info);
	image_info_encode(&j->im, &info);
	struct cmd_image_put b = {.name = j->im.name, .digest = j->im.digest, .size = j->im.size,
				  .info = {.raw = info.sb.data, .len = info.sb.size}, .loaded_at = clock_wall(d->clock),
				  .node_id = d->ident.id};
	mpw_init(&w);
	cmd_body(&w, CMD_IMAGE_PUT, &b);
	mpw_free(&info);
	char err[ERR_LEN];
	if (daemon_submit(d, CMD_IMAGE_PUT, w.sb.data, w.sb.size, recorded, j, err)) {
		struct apply_res res = {.rc = E_NOLEADER};
		snprintf(res.msg, sizeof res.msg, "%s", err);
		recorded(d, j, E_NOLEADER, &res);
	}
	mpw_free(&w);
	daemon_job_done(d);
}

void ingest_start(struct daemon *d, struct conn *c, const struct req_image_load *a)
{
	if (a->path[0] != '/') {
		rpc_reply_err(c, a->id, E_INVAL, "image load: an absolute path of an archive on this machine is required");
		return;
	}
	struct ingest *j = xcalloc(1, sizeof *j);
	snprintf(j->path, sizeof j->path, "%s", a->path);
	snprintf(j->data_dir, sizeof j->data_dir, "%s", d->data_dir);
	j->p = pending_new(d, c, a->id);
	j->req.data = j;
	d->jobs++;
	uv_queue_work(d->loop, &j->req, ingest_work, ingest_done);
}
