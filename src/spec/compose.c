/* The Compose front end (see compose.h): every file is loaded, checked for nesting depth
 * and interpolated on its own (as Compose interpolates per file, before merging), its
 * include: entries are folded in, the -f files are merged in order into one document
 * (spec/ydoc.h), and the services are resolved and rewritten (compose_svc.c). What is left
 * is parsed by spec_yaml.c against the field lists. */
#include "spec/compose_ctx.h"
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


static void warn(struct compose_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct compose_ctx *c, const char *fmt, ...)
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
void compose_warn_at(struct compose_ctx *c, int id, const char *path, const char *fmt, ...)
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

static int read_all(struct compose_ctx *c, const char *name, struct buf *b)
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
static int interpolate(struct compose_ctx *c, yaml_document_t *doc, size_t fi)
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
static int load(struct compose_ctx *c, const char *name, int *k)
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
char *compose_rel_path(const char *file, const char *p)
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
const char *compose_file_of(struct compose_ctx *c, int id)
{
	size_t fi = ydoc_node(&c->y, YDOC_SELF, id)->start_mark.index;
	if (fi < c->y.ndocs && c->override[fi])
		return c->o->files[0];
	return fi < c->y.ndocs ? c->names[fi] : "-";
}

const char *compose_text_of(struct compose_ctx *c, int id)
{
	yaml_node_t *n = ydoc_node(&c->y, YDOC_SELF, id);
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A string or a list of strings: the strings' node ids (malloc'd). */
int compose_str_list(struct compose_ctx *c, int id, const char *path, int **out, size_t *n)
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
int compose_map_edit(struct compose_ctx *c, int map, const char *path, const char *const *drop, size_t ndrop, const int *add,
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

/* The root's top-level mappings (services, volumes, ...) extended with those of inc; a
 * name defined on both sides is an error, as in Compose. */
static int fold_in(struct compose_ctx *c, int root, int inc, const char *incname, int *res)
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
		while (at < np && strcmp(compose_text_of(c, kv[2 * at]), key))
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
			rc = compose_map_edit(c, kv[2 * at + 1], key, NULL, 0, add, b.n, &kv[2 * at + 1]);
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
static int include_one(struct compose_ctx *c, int root, int entry, int depth, int *res)
{
	const char *base = compose_file_of(c, entry);
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
	int rc = compose_str_list(c, pathid, "include", &paths, &np);
	if (!rc && !np)
		rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, pathid), "include", c->err, "expected a file path");
	if (!rc && envid)
		rc = compose_str_list(c, envid, "include.env_file", &envs, &ne);
	struct labels saved = c->env, scoped = {0};
	for (size_t i = 0; !rc && i < (ne ? ne : 1); i++) {
		char *p = ne ? compose_rel_path(base, compose_text_of(c, envs[i]) ? compose_text_of(c, envs[i]) : "") : NULL;
		if (!p) {
			char *first = compose_rel_path(base, compose_text_of(c, paths[0]) ? compose_text_of(c, paths[0]) : "");
			p = compose_rel_path(first, ".env");
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
		const char *t = compose_text_of(c, paths[i]);
		if (!t || !*t) {
			rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, paths[i]), "include", c->err, "expected a file path");
			break;
		}
		char *p = compose_rel_path(base, t);
		int r = 0;
		rc = compose_root_of(c, p, depth + 1, &r);
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
int compose_root_of(struct compose_ctx *c, const char *name, int depth, int *root)
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
	if ((rc = compose_map_edit(c, *root, "", drop, 1, NULL, 0, root)))
		return rc;
	int *items = NULL;
	size_t n = 0;
	yaml_node_t *in = ydoc_node(&c->y, YDOC_SELF, incid);
	if (in->type != YAML_SEQUENCE_NODE)
		return spec_node_err(&c->src, in, "include", c->err, "expected a list of files");
	rc = compose_str_list(c, incid, "include", &items, &n);
	for (size_t i = 0; !rc && i < n; i++)
		rc = include_one(c, *root, items[i], depth, root);
	free(items);
	return rc;
}

/* ---- the whole ---- */

static void project_name(struct compose_ctx *c, int root)
{
	const char *name = c->o->project ? c->o->project : interp_lookup(&c->env, "COMPOSE_PROJECT_NAME");
	struct spec_pairs ps = {0};
	if (!name && ydoc_node(&c->y, YDOC_SELF, root)->type == YAML_MAPPING_NODE &&
	    !spec_map_pairs(&c->src, &c->y.out, ydoc_node(&c->y, YDOC_SELF, root), "", &ps, c->err)) {
		const struct spec_pair *n = spec_pairs_find(&ps, "name");
		name = n ? compose_text_of(c, n->vid) : NULL;
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
static int variables(struct compose_ctx *c)
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
		char *p = compose_rel_path(c->o->files[0], ".env");
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
	struct compose_ctx c = {.o = o, .err = err};
	*out = NULL;
	c.src.files = (const char *const *)c.names;
	ydoc_init(&c.y, &c.src, err);
	int rc = o->nfiles ? variables(&c) : errf(err, E_INVAL, "no compose file given");
	int root = 0;
	for (size_t i = 0; !rc && i < o->nfiles; i++) {
		int r = 0;
		if (i)
			c.override[c.y.ndocs] = true;
		if (!(rc = compose_root_of(&c, o->files[i], 0, &r)))
			rc = i ? ydoc_merge(&c.y, root, YDOC_SELF, r, "", &root) : (root = r, 0);
	}
	if (!rc) {
		project_name(&c, root);
		if (ydoc_node(&c.y, YDOC_SELF, root)->type == YAML_MAPPING_NODE)
			rc = compose_services(&c, root, &root);
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
