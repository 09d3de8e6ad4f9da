/* The services of a Compose project, one by one (see compose_ctx.h): extends: resolved,
 * profiles applied, env_file: and environment: folded into one mapping, and build:,
 * container_name:, links: warned about and dropped. */
#include "spec/compose_ctx.h"
#include "spec/dotenv.h"
#include "spec/interp.h"
#include "util/err.h"
#include "util/mem.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- extends: ---- */

int compose_services_of(struct compose_ctx *c, int root, int *svcs)
{
	struct spec_pairs ps = {0};
	int rc = ydoc_pairs(&c->y, root, "", &ps);
	const struct spec_pair *s = rc ? NULL : spec_pairs_find(&ps, "services");
	*svcs = s && ydoc_node(&c->y, YDOC_SELF, s->vid)->type == YAML_MAPPING_NODE ? s->vid : 0;
	spec_pairs_free(&ps);
	return rc;
}

/* The service name of the mapping svcs, its extends: resolved: *res a new node. */
static int resolve(struct compose_ctx *c, int svcs, const char *name, int at, int depth, int *res)
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
	const char *base = compose_text_of(c, ext), *file = NULL;
	int fileid = 0;
	if (!base) {
		struct spec_pairs xs = {0};
		if ((rc = ydoc_pairs(&c->y, ext, epath, &xs)))
			return rc;
		for (size_t i = 0; !rc && i < xs.n; i++) {
			if (!strcmp(xs.v[i].key, "service"))
				base = compose_text_of(c, xs.v[i].vid);
			else if (!strcmp(xs.v[i].key, "file")) {
				if (!(file = compose_text_of(c, fileid = xs.v[i].vid)))
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
		char *p = compose_rel_path(compose_file_of(c, fileid), file);
		int root = 0;
		rc = compose_root_of(c, p, depth + 1, &root);
		if (!rc && (rc = compose_services_of(c, root, &from)) == 0 && !from)
			rc = errf(c->err, E_INVAL, "%s: no services: mapping (extended by %s)", p, path);
		free(p);
	}
	if (!rc)
		rc = resolve(c, from, base, ext, depth + 1, &bid);
	static const char *const drop[] = {"extends"};
	int own = 0;
	if (!rc)
		rc = compose_map_edit(c, sid, path, drop, 1, NULL, 0, &own);
	if (!rc && ydoc_node(&c->y, YDOC_SELF, bid)->type != YAML_MAPPING_NODE)
		return spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, bid), path, c->err, "extends: %s is not a mapping", base);
	if (!rc)
		rc = ydoc_merge(&c->y, bid, YDOC_SELF, own, path, res);
	return rc;
}

/* ---- per service ---- */

static bool profile_active(struct compose_ctx *c, const char *p)
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

static int environment(struct compose_ctx *c, int envf, int envv, const char *path, int like, int *res)
{
	struct labels vars = {0};
	struct kv all = {0};
	int *items = NULL;
	size_t n = 0;
	char epath[320];
	snprintf(epath, sizeof epath, "%s.env_file", path);
	int rc = envf ? compose_str_list(c, envf, epath, &items, &n) : 0;
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
			const char *rt = r ? compose_text_of(c, r->vid) : NULL;
			required = !rt || strcmp(rt, "false");
			if (rt && strcmp(rt, "true") && strcmp(rt, "false"))
				rc = spec_node_err(&c->src, r->v, epath, c->err, "required: expected true or false");
			for (size_t j = 0; !rc && j < ps.n; j++)
				if (strcmp(ps.v[j].key, "path") && strcmp(ps.v[j].key, "required"))
					rc = spec_node_err(&c->src, ps.v[j].k, epath, c->err, "key \"%s\" is %s", ps.v[j].key,
							   strcmp(ps.v[j].key, "format") ? "unknown (expected path or required)"
											 : "not supported by orch");
			spec_pairs_free(&ps);
			if (!rc && !pid)
				rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, items[i]), epath, c->err,
						   "missing required key \"path\"");
			if (rc)
				break;
		}
		const char *t = compose_text_of(c, pid);
		if (!t || !*t) {
			rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, pid), epath, c->err, "expected a file path");
			break;
		}
		char *p = compose_rel_path(compose_file_of(c, pid), t), msg[ERR_LEN];
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
				const char *s = compose_text_of(c, *it);
				if (!s) {
					rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, *it), epath, c->err,
							   "expected a string KEY=value");
					break;
				}
				const char *eq = strchr(s, '=');
				char *k = xstrndup(s, eq ? (size_t)(eq - s) : strlen(s)), ipath[400];
				const char *v = eq ? eq + 1 : interp_lookup(&c->env, k);
				snprintf(ipath, sizeof ipath, "%s[%zu]", epath, (size_t)(it - nd.data.sequence.items.start));
				if (!*k) {
					rc = spec_node_err(&c->src, ydoc_node(&c->y, YDOC_SELF, *it), ipath, c->err,
							   "missing name before '='");
					free(k);
				} else if (v) {
					kv_add(&all, kv_own(&all, k), v);
				} else {
					free(k);
				}
			}
		} else if (nd.type == YAML_MAPPING_NODE) {
			struct spec_pairs ps = {0};
			rc = ydoc_pairs(&c->y, envv, epath, &ps);
			for (size_t i = 0; !rc && i < ps.n; i++) {
				yaml_node_t *vn = ydoc_node(&c->y, YDOC_SELF, ps.v[i].vid);
				bool null = vn->type == YAML_SCALAR_NODE && vn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
					    (!vn->data.scalar.length || !strcmp((char *)vn->data.scalar.value, "~") ||
					     !strcmp((char *)vn->data.scalar.value, "null"));
				const char *v = null ? interp_lookup(&c->env, ps.v[i].key) : compose_text_of(c, ps.v[i].vid);
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
static int service(struct compose_ctx *c, const char *name, int sid, bool *keep, int *res)
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
		rc = compose_str_list(c, prof->vid, ppath, &items, &n);
		bool on = false;
		for (size_t i = 0; !rc && i < n; i++) {
			const char *t = compose_text_of(c, items[i]);
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
			compose_warn_at(c, p->kid, path, "%s is ignored: %s", ignored[i][0], ignored[i][1]);
	}
	const struct spec_pair *build = spec_pairs_find(&ps, "build");
	int add[4], nadd = 0;
	if (!rc && *keep && build && img) {
		compose_warn_at(c, build->kid, path, "build is ignored; the image comes from image: %s", compose_text_of(c, img->vid) ? compose_text_of(c, img->vid) : "");
	} else if (!rc && *keep && build) {
		char image[200];
		snprintf(image, sizeof image, "%s-%s", c->project, name);
		for (char *p = image; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		compose_warn_at(c, build->kid, path, "build is ignored; the service uses image %s, the name Compose gives the image it builds (build it elsewhere, then load or push it)", image);
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
		rc = compose_map_edit(c, sid, path, drop, 7, add, (size_t)nadd / 2, res);
	return rc;
}

int compose_services(struct compose_ctx *c, int root, int *res)
{
	int svcs = 0;
	int rc = compose_services_of(c, root, &svcs);
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
		rc = compose_map_edit(c, root, "", drop, 1, add, 1, res);
	}
	free(kv);
	spec_pairs_free(&ps);
	return rc;
}

