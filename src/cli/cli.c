#include "cli/cli.h"
#include "cli/helpfmt.h"
#include "cli/context.h"
#include "util/mem.h"
#include "util/err.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cli_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	fputs("orch: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	switch (rc) {
	case E_NOTFOUND: return EXIT_NOTFOUND;
	case E_INVAL: return EXIT_FAIL;
	default: return EXIT_FAIL;
	}
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fputs("orch: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	const struct command *c = command_find(cmd);
	if (c) {
		fputc('\n', stderr);
		helpfmt_usage(stderr, c->synopsis);
		fprintf(stderr, "(see orch %s -h)\n", cmd);
	}
	else
		fputc('\n', stderr);
	return EXIT_USAGE;
}

int cli_help(const char *cmd)
{
	const struct command *c = command_find(cmd);
	if (!c)
		return cli_usage("help", "unknown command %s", cmd);
	helpfmt_usage(stdout, c->synopsis);
	putchar('\n');
	helpfmt_para(stdout, c->summary, strlen(c->summary), 0, 0);
	if (c->options && *c->options) {
		printf("\noptions:\n");
		helpfmt_options(stdout, c->options);
	}
	printf("\nSee orch help %s (the %s page) for details.\n", cmd, strcmp(cmd, "compose") ? "manual" : "format");
	return EXIT_OK;
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

int cli_rpc_retry(struct cli *cli, enum op op, const void *args, struct mpr *resp, int retry_ms)
{
	char err[ERR_LEN] = "";
	int rc = cli_call(&cli->target, op, args, resp, retry_ms, 30000, err);
	if (!rc)
		return EXIT_OK;
	mpr_free(resp);
	return cli_call_fail(rc, err);
}

int cli_rpc_wait(struct cli *cli, enum op op, const void *args, struct mpr *resp)
{
	char err[ERR_LEN] = "";
	int rc = cli_call(&cli->target, op, args, resp, 15000, -1, err);
	if (!rc)
		return EXIT_OK;
	mpr_free(resp);
	return cli_call_fail(rc, err);
}

int cli_call_fail(int rc, const char *err)
{
	if (rc == E_IO && strstr(err, "no node running"))
		return fprintf(stderr, "orch: %s\n", err), EXIT_NODE;
	return cli_fail(rc, "%s", err);
}

int cli_rpc(struct cli *cli, enum op op, const void *args, struct mpr *resp)
{
	return cli_rpc_retry(cli, op, args, resp, 15000);
}

const char *mp_str_or(const msgpack_object *map, const char *key, char *buf, size_t n, const char *dflt)
{
	if (mp_get_strbuf(map, key, buf, n))
		snprintf(buf, n, "%s", dflt);
	return buf;
}

int cli_target(struct cli *cli, const char *host, const char *bundle, const char *context, bool explicit_dir)
{
	cli->target.data_dir = cli->data_dir;
	if (!host && !explicit_dir)
		host = getenv("ORCH_HOST");
	if (!bundle)
		bundle = getenv("ORCH_CERT");
	if (!context)
		context = getenv("ORCH_CONTEXT");
	if (!host && !explicit_dir && (!context || strcmp(context, "local"))) {
		char path[1024], err[ERR_LEN];
		struct contexts *cs = xcalloc(1, sizeof *cs);
		int rc = context_path(path, sizeof path, err);
		/* no HOME and no ORCH_CONFIG: no contexts, unless one was asked for */
		if (rc && !context) {
			free(cs);
			return 0;
		}
		if (rc || context_load(path, cs, err)) {
			free(cs);
			return cli_fail(E_INVAL, "%s", err);
		}
		const char *name = context && *context ? context : cs->current;
		struct context *c = *name ? context_find(cs, name) : NULL;
		if (*name && !c) {
			rc = cli_fail(E_NOTFOUND, "context %s: no such context in %s (see orch context ls)", name, path);
			free(cs);
			return rc;
		}
		if (c) {
			host = xstrdup(c->host);
			if (!bundle)
				bundle = xstrdup(c->bundle);
		}
		free(cs);
	}
	if (host && (!bundle || !*bundle)) {
		fprintf(stderr, "orch: --host %s needs a client certificate: --cert-bundle FILE or ORCH_CERT (orch user add writes one)\n", host);
		return EXIT_USAGE;
	}
	cli->target.host = host && *host ? host : NULL;
	cli->target.bundle = bundle;
	return 0;
}
