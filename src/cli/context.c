#include "cli/context.h"
#include "util/err.h"
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int context_path(char *buf, size_t n, char *err)
{
	const char *e = getenv("ORCH_CONFIG"), *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	int w;
	if (e && *e)
		w = snprintf(buf, n, "%s", e);
	else if (x && *x)
		w = snprintf(buf, n, "%s/orch/config", x);
	else if (h && *h)
		w = snprintf(buf, n, "%s/.config/orch/config", h);
	else
		return errf(err, E_INVAL, "no context file: set ORCH_CONFIG or HOME");
	if (w < 0 || (size_t)w >= n)
		return errf(err, E_INVAL, "context file path too long");
	return 0;
}

int context_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (!n || n > 63 || !strcmp(name, "local"))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-", name[i]))
			return 0;
	return 1;
}

struct context *context_find(struct contexts *cs, const char *name)
{
	for (size_t i = 0; i < cs->n; i++)
		if (!strcmp(cs->v[i].name, name))
			return &cs->v[i];
	return NULL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

/* "key: value" into dst (n bytes): 1 when line is that key, -1 when its value does not fit */
static int keyval(const char *line, const char *key, char *dst, size_t n)
{
	size_t k = strlen(key);
	if (strncmp(line, key, k) || line[k] != ':')
		return 0;
	const char *v = line + k + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strlen(v) >= n)
		return -1;
	snprintf(dst, n, "%s", v);
	return 1;
}

int context_load(const char *path, struct contexts *cs, char *err)
{
	memset(cs, 0, sizeof *cs);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : errf(err, E_IO, "%s: %s", path, strerror(errno));
	char raw[2048];
	int lineno = 0, rc = 0;
	struct context *cur = NULL;
	while (!rc && fgets(raw, sizeof raw, f)) {
		lineno++;
		bool indented = raw[0] == ' ' || raw[0] == '\t';
		char *line = trim(raw);
		if (!*line || *line == '#')
			continue;
		int r;
		if (!indented && !strncmp(line, "context ", 8)) {
			char *name = trim(line + 8);
			if (!context_name_valid(name) || context_find(cs, name) || cs->n == CONTEXT_MAX)
				rc = errf(err, E_INVAL, "%s:%d: bad, repeated or one too many context name: %s", path, lineno, name);
			else {
				cur = &cs->v[cs->n++];
				snprintf(cur->name, sizeof cur->name, "%s", name);
			}
		} else if (!indented && (r = keyval(line, "current", cs->current, sizeof cs->current))) {
			if (r < 0)
				rc = errf(err, E_INVAL, "%s:%d: context name too long", path, lineno);
			cur = NULL;
		} else if (indented && cur && (r = keyval(line, "host", cur->host, sizeof cur->host))) {
			if (r < 0)
				rc = errf(err, E_INVAL, "%s:%d: host too long", path, lineno);
		} else if (indented && cur && (r = keyval(line, "cert-bundle", cur->bundle, sizeof cur->bundle))) {
			if (r < 0)
				rc = errf(err, E_INVAL, "%s:%d: cert-bundle path too long", path, lineno);
		} else
			rc = errf(err, E_INVAL, "%s:%d: expected current: NAME, context NAME, or an indented host: or cert-bundle: line",
				  path, lineno);
	}
	fclose(f);
	if (!strcmp(cs->current, "local"))
		cs->current[0] = 0;
	return rc;
}

static int mkdirs(char *dir)
{
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int r = mkdir(dir, 0700);
		*p = '/';
		if (r && errno != EEXIST)
			return -1;
	}
	return mkdir(dir, 0700) && errno != EEXIST ? -1 : 0;
}

int context_save(const char *path, const struct contexts *cs, char *err)
{
	char dir[1024], tmp[1100];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdirs(dir))
			return errf(err, E_IO, "%s: %s", dir, strerror(errno));
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return errf(err, E_IO, "%s: %s", tmp, strerror(errno));
	fchmod(fileno(f), 0600);
	fprintf(f, "# orch contexts: see orch-context(1)\ncurrent: %s\n", cs->current[0] ? cs->current : "local");
	for (size_t i = 0; i < cs->n; i++)
		fprintf(f, "\ncontext %s\n  host: %s\n  cert-bundle: %s\n", cs->v[i].name, cs->v[i].host, cs->v[i].bundle);
	bool bad = fflush(f) || fsync(fileno(f));
	bad = fclose(f) || bad;
	if (bad || rename(tmp, path)) {
		int e = errno;
		unlink(tmp);
		return errf(err, E_IO, "%s: %s", path, strerror(e));
	}
	return 0;
}
