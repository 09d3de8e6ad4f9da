#include "registry/registry.h"
#include "codec/json.h"
#include "image/zsrc.h"
#include "registry/http.h"
#include "registry/session.h"
#include "registry/wire.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MANIFEST_MAX (4u << 20)
#define PARALLEL_MAX 16
#define HUB_DOMAIN "docker.io"

/* ==== manifests ==== */

struct manifest {
	const char *reference; /* tag or digest asked for */
	struct buf body;
	char media_type[128];
	char digest[DIGEST_LEN];
	struct json *doc;
};

static int manifest_attempt(struct regsess *s, struct http_conn *c, void *arg, bool *transient, unsigned *wait_ms,
			    char *err)
{
	struct manifest *m = arg;
	char target[REF_PATH_MAX + REF_TAG_MAX + REF_DIGEST_MAX + 32];
	snprintf(target, sizeof target, "/v2/%s/manifests/%s", s->repo, m->reference);
	const char *hdrs[] = {REGWIRE_ACCEPT, NULL};
	struct http_resp r;
	int rc = regsess_request(s, c, "GET", target, hdrs, &r, err);
	if (rc)
		return rc;
	char what[REF_TAG_MAX + REF_DIGEST_MAX + 16];
	snprintf(what, sizeof what, "manifest %s", m->reference);
	if (r.status != 200)
		return regsess_answer_error(s, c, &r, what, transient, wait_ms, err);
	char ct[128] = "", dcd[DIGEST_LEN] = "";
	const char *h = http_header(&r, "Content-Type");
	snprintf(ct, sizeof ct, "%s", h ? h : "");
	h = http_header(&r, "Docker-Content-Digest");
	snprintf(dcd, sizeof dcd, "%s", h ? h : "");
	m->body.len = 0;
	rc = http_read_all(c, &r, MANIFEST_MAX, &m->body, err);
	regsess_finish(c, &r);
	if (rc)
		return errwrap(err, rc, "%s: %s", s->what, what);
	sha256_digest(m->body.data, m->body.len, m->digest);
	/* The digest the reference names, else the one the registry vouches for. */
	const char *want = digest_valid(m->reference) ? m->reference : (digest_valid(dcd) ? dcd : NULL);
	if (want && strcmp(want, m->digest)) {
		char sg[32], sw[32];
		digest_short(m->digest, sg, sizeof sg);
		digest_short(want, sw, sizeof sw);
		return errf(err, E_INVAL, "%s: %s: digest mismatch: the bytes hash to %s, expected %s", s->what, what, sg, sw);
	}
	json_free(m->doc);
	m->doc = NULL;
	if ((rc = json_parse((const char *)m->body.data, m->body.len, &m->doc, err)))
		return errwrap(err, rc, "%s: %s", s->what, what);
	regwire_media_type(ct, m->doc, m->media_type, sizeof m->media_type);
	if (!regwire_is_index(m->media_type) && !regwire_is_manifest(m->media_type))
		return errf(err, E_UNSUPP, "%s: %s has media type \"%.80s\", not an image manifest or index", s->what, what,
			    m->media_type);
	return 0;
}

static int get_manifest(struct regsess *s, struct http_conn *c, const char *reference, struct manifest *m, char *err)
{
	m->reference = reference;
	return regsess_retry(s, c, manifest_attempt, m, err);
}

static void manifest_free(struct manifest *m)
{
	buf_free(&m->body);
	json_free(m->doc);
	memset(m, 0, sizeof *m);
}

/* ==== blobs ==== */

struct pull;

/* One blob to download. Its body streams through the job (layer_read): written to the store
 * as it passes and, for a layer, decoded on the way (image/zsrc.h) to hash its diff_id. */
struct blob_job {
	struct pull *p;
	char digest[DIGEST_LEN];
	char what[48]; /* "blob sha256:ab12cd34ef56" */
	uint64_t size; /* from the descriptor */
	bool is_layer;
	struct blob_writer w;
	bool open; /* w holds a download in progress */
	struct http_conn *c;
	struct http_resp r;
	bool live; /* r's body is being read */
	bool restart; /* the server cannot resume: download again from the start */
	unsigned cuts;
	/* diff_rc: 0 when diff holds the diff_id hashed on the way in; E_NOTFOUND when the
	 * blob was in the store already */
	int diff_rc;
	char diff[DIGEST_LEN];
};

/* The shared state of one image pull: the jobs, the progress counters, the first error. */
struct pull {
	struct regsess *s;
	const struct blobstore *bs;
	struct blob_job *jobs;
	size_t njobs, next;
	pthread_mutex_t mu;
	struct reg_progress prog;
	reg_progress_fn cb;
	void *cbctx;
	int rc;
	char err[ERR_LEN];
};

static void progress(struct pull *p, int64_t bytes, bool layer_done, const char *phase)
{
	pthread_mutex_lock(&p->mu);
	p->prog.bytes_done = (uint64_t)((int64_t)p->prog.bytes_done + bytes);
	if (layer_done)
		p->prog.layers_done++;
	if (phase)
		p->prog.phase = phase;
	if (p->cb)
		p->cb(p->cbctx, &p->prog);
	pthread_mutex_unlock(&p->mu);
}

/* Drops what was written so far (the server ignored a range, or the data was bad). */
static void job_discard(struct blob_job *j)
{
	if (!j->open)
		return;
	progress(j->p, -(int64_t)j->w.size, false, NULL);
	blob_writer_abort(&j->w);
	j->open = false;
}

/* Parses "bytes START-END/TOTAL" and checks START. */
static bool range_starts_at(const char *cr, uint64_t at)
{
	unsigned long long start;
	return cr && sscanf(cr, "bytes %llu-", &start) == 1 && start == at;
}

/* Asks for the blob, from where the last cut left it when part is written already, and
 * leaves the answer's body to be read. */
static int blob_open_attempt(struct regsess *s, struct http_conn *c, void *arg, bool *transient, unsigned *wait_ms,
			     char *err)
{
	struct blob_job *j = arg;
	char target[REF_PATH_MAX + DIGEST_LEN + 16], range[48];
	snprintf(target, sizeof target, "/v2/%s/blobs/%s", s->repo, j->digest);
	const char *hdrs[2] = {NULL, NULL};
	if (j->open && j->w.size > 0) {
		snprintf(range, sizeof range, "Range: bytes=%llu-", (unsigned long long)j->w.size);
		hdrs[0] = range;
	}
	int rc = regsess_request(s, c, "GET", target, hdrs, &j->r, err);
	if (rc)
		return rc;
	if (j->r.status == 206 && j->open && range_starts_at(http_header(&j->r, "Content-Range"), j->w.size)) {
		TRACE("registry", j->digest, "resuming at byte %llu", (unsigned long long)j->w.size);
	} else if (j->r.status == 200) {
		if (j->open && j->w.size) { /* the server ignored the range: fetch_blob starts over */
			regsess_finish(c, &j->r);
			j->restart = true;
			return errf(err, E_BUSY, "%s: %s: the registry cannot resume a download", s->what, j->what);
		}
	} else if (j->r.status == 206 || j->r.status == 416) {
		regsess_finish(c, &j->r);
		job_discard(j);
		*transient = true;
		return errf(err, E_IO, "%s: %s: the registry answered a resumed download with the wrong range", s->what,
			    j->what);
	} else
		return regsess_answer_error(s, c, &j->r, j->what, transient, wait_ms, err);
	if (!j->open) {
		if ((rc = blob_writer_begin(&j->w, j->p->bs, err))) {
			regsess_finish(c, &j->r);
			return rc;
		}
		j->open = true;
	}
	j->live = true;
	return 0;
}

/* The raw bytes of a blob, for zsrc or a plain copy: each piece is stored as it passes. A
 * connection cut mid-body is resumed with a range request (cfg->attempts in all). */
static ssize_t blob_read(void *ctx, void *buf, size_t n, char *err)
{
	struct blob_job *j = ctx;
	struct pull *p = j->p;
	struct regsess *s = p->s;
	unsigned attempts = s->cfg->attempts ? s->cfg->attempts : 4;
	for (;;) {
		if (p->rc) /* another layer failed: stop early */
			return errf(err, E_FAIL, "%s: stopped", s->what);
		if (!j->live) {
			int rc = regsess_retry(s, j->c, blob_open_attempt, j, err);
			if (rc)
				return rc;
		}
		ssize_t got = http_read_body(j->c, &j->r, buf, n, err);
		if (got > 0) {
			if (j->size && j->w.size + (uint64_t)got > j->size)
				return errf(err, E_INVAL, "%s: %s is larger than the %llu bytes its descriptor says", s->what,
					    j->what, (unsigned long long)j->size);
			int rc = blob_writer_write(&j->w, buf, (size_t)got, err);
			if (rc)
				return rc;
			progress(p, got, false, NULL);
			return got;
		}
		regsess_finish(j->c, &j->r);
		j->live = false;
		if (got == 0)
			return 0;
		if ((got != E_IO && got != E_TIMEOUT) || ++j->cuts >= attempts)
			return errwrap(err, (int)got, "%s: %s", s->what, j->what);
		TRACE("registry", j->digest, "cut after %llu bytes, resuming: %s", (unsigned long long)j->w.size, err);
		regsess_sleep_ms(REGSESS_BACKOFF_FIRST_MS << (j->cuts - 1));
	}
}

/* Reads the blob to its end: through zsrc for a layer (its diff_id hashed on the way),
 * as is for the config. */
static int blob_stream(struct blob_job *j, char *err)
{
	uint8_t *b = xmalloc(1 << 18);
	ssize_t n;
	int rc = 0;
	if (!j->is_layer) {
		while ((n = blob_read(j, b, 1 << 18, err)) > 0)
			;
		free(b);
		return (int)n;
	}
	struct zsrc z;
	if ((rc = zsrc_open(&z, blob_read, j, j->what, true, err))) {
		free(b);
		return rc;
	}
	while ((n = zsrc_read(&z, b, 1 << 18, err)) > 0)
		;
	if (!n && !(rc = zsrc_drain(&z, err)) && !(rc = zsrc_diff_id(&z, j->diff, err)))
		j->diff_rc = 0;
	if (n < 0)
		rc = (int)n;
	zsrc_close(&z);
	if (rc == E_INVAL && j->open) {
		/* Undecodable: read the rest as is, so a digest mismatch (the likelier cause)
		 * is what gets reported. */
		char e2[ERR_LEN];
		while (blob_read(j, b, 1 << 18, e2) > 0)
			;
		if (blob_writer_commit(&j->w, j->digest, j->diff, NULL, e2))
			rc = errf(err, E_INVAL, "%s: %s: digest mismatch: the downloaded bytes do not hash to their digest",
				  j->p->s->what, j->what);
		j->open = false;
	}
	free(b);
	return rc;
}

/* Downloads one blob unless the store already has it. */
static int fetch_blob(struct regsess *s, struct http_conn *c, struct blob_job *j, char *err)
{
	char sd[32];
	digest_short(j->digest, sd, sizeof sd);
	snprintf(j->what, sizeof j->what, "blob %s", sd);
	j->diff_rc = E_NOTFOUND;
	if (blob_has(j->p->bs, j->digest)) {
		progress(j->p, (int64_t)j->size, j->is_layer, NULL);
		return 0;
	}
	j->c = c;
	int rc;
	for (int round = 0;; round++) {
		j->restart = false;
		rc = blob_stream(j, err);
		if (j->live) {
			regsess_finish(c, &j->r);
			j->live = false;
		}
		if (!rc || !j->restart || round > 0)
			break;
		job_discard(j);
		j->cuts = 0;
	}
	if (!rc && j->open) {
		char got[DIGEST_LEN];
		j->open = false;
		if (blob_writer_commit(&j->w, j->digest, got, NULL, err))
			rc = errf(err, E_INVAL, "%s: %s: digest mismatch: the downloaded bytes do not hash to their digest",
				  s->what, j->what);
	}
	if (j->open) {
		blob_writer_abort(&j->w);
		j->open = false;
	}
	if (!rc && j->is_layer)
		progress(j->p, 0, true, NULL);
	return rc;
}

static void *worker(void *arg)
{
	struct pull *p = arg;
	struct http_conn c;
	memset(&c, 0, sizeof c);
	c.fd = -1;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		struct blob_job *j = p->rc || p->next == p->njobs ? NULL : &p->jobs[p->next++];
		pthread_mutex_unlock(&p->mu);
		if (!j)
			break;
		char err[ERR_LEN];
		int rc = fetch_blob(p->s, &c, j, err);
		if (rc) {
			pthread_mutex_lock(&p->mu);
			if (!p->rc) {
				p->rc = rc;
				memcpy(p->err, err, ERR_LEN);
			}
			pthread_mutex_unlock(&p->mu);
		}
	}
	http_close(&c);
	return NULL;
}

/* ==== the image ==== */

static bool layer_type_ok(const char *mt)
{
	return !mt || strstr(mt, "tar") || strstr(mt, "rootfs");
}

static uint64_t stored_size(const struct blobstore *bs, const char *digest)
{
	char *path = blob_path(bs, digest);
	struct stat st;
	uint64_t n = path && stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	free(path);
	return n;
}

static int desc_of(struct regsess *s, const struct json *d, const char *what, char *digest, uint64_t *size, char *err)
{
	const char *dig = json_get_str(d, "digest");
	if (!digest_valid(dig))
		return errf(err, E_INVAL, "%s: %s: missing or unsupported digest \"%.80s\" (sha256 only)", s->what, what,
			    dig ? dig : "");
	snprintf(digest, DIGEST_LEN, "%s", dig);
	*size = 0;
	json_u64(json_get(d, "size"), size);
	return 0;
}

/* Follows an index to the manifest of the wanted platform (one level of nesting). */
static int resolve_platform(struct regsess *s, struct http_conn *c, struct manifest *m, char *err)
{
	struct regwire_platform want;
	int rc = 0;
	if (s->cfg->platform)
		rc = regwire_platform_parse(s->cfg->platform, &want, err);
	else
		regwire_platform_host(&want);
	if (rc)
		return errwrap(err, rc, "%s", s->what);
	for (int depth = 0; regwire_is_index(m->media_type); depth++) {
		if (depth == 2)
			return errf(err, E_UNSUPP, "%s: image indexes nested too deeply", s->what);
		size_t i;
		if ((rc = regwire_pick(m->doc, &want, &i, err)))
			return errwrap(err, rc, "%s", s->what);
		char dig[DIGEST_LEN];
		uint64_t size;
		if ((rc = desc_of(s, json_at(json_get(m->doc, "manifests"), i), "index entry", dig, &size, err)))
			return rc;
		manifest_free(m);
		if ((rc = get_manifest(s, c, dig, m, err)))
			return rc;
		m->reference = NULL;
	}
	return 0;
}

/* Checks layer i against the config's diff_id: the one hashed while it downloaded, else
 * (a blob already held) read back from the store. */
static int check_layer(struct regsess *s, const struct blobstore *bs, const struct pull *p, size_t i, const char *dig,
		       const char *want, char *err)
{
	const struct blob_job *j = NULL;
	for (size_t k = 0; k < p->njobs && !j; k++)
		if (!strcmp(p->jobs[1 + k].digest, dig))
			j = &p->jobs[1 + k];
	char what[32];
	snprintf(what, sizeof what, "layer %zu", i);
	if (!j || j->diff_rc != 0)
		return image_layer_check(bs, s->what, i, what, dig, want, err);
	if (!strcmp(j->diff, want))
		return 0;
	char sg[32], sw[32];
	digest_short(j->diff, sg, sizeof sg);
	digest_short(want, sw, sizeof sw);
	return errf(err, E_INVAL, "%s: %s content hashes to %s but the config says %s: corrupt or tampered layer rejected",
		    s->what, what, sg, sw);
}

static int pull_from(struct regsess *s, const struct blobstore *bs, const struct image_ref *ref, struct image_info *out,
		     reg_progress_fn cb, void *cbctx, char *err)
{
	struct http_conn c;
	memset(&c, 0, sizeof c);
	c.fd = -1;
	struct manifest m = {0};
	struct pull p = {.s = s, .bs = bs, .cb = cb, .cbctx = cbctx};
	pthread_mutex_init(&p.mu, NULL);
	struct json *cfgdoc = NULL;
	struct buf cb_bytes = {0};
	p.prog.phase = "resolving";
	if (cb)
		cb(cbctx, &p.prog);
	int rc = get_manifest(s, &c, ref->digest[0] ? ref->digest : ref->tag, &m, err);
	if (!rc)
		rc = resolve_platform(s, &c, &m, err);
	const struct json *layers = json_get(m.doc, "layers");
	if (!rc && (!json_is(layers, JSON_ARR) || !json_is(json_get(m.doc, "config"), JSON_OBJ)))
		rc = errf(err, E_INVAL, "%s: manifest has no config or layers", s->what);
	if (!rc && layers->n > IMAGE_MAX_LAYERS)
		rc = errf(err, E_UNSUPP, "%s: %zu layers exceed the limit of %d", s->what, layers->n, IMAGE_MAX_LAYERS);
	if (!rc) {
		p.jobs = xcalloc(layers->n + 1, sizeof *p.jobs);
		struct blob_job *cj = &p.jobs[0];
		cj->p = &p;
		rc = desc_of(s, json_get(m.doc, "config"), "config", cj->digest, &cj->size, err);
		if (!rc && cj->size > JSON_MAX_SIZE)
			rc = errf(err, E_INVAL, "%s: the config is %llu bytes, too large for image metadata", s->what,
				  (unsigned long long)cj->size);
		p.prog.bytes_total = cj->size;
	}
	for (size_t i = 0; !rc && i < layers->n; i++) {
		const struct json *d = layers->items[i];
		const char *mt = json_get_str(d, "mediaType");
		char what[32];
		snprintf(what, sizeof what, "layer %zu", i);
		if (!layer_type_ok(mt)) {
			rc = errf(err, E_UNSUPP, "%s: layer %zu has media type %.80s, not a filesystem layer", s->what, i, mt);
			break;
		}
		struct blob_job *j = &p.jobs[1 + p.njobs];
		j->p = &p;
		j->is_layer = true;
		if ((rc = desc_of(s, d, what, j->digest, &j->size, err)))
			break;
		bool dup = false;
		for (size_t k = 0; k < p.njobs && !dup; k++)
			dup = !strcmp(p.jobs[1 + k].digest, j->digest);
		if (dup) {
			memset(j, 0, sizeof *j);
			continue;
		}
		p.njobs++;
		p.prog.bytes_total += j->size;
	}
	p.prog.layers_total = (unsigned)p.njobs;
	/* The config first (it is small and names the diff_ids), then the layers in parallel. */
	if (!rc)
		rc = fetch_blob(s, &c, &p.jobs[0], err);
	if (!rc)
		rc = blob_read_all(bs, p.jobs[0].digest, JSON_MAX_SIZE, &cb_bytes, err);
	if (!rc && (rc = json_parse((const char *)cb_bytes.data, cb_bytes.len, &cfgdoc, err)))
		errwrap(err, rc, "%s: config", s->what);
	const struct json *diff_ids = NULL;
	if (!rc)
		rc = image_config_parse(cfgdoc, s->what, out, &diff_ids, err);
	if (!rc && diff_ids->n != layers->n)
		rc = errf(err, E_INVAL, "%s: manifest lists %zu layers but the config has %zu diff_ids", s->what, layers->n,
			  diff_ids->n);
	http_close(&c);
	if (!rc && p.njobs) {
		p.prog.phase = "downloading";
		struct blob_job *layer_jobs = p.jobs + 1;
		p.jobs = layer_jobs; /* the workers take the layer jobs only */
		unsigned nt = s->cfg->parallel ? s->cfg->parallel : 3;
		if (nt > PARALLEL_MAX)
			nt = PARALLEL_MAX;
		if (nt > p.njobs)
			nt = (unsigned)p.njobs;
		pthread_t th[PARALLEL_MAX];
		unsigned started = 0;
		for (; started < nt; started++)
			if (pthread_create(&th[started], NULL, worker, &p))
				break;
		if (!started)
			worker(&p);
		for (unsigned i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		p.jobs = layer_jobs - 1;
		if (p.rc) {
			rc = p.rc;
			memcpy(err, p.err, ERR_LEN);
		}
	}
	if (!rc) {
		progress(&p, 0, false, "verifying");
		out->size = m.body.len + cb_bytes.len;
		for (size_t i = 0; !rc && i < layers->n; i++) {
			const struct json *d = layers->items[i];
			const char *dig = json_get_str(d, "digest");
			rc = check_layer(s, bs, &p, i, dig, json_str(diff_ids->items[i]), err);
			if (!rc) {
				image_info_add_layer(out, dig);
				out->size += stored_size(bs, dig);
			}
		}
	}
	if (!rc) {
		memcpy(out->digest, m.digest, DIGEST_LEN);
		out->config_digest = xstrdup(p.jobs[0].digest);
		char key[REF_STR_MAX];
		image_ref_canonical(ref, key, sizeof key);
		out->name = xstrdup(key); /* recorded as image_load records names (image_name_key) */
		out->names = xcalloc(2, sizeof *out->names);
		out->names[0] = xstrdup(key);
		progress(&p, 0, false, "done");
	}
	free(p.jobs);
	pthread_mutex_destroy(&p.mu);
	json_free(cfgdoc);
	buf_free(&cb_bytes);
	manifest_free(&m);
	return rc;
}

/* ==== entry points ==== */

/* The endpoints to try for ref, in order: the mirror first for Docker Hub. */
static size_t endpoints_of(const struct reg_config *cfg, const struct image_ref *ref, const char *out[2])
{
	size_t n = 0;
	bool hub = !strcmp(ref->domain, HUB_DOMAIN);
	if (hub && cfg->mirror && cfg->mirror[0])
		out[n++] = cfg->mirror;
	out[n++] = hub ? REG_HUB_ENDPOINT : ref->domain;
	return n;
}

int registry_resolve(const struct reg_config *cfg, const struct image_ref *ref, char digest[DIGEST_LEN],
		     char *media_type, size_t mtsize, char *err)
{
	const char *eps[2];
	size_t n = endpoints_of(cfg, ref, eps);
	int rc = E_FAIL;
	for (size_t i = 0; i < n; i++) {
		struct regsess s;
		struct http_conn c;
		memset(&c, 0, sizeof c);
		c.fd = -1;
		struct manifest m = {0};
		rc = regsess_init(&s, cfg, ref, eps[i], err);
		if (!rc)
			rc = get_manifest(&s, &c, ref->digest[0] ? ref->digest : ref->tag, &m, err);
		if (!rc) {
			memcpy(digest, m.digest, DIGEST_LEN);
			if (media_type)
				snprintf(media_type, mtsize, "%s", m.media_type);
		}
		http_close(&c);
		manifest_free(&m);
		regsess_fini(&s);
		if (!rc || i + 1 == n)
			break;
		TRACE("registry", ref->path, "mirror %s failed, trying Docker Hub: %s", eps[i], err);
	}
	return rc;
}

int registry_pull(const struct reg_config *cfg, const struct blobstore *bs, const struct image_ref *ref,
		  struct image_info *out, reg_progress_fn progress_cb, void *pctx, char *err)
{
	memset(out, 0, sizeof *out);
	const char *eps[2];
	size_t n = endpoints_of(cfg, ref, eps);
	int rc = E_FAIL;
	for (size_t i = 0; i < n; i++) {
		struct regsess s;
		rc = regsess_init(&s, cfg, ref, eps[i], err);
		if (!rc)
			rc = pull_from(&s, bs, ref, out, progress_cb, pctx, err);
		regsess_fini(&s);
		if (!rc)
			break;
		image_info_free(out);
		if (i + 1 < n)
			TRACE("registry", ref->path, "mirror %s failed, trying Docker Hub: %s", eps[i], err);
	}
	if (!rc)
		TRACE("image", out->digest, "pulled %s: %zu layers, %llu bytes", out->name, out->nlayers,
		      (unsigned long long)out->size);
	return rc;
}
