/* The command table: each subcommand with its synopsis (kept equal to its man page's
 * SYNOPSIS, which a test checks), summary and options for -h. */
#include "cli/cli.h"
#include "cli/helpfmt.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define START_OPTS \
	"  --listen IP:PORT      address to bind the node port to (default 0.0.0.0:7420)\n" \
	"  --advertise IP:PORT   address other nodes use to reach this one (default: the\n" \
	"                        listen address, or this machine's first IPv4 address)\n" \
	"  --data-dir DIR        where the node keeps its state (default /var/lib/orch)\n" \
	"  --name NAME           node name (default: the host name)\n" \
	"  --detach              run in the background; return once the node serves\n" \
	"  --cpus N              CPUs offered to tasks (default: all)\n" \
	"  --memory SIZE         memory offered to tasks (default: all), e.g. 8g\n" \
	"  --label KEY=VALUE     node label for placement constraints (repeatable)\n" \
	"  --election-timeout D  raft election timeout (default 500ms)\n" \
	"  --heartbeat D         raft heartbeat interval (default 100ms)\n" \
	"  --runtime NAME        OCI runtime for tasks: runc (default) or crun\n" \
	"  --insecure-registry HOST[:PORT]  pull from this registry over plain HTTP (repeatable)\n" \
	"  --registry-mirror HOST[:PORT]    tried first for docker.io images\n" \
	"  --registry-ca-dir DIR  per-registry CA files, DIR/HOST[:PORT]/ca.crt\n" \
	"                        (default /etc/orch/certs.d)\n" \
	"  --image-gc-grace D    unused images and layers are removed after D (default 1h)\n" \
	"                        (the registry options are kept with the node)\n" \
	"  --allow-bind PREFIX   host paths under PREFIX may be bind-mounted into tasks\n" \
	"                        (repeatable; kept with the node; none by default)\n" \
	"  --metrics-listen IP:PORT  also serve /metrics and /healthz in plain HTTP there, for a\n" \
	"                        local Prometheus (kept with the node; off removes it)\n" \
	"  --console-listen IP:PORT  also serve the web console in plain HTTP there, to operators\n" \
	"                        (meant for 127.0.0.1; kept with the node; off removes it)\n" \
	"  --allow-privileged    run tasks of services with privileged: true here\n" \
	"                        (kept with the node; --deny-privileged turns it off)\n" \
	"  --userns-remap BASE:COUNT|default|off  run tasks in a user namespace whose\n" \
	"                        root is host uid BASE (default: 100000:65536, or the\n" \
	"                        orch entry of /etc/subuid); kept with the node\n" \
	"  --disk-floor SIZE     free space the data dir's filesystem must keep: below it the\n" \
	"                        cluster refuses growing writes (default 64m, at least 16m;\n" \
	"                        give it at every start)\n" \
	"  --install             start the node on boot: a systemd unit (an OpenRC service\n" \
	"                        where systemd is absent) that runs orch start; orch\n" \
	"                        uninstall removes it\n"

#define OUTPUT_OPT "  -o, --output FORMAT   table (default), json or yaml\n"

const struct command commands[] = {
	{"init", cmd_init, "init [--listen IP:PORT] [--advertise IP:PORT] [--data-dir DIR] [--name NAME] [--detach] [--failure-timeout D] [--force-new-cluster] [--autolock] [--ca-cert FILE --ca-key FILE] [--cert-expiry D] [--restore FILE [--passphrase-file FILE]]",
	 "Create a cluster (its CA, this node's certificate, a manager and a worker join token) and\n"
	 "run its first node; prints the lines that join other machines.\n"
	 "On a data directory that already holds a node, resume that node.",
	 START_OPTS "  --failure-timeout D   silence after which a node is marked down (default 5s)\n"
	 "  --force-new-cluster   on a surviving node's data directory after quorum is lost:\n"
	 "                        make this node the only voter of the cluster, keeping its state\n"
	 "  --autolock            keep every node's data key sealed under an unlock key (printed\n"
	 "                        once); a restarted node waits for it (orch unlock)\n"
	 "  --ca-cert FILE, --ca-key FILE  use this CA (PEM) instead of creating one\n"
	 "  --cert-expiry D       validity of the certificates issued to nodes (default 90d, at least\n"
	 "                        60s; nodes renew theirs at about 2/3 of it)\n"
	 "  --restore FILE        make the new cluster from a backup (orch snapshot save): its\n"
	 "                        services, secrets, configs, images and settings; nodes, tokens\n"
	 "                        and the CA are new\n"
	 "  --passphrase-file FILE  the passphrase the backup's data key is sealed under\n"},
	{"join", cmd_join, "join IP:PORT [--token-file FILE | --token TOKEN] [--worker] [--listen IP:PORT] [--advertise IP:PORT] [--data-dir DIR] [--name NAME] [--detach]",
	 "Join the cluster that the node at IP:PORT belongs to, and run this node. The token (from\n"
	 "orch init or orch token show) comes from --token-file, else ORCH_TOKEN, else --token; it\n"
	 "pins the cluster's CA and says manager or worker; the node keeps a certificate, not the\n"
	 "token. Returns (with --detach) once this node has caught up with the leader, and says\n"
	 "which raft role it got. On a data directory that already holds a node, resume that node.",
	 "  --token-file FILE     read the join token from FILE\n"
	 "  --token TOKEN         the join token (visible to other users in ps while orch join\n"
	 "                        starts: prefer --token-file or ORCH_TOKEN)\n"
	 "  --worker              join as a worker-only node (the worker token always does): it\n"
	 "                        runs tasks, is never a raft voter or standby and holds no raft\n"
	 "                        log, state replica or data key\n" START_OPTS},
	{"snapshot", cmd_snapshot, "snapshot save FILE [--passphrase-file FILE | --with-data-key] | inspect FILE",
	 "Back up the cluster's state into a file, or show what a backup holds.\n"
	 "The node (a manager) writes it; orch init --restore FILE makes a new cluster from it\n"
	 "(orch(8) BACKUPS).",
	 "  save FILE             write the services, secrets, configs, images and settings, with\n"
	 "                        the raft index and term they stand at (mode 0600)\n"
	 "  --passphrase-file FILE  seal the cluster data key in the file under the passphrase on\n"
	 "                        FILE's first line (- : standard input)\n"
	 "  --with-data-key       carry the data key in clear (the file is then as secret as it)\n"
	 "  inspect FILE          check the file (checksum, format) and print its header\n"},
	{"start", cmd_start, "start [--data-dir DIR] [--detach] [--install] [--cpus N] [--memory SIZE] [--label KEY=VALUE]",
	 "Run the node of a data directory again, as it was (after a reboot, or a stop): its\n"
	 "identity, cluster and kept options come from the directory. It never creates nor joins a\n"
	 "cluster: a directory without a node is an error. What a service started on boot runs.",
	 "  --detach              run in the background; return once the node serves\n"
	 "  --install             start the node on boot (as orch init --install)\n"
	 "  --cpus N, --memory SIZE, --label KEY=VALUE, --runtime NAME, --disk-floor SIZE,\n"
	 "  --election-timeout D, --heartbeat D, --failure-timeout D   as for orch init: the node\n"
	 "                        does not keep these, give them at every start\n"
	 "  --metrics-listen, --allow-bind, --allow-privileged, --userns-remap and the registry "
	 "options change what the node keeps, as for orch init\n"},
	{"uninstall", cmd_uninstall, "uninstall [--data-dir DIR]",
	 "Remove the service orch init|join|start --install wrote for the node of the data\n"
	 "directory (the systemd unit or OpenRC script and the link that enables it). The running\n"
	 "node is left as it is.",
	 ""},
	{"token", cmd_token, "token show|rotate [manager|worker]",
	 "Show or replace the join tokens (on a manager's machine). After a rotation the old token\n"
	 "is refused; nodes already joined keep working (they use their certificates).",
	 "  show [KIND]           print the manager and worker tokens, or only KIND's\n"
	 "  rotate [KIND]         replace both tokens, or only KIND's, and print the new ones\n"},
	{"ca", cmd_ca, "ca show|rotate [--ca-cert FILE --ca-key FILE]",
	 "Show the cluster CA, or replace it with no downtime. show prints what this node trusts:\n"
	 "each certificate's fingerprint (what join tokens pin), expiry and PEM text, from the data\n"
	 "directory; with the node running, each node's certificate expiry and CA, and how far a CA\n"
	 "rotation is.",
	 "  show                  the CA bundle, the nodes' certificates, the rotation's progress\n"
	 "  rotate                a new CA (made here, or --ca-cert/--ca-key), cross-signed by the\n"
	 "                        old; every node moves to it, then the old CA leaves the bundle\n"},
	{"status", cmd_status, "status [-o FORMAT]",
	 "Show the cluster as this node sees it: leader, term, commit and applied index, state hash.", OUTPUT_OPT},
	{"nodes", cmd_nodes, "nodes [-o FORMAT]", "List the nodes of the cluster with their kind (manager or worker), raft role and state.", OUTPUT_OPT},
	{"node", cmd_node, "node ls | rm [--force] NODE | label NODE KEY=VALUE... | drain NODE | pause NODE | activate NODE",
	 "Manage nodes: remove a dead one, set labels, change availability.",
	 "  rm [--force] NODE     remove NODE (a name or id prefix); --force even if it is up\n"
	 "  label NODE K=V | K-   set or remove labels\n"
	 "  drain | pause | activate NODE   set the node's availability\n"},
	{"deploy", cmd_deploy, "deploy [-f FILE ...] [--env-file FILE ...] [--profile NAME ...] [--dry-run] [--wait] [--project NAME]",
	 "Create or update the services of a Compose-style file (declarative: the same file twice\n"
	 "changes nothing).",
	 "  -f, --file FILE       a Compose file (see orch-compose(5)); several are merged in\n"
	 "                        order; - reads standard input; default: COMPOSE_FILE, else\n"
	 "                        compose.yaml (or .yml, docker-compose.y[a]ml) and its override\n"
	 "      --env-file FILE   variables for ${VAR} instead of the .env beside the first file\n"
	 "                        (repeatable; the shell's variables still win)\n"
	 "      --profile NAME    also deploy the services of profile NAME (repeatable)\n"
	 "  -n, --dry-run         show what would change, change nothing\n"
	 "  -w, --wait            wait until every replica runs (progress on a terminal)\n"
	 "  -p, --project NAME    project name (default: COMPOSE_PROJECT_NAME, the file's name:\n"
	 "                        key, else its directory)\n"},
	{"services", cmd_services, "services [-o FORMAT]", "List services: image, replicas running/desired, ports.", OUTPUT_OPT},
	{"inspect", cmd_inspect, "inspect SERVICE [-o FORMAT]", "Show a service: its spec, generation and tasks (YAML by default).",
	 "  -o, --output FORMAT   yaml (default) or json\n"},
	{"ps", cmd_ps, "ps [-a] [SERVICE] [-o FORMAT]",
	 "List tasks: service, slot, node, desired and current state, age, endpoint, error.",
	 "  -a, --all             include finished tasks (history)\n" OUTPUT_OPT},
	{"scale", cmd_scale, "scale SERVICE=N [SERVICE=N...]", "Set the number of replicas of services (a global service has none to set).", ""},
	{"rollout", cmd_rollout, "rollout status SERVICE [--wait] | undo SERVICE | pause SERVICE | resume SERVICE",
	 "Follow or steer a service's rolling update: progress, return to the previous version,\n"
	 "pause or resume.",
	 "  -w, --wait            (status) block until the rollout completes, pauses or rolls back;\n"
	 "                        exit 1 unless it completed\n"},
	{"rm", cmd_rm, "rm SERVICE [SERVICE...]", "Remove services and stop their tasks.", ""},
	{"logs", cmd_logs, "logs [-f] [--tail N] SERVICE|TASK",
	 "Show the output of a service's tasks (or one task), from whichever nodes run them.",
	 "  -f, --follow          keep streaming new output\n"
	 "  -n, --tail N          only the last N lines of each task\n"},
	{"exec", cmd_exec, "exec [-i] [-t] SERVICE[.SLOT]|TASK -- COMMAND [ARG ...]",
	 "Run a command in a running task, on whichever node runs it. Its output is shown here and\n"
	 "orch exits with its exit code. SERVICE alone picks the running task of the lowest slot.",
	 "  -i, --interactive     stream standard input to the command\n"
	 "  -t, --tty             run it on a terminal that follows this window's size (with -i,\n"
	 "                        standard input must be a terminal: keys go to the command)\n"},
	{"top", cmd_top, "top [-o FORMAT]",
	 "Show live figures of the whole cluster. Per service: replicas, connections, requests/s\n"
	 "and bytes through the routing mesh; per task: its node, CPU and memory.", OUTPUT_OPT},
	{"console", cmd_console, "console",
	 "Print the addresses of the node's web console.\n"
	 "They are the plain listener of --console-listen (role operator) and the node port, where\n"
	 "a browser with a user certificate of the cluster gets its role. See orch-console(1).", ""},
	{"events", cmd_events, "events [-f] [-o FORMAT]",
	 "Show what the cluster decided and why (scheduled, rescheduled, scaled, rolled back, node\n"
	 "down), newest last.",
	 "  -f, --follow          keep printing new events as they are committed\n" OUTPUT_OPT},
	{"image", cmd_image, "image load FILE|DIR | pull REF | prune | ls | rm NAME",
	 "Load, pull, prune, list or forget images. load takes every image and tag of a\n"
	 "docker-archive or OCI layout, directory or tar (gzip, zstd or plain layers); pull takes\n"
	 "one from its registry on every ready node; prune removes what no service uses. Names\n"
	 "compare as Docker's do\n"
	 "(nginx = docker.io/library/nginx:latest). Nodes fetch the blobs they lack from their\n"
	 "peers, then from the registry.",
	 "  pull REF              resolve REF once, pull it on every ready node with progress;\n"
	 "                        exit 1 if any node failed\n"
	 "  prune                 forget pulled images no service uses, and on every node remove\n"
	 "                        the blobs and layers no image uses; prints what each node freed\n"},
	{"images", cmd_images, "images [-o FORMAT]",
	 "List the images of the cluster (loaded and pulled) with the disk they take on each node.", OUTPUT_OPT},
	{"volume", cmd_volume, "volume ls [-o FORMAT] | inspect NAME [-o FORMAT] | rm [--force] NAME...",
	 "List, inspect or remove named volumes: directories on the node that holds each, where the\n"
	 "tasks using it are placed.",
	 "  ls                    every volume: its node, the tasks using it, who created it\n"
	 "  inspect NAME          one volume (YAML by default)\n"
	 "  rm NAME...            remove volumes no task uses, their directories with them\n"
	 "  -f, --force           (rm) forget a volume whose node is down (its data stays there)\n" OUTPUT_OPT},
	{"secret", cmd_secret, "secret create NAME FILE|- | ls [-o FORMAT] | inspect NAME [-o FORMAT] | rm NAME...",
	 "Store secrets; the tasks that use them get them as files on a tmpfs.\n"
	 "Values are sealed in the raft log under the cluster data key and sent only to the nodes\n"
	 "that run such tasks (/run/secrets/NAME by default). A new value under the same name is a\n"
	 "new version: the services using it roll to it.",
	 "  create NAME FILE|-    store the content of FILE (- : standard input), at most 500 KiB\n"
	 "  ls, inspect NAME      metadata only (id, version, size, services); never the value\n"
	 "  rm NAME...            remove every version; refused while a service uses it\n" OUTPUT_OPT},
	{"config", cmd_config, "config create NAME FILE|- | ls [-o FORMAT] | inspect NAME [-o FORMAT] | rm NAME...",
	 "Store configuration files; the tasks that use them get them at their target.\n"
	 "Stored and delivered as secrets are (/NAME by default). A new value rolls the services\n"
	 "using it.",
	 "  create NAME FILE|-    store the content of FILE (- : standard input), at most 500 KiB\n"
	 "  ls, inspect NAME      metadata only\n"
	 "  rm NAME...            remove every version; refused while a service uses it\n" OUTPUT_OPT},
	{"registry", cmd_registry, "registry login HOST [-u USER] [--password-stdin] | logout HOST",
	 "Store or forget the credentials of a registry, sealed in the cluster.\n"
	 "Every node uses them to pull from HOST.",
	 "  -u, --username USER   the user name (asked on the terminal if not given)\n"
	 "  --password-stdin      read the password from standard input (else asked on the terminal)\n"},
	{"user", cmd_user, "user add NAME --role admin|operator|viewer [-o FILE] | ls [-o FORMAT] | rm NAME...",
	 "Manage the users of the remote API (admin only). add makes a key here, has the cluster CA\n"
	 "certify it for NAME and the role, and writes a bundle (key, certificate, CA; mode 0600) for\n"
	 "--cert-bundle. rm revokes the user's certificate at once.",
	 "  add NAME --role ROLE  viewer: reads; operator: also deploy, scale, rollout, logs, exec, rm;\n"
	 "                        admin: everything (nodes, users, tokens, CA, registry, volumes)\n"
	 "  -o FILE               (add) the bundle to write (default NAME.pem; never overwritten)\n"
	 "  ls                    users, roles and certificate serials\n"
	 "  rm NAME...            remove users: their certificates are refused from then on\n" OUTPUT_OPT},
	{"context", cmd_context, "context ls [-o FORMAT] | use NAME | add NAME --host IP:PORT --cert-bundle FILE | rm NAME",
	 "Name the clusters this CLI drives and pick the current one. They are kept in\n"
	 "~/.config/orch/config (or ORCH_CONFIG); local is this machine's node.",
	 "  ls                    the contexts, the current one marked *\n"
	 "  use NAME              make NAME current (local: the local node's socket)\n"
	 "  add NAME --host IP:PORT --cert-bundle FILE   add or replace a context\n"
	 "  rm NAME               forget a context\n" OUTPUT_OPT},
	{"unlock", cmd_unlock, "unlock",
	 "Give a locked node (autolock, see orch init --autolock) the cluster's unlock key, read\n"
	 "from standard input or asked for on the terminal; the node then starts.", ""},
	{"unlock-key", cmd_unlock_key, "unlock-key [--rotate] [-q]",
	 "Show the cluster's unlock key (autolock), or replace it with a new one.",
	 "      --rotate          make a new unlock key; every node re-seals its data key under it\n"
	 "  -q, --quiet           print the key alone\n"},
	{"cluster", cmd_cluster, "cluster update --autolock=true|false | --rebalance-moves=N",
	 "Change cluster-wide settings: autolock on (prints the new unlock key) or off; how\n"
	 "many rebalancing moves may be under way at once.",
	 "      --autolock=BOOL   keep every node's data key sealed under an unlock key the\n"
	 "                        operator holds: a restarted node waits for orch unlock\n"
	 "      --rebalance-moves=N  tasks moved at a time to nodes that join or return\n"
	 "                        (default 2; 0 turns rebalancing off)\n"},
	{"leave", cmd_leave, "leave", "Leave the cluster gracefully: hand leadership over if needed, leave the raft\n"
	 "configuration, stop the node and remove its identity.", ""},
	{"completion", cmd_completion, "completion bash",
	 "Print a bash completion script: eval \"$(orch completion bash)\" or save it under\n"
	 "/etc/bash_completion.d/orch.", ""},
	{"version", cmd_version, "version", "Print the version.", ""},
	{"help", cmd_help, "help [COMMAND]", "Show the manual page of COMMAND (or the overview).", ""},
	{"debug", cmd_debug,
	 "debug write-bench [--count N] [--inflight K] | cleanup | hollow --join ADDR --token TOKEN --nodes N "
	 "[--listen-base IP] [--port PORT] [--run-delay MS] [--name-prefix NAME] [--cpus N] [--memory SIZE] "
	 "[--label KEY=VALUE] | pull [--insecure-registry HOST] [--registry-mirror URL] [--ca-file FILE] "
	 "[--ca-dir DIR] "
	 "[--user USER --password-stdin] [--platform OS/ARCH] [--parallel N] [--attempts N] [--progress] "
	 "(--dir DIR | --resolve) REF",
	 "Developer tools. write-bench: replicated writes through the local node (used by bench/).\n"
	 "cleanup: remove the containers, mounts, cgroups and network a stopped node left behind.\n"
	 "hollow: run N hollow nodes in this process, joined to a real cluster, for scale benchmarks:\n"
	 "real nodes (raft spares, heartbeats, watch, agent) whose runtime runs nothing.\n"
	 "pull: pull an image from a registry into a blob store at DIR, as a node does, and print it.",
	 "  --count N             write-bench: number of writes (default 2000)\n"
	 "  --inflight K          write-bench: writes in flight (default 1)\n"
	 "  --join ADDR           hollow: a node of the cluster (IP:PORT)\n"
	 "  --token TOKEN         hollow: the cluster's join token\n"
	 "  --nodes N             hollow: how many nodes (1 to 10000)\n"
	 "  --listen-base IP      hollow: the first node's address, the next ones follow (default 127.0.10.1)\n"
	 "  --port PORT           hollow: every node's port (default 7420)\n"
	 "  --run-delay MS        hollow: a task runs this long after it was assigned (default 500)\n"
	 "  --name-prefix NAME    hollow: nodes are named NAME-0001, ... (default hollow)\n"
	 "  --cpus N, --memory SIZE  hollow: each node's capacity (default 4 CPUs, 8g)\n"
	 "  --label KEY=VALUE     hollow: a label of every node (repeatable)\n"
	 "  --insecure-registry HOST  pull: speak plain HTTP to HOST[:PORT] (repeatable)\n"
	 "  --registry-mirror URL pull: try this registry first for docker.io images\n"
	 "  --ca-file FILE        pull: trust this CA too (the system CAs always are)\n"
	 "  --ca-dir DIR          pull: trust DIR/HOST:PORT/ca.crt for that registry, as a node does\n"
	 "  --user USER --password-stdin  pull: credentials, the password read from standard input\n"
	 "  --platform OS/ARCH    pull: the platform picked from an image index (default: this machine's)\n"
	 "  --parallel N, --attempts N  pull: layers at once (default 3), tries per request (default 4)\n"
	 "  --progress            pull: a progress line per phase and layer on standard output\n"
	 "  --dir DIR             pull: the blob store's root (blobs go to DIR/blobs/sha256)\n"
	 "  --resolve             pull: only resolve REF to the digest the registry serves, and print it\n"},
	{NULL, NULL, NULL, NULL, NULL},
};

const struct command *command_find(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

void cli_overview(FILE *f)
{
	helpfmt_usage(f, "[--data-dir DIR] [--host IP:PORT --cert-bundle FILE | --context NAME] COMMAND [ARGS]");
	fprintf(f, "\nA container orchestrator in one binary. Commands:\n");
	for (const struct command *c = commands; c->name; c++) {
		if (!strcmp(c->name, "debug"))
			continue;
		/* the summary's first sentence, whole */
		fprintf(f, "  %-10s ", c->name);
		helpfmt_para(f, c->summary, helpfmt_first_sentence(c->summary), 13, 13);
	}
	fprintf(f, "\nGlobal options (before COMMAND):\n");
	helpfmt_options(f, "  -D, --data-dir DIR    the local node's data directory (default /var/lib/orch)\n"
			   "  -H, --host IP:PORT    drive the cluster of the node at IP:PORT, over mutual TLS\n"
			   "  --cert-bundle FILE    the user's bundle for --host (orch user add writes it)\n"
			   "  --context NAME        a named cluster of the context file (orch context)\n");
	fprintf(f, "Environment: ORCH_HOST, ORCH_CERT, ORCH_CONTEXT, ORCH_CONFIG, ORCH_DATA_DIR.\n"
		   "\nRun orch COMMAND -h for a command's options, orch help COMMAND for its manual.\n");
}

int cmd_help(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	char page[64];
	if (argc > 2)
		return cli_usage("help", "one command at a time");
	if (argc == 2 && !command_find(argv[1]) && strcmp(argv[1], "compose"))
		return cli_usage("help", "unknown command %s", argv[1]);
	snprintf(page, sizeof page, "%s%s", argc == 2 ? "orch-" : "orch", argc == 2 ? argv[1] : "");
	/* man(1) when it is installed and knows the page; else the built-in help. */
	if (isatty(1) || getenv("ORCH_HELP_MAN")) {
		char cmd[256];
		snprintf(cmd, sizeof cmd, "man %s %s 2>/dev/null", argc == 2 && !strcmp(argv[1], "compose") ? "5" : "1", page);
		if (system(cmd) == 0)
			return EXIT_OK;
	}
	if (argc == 2 && command_find(argv[1]))
		return cli_help(argv[1]);
	cli_overview(stdout);
	return EXIT_OK;
}


/* Completion for bash: commands, their subcommands, service and node names (asked from
 * the local node at completion time), files after -f. */
int cmd_completion(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	if (argc != 2 || strcmp(argv[1], "bash"))
		return cli_usage("completion", "only bash is supported: orch completion bash");
	printf("# bash completion for orch (generated by orch completion bash)\n"
	       "_orch_services() { orch services -o json 2>/dev/null | tr ',' '\\n' | sed -n 's/.*\"name\":\"\\([^\"]*\\)\".*/\\1/p'; }\n"
	       "_orch_nodes() { orch nodes -o json 2>/dev/null | tr ',' '\\n' | sed -n 's/.*\"name\":\"\\([^\"]*\\)\".*/\\1/p'; }\n"
	       "_orch() {\n"
	       "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=${COMP_WORDS[1]}\n"
	       "  if [ $COMP_CWORD -eq 1 ]; then COMPREPLY=($(compgen -W \"");
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, "debug"))
			printf("%s ", c->name);
	printf("\" -- \"$cur\")); return; fi\n"
	       "  case $prev in -f|--file) COMPREPLY=($(compgen -f -- \"$cur\")); return;; -o|--output) COMPREPLY=($(compgen -W \"table json yaml\" -- \"$cur\")); return;; esac\n"
	       "  case $cmd in\n"
	       "    node) if [ $COMP_CWORD -eq 2 ]; then COMPREPLY=($(compgen -W \"ls rm label drain pause activate\" -- \"$cur\")); else COMPREPLY=($(compgen -W \"$(_orch_nodes)\" -- \"$cur\")); fi;;\n"
	       "    rollout) if [ $COMP_CWORD -eq 2 ]; then COMPREPLY=($(compgen -W \"status undo pause resume\" -- \"$cur\")); else COMPREPLY=($(compgen -W \"$(_orch_services) --wait\" -- \"$cur\")); fi;;\n"
	       "    image) if [ $COMP_CWORD -eq 2 ]; then COMPREPLY=($(compgen -W \"load pull prune ls rm\" -- \"$cur\")); else COMPREPLY=($(compgen -f -- \"$cur\")); fi;;\n"
	       "    volume) if [ $COMP_CWORD -eq 2 ]; then COMPREPLY=($(compgen -W \"ls inspect rm\" -- \"$cur\")); fi;;\n"
	       "    ps|logs|exec|inspect|rm|scale) COMPREPLY=($(compgen -W \"$(_orch_services)\" -- \"$cur\"));;\n"
	       "    secret|config) if [ $COMP_CWORD -eq 2 ]; then COMPREPLY=($(compgen -W \"create ls inspect rm\" -- \"$cur\")); else COMPREPLY=($(compgen -f -- \"$cur\")); fi;;\n"
	       "    registry) COMPREPLY=($(compgen -W \"login logout\" -- \"$cur\"));;\n"
	       "    user) if [ $COMP_CWORD -eq 2 ]; then COMPREPLY=($(compgen -W \"add ls rm\" -- \"$cur\")); fi;;\n"
	       "    context) if [ $COMP_CWORD -eq 2 ]; then COMPREPLY=($(compgen -W \"ls use add rm\" -- \"$cur\")); fi;;\n"
	       "    deploy) COMPREPLY=($(compgen -W \"-f --env-file --profile --dry-run --wait --project\" -- \"$cur\"));;\n"
	       "    help) COMPREPLY=($(compgen -W \"");
	for (const struct command *c = commands; c->name; c++)
		printf("%s ", c->name);
	printf("compose\" -- \"$cur\"));;\n"
	       "  esac\n"
	       "}\n"
	       "complete -F _orch orch\n");
	return EXIT_OK;
}
