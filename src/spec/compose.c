/* The Compose front end (see compose.h): every file is loaded, checked for nesting depth
 * and interpolated on its own (as Compose interpolates per file, before merging), its
 * include: entries are folded in, the -f files are merged in order into one document
 * (spec/ydoc.h), extends: is resolved, profiles select the services, and the keys that are
 * Compose's business rather than the spec's (env_file, build, ...) are rewritten or dropped.
 * What is left is parsed by spec_yaml.c against the field lists. */
#include "spec/compose.h"
#include "spec/dotenv.h"
#include "spec/interp.h"
#include "spec/ydoc.h"
#include "util/err.h"
#include "util/mem.h"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPEC_FILE_MAX (16u << 20)
/* Compose files nest a handful of levels; the cap keeps libyaml's scanner (quadratic in
 * the depth of flow collections) and every recursive walk bounded. */
#define NEST_MAX 64
#define CHAIN_MAX 16 /* extends: and include: levels */

struct cl {
	const struct compose_opts *o;
	char *err;
	struct labels env;    /* what ${VAR} reads */
	struct labels warned; /* variables already warned about */
	char *names[YDOC_MAX];
	bool override[YDOC_MAX]; /* a second or later -f file */
	struct spec_note *notes;
	size_t nnotes;
	struct spec_src src;
	struct ydoc y;
	char project[64];
};

static void warn(struct cl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct cl *c, const char *fmt, ...)
{
	if (!c->o->warn)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(c->o->warn, "orch: warning: ");
	vfprintf(c->o->warn, fmt, ap);
	fprintf(c->o->warn, "\n");
	va_end(ap);
}

/* A warning located at node id of the assembled document. */
static void warn_at(struct cl *c, int id, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void warn_at(struct cl *c, int id, const char *path, const char *fmt, ...)
{
	char msg[ERR_LEN], full[ERR_LEN + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, id), path, full, "%s", msg);
	warn(c, "%s", full);
}

/* ---- reading and loading ---- */

static int read_all(struct cl *c, const char *name, struct buf *b)
{
	bool in = !strcmp(name, "-");
	if (c->o->data && name == c->o->files[0]) {
		buf_append(b, c->o->data, c->o->data_len);
		return 0;
	}
	FILE *fp = in ? stdin : fopen(name, "rb");
	if (!fp)
		return errf(c->err, E_IO, "open %s: %s", name, strerror(errno));
	char chunk[65536];
	size_t n;
	int rc = 0;
	while (!rc && (n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
		if (b->len + n > SPEC_FILE_MAX)
			rc = errf(c->err, E_INVAL, "%s: file is larger than %u MiB; not a spec file?", name, SPEC_FILE_MAX >> 20);
		else
			buf_append(b, chunk, n);
	}
	if (!rc && ferror(fp))
		rc = errf(c->err, E_IO, "read %s: %s", name, strerror(errno));
	if (!in)
		fclose(fp);
	return rc;
}

static int syntax_error(const yaml_parser_t *p, const char *file, const char *data, size_t len, char *err)
{
	if (p->error == YAML_MEMORY_ERROR)
		return errf(err, E_FAIL, "%s: out of memory while parsing yaml", file);
	if (p->error == YAML_READER_ERROR)
		return errf(err, E_INVAL, "%s: invalid yaml: %s at byte %zu (files must be utf-8 text)", file,
			    p->problem ? p->problem : "unreadable input", p->problem_offset);
	const yaml_mark_t *m = &p->problem_mark;
	const char *problem = p->problem ? p->problem : "malformed document";
	if (m->index < len && data[m->index] == '\t' && strstr(problem, "cannot start any token"))
		return errf(err, E_INVAL, "%s:%zu:%zu: yaml syntax error: tab character; yaml indentation must use spaces",
			    file, m->line + 1, m->column + 1);
	if (p->context)
		return errf(err, E_INVAL, "%s:%zu:%zu: yaml syntax error: %s (%s at line %zu column %zu)", file,
			    m->line + 1, m->column + 1, problem, p->context, p->context_mark.line + 1,
			    p->context_mark.column + 1);
	return errf(err, E_INVAL, "%s:%zu:%zu: yaml syntax error: %s", file, m->line + 1, m->column + 1, problem);
}

/* A pass over the events before the document is built: refuses deep nesting early, while
 * the scanner's cost is still small. */
static int depth_check(const char *name, const char *data, size_t len, char *err)
{
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		return errf(err, E_FAIL, "%s: cannot initialise the yaml parser", name);
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	int depth = 0, rc = 0;
	for (bool done = false; !done && !rc;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			rc = syntax_error(&p, name, data, len, err);
			break;
		}
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
			if (++depth > NEST_MAX)
				rc = errf(err, E_INVAL, "%s:%zu:%zu: nested more than %d levels deep", name,
					  ev.start_mark.line + 1, ev.start_mark.column + 1, NEST_MAX);
		} else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
			depth--;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rc;
}

/* Values (never keys) interpolated in place; plain scalars that changed become quoted
 * strings, so "${X}" with X unset is "" and not null. */
static int interpolate(struct cl *c, yaml_document_t *doc, size_t fi)
{
	size_t nn = (size_t)(doc->nodes.top - doc->nodes.start);
	bool *is_key = xcalloc(nn + 1, 1);
	for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++)
		if (n->type == YAML_MAPPING_NODE)
			for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
				if (p->key >= 1 && (size_t)p->key <= nn)
					is_key[p->key] = true;
	int rc = 0;
	for (size_t i = 0; !rc && i < nn; i++) {
		yaml_node_t *n = &doc->nodes.start[i];
		if (n->type != YAML_SCALAR_NODE || is_key[i + 1] || !memchr(n->data.scalar.value, '$', n->data.scalar.length))
			continue;
		struct interp_res r;
		char msg[ERR_LEN];
		if (interp_string((const char *)n->data.scalar.value, &c->env, &r, msg)) {
			rc = errf(c->err, E_INVAL, "%s:%zu:%zu: %s", c->names[fi], n->start_mark.line + 1,
				  n->start_mark.column + 1, msg);
			break;
		}
		if (r.unset[0]) {
			if (!interp_lookup(&c->warned, r.unset)) {
				labels_set(&c->warned, r.unset, "");
				warn(c, "%s:%zu:%zu: variable %s is not set; using an empty string", c->names[fi],
				     n->start_mark.line + 1, n->start_mark.column + 1, r.unset);
			}
			char text[ERR_LEN];
			snprintf(text, sizeof text, "%s is not set (from \"%.80s\")", r.unset, (const char *)n->data.scalar.value);
			c->notes = xrealloc(c->notes, (c->nnotes + 1) * sizeof *c->notes);
			c->notes[c->nnotes++] = (struct spec_note){fi, n->start_mark.line, n->start_mark.column, xstrdup(text)};
			c->src.notes = c->notes;
			c->src.nnotes = c->nnotes;
		}
		free(n->data.scalar.value);
		n->data.scalar.value = (yaml_char_t *)r.out;
		n->data.scalar.length = strlen(r.out);
		if (r.changed && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			n->data.scalar.style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	}
	free(is_key);
	return rc;
}

/* Loads one file into the document table: its index, after interpolation. */
static int load(struct cl *c, const char *name, int *k)
{
	if (c->y.ndocs == YDOC_MAX)
		return errf(c->err, E_INVAL, "%s: more than %d files (include: or extends: in a loop?)", name, YDOC_MAX);
	struct buf b = {0};
	int rc = read_all(c, name, &b);
	const char *data = b.data ? (const char *)b.data : "";
	if (!rc)
		rc = depth_check(name, data, b.len, c->err);
	yaml_parser_t p;
	yaml_document_t *doc = xcalloc(1, sizeof *doc), extra;
	if (!rc && !yaml_parser_initialize(&p))
		rc = errf(c->err, E_FAIL, "%s: cannot initialise the yaml parser", name);
	else if (!rc) {
		yaml_parser_set_input_string(&p, (const unsigned char *)data, b.len);
		if (!yaml_parser_load(&p, doc)) {
			rc = syntax_error(&p, name, data, b.len, c->err);
			free(doc);
			doc = NULL;
		} else if (!yaml_parser_load(&p, &extra)) {
			rc = syntax_error(&p, name, data, b.len, c->err);
		} else {
			yaml_node_t *r2 = yaml_document_get_root_node(&extra);
			if (r2)
				rc = errf(c->err, E_INVAL, "%s:%zu:%zu: more than one yaml document; put all services in one document",
					  name, r2->start_mark.line + 1, r2->start_mark.column + 1);
			yaml_document_delete(&extra);
		}
		yaml_parser_delete(&p);
	} else {
		free(doc);
		doc = NULL;
	}
	buf_free(&b);
	if (!doc)
		return rc;
	int idx = ydoc_add(&c->y, doc);
	c->names[idx] = xstrdup(name);
	c->src.nfiles = c->y.ndocs;
	for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++)
		n->start_mark.index = (size_t)idx; /* the file, for messages (spec_table.h) */
	if (!rc && !yaml_document_get_root_node(doc))
		rc = errf(c->err, E_INVAL, "%s: the file is empty; expected \"services:\"", name);
	if (!rc)
		rc = interpolate(c, doc, (size_t)idx);
	*k = idx;
	return rc;
}

/* p relative to the directory of file (standard input: the working directory). */
static char *rel_path(const char *file, const char *p)
{
	if (p[0] == '/' || !strcmp(file, "-"))
		return xstrdup(p);
	const char *slash = strrchr(file, '/');
	if (!slash)
		return xstrdup(p);
	struct buf b = {0};
	buf_printf(&b, "%.*s/%s", (int)(slash - file), file, p);
	buf_append(&b, "", 1);
	return (char *)b.data;
}

/* The file relative paths in node id are relative to: its own, except in a second or later
 * -f file, whose paths are relative to the first, as Compose reads overrides. */
static const char *file_of(struct cl *c, int id)
{
	size_t fi = ydoc_node(&c->y, YDOC_SELF, id)->start_mark.index;
	if (fi < c->y.ndocs && c->override[fi])
		return c->o->files[0];
	return fi < c->y.ndocs ? c->names[fi] : "-";
}

static const char *text_of(struct cl *c, int id)
{
	yaml_node_t *n = ydoc_node(&c->y, YDOC_SELF, id);
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A string or a list of strings: the strings' node ids (malloc'd). */
static int str_list(struct cl *c, int id, const char *path, int **out, size_t *n)
{
	yaml_node_t nd = *ydoc_node(&c->y, YDOC_SELF, id);
	*out = NULL;
	*n = 0;
	if (nd.type == YAML_SCALAR_NODE) {
		*out = xcalloc(1, sizeof **out);
		(*out)[(*n)++] = id;
		return 0;
	}
	if (nd.type != YAML_SEQUENCE_NODE)
		return spec_node_err(&c->src, &nd, path, c->err, "expected a string or a list");
	size_t cnt = (size_t)(nd.data.sequence.items.top - nd.data.sequence.items.start);
	*out = xcalloc(cnt + 1, sizeof **out);
	for (size_t i = 0; i < cnt; i++)
		(*out)[(*n)++] = nd.data.sequence.items.start[i];
	return 0;
}

/* A mapping without some keys (and with others set): a new node; kid 0 drops nothing. */
static int map_edit(struct cl *c, int map, const char *path, const char *const *drop, size_t ndrop, const int *add,
		    size_t nadd, int *res)
{
	struct spec_pairs ps = {0};
	int rc = ydoc_pairs(&c->y, map, path, &ps);
	int *kv = xcalloc(2 * (ps.n + nadd) + 1, sizeof *kv);
	size_t np = 0;
	for (size_t i = 0; !rc && i < ps.n; i++) {
		bool skip = false;
		for (size_t j = 0; j < ndrop; j++)
			skip |= !strcmp(ps.v[i].key, drop[j]);
		if (skip)
			continue;
		kv[2 * np] = ps.v[i].kid;
		kv[2 * np + 1] = ps.v[i].vid;
		np++;
	}
	for (size_t j = 0; j < 2 * nadd; j++)
		kv[2 * np + j] = add[j];
	if (!rc)
		*res = ydoc_mapping(&c->y, kv, np + nadd, map);
	free(kv);
	spec_pairs_free(&ps);
	return rc;
}

/* ---- include: ---- */

static int root_of(struct cl *c, const char *name, int depth, int *root);

/* The root's top-level mappings (services, volumes, ...) extended with those of inc; a
 * name defined on both sides is an error, as in Compose. */
static int fold_in(struct cl *c, int root, int inc, const char *incname, int *res)
{
	struct spec_pairs pr = {0}, pi = {0};
	int rc = ydoc_pairs(&c->y, root, "", &pr);
	if (!rc)
		rc = ydoc_pairs(&c->y, inc, "", &pi);
	int *kv = xcalloc(2 * (pr.n + pi.n) + 1, sizeof *kv);
	size_t np = 0;
	for (size_t i = 0; !rc && i < pr.n; i++) {
		kv[2 * np] = pr.v[i].kid;
		kv[2 * np + 1] = pr.v[i].vid;
		np++;
	}
	for (size_t i = 0; !rc && i < pi.n; i++) {
		const char *key = pi.v[i].key;
		if (!strcmp(key, "name") || !strcmp(key, "version") || !strncmp(key, "x-", 2))
			continue;
		size_t at = 0;
		while (at < np && strcmp(text_of(c, kv[2 * at]), key))
			at++;
		if (at == np) {
			kv[2 * np] = pi.v[i].kid;
			kv[2 * np + 1] = pi.v[i].vid;
			np++;
			continue;
		}
		struct spec_pairs a = {0}, b = {0};
		rc = ydoc_pairs(&c->y, kv[2 * at + 1], key, &a);
		if (!rc)
			rc = ydoc_pairs(&c->y, pi.v[i].vid, key, &b);
		for (size_t j = 0; !rc && j < b.n; j++) {
			const struct spec_pair *d = spec_pairs_find(&a, b.v[j].key);
			if (d)
				rc = spec_node_err(&c->src, d->k, key, c->err, "\"%s\" is also defined by the included file %s",
						   b.v[j].key, incname);
		}
		if (!rc) {
			int *add = xcalloc(2 * b.n + 1, sizeof *add);
			for (size_t j = 0; j < b.n; j++) {
				add[2 * j] = b.v[j].kid;
				add[2 * j + 1] = b.v[j].vid;
			}
			rc = map_edit(c, kv[2 * at + 1], key, NULL, 0, add, b.n, &kv[2 * at + 1]);
			free(add);
		}
		spec_pairs_free(&a);
		spec_pairs_free(&b);
	}
	if (!rc)
		*res = ydoc_mapping(&c->y, kv, np, root);
	free(kv);
	spec_pairs_free(&pr);
	spec_pairs_free(&pi);
	return rc;
}

/* One include: entry: a path (or list of paths, merged) or {path, env_file,
 * project_directory}; the included files read their own .env (or env_file) under the
 * variables already set. */
static int include_one(struct cl *c, int root, int entry, int depth, int *res)
{
	const char *base = file_of(c, entry);
	int pathid = entry, envid = 0;
	yaml_node_t *e = ydoc_node(&c->y, YDOC_SELF, entry);
	if (e->type == YAML_MAPPING_NODE) {
		struct spec_pairs ps = {0};
		int rc = ydoc_pairs(&c->y, entry, "include", &ps);
		pathid = 0;
		for (size_t i = 0; !rc && i < ps.n; i++) {
			if (!strcmp(ps.v[i].key, "path"))
				pathid = ps.v[i].vid;
			else if (!strcmp(ps.v[i].key, "env_file"))
				envid = ps.v[i].vid;
			else if (strcmp(ps.v[i].key, "project_directory"))
				rc = spec_node_err(&c->src, ps.v[i].k, "include", c->err, "unknown key \"%s\" (expected path, env_file or project_directory)", ps.v[i].key);
		}
		spec_pairs_free(&ps);
		if (rc)
			return rc;
		if (!pathid)
			return spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, entry), "include", c->err, "missing required key \"path\"");
	}
	int *paths = NULL, *envs = NULL;
	size_t np = 0, ne = 0;
	int rc = str_list(c, pathid, "include", &paths, &np);
	if (!rc && !np)
		rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, pathid), "include", c->err, "expected a file path");
	if (!rc && envid)
		rc = str_list(c, envid, "include.env_file", &envs, &ne);
	struct labels saved = c->env, scoped = {0};
	for (size_t i = 0; !rc && i < (ne ? ne : 1); i++) {
		char *p = ne ? rel_path(base, text_of(c, envs[i]) ? text_of(c, envs[i]) : "") : NULL;
		if (!p) {
			char *first = rel_path(base, text_of(c, paths[0]) ? text_of(c, paths[0]) : "");
			p = rel_path(first, ".env");
			free(first);
			rc = dotenv_read(p, &saved, &scoped, c->err);
			if (rc == E_NOTFOUND)
				rc = 0;
		} else {
			rc = dotenv_read(p, &saved, &scoped, c->err);
		}
		free(p);
	}
	for (size_t i = 0; !rc && i < saved.n; i++)
		labels_set(&scoped, saved.k[i], saved.v[i]); /* what is set already wins */
	c->env = scoped;
	int inc = 0;
	for (size_t i = 0; !rc && i < np; i++) {
		const char *t = text_of(c, paths[i]);
		if (!t || !*t) {
			rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, paths[i]), "include", c->err, "expected a file path");
			break;
		}
		char *p = rel_path(base, t);
		int r = 0;
		rc = root_of(c, p, depth + 1, &r);
		if (!rc && inc)
			rc = ydoc_merge(&c->y, inc, YDOC_SELF, r, "", &inc);
		else if (!rc)
			inc = r;
		if (!rc)
			rc = fold_in(c, root, inc, p, res);
		free(p);
	}
	c->env = saved;
	labels_free(&scoped);
	free(paths);
	free(envs);
	return rc;
}

/* A file loaded and copied into the assembled document, its include: entries folded in. */
static int root_of(struct cl *c, const char *name, int depth, int *root)
{
	if (depth > CHAIN_MAX)
		return errf(c->err, E_INVAL, "%s: include: or extends: more than %d files deep (a loop?)", name, CHAIN_MAX);
	int k = 0;
	int rc = load(c, name, &k);
	if (rc)
		return rc;
	yaml_node_t *r = yaml_document_get_root_node(c->y.docs[k]);
	*root = ydoc_copy(&c->y, k, (int)(r - c->y.docs[k]->nodes.start) + 1);
	if (ydoc_node(&c->y, YDOC_SELF, *root)->type != YAML_MAPPING_NODE)
		return 0; /* spec_yaml.c says what the top level must be */
	struct spec_pairs ps = {0};
	rc = ydoc_pairs(&c->y, *root, "", &ps);
	const struct spec_pair *inc = rc ? NULL : spec_pairs_find(&ps, "include");
	int incid = inc ? inc->vid : 0;
	spec_pairs_free(&ps);
	if (!incid)
		return rc;
	static const char *const drop[] = {"include"};
	if ((rc = map_edit(c, *root, "", drop, 1, NULL, 0, root)))
		return rc;
	int *items = NULL;
	size_t n = 0;
	yaml_node_t *in = ydoc_node(&c->y, YDOC_SELF, incid);
	if (in->type != YAML_SEQUENCE_NODE)
		return spec_node_err(&c->src, in, "include", c->err, "expected a list of files");
	rc = str_list(c, incid, "include", &items, &n);
	for (size_t i = 0; !rc && i < n; i++)
		rc = include_one(c, *root, items[i], depth, root);
	free(items);
	return rc;
}

/* ---- extends: ---- */

static int services_of(struct cl *c, int root, int *svcs)
{
	struct spec_pairs ps = {0};
	int rc = ydoc_pairs(&c->y, root, "", &ps);
	const struct spec_pair *s = rc ? NULL : spec_pairs_find(&ps, "services");
	*svcs = s && ydoc_node(&c->y, YDOC_SELF, s->vid)->type == YAML_MAPPING_NODE ? s->vid : 0;
	spec_pairs_free(&ps);
	return rc;
}

/* The service name of the mapping svcs, its extends: resolved: *res a new node. */
static int resolve(struct cl *c, int svcs, const char *name, int at, int depth, int *res)
{
	char path[300];
	snprintf(path, sizeof path, "services.%s", name);
	if (depth > CHAIN_MAX)
		return spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, at), path, c->err,
				     "extends: more than %d services deep (a loop?)", CHAIN_MAX);
	struct spec_pairs ps = {0}, es = {0};
	int rc = ydoc_pairs(&c->y, svcs, "services", &ps);
	const struct spec_pair *s = rc ? NULL : spec_pairs_find(&ps, name);
	if (!rc && !s)
		rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, at), path, c->err, "extends: no service \"%s\"", name);
	int sid = s ? s->vid : 0, ext = 0;
	spec_pairs_free(&ps);
	if (!rc && ydoc_node(&c->y, YDOC_SELF, sid)->type == YAML_MAPPING_NODE) {
		rc = ydoc_pairs(&c->y, sid, path, &es);
		const struct spec_pair *e = rc ? NULL : spec_pairs_find(&es, "extends");
		ext = e ? e->vid : 0;
	}
	spec_pairs_free(&es);
	*res = sid;
	if (rc || !ext)
		return rc;
	char epath[320];
	snprintf(epath, sizeof epath, "%s.extends", path);
	const char *base = text_of(c, ext), *file = NULL;
	int fileid = 0;
	if (!base) {
		struct spec_pairs xs = {0};
		if ((rc = ydoc_pairs(&c->y, ext, epath, &xs)))
			return rc;
		for (size_t i = 0; !rc && i < xs.n; i++) {
			if (!strcmp(xs.v[i].key, "service"))
				base = text_of(c, xs.v[i].vid);
			else if (!strcmp(xs.v[i].key, "file")) {
				if (!(file = text_of(c, fileid = xs.v[i].vid)))
					rc = spec_node_err(&c->src, xs.v[i].v, epath, c->err, "file: expected a path");
			} else
				rc = spec_node_err(&c->src, xs.v[i].k, epath, c->err, "unknown key \"%s\" (expected service or file)",
						   xs.v[i].key);
		}
		spec_pairs_free(&xs);
		if (!rc && (!base || !*base))
			rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, ext), epath, c->err, "expected service: NAME");
		if (rc)
			return rc;
	}
	int from = svcs, bid = 0;
	if (file) {
		char *p = rel_path(file_of(c, fileid), file);
		int root = 0;
		rc = root_of(c, p, depth + 1, &root);
		if (!rc && (rc = services_of(c, root, &from)) == 0 && !from)
			rc = errf(c->err, E_INVAL, "%s: no services: mapping (extended by %s)", p, path);
		free(p);
	}
	if (!rc)
		rc = resolve(c, from, base, ext, depth + 1, &bid);
	static const char *const drop[] = {"extends"};
	int own = 0;
	if (!rc)
		rc = map_edit(c, sid, path, drop, 1, NULL, 0, &own);
	if (!rc && ydoc_node(&c->y, YDOC_SELF, bid)->type != YAML_MAPPING_NODE)
		return spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, bid), path, c->err, "extends: %s is not a mapping", base);
	if (!rc)
		rc = ydoc_merge(&c->y, bid, YDOC_SELF, own, path, res);
	return rc;
}

/* ---- per service ---- */

static bool profile_active(struct cl *c, const char *p)
{
	for (size_t i = 0; i < c->o->nprofiles; i++)
		if (!strcmp(c->o->profiles[i], p) || !strcmp(c->o->profiles[i], "*"))
			return true;
	const char *env = interp_lookup(&c->env, "COMPOSE_PROFILES");
	for (const char *s = env; s && *s;) {
		size_t n = strcspn(s, ",");
		if ((n == strlen(p) && !strncmp(s, p, n)) || (n == 1 && *s == '*'))
			return true;
		s += n + (s[n] == ',');
	}
	return false;
}

/* env_file: entries (string, list, or {path, required}) read in order, then environment:
 * on top; names without a value take the deploying side's variable or are left out, as
 * in Compose. The result is one environment mapping. */
struct kv {
	size_t n, cap;
	const char **k, **v;
	char **own; /* strings made here */
	size_t nown, capown;
};

static void kv_add(struct kv *x, const char *k, const char *v)
{
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 16;
		x->k = xrealloc(x->k, x->cap * sizeof *x->k);
		x->v = xrealloc(x->v, x->cap * sizeof *x->v);
	}
	x->k[x->n] = k;
	x->v[x->n++] = v;
}

static const char *kv_own(struct kv *x, char *s)
{
	if (x->nown == x->capown) {
		x->capown = x->capown ? 2 * x->capown : 16;
		x->own = xrealloc(x->own, x->capown * sizeof *x->own);
	}
	return x->own[x->nown++] = s;
}

static int environment(struct cl *c, int envf, int envv, const char *path, int like, int *res)
{
	struct labels vars = {0};
	struct kv all = {0};
	int *items = NULL;
	size_t n = 0;
	char epath[320];
	snprintf(epath, sizeof epath, "%s.env_file", path);
	int rc = envf ? str_list(c, envf, epath, &items, &n) : 0;
	if (rc && envf && ydoc_node(&c->y, YDOC_SELF, envf)->type == YAML_MAPPING_NODE) {
		items = xcalloc(1, sizeof *items);
		items[0] = envf;
		n = 1;
		rc = 0;
	}
	for (size_t i = 0; !rc && i < n; i++) {
		int pid = items[i];
		bool required = true;
		if (ydoc_node(&c->y, YDOC_SELF, items[i])->type == YAML_MAPPING_NODE) {
			struct spec_pairs ps = {0};
			rc = ydoc_pairs(&c->y, items[i], epath, &ps);
			const struct spec_pair *p = rc ? NULL : spec_pairs_find(&ps, "path");
			const struct spec_pair *r = rc ? NULL : spec_pairs_find(&ps, "required");
			pid = p ? p->vid : 0;
			const char *rt = r ? text_of(c, r->vid) : NULL;
			required = !rt || strcmp(rt, "false");
			spec_pairs_free(&ps);
			if (!rc && !pid)
				rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, items[i]), epath, c->err,
						   "missing required key \"path\"");
			if (rc)
				break;
		}
		const char *t = text_of(c, pid);
		if (!t || !*t) {
			rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, pid), epath, c->err, "expected a file path");
			break;
		}
		char *p = rel_path(file_of(c, pid), t), msg[ERR_LEN];
		int r = dotenv_read(p, &c->env, &vars, msg);
		if (r == E_NOTFOUND && !required)
			r = 0;
		if (r)
			rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, pid), epath, c->err, "%s", msg);
		free(p);
	}
	free(items);
	if (!rc && envv) {
		snprintf(epath, sizeof epath, "%s.environment", path);
		yaml_node_t nd = *ydoc_node(&c->y, YDOC_SELF, envv);
		if (nd.type == YAML_SEQUENCE_NODE) {
			for (yaml_node_item_t *it = nd.data.sequence.items.start; !rc && it < nd.data.sequence.items.top; it++) {
				const char *s = text_of(c, *it);
				if (!s)
					return spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, *it), epath, c->err,
							     "expected a string KEY=value");
				const char *eq = strchr(s, '=');
				char *k = xstrndup(s, eq ? (size_t)(eq - s) : strlen(s)), ipath[400];
				const char *v = eq ? eq + 1 : interp_lookup(&c->env, k);
				snprintf(ipath, sizeof ipath, "%s[%zu]", epath, (size_t)(it - nd.data.sequence.items.start));
				if (!*k)
					rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, *it), ipath, c->err,
							   "missing name before '='");
				else if (v)
					kv_add(&all, kv_own(&all, k), v), k = NULL;
				free(k);
			}
		} else if (nd.type == YAML_MAPPING_NODE) {
			struct spec_pairs ps = {0};
			rc = ydoc_pairs(&c->y, envv, epath, &ps);
			for (size_t i = 0; !rc && i < ps.n; i++) {
				yaml_node_t *vn = ydoc_node(&c->y, YDOC_SELF, ps.v[i].vid);
				bool null = vn->type == YAML_SCALAR_NODE && vn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
					    (!vn->data.scalar.length || !strcmp((char *)vn->data.scalar.value, "~") ||
					     !strcmp((char *)vn->data.scalar.value, "null"));
				const char *v = null ? interp_lookup(&c->env, ps.v[i].key) : text_of(c, ps.v[i].vid);
				char kpath[400];
				snprintf(kpath, sizeof kpath, "%s.%s", epath, ps.v[i].key);
				if (vn->type != YAML_SCALAR_NODE)
					rc = spec_node_err(&c->src, vn, kpath, c->err, "expected a string, number or boolean, got %s",
							   vn->type == YAML_SEQUENCE_NODE ? "a list" : "a mapping");
				else if (v)
					kv_add(&all, ps.v[i].key, v);
			}
			spec_pairs_free(&ps);
		} else if (!(nd.type == YAML_SCALAR_NODE && !nd.data.scalar.length)) {
			rc = spec_node_err(&c->src, &nd, epath, c->err, "expected a mapping or a list of KEY=value");
		}
	}
	if (!rc) {
		/* env_file: first, so environment: wins */
		struct kv merged = {0};
		for (size_t i = 0; i < vars.n; i++)
			kv_add(&merged, vars.k[i], vars.v[i]);
		for (size_t i = 0; i < all.n; i++)
			kv_add(&merged, all.k[i], all.v[i]);
		struct labels l = {0};
		spec_labels_build(&l, merged.k, merged.v, merged.n);
		free(merged.k);
		free(merged.v);
		labels_free(&vars);
		vars = l;
		int *kv = xcalloc(2 * vars.n + 1, sizeof *kv);
		int at = envv ? envv : envf ? envf : like;
		for (size_t i = 0; i < vars.n; i++) {
			kv[2 * i] = ydoc_scalar(&c->y, vars.k[i], at);
			kv[2 * i + 1] = ydoc_scalar(&c->y, vars.v[i], at);
		}
		*res = ydoc_mapping(&c->y, kv, vars.n, at);
		free(kv);
	}
	labels_free(&vars);
	for (size_t i = 0; i < all.nown; i++)
		free(all.own[i]);
	free(all.own);
	free(all.k);
	free(all.v);
	return rc;
}

/* One service: *keep false when its profiles are all inactive; *res the rewritten node. */
static int service(struct cl *c, const char *name, int sid, bool *keep, int *res)
{
	char path[300];
	snprintf(path, sizeof path, "services.%s", name);
	*res = sid;
	*keep = true;
	if (ydoc_node(&c->y, YDOC_SELF, sid)->type != YAML_MAPPING_NODE)
		return 0; /* spec_yaml.c says what a service must be */
	struct spec_pairs ps = {0};
	int rc = ydoc_pairs(&c->y, sid, path, &ps);
	if (rc)
		return rc;
	const struct spec_pair *prof = spec_pairs_find(&ps, "profiles"), *img = spec_pairs_find(&ps, "image");
	if (prof) {
		int *items = NULL;
		size_t n = 0;
		char ppath[320];
		snprintf(ppath, sizeof ppath, "%s.profiles", path);
		rc = str_list(c, prof->vid, ppath, &items, &n);
		bool on = false;
		for (size_t i = 0; !rc && i < n; i++) {
			const char *t = text_of(c, items[i]);
			if (!t)
				rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, items[i]), ppath, c->err, "expected a profile name");
			else
				on |= profile_active(c, t);
		}
		free(items);
		*keep = on;
	}
	/* keys of a single-host Compose that mean nothing to a cluster: said and dropped, as
	 * docker stack deploy does */
	static const char *const ignored[][2] = {{"container_name", "tasks are named after their service"},
						 {"links", "services reach each other by service name"},
						 {"external_links", "services reach each other by service name"}};
	for (size_t i = 0; !rc && *keep && i < 3; i++) {
		const struct spec_pair *p = spec_pairs_find(&ps, ignored[i][0]);
		if (p)
			warn_at(c, p->kid, path, "%s is ignored: %s", ignored[i][0], ignored[i][1]);
	}
	const struct spec_pair *build = spec_pairs_find(&ps, "build");
	int add[4], nadd = 0;
	if (!rc && *keep && build && img) {
		warn_at(c, build->kid, path, "build is ignored; the image comes from image: %s", text_of(c, img->vid) ? text_of(c, img->vid) : "");
	} else if (!rc && *keep && build) {
		char image[200];
		snprintf(image, sizeof image, "%s-%s", c->project, name);
		for (char *p = image; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		warn_at(c, build->kid, path, "build is ignored; the service uses image %s, the name Compose gives the image it builds (build it elsewhere, then load or push it)", image);
		add[nadd++] = ydoc_scalar(&c->y, "image", build->kid);
		add[nadd++] = ydoc_scalar(&c->y, image, build->kid);
	}
	const struct spec_pair *envf = spec_pairs_find(&ps, "env_file"), *envv = spec_pairs_find(&ps, "environment");
	if (!rc && *keep && (envf || envv)) {
		int envid = 0;
		rc = environment(c, envf ? envf->vid : 0, envv ? envv->vid : 0, path, sid, &envid);
		if (!rc) {
			add[nadd++] = ydoc_scalar(&c->y, "environment", envv ? envv->kid : envf->kid);
			add[nadd++] = envid;
		}
	}
	spec_pairs_free(&ps);
	static const char *const drop[] = {"profiles", "container_name", "links", "external_links", "build", "env_file",
					   "environment"};
	if (!rc && *keep)
		rc = map_edit(c, sid, path, drop, 7, add, (size_t)nadd / 2, res);
	return rc;
}

static int services(struct cl *c, int root, int *res)
{
	int svcs = 0;
	int rc = services_of(c, root, &svcs);
	*res = root;
	if (rc || !svcs)
		return rc;
	struct spec_pairs ps = {0};
	rc = ydoc_pairs(&c->y, svcs, "services", &ps);
	int *kv = xcalloc(2 * ps.n + 1, sizeof *kv);
	size_t np = 0;
	for (size_t i = 0; !rc && i < ps.n; i++) {
		int sid = 0;
		bool keep = true;
		rc = resolve(c, svcs, ps.v[i].key, ps.v[i].kid, 0, &sid);
		if (!rc)
			rc = service(c, ps.v[i].key, sid, &keep, &sid);
		if (!rc && keep) {
			kv[2 * np] = ps.v[i].kid;
			kv[2 * np + 1] = sid;
			np++;
		}
	}
	if (!rc && ps.n && !np)
		rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, svcs), "services", c->err,
				   "no service is enabled: every service has profiles and none was named by --profile");
	int add[2];
	if (!rc) {
		add[0] = ydoc_scalar(&c->y, "services", svcs);
		add[1] = ydoc_mapping(&c->y, kv, np, svcs);
		static const char *const drop[] = {"services"};
		rc = map_edit(c, root, "", drop, 1, add, 1, res);
	}
	free(kv);
	spec_pairs_free(&ps);
	return rc;
}

/* ---- the whole ---- */

static void project_name(struct cl *c, int root)
{
	const char *name = c->o->project;
	struct spec_pairs ps = {0};
	if (!name && ydoc_node(&c->y, YDOC_SELF, root)->type == YAML_MAPPING_NODE &&
	    !spec_map_pairs(&c->src, &c->y.out, ydoc_node(&c->y, YDOC_SELF, root), "", &ps, c->err)) {
		const struct spec_pair *n = spec_pairs_find(&ps, "name");
		name = n ? text_of(c, n->vid) : NULL;
	}
	char dir[PATH_MAX] = ".", abs[PATH_MAX];
	if (!name) { /* Compose's default: the directory holding the first file */
		const char *f = c->o->files[0], *slash = strrchr(f, '/');
		if (strcmp(f, "-") && slash)
			snprintf(dir, sizeof dir, "%.*s", (int)(slash - f) ? (int)(slash - f) : 1, f);
		if (!realpath(dir, abs))
			snprintf(abs, sizeof abs, "%s", dir);
		name = strrchr(abs, '/') ? strrchr(abs, '/') + 1 : abs;
	}
	snprintf(c->project, sizeof c->project, "%s", name);
	for (char *p = c->project; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			*p = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : '-';
	spec_pairs_free(&ps);
}

/* The variables: the .env beside the first file (or the --env-file files, in order),
 * then the shell's, which win as in Compose. */
static int variables(struct cl *c)
{
	struct labels shell = {0};
	for (char *const *e = c->o->environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e)
			continue;
		char *k = xstrndup(*e, (size_t)(eq - *e));
		labels_set(&shell, k, eq + 1);
		free(k);
	}
	int rc = 0;
	for (size_t i = 0; !rc && i < c->o->nenv_files; i++)
		rc = dotenv_read(c->o->env_files[i], &shell, &c->env, c->err);
	if (!c->o->nenv_files && !c->o->no_dotenv) {
		char *p = rel_path(c->o->files[0], ".env");
		rc = dotenv_read(p, &shell, &c->env, c->err);
		if (rc == E_NOTFOUND)
			rc = 0;
		free(p);
	}
	for (size_t i = 0; i < shell.n; i++)
		labels_set(&c->env, shell.k[i], shell.v[i]);
	labels_free(&shell);
	return rc;
}

int compose_load(const struct compose_opts *o, struct spec_file **out, char *project, char *err)
{
	struct cl c = {.o = o, .err = err};
	*out = NULL;
	c.src.files = (const char *const *)c.names;
	ydoc_init(&c.y, &c.src, err);
	int rc = o->nfiles ? variables(&c) : errf(err, E_INVAL, "no compose file given");
	int root = 0;
	for (size_t i = 0; !rc && i < o->nfiles; i++) {
		int r = 0;
		if (i)
			c.override[c.y.ndocs] = true;
		if (!(rc = root_of(&c, o->files[i], 0, &r)))
			rc = i ? ydoc_merge(&c.y, root, YDOC_SELF, r, "", &root) : (root = r, 0);
	}
	if (!rc) {
		project_name(&c, root);
		if (ydoc_node(&c.y, YDOC_SELF, root)->type == YAML_MAPPING_NODE)
			rc = services(&c, root, &root);
	}
	if (!rc) {
		/* libyaml's root is the first node: swap ours there */
		yaml_node_t *nodes = c.y.out.nodes.start, tmp = nodes[0];
		nodes[0] = nodes[root - 1];
		nodes[root - 1] = tmp;
		for (yaml_node_t *n = nodes; n < c.y.out.nodes.top; n++) {
			if (n->type == YAML_SEQUENCE_NODE)
				for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
					*it = *it == root ? 1 : *it == 1 ? root : *it;
			else if (n->type == YAML_MAPPING_NODE)
				for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
					p->key = p->key == root ? 1 : p->key == 1 ? root : p->key;
					p->value = p->value == root ? 1 : p->value == 1 ? root : p->value;
				}
		}
		rc = spec_parse_doc(&c.src, &c.y.out, out, err);
	}
	if (project)
		snprintf(project, 64, "%s", c.project);
	ydoc_free(&c.y);
	for (size_t i = 0; i < YDOC_MAX; i++)
		free(c.names[i]);
	for (size_t i = 0; i < c.nnotes; i++)
		free(c.notes[i].text);
	free(c.notes);
	labels_free(&c.env);
	labels_free(&c.warned);
	return rc;
}
