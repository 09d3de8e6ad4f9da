#include "metrics/prom.h"
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void escape(struct buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_append(b, "\\\\", 2);
		else if (*s == '\n')
			buf_append(b, "\\n", 2);
		else if (*s == '"' && quote)
			buf_append(b, "\\\"", 2);
		else
			buf_append(b, s, 1);
	}
}

void prom_family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s ", name);
	escape(b, help, false);
	buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void series(struct buf *b, const char *name, const char *const *labels)
{
	buf_printf(b, "%s", name);
	if (!labels || !labels[0])
		return;
	buf_append(b, "{", 1);
	for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
		buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
		escape(b, labels[i + 1], true);
		buf_append(b, "\"", 1);
	}
	buf_append(b, "}", 1);
}

void prom_u64(struct buf *b, const char *name, const char *const *labels, uint64_t v)
{
	series(b, name, labels);
	buf_printf(b, " %llu\n", (unsigned long long)v);
}

void prom_double(struct buf *b, const char *name, const char *const *labels, double v)
{
	series(b, name, labels);
	if (isnan(v))
		buf_printf(b, " NaN\n");
	else if (isinf(v))
		buf_printf(b, " %s\n", v > 0 ? "+Inf" : "-Inf");
	else
		buf_printf(b, " %.12g\n", v);
}
