#include "cli/output.h"
#include "codec/yaml_out.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int out_parse_fmt(const char *s, enum out_fmt *f)
{
	if (!strcmp(s, "table") || !strcmp(s, "wide"))
		*f = OUT_TABLE;
	else if (!strcmp(s, "json"))
		*f = OUT_JSON;
	else if (!strcmp(s, "yaml"))
		*f = OUT_YAML;
	else
		return -1;
	return 0;
}

void out_doc(enum out_fmt f, const msgpack_object *o)
{
	struct buf b = {0};
	if (f == OUT_YAML)
		mp_to_yaml(o, &b);
	else {
		mp_to_json(o, &b);
		buf_append(&b, "\n", 1);
	}
	fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
}

static bool color_on(int fd)
{
	const char *nc = getenv("NO_COLOR");
	return isatty(fd) && !(nc && *nc);
}

bool out_color(void)
{
	return color_on(1);
}

const char *out_bold(void) { return out_color() ? "\033[1m" : ""; }
const char *out_dim(void) { return out_color() ? "\033[2m" : ""; }
const char *out_green(void) { return out_color() ? "\033[32m" : ""; }
const char *out_red(void) { return out_color() ? "\033[31m" : ""; }
const char *out_reset(void) { return out_color() ? "\033[0m" : ""; }
const char *out_err_red(void) { return color_on(2) ? "\033[31m" : ""; }
const char *out_err_reset(void) { return color_on(2) ? "\033[0m" : ""; }

void out_table_init(struct out_table *t, size_t ncols, const char *const *headers)
{
	memset(t, 0, sizeof *t);
	t->ncols = ncols;
	out_table_row(t, headers);
}

void out_table_row(struct out_table *t, const char *const *cols)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = xrealloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
	}
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = xstrdup(cols[i] ? cols[i] : "");
	t->nrows++;
}

/* Display width of a UTF-8 string (one column per code point; good enough here). */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void out_table_print(struct out_table *t)
{
	size_t *wd = xcalloc(t->ncols, sizeof *wd);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			size_t w = width(t->cells[r * t->ncols + i]);
			if (w > wd[i])
				wd[i] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		if (r == 0)
			fputs(out_bold(), stdout);
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];
			fputs(s, stdout);
			if (i + 1 < t->ncols)
				for (size_t k = width(s); k < wd[i] + 2; k++)
					fputc(' ', stdout);
		}
		if (r == 0)
			fputs(out_reset(), stdout);
		fputc('\n', stdout);
	}
	free(wd);
}

void out_table_free(struct out_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof *t);
}

void out_age(uint64_t ms, char *buf, size_t n)
{
	uint64_t s = ms / 1000;
	if (s < 120)
		snprintf(buf, n, "%llus", (unsigned long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%llum", (unsigned long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, n, "%lluh", (unsigned long long)(s / 3600));
	else
		snprintf(buf, n, "%llud", (unsigned long long)(s / 86400));
}

void out_bytes(uint64_t b, char *buf, size_t n)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, n, "%llu B", (unsigned long long)b);
	else
		snprintf(buf, n, "%.1f %s", v, u[i]);
}
