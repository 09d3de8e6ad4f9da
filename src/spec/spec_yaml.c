/* YAML spec files -> struct spec_file. libyaml builds the node tree (anchors and aliases
 * resolved); this file walks it against the field lists in spec_table.c, so every key is
 * either known or an error naming file:line:column, and nothing is silently ignored
 * except Compose's x-* extensions (x-orch-* keys are ours and are checked). */
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
#define SPEC_FILE_MAX (16u << 20)
/* Merge keys and aliases can multiply work; a spec never needs more than this many
 * mapping entries visited. */
#define WORK_MAX 1000000
#define MERGE_DEPTH_MAX 8

struct yctx {
	const char *file;
	yaml_document_t *doc;
	char *err;
	size_t work;
};

struct pair {
	yaml_node_t *k, *v;
	const char *key;
};
struct pairs {
	size_t n;
	struct pair *v;
};

static int yerr(struct yctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int yerr(struct yctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
	char msg[ERR_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	size_t line = n->start_mark.line + 1, col = n->start_mark.column + 1;
	if (*path)
		return errf(c->err, E_INVAL, "%s:%zu:%zu: %s: %s", c->file, line, col, path, msg);
	return errf(c->err, E_INVAL, "%s:%zu:%zu: %s", c->file, line, col, msg);
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

/* Compose writes a literal "$" as "$$" (orch does no ${VAR} interpolation: other "$"
 * are kept as written). */
static void unescape_dollars(yaml_document_t *doc)
{
	for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++) {
		if (n->type != YAML_SCALAR_NODE || !n->data.scalar.value)
			continue;
		unsigned char *v = n->data.scalar.value;
		size_t r = 0, w = 0, len = n->data.scalar.length;
		for (; r < len; r++, w++) {
			v[w] = v[r];
			if (v[r] == '$' && r + 1 < len && v[r + 1] == '$')
				r++;
		}
		v[w] = 0;
		n->data.scalar.length = w;
	}
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

static const struct pair *pairs_find(const struct pairs *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i].key, key))
			return &p->v[i];
	return NULL;
}

static void pairs_add(struct pairs *p, const struct pair *x)
{
	p->v = xrealloc(p->v, (p->n + 1) * sizeof *p->v);
	p->v[p->n++] = *x;
}

/* The entries of a mapping in file order; keys merged with << come after, and explicit
 * keys win over merged ones, as YAML's merge key type says. */
static int collect_pairs(struct yctx *c, yaml_node_t *map, const char *path, struct pairs *out, int depth)
{
	char d[64];
	if (depth > MERGE_DEPTH_MAX)
		return yerr(c, map, path, "merge keys (<<) nested too deeply");
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		struct pair x = {node(c, p->key), node(c, p->value), NULL};
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
		const struct pair *dup = pairs_find(out, x.key);
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
			struct pairs tmp = {0};
			int rc = collect_pairs(c, src, path, &tmp, depth + 1);
			for (size_t i = 0; !rc && i < tmp.n; i++)
				if (!pairs_find(out, tmp.v[i].key))
					pairs_add(out, &tmp.v[i]);
			free(tmp.v);
			if (rc)
				return rc;
		}
	}
	return 0;
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
	{"build", "build the image elsewhere and load it with `orch image load`"},
	{"restart", "use deploy.restart_policy.condition"},
	{"mem_limit", "use deploy.resources.limits.memory"},
	{"cpus", "use deploy.resources.limits.cpus"},
	{"scale", "use deploy.replicas"},
	{"container_name", "tasks are named after their service"},
	{"volumes", NULL}, {"secrets", NULL}, {"configs", NULL},
	{"env_file", NULL}, {"expose", NULL}, {"links", NULL},
	{"cap_add", NULL}, {"cap_drop", NULL}, {"devices", NULL}, {"dns", NULL},
	{"extra_hosts", NULL}, {"logging", NULL}, {"privileged", NULL}, {"read_only", NULL},
	{"tmpfs", NULL}, {"ulimits", NULL}, {"init", NULL}, {"profiles", NULL},
	{"sysctls", NULL}, {"security_opt", NULL}, {"shm_size", NULL}, {"tty", NULL},
	{"stdin_open", NULL}, {"platform", NULL}, {"pull_policy", NULL}, {"endpoint_mode", NULL},
	{"start_interval", NULL}, {"host_ip", NULL}, {"app_protocol", NULL},
	{"generic_resources", NULL}, {"include", NULL},
	{"ipv4_address", "orch assigns task addresses itself"}, {"ipv6_address", "orch assigns task addresses itself"},
	{"link_local_ips", NULL}, {"mac_address", NULL}, {"priority", NULL}, {"internal", NULL}, {"ipam", NULL},
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
	if (best)
		return yerr(c, k, path, "unknown key \"%s\" (did you mean \"%s\"?)", key, best);
	for (size_t i = 0; i < sizeof compose_unsupported / sizeof compose_unsupported[0]; i++) {
		if (strcmp(compose_unsupported[i].key, key))
			continue;
		if (compose_unsupported[i].hint)
			return yerr(c, k, path, "key \"%s\" is not supported by orch; %s", key, compose_unsupported[i].hint);
		return yerr(c, k, path, "key \"%s\" is not supported by orch", key);
	}
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

#define NOVALUE "\"%s\" has no value; orch does not read the deploying shell's environment, " \
		"write %s: \"\" for an empty value"

/* environment (values required) and labels (a missing value is ""). */
static int parse_kv(struct yctx *c, bool env, struct labels *l, yaml_node_t *n, const char *path)
{
	const char *s;
	char ipath[300];
	labels_free(l);
	if (is_null(n))
		return 0;
	if (n->type == YAML_MAPPING_NODE) {
		struct pairs ps = {0};
		int rc = collect_pairs(c, n, path, &ps, 0);
		for (size_t i = 0; !rc && i < ps.n; i++) {
			join(ipath, sizeof ipath, path, ps.v[i].key);
			if (env && !env_name_ok(ps.v[i].key))
				rc = yerr(c, ps.v[i].k, path, "invalid variable name \"%s\"", ps.v[i].key);
			else if (is_null(ps.v[i].v) && env)
				rc = yerr(c, ps.v[i].v, path, NOVALUE, ps.v[i].key, ps.v[i].key);
			else if (is_null(ps.v[i].v))
				labels_set(l, ps.v[i].key, "");
			else if (!(rc = want_text(c, ps.v[i].v, ipath, "a string, number or boolean", &s)))
				labels_set(l, ps.v[i].key, s);
		}
		free(ps.v);
		return rc;
	}
	yaml_node_t *it;
	if (want_list(c, n, path, env ? "a mapping or a list of KEY=value" : "a mapping or a list of key=value"))
		return E_INVAL;
	FOR_ITEMS(c, n, it, i) {
		snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (want_text(c, it, ipath, "a string", &s))
			return E_INVAL;
		const char *eq = strchr(s, '=');
		char *k = xstrndup(s, eq ? (size_t)(eq - s) : strlen(s));
		int rc = 0;
		if (!*k || (env && !eq))
			rc = !*k ? yerr(c, it, ipath, "missing name before '='") : yerr(c, it, ipath, NOVALUE, k, k);
		else
			labels_set(l, k, eq ? eq + 1 : "");
		free(k);
		if (rc)
			return rc;
	}
	return 0;
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
static void *list_add(const struct sf *f, struct sf_list *l, const yaml_node_t *at)
{
	l->v = xrealloc(l->v, (l->n + 1) * f->size);
	void *e = (char *)l->v + l->n++ * f->size;
	memset(e, 0, f->size);
	sf_table_defaults(f->sub, e);
	if (f->has_pos)
		*(struct spec_pos *)((char *)e + f->pos_off) =
			(struct spec_pos){(unsigned)at->start_mark.line + 1, (unsigned)at->start_mark.column + 1};
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
		struct pairs ps = {0};
		int rc = collect_pairs(c, n, path, &ps, 0);
		for (size_t i = 0; !rc && i < ps.n; i++) {
			join(ipath, sizeof ipath, path, ps.v[i].key);
			char *e = list_add(f, l, ps.v[i].k);
			*(char **)(e + name_off) = xstrdup(ps.v[i].key);
			rc = parse_table(c, f->sub, e, ps.v[i].v, ipath);
		}
		free(ps.v);
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
	case SF_ENV: return parse_kv(c, true, AT(obj, f, struct labels), n, path);
	case SF_LABELS: return parse_kv(c, false, AT(obj, f, struct labels), n, path);
	case SF_PORTS: return parse_ports(c, AT(obj, f, struct port_list), n, path);
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
	struct pairs ps = {0};
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
	free(ps.v);
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
	struct pairs ps = {0};
	int rc = collect_pairs(c, n, "services", &ps, 0);
	if (!rc)
		f->svc = xcalloc(ps.n, sizeof *f->svc);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		const char *name = ps.v[i].key;
		if (!spec_name_valid(name)) {
			rc = yerr(c, ps.v[i].k, "services",
				  "invalid service name \"%s\": use lowercase letters, digits, '_' and '-', starting "
				  "with a letter or digit, at most %d characters", name, SPEC_NAME_MAX);
			break;
		}
		struct svc_spec *s = &f->svc[f->nsvc++];
		svc_spec_init(s);
		s->name = xstrdup(name);
		snprintf(path, sizeof path, "services.%s", name);
		rc = parse_table(c, &svc_table, s, ps.v[i].v, path);
	}
	free(ps.v);
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
	struct pairs ps = {0};
	int rc = collect_pairs(c, n, "networks", &ps, 0);
	if (!rc)
		f->net = xcalloc(ps.n + 1, sizeof *f->net);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		struct spec_network *net = &f->net[f->nnet++];
		sf_table_defaults(&network_table, net);
		net->key = xstrdup(ps.v[i].key);
		net->pos = (struct spec_pos){(unsigned)ps.v[i].k->start_mark.line + 1, (unsigned)ps.v[i].k->start_mark.column + 1};
		snprintf(path, sizeof path, "networks.%s", ps.v[i].key);
		if (!spec_name_valid(net->key))
			rc = yerr(c, ps.v[i].k, "networks", "invalid network name \"%s\": use lowercase letters, digits, "
				  "'_' and '-'", net->key);
		else
			rc = parse_table(c, &network_table, net, ps.v[i].v, path);
		if (!rc && net->name && !spec_name_valid(net->name))
			rc = yerr(c, ps.v[i].v, path, "invalid name \"%s\": use lowercase letters, digits, '_' and '-'", net->name);
	}
	free(ps.v);
	return rc;
}

static int parse_root(struct yctx *c, yaml_node_t *root, struct spec_file *f)
{
	static const char *const top[] = {"version", "name", "services", "networks"};
	char d[64];
	const char *s;
	if (root->type != YAML_MAPPING_NODE)
		return yerr(c, root, "", "expected a mapping with \"services:\" at the top level, got %s",
			    describe(root, d, sizeof d));
	struct pairs ps = {0};
	yaml_node_t *services = NULL;
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
		} else if (!strcmp(key, "networks")) {
			rc = parse_networks(c, v, f);
		} else if (!ignored_extension(key)) {
			rc = unknown_key(c, ps.v[i].k, "", key, top, 4);
		}
	}
	free(ps.v);
	if (!rc && !services)
		rc = yerr(c, root, "", "missing required key \"services\"");
	if (!rc)
		rc = parse_services(c, services, f);
	if (!rc)
		rc = spec_check_refs(f, c->file, c->err);
	return rc;
}

static int yaml_syntax_error(const yaml_parser_t *p, const char *file, const char *data, size_t len, char *err)
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

int spec_parse_buf(const char *name, const char *data, size_t len, struct spec_file **out, char *err)
{
	yaml_parser_t p;
	yaml_document_t doc, extra;
	int rc;
	*out = NULL;
	if (!yaml_parser_initialize(&p))
		return errf(err, E_FAIL, "%s: cannot initialise the yaml parser", name);
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	if (!yaml_parser_load(&p, &doc)) {
		rc = yaml_syntax_error(&p, name, data, len, err);
		yaml_parser_delete(&p);
		return rc;
	}
	struct yctx c = {name, &doc, err, 0};
	unescape_dollars(&doc);
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	struct spec_file *f = xcalloc(1, sizeof *f);
	if (!root || is_null(root)) {
		rc = errf(err, E_INVAL, "%s: the file is empty; expected \"services:\"", name);
	} else if (!yaml_parser_load(&p, &extra)) {
		rc = yaml_syntax_error(&p, name, data, len, err);
	} else {
		yaml_node_t *r2 = yaml_document_get_root_node(&extra);
		if (r2)
			rc = yerr(&c, r2, "", "more than one yaml document; put all services in one document");
		else
			rc = parse_root(&c, root, f);
		yaml_document_delete(&extra);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	if (rc) {
		spec_file_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

int spec_parse_file(const char *path, struct spec_file **out, char *err)
{
	*out = NULL;
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return errf(err, E_IO, "open %s: %s", path, strerror(errno));
	struct buf b = {0};
	char chunk[65536];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
		if (b.len + n > SPEC_FILE_MAX) {
			rc = errf(err, E_INVAL, "%s: file is larger than %u MiB; not a spec file?", path, SPEC_FILE_MAX >> 20);
			break;
		}
		buf_append(&b, chunk, n);
	}
	if (!rc && ferror(fp))
		rc = errf(err, E_IO, "read %s: %s", path, strerror(errno));
	fclose(fp);
	if (!rc)
		rc = spec_parse_buf(path, b.data ? (const char *)b.data : "", b.len, out, err);
	buf_free(&b);
	return rc;
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
	free(f);
}

const struct svc_spec *spec_file_find(const struct spec_file *f, const char *svc)
{
	for (size_t i = 0; i < f->nsvc; i++)
		if (!strcmp(f->svc[i].name, svc))
			return &f->svc[i];
	return NULL;
}
