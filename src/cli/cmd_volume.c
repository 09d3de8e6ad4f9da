/* orch volume ls | inspect | rm: the cluster's named volumes (node/rpc_volume.c). */
#include "cli/cli.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int volume_ls(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	for (int i = 1; i < argc; i++) {
		int orc = cli_output_opt("volume", argc, argv, &i, &fmt);
		if (orc > 1)
			return orc;
		if (orc == 0)
			return cli_usage("volume", "unexpected argument %s", argv[i]);
	}
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_VOLUMES, NULL, &r, 0);
	if (rc)
		return rc;
	const msgpack_object *vl = mp_get(r.root, "volumes");
	if (fmt != OUT_TABLE) {
		out_doc(fmt, vl);
		mpr_free(&r);
		return EXIT_OK;
	}
	const char *hdr[] = {"NAME", "NODE", "NODE STATE", "TASKS", "CREATED BY", "AGE"};
	struct out_table t;
	out_table_init(&t, 6, hdr);
	uint64_t now = wall_ms();
	for (uint32_t i = 0; vl && i < vl->via.array.size; i++) {
		const msgpack_object *o = &vl->via.array.ptr[i];
		char name[160], node[80], st[24], svc[80], tasks[24], age[24];
		uint64_t n = 0, at = 0;
		mp_get_u64(o, "tasks", &n);
		mp_get_u64(o, "created_at", &at);
		snprintf(tasks, sizeof tasks, "%llu", (unsigned long long)n);
		out_age(now > at ? now - at : 0, age, sizeof age);
		const char *row[] = {mp_str_or(o, "name", name, sizeof name, "-"), mp_str_or(o, "node", node, sizeof node, "-"),
				     mp_str_or(o, "node_state", st, sizeof st, "-"), tasks,
				     mp_str_or(o, "service", svc, sizeof svc, "-"), age};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
	mpr_free(&r);
	return EXIT_OK;
}

static int volume_inspect(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt = OUT_YAML;
	const char *name = NULL;
	for (int i = 1; i < argc; i++) {
		int orc = cli_output_opt("volume", argc, argv, &i, &fmt);
		if (orc > 1)
			return orc;
		if (orc == 1)
			continue;
		if (name)
			return cli_usage("volume", "unexpected argument %s", argv[i]);
		name = argv[i];
	}
	if (!name)
		return cli_usage("volume", "volume inspect NAME");
	struct req_volume_get q = {.name = name};
	struct mpr r;
	int rc = cli_rpc(cli, OP_VOLUME_GET, &q, &r);
	if (rc)
		return rc;
	out_doc(fmt == OUT_TABLE ? OUT_YAML : fmt, mp_get(r.root, "volume"));
	mpr_free(&r);
	return EXIT_OK;
}

static int volume_rm(struct cli *cli, int argc, char **argv)
{
	bool force = false;
	int n = 0, rc = EXIT_OK;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force"))
			force = true;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		n++;
		struct req_volume_rm q = {.name = argv[i], .force = force};
		struct mpr r;
		int one = cli_rpc(cli, OP_VOLUME_RM, &q, &r);
		if (one) {
			rc = one;
			continue;
		}
		char res[300];
		printf("%s\n", mp_str_or(r.root, "result", res, sizeof res, "removed"));
		mpr_free(&r);
	}
	if (!n)
		return cli_usage("volume", "volume rm [--force] NAME...");
	return rc;
}

int cmd_volume(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("volume", "missing subcommand: ls, inspect or rm");
	if (!strcmp(argv[1], "ls"))
		return volume_ls(cli, argc - 1, argv + 1);
	if (!strcmp(argv[1], "inspect"))
		return volume_inspect(cli, argc - 1, argv + 1);
	if (!strcmp(argv[1], "rm"))
		return volume_rm(cli, argc - 1, argv + 1);
	return cli_usage("volume", "unknown subcommand %s", argv[1]);
}
