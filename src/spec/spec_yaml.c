/* YAML spec files -> struct spec_file. libyaml builds the node tree (anchors and aliases
 * resolved); this file walks it against the field lists in spec_table.c, so every key is
 * either known or an error naming file:line:column, and nothing is silently ignored
 * except Compose's x-* extensions (x-orch-* keys are ours and are checked). */
#include "spec/compose.h"
#include "spec/spec_table.h"
#include "spec/units.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define AT(obj, f, T) ((T *)((char *)(obj) + (f)->off))
/* Merge keys and aliases can multiply work; a spec never needs more than this many
 * mapping entries visited. */
#define WORK_MAX 1000000
#define MERGE_DEPTH_MAX 8

struct yctx {
	const struct spec_src *src;
	yaml_document_t *doc;
	char *err;
	size_t work;
	const char *file; /* the first file; a node's own is src->files[n->start_mark.index] */
	struct spec_file *f; /* its top-level volumes, for the services' mounts */
	char *dir;           /* the first file's directory (relative bind sources), NULL: cwd */
};

static int vnode_err(const struct spec_src *src, const yaml_node_t *n, const char *path, char *err, const char *fmt,
		     va_list ap) __attribute__((format(printf, 5, 0)));
static int vnode_err(const struct spec_src *src, const yaml_node_t *n, const char *path, char *err, const char *fmt,
		     va_list ap)
{
	char msg[ERR_LEN];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t fi = n->start_mark.index, line = n->start_mark.line + 1, col = n->start_mark.column + 1;
	const char *file = fi < src->nfiles ? src->files[fi] : "?";
	const char *note = NULL;
	for (size_t i = 0; i < src->nnotes && !note; i++)
		if (src->notes[i].file == fi && src->notes[i].line == n->start_mark.line &&
		    src->notes[i].col == n->start_mark.column)
			note = src->notes[i].text;
	return errf(err, E_INVAL, "%s:%zu:%zu: %s%s%s%s%s", file, line, col, path, *path ? ": " : "", msg,
		    note ? "; " : "", note ? note : "");
}

int spec_node_err(const struct spec_src *src, const yaml_node_t *n, const char *path, char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vnode_err(src, n, path, err, fmt, ap);
	va_end(ap);
	return rc;
}

static int yerr(struct yctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int yerr(struct yctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vnode_err(c->src, n, path, c->err, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- node helpers ---- */

static const char *stext(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = stext(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* "a list", "a mapping", "null" or the quoted (shortened) scalar, for messages. */
static const char *describe(const yaml_node_t *n, char *buf, size_t size)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (is_null(n))
		return "null";
	const char *s = stext(n);
	size_t len = strlen(s);
	if (len > 40)
		snprintf(buf, size, "\"%.37s...\"", s);
	else
		snprintf(buf, size, "\"%s\"", s);
	return buf;
}

static yaml_node_t *node(struct yctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

/* A non-null scalar without NUL bytes; numbers and booleans are taken as written. */
static int want_text(struct yctx *c, const yaml_node_t *n, const char *path, const char *what, const char **out)
{
	char d[64];
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return yerr(c, n, path, "expected %s, got %s", what, describe(n, d, sizeof d));
	if (strlen(stext(n)) != n->data.scalar.length)
		return yerr(c, n, path, "contains a NUL character");
	*out = stext(n);
	return 0;
}

static void join(char *out, size_t size, const char *path, const char *key)
{
	snprintf(out, size, "%s%s%s", path, *path ? "." : "", key);
}

/* ---- mappings, with merge keys (<<) ---- */

static bool is_merge(const yaml_node_t *k)
{
	return k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       !strcmp(stext(k), "<<");
}

static size_t key_hash(const char *s)
{
	size_t h = 14695981039346656037ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

const struct spec_pair *spec_pairs_find(const struct spec_pairs *p, const char *key)
{
	if (!p->nslots)
		return NULL;
	for (size_t i = key_hash(key) & (p->nslots - 1);; i = (i + 1) & (p->nslots - 1)) {
		size_t at = p->slots[i];
		if (!at)
			return NULL;
		if (!strcmp(p->v[at - 1].key, key))
			return &p->v[at - 1];
	}
}

static void slot_put(struct spec_pairs *p, size_t at)
{
	size_t i = key_hash(p->v[at].key) & (p->nslots - 1);
	while (p->slots[i])
		i = (i + 1) & (p->nslots - 1);
	p->slots[i] = at + 1;
}

/* Duplicate keys are found through a hash so that a mapping of n keys costs O(n), not
 * O(n^2) (a 200,000-key mapping would otherwise take minutes). */
static void pairs_add(struct spec_pairs *p, const struct spec_pair *x)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->v = xrealloc(p->v, p->cap * sizeof *p->v);
	}
	p->v[p->n++] = *x;
	if (p->n * 2 > p->nslots) {
		free(p->slots);
		p->nslots = p->nslots ? p->nslots * 4 : 64;
		p->slots = xcalloc(p->nslots, sizeof *p->slots);
		for (size_t i = 0; i < p->n; i++)
			slot_put(p, i);
	} else {
		slot_put(p, p->n - 1);
	}
}

void spec_pairs_free(struct spec_pairs *p)
{
	free(p->v);
	free(p->slots);
	memset(p, 0, sizeof *p);
}

#define pairs_find spec_pairs_find

/* The entries of a mapping in file order; keys merged with << come after, and explicit
 * keys win over merged ones, as YAML's merge key type says. */
static int collect_pairs(struct yctx *c, yaml_node_t *map, const char *path, struct spec_pairs *out, int depth)
{
	char d[64];
	if (depth > MERGE_DEPTH_MAX)
		return yerr(c, map, path, "merge keys (<<) nested too deeply");
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		struct spec_pair x = {node(c, p->key), node(c, p->value), p->key, p->value, NULL};
		if (!x.k || !x.v)
			return yerr(c, map, path, "malformed mapping");
		if (++c->work > WORK_MAX)
			return yerr(c, map, path, "document too complex (too many aliased entries)");
		if (is_merge(x.k))
			continue;
		if (x.k->type != YAML_SCALAR_NODE)
			return yerr(c, x.k, path, "keys must be strings, not %s", describe(x.k, d, sizeof d));
		if (strlen(stext(x.k)) != x.k->data.scalar.length)
			return yerr(c, x.k, path, "key contains a NUL character");
		x.key = stext(x.k);
		const struct spec_pair *dup = pairs_find(out, x.key);
		if (dup)
			return yerr(c, x.k, path, "duplicate key \"%s\" (first at line %zu)", x.key,
				    dup->k->start_mark.line + 1);
		pairs_add(out, &x);
	}
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
		if (!is_merge(k))
			continue;
		yaml_node_item_t *it = NULL, *end = NULL;
		int single = p->value;
		if (v->type == YAML_SEQUENCE_NODE) {
			it = v->data.sequence.items.start;
			end = v->data.sequence.items.top;
		} else {
			it = &single;
			end = &single + 1;
		}
		for (; it < end; it++) {
			yaml_node_t *src = node(c, *it);
			if (!src || src->type != YAML_MAPPING_NODE)
				return yerr(c, src ? src : v, path, "<< must merge a mapping or a list of mappings");
			struct spec_pairs tmp = {0};
			int rc = collect_pairs(c, src, path, &tmp, depth + 1);
			for (size_t i = 0; !rc && i < tmp.n; i++)
				if (!pairs_find(out, tmp.v[i].key))
					pairs_add(out, &tmp.v[i]);
			spec_pairs_free(&tmp);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int spec_map_pairs(const struct spec_src *src, yaml_document_t *doc, yaml_node_t *map, const char *path,
		   struct spec_pairs *out, char *err)
{
	struct yctx c = {.src = src, .doc = doc, .err = err, .file = src->nfiles ? src->files[0] : "-"};
	return collect_pairs(&c, map, path, out, 0);
}

/* ---- unknown keys ---- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return 99;
	size_t row[64];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* Compose keys orch knowingly does not implement, with a pointer where one helps. */
static const struct {
	const char *key, *hint;
} compose_unsupported[] = {
	{"develop", "it watches a local source tree, which a cluster does not have"},
	{"runtime", "tasks run with runc"}, {"volumes_from", NULL}, {"ipc", NULL}, {"pid", NULL},
	{"cgroup_parent", NULL}, {"userns_mode", NULL}, {"uts", NULL}, {"isolation", NULL},
	{"mem_limit", "use deploy.resources.limits.memory"},
	{"cpus", "use deploy.resources.limits.cpus"},
	{"scale", "use deploy.replicas"},
	{"container_name", "tasks are named after their service"},
	{"volumes", NULL}, {"secrets", NULL}, {"configs", NULL},
	{"devices", NULL},
	{"logging", NULL}, {"shm_size", NULL}, {"tty", NULL},
	{"stdin_open", NULL}, {"pull_policy", NULL}, {"endpoint_mode", NULL},
	{"start_interval", NULL}, {"host_ip", NULL}, {"app_protocol", NULL},
	{"generic_resources", NULL},
	{"mem_reservation", "use deploy.resources.reservations.memory"},
	{"cpu_shares", "use deploy.resources.reservations.cpus"},
	{"cpu_quota", "use deploy.resources.limits.cpus"}, {"cpu_period", "use deploy.resources.limits.cpus"},
	{"cpu_count", "use deploy.resources.limits.cpus"}, {"cpu_percent", "use deploy.resources.limits.cpus"},
	{"cpuset", NULL}, {"cpu_rt_runtime", NULL}, {"cpu_rt_period", NULL}, {"memswap_limit", NULL},
	{"mem_swappiness", NULL}, {"oom_kill_disable", NULL}, {"oom_score_adj", NULL}, {"blkio_config", NULL},
	{"device_cgroup_rules", NULL}, {"gpus", NULL}, {"group_add", NULL}, {"cgroup", NULL},
	{"credential_spec", NULL}, {"domainname", NULL}, {"dns_opt", NULL}, {"mac_address", NULL},
	{"storage_opt", NULL}, {"annotations", NULL}, {"attach", NULL}, {"label_file", NULL},
	{"post_start", NULL}, {"pre_stop", NULL}, {"provider", NULL}, {"use_api_socket", NULL},
	{"ipv4_address", "orch assigns task addresses itself"}, {"ipv6_address", "orch assigns task addresses itself"},
	{"link_local_ips", NULL}, {"priority", NULL}, {"internal", NULL}, {"ipam", NULL},
	{"driver_opts", NULL}, {"enable_ipv6", NULL},
};

static int unknown_key(struct yctx *c, const yaml_node_t *k, const char *path, const char *key,
		       const char *const *known, size_t nknown)
{
	const char *best = NULL;
	size_t bestd = 3;
	/* a key orch knowingly lacks is named as such, not taken for a typo of a near one
	 * (networks' "internal" is not "external") */
	for (size_t i = 0; i < sizeof compose_unsupported / sizeof compose_unsupported[0]; i++)
		if (!strcmp(compose_unsupported[i].key, key))
			nknown = 0;
	for (size_t i = 0; i < nknown; i++) {
		size_t dist = edit_distance(key, known[i]);
		if (dist < bestd && dist < strlen(key)) {
			best = known[i];
			bestd = dist;
		}
	}
	for (size_t i = 0; i < sizeof compose_unsupported / sizeof compose_unsupported[0]; i++) {
		if (strcmp(compose_unsupported[i].key, key))
			continue;
		if (compose_unsupported[i].hint)
			return yerr(c, k, path, "key \"%s\" is not supported by orch; %s", key, compose_unsupported[i].hint);
		return yerr(c, k, path, "key \"%s\" is not supported by orch", key);
	}
	if (best)
		return yerr(c, k, path, "unknown key \"%s\" (did you mean \"%s\"?)", key, best);
	if (!strncmp(key, "x-orch-", 7))
		return yerr(c, k, path, "unknown orch extension \"%s\"", key);
	return yerr(c, k, path, "unknown key \"%s\"", key);
}

static bool ignored_extension(const char *key)
{
	return !strncmp(key, "x-", 2) && strncmp(key, "x-orch-", 7);
}

/* ---- scalar values ---- */

static int parse_u64(struct yctx *c, const struct sf *f, const yaml_node_t *n, const char *path, uint64_t *out)
{
	const char *s;
	char d[64];
	if (want_text(c, n, path, "a non-negative integer", &s))
		return E_INVAL;
	bool digits = *s && strspn(s, "0123456789") == strlen(s);
	errno = 0;
	unsigned long long v = digits ? strtoull(s, NULL, 10) : 0;
	if (!digits || errno)
		return yerr(c, n, path, "expected a non-negative integer, got %s", describe(n, d, sizeof d));
	if (v < f->lo || (f->hi && v > f->hi)) {
		if (f->hi)
			return yerr(c, n, path, "%llu is out of range %llu-%llu", v, (unsigned long long)f->lo,
				    (unsigned long long)f->hi);
		return yerr(c, n, path, "must be at least %llu", (unsigned long long)f->lo);
	}
	*out = v;
	return 0;
}

static int parse_scalar(struct yctx *c, const struct sf *f, void *obj, const yaml_node_t *n, const char *path)
{
	const char *s;
	char d[64];
	int rc;
	switch (f->kind) {
	case SF_STR:
		if ((rc = want_text(c, n, path, "a string", &s)))
			return rc;
		free(*AT(obj, f, char *));
		*AT(obj, f, char *) = xstrdup(s);
		return 0;
	case SF_U64: return parse_u64(c, f, n, path, AT(obj, f, uint64_t));
	case SF_BOOL:
		if ((rc = want_text(c, n, path, "true or false", &s)))
			return rc;
		if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
			*AT(obj, f, bool) = true;
		else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
			*AT(obj, f, bool) = false;
		else
			return yerr(c, n, path, "expected true or false, got %s", describe(n, d, sizeof d));
		return 0;
	case SF_DUR:
		if ((rc = want_text(c, n, path, "a duration", &s)))
			return rc;
		if (parse_duration_ms(s, AT(obj, f, uint64_t)) < 0)
			return yerr(c, n, path, "invalid duration %s (use e.g. \"10s\", \"1m30s\", \"500ms\")",
				    describe(n, d, sizeof d));
		return 0;
	case SF_BYTES:
		if ((rc = want_text(c, n, path, "a size", &s)))
			return rc;
		if (parse_bytes(s, AT(obj, f, uint64_t)) < 0)
			return yerr(c, n, path, "invalid size %s (use e.g. \"512m\", \"1g\", \"1.5GiB\" or bytes)",
				    describe(n, d, sizeof d));
		return 0;
	case SF_CPUS:
		if ((rc = want_text(c, n, path, "a cpu count", &s)))
			return rc;
		if (parse_cpus_milli(s, AT(obj, f, uint64_t)) < 0)
			return yerr(c, n, path, "invalid cpus %s (use a number such as 0.5 or 2, at most 3 decimals)",
				    describe(n, d, sizeof d));
		return 0;
	case SF_RATIO: {
		if ((rc = want_text(c, n, path, "a number between 0 and 1", &s)))
			return rc;
		char *end;
		errno = 0;
		double v = strtod(s, &end);
		if (errno || *end || end == s || !(v >= 0 && v <= 1))
			return yerr(c, n, path, "expected a number between 0 and 1, got %s", describe(n, d, sizeof d));
		*AT(obj, f, double) = v;
		return 0;
	}
	case SF_ENUM: {
		if ((rc = want_text(c, n, path, "a string", &s)))
			return rc;
		char list[128] = "";
		for (int i = 0; f->names[i]; i++) {
			if (!strcmp(s, f->names[i])) {
				*AT(obj, f, int) = i;
				return 0;
			}
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", f->names[i]);
		}
		for (int i = 0; f->unsupported && f->unsupported[i]; i++)
			if (!strcmp(s, f->unsupported[i]))
				return yerr(c, n, path, "\"%s\" is not supported by orch (supported: %s)", s, list);
		return yerr(c, n, path, "expected one of %s, got %s", list, describe(n, d, sizeof d));
	}
	case SF_MODE: {
		if ((rc = want_text(c, n, path, "a file mode such as 0400", &s)))
			return rc;
		/* YAML 1.1 (what Compose reads) takes a leading 0 as octal; 0o is YAML 1.2's */
		const char *dg = !strncmp(s, "0o", 2) ? s + 2 : s;
		int base = dg != s || (s[0] == '0' && s[1]) ? 8 : 10;
		bool ok = *dg && strspn(dg, base == 8 ? "01234567" : "0123456789") == strlen(dg) && strlen(dg) <= 6;
		unsigned long v = ok ? strtoul(dg, NULL, base) : 0;
		if (!ok || v > f->hi)
			return yerr(c, n, path, "expected a file mode from 0 to 0%llo (octal, e.g. 0400), got %s",
				    (unsigned long long)f->hi, describe(n, d, sizeof d));
		*AT(obj, f, uint64_t) = v;
		return 0;
	}
	default: return yerr(c, n, path, "internal: not a scalar field");
	}
}

/* ---- collections ---- */

static int parse_table(struct yctx *c, const struct sf_table *t, void *obj, yaml_node_t *n, const char *path);

static int want_list(struct yctx *c, const yaml_node_t *n, const char *path, const char *what)
{
	char d[64];
	if (n->type != YAML_SEQUENCE_NODE)
		return yerr(c, n, path, "expected %s, got %s", what, describe(n, d, sizeof d));
	return 0;
}

#define FOR_ITEMS(c, n, item, i) \
	for (size_t i = 0; i < (size_t)((n)->data.sequence.items.top - (n)->data.sequence.items.start); i++) \
		if (((item) = node((c), (n)->data.sequence.items.start[i])) != NULL)

static int parse_argv(struct yctx *c, struct strv *v, yaml_node_t *n, const char *path)
{
	const char *s;
	char msg[ERR_LEN], ipath[300];
	yaml_node_t *it;
	strv_free(v);
	if (is_null(n))
		return 0;
	if (n->type == YAML_SCALAR_NODE) {
		if (want_text(c, n, path, "a string", &s))
			return E_INVAL;
		if (spec_split_words(s, v, msg))
			return yerr(c, n, path, "%s", msg);
		return 0;
	}
	if (want_list(c, n, path, "a string or a list of strings"))
		return E_INVAL;
	FOR_ITEMS(c, n, it, i) {
		snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (want_text(c, it, ipath, "a string", &s))
			return E_INVAL;
		strv_push(v, s);
	}
	return 0;
}

static bool env_name_ok(const char *k)
{
	return *k && !strchr(k, '=');
}

#define NOVALUE "\"%s\" has no value and no variable of that name is set; write %s: \"\" for an empty value"

/* Entries collected unsorted, then sorted once (labels_set per entry would be quadratic in
 * a mapping of 200,000 keys); for a repeated key the last one wins. */
struct kvs {
	size_t n;
	const char **k, **v;
};

static void kvs_add(struct kvs *x, const char *k, const char *v)
{
	if (!(x->n & (x->n - 1)) || !x->n) {
		size_t cap = x->n ? 2 * x->n : 16;
		x->k = xrealloc(x->k, cap * sizeof *x->k);
		x->v = xrealloc(x->v, cap * sizeof *x->v);
	}
	x->k[x->n] = k;
	x->v[x->n++] = v;
}

static const char *const *sort_keys;
static int kvs_cmp(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(sort_keys[i], sort_keys[j]);
	return c ? c : (i > j) - (i < j);
}

void spec_labels_build(struct labels *l, const char *const *k, const char *const *v, size_t n)
{
	size_t *ord = xcalloc(n + 1, sizeof *ord);
	for (size_t i = 0; i < n; i++)
		ord[i] = i;
	sort_keys = k;
	qsort(ord, n, sizeof *ord, kvs_cmp);
	labels_free(l);
	l->k = xcalloc(n + 1, sizeof *l->k);
	l->v = xcalloc(n + 1, sizeof *l->v);
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && !strcmp(k[ord[i]], k[ord[i + 1]]))
			continue; /* a later entry of the same key wins */
		l->k[l->n] = xstrdup(k[ord[i]]);
		l->v[l->n++] = xstrdup(v[ord[i]]);
	}
	free(ord);
}

static void kvs_finish(struct kvs *x, struct labels *l)
{
	spec_labels_build(l, x->k, x->v, x->n);
	free(x->k);
	free(x->v);
}

/* environment (values required), labels (a missing value is "") and extra_hosts (list
 * items "host:address" or "host=address"). */
/* ulimits' long form {soft: N, hard: M}, kept as "N:M" (spec_ulimit reads it) */
static int ulimit_pair(struct yctx *c, struct kvs *x, const char *key, yaml_node_t *v, const char *path, char ***owned,
		       size_t *nowned)
{
	struct spec_pairs ps = {0};
	const char *soft = NULL, *hard = NULL;
	int rc = collect_pairs(c, v, path, &ps, 0);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		const char **dst = !strcmp(ps.v[i].key, "soft") ? &soft : !strcmp(ps.v[i].key, "hard") ? &hard : NULL;
		if (!dst)
			rc = yerr(c, ps.v[i].k, path, "unknown key \"%s\" (expected soft and hard)", ps.v[i].key);
		else
			rc = want_text(c, ps.v[i].v, path, "a number", dst);
	}
	if (!rc && (!soft || !hard))
		rc = yerr(c, v, path, "give both soft and hard");
	if (!rc) {
		*owned = xrealloc(*owned, (*nowned + 1) * sizeof **owned);
		char *val = (*owned)[(*nowned)++] = xasprintf("%s:%s", soft, hard);
		kvs_add(x, key, val);
	}
	spec_pairs_free(&ps);
	return rc;
}

static int parse_kv(struct yctx *c, bool env, bool hosts, bool ulimits, struct labels *l, yaml_node_t *n,
		    const char *path)
{
	const char *s;
	char ipath[300];
	labels_free(l);
	if (is_null(n))
		return 0;
	struct kvs x = {0};
	char **owned = NULL;
	size_t nowned = 0;
	int rc = 0;
	if (n->type == YAML_MAPPING_NODE) {
		struct spec_pairs ps = {0};
		rc = collect_pairs(c, n, path, &ps, 0);
		for (size_t i = 0; !rc && i < ps.n; i++) {
			join(ipath, sizeof ipath, path, ps.v[i].key);
			if (env && !env_name_ok(ps.v[i].key))
				rc = yerr(c, ps.v[i].k, path, "invalid variable name \"%s\"", ps.v[i].key);
			else if (is_null(ps.v[i].v) && env)
				rc = yerr(c, ps.v[i].v, path, NOVALUE, ps.v[i].key, ps.v[i].key);
			else if (is_null(ps.v[i].v))
				kvs_add(&x, ps.v[i].key, "");
			else if (ulimits && ps.v[i].v->type == YAML_MAPPING_NODE)
				rc = ulimit_pair(c, &x, ps.v[i].key, ps.v[i].v, ipath, &owned, &nowned);
			else if (!(rc = want_text(c, ps.v[i].v, ipath, "a string, number or boolean", &s)))
				kvs_add(&x, ps.v[i].key, s);
		}
		spec_pairs_free(&ps);
	} else if (want_list(c, n, path, env ? "a mapping or a list of KEY=value" : "a mapping or a list of key=value")) {
		return E_INVAL;
	} else {
		yaml_node_t *it;
		size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
		owned = xcalloc(cnt + 1, sizeof *owned);
		FOR_ITEMS(c, n, it, i) {
			snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
			if ((rc = want_text(c, it, ipath, "a string", &s)))
				break;
			const char *eq = strchr(s, '=');
			if (hosts && !eq)
				eq = strchr(s, ':');
			char *k = owned[nowned++] = xstrndup(s, eq ? (size_t)(eq - s) : strlen(s));
			if (!*k || (env && !eq)) {
				rc = !*k ? yerr(c, it, ipath, "missing name before '='") : yerr(c, it, ipath, NOVALUE, k, k);
				break;
			}
			kvs_add(&x, k, eq ? eq + 1 : "");
		}
	}
	if (!rc)
		kvs_finish(&x, l);
	else {
		free(x.k);
		free(x.v);
	}
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	return rc;
}

static int parse_ports(struct yctx *c, struct port_list *l, yaml_node_t *n, const char *path)
{
	const char *s;
	char msg[ERR_LEN], ipath[300];
	yaml_node_t *it;
	if (is_null(n))
		return 0;
	if (want_list(c, n, path, "a list of ports"))
		return E_INVAL;
	FOR_ITEMS(c, n, it, i) {
		snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
		struct port_spec p;
		if (it->type == YAML_MAPPING_NODE) {
			memset(&p, 0, sizeof p);
			p.protocol = PROTO_TCP;
			p.mode = PORT_MODE_INGRESS;
			if (parse_table(c, &port_table, &p, it, ipath))
				return E_INVAL;
		} else {
			if (want_text(c, it, ipath, "\"published:target\" or a mapping with target", &s))
				return E_INVAL;
			if (spec_parse_port(s, &p, msg))
				return yerr(c, it, ipath, "%s", msg);
		}
		l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
		l->v[l->n++] = p;
	}
	return 0;
}

/* secrets: / configs: of a service: "- name" or {source, target, uid, gid, mode} */
static int parse_files(struct yctx *c, const struct sf_table *t, struct file_ref_list *l, yaml_node_t *n, const char *path)
{
	const char *s;
	char msg[ERR_LEN], ipath[300];
	yaml_node_t *it;
	if (is_null(n))
		return 0;
	if (want_list(c, n, path, "a list of names or mappings with source"))
		return E_INVAL;
	FOR_ITEMS(c, n, it, i) {
		snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
		l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
		struct file_ref *r = &l->v[l->n++];
		memset(r, 0, sizeof *r);
		r->mode = 0444;
		if (it->type == YAML_MAPPING_NODE) {
			if (parse_table(c, t, r, it, ipath))
				return E_INVAL;
			continue;
		}
		if (want_text(c, it, ipath, "a name or a mapping with source", &s))
			return E_INVAL;
		r->source = xstrdup(s);
		if (t->check(r, msg))
			return yerr(c, it, ipath, "%s", msg);
	}
	return 0;
}

static const struct volume_decl *volume_find(const struct spec_file *f, const char *key)
{
	for (size_t i = 0; i < f->nvol; i++)
		if (!strcmp(f->vol[i].key, key))
			return &f->vol[i];
	return NULL;
}

static int parse_mounts(struct yctx *c, struct mount_list *l, yaml_node_t *n, const char *path)
{
	const char *s;
	char msg[ERR_LEN], ipath[300];
	yaml_node_t *it;
	if (is_null(n))
		return 0;
	if (want_list(c, n, path, "a list of volumes"))
		return E_INVAL;
	FOR_ITEMS(c, n, it, i) {
		snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
		struct mount_spec m;
		if (it->type == YAML_MAPPING_NODE) {
			memset(&m, 0, sizeof m);
			int rc = parse_table(c, &mount_table, &m, it, ipath);
			if (!rc && spec_mount_source(&m, c->dir, msg))
				rc = yerr(c, it, ipath, "%s", msg);
			if (rc) {
				mount_spec_free(&m);
				return rc;
			}
		} else {
			if (want_text(c, it, ipath, "\"source:target[:ro]\" or a mapping with type and target", &s))
				return E_INVAL;
			if (spec_parse_mount(s, c->dir, &m, msg))
				return yerr(c, it, ipath, "%s", msg);
		}
		if (m.type == MOUNT_VOLUME && m.source && !volume_find(c->f, m.source)) {
			int rc = yerr(c, it, ipath, "volume \"%s\" is not declared in the top-level volumes: key", m.source);
			mount_spec_free(&m);
			return rc;
		}
		l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
		l->v[l->n++] = m;
	}
	return 0;
}

static int parse_constraints(struct yctx *c, struct constraint_list *l, yaml_node_t *n, const char *path)
{
	const char *s;
	char msg[ERR_LEN], ipath[300];
	yaml_node_t *it;
	if (is_null(n))
		return 0;
	if (want_list(c, n, path, "a list of constraints such as \"node.labels.zone == east\""))
		return E_INVAL;
	FOR_ITEMS(c, n, it, i) {
		snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
		struct constraint con;
		if (want_text(c, it, ipath, "a constraint string", &s))
			return E_INVAL;
		if (spec_parse_constraint(s, &con, msg))
			return yerr(c, it, ipath, "%s", msg);
		l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
		l->v[l->n++] = con;
	}
	return 0;
}

static int parse_hctest(struct yctx *c, struct healthcheck *h, yaml_node_t *n, const char *path)
{
	static const char *const words[] = {NULL, "NONE", "CMD", "CMD-SHELL"};
	const char *usage = "test must be [\"CMD\", arg...], [\"CMD-SHELL\", \"command\"], [\"NONE\"] or a string";
	const char *s;
	char ipath[300];
	yaml_node_t *it;
	strv_free(&h->test);
	h->kind = HC_INHERIT;
	if (n->type == YAML_SCALAR_NODE) {
		if (want_text(c, n, path, "a string or a list", &s))
			return E_INVAL;
		if (!*s)
			return yerr(c, n, path, "%s", usage);
		h->kind = HC_CMD_SHELL;
		strv_push(&h->test, s);
		return 0;
	}
	if (want_list(c, n, path, "a string or a list"))
		return E_INVAL;
	int kind = -1;
	FOR_ITEMS(c, n, it, i) {
		snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (want_text(c, it, ipath, "a string", &s))
			return E_INVAL;
		if (i > 0) {
			strv_push(&h->test, s);
			continue;
		}
		for (int k = HC_NONE; k <= HC_CMD_SHELL; k++)
			if (!strcmp(s, words[k]))
				kind = k;
		if (kind < 0)
			return yerr(c, it, ipath, "%s", usage);
	}
	bool ok = (kind == HC_NONE && h->test.n == 0) || (kind == HC_CMD && h->test.n >= 1) ||
		  (kind == HC_CMD_SHELL && h->test.n == 1);
	if (!ok) {
		strv_free(&h->test);
		return yerr(c, n, path, "%s", usage);
	}
	h->kind = kind;
	return 0;
}

/* One more element of a list field, defaults filled, its position recorded. */
/* A node's place, kept for errors found once the whole file is parsed (spec_refs.c). */
static struct spec_pos node_pos(const yaml_node_t *n)
{
	return (struct spec_pos){(unsigned)n->start_mark.index, (unsigned)n->start_mark.line + 1,
				 (unsigned)n->start_mark.column + 1};
}

static void *list_add(const struct sf *f, struct sf_list *l, const yaml_node_t *at)
{
	l->v = xrealloc(l->v, (l->n + 1) * f->size);
	void *e = (char *)l->v + l->n++ * f->size;
	memset(e, 0, f->size);
	sf_table_defaults(f->sub, e);
	if (f->has_pos)
		*(struct spec_pos *)((char *)e + f->pos_off) = node_pos(at);
	return e;
}

static int parse_list(struct yctx *c, const struct sf *f, struct sf_list *l, yaml_node_t *n, const char *path)
{
	char ipath[300];
	yaml_node_t *it;
	if (is_null(n))
		return 0;
	if (want_list(c, n, path, "a list of mappings"))
		return E_INVAL;
	FOR_ITEMS(c, n, it, i) {
		snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (parse_table(c, f->sub, list_add(f, l, it), it, ipath))
			return E_INVAL;
	}
	return 0;
}

static int by_first_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* depends_on, networks: [a, b] or {a: {...}, b: null}. The name is the sub table's
 * first field; entries are kept sorted by it (the canonical order). */
static int parse_named(struct yctx *c, const struct sf *f, struct sf_list *l, yaml_node_t *n, const char *path)
{
	const char *s;
	char ipath[300];
	size_t name_off = f->sub->f[0].off;
	if (is_null(n))
		return 0;
	if (n->type == YAML_MAPPING_NODE) {
		struct spec_pairs ps = {0};
		int rc = collect_pairs(c, n, path, &ps, 0);
		for (size_t i = 0; !rc && i < ps.n; i++) {
			join(ipath, sizeof ipath, path, ps.v[i].key);
			char *e = list_add(f, l, ps.v[i].k);
			*(char **)(e + name_off) = xstrdup(ps.v[i].key);
			rc = parse_table(c, f->sub, e, ps.v[i].v, ipath);
		}
		spec_pairs_free(&ps);
		if (rc)
			return rc;
	} else {
		yaml_node_t *it;
		if (want_list(c, n, path, "a list of names or a mapping"))
			return E_INVAL;
		FOR_ITEMS(c, n, it, i) {
			snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
			if (want_text(c, it, ipath, "a name", &s))
				return E_INVAL;
			for (size_t k = 0; k < l->n; k++)
				if (!strcmp(*(char **)((char *)l->v + k * f->size + name_off), s))
					return yerr(c, it, ipath, "\"%s\" is listed twice", s);
			*(char **)((char *)list_add(f, l, it) + name_off) = xstrdup(s);
		}
	}
	if (name_off == 0 && l->n)
		qsort(l->v, l->n, f->size, by_first_str);
	return 0;
}

static int parse_field(struct yctx *c, const struct sf *f, void *obj, yaml_node_t *n, const char *path)
{
	switch (f->kind) {
	case SF_ARGV: return parse_argv(c, AT(obj, f, struct strv), n, path);
	case SF_ENV: return parse_kv(c, true, false, false, AT(obj, f, struct labels), n, path);
	case SF_LABELS:
		return parse_kv(c, false, f->flags & SFF_HOSTS, f->flags & SFF_ULIMITS, AT(obj, f, struct labels), n, path);
	case SF_PORTS: return parse_ports(c, AT(obj, f, struct port_list), n, path);
	case SF_MOUNTS: return parse_mounts(c, AT(obj, f, struct mount_list), n, path);
	case SF_FILES: return parse_files(c, f->sub, AT(obj, f, struct file_ref_list), n, path);
	case SF_CONSTRAINTS: return parse_constraints(c, AT(obj, f, struct constraint_list), n, path);
	case SF_HCTEST: return parse_hctest(c, AT(obj, f, struct healthcheck), n, path);
	case SF_SUB: return parse_table(c, f->sub, AT(obj, f, char), n, path);
	case SF_LIST: return parse_list(c, f, AT(obj, f, struct sf_list), n, path);
	case SF_NAMED: return parse_named(c, f, AT(obj, f, struct sf_list), n, path);
	default: return parse_scalar(c, f, obj, n, path);
	}
}

/* A mapping against a field list; null counts as an empty mapping. */
static int parse_table(struct yctx *c, const struct sf_table *t, void *obj, yaml_node_t *n, const char *path)
{
	char d[64], sub[300], msg[ERR_LEN];
	const char *known[64];
	size_t nknown = 0;
	uint64_t seen = 0;
	if (!is_null(n) && n->type != YAML_MAPPING_NODE)
		return yerr(c, n, path, "expected a mapping, got %s", describe(n, d, sizeof d));
	for (size_t i = 0; i < t->n && nknown < 64; i++)
		if (!(t->f[i].flags & SFF_NOYAML))
			known[nknown++] = t->f[i].key;
	struct spec_pairs ps = {0};
	int rc = n->type == YAML_MAPPING_NODE ? collect_pairs(c, n, path, &ps, 0) : 0;
	for (size_t i = 0; !rc && i < ps.n; i++) {
		size_t j = 0;
		while (j < t->n && ((t->f[j].flags & SFF_NOYAML) || strcmp(t->f[j].key, ps.v[i].key)))
			j++;
		if (j == t->n) {
			if (!ignored_extension(ps.v[i].key))
				rc = unknown_key(c, ps.v[i].k, path, ps.v[i].key, known, nknown);
			continue;
		}
		seen |= 1ULL << j;
		join(sub, sizeof sub, path, ps.v[i].key);
		rc = parse_field(c, &t->f[j], obj, ps.v[i].v, sub);
	}
	spec_pairs_free(&ps);
	for (size_t j = 0; !rc && j < t->n; j++)
		if ((t->f[j].flags & SFF_REQUIRED) && !(seen & (1ULL << j)))
			rc = yerr(c, n, path, "missing required key \"%s\"", t->f[j].key);
	if (!rc && t->check && t->check(obj, msg))
		rc = yerr(c, n, path, "%s", msg);
	return rc;
}

/* ---- the document ---- */

static int parse_services(struct yctx *c, yaml_node_t *n, struct spec_file *f)
{
	char d[64], path[300];
	if (is_null(n) || (n->type == YAML_MAPPING_NODE && n->data.mapping.pairs.top == n->data.mapping.pairs.start))
		return yerr(c, n, "services", "no services defined");
	if (n->type != YAML_MAPPING_NODE)
		return yerr(c, n, "services", "expected a mapping of service names, got %s", describe(n, d, sizeof d));
	struct spec_pairs ps = {0};
	int rc = collect_pairs(c, n, "services", &ps, 0);
	if (!rc)
		f->svc = xcalloc(ps.n, sizeof *f->svc);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		/* Compose allows upper case; DNS ignores it, so a service is named in lower case */
		char name[SPEC_NAME_MAX + 2];
		snprintf(name, sizeof name, "%s", ps.v[i].key);
		for (char *p = name; *p; p++)
			*p = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
		const struct svc_spec *same = strlen(ps.v[i].key) <= SPEC_NAME_MAX ? spec_file_find(f, name) : NULL;
		if (same) {
			rc = yerr(c, ps.v[i].k, "services", "\"%s\" and \"%s\" are one name: service names ignore case, "
				  "as DNS names do", ps.v[i].key, same->name);
			break;
		}
		if (strlen(ps.v[i].key) > SPEC_NAME_MAX || !spec_name_valid(name)) {
			rc = yerr(c, ps.v[i].k, "services",
				  "invalid service name \"%s\": use letters, digits, '_' and '-', starting "
				  "with a letter or digit, at most %d characters", ps.v[i].key, SPEC_NAME_MAX);
			break;
		}
		struct svc_spec *s = &f->svc[f->nsvc++];
		svc_spec_init(s);
		s->name = xstrdup(name);
		snprintf(path, sizeof path, "services.%s", name);
		rc = parse_table(c, &svc_table, s, ps.v[i].v, path);
		char msg[ERR_LEN];
		if (!rc && spec_seccomp_load(s, c->dir, msg))
			rc = yerr(c, ps.v[i].v, path, "%s", msg);
	}
	spec_pairs_free(&ps);
	return rc;
}

/* Top-level networks: name -> mapping or null. */
static int parse_networks(struct yctx *c, yaml_node_t *n, struct spec_file *f)
{
	char d[64], path[300];
	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return yerr(c, n, "networks", "expected a mapping of network names, got %s", describe(n, d, sizeof d));
	struct spec_pairs ps = {0};
	int rc = collect_pairs(c, n, "networks", &ps, 0);
	if (!rc)
		f->net = xcalloc(ps.n + 1, sizeof *f->net);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		struct spec_network *net = &f->net[f->nnet++];
		sf_table_defaults(&network_table, net);
		net->key = xstrdup(ps.v[i].key);
		net->pos = node_pos(ps.v[i].k);
		snprintf(path, sizeof path, "networks.%s", ps.v[i].key);
		if (!spec_name_valid(net->key))
			rc = yerr(c, ps.v[i].k, "networks", "invalid network name \"%s\": use lowercase letters, digits, "
				  "'_' and '-'", net->key);
		else
			rc = parse_table(c, &network_table, net, ps.v[i].v, path);
		if (!rc && net->name && !spec_name_valid(net->name))
			rc = yerr(c, ps.v[i].v, path, "invalid name \"%s\": use lowercase letters, digits, '_' and '-'", net->name);
	}
	spec_pairs_free(&ps);
	return rc;
}

/* Top-level secrets: / configs: {key: {file: PATH} | {external: true} , name: NAME} */
static int parse_defs(struct yctx *c, yaml_node_t *n, const char *what, struct file_def_list *l)
{
	static const char *const keys[] = {"file", "external", "name"};
	char d[64], path[300];
	const char *s;
	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return yerr(c, n, what, "expected a mapping of %s, got %s", what, describe(n, d, sizeof d));
	struct spec_pairs ps = {0};
	int rc = collect_pairs(c, n, what, &ps, 0);
	if (!rc)
		l->v = xcalloc(ps.n + 1, sizeof *l->v);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		struct file_def *fd = &l->v[l->n++];
		fd->key = xstrdup(ps.v[i].key);
		snprintf(path, sizeof path, "%s.%s", what, ps.v[i].key);
		yaml_node_t *v = ps.v[i].v;
		if (v->type != YAML_MAPPING_NODE) {
			rc = yerr(c, v, path, "expected a mapping with file: or external:, got %s", describe(v, d, sizeof d));
			break;
		}
		struct spec_pairs kp = {0};
		rc = collect_pairs(c, v, path, &kp, 0);
		for (size_t k = 0; !rc && k < kp.n; k++) {
			char sub[340];
			snprintf(sub, sizeof sub, "%s.%s", path, kp.v[k].key);
			if (!strcmp(kp.v[k].key, "file")) {
				if (!(rc = want_text(c, kp.v[k].v, sub, "a path", &s)))
					fd->file = xstrdup(s);
			} else if (!strcmp(kp.v[k].key, "name")) {
				if (!(rc = want_text(c, kp.v[k].v, sub, "a name", &s)))
					fd->name = xstrdup(s);
			} else if (!strcmp(kp.v[k].key, "external")) {
				if (kp.v[k].v->type == YAML_MAPPING_NODE) /* the old form external: {name: N} */
					rc = yerr(c, kp.v[k].v, sub, "use external: true with name: NAME");
				else if (!(rc = want_text(c, kp.v[k].v, sub, "true or false", &s)))
					fd->external = !strcmp(s, "true") || !strcmp(s, "True");
			} else if (!strcmp(kp.v[k].key, "environment") || !strcmp(kp.v[k].key, "content") ||
				   !strcmp(kp.v[k].key, "driver") || !strcmp(kp.v[k].key, "template_driver")) {
				rc = yerr(c, kp.v[k].k, sub, "not supported by orch (use file: or external: true)");
			} else if (!ignored_extension(kp.v[k].key)) {
				rc = unknown_key(c, kp.v[k].k, path, kp.v[k].key, keys, 3);
			}
		}
		spec_pairs_free(&kp);
		if (!rc && !fd->external == !fd->file)
			rc = yerr(c, v, path, "give exactly one of file: and external: true");
	}
	spec_pairs_free(&ps);
	return rc;
}

/* Every secret and config a service names is declared at the top level. */
static int check_refs(struct yctx *c, yaml_node_t *root, const struct spec_file *f)
{
	for (size_t i = 0; i < f->nsvc; i++) {
		const struct svc_spec *sp = &f->svc[i];
		for (size_t k = 0; k < sp->secrets.n + sp->configs.n; k++) {
			bool sec = k < sp->secrets.n;
			const struct file_ref *r = sec ? &sp->secrets.v[k] : &sp->configs.v[k - sp->secrets.n];
			char path[300];
			snprintf(path, sizeof path, "services.%s.%s", sp->name, sec ? "secrets" : "configs");
			if (!spec_file_def(sec ? &f->secrets : &f->configs, r->source))
				return yerr(c, root, path, "%s %s is not declared under the top-level %s: key", sec ? "secret" : "config",
					    r->source, sec ? "secrets" : "configs");
		}
	}
	return 0;
}

/* One top-level volumes: entry; only the local driver (a directory on the node). */
static int parse_volume_decl(struct yctx *c, const struct spec_pair *e, struct volume_decl *v)
{
	static const char *const keys[] = {"driver", "driver_opts", "external", "labels", "name"};
	char path[300], sub[300], msg[ERR_LEN], d[64];
	const char *s;
	snprintf(path, sizeof path, "volumes.%s", e->key);
	struct mount_spec m = {.type = MOUNT_VOLUME, .source = xstrdup(e->key)};
	int rc = spec_mount_source(&m, NULL, msg);
	v->key = m.source;
	m.source = NULL;
	mount_spec_free(&m);
	if (rc)
		return yerr(c, e->k, "volumes", "%s", msg);
	if (is_null(e->v))
		return 0;
	if (e->v->type != YAML_MAPPING_NODE)
		return yerr(c, e->v, path, "expected a mapping, got %s", describe(e->v, d, sizeof d));
	struct spec_pairs ps = {0};
	rc = collect_pairs(c, e->v, path, &ps, 0);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		const char *k = ps.v[i].key;
		yaml_node_t *n = ps.v[i].v;
		join(sub, sizeof sub, path, k);
		if (!strcmp(k, "driver")) {
			if (!(rc = want_text(c, n, sub, "a string", &s)) && strcmp(s, "local"))
				rc = yerr(c, n, sub, "volume driver \"%s\" is not supported by orch (only local: a directory on the node)", s);
		} else if (!strcmp(k, "driver_opts")) {
			if (!is_null(n) && (n->type != YAML_MAPPING_NODE || n->data.mapping.pairs.top != n->data.mapping.pairs.start))
				rc = yerr(c, n, sub, "driver_opts are not supported by orch: a local volume is a plain directory on its node");
		} else if (!strcmp(k, "external")) {
			if (!(rc = want_text(c, n, sub, "true or false", &s))) {
				if (!strcmp(s, "true") || !strcmp(s, "True"))
					v->external = true;
				else if (strcmp(s, "false") && strcmp(s, "False"))
					rc = yerr(c, n, sub, "expected true or false, got %s", describe(n, d, sizeof d));
			}
		} else if (!strcmp(k, "labels")) {
			rc = parse_kv(c, false, false, false, &v->labels, n, sub);
		} else if (!strcmp(k, "name")) {
			if (!(rc = want_text(c, n, sub, "a string", &s))) {
				struct mount_spec nm = {.type = MOUNT_VOLUME, .source = xstrdup(s)};
				if (spec_mount_source(&nm, NULL, msg))
					rc = yerr(c, n, sub, "%s", msg);
				else
					v->name = nm.source, nm.source = NULL;
				mount_spec_free(&nm);
			}
		} else if (!ignored_extension(k)) {
			rc = unknown_key(c, ps.v[i].k, path, k, keys, sizeof keys / sizeof keys[0]);
		}
	}
	spec_pairs_free(&ps);
	return rc;
}

static int parse_volumes(struct yctx *c, yaml_node_t *n, struct spec_file *f)
{
	char d[64];
	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return yerr(c, n, "volumes", "expected a mapping of volume names, got %s", describe(n, d, sizeof d));
	struct spec_pairs ps = {0};
	int rc = collect_pairs(c, n, "volumes", &ps, 0);
	if (!rc)
		f->vol = xcalloc(ps.n + 1, sizeof *f->vol);
	for (size_t i = 0; !rc && i < ps.n; i++)
		rc = parse_volume_decl(c, &ps.v[i], &f->vol[f->nvol++]);
	spec_pairs_free(&ps);
	return rc;
}

static int parse_root(struct yctx *c, yaml_node_t *root, struct spec_file *f)
{
	static const char *const top[] = {"version", "name", "services", "secrets", "configs", "volumes", "networks"};
	char d[64];
	const char *s;
	if (root->type != YAML_MAPPING_NODE)
		return yerr(c, root, "", "expected a mapping with \"services:\" at the top level, got %s",
			    describe(root, d, sizeof d));
	struct spec_pairs ps = {0};
	yaml_node_t *services = NULL, *volumes = NULL;
	int rc = collect_pairs(c, root, "", &ps, 0);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		const char *key = ps.v[i].key;
		yaml_node_t *v = ps.v[i].v;
		if (!strcmp(key, "version")) {
			rc = want_text(c, v, "version", "a string", &s); /* informative only, as in Compose */
		} else if (!strcmp(key, "name")) {
			if (!(rc = want_text(c, v, "name", "a string", &s)) && !spec_name_valid(s))
				rc = yerr(c, v, "name", "invalid project name \"%s\": use lowercase letters, digits, "
					  "'_' and '-', at most %d characters", s, SPEC_NAME_MAX);
			if (!rc)
				f->name = xstrdup(s);
		} else if (!strcmp(key, "services")) {
			services = v;
		} else if (!strcmp(key, "secrets")) {
			rc = parse_defs(c, v, "secrets", &f->secrets);
		} else if (!strcmp(key, "configs")) {
			rc = parse_defs(c, v, "configs", &f->configs);
		} else if (!strcmp(key, "volumes")) {
			volumes = v;
		} else if (!strcmp(key, "networks")) {
			rc = parse_networks(c, v, f);
		} else if (!ignored_extension(key)) {
			rc = unknown_key(c, ps.v[i].k, "", key, top, 7);
		}
	}
	spec_pairs_free(&ps);
	if (!rc && volumes) /* first: the services' mounts refer to them */
		rc = parse_volumes(c, volumes, f);
	if (!rc && !services)
		rc = yerr(c, root, "", "missing required key \"services\"");
	if (!rc)
		rc = parse_services(c, services, f);
	if (!rc)
		rc = check_refs(c, root, f);
	if (!rc)
		rc = spec_check_refs(f, c->src->files, c->src->nfiles, c->err);
	return rc;
}

int spec_parse_doc(const struct spec_src *src, yaml_document_t *doc, struct spec_file **out, char *err)
{
	struct yctx c = {.src = src, .doc = doc, .err = err, .file = src->nfiles ? src->files[0] : "-"};
	yaml_node_t *root = yaml_document_get_root_node(doc);
	*out = NULL;
	if (!root || is_null(root))
		return errf(err, E_INVAL, "%s: the file is empty; expected \"services:\"", src->nfiles ? src->files[0] : "?");
	struct spec_file *f = xcalloc(1, sizeof *f);
	const char *slash = strrchr(c.file, '/');
	c.f = f;
	c.dir = slash ? xstrndup(c.file, (size_t)(slash - c.file) + 1) : NULL;
	int rc = parse_root(&c, root, f);
	free(c.dir);
	if (rc) {
		spec_file_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

int spec_parse_buf(const char *name, const char *data, size_t len, struct spec_file **out, char *err)
{
	const char *files[] = {name};
	struct compose_opts o = {.files = files, .nfiles = 1, .data = data, .data_len = len, .no_dotenv = true};
	return compose_load(&o, out, NULL, err);
}

int spec_parse_file(const char *path, struct spec_file **out, char *err)
{
	const char *files[] = {path};
	struct compose_opts o = {.files = files, .nfiles = 1, .no_dotenv = true};
	return compose_load(&o, out, NULL, err);
}

void spec_file_free(struct spec_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nsvc; i++)
		svc_spec_free(&f->svc[i]);
	free(f->svc);
	for (size_t i = 0; i < f->nnet; i++)
		sf_table_free(&network_table, &f->net[i]);
	free(f->net);
	free(f->name);
	for (int k = 0; k < 2; k++) {
		struct file_def_list *l = k ? &f->configs : &f->secrets;
		for (size_t i = 0; i < l->n; i++) {
			free(l->v[i].key);
			free(l->v[i].file);
			free(l->v[i].name);
		}
		free(l->v);
	}
	for (size_t i = 0; i < f->nvol; i++) {
		free(f->vol[i].key);
		free(f->vol[i].name);
		labels_free(&f->vol[i].labels);
	}
	free(f->vol);
	free(f);
}

const struct file_def *spec_file_def(const struct file_def_list *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].key, key))
			return &l->v[i];
	return NULL;
}

const struct svc_spec *spec_file_find(const struct spec_file *f, const char *svc)
{
	for (size_t i = 0; i < f->nsvc; i++)
		if (!strcmp(f->svc[i].name, svc))
			return &f->svc[i];
	return NULL;
}

void spec_file_qualify(struct spec_file *f, const char *project)
{
	for (size_t i = 0; i < f->nsvc; i++)
		for (size_t j = 0; j < f->svc[i].mounts.n; j++) {
			struct mount_spec *m = &f->svc[i].mounts.v[j];
			const struct volume_decl *v = m->type == MOUNT_VOLUME && m->source ? volume_find(f, m->source) : NULL;
			if (!v)
				continue;
			char *name = v->name ? xstrdup(v->name) : v->external || !project || !*project
									   ? xstrdup(v->key)
									   : xasprintf("%s_%s", project, v->key);
			free(m->source);
			m->source = name;
			m->external = v->external;
			labels_free(&m->labels);
			for (size_t k = 0; k < v->labels.n; k++)
				labels_set(&m->labels, v->labels.k[k], v->labels.v[k]);
		}
}
