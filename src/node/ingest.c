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
	struct image_info *im; /* every image of the archive */
	size_t nim;
	size_t at, tag;        /* the record being written: image at, its name tag */
	struct mpw done;       /* the reply's "images" entries so far */
	uint32_t ndone;
	bool any_loaded;
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
	j->rc = image_load_all(j->data_dir, j->path, &j->im, &j->nim, j->err);
	for (size_t i = 0; !j->rc && i < j->nim; i++)
		j->rc = ingest_check_layers(j->data_dir, &j->im[i], j->err);
}

static void ingest_free(struct ingest *j)
{
	pending_free(j->p);
	image_list_free(j->im, j->nim);
	mpw_free(&j->done);
	free(j);
}

static void reply_done(struct ingest *j)
{
	struct conn *c = j->p->conn;
	if (!c)
		return;
	const struct image_info *im = &j->im[0];
	char shown[IMAGE_NAME_MAX];
	image_name_show(im->name, shown, sizeof shown);
	struct mpw w;
	rpc_reply_begin(&w, j->p->req_id, 0);
	/* the first image at the top (what older CLIs print), every record in "images" */
	mpw_kstr(&w, "result", j->any_loaded ? "loaded" : "unchanged");
	mpw_kstr(&w, "name", shown);
	mpw_kstr(&w, "digest", im->digest);
	mpw_ku64(&w, "size", im->size);
	mpw_ku64(&w, "layers", im->nlayers);
	mpw_key(&w, "images");
	mpw_arr(&w, j->ndone);
	mpw_raw(&w, (const uint8_t *)j->done.sb.data, j->done.sb.size);
	rpc_reply_send(c, &w);
}

static void submit_next(struct daemon *d, struct ingest *j);

static void recorded(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct ingest *j = data;
	const struct image_info *im = &j->im[j->at];
	const char *name = im->names[j->tag];
	if (rc && rc != E_EXISTS) {
		if (j->p->conn)
			rpc_reply_err(j->p->conn, j->p->req_id, rc, res->msg);
		ingest_free(j);
		return;
	}
	char shown[IMAGE_NAME_MAX];
	image_name_show(name, shown, sizeof shown);
	mpw_map_begin(&j->done);
	mpw_kstr(&j->done, "name", shown);
	mpw_kstr(&j->done, "ref", name);
	mpw_kstr(&j->done, "digest", im->digest);
	mpw_ku64(&j->done, "size", im->size);
	mpw_ku64(&j->done, "layers", im->nlayers);
	/* "unchanged": the same image was loaded under this name before */
	mpw_kstr(&j->done, "result", rc == E_EXISTS ? "unchanged" : "loaded");
	mpw_map_end(&j->done);
	j->ndone++;
	if (!rc) {
		j->any_loaded = true;
		log_info(d->ident.name, d->clock, "image %s (%s) loaded from %s", name, im->digest, j->path);
	}
	if (!im->names[++j->tag]) {
		j->tag = 0;
		j->at++;
	}
	if (j->at < j->nim) {
		submit_next(d, j);
		return;
	}
	reply_done(j);
	ingest_free(j);
}

/* One image.put per name of every image, in turn: a tag is its own record (as Docker
 * lists one line per tag), all pointing at the same blobs. */
static void submit_next(struct daemon *d, struct ingest *j)
{
	struct image_info *im = &j->im[j->at];
	/* the record's info names the record it is stored under */
	free(im->name);
	im->name = xstrdup(im->names[j->tag]);
	struct mpw info, w;
	mpw_init(&info);
	image_info_encode(im, &info);
	struct cmd_image_put b = {.name = im->name, .digest = im->digest, .size = im->size,
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
	submit_next(d, j);
	daemon_job_done(d);
}

void ingest_start(struct daemon *d, struct conn *c, const struct req_image_load *a)
{
	if (a->path[0] != '/') {
		rpc_reply_err(c, a->id, E_INVAL, "image load: an absolute path of an archive on this machine is required");
		return;
	}
	char err[ERR_LEN];
	int rc = diskwatch_local(d, "image load", err);
	if (rc) {
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	struct ingest *j = xcalloc(1, sizeof *j);
	snprintf(j->path, sizeof j->path, "%s", a->path);
	snprintf(j->data_dir, sizeof j->data_dir, "%s", d->data_dir);
	j->p = pending_new(d, c, a->id);
	mpw_init(&j->done);
	j->req.data = j;
	d->jobs++;
	uv_queue_work(d->loop, &j->req, ingest_work, ingest_done);
}
