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
