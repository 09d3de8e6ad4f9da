/* Shared pieces of the command-line interface: the command table, exit codes and helpers
 * every subcommand uses. One file per group of commands (cmd_*.c). */
#ifndef ORCH_CLI_H
#define ORCH_CLI_H
#include <stdbool.h>
#include "cli/client.h"
#include "util/err.h"
#include "cli/output.h"

/* Exit codes (documented in orch(1)). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,    /* the command failed; the message says why */
	EXIT_USAGE = 2,   /* bad arguments */
	EXIT_NODE = 3,    /* no node answering on the local socket */
	EXIT_NOTFOUND = 4,
};

struct cli {
	const char *data_dir;
	const char *prog;
	/* where requests go: this data directory's socket, or a remote node (global options
	 * --host/--cert-bundle, ORCH_HOST/ORCH_CERT, or the current context: cli/context.h) */
	struct client_target target;
};

struct command {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *synopsis; /* as in the man page SYNOPSIS, without the leading "orch " */
	const char *summary;
	const char *options;  /* option lines shown by -h */
};

extern const struct command commands[];
/* Where requests go (cli->target): --host and --cert-bundle (global options), else
 * ORCH_HOST and ORCH_CERT, else the context named by --context, ORCH_CONTEXT or the
 * context file's current one (cli/context.h), else the local socket; an explicit
 * --data-dir means the local socket. 0 or an exit code. */
int cli_target(struct cli *cli, const char *host, const char *bundle, const char *context, bool explicit_dir);
const struct command *command_find(const char *name);
#include <stdio.h>
void cli_overview(FILE *f);

/* Prints "orch: msg" to stderr and returns the exit code for an rc. */
int cli_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_help(const char *cmd);
/* Wants -h/--help anywhere before "--"? */
bool cli_wants_help(int argc, char **argv);
/* cli_call on the local node with retries while there is no leader (15 s). Returns an
 * exit code; on 0, resp holds the reply. */
int cli_rpc(struct cli *cli, enum op op, const void *args, struct mpr *resp);
int cli_rpc_retry(struct cli *cli, enum op op, const void *args, struct mpr *resp, int retry_ms);
/* cli_rpc for work that takes as long as it takes (image load): no limit on the wait for
 * the reply. */
int cli_rpc_wait(struct cli *cli, enum op op, const void *args, struct mpr *resp);
/* The exit code (and message) for a failed call on the local node. */
int cli_call_fail(int rc, const char *err);
/* -o FORMAT / --output=FORMAT at argv[*i]: 1 taken (i advanced), 0 not an output option,
 * else an exit code. */
int cli_output_opt(const char *cmd, int argc, char **argv, int *i, enum out_fmt *fmt);
/* A line from the terminal (stdin), without its newline, echo off when secret: -1 when
 * stdin is no terminal or ends. */
int cli_prompt(const char *label, bool secret, char *out, size_t cap);
const char *mp_str_or(const msgpack_object *map, const char *key, char *buf, size_t n, const char *dflt);

int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_join(struct cli *cli, int argc, char **argv);
int cmd_start(struct cli *cli, int argc, char **argv);
int cmd_uninstall(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_nodes(struct cli *cli, int argc, char **argv);
int cmd_leave(struct cli *cli, int argc, char **argv);
int cmd_node(struct cli *cli, int argc, char **argv);
int cmd_version(struct cli *cli, int argc, char **argv);
int cmd_help(struct cli *cli, int argc, char **argv);
int cmd_debug(struct cli *cli, int argc, char **argv);
int cmd_deploy(struct cli *cli, int argc, char **argv);
int cmd_rm(struct cli *cli, int argc, char **argv);
int cmd_scale(struct cli *cli, int argc, char **argv);
int cmd_services(struct cli *cli, int argc, char **argv);
int cmd_inspect(struct cli *cli, int argc, char **argv);
int cmd_ps(struct cli *cli, int argc, char **argv);
int cmd_logs(struct cli *cli, int argc, char **argv);
int cmd_exec(struct cli *cli, int argc, char **argv);
int cmd_image(struct cli *cli, int argc, char **argv);
int cmd_images(struct cli *cli, int argc, char **argv);
/* cmd_image.c: orch image pull REF, orch image prune, and every node's disk figures for
 * orch images (an array of {node, blob_bytes, layer_bytes, images: [{name, bytes}]}) */
int cmd_image_pull(struct cli *cli, const char *ref);
int cmd_image_prune(struct cli *cli);
int cli_image_disk(struct cli *cli, struct mpr *nodes);
int cmd_rollout(struct cli *cli, int argc, char **argv);
int cmd_completion(struct cli *cli, int argc, char **argv);
int cmd_top(struct cli *cli, int argc, char **argv);
int cmd_events(struct cli *cli, int argc, char **argv);
int cmd_console(struct cli *cli, int argc, char **argv);
int cmd_volume(struct cli *cli, int argc, char **argv);
int cmd_secret(struct cli *cli, int argc, char **argv);
int cmd_token(struct cli *cli, int argc, char **argv);
int cmd_ca(struct cli *cli, int argc, char **argv);
int cmd_config(struct cli *cli, int argc, char **argv);
int cmd_registry(struct cli *cli, int argc, char **argv);
int cmd_context(struct cli *cli, int argc, char **argv);
int cmd_user(struct cli *cli, int argc, char **argv);
/* cmd_lock.c: autolock (node/autolock.h) */
int cmd_unlock(struct cli *cli, int argc, char **argv);
int cmd_unlock_key(struct cli *cli, int argc, char **argv);
int cmd_cluster(struct cli *cli, int argc, char **argv);
int cmd_snapshot(struct cli *cli, int argc, char **argv);
/* cmd_snapshot.c: the first line of file (- : standard input) into out; -1, or an exit
 * code with the message printed */
int cli_read_passphrase(const char *file, char *out, size_t cap);
/* Reads a backup whole and checks it (state/snapfile.h), with its data key when it carries
 * one (opened with the passphrase of pass_file): -1 (file holds it; the caller frees it),
 * or an exit code with the message printed. */
struct snapfile_meta;
int cli_snapshot_load(const char *path, const char *pass_file, struct buf *file, struct snapfile_meta *m,
		      const uint8_t **body, size_t *body_len, uint8_t key[32], bool *has_key);
/* cmd_secret.c: orch deploy's part: creates (or updates) the file-backed secrets and
 * configs of sf and checks the external ones, then makes every service reference name the
 * cluster's secret. 0 or an exit code. */
struct spec_file;
int deploy_secrets(struct cli *cli, const char *file, const char *project, struct spec_file *sf, bool dry);

#endif
