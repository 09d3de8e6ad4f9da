/* orch token show|rotate [manager|worker]: the join tokens (net/token.h), through the local
 * socket of a manager (node/rpc_token.c). */
#include "cli/cli.h"
#include <stdio.h>
#include <string.h>

static int print_tokens(const struct mpr *r, const char *kind)
{
	char m[256] = "", w[256] = "";
	mp_get_strbuf(r->root, "manager", m, sizeof m);
	mp_get_strbuf(r->root, "worker", w, sizeof w);
	if (kind) /* one token alone: for scripts (orch token show worker > FILE) */
		printf("%s\n", !strcmp(kind, "manager") ? m : w);
	else
		printf("manager: %s\nworker:  %s\n", m, w);
	return EXIT_OK;
}

int cmd_token(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("token", "expected show or rotate");
	const char *sub = argv[1], *kind = argc > 2 ? argv[2] : NULL;
	if (argc > 3)
		return cli_usage("token", "unexpected argument %s", argv[3]);
	if (kind && strcmp(kind, "manager") && strcmp(kind, "worker"))
		return cli_usage("token", "%s: expected manager or worker", kind);
	struct mpr r;
	int rc;
	if (!strcmp(sub, "show")) {
		struct req_token_show q = {.kind = kind};
		rc = cli_rpc(cli, OP_TOKEN_SHOW, &q, &r);
	} else if (!strcmp(sub, "rotate")) {
		struct req_token_rotate q = {.kind = kind};
		rc = cli_rpc(cli, OP_TOKEN_ROTATE, &q, &r);
	} else
		return cli_usage("token", "unknown subcommand %s", sub);
	if (rc)
		return rc;
	if (!strcmp(sub, "rotate"))
		fprintf(stderr, "rotated: the old %s refused from now on; joined nodes are not affected\n",
			kind ? (strcmp(kind, "manager") ? "worker token is" : "manager token is") : "tokens are");
	rc = print_tokens(&r, kind);
	mpr_free(&r);
	return rc;
}
