/* orch: one binary for the node daemon and the command-line interface. */
#include "cli/cli.h"
#include "runtime/pid1.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (!strcmp(self, PID1_ARGV0))
		return pid1_main(argc, argv);
	struct cli cli = {.prog = argv[0]};
	cli.data_dir = getenv("ORCH_DATA_DIR");
	bool explicit_dir = false; /* --data-dir on the line: this machine's node, not a context */
	/* --data-dir is accepted anywhere on the line before "--" (after it: orch exec's
	 * command, whose options are its own). */
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--data-dir") || !strcmp(argv[i], "-D")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "orch: --data-dir needs a directory\n");
				return EXIT_USAGE;
			}
			cli.data_dir = argv[++i];
			explicit_dir = true;
			continue;
		}
		if (!strncmp(argv[i], "--data-dir=", 11)) {
			cli.data_dir = argv[i] + 11;
			explicit_dir = true;
			continue;
		}
		argv[n++] = argv[i];
	}
	argc = n;
	argv[argc] = NULL;
	if (!cli.data_dir || !*cli.data_dir)
		cli.data_dir = "/var/lib/orch";
	/* runc wants absolute paths, and a daemon must not depend on its start directory */
	char absdir[4096]; /* main's frame outlives every use */
	if (cli.data_dir[0] != '/' && getcwd(absdir, sizeof absdir - 256)) {
		size_t len = strlen(absdir);
		snprintf(absdir + len, sizeof absdir - len, "/%s", cli.data_dir);
		cli.data_dir = absdir;
	}
	/* the remote target: global options before the command */
	const char *host = NULL, *bundle = NULL, *context = NULL;
	while (argc > 2 && (!strcmp(argv[1], "--host") || !strcmp(argv[1], "-H") || !strcmp(argv[1], "--cert-bundle") ||
			    !strcmp(argv[1], "--context"))) {
		if (!strcmp(argv[1], "--cert-bundle"))
			bundle = argv[2];
		else if (!strcmp(argv[1], "--context"))
			context = argv[2];
		else
			host = argv[2];
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	if (argc >= 2 && strcmp(argv[1], "context")) {
		int rc = cli_target(&cli, host, bundle, context, explicit_dir);
		if (rc)
			return rc;
	}
	if (argc < 2) {
		cli_overview(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		cli_overview(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v"))
		return cmd_version(&cli, 1, argv + 1);
	const struct command *c = command_find(argv[1]);
	if (!c) {
		fprintf(stderr, "orch: unknown command %s (see orch -h)\n", argv[1]);
		return EXIT_USAGE;
	}
	if (cli_wants_help(argc - 1, argv + 1))
		return cli_help(c->name);
	return c->fn(&cli, argc - 1, argv + 1);
}
