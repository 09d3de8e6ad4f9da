/* The rules that span services of one file: each service's networks are defined under the
 * top-level networks: (or are the implicit "default"), and depends_on names services of
 * the file without cycles. Errors point at the entry that breaks the rule. Also the
 * network identities used to scope service names (traffic/dns.c). */
#include "spec/spec.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The files a spec was loaded from, to name where an entry was written. */
struct files {
	const char *const *v;
	size_t n;
};

static int at(char *err, const struct files *fs, const struct spec_pos *p, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int at(char *err, const struct files *fs, const struct spec_pos *p, const char *path, const char *fmt, ...)
{
	char msg[ERR_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const char *file = p->file < fs->n ? fs->v[p->file] : "?";
	return errf(err, E_INVAL, "%s:%u:%u: %s: %s", file, p->line, p->col, path, msg);
}

static const struct spec_network *net_find(const struct spec_file *f, const char *key)
{
	for (size_t i = 0; i < f->nnet; i++)
		if (!strcmp(f->net[i].key, key))
			return &f->net[i];
	return NULL;
}

/* The cluster-wide name a top-level network gives, or NULL for "<project>_<key>". */
static const char *net_ref(const struct spec_network *n)
{
	if (n->name)
		return n->name;
	return n->external ? n->key : NULL;
}

static int resolve_networks(struct spec_file *f, const struct files *file, char *err)
{
	const struct spec_network *def = net_find(f, "default");
	for (size_t i = 0; i < f->nsvc; i++) {
		struct svc_spec *s = &f->svc[i];
		char path[128];
		snprintf(path, sizeof path, "services.%s.networks", s->name);
		if (s->network_mode == NET_HOST && s->networks.n)
			return at(err, file, &s->networks.v[0].pos, path, "networks do not apply with network_mode: host");
		for (size_t k = 0; k < s->networks.n; k++) {
			struct svc_net *sn = &s->networks.v[k];
			const struct spec_network *n = net_find(f, sn->name);
			if (!n && strcmp(sn->name, "default"))
				return at(err, file, &sn->pos, path, "network \"%s\" is not defined under the top-level networks:",
					  sn->name);
			free(sn->ref);
			sn->ref = n && net_ref(n) ? xstrdup(net_ref(n)) : NULL;
		}
		/* an implicit "default" that the file renamed or made external */
		if (!s->networks.n && s->network_mode != NET_HOST && def && net_ref(def)) {
			s->networks.v = xcalloc(1, sizeof *s->networks.v);
			s->networks.n = 1;
			s->networks.v[0].name = xstrdup("default");
			s->networks.v[0].ref = xstrdup(net_ref(def));
		}
	}
	return 0;
}

static long svc_index(const struct spec_file *f, const char *name)
{
	for (size_t i = 0; i < f->nsvc; i++)
		if (!strcmp(f->svc[i].name, name))
			return (long)i;
	return -1;
}

/* Depth-first search from service i; state 1 = on the path, 2 = done. */
static int visit(const struct spec_file *f, size_t i, unsigned char *state, size_t *stack, size_t depth, const struct files *file,
		 char *err)
{
	state[i] = 1;
	stack[depth] = i;
	const struct svc_spec *s = &f->svc[i];
	for (size_t k = 0; k < s->depends_on.n; k++) {
		long j = svc_index(f, s->depends_on.v[k].service);
		if (j < 0 || state[j] == 2)
			continue;
		if (state[j] == 1) {
			char cycle[ERR_LEN] = "", path[128];
			size_t from = 0;
			while (stack[from] != (size_t)j)
				from++;
			for (size_t d = from; d <= depth; d++)
				snprintf(cycle + strlen(cycle), sizeof cycle - strlen(cycle), "%s -> ", f->svc[stack[d]].name);
			snprintf(cycle + strlen(cycle), sizeof cycle - strlen(cycle), "%s", f->svc[j].name);
			snprintf(path, sizeof path, "services.%s.depends_on", s->name);
			return at(err, file, &s->depends_on.v[k].pos, path, "dependency cycle: %s", cycle);
		}
		int rc = visit(f, (size_t)j, state, stack, depth + 1, file, err);
		if (rc)
			return rc;
	}
	state[i] = 2;
	return 0;
}

static int check_depends(const struct spec_file *f, const struct files *file, char *err)
{
	for (size_t i = 0; i < f->nsvc; i++) {
		const struct svc_spec *s = &f->svc[i];
		char path[128];
		snprintf(path, sizeof path, "services.%s.depends_on", s->name);
		for (size_t k = 0; k < s->depends_on.n; k++) {
			const struct dep *d = &s->depends_on.v[k];
			if (!strcmp(d->service, s->name))
				return at(err, file, &d->pos, path, "service %s depends on itself", s->name);
			if (svc_index(f, d->service) < 0 && d->required)
				return at(err, file, &d->pos, path,
					  "unknown service \"%s\" (not in this file; set required: false to start without it)",
					  d->service);
		}
	}
	unsigned char *state = xcalloc(f->nsvc + 1, 1);
	size_t *stack = xcalloc(f->nsvc + 1, sizeof *stack);
	int rc = 0;
	for (size_t i = 0; !rc && i < f->nsvc; i++)
		if (!state[i])
			rc = visit(f, i, state, stack, 0, file, err);
	free(state);
	free(stack);
	return rc;
}

/* FNV-1a over the canonical encoding: it only has to change when the spec does. */
static void spec_digest(const struct svc_spec *s, char out[17])
{
	struct mpw w;
	mpw_init(&w);
	svc_spec_encode(s, &w);
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < w.sb.size; i++)
		h = (h ^ (uint8_t)w.sb.data[i]) * 0x100000001b3ull;
	mpw_free(&w);
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* depends_on restart: true, for service i after its dependencies (no cycles by now). */
static void link_restarts(struct spec_file *f, size_t i, unsigned char *done)
{
	if (done[i])
		return;
	done[i] = 1;
	struct svc_spec *s = &f->svc[i];
	for (size_t k = 0; k < s->depends_on.n; k++) {
		struct dep *d = &s->depends_on.v[k];
		long j = svc_index(f, d->service);
		if (!d->restart || j < 0)
			continue;
		link_restarts(f, (size_t)j, done);
		char hex[17];
		spec_digest(&f->svc[j], hex);
		free(d->digest);
		d->digest = xstrdup(hex);
	}
}

int spec_check_refs(struct spec_file *f, const char *const *files, size_t nfiles, char *err)
{
	struct files fs = {files, nfiles};
	int rc = resolve_networks(f, &fs, err);
	if (!rc)
		rc = check_depends(f, &fs, err);
	unsigned char *done = rc ? NULL : xcalloc(f->nsvc + 1, 1);
	for (size_t i = 0; !rc && i < f->nsvc; i++)
		link_restarts(f, i, done);
	free(done);
	return rc;
}

void spec_network_id(const char *project, const struct svc_net *n, char *out, size_t size)
{
	if (n->ref)
		snprintf(out, size, "%s", n->ref);
	else
		snprintf(out, size, "%s_%s", project ? project : "", n->name);
}

static const struct svc_net default_net = {.name = "default"};

bool spec_share_network(const char *pa, const struct svc_spec *a, const char *pb, const struct svc_spec *b)
{
	if (a->network_mode == NET_HOST || b->network_mode == NET_HOST)
		return false;
	size_t na = a->networks.n ? a->networks.n : 1, nb = b->networks.n ? b->networks.n : 1;
	for (size_t i = 0; i < na; i++) {
		char x[160];
		spec_network_id(pa, a->networks.n ? &a->networks.v[i] : &default_net, x, sizeof x);
		for (size_t j = 0; j < nb; j++) {
			char y[160];
			spec_network_id(pb, b->networks.n ? &b->networks.v[j] : &default_net, y, sizeof y);
			if (!strcmp(x, y))
				return true;
		}
	}
	return false;
}
