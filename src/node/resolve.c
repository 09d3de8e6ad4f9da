#include "node/resolve.h"
#include "node/daemon.h"
#include "registry/registry.h"
#include "image/ref.h"
#include "net/conn.h"
#include "spec/spec.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool resolve_needed(const struct store *s, const struct svc_spec *sp)
{
	return sp->image && !store_image_by_name(s, sp->image);
}

struct resolve {
	uv_work_t req;
	struct pending *p;
	struct reg_config cfg; /* the node's options, with login's credentials */
	struct reg_login login;
	uint8_t *spec;
	size_t spec_len;
	char *project, *name;
	struct image_ref ref;
	char digest[DIGEST_LEN];
	int rc;
	char err[ERR_LEN];
};

static void resolve_work(uv_work_t *req)
{
	struct resolve *j = req->data;
	j->rc = registry_resolve(&j->cfg, &j->ref, j->digest, NULL, 0, j->err);
}

static void resolve_free(struct resolve *j)
{
	pending_free(j->p);
	regopts_wipe(&j->login);
	free(j->spec);
	free(j->project);
	free(j->name);
	free(j);
}

static void resolve_done(uv_work_t *req, int status)
{
	struct resolve *j = req->data;
	struct daemon *d = j->p->d;
	char m[ERR_LEN + 600], ref[REF_STR_MAX + 1];
	image_ref_familiar(&j->ref, ref, sizeof ref);
	if (!j->rc && (status || d->stopping))
		j->rc = errf(j->err, E_BUSY, "the node is stopping");
	if (!j->spec) { /* image.resolve: the answer only */
		if (j->rc) {
			snprintf(m, sizeof m, "image %s: %s", ref, j->err);
			rpc_reply_err(j->p->conn, j->p->req_id, j->rc, m);
		} else {
			struct mpw w;
			char pinned[REF_STR_MAX + 1];
			snprintf(j->ref.digest, sizeof j->ref.digest, "%s", j->digest);
			image_ref_canonical(&j->ref, pinned, sizeof pinned);
			rpc_reply_begin(&w, j->p->req_id, 0);
			mpw_kstr(&w, "ref", pinned);
			mpw_kstr(&w, "digest", j->digest);
			mpw_kbool(&w, "loaded", false);
			rpc_reply_send(j->p->conn, &w);
		}
		resolve_free(j);
		daemon_job_done(d);
		return;
	}
	struct svc_spec sp;
	struct mpr r;
	svc_spec_init(&sp);
	if (!j->rc && mpr_decode(&r, j->spec, j->spec_len))
		j->rc = errf(j->err, E_INVAL, "the spec does not decode again");
	else if (!j->rc) {
		j->rc = svc_spec_decode(r.root, &sp, j->err);
		mpr_free(&r);
	}
	if (j->rc) {
		snprintf(m, sizeof m, "service %s: image %s: %s", j->name, ref, j->err);
		log_warn(d->ident.name, d->clock, "deploy: %s", m);
		rpc_reply_err(j->p->conn, j->p->req_id, j->rc == E_BUSY ? E_BUSY : j->rc, m);
		svc_spec_free(&sp);
		resolve_free(j);
		daemon_job_done(d);
		return;
	}
	snprintf(j->ref.digest, sizeof j->ref.digest, "%s", j->digest);
	char pinned[REF_STR_MAX + 1];
	image_ref_canonical(&j->ref, pinned, sizeof pinned);
	free(sp.image);
	sp.image = xstrdup(pinned);
	TRACE("deploy", sp.name, "image %s resolved to %s", ref, j->digest);
	rpc_service_submit(d, j->p->conn, j->p->req_id, &sp, j->project);
	svc_spec_free(&sp);
	resolve_free(j);
	daemon_job_done(d);
}

static void job_queue(struct daemon *d, struct conn *c, uint64_t req_id, struct resolve *j)
{
	regopts_login(&d->host, &d->reg, &j->ref, &j->login);
	regopts_bind(&j->cfg, &d->reg, &j->login);
	j->p = pending_new(d, c, req_id);
	j->req.data = j;
	d->jobs++;
	uv_queue_work(d->loop, &j->req, resolve_work, resolve_done);
}

void resolve_start(struct daemon *d, struct conn *c, uint64_t req_id, const struct svc_spec *sp, const char *project)
{
	char err[ERR_LEN], m[ERR_LEN + 80];
	struct resolve *j = xcalloc(1, sizeof *j);
	if (image_ref_parse(sp->image, &j->ref, err)) {
		snprintf(m, sizeof m, "service %s: %s", sp->name, err);
		rpc_reply_err(c, req_id, E_INVAL, m);
		free(j);
		return;
	}
	struct mpw w;
	mpw_init(&w);
	svc_spec_encode(sp, &w);
	j->spec = (uint8_t *)mpw_take(&w, &j->spec_len);
	mpw_free(&w);
	j->project = xstrdup(project ? project : "");
	j->name = xstrdup(sp->name);
	job_queue(d, c, req_id, j);
}

void resolve_check(struct daemon *d, struct conn *c, const struct req_image_resolve *a)
{
	const struct image *im = store_image_by_name(&d->store, a->ref);
	if (im) {
		struct mpw w;
		rpc_reply_begin(&w, a->id, 0);
		mpw_kstr(&w, "ref", im->name);
		mpw_kstr(&w, "digest", im->digest);
		mpw_kbool(&w, "loaded", true);
		rpc_reply_send(c, &w);
		return;
	}
	char err[ERR_LEN];
	struct resolve *j = xcalloc(1, sizeof *j);
	if (image_ref_parse(a->ref, &j->ref, err)) {
		rpc_reply_err(c, a->id, E_INVAL, err);
		free(j);
		return;
	}
	j->name = xstrdup("");
	job_queue(d, c, a->id, j);
}
