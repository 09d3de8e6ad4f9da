#include "cli/helpfmt.h"
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#define DESC_COL_MAX 24 /* where a long option's description continues */

void helpfmt_para(FILE *f, const char *text, size_t len, int col, int indent)
{
	const char *p = text, *end = text + len;
	bool first = true;
	while (p < end) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		const char *w = p;
		while (p < end && !isspace((unsigned char)*p))
			p++;
		int n = (int)(p - w);
		if (!n)
			break;
		if (!first && col + 1 + n > HELP_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (!first) {
			fputc(' ', f);
			col++;
		}
		fwrite(w, 1, (size_t)n, f);
		col += n;
		first = false;
	}
	fputc('\n', f);
}

void helpfmt_usage(FILE *f, const char *synopsis)
{
	/* continued under the first argument: after "usage: orch CMD " */
	const char *sp = strchr(synopsis, ' ');
	int indent = 12 + (sp && synopsis[0] != '[' ? (int)(sp - synopsis) + 1 : 0);
	if (indent > 30)
		indent = 12;
	fputs("usage: orch ", f);
	helpfmt_para(f, synopsis, strlen(synopsis), 12, indent);
}

/* Where the description of an option line starts: after the first gap of two spaces that
 * follows its name; 0 when the line has none (a continuation, or a line of its own). */
static int desc_col(const char *line, size_t n)
{
	size_t i = 0;
	while (i < n && line[i] == ' ')
		i++;
	for (; i + 1 < n; i++)
		if (line[i] == ' ' && line[i + 1] == ' ') {
			while (i < n && line[i] == ' ')
				i++;
			return i < n ? (int)i : 0;
		}
	return 0;
}

static int lead(const char *line, size_t n)
{
	size_t i = 0;
	while (i < n && line[i] == ' ')
		i++;
	return (int)i;
}

void helpfmt_options(FILE *f, const char *opts)
{
	const char *p = opts;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		int d = desc_col(p, n), l = lead(p, n);
		/* the paragraph: this line and the deeper-indented lines that continue it */
		const char *q = nl ? nl + 1 : p + n;
		int start = d ? d : l;
		while (*q) {
			const char *qn = strchr(q, '\n');
			size_t m = qn ? (size_t)(qn - q) : strlen(q);
			if (lead(q, m) <= l + 2 || lead(q, m) == (int)m)
				break;
			q = qn ? qn + 1 : q + m;
		}
		size_t plen = (size_t)(q - p);
		if (d) {
			int indent = d < DESC_COL_MAX ? d : DESC_COL_MAX;
			fprintf(f, "%.*s", d, p);
			helpfmt_para(f, p + d, plen - (size_t)d, d, indent);
		} else if (n) {
			fprintf(f, "%*s", start, "");
			helpfmt_para(f, p + start, plen - (size_t)start, start, start + 2);
		} else
			fputc('\n', f);
		p = q;
	}
}

size_t helpfmt_first_sentence(const char *text)
{
	/* a period before a space or the end, not that of an abbreviation (e.g., i.e.) */
	for (const char *p = text; *p; p++)
		if (*p == '.' && (!p[1] || isspace((unsigned char)p[1])) &&
		    !(p - text >= 3 && (!strncmp(p - 3, "e.g", 3) || !strncmp(p - 3, "i.e", 3))))
			return (size_t)(p - text) + 1;
	return strlen(text);
}
