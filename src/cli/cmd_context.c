/* orch context ls | use NAME | add NAME --host IP:PORT --cert-bundle FILE | rm NAME: the
 * named clusters of the context file (cli/context.h). Nothing here talks to a node. */
#include "cli/cli.h"
#include "cli/context.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int context_ls(const struct contexts *cs, int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	for (int i = 1; i < argc; i++) {
		int orc = cli_output_opt("context", argc, argv, &i, &fmt);
		if (orc > 1)
			return orc;
		if (orc == 0)
			return cli_usage("context", "unexpected argument %s", argv[i]);
	}
	struct mpw w;
	mpw_init(&w);
	mpw_arr(&w, (uint32_t)cs->n + 1);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "local");
	mpw_kbool(&w, "current", !cs->current[0]);
	mpw_kstr(&w, "host", "");
	mpw_kstr(&w, "cert_bundle", "");
	mpw_map_end(&w);
	for (size_t i = 0; i < cs->n; i++) {
		mpw_map_begin(&w);
		mpw_kstr(&w, "name", cs->v[i].name);
		mpw_kbool(&w, "current", !strcmp(cs->current, cs->v[i].name));
		mpw_kstr(&w, "host", cs->v[i].host);
		mpw_kstr(&w, "cert_bundle", cs->v[i].bundle);
		mpw_map_end(&w);
	}
	struct mpr r;
	if (mpr_decode(&r, w.sb.data, w.sb.size)) {
		mpw_free(&w);
		return cli_fail(E_FAIL, "context ls: cannot encode the list");
	}
	mpw_free(&w);
	if (fmt != OUT_TABLE) {
		out_doc(fmt, r.root);
		mpr_free(&r);
		return EXIT_OK;
	}
	const char *hdr[] = {"CURRENT", "NAME", "HOST", "CERT BUNDLE"};
	struct out_table t;
	out_table_init(&t, 4, hdr);
	const char *local[] = {cs->current[0] ? "" : "*", "local", "(this machine's node socket)", "-"};
	out_table_row(&t, local);
	for (size_t i = 0; i < cs->n; i++) {
		const char *row[] = {strcmp(cs->current, cs->v[i].name) ? "" : "*", cs->v[i].name, cs->v[i].host,
				     cs->v[i].bundle};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
	mpr_free(&r);
	return EXIT_OK;
}

static int context_add(struct contexts *cs, int argc, char **argv)
{
	const char *name = NULL, *host = NULL, *bundle = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else if (!strcmp(argv[i], "--cert-bundle") && i + 1 < argc)
			bundle = argv[++i];
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return cli_usage("context", "add: unexpected argument %s", argv[i]);
	}
	if (!name || !host || !bundle)
		return cli_usage("context", "add needs NAME, --host IP:PORT and --cert-bundle FILE");
	if (!context_name_valid(name))
		return cli_usage("context", "bad context name %s: 1-63 of A-Z a-z 0-9 . _ @ -, not local", name);
	char abs[1024];
	if (!realpath(bundle, abs))
		return cli_fail(E_NOTFOUND, "context add: %s: no such file (orch user add writes it)", bundle);
	if (strlen(host) >= sizeof cs->v[0].host)
		return cli_usage("context", "host too long: %s", host);
	struct context *c = context_find(cs, name);
	if (!c) {
		if (cs->n == CONTEXT_MAX)
			return cli_fail(E_INVAL, "context add: at most %d contexts", CONTEXT_MAX);
		c = &cs->v[cs->n++];
	}
	snprintf(c->name, sizeof c->name, "%s", name);
	snprintf(c->host, sizeof c->host, "%s", host);
	snprintf(c->bundle, sizeof c->bundle, "%s", abs);
	return -1;
}

int cmd_context(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	char path[1024], err[ERR_LEN];
	struct contexts *cs = calloc(1, sizeof *cs);
	int rc;
	if (!cs)
		return cli_fail(E_FAIL, "out of memory");
	if (argc < 2) {
		rc = cli_usage("context", "which subcommand?");
		goto out;
	}
	if (context_path(path, sizeof path, err) || context_load(path, cs, err)) {
		rc = cli_fail(E_INVAL, "%s", err);
		goto out;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "ls")) {
		rc = context_ls(cs, argc - 1, argv + 1);
		goto out;
	}
	if (!strcmp(sub, "add"))
		rc = context_add(cs, argc - 1, argv + 1);
	else if ((!strcmp(sub, "use") || !strcmp(sub, "rm")) && argc == 3) {
		const char *name = argv[2];
		struct context *c = context_find(cs, name);
		rc = -1;
		if (!strcmp(sub, "use") && !strcmp(name, "local"))
			cs->current[0] = 0;
		else if (!c)
			rc = cli_fail(E_NOTFOUND, "context %s: no such context in %s (see orch context ls)", name, path);
		else if (!strcmp(sub, "use"))
			snprintf(cs->current, sizeof cs->current, "%s", name);
		else {
			if (!strcmp(cs->current, name))
				cs->current[0] = 0;
			*c = cs->v[--cs->n];
		}
	} else
		rc = cli_usage("context", "unknown or incomplete subcommand %s", sub);
	if (rc == -1)
		rc = context_save(path, cs, err) ? cli_fail(E_IO, "%s", err) : EXIT_OK;
out:
	free(cs);
	return rc;
}
