/* The Prometheus text writer, read back by a small strict parser of the 0.0.4 text format:
 * HELP/TYPE before a family's samples, families contiguous and declared once, metric and
 * label names by the grammar, label values with only \\, \" and \n escapes. */
#include "unit.h"
#include "metrics/ratewin.h"
#include "metrics/prom.h"
#include <ctype.h>
#include <stdbool.h>
#include <math.h>

struct psample {
	char series[512]; /* name{k="decoded v",...} */
	double v;
};

struct pdoc {
	struct psample s[64];
	size_t n;
	char families[16][64];
	size_t nfam;
};

static bool name_ok(const char *p, size_t n, bool colon)
{
	if (!n || isdigit((unsigned char)p[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || (colon && p[i] == ':')))
			return false;
	return true;
}

/* Returns NULL on success, else what is wrong. */
static const char *prom_parse(const char *text, struct pdoc *d)
{
	memset(d, 0, sizeof *d);
	char cur[64] = "", help_of[64] = "";
	const char *line = text;
	while (*line) {
		const char *nl = strchr(line, '\n');
		if (!nl)
			return "last line not terminated";
		size_t len = (size_t)(nl - line);
		char l[1024];
		if (len >= sizeof l)
			return "line too long";
		memcpy(l, line, len);
		l[len] = 0;
		line = nl + 1;
		if (!strncmp(l, "# HELP ", 7)) {
			char *sp = strchr(l + 7, ' ');
			if (!sp || !name_ok(l + 7, (size_t)(sp - l - 7), true))
				return "bad HELP line";
			snprintf(help_of, sizeof help_of, "%.*s", (int)(sp - l - 7), l + 7);
			continue;
		}
		if (!strncmp(l, "# TYPE ", 7)) {
			char name[64], type[32];
			if (sscanf(l + 7, "%63s %31s", name, type) != 2 || strcmp(name, help_of))
				return "TYPE without a HELP of the same family just before";
			if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "untyped"))
				return "bad type";
			for (size_t i = 0; i < d->nfam; i++)
				if (!strcmp(d->families[i], name))
					return "family declared twice";
			snprintf(d->families[d->nfam++], 64, "%s", name);
			snprintf(cur, sizeof cur, "%s", name);
			continue;
		}
		if (l[0] == '#' || !l[0])
			return "unexpected comment or empty line";
		struct psample *s = &d->s[d->n++];
		const char *p = l;
		while (*p && *p != '{' && *p != ' ')
			p++;
		if (!name_ok(l, (size_t)(p - l), true) || strncmp(l, cur, strlen(cur)) || (size_t)(p - l) != strlen(cur))
			return "sample outside its family";
		size_t o = (size_t)snprintf(s->series, sizeof s->series, "%.*s", (int)(p - l), l);
		if (*p == '{') {
			p++;
			o += (size_t)snprintf(s->series + o, sizeof s->series - o, "{");
			bool first = true;
			while (*p != '}') {
				const char *k = p;
				while (*p && *p != '=')
					p++;
				if (!name_ok(k, (size_t)(p - k), false) || p[0] != '=' || p[1] != '"')
					return "bad label name";
				o += (size_t)snprintf(s->series + o, sizeof s->series - o, "%s%.*s=\"", first ? "" : ",", (int)(p - k), k);
				p += 2;
				while (*p != '"') {
					char c = *p;
					if (!c)
						return "unterminated label value";
					if (c == '\\') {
						p++;
						if (*p == 'n')
							c = '\n';
						else if (*p == '\\' || *p == '"')
							c = *p;
						else
							return "bad escape";
					}
					if (o + 2 < sizeof s->series)
						s->series[o++] = c;
					p++;
				}
				p++;
				o += (size_t)snprintf(s->series + o, sizeof s->series - o, "\"");
				first = false;
				if (*p == ',')
					p++;
				else if (*p != '}')
					return "bad label separator";
			}
			p++;
			o += (size_t)snprintf(s->series + o, sizeof s->series - o, "}");
		}
		if (*p != ' ')
			return "no value";
		p++;
		char *end;
		if (!strcmp(p, "NaN"))
			s->v = NAN;
		else if (!strcmp(p, "+Inf"))
			s->v = INFINITY;
		else {
			s->v = strtod(p, &end);
			if (end == p || *end)
				return "bad value";
		}
	}
	return NULL;
}

static const struct psample *find(const struct pdoc *d, const char *series)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->s[i].series, series))
			return &d->s[i];
	return NULL;
}

UNIT(metrics_prom_text_parses_back)
{
	struct buf b = {0};
	prom_family(&b, "orch_service_requests_total", "counter", "Requests\\proxied\nby this node.");
	prom_u64(&b, "orch_service_requests_total", (const char *[]){"service", "web", NULL}, 18446744073709551615ull);
	prom_u64(&b, "orch_service_requests_total", (const char *[]){"service", "we\"i\\rd\nname", NULL}, 3);
	prom_family(&b, "orch_service_bytes_total", "counter", "Bytes.");
	prom_u64(&b, "orch_service_bytes_total", (const char *[]){"service", "web", "direction", "in", NULL}, 10);
	prom_u64(&b, "orch_service_bytes_total", (const char *[]){"service", "web", "direction", "out", NULL}, 20);
	prom_family(&b, "orch_service_request_rate", "gauge", "Rate.");
	prom_double(&b, "orch_service_request_rate", (const char *[]){"service", "web", NULL}, 12.5);
	prom_family(&b, "orch_raft_term", "gauge", "Term.");
	prom_u64(&b, "orch_raft_term", NULL, 7);
	prom_family(&b, "orch_empty", "gauge", "A family without samples is fine.");
	prom_family(&b, "orch_odd", "gauge", "Odd values.");
	prom_double(&b, "orch_odd", NULL, NAN);
	buf_append(&b, "", 1);
	struct pdoc d;
	const char *why = prom_parse((const char *)b.data, &d);
	if (why)
		fprintf(stderr, "  %s in:\n%s", why, (const char *)b.data);
	CHECK(why == NULL);
	CHECK_EQ_INT(d.nfam, 6);
	CHECK_EQ_INT(d.n, 7);
	const struct psample *s = find(&d, "orch_service_requests_total{service=\"web\"}");
	CHECK(s && s->v == 18446744073709551615.0);
	s = find(&d, "orch_service_requests_total{service=\"we\"i\\rd\nname\"}");
	CHECK(s && s->v == 3);
	s = find(&d, "orch_service_bytes_total{service=\"web\",direction=\"out\"}");
	CHECK(s && s->v == 20);
	s = find(&d, "orch_service_request_rate{service=\"web\"}");
	CHECK(s && s->v == 12.5);
	s = find(&d, "orch_raft_term");
	CHECK(s && s->v == 7);
	CHECK(strstr((const char *)b.data, "# HELP orch_service_requests_total Requests\\\\proxied\\nby this node.\n"));
	buf_free(&b);
}

UNIT(metrics_prom_parser_is_strict)
{
	struct pdoc d;
	CHECK(prom_parse("# HELP a x\n# TYPE a gauge\na 1\n", &d) == NULL);
	CHECK(prom_parse("a 1\n", &d) != NULL);                                   /* no TYPE */
	CHECK(prom_parse("# HELP a x\n# TYPE a gauge\nb 1\n", &d) != NULL);       /* other family */
	CHECK(prom_parse("# HELP a x\n# TYPE a gauge\na{x=\"\\t\"} 1\n", &d) != NULL); /* bad escape */
	CHECK(prom_parse("# HELP a x\n# TYPE a gauge\na one\n", &d) != NULL);
	CHECK(prom_parse("# HELP a x\n# TYPE a gauge\na 1", &d) != NULL);
}

UNIT(metrics_rate_of_a_counter_that_appeared_in_the_window)
{
	/* a counter first seen after a burst: it started at 0 when it did not exist yet */
	struct ratewin w;
	ratewin_init(&w);
	ratewin_push(&w, 1000, NULL, 0);
	struct ratewin_kv kv = {.v = 300};
	snprintf(kv.key, sizeof kv.key, "web");
	ratewin_push(&w, 2000, &kv, 1);
	ratewin_push(&w, 3000, &kv, 1);
	double r = 0;
	CHECK(ratewin_rate(&w, "web", &r));
	CHECK(r > 140 && r < 160); /* 300 over 2 s */
	CHECK(!ratewin_rate(&w, "api", &r));
	ratewin_free(&w);
}
