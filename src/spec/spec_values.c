/* The small value syntaxes inside a spec: shell-like words, port short syntax,
 * placement constraints and names. Pure string functions, no YAML. */
#include "spec/spec.h"
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
