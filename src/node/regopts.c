#include "node/regopts.h"
#include "node/host.h"
#include "secret/secrets.h"
#include "spec/units.h"
#include "util/err.h"
#include "util/layout.h"
#include "util/mem.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The names on the command line (--NAME) and in the kept file (NAME VALUE per line). */
static const char *const names[RO__COUNT] = {
	[RO_INSECURE] = "insecure-registry",
	[RO_MIRROR] = "registry-mirror",
	[RO_CA_DIR] = "registry-ca-dir",
	[RO_GC_GRACE] = "image-gc-grace",
};

void regopts_init(struct regopts *o)
{
	memset(o, 0, sizeof *o);
	o->cfg.ca_dir = xstrdup(REGOPTS_CA_DIR);
	o->gc_grace_ms = REGOPTS_GC_GRACE_MS;
}

static void clear_kind(struct regopts *o, enum regopt k)
{
	switch (k) {
	case RO_INSECURE:
		for (size_t i = 0; i < o->cfg.ninsecure; i++)
			free(o->cfg.insecure[i]);
		o->cfg.ninsecure = 0;
		break;
	case RO_MIRROR: free(o->cfg.mirror); o->cfg.mirror = NULL; break;
	case RO_CA_DIR: free(o->cfg.ca_dir); o->cfg.ca_dir = NULL; break;
	default: break;
	}
}

void regopts_free(struct regopts *o)
{
	for (int k = 0; k < RO__COUNT; k++)
		clear_kind(o, (enum regopt)k);
}

/* host[:port] as an image reference's registry part reads it (image/ref.h); a mirror may
 * also say its scheme. */
static bool host_ok(const char *v, bool scheme)
{
	if (scheme && !strncmp(v, "http://", 7))
		v += 7;
	else if (scheme && !strncmp(v, "https://", 8))
		v += 8;
	char ref[REF_DOMAIN_MAX + 8], err[ERR_LEN];
	struct image_ref r;
	size_t n = strlen(v);
	if (!n || n > REF_DOMAIN_MAX || (scheme && v[n - 1] == '/'))
		return false;
	snprintf(ref, sizeof ref, "%s/x", v);
	return !image_ref_parse(ref, &r, err) && !strcmp(r.domain, v);
}

int regopts_set(struct regopts *o, enum regopt k, const char *val, char *err)
{
	uint64_t ms;
	switch (k) {
	case RO_INSECURE:
		if (!host_ok(val, false))
			return errf(err, E_INVAL, "--%s %.80s: expected HOST[:PORT], like 10.0.0.5:5000", names[k], val);
		if (!o->given[k])
			clear_kind(o, k); /* given ones replace loaded ones, they do not add to them */
		if (o->cfg.ninsecure == REG_HOSTS_MAX)
			return errf(err, E_INVAL, "--%s: at most %d registries", names[k], REG_HOSTS_MAX);
		o->cfg.insecure[o->cfg.ninsecure++] = xstrdup(val);
		break;
	case RO_MIRROR:
		if (!host_ok(val, true))
			return errf(err, E_INVAL, "--%s %.80s: expected [http://|https://]HOST[:PORT]", names[k], val);
		clear_kind(o, k);
		o->cfg.mirror = xstrdup(val);
		break;
	case RO_CA_DIR:
		if (val[0] != '/' || strchr(val, '\n'))
			return errf(err, E_INVAL, "--%s %.80s: expected an absolute directory", names[k], val);
		clear_kind(o, k);
		o->cfg.ca_dir = xstrdup(val);
		break;
	case RO_GC_GRACE:
		if (parse_duration_ms(val, &ms))
			return errf(err, E_INVAL, "--%s %.80s: expected a duration like 1h or 30m", names[k], val);
		o->gc_grace_ms = ms;
		break;
	default: return errf(err, E_INVAL, "unknown registry option");
	}
	o->given[k] = true;
	return 0;
}

int regopts_load(struct regopts *o, const char *data_dir, char *err)
{
	char p[LAYOUT_PATH_MAX], line[600];
	layout_path(p, sizeof p, data_dir, LAYOUT_REGISTRY);
	FILE *f = fopen(p, "r");
	if (!f)
		return errno == ENOENT ? 0 : errf(err, E_IO, "%s: %s", p, strerror(errno));
	int rc = 0;
	struct regopts got;
	regopts_init(&got);
	while (!rc && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		char *sp = strchr(line, ' ');
		int k = 0;
		if (sp) {
			*sp = 0;
			while (k < RO__COUNT && strcmp(names[k], line))
				k++;
		}
		if (!sp || k == RO__COUNT)
			rc = errf(err, E_INVAL, "%s: unknown line %.40s", p, line);
		else if (k == RO_GC_GRACE)
			got.gc_grace_ms = strtoull(sp + 1, NULL, 10), got.given[k] = true;
		else if ((rc = regopts_set(&got, (enum regopt)k, sp + 1, err)))
			errwrap(err, rc, "%s", p);
	}
	fclose(f);
	if (!rc)
		regopts_merge(o, &got);
	regopts_free(&got);
	return rc;
}

int regopts_save(const struct regopts *o, const char *data_dir, char *err)
{
	char p[LAYOUT_PATH_MAX], tmp[LAYOUT_PATH_MAX + 8];
	layout_path(p, sizeof p, data_dir, LAYOUT_REGISTRY);
	snprintf(tmp, sizeof tmp, "%s.tmp", p);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return errf(err, E_IO, "%s: %s", tmp, strerror(errno));
	for (size_t i = 0; i < o->cfg.ninsecure; i++)
		fprintf(f, "%s %s\n", names[RO_INSECURE], o->cfg.insecure[i]);
	if (o->cfg.mirror)
		fprintf(f, "%s %s\n", names[RO_MIRROR], o->cfg.mirror);
	if (o->cfg.ca_dir)
		fprintf(f, "%s %s\n", names[RO_CA_DIR], o->cfg.ca_dir);
	fprintf(f, "%s %llu\n", names[RO_GC_GRACE], (unsigned long long)o->gc_grace_ms);
	if (fclose(f) || rename(tmp, p)) {
		unlink(tmp);
		return errf(err, E_IO, "%s: %s", p, strerror(errno));
	}
	return 0;
}

void regopts_merge(struct regopts *o, const struct regopts *given)
{
	if (given->given[RO_INSECURE]) {
		clear_kind(o, RO_INSECURE);
		for (size_t i = 0; i < given->cfg.ninsecure; i++)
			o->cfg.insecure[o->cfg.ninsecure++] = xstrdup(given->cfg.insecure[i]);
	}
	if (given->given[RO_MIRROR]) {
		clear_kind(o, RO_MIRROR);
		o->cfg.mirror = given->cfg.mirror ? xstrdup(given->cfg.mirror) : NULL;
	}
	if (given->given[RO_CA_DIR]) {
		clear_kind(o, RO_CA_DIR);
		o->cfg.ca_dir = given->cfg.ca_dir ? xstrdup(given->cfg.ca_dir) : NULL;
	}
	if (given->given[RO_GC_GRACE])
		o->gc_grace_ms = given->gc_grace_ms;
	for (int k = 0; k < RO__COUNT; k++)
		o->given[k] |= given->given[k];
}

void regopts_login(const struct host *h, const struct regopts *o, const struct image_ref *ref, struct reg_login *login)
{
	memset(login, 0, sizeof *login);
	const char *hosts[2] = {ref->domain, NULL};
	const char *m = o->cfg.mirror;
	if (m && !strcmp(ref->domain, REF_DEFAULT_DOMAIN)) /* the mirror is asked as itself */
		hosts[1] = !strncmp(m, "http://", 7) ? m + 7 : !strncmp(m, "https://", 8) ? m + 8 : m;
	for (size_t i = 0; i < 2 && hosts[i]; i++) {
		char err[ERR_LEN];
		struct reg_cred *w = &login->who[login->n];
		/* none stored (or not readable here): the pull goes anonymously and the registry
		 * says what it refuses */
		if (secrets_registry_creds(h, hosts[i], w->user, sizeof w->user, w->pass, sizeof w->pass, err))
			continue;
		snprintf(w->host, sizeof w->host, "%s", hosts[i]);
		login->n++;
	}
}

static int login_creds(void *ctx, const char *host, char *user, size_t usize, char *pass, size_t psize, char *err)
{
	const struct reg_login *l = ctx;
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->who[i].host, host)) {
			if (strlen(l->who[i].user) >= usize || strlen(l->who[i].pass) >= psize)
				return errf(err, E_INVAL, "the credentials stored for %s are too long", host);
			snprintf(user, usize, "%s", l->who[i].user);
			snprintf(pass, psize, "%s", l->who[i].pass);
			return 0;
		}
	return E_NOTFOUND;
}

void regopts_bind(struct reg_config *cfg, const struct regopts *o, struct reg_login *login)
{
	*cfg = o->cfg;
	cfg->creds = login_creds;
	cfg->creds_ctx = login;
}

void regopts_wipe(struct reg_login *login)
{
	explicit_bzero(login, sizeof *login);
}

void regopts_given(struct reg_login *login, const msgpack_object *arr)
{
	for (uint32_t i = 0; arr && arr->type == MSGPACK_OBJECT_ARRAY && i < arr->via.array.size && login->n < 2; i++) {
		const msgpack_object *o = &arr->via.array.ptr[i], *v = mp_get(o, "value");
		struct reg_cred *c = &login->who[login->n];
		if (!v || v->type != MSGPACK_OBJECT_BIN || mp_get_strbuf(o, "host", c->host, sizeof c->host))
			continue;
		const char *b = v->via.bin.ptr, *nul = memchr(b, 0, v->via.bin.size);
		size_t ul = nul ? (size_t)(nul - b) : 0, pl = nul ? v->via.bin.size - ul - 1 : 0;
		if (!nul || ul >= sizeof c->user || pl >= sizeof c->pass)
			continue;
		memcpy(c->user, b, ul);
		c->user[ul] = 0;
		memcpy(c->pass, nul + 1, pl);
		c->pass[pl] = 0;
		login->n++;
	}
}
