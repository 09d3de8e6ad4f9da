/* The -h layout (cli/helpfmt.h): lines within HELP_WIDTH, broken only between words, every
 * word kept in order, continuation lines at their indent; first sentences that stop at the
 * period, not at an abbreviation. */
#include "unit.h"
#include "cli/helpfmt.h"
#include "util/mem.h"
#include <ctype.h>

/* What f wrote, into a malloc'd string. */
static char *captured(void (*fill)(FILE *f, const void *arg), const void *arg)
{
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	fill(f, arg);
	fclose(f);
	return text;
}

/* The words of s, single-spaced. */
static char *words(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;
	for (const char *p = s; *p;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (o != out)
			*o++ = ' ';
		while (*p && !isspace((unsigned char)*p))
			*o++ = *p++;
	}
	*o = 0;
	return out;
}

static void check_lines(const char *text, int indent)
{
	int ln = 0;
	for (const char *p = text; *p; ln++) {
		const char *nl = strchr(p, '\n');
		CHECK(nl);
		CHECK((int)(nl - p) <= HELP_WIDTH);
		CHECK(nl == p || p[(nl - p) - 1] != ' '); /* no trailing space */
		if (ln > 0) {
			for (int i = 0; i < indent; i++)
				CHECK(p[i] == ' ');
			CHECK(p[indent] != ' ');
		}
		p = nl + 1;
	}
}

static const char *const para =
	"Create a cluster (its CA, this node's certificate, a manager and a worker join token) and\n"
	"run its first node; prints the lines that join other machines. On a data directory that\n"
	"already holds a node, resume that node. averyveryveryveryveryveryveryveryveryverylongwordthatfitsnowhere ok.";

static void fill_para(FILE *f, const void *arg)
{
	(void)arg;
	fputs("  init       ", f);
	helpfmt_para(f, para, strlen(para), 13, 13);
}

static void fill_opts(FILE *f, const void *arg)
{
	helpfmt_options(f, arg);
}

UNIT(helpfmt_wraps_between_words_within_80_columns)
{
	char *out = captured(fill_para, NULL);
	check_lines(out, 13);
	char *a = words(out), *b = words(para);
	CHECK(!strncmp(a, "init ", 5) && !strcmp(a + 5, b));
	free(a), free(b), free(out);

	const char *opts = "  --listen IP:PORT      address to bind the node port to (default 0.0.0.0:7420), and a few words more\n"
			   "  --userns-remap BASE:COUNT|default|off  run tasks in a user namespace whose\n"
			   "                        root is host uid BASE (default: 100000:65536, or the\n"
			   "                        orch entry of /etc/subuid); kept with the node\n"
			   "  -o FILE               short\n";
	out = captured(fill_opts, opts);
	for (const char *p = out; *p;) {
		const char *nl = strchr(p, '\n');
		CHECK(nl && nl - p <= HELP_WIDTH);
		p = nl + 1;
	}
	a = words(out), b = words(opts);
	CHECK(!strcmp(a, b));
	/* the long option's description continues at column 24, the first's under itself */
	CHECK(strstr(out, "(default 0.0.0.0:7420),\n                        and a few words more\n"));
	CHECK(strstr(out, "whose\n                        root is host uid BASE"));
	CHECK(strstr(out, "  -o FILE               short\n"));
	free(a), free(b), free(out);
}

UNIT(helpfmt_first_sentence_stops_at_its_period)
{
	CHECK_EQ_INT(helpfmt_first_sentence("Show the version."), 17);
	CHECK_EQ_INT(helpfmt_first_sentence("Manage users (admin only). add makes a key."), 26);
	CHECK_EQ_INT(helpfmt_first_sentence("Give a size, e.g. 8g, to it. More."), 28);
	CHECK_EQ_INT(helpfmt_first_sentence("Load 0.0.0.0:7420 here.\nNext."), 23);
	CHECK_EQ_INT(helpfmt_first_sentence("no period at all"), 16);
}
