/* The small value syntaxes inside a spec: shell-like words, port short syntax,
 * placement constraints and names. Pure string functions, no YAML. */
#include "spec/spec_table.h"
#include "image/ref.h"
#include <arpa/inet.h>
#include "util/err.h"
#include "util/mem.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void strv_push(struct strv *v, const char *s)
{
	v->v = xrealloc(v->v, (v->n + 1) * sizeof *v->v);
	v->v[v->n++] = xstrdup(s);
}

void strv_free(struct strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

bool spec_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SPEC_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
		if (!ok)
			return false;
	}
	return true;
}

/* Splits like a POSIX shell without expansions: whitespace separates words, '...' is
 * literal, "..." honours \" \\ \$ \`, and a backslash outside quotes escapes one char. */
int spec_split_words(const char *s, struct strv *out, char *msg)
{
	struct buf w = {0};
	struct strv v = {0};
	bool inword = false;
	const char *p = s;
	while (*p) {
		char c = *p;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (inword) {
				buf_append(&w, "", 1);
				strv_push(&v, (const char *)w.data);
				w.len = 0;
				inword = false;
			}
			p++;
			continue;
		}
		inword = true;
		if (c == '\'') {
			const char *end = strchr(p + 1, '\'');
			if (!end)
				goto unclosed;
			buf_append(&w, p + 1, (size_t)(end - p - 1));
			p = end + 1;
		} else if (c == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
					p++;
				buf_append(&w, p, 1);
				p++;
			}
			if (!*p)
				goto unclosed;
			p++;
		} else if (c == '\\' && p[1]) {
			buf_append(&w, p + 1, 1);
			p += 2;
		} else {
			buf_append(&w, p, 1);
			p++;
		}
	}
	if (inword) {
		buf_append(&w, "", 1);
		strv_push(&v, (const char *)w.data);
	}
	buf_free(&w);
	*out = v;
	return 0;
unclosed:
	buf_free(&w);
	strv_free(&v);
	return errf(msg, E_INVAL, "unclosed quote in \"%s\"", s);
}

static int port_num(const char *s, size_t n, uint64_t *out)
{
	if (n == 0 || n > 5)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = v;
	return 0;
}

int spec_parse_port(const char *s, struct port_spec *p, char *msg)
{
	memset(p, 0, sizeof *p);
	p->protocol = PROTO_TCP;
	p->mode = PORT_MODE_INGRESS;
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	if (slash) {
		if (!strcmp(slash + 1, "tcp"))
			p->protocol = PROTO_TCP;
		else if (!strcmp(slash + 1, "udp"))
			p->protocol = PROTO_UDP;
		else
			return errf(msg, E_INVAL, "port \"%s\": protocol must be tcp or udp", s);
	}
	if (memchr(s, '-', len))
		return errf(msg, E_INVAL, "port \"%s\": port ranges are not supported; list each port", s);
	const char *colon = memchr(s, ':', len);
	if (colon && (memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) || s[0] == '['))
		return errf(msg, E_INVAL,
			    "port \"%s\": binding to a host ip is not supported; use \"published:target\"", s);
	if (!colon) {
		if (port_num(s, len, &p->target) < 0)
			goto bad;
		return 0;
	}
	if (port_num(s, (size_t)(colon - s), &p->published) < 0 ||
	    port_num(colon + 1, len - (size_t)(colon + 1 - s), &p->target) < 0)
		goto bad;
	return 0;
bad:
	return errf(msg, E_INVAL,
		    "port \"%s\": expected \"target\", \"published:target\" or \"published:target/udp\" "
		    "with ports 1-65535", s);
}

static char *trimdup(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

int spec_parse_constraint(const char *s, struct constraint *c, char *msg)
{
	memset(c, 0, sizeof *c);
	const char *eq = strstr(s, "=="), *ne = strstr(s, "!=");
	const char *op = eq && (!ne || eq < ne) ? eq : ne;
	if (!op)
		return errf(msg, E_INVAL, "constraint \"%s\": expected \"<attribute> == <value>\" or \"!=\"", s);
	c->eq = op == eq;
	char *lhs = trimdup(s, (size_t)(op - s));
	char *rhs = trimdup(op + 2, strlen(op + 2));
	int rc = 0;
	if (!*rhs || *rhs == '=' || strstr(rhs, "==") || strstr(rhs, "!=")) {
		rc = errf(msg, E_INVAL, "constraint \"%s\": missing or malformed value after the operator", s);
	} else if (!strcmp(lhs, "node.name")) {
		c->what = CON_NODE_NAME;
	} else if (!strcmp(lhs, "node.hostname")) {
		c->what = CON_NODE_HOSTNAME;
	} else if (!strncmp(lhs, "node.labels.", 12) && lhs[12]) {
		c->what = CON_NODE_LABEL;
		c->label = xstrdup(lhs + 12);
	} else if (!strcmp(lhs, "node.id")) {
		c->what = CON_NODE_ID;
	} else if (!strcmp(lhs, "node.role")) {
		c->what = CON_NODE_ROLE;
		if (strcmp(rhs, "manager") && strcmp(rhs, "worker"))
			rc = errf(msg, E_INVAL, "constraint \"%s\": node.role is manager or worker", s);
	} else if (!strcmp(lhs, "node.platform.os")) {
		c->what = CON_NODE_OS;
	} else if (!strcmp(lhs, "node.platform.arch")) {
		c->what = CON_NODE_ARCH;
	} else {
		rc = errf(msg, E_INVAL,
			  "constraint \"%s\": unsupported attribute \"%s\" (use node.labels.<key>, node.hostname, "
			  "node.name, node.id, node.role, node.platform.os or node.platform.arch)", s, lhs);
	}
	free(lhs);
	if (rc) {
		free(rhs);
		return rc;
	}
	c->value = rhs;
	return 0;
}

void spec_format_constraint(const struct constraint *c, char *out, size_t size)
{
	const char *op = c->eq ? "==" : "!=";
	switch (c->what) {
	case CON_NODE_NAME: snprintf(out, size, "node.name %s %s", op, c->value); break;
	case CON_NODE_HOSTNAME: snprintf(out, size, "node.hostname %s %s", op, c->value); break;
	case CON_NODE_ID: snprintf(out, size, "node.id %s %s", op, c->value); break;
	case CON_NODE_ROLE: snprintf(out, size, "node.role %s %s", op, c->value); break;
	case CON_NODE_OS: snprintf(out, size, "node.platform.os %s %s", op, c->value); break;
	case CON_NODE_ARCH: snprintf(out, size, "node.platform.arch %s %s", op, c->value); break;
	default: snprintf(out, size, "node.labels.%s %s %s", c->label, op, c->value); break;
	}
}

int spec_signal(const char *name)
{
	static const struct { const char *n; int v; } sigs[] = {
		{"HUP", 1}, {"INT", 2}, {"QUIT", 3}, {"KILL", 9}, {"USR1", 10}, {"USR2", 12},
		{"TERM", 15}, {"WINCH", 28}, {"PWR", 30},
	};
	if (!name || !*name)
		return 0;
	char *end;
	long v = strtol(name, &end, 10);
	if (!*end)
		return v >= 1 && v <= 31 ? (int)v : 0;
	const char *n = strncmp(name, "SIG", 3) ? name : name + 3;
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (!strcmp(n, sigs[i].n))
			return sigs[i].v;
	return 0;
}

/* ---- Compose's service keys beside deploy: (restart, expose, extra_hosts, dns, platform,
 * image references) ---- */

static bool ip_literal(const char *s)
{
	unsigned char b[16];
	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* "80", "80/udp", "8000-8010/tcp" */
static bool expose_ok(const char *s)
{
	char *end;
	unsigned long a = strtoul(s, &end, 10), b = a;
	if (end == s || !isdigit((unsigned char)*s))
		return false;
	if (*end == '-') {
		const char *t = end + 1;
		b = strtoul(t, &end, 10);
		if (end == t || !isdigit((unsigned char)*t))
			return false;
	}
	return a >= 1 && b <= 65535 && a <= b && (!*end || !strcmp(end, "/tcp") || !strcmp(end, "/udp"));
}

int spec_compose_keys(struct svc_spec *s, char *msg)
{
	if (s->restart) {
		/* Compose's restart: mapped to the restart policy; deploy.restart_policy, the
		 * cluster form, wins when both are written (docker stack deploy reads only it) */
		const char *r = s->restart;
		struct restart_policy *p = &s->deploy.restart;
		int cond = -1;
		uint64_t max = 0;
		if (!strcmp(r, "no") || !strcmp(r, "false"))
			cond = RESTART_NONE;
		else if (!strcmp(r, "always") || !strcmp(r, "unless-stopped"))
			cond = RESTART_ANY;
		else if (!strcmp(r, "on-failure"))
			cond = RESTART_ON_FAILURE;
		else if (!strncmp(r, "on-failure:", 11) && isdigit((unsigned char)r[11]) &&
			 strspn(r + 11, "0123456789") == strlen(r + 11) && strlen(r + 11) < 10) {
			cond = RESTART_ON_FAILURE;
			max = strtoull(r + 11, NULL, 10);
		}
		if (cond < 0)
			return errf(msg, E_INVAL, "restart \"%s\": expected no, always, on-failure[:N] or unless-stopped", r);
		if (!p->given) {
			p->condition = cond;
			p->max_attempts = max;
		}
	}
	for (size_t i = 0; i < s->expose.n; i++)
		if (!expose_ok(s->expose.v[i]))
			return errf(msg, E_INVAL, "expose \"%s\": expected a port such as 80, 80/udp or 8000-8010", s->expose.v[i]);
	for (size_t i = 0; i < s->extra_hosts.n; i++) {
		if (!ip_literal(s->extra_hosts.v[i]))
			return errf(msg, E_INVAL, "extra_hosts %s: \"%s\" is not an IP address", s->extra_hosts.k[i],
				    s->extra_hosts.v[i]);
		if (strpbrk(s->extra_hosts.k[i], " \t\n#"))
			return errf(msg, E_INVAL, "extra_hosts: \"%s\" is not a host name", s->extra_hosts.k[i]);
	}
	for (size_t i = 0; i < s->dns.n; i++)
		if (!ip_literal(s->dns.v[i]))
			return errf(msg, E_INVAL, "dns \"%s\": expected the IP address of a name server", s->dns.v[i]);
	for (size_t i = 0; i < s->dns_search.n; i++)
		if (!*s->dns_search.v[i] || strpbrk(s->dns_search.v[i], " \t\n#"))
			return errf(msg, E_INVAL, "dns_search \"%s\": expected a domain name", s->dns_search.v[i]);
	if (s->platform) {
		const char *p = s->platform, *slash = strchr(p, '/');
		bool ok = slash && slash > p && slash[1] && strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_/") == strlen(p);
		if (!ok)
			return errf(msg, E_INVAL, "platform \"%s\": expected os/arch[/variant] such as linux/amd64", p);
		if (strncmp(p, "linux/", 6))
			return errf(msg, E_INVAL, "platform \"%s\": orch runs linux containers only", p);
	}
	if (s->image) { /* kept as written: lookups compare normalised forms (image/ref.h) */
		struct image_ref ref;
		char err[ERR_LEN];
		if (image_ref_parse(s->image, &ref, err))
			return errf(msg, E_INVAL, "%s", err);
	}
	return 0;
}

/* The Go-style architecture names images use, for the kernel's machine names. */
static const char *arch_of_machine(const char *m)
{
	static const char *const map[][2] = {{"x86_64", "amd64"}, {"aarch64", "arm64"}, {"armv7l", "arm"},
					     {"armv6l", "arm"}, {"i686", "386"}, {"i386", "386"},
					     {"ppc64le", "ppc64le"}, {"s390x", "s390x"}, {"riscv64", "riscv64"}};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strcmp(m, map[i][0]))
			return map[i][1];
	return m;
}

bool spec_platform_matches(const char *platform, const char *machine, char *here, size_t n)
{
	const char *arch = arch_of_machine(machine);
	snprintf(here, n, "linux/%s", arch);
	if (strncmp(platform, "linux/", 6))
		return false;
	const char *a = platform + 6, *slash = strchr(a, '/');
	size_t len = slash ? (size_t)(slash - a) : strlen(a);
	return len == strlen(arch) && !strncmp(a, arch, len); /* a variant (v7, v8) is not checked */
}

/* ---- volumes ---- */

const char *spec_bind_nowhere(const struct svc_spec *sp, const char *(*node_binds)(void *ctx, size_t i), void *ctx)
{
	for (size_t k = 0; k < sp->mounts.n; k++) {
		const struct mount_spec *m = &sp->mounts.v[k];
		if (m->type != MOUNT_BIND || !m->source)
			continue;
		bool somewhere = false;
		const char *binds;
		for (size_t i = 0; !somewhere && (binds = node_binds(ctx, i)); i++)
			somewhere = spec_path_allowed(binds, m->source);
		if (!somewhere)
			return m->source;
	}
	return NULL;
}

bool spec_volume_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 127 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(s + i, SPEC_SLOT_TEMPLATE, strlen(SPEC_SLOT_TEMPLATE))) {
			i += strlen(SPEC_SLOT_TEMPLATE) - 1;
			continue;
		}
		char c = s[i];
		if (!isalnum((unsigned char)c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

bool spec_volume_name(const char *source, uint64_t slot, char *out, size_t size)
{
	struct buf b = {0};
	const char *p = source, *t;
	char num[24];
	snprintf(num, sizeof num, "%llu", (unsigned long long)slot);
	while ((t = strstr(p, SPEC_SLOT_TEMPLATE))) {
		buf_append(&b, p, (size_t)(t - p));
		buf_append(&b, num, strlen(num));
		p = t + strlen(SPEC_SLOT_TEMPLATE);
	}
	buf_append(&b, p, strlen(p) + 1);
	bool ok = b.len <= size && b.len <= 128 && spec_volume_name_valid((const char *)b.data) &&
		  !strstr((const char *)b.data, SPEC_SLOT_TEMPLATE);
	if (ok)
		memcpy(out, b.data, b.len);
	else if (size)
		out[0] = 0;
	buf_free(&b);
	return ok;
}

/* Swarm's "{{.Task.Slot}}" (with or without inner spaces) becomes "{slot}"; any other
 * "{{" is refused by the name check that follows. */
static char *slot_template(const char *s)
{
	struct buf b = {0};
	const char *p = s;
	while (*p) {
		if (p[0] == '{' && p[1] == '{') {
			const char *q = p + 2;
			while (*q == ' ')
				q++;
			if (!strncmp(q, ".Task.Slot", 10)) {
				q += 10;
				while (*q == ' ')
					q++;
				if (q[0] == '}' && q[1] == '}') {
					buf_append(&b, SPEC_SLOT_TEMPLATE, strlen(SPEC_SLOT_TEMPLATE));
					p = q + 2;
					continue;
				}
			}
		}
		buf_append(&b, p, 1);
		p++;
	}
	buf_append(&b, "", 1);
	return (char *)b.data;
}

/* Lexically clean an absolute path: no "//", "/./" or "..", no trailing "/". */
static char *clean_path(const char *abs)
{
	size_t n = strlen(abs);
	char *out = xcalloc(n + 2, 1);
	size_t w = 0;
	const char *p = abs;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 1 && p[0] == '.') {
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (w > 0 && out[w - 1] != '/')
				w--;
			if (w > 0)
				w--;
		} else {
			out[w++] = '/';
			memcpy(out + w, p, len);
			w += len;
		}
		p += len;
	}
	if (!w)
		out[w++] = '/';
	out[w] = 0;
	return out;
}

/* A host path as written in a spec: absolute, "./" or "../" relative to dir, or "~/". */
static int host_path(const char *s, const char *dir, char **out, char *msg)
{
	char *joined;
	if (s[0] == '/')
		joined = xstrdup(s);
	else if (s[0] == '~' && (s[1] == '/' || !s[1])) {
		const char *home = getenv("HOME");
		if (!home || home[0] != '/')
			return errf(msg, E_INVAL, "%s: HOME is not set to an absolute path", s);
		joined = xasprintf("%s%s", home, s + 1);
	} else if (s[0] == '.') {
		char cwd[4096];
		if (dir && dir[0] == '/')
			snprintf(cwd, sizeof cwd, "%s", dir);
		else if (!getcwd(cwd, sizeof cwd))
			return errf(msg, E_IO, "%s: cannot read the current directory", s);
		else if (dir && *dir)
			snprintf(cwd + strlen(cwd), sizeof cwd - strlen(cwd), "/%s", dir);
		joined = xasprintf("%s/%s", cwd, s);
	} else
		return errf(msg, E_INVAL, "%s: not a host path", s);
	*out = clean_path(joined);
	free(joined);
	return 0;
}

static bool is_host_path(const char *s)
{
	return s[0] == '/' || s[0] == '.' || s[0] == '~';
}

int spec_mount_source(struct mount_spec *m, const char *dir, char *msg)
{
	if (!m->source)
		return 0;
	if (m->type == MOUNT_BIND) {
		char *p;
		if (!is_host_path(m->source))
			return errf(msg, E_INVAL, "bind source \"%s\" must be a host path (absolute, ./relative or ~/)", m->source);
		if (host_path(m->source, dir, &p, msg))
			return E_INVAL;
		free(m->source);
		m->source = p;
		return 0;
	}
	if (m->type == MOUNT_VOLUME) {
		char *t = slot_template(m->source);
		free(m->source);
		m->source = t;
		if (!spec_volume_name_valid(t))
			return errf(msg, E_INVAL, "invalid volume name \"%s\": use letters, digits, '_', '.' and '-' "
				    "(and %s for the task's slot)", t, SPEC_SLOT_TEMPLATE);
	}
	return 0;
}

int spec_mount_valid(const struct mount_spec *m, char *msg)
{
	if (!m->target || m->target[0] != '/')
		return errf(msg, E_INVAL, "a mount target must be an absolute path");
	if (m->type == MOUNT_TMPFS && m->source)
		return errf(msg, E_INVAL, "a tmpfs mount takes no source");
	if (m->type == MOUNT_BIND && (!m->source || m->source[0] != '/'))
		return errf(msg, E_INVAL, "a bind mount needs an absolute source");
	if (m->type == MOUNT_VOLUME && m->source && !spec_volume_name_valid(m->source))
		return errf(msg, E_INVAL, "invalid volume name");
	return 0;
}

int spec_parse_mount(const char *s, const char *dir, struct mount_spec *m, char *msg)
{
	memset(m, 0, sizeof *m);
	struct strv parts = {0};
	const char *p = s;
	for (;;) {
		const char *c = strchr(p, ':');
		char *part = xstrndup(p, c ? (size_t)(c - p) : strlen(p));
		strv_push(&parts, part);
		free(part);
		if (!c)
			break;
		p = c + 1;
	}
	int rc = 0;
	const char *src = NULL, *dst = NULL, *mode = NULL;
	if (parts.n == 1)
		dst = parts.v[0];
	else if (parts.n == 2 && parts.v[1][0] != '/') {
		dst = parts.v[0];
		mode = parts.v[1];
	} else if (parts.n == 2 || parts.n == 3) {
		src = parts.v[0];
		dst = parts.v[1];
		mode = parts.n == 3 ? parts.v[2] : NULL;
	} else {
		rc = errf(msg, E_INVAL, "volume \"%s\": expected \"source:target[:mode]\" or \"target\"", s);
		goto out;
	}
	if (!dst[0] || dst[0] != '/') {
		rc = errf(msg, E_INVAL, "volume \"%s\": the target must be an absolute path in the container", s);
		goto out;
	}
	if (src && !src[0]) {
		rc = errf(msg, E_INVAL, "volume \"%s\": empty source", s);
		goto out;
	}
	m->type = src && is_host_path(src) ? MOUNT_BIND : MOUNT_VOLUME;
	m->create_host_path = m->type == MOUNT_BIND; /* as Compose does for the short syntax */
	m->source = src ? xstrdup(src) : NULL;
	m->target = xstrdup(dst);
	while (mode && *mode) {
		const char *e = strchr(mode, ',');
		size_t len = e ? (size_t)(e - mode) : strlen(mode);
		if (len == 2 && !strncmp(mode, "ro", 2))
			m->read_only = true;
		else if (len == 2 && !strncmp(mode, "rw", 2))
			m->read_only = false;
		else if (len == 6 && !strncmp(mode, "nocopy", 6) && m->type == MOUNT_VOLUME)
			m->nocopy = true;
		else if ((len == 6 && !strncmp(mode, "cached", 6)) || (len == 9 && !strncmp(mode, "delegated", 9)) ||
			 (len == 10 && !strncmp(mode, "consistent", 10)))
			; /* file sharing hints of Docker Desktop: no effect on Linux, there or here */
		else {
			rc = errf(msg, E_INVAL, "volume \"%s\": mode \"%.*s\" is not supported (use ro, rw%s)", s, (int)len, mode,
				  m->type == MOUNT_VOLUME ? " or nocopy" : "");
			goto out;
		}
		mode = e ? e + 1 : NULL;
	}
	rc = spec_mount_source(m, dir, msg);
out:
	strv_free(&parts);
	if (rc)
		mount_spec_free(m);
	return rc;
}

void mount_spec_free(struct mount_spec *m)
{
	free(m->source);
	free(m->target);
	labels_free(&m->labels);
	m->source = m->target = NULL;
}

bool spec_path_allowed(const char *prefixes, const char *path)
{
	for (const char *p = prefixes; p && *p;) {
		size_t n = strcspn(p, "\n"), end = n;
		while (n > 1 && p[n - 1] == '/')
			n--;
		if (p[0] == '/' && ((n == 1) || (!strncmp(path, p, n) && (path[n] == 0 || path[n] == '/'))))
			return true;
		p += end + (p[end] == '\n');
	}
	return false;
}
