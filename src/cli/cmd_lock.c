/* orch unlock, orch unlock-key, orch cluster update --autolock (node/autolock.h) and
 * --rebalance-moves. The unlock key is read from standard input or a prompt, never taken
 * from the command line (it would show in /proc/PID/cmdline and in shell histories). */
#include "cli/cli.h"
#include "orchestrator/rebalance.h"
#include "secret/unlock.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cmd_unlock(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage("unlock", "unexpected argument %s (the key is read from standard input, never taken "
				 "as an argument)", argv[1]);
	char key[256] = "";
	if (isatty(0)) {
		if (cli_prompt("Unlock key: ", true, key, sizeof key))
			return cli_fail(E_INVAL, "unlock: no key given");
	} else if (!fgets(key, sizeof key, stdin))
		return cli_fail(E_INVAL, "unlock: no key on standard input");
	key[strcspn(key, "\r\n")] = 0;
	struct unlock_key u;
	char err[ERR_LEN];
	if (unlock_parse(key, &u, err)) {
		OPENSSL_cleanse(key, sizeof key);
		return cli_fail(E_INVAL, "unlock: %s", err);
	}
	unlock_wipe(&u);
	struct req_unlock q = {.key = key};
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_UNLOCK, &q, &r, 0);
	OPENSSL_cleanse(key, sizeof key);
	if (rc)
		return rc;
	char res[128];
	printf("%s\n", mp_str_or(r.root, "result", res, sizeof res, "unlocked"));
	mpr_free(&r);
	return EXIT_OK;
}

/* The reply's key, as a line of its own (what scripts keep), and how to use it. */
static void print_key(const msgpack_object *reply, bool quiet)
{
	char key[UNLOCK_STR_LEN + 1] = "";
	if (mp_get_strbuf(reply, "key", key, sizeof key))
		return;
	if (quiet)
		printf("%s\n", key);
	else
		printf("The cluster's unlock key (keep it safe: a restarted node needs it, with orch unlock):\n\n"
		       "    %s\n\n", key);
	OPENSSL_cleanse(key, sizeof key);
}

int cmd_unlock_key(struct cli *cli, int argc, char **argv)
{
	bool rotate = false, quiet = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rotate"))
			rotate = true;
		else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
			quiet = true;
		else
			return cli_usage("unlock-key", "unknown argument %s", argv[i]);
	}
	struct req_unlock_key q = {.rotate = rotate};
	struct mpr r;
	int rc = cli_rpc(cli, OP_UNLOCK_KEY, &q, &r);
	if (rc)
		return rc;
	if (rotate && !quiet)
		printf("unlock key rotated; every node re-seals its data key under the new one.\n");
	print_key(r.root, quiet);
	mpr_free(&r);
	return EXIT_OK;
}

#define CLUSTER_USAGE "cluster update --autolock=true|false | --rebalance-moves=N"

/* --rebalance-moves=N: the budget of rebalancing moves in flight, a key of the replicated
 * kv table the leader's reconciler reads (orchestrator/rebalance.h). */
static int rebalance_moves(struct cli *cli, const char *v)
{
	uint64_t n;
	if (rebalance_parse(v, &n))
		return cli_usage("cluster", "--rebalance-moves wants a number from 0 (off) to %d, not \"%s\"", REBALANCE_MOVES_MAX, v);
	struct req_kv_set q = {.key = REBALANCE_KEY, .value = v};
	struct mpr r;
	int rc = cli_rpc(cli, OP_KV_SET, &q, &r);
	if (rc)
		return rc;
	mpr_free(&r);
	if (n)
		printf("rebalancing: at most %llu move%s at a time\n", (unsigned long long)n, n == 1 ? "" : "s");
	else
		printf("rebalancing off\n");
	return EXIT_OK;
}

int cmd_cluster(struct cli *cli, int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "update"))
		return cli_usage("cluster", CLUSTER_USAGE);
	if (!strncmp(argv[2], "--rebalance-moves=", 18))
		return rebalance_moves(cli, argv[2] + 18);
	bool enable;
	if (!strcmp(argv[2], "--autolock=true") || !strcmp(argv[2], "--autolock"))
		enable = true;
	else if (!strcmp(argv[2], "--autolock=false"))
		enable = false;
	else
		return cli_usage("cluster", "unknown option %s (" CLUSTER_USAGE ")", argv[2]);
	struct req_autolock q = {.enable = enable};
	struct mpr r;
	int rc = cli_rpc(cli, OP_AUTOLOCK, &q, &r);
	if (rc)
		return rc;
	char res[160];
	printf("%s\n", mp_str_or(r.root, "result", res, sizeof res, "done"));
	print_key(r.root, false);
	mpr_free(&r);
	return EXIT_OK;
}
