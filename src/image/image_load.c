#include "image/image_load.h"
#include "codec/json.h"
#include "image/blobstore.h"
#include "image/fsutil.h"
#include "image/ref.h"
#include "image/tar.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_MAX JSON_MAX_SIZE   /* manifests, configs, index.json */
#define INMEM_MAX (64 * 1024)     /* small archive members are kept in memory */
#define MAX_MEMBERS 100000

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

/* ==== archive sources: an extracted directory or a tar read once ==== */

/* One tar member: small ones and metadata in memory, big ones already streamed into the
 * blob store (so a multi-GB layer is read exactly once). */
struct member {
	char *name;
	char *link;          /* symlink target (old docker save dedups layers this way) */
	bool in_mem;
	struct buf mem;
	char digest[DIGEST_LEN];
	bool created;        /* this load added the blob to the store */
	bool used;
	uint64_t size;
};

struct src {
	const char *path;
	char label[300]; /* "image <path>", the prefix of messages */
	char *dir;           /* directory source */
	struct member *m;    /* tar source */
	size_t n, cap;
	struct blobstore *bs;
};

/* Archive member names as written by tar, docker and skopeo: "./x", "x", "/x". */
static char *norm_name(const char *in)
{
	while (in[0] == '.' && in[1] == '/')
		in += 2;
	while (in[0] == '/')
		in++;
	return xstrdup(in);
}

static bool safe_rel(const char *name)
{
	if (!name[0] || name[0] == '/')
		return false;
	for (const char *p = name; *p;) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		if (l == 2 && !memcmp(p, "..", 2))
			return false;
		p += l;
		if (*p)
			p++;
	}
	return true;
}

static bool is_meta_name(const char *n)
{
	size_t l = strlen(n);
	return (l >= 5 && !strcmp(n + l - 5, ".json")) || !strcmp(n, "oci-layout") || !strcmp(n, "repositories");
}

/* "blobs/sha256/<hex>" → "sha256:<hex>" when it names a valid digest. */
static bool blob_name_digest(const char *name, char *out)
{
	if (strncmp(name, "blobs/sha256/", 13))
		return false;
	snprintf(out, DIGEST_LEN, "sha256:%s", name + 13);
	return digest_valid(out);
}

static struct member *find_member(struct src *s, const char *name)
{
	char *n = norm_name(name);
	struct member *hit = NULL;
	for (int hops = 0; hops < 8; hops++) {
		hit = NULL;
		for (size_t i = s->n; i-- > 0;)
			if (!strcmp(s->m[i].name, n)) {
				hit = &s->m[i];
				break;
			}
		if (!hit || !hit->link)
			break;
		/* symlink target relative to the member's directory */
		char *slash = strrchr(n, '/');
		char *t = slash ? xasprintf("%.*s/%s", (int)(slash - n), n, hit->link) : xstrdup(hit->link);
		free(n);
		/* fold "dir/../x" */
		char *dd;
		while ((dd = strstr(t, "/../"))) {
			char *start = dd;
			while (start > t && start[-1] != '/')
				start--;
			memmove(start, dd + 4, strlen(dd + 4) + 1);
		}
		n = norm_name(t);
		free(t);
		hit = NULL;
	}
	free(n);
	return hit && !hit->link ? hit : NULL;
}

static int read_archive(struct src *s, int fd, char *err)
{
	struct tar_reader tr;
	char label[300];
	snprintf(label, sizeof label, "image archive %.250s", s->path);
	int rc = tar_open(&tr, fd, label, err);
	struct tar_entry *e;
	int k = 0;
	while (!rc && (k = tar_next(&tr, &e, err)) > 0) {
		if (e->type != TAR_REG && e->type != TAR_SYMLINK)
			continue;
		if (s->n >= MAX_MEMBERS) {
			rc = errf(err, E_INVAL, "%s: more than %d files: not an image archive", label, MAX_MEMBERS);
			break;
		}
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 32;
			s->m = xrealloc(s->m, s->cap * sizeof *s->m);
		}
		struct member *m = &s->m[s->n];
		memset(m, 0, sizeof *m);
		m->name = norm_name(e->path);
		m->size = e->size;
		s->n++;
		if (e->type == TAR_SYMLINK) {
			m->link = xstrdup(e->linkpath);
			continue;
		}
		bool meta = is_meta_name(m->name);
		if (meta && e->size > META_MAX) {
			rc = errf(err, E_INVAL, "%s: %s is %llu bytes: too large for image metadata", label, m->name,
				  (unsigned long long)e->size);
			break;
		}
		char expect[DIGEST_LEN];
		bool named = blob_name_digest(m->name, expect);
		if (meta || e->size <= INMEM_MAX) {
			m->in_mem = true;
			buf_reserve(&m->mem, (size_t)e->size + 1);
			ssize_t r;
			while ((r = tar_read(&tr, m->mem.data + m->mem.len, (size_t)e->size - m->mem.len, err)) > 0)
				m->mem.len += (size_t)r;
			if (r < 0)
				rc = (int)r;
			continue;
		}
		struct blob_writer w;
		if ((rc = blob_writer_begin(&w, s->bs, err)))
			break;
		uint8_t *b = xmalloc(1 << 16);
		ssize_t r;
		while ((r = tar_read(&tr, b, 1 << 16, err)) > 0)
			if ((rc = blob_writer_write(&w, b, (size_t)r, err)))
				break;
		free(b);
		if (r < 0)
			rc = (int)r;
		if (rc) {
			blob_writer_abort(&w);
			break;
		}
		if ((rc = blob_writer_commit(&w, named ? expect : NULL, m->digest, &m->created, err)))
			errwrap(err, rc, "%s: %s", label, m->name);
	}
	if (!rc && k < 0)
		rc = k;
	tar_close(&tr);
	return rc;
}

static int src_open(struct src *s, const char *path, struct blobstore *bs, char *err)
{
	memset(s, 0, sizeof *s);
	s->path = path;
	snprintf(s->label, sizeof s->label, "image %.290s", path);
	s->bs = bs;
	struct stat st;
	if (stat(path, &st))
		return errf(err, errno == ENOENT ? E_NOTFOUND : E_IO, "image %s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		s->dir = xstrdup(path);
		return 0;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errf(err, E_IO, "image %s: %s", path, strerror(errno));
	int rc = read_archive(s, fd, err);
	close(fd);
	return rc;
}

/* Drops blobs that this load streamed into the store but nothing referenced
 * (e.g. legacy per-layer files of docker save), or all new ones after a failure. */
static void src_close(struct src *s, bool failed)
{
	for (size_t i = 0; i < s->n; i++) {
		struct member *m = &s->m[i];
		if (m->created && (failed || !m->used)) {
			char *p = blob_path(s->bs, m->digest);
			if (p)
				unlink(p);
			free(p);
		}
		free(m->name);
		free(m->link);
		buf_free(&m->mem);
	}
	free(s->m);
	free(s->dir);
}

static bool src_has(struct src *s, const char *name)
{
	if (s->dir) {
		char *p = xasprintf("%s/%s", s->dir, name);
		struct stat st;
		bool ok = stat(p, &st) == 0;
		free(p);
		return ok;
	}
	return find_member(s, name) != NULL;
}

/* Checks a member name and, for a layout directory, opens the file (*fd; -1 for an
 * archive, whose members are found with find_member). */
static int open_member(struct src *s, const char *name, int *fd, char *err)
{
	*fd = -1;
	if (!safe_rel(name))
		return errf(err, E_INVAL, "image %s: refers to \"%.200s\": not a path inside the archive", s->path, name);
	if (!s->dir)
		return 0;
	char *p = xasprintf("%s/%s", s->dir, name);
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (*fd < 0)
		return errf(err, errno == ENOENT ? E_NOTFOUND : E_IO, "image %s: %s: %s", s->path, name, strerror(errno));
	return 0;
}

/* The bytes of a small member (manifest.json, a config). */
static int src_bytes(struct src *s, const char *name, struct buf *out, char *err)
{
	int fd = -1, rc = open_member(s, name, &fd, err);
	if (rc)
		return rc;
	if (fd >= 0) {
		for (;;) {
			buf_reserve(out, 65536);
			ssize_t r = read(fd, out->data + out->len, 65536);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rc = errf(err, E_IO, "image %s: read %s: %s", s->path, name, strerror(errno));
				break;
			}
			if (r == 0)
				break;
			out->len += (size_t)r;
			if (out->len > META_MAX) {
				rc = errf(err, E_INVAL, "image %s: %s is too large for image metadata", s->path, name);
				break;
			}
		}
		close(fd);
		return rc;
	}
	struct member *m = find_member(s, name);
	if (!m)
		return errf(err, E_NOTFOUND, "image %s: %s is missing from the archive", s->path, name);
	if (m->in_mem) {
		buf_append(out, m->mem.data, m->mem.len);
		return 0;
	}
	if (m->size > META_MAX)
		return errf(err, E_INVAL, "image %s: %s is too large for image metadata", s->path, name);
	return blob_read_all(s->bs, m->digest, META_MAX, out, err);
}

/* Puts a member into the blob store, verified against expected when given. */
static int src_blob(struct src *s, const char *name, const char *expected, char *out, char *err)
{
	char se[32];
	digest_short(expected, se, sizeof se);
	int fd = -1, rc = open_member(s, name, &fd, err);
	if (rc)
		return rc;
	if (fd >= 0) {
		rc = blob_put_file(s->bs, expected, fd, -1, out, err);
		close(fd);
		return rc ? errwrap(err, rc, "image %s: %s", s->path, name) : 0;
	}
	struct member *m = find_member(s, name);
	if (!m)
		return errf(err, E_NOTFOUND, "image %s: %s is missing from the archive", s->path, name);
	m->used = true;
	if (m->in_mem) {
		rc = blob_put_mem(s->bs, expected, m->mem.data, m->mem.len, out, err);
		return rc ? errwrap(err, rc, "image %s: %s", s->path, name) : 0;
	}
	if (expected && strcmp(expected, m->digest)) {
		char sg[32];
		digest_short(m->digest, sg, sizeof sg);
		return errf(err, E_INVAL, "image %s: %s: content hashes to %s, expected %s: corrupt or tampered data rejected",
			    s->path, name, sg, se);
	}
	memcpy(out, m->digest, DIGEST_LEN);
	return 0;
}

/* ==== parsing helpers ==== */

static int parse_doc(struct src *s, const char *name, const struct buf *b, struct json **out, char *err)
{
	int rc = json_parse((const char *)b->data, b->len, out, err);
	return rc ? errwrap(err, rc, "image %s: %s", s->path, name) : 0;
}

static char **strv_from_json(const struct json *a, bool *bad)
{
	if (!a || a->type == JSON_NULL)
		return NULL;
	if (a->type != JSON_ARR) {
		*bad = true;
		return NULL;
	}
	char **v = xcalloc(a->n + 1, sizeof *v);
	for (size_t i = 0; i < a->n; i++) {
		const char *str = json_str(a->items[i]);
		if (!str) {
			*bad = true;
			str = "";
		}
		v[i] = xstrdup(str);
	}
	return v;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static char *opt_str(const struct json *o, const char *key)
{
	const char *v = json_get_str(o, key);
	return v && v[0] ? xstrdup(v) : NULL;
}

int image_config_parse(const struct json *cfg, const char *label, struct image_info *out, const struct json **diff_ids,
		       char *err)
{
	if (!json_is(cfg, JSON_OBJ))
		return errf(err, E_INVAL, "%s: config is not a JSON object", label);
	const struct json *c = json_get(cfg, "config");
	if (!c)
		c = json_get(cfg, "Config"); /* very old docker */
	bool bad = false;
	if (c && c->type == JSON_OBJ) {
		out->entrypoint = strv_from_json(json_get(c, "Entrypoint"), &bad);
		out->cmd = strv_from_json(json_get(c, "Cmd"), &bad);
		out->env = strv_from_json(json_get(c, "Env"), &bad);
		out->workdir = opt_str(c, "WorkingDir");
		out->user = opt_str(c, "User");
		const struct json *hc = json_get(c, "Healthcheck");
		if (hc && hc->type == JSON_OBJ) {
			out->health_test = strv_from_json(json_get(hc, "Test"), &bad);
			uint64_t ns = 0;
			if (!json_u64(json_get(hc, "Interval"), &ns))
				out->health_interval_ms = ns / 1000000;
			if (!json_u64(json_get(hc, "Timeout"), &ns))
				out->health_timeout_ms = ns / 1000000;
			if (!json_u64(json_get(hc, "StartPeriod"), &ns))
				out->health_start_ms = ns / 1000000;
			json_u64(json_get(hc, "Retries"), &out->health_retries);
		}
	}
	if (bad)
		return errf(err, E_INVAL, "%s: config: Entrypoint, Cmd and Env must be arrays of strings", label);
	const struct json *ids = json_get(json_get(cfg, "rootfs"), "diff_ids");
	if (!json_is(ids, JSON_ARR))
		return errf(err, E_INVAL, "%s: config has no rootfs.diff_ids", label);
	for (size_t i = 0; i < ids->n; i++)
		if (!digest_valid(json_str(ids->items[i])))
			return errf(err, E_INVAL, "%s: config: rootfs.diff_ids[%zu] is not a sha256 digest", label, i);
	*diff_ids = ids;
	return 0;
}

int image_layer_check(const struct blobstore *bs, const char *label, size_t i, const char *name, const char *blob,
		      const char *want, char *err)
{
	char got[DIGEST_LEN];
	int rc = blob_diff_id(bs, blob, got, err);
	if (rc)
		return errwrap(err, rc, "%s: layer %zu (%s)", label, i, name);
	if (strcmp(got, want)) {
		char sg[32], sw[32];
		digest_short(got, sg, sizeof sg);
		digest_short(want, sw, sizeof sw);
		return errf(err, E_INVAL, "%s: layer %zu (%s) content hashes to %s but the config says %s: "
			    "corrupt or tampered layer rejected", label, i, name, sg, sw);
	}
	return 0;
}

void image_info_add_layer(struct image_info *out, const char *digest)
{
	out->layers = xrealloc(out->layers, (out->nlayers + 2) * sizeof *out->layers);
	out->layers[out->nlayers++] = xstrdup(digest);
	out->layers[out->nlayers] = NULL;
}

static uint64_t blob_size(struct src *s, const char *digest)
{
	char *p = blob_path(s->bs, digest);
	struct stat st;
	uint64_t n = p && stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
	free(p);
	return n;
}

struct image_list {
	struct image_info *v;
	size_t n;
};

static struct image_info *list_add(struct image_list *l)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	memset(&l->v[l->n], 0, sizeof *l->v);
	return &l->v[l->n++];
}

/* Records a name in its canonical form (image_name_key), once. */
static void add_name(struct image_info *im, const char *name)
{
	char key[IMAGE_NAME_MAX];
	image_name_key(name, key, sizeof key);
	size_t n = 0;
	for (; im->names && im->names[n]; n++)
		if (!strcmp(im->names[n], key))
			return;
	im->names = xrealloc(im->names, (n + 2) * sizeof *im->names);
	im->names[n] = xstrdup(key);
	im->names[n + 1] = NULL;
	if (!im->name)
		im->name = xstrdup(key);
}

/* ==== docker-archive ==== */

/* One entry of manifest.json: {"Config", "RepoTags", "Layers"}. */
static int load_docker_one(struct src *s, const struct json *ent, struct image_info *out, char *err)
{
	struct buf cb = {0};
	struct json *cfg = NULL;
	const char *cfgname = json_get_str(ent, "Config");
	const struct json *layers = json_get(ent, "Layers");
	int rc = 0;
	if (!json_is(ent, JSON_OBJ) || !cfgname || !json_is(layers, JSON_ARR))
		return errf(err, E_INVAL, "image %s: manifest.json: expected [{\"Config\", \"RepoTags\", \"Layers\"}]", s->path);
	if (layers->n > IMAGE_MAX_LAYERS)
		return errf(err, E_UNSUPP, "image %s: %zu layers exceed the limit of %d", s->path, layers->n, IMAGE_MAX_LAYERS);
	rc = src_bytes(s, cfgname, &cb, err);
	char cdig[DIGEST_LEN];
	if (!rc) {
		/* The config's name is its digest ("<hex>.json" or "blobs/sha256/<hex>"). */
		sha256_digest(cb.data, cb.len, cdig);
		const char *base = strrchr(cfgname, '/');
		base = base ? base + 1 : cfgname;
		char named[DIGEST_LEN];
		snprintf(named, sizeof named, "sha256:%.64s", base);
		if (digest_valid(named) && strcmp(named, cdig)) {
			char sg[32];
			digest_short(cdig, sg, sizeof sg);
			rc = errf(err, E_INVAL, "image %s: config %s hashes to %s: corrupt or tampered config rejected",
				  s->path, cfgname, sg);
		}
	}
	if (!rc)
		rc = src_blob(s, cfgname, cdig, cdig, err);
	if (!rc)
		rc = parse_doc(s, cfgname, &cb, &cfg, err);
	const struct json *diff_ids = NULL;
	if (!rc)
		rc = image_config_parse(cfg, s->label, out, &diff_ids, err);
	if (!rc && diff_ids->n != layers->n)
		rc = errf(err, E_INVAL, "image %s: manifest lists %zu layers but the config has %zu diff_ids", s->path,
			  layers->n, diff_ids->n);
	if (!rc) {
		out->config_digest = xstrdup(cdig);
		memcpy(out->digest, cdig, sizeof cdig);
		out->size = cb.len;
		/* every tag: skopeo and buildah write several */
		const struct json *tags = json_get(ent, "RepoTags");
		for (size_t i = 0; json_is(tags, JSON_ARR) && i < tags->n; i++) {
			const char *tag = json_str(tags->items[i]);
			if (tag && tag[0])
				add_name(out, tag);
		}
	}
	for (size_t i = 0; !rc && i < layers->n; i++) {
		const char *ln = json_str(layers->items[i]);
		char dig[DIGEST_LEN];
		if (!ln) {
			rc = errf(err, E_INVAL, "image %s: manifest.json: Layers[%zu] is not a string", s->path, i);
			break;
		}
		if ((rc = src_blob(s, ln, NULL, dig, err)))
			break;
		if ((rc = image_layer_check(s->bs, s->label, i, ln, dig, json_str(diff_ids->items[i]), err)))
			break;
		image_info_add_layer(out, dig);
		out->size += blob_size(s, dig);
	}
	json_free(cfg);
	buf_free(&cb);
	return rc;
}

static int load_docker(struct src *s, struct image_list *out, char *err)
{
	struct buf b = {0};
	struct json *man = NULL;
	int rc = src_bytes(s, "manifest.json", &b, err);
	if (!rc)
		rc = parse_doc(s, "manifest.json", &b, &man, err);
	if (!rc && (!json_is(man, JSON_ARR) || man->n == 0))
		rc = errf(err, E_INVAL, "image %s: manifest.json: expected [{\"Config\", \"RepoTags\", \"Layers\"}]", s->path);
	if (!rc && man->n > IMAGE_MAX_PER_ARCHIVE)
		rc = errf(err, E_UNSUPP, "image %s: %zu images exceed the limit of %d per archive", s->path, man->n,
			  IMAGE_MAX_PER_ARCHIVE);
	for (size_t i = 0; !rc && i < man->n; i++)
		rc = load_docker_one(s, man->items[i], list_add(out), err);
	json_free(man);
	buf_free(&b);
	return rc;
}

/* ==== OCI image layout ==== */

static int desc_digest(struct src *s, const struct json *d, const char *what, char *out, char *err)
{
	const char *dig = json_get_str(d, "digest");
	if (!digest_valid(dig))
		return errf(err, E_INVAL, "image %s: %s: missing or unsupported digest \"%.80s\" (sha256 only)", s->path,
			    what, dig ? dig : "");
	snprintf(out, DIGEST_LEN, "%s", dig);
	return 0;
}

/* Stores a descriptor's blob (verified) and, for metadata, returns its bytes. */
static int fetch_desc(struct src *s, const struct json *d, const char *what, char *dig, struct buf *bytes, char *err)
{
	int rc = desc_digest(s, d, what, dig, err);
	if (rc)
		return rc;
	char *name = xasprintf("blobs/sha256/%s", dig + 7);
	rc = src_blob(s, name, dig, dig, err);
	free(name);
	uint64_t want;
	if (!rc && json_u64(json_get(d, "size"), &want) == 0 && want != blob_size(s, dig))
		rc = errf(err, E_INVAL, "image %s: %s: blob is %llu bytes, descriptor says %llu", s->path, what,
			  (unsigned long long)blob_size(s, dig), (unsigned long long)want);
	if (!rc && bytes)
		rc = blob_read_all(s->bs, dig, META_MAX, bytes, err);
	return rc;
}

static bool platform_ok(const struct json *d)
{
	const struct json *p = json_get(d, "platform");
	if (!p)
		return true;
	const char *os = json_get_str(p, "os"), *arch = json_get_str(p, "architecture");
	return (!os || !strcmp(os, "linux")) && (!arch || !strcmp(arch, "amd64"));
}

/* Picks the image manifest descriptor of an index: the first for linux/amd64 (or with
 * no platform), following one level of nested index. */
static int pick_manifest(struct src *s, const struct json *index, int depth, struct json **owned,
			 const struct json **out, char *err)
{
	const struct json *ms = json_get(index, "manifests");
	if (!json_is(ms, JSON_ARR) || ms->n == 0)
		return errf(err, E_INVAL, "image %s: index lists no manifests", s->path);
	for (size_t i = 0; i < ms->n; i++) {
		const struct json *d = ms->items[i];
		if (!platform_ok(d))
			continue;
		const char *mt = json_get_str(d, "mediaType");
		if (mt && (!strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST))) {
			if (depth > 0)
				return errf(err, E_UNSUPP, "image %s: indexes nested too deeply", s->path);
			char dig[DIGEST_LEN];
			struct buf b = {0};
			struct json *sub = NULL;
			int rc = fetch_desc(s, d, "nested index", dig, &b, err);
			if (!rc)
				rc = parse_doc(s, "nested index", &b, &sub, err);
			buf_free(&b);
			if (!rc)
				rc = pick_manifest(s, sub, depth + 1, owned, out, err);
			if (rc) {
				json_free(sub);
				return rc;
			}
			*owned = sub; /* *out points into it */
			return 0;
		}
		*out = d;
		return 0;
	}
	return errf(err, E_NOTFOUND, "image %s: no manifest for linux/amd64", s->path);
}

/* "demo:latest" from the ref.name annotation; a bare tag gets the archive's base name. */
static char *oci_name(struct src *s, const struct json *d)
{
	const struct json *ann = json_get(d, "annotations");
	const char *ref = json_get_str(ann, "org.opencontainers.image.ref.name");
	const char *full = json_get_str(ann, "io.containerd.image.name");
	if (ref && (strchr(ref, ':') || strchr(ref, '/')))
		return xstrdup(ref);
	if (full && full[0])
		return xstrdup(full);
	if (!ref || !ref[0])
		return NULL;
	const char *b = strrchr(s->path, '/');
	b = b && b[1] ? b + 1 : s->path;
	size_t l = strcspn(b, ".");
	return l ? xasprintf("%.*s:%s", (int)l, b, ref) : xstrdup(ref);
}

/* One image: the manifest desc names (already the platform's), loaded into out. */
static int load_oci_one(struct src *s, const struct json *desc, struct image_info *out, char *err)
{
	struct buf mb = {0}, cb = {0};
	struct json *man = NULL, *cfg = NULL;
	char mdig[DIGEST_LEN], cdig[DIGEST_LEN];
	int rc = fetch_desc(s, desc, "manifest", mdig, &mb, err);
	if (!rc)
		rc = parse_doc(s, "manifest", &mb, &man, err);
	const struct json *layers = json_get(man, "layers");
	if (!rc && !json_is(layers, JSON_ARR))
		rc = errf(err, E_INVAL, "image %s: manifest has no layers array", s->path);
	if (!rc && layers->n > IMAGE_MAX_LAYERS)
		rc = errf(err, E_UNSUPP, "image %s: %zu layers exceed the limit of %d", s->path, layers->n, IMAGE_MAX_LAYERS);
	if (!rc)
		rc = fetch_desc(s, json_get(man, "config"), "config", cdig, &cb, err);
	if (!rc)
		rc = parse_doc(s, "config", &cb, &cfg, err);
	const struct json *diff_ids = NULL;
	if (!rc)
		rc = image_config_parse(cfg, s->label, out, &diff_ids, err);
	if (!rc && diff_ids->n != layers->n)
		rc = errf(err, E_INVAL, "image %s: manifest lists %zu layers but the config has %zu diff_ids", s->path,
			  layers->n, diff_ids->n);
	if (!rc) {
		memcpy(out->digest, mdig, sizeof mdig);
		out->config_digest = xstrdup(cdig);
		out->size = mb.len + cb.len;
	}
	for (size_t i = 0; !rc && i < layers->n; i++) {
		const struct json *d = layers->items[i];
		const char *mt = json_get_str(d, "mediaType");
		char what[64], dig[DIGEST_LEN];
		snprintf(what, sizeof what, "layer %zu", i);
		/* The compression is told by the bytes (image/zsrc.h); the media type only has
		 * to name a tar (foreign and encrypted layers are refused). */
		if (mt && ((!strstr(mt, "tar") && !strstr(mt, "rootfs")) || strstr(mt, "encrypted"))) {
			rc = errf(err, E_UNSUPP, "image %s: layer %zu has media type %.100s: only tar layers (plain, gzip or zstd) are supported",
				  s->path, i, mt);
			break;
		}
		if ((rc = fetch_desc(s, d, what, dig, NULL, err)))
			break;
		if ((rc = image_layer_check(s->bs, s->label, i, what, dig, json_str(diff_ids->items[i]), err)))
			break;
		image_info_add_layer(out, dig);
		out->size += blob_size(s, dig);
	}
	json_free(man);
	json_free(cfg);
	buf_free(&mb);
	buf_free(&cb);
	return rc;
}

static bool is_index(const struct json *d)
{
	const char *mt = json_get_str(d, "mediaType");
	return mt && (!strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST));
}

/* Every image of index.json: each entry is an image manifest or a multi-platform index
 * (this node's platform picked from it), named by the entry's annotations; entries for
 * other platforms are skipped, and a name met twice keeps its first image. */
static int load_oci(struct src *s, struct image_list *out, char *err)
{
	struct buf lb = {0}, ib = {0};
	struct json *layout = NULL, *index = NULL;
	int rc = src_bytes(s, "oci-layout", &lb, err);
	if (!rc)
		rc = parse_doc(s, "oci-layout", &lb, &layout, err);
	if (!rc && !json_get_str(layout, "imageLayoutVersion"))
		rc = errf(err, E_INVAL, "image %s: oci-layout has no imageLayoutVersion", s->path);
	if (!rc)
		rc = src_bytes(s, "index.json", &ib, err);
	if (!rc)
		rc = parse_doc(s, "index.json", &ib, &index, err);
	const struct json *ms = json_get(index, "manifests");
	if (!rc && (!json_is(ms, JSON_ARR) || ms->n == 0))
		rc = errf(err, E_INVAL, "image %s: index lists no manifests", s->path);
	if (!rc && ms->n > IMAGE_MAX_PER_ARCHIVE)
		rc = errf(err, E_UNSUPP, "image %s: %zu images exceed the limit of %d per archive", s->path, ms->n,
			  IMAGE_MAX_PER_ARCHIVE);
	size_t first = out->n;
	for (size_t i = 0; !rc && i < ms->n; i++) {
		const struct json *d = ms->items[i], *desc = d;
		if (!platform_ok(d))
			continue;
		char *name = oci_name(s, d);
		bool dup = false;
		for (size_t k = first; name && k < out->n; k++)
			dup |= out->v[k].names && !strcmp(out->v[k].names[0], name);
		if (dup) {
			free(name);
			continue;
		}
		struct json *nested = NULL, *owned = NULL;
		if (is_index(d)) {
			char dig[DIGEST_LEN];
			struct buf b = {0};
			rc = fetch_desc(s, d, "nested index", dig, &b, err);
			if (!rc)
				rc = parse_doc(s, "nested index", &b, &nested, err);
			buf_free(&b);
			if (!rc)
				rc = pick_manifest(s, nested, 1, &owned, &desc, err);
		}
		if (!rc) {
			struct image_info *im = list_add(out);
			if (name)
				add_name(im, name);
			rc = load_oci_one(s, desc, im, err);
		}
		json_free(owned);
		json_free(nested);
		free(name);
	}
	if (!rc && out->n == first)
		rc = errf(err, E_NOTFOUND, "image %s: no manifest for linux/amd64", s->path);
	json_free(layout);
	json_free(index);
	buf_free(&lb);
	buf_free(&ib);
	return rc;
}

/* ==== entry points ==== */

int image_load_all(const char *blobdir, const char *path, struct image_info **out, size_t *n, char *err)
{
	*out = NULL;
	*n = 0;
	struct blobstore bs;
	int rc = blob_init(&bs, blobdir, err);
	if (rc)
		return rc;
	struct image_list l = {0};
	struct src s;
	rc = src_open(&s, path, &bs, err);
	if (!rc) {
		/* docker save (v25+) writes both formats; manifest.json carries the tags. */
		if (src_has(&s, "manifest.json"))
			rc = load_docker(&s, &l, err);
		else if (src_has(&s, "index.json"))
			rc = load_oci(&s, &l, err);
		else
			rc = errf(err, E_INVAL, "image %s: neither a docker-archive (manifest.json) nor an OCI layout (index.json)", path);
	}
	for (size_t i = 0; !rc && i < l.n; i++) {
		struct image_info *im = &l.v[i];
		if (!im->name) {
			char sd[32];
			digest_short(im->digest, sd, sizeof sd);
			add_name(im, sd);
		}
		TRACE("image", im->digest, "loaded %s from %s: %zu layers, %llu bytes", im->name, path, im->nlayers,
		      (unsigned long long)im->size);
	}
	src_close(&s, rc != 0);
	blob_fini(&bs);
	if (rc) {
		image_list_free(l.v, l.n);
		return rc;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

int image_load(const char *blobdir, const char *path, struct image_info *out, char *err)
{
	memset(out, 0, sizeof *out);
	struct image_info *v;
	size_t n;
	int rc = image_load_all(blobdir, path, &v, &n, err);
	if (rc)
		return rc;
	*out = v[0];
	for (size_t i = 1; i < n; i++)
		image_info_free(&v[i]);
	free(v);
	return 0;
}

void image_list_free(struct image_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		image_info_free(&v[i]);
	free(v);
}

/* Names that are not references (the short digest an unnamed image gets) stay as they
 * are: "sha256:ab12…" would otherwise read as repository "sha256", tag "ab12…". */
void image_name_key(const char *name, char *out, size_t n)
{
	char err[ERR_LEN];
	if (strncmp(name, "sha256:", 7) && image_ref_normalise(name, out, n, err) == 0)
		return;
	snprintf(out, n, "%s", name);
}

void image_name_show(const char *key, char *out, size_t n)
{
	struct image_ref r;
	char err[ERR_LEN];
	if (strncmp(key, "sha256:", 7) && image_ref_parse(key, &r, err) == 0)
		image_ref_familiar(&r, out, n);
	else
		snprintf(out, n, "%s", key);
}

void image_info_free(struct image_info *im)
{
	free(im->name);
	strv_free(im->names);
	strv_free(im->layers);
	free(im->config_digest);
	strv_free(im->entrypoint);
	strv_free(im->cmd);
	strv_free(im->env);
	free(im->workdir);
	free(im->user);
	strv_free(im->health_test);
	memset(im, 0, sizeof *im);
}

/* ==== msgpack ==== */

static void enc_strv(struct mpw *w, const char *key, char **v)
{
	mpw_key(w, key);
	if (!v) {
		mpw_nil(w);
		return;
	}
	uint32_t n = 0;
	while (v[n])
		n++;
	mpw_arr(w, n);
	for (uint32_t i = 0; i < n; i++)
		mpw_str(w, v[i]);
}

void image_info_encode(const struct image_info *im, struct mpw *w)
{
	mpw_map_begin(w);
	mpw_ku64(w, "v", 1);
	mpw_kstr(w, "name", im->name);
	mpw_kstr(w, "digest", im->digest);
	mpw_ku64(w, "size", im->size);
	enc_strv(w, "layers", im->layers);
	mpw_kstr(w, "config", im->config_digest);
	enc_strv(w, "entrypoint", im->entrypoint);
	enc_strv(w, "cmd", im->cmd);
	enc_strv(w, "env", im->env);
	mpw_kstr(w, "workdir", im->workdir);
	mpw_kstr(w, "user", im->user);
	if (im->health_test) { /* only when present: older records stay byte-identical */
		enc_strv(w, "health_test", im->health_test);
		mpw_ku64(w, "health_interval_ms", im->health_interval_ms);
		mpw_ku64(w, "health_timeout_ms", im->health_timeout_ms);
		mpw_ku64(w, "health_start_ms", im->health_start_ms);
		mpw_ku64(w, "health_retries", im->health_retries);
	}
	mpw_map_end(w);
}

/* NULL/nil → absent (ok); an array of strings → copy; anything else → error. */
static int dec_strv(const msgpack_object *o, char ***out, size_t *n)
{
	*out = NULL;
	if (n)
		*n = 0;
	if (!o || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	char **v = xcalloc(o->via.array.size + 1, sizeof *v);
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];
		if (!mp_is_str(e) || memchr(e->via.str.ptr, 0, e->via.str.size)) {
			strv_free(v);
			return -1;
		}
		v[i] = mp_as_strdup(e);
	}
	*out = v;
	if (n)
		*n = o->via.array.size;
	return 0;
}

static int dec_optstr(const msgpack_object *map, const char *key, char **out)
{
	const msgpack_object *o = mp_get(map, key);
	*out = NULL;
	if (!o || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (!mp_is_str(o) || memchr(o->via.str.ptr, 0, o->via.str.size))
		return -1;
	*out = mp_as_strdup(o);
	return 0;
}

int image_info_decode(const msgpack_object *o, struct image_info *out, char *err)
{
	memset(out, 0, sizeof *out);
	uint64_t v;
	if (!o || o->type != MSGPACK_OBJECT_MAP || mp_get_u64(o, "v", &v))
		return errf(err, E_INVAL, "image record: not a versioned map");
	if (v != 1)
		return errf(err, E_UNSUPP, "image record: version %llu is newer than this orch understands", (unsigned long long)v);
	int bad = mp_get_strbuf(o, "digest", out->digest, sizeof out->digest) || !digest_valid(out->digest) ||
		  mp_get_u64(o, "size", &out->size);
	bad = bad || dec_optstr(o, "name", &out->name) || !out->name;
	bad = bad || dec_optstr(o, "config", &out->config_digest) || !digest_valid(out->config_digest);
	bad = bad || dec_strv(mp_get(o, "layers"), &out->layers, &out->nlayers) || !out->layers;
	for (size_t i = 0; !bad && i < out->nlayers; i++)
		bad = !digest_valid(out->layers[i]);
	bad = bad || dec_strv(mp_get(o, "entrypoint"), &out->entrypoint, NULL) ||
	      dec_strv(mp_get(o, "cmd"), &out->cmd, NULL) || dec_strv(mp_get(o, "env"), &out->env, NULL) ||
	      dec_optstr(o, "workdir", &out->workdir) || dec_optstr(o, "user", &out->user) ||
	      dec_strv(mp_get(o, "health_test"), &out->health_test, NULL);
	mp_get_u64(o, "health_interval_ms", &out->health_interval_ms);
	mp_get_u64(o, "health_timeout_ms", &out->health_timeout_ms);
	mp_get_u64(o, "health_start_ms", &out->health_start_ms);
	mp_get_u64(o, "health_retries", &out->health_retries);
	if (bad) {
		image_info_free(out);
		return errf(err, E_INVAL, "image record: missing or malformed field");
	}
	return 0;
}
