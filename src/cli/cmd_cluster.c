/* orch init, join, status, nodes, leave, node, version. */
#include "cli/cli.h"
#include "node/restore.h"
#include "state/snapfile.h"
#include "cli/install.h"
#include <limits.h>
#include "node/creds.h"
#include "pki/pki.h"
#include <openssl/crypto.h>
#include "secret/datakey.h"
#include "secret/unlock.h"
#include "util/layout.h"
#include "node/daemon.h"
#include "node/worker.h"
#include "agent/volumes.h"
#include "node/nodesec.h"
#include "net/ipam.h"
#include "spec/units.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- options shared by init and join ---------------------------------------------------- */

struct start_opts {
	const char *listen, *advertise, *name;
	char *token; /* copied out of argv, the file or the environment (none left visible) */
	const char *token_file, *ca_cert, *ca_key;
	uint64_t cert_secs;
	bool detach, autolock;
	struct daemon_opts d;
	struct regopts reg;
	struct strv allow_bind; /* --allow-bind: replaces the node's kept list when given */
	const char *metrics_listen; /* --metrics-listen: replaces the kept one when given */
	const char *console_listen; /* --console-listen: likewise */
	bool worker;            /* orch join --worker (node/worker.h) */
	/* --allow-privileged, --deny-privileged, --userns-remap: change the kept options */
	int privileged;          /* 1 allow, -1 deny, 0 keep */
	const char *userns;      /* "BASE:COUNT", "default", "off"; NULL: keep */
	const char *restore, *passphrase_file; /* orch init --restore FILE (node/restore.h) */
	bool install;            /* --install (cli/install.h) */
	char **argv;             /* the command's arguments, its options first (getopt moved them) */
	int nopts;               /* how many of argv[1..] are options and their values */
};

enum { O_LISTEN = 256, O_ADVERTISE, O_NAME, O_DETACH, O_CPUS, O_MEMORY, O_LABEL, O_TOKEN, O_FAILURE, O_ELECTION, O_HEARTBEAT, O_FORCE_NEW, O_RUNTIME,
       O_INSECURE_REG, O_REG_MIRROR, O_REG_CA_DIR, O_GC_GRACE, O_ALLOW_BIND, O_WORKER, O_AUTOLOCK, O_TOKEN_FILE,
       O_CA_CERT, O_CA_KEY, O_CERT_EXPIRY, O_ALLOW_PRIV, O_DENY_PRIV, O_USERNS, O_METRICS_LISTEN, O_CONSOLE_LISTEN, O_DISK_FLOOR,
       O_INSTALL, O_RESTORE, O_PASSPHRASE_FILE };

static const struct option start_longopts[] = {
	{"listen", required_argument, NULL, O_LISTEN},
	{"advertise", required_argument, NULL, O_ADVERTISE},
	{"name", required_argument, NULL, O_NAME},
	{"detach", no_argument, NULL, O_DETACH},
	{"cpus", required_argument, NULL, O_CPUS},
	{"memory", required_argument, NULL, O_MEMORY},
	{"label", required_argument, NULL, O_LABEL},
	{"token", required_argument, NULL, O_TOKEN},
	{"token-file", required_argument, NULL, O_TOKEN_FILE},
	{"ca-cert", required_argument, NULL, O_CA_CERT},
	{"ca-key", required_argument, NULL, O_CA_KEY},
	{"cert-expiry", required_argument, NULL, O_CERT_EXPIRY},
	{"failure-timeout", required_argument, NULL, O_FAILURE},
	{"election-timeout", required_argument, NULL, O_ELECTION},
	{"heartbeat", required_argument, NULL, O_HEARTBEAT},
	{"force-new-cluster", no_argument, NULL, O_FORCE_NEW},
	{"runtime", required_argument, NULL, O_RUNTIME},
	{"insecure-registry", required_argument, NULL, O_INSECURE_REG},
	{"registry-mirror", required_argument, NULL, O_REG_MIRROR},
	{"registry-ca-dir", required_argument, NULL, O_REG_CA_DIR},
	{"image-gc-grace", required_argument, NULL, O_GC_GRACE},
	{"allow-bind", required_argument, NULL, O_ALLOW_BIND},
	{"metrics-listen", required_argument, NULL, O_METRICS_LISTEN},
	{"console-listen", required_argument, NULL, O_CONSOLE_LISTEN},
	{"worker", no_argument, NULL, O_WORKER},
	{"autolock", no_argument, NULL, O_AUTOLOCK},
	{"restore", required_argument, NULL, O_RESTORE},
	{"passphrase-file", required_argument, NULL, O_PASSPHRASE_FILE},
	{"allow-privileged", no_argument, NULL, O_ALLOW_PRIV},
	{"deny-privileged", no_argument, NULL, O_DENY_PRIV},
	{"userns-remap", required_argument, NULL, O_USERNS},
	{"disk-floor", required_argument, NULL, O_DISK_FLOOR},
	{"install", no_argument, NULL, O_INSTALL},
	{NULL, 0, NULL, 0},
};

static unsigned env_uint(const char *name, unsigned dflt)
{
	const char *v = getenv(name);
	return v && *v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

/* "90d" or a duration parse_duration_ms takes ("2160h"), in whole days (rounded up). */
/* A certificate's validity: 60s at least (renewal comes at about 2/3 of it, and a node
 * must reach the leader in the time left), 3650d at most. */
static int parse_expiry(const char *s, uint64_t *secs)
{
	char *end;
	uint64_t ms;
	unsigned long long n = strtoull(s, &end, 10);
	if (end != s && !strcmp(end, "d") && n <= 3650)
		ms = n * 86400000ull;
	else if (parse_duration_ms(s, &ms))
		return -1;
	*secs = ms / 1000;
	return *secs >= CREDS_MIN_SECS && *secs <= 3650ull * 86400 ? 0 : -1;
}

static int parse_start(const char *cmd, int argc, char **argv, struct start_opts *o, int *optind_out)
{
	memset(o, 0, sizeof *o);
	o->listen = "0.0.0.0:7420";
	o->d.ready_fd = -1;
	o->d.raft.election_ms = 500;
	o->d.raft.heartbeat_ms = 100;
	o->d.raft.snapshot_threshold = env_uint("ORCH_SNAPSHOT_THRESHOLD", 8192);
	o->d.raft.snapshot_trailing = env_uint("ORCH_SNAPSHOT_TRAILING", 2048);
	o->d.raft.test_disk_delay_ms = env_uint("ORCH_TEST_DISK_DELAY_MS", 0);
	o->d.cpus_milli = (uint64_t)sysconf(_SC_NPROCESSORS_ONLN) * 1000;
	o->d.memory = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	regopts_init(&o->reg);
	o->d.registry = &o->reg;
	char rerr[ERR_LEN];
	optind = 1;
	opterr = 0;
	int ch;
	uint64_t v;
	while ((ch = getopt_long(argc, argv, "", start_longopts, NULL)) != -1) {
		switch (ch) {
		case O_LISTEN: o->listen = optarg; break;
		case O_ADVERTISE: o->advertise = optarg; break;
		case O_NAME: o->name = optarg; break;
		case O_DETACH: o->detach = true; break;
		case O_INSTALL: o->install = true; break;
		case O_AUTOLOCK: o->autolock = true; break;
		case O_RESTORE: o->restore = optarg; break;
		case O_PASSPHRASE_FILE: o->passphrase_file = optarg; break;
		case O_TOKEN:
			/* copied, then wiped from argv: /proc/PID/cmdline of this process (and of the
			 * node it forks) must not show it */
			free(o->token);
			o->token = xstrdup(optarg);
			memset(optarg, 0, strlen(optarg));
			break;
		case O_TOKEN_FILE: o->token_file = optarg; break;
		case O_CA_CERT: o->ca_cert = optarg; break;
		case O_CA_KEY: o->ca_key = optarg; break;
		case O_CERT_EXPIRY:
			if (parse_expiry(optarg, &o->cert_secs))
				return cli_usage(cmd, "--cert-expiry %s: expected a duration from 60s to 3650d, like 90d, 2160h or 60s", optarg);
			break;
		case O_FORCE_NEW: o->d.force_new_cluster = true; break;
		case O_WORKER: o->worker = true; break;
		case O_RUNTIME:
			if (strcmp(optarg, "runc") && strcmp(optarg, "crun"))
				return cli_usage(cmd, "--runtime %s: runc or crun", optarg);
			setenv("ORCH_RUNTIME", optarg, 1); /* read by the agent */
			break;
		case O_INSECURE_REG:
		case O_REG_MIRROR:
		case O_REG_CA_DIR:
		case O_GC_GRACE:
			if (regopts_set(&o->reg, (enum regopt)(RO_INSECURE + ch - O_INSECURE_REG), optarg, rerr))
				return cli_usage(cmd, "%s", rerr);
			break;
		case O_CPUS:
			if (parse_cpus_milli(optarg, &o->d.cpus_milli) || !o->d.cpus_milli)
				return cli_usage(cmd, "--cpus %s: expected a positive number of CPUs like 2 or 0.5", optarg);
			break;
		case O_MEMORY:
			if (parse_bytes(optarg, &o->d.memory) || !o->d.memory)
				return cli_usage(cmd, "--memory %s: expected a size like 2g or 512m", optarg);
			break;
		case O_DISK_FLOOR:
			if (parse_bytes(optarg, &o->d.disk_floor) || o->d.disk_floor < DISKWATCH_FLOOR_MIN)
				return cli_usage(cmd, "--disk-floor %s: expected a size of at least 16m, like 64m or 1g", optarg);
			break;
		case O_METRICS_LISTEN: {
			struct sockaddr_in sa;
			if (strcmp(optarg, "off") && parse_ipport(optarg, &sa, rerr))
				return cli_usage(cmd, "--metrics-listen %s: expected IP:PORT (or off)", optarg);
			o->metrics_listen = optarg;
			break;
		}
		case O_CONSOLE_LISTEN: {
			struct sockaddr_in sa;
			if (strcmp(optarg, "off") && parse_ipport(optarg, &sa, rerr))
				return cli_usage(cmd, "--console-listen %s: expected IP:PORT (or off)", optarg);
			o->console_listen = optarg;
			break;
		}
		case O_ALLOW_BIND: {
			char *clean = optarg[0] == '/' ? realpath(optarg, NULL) : NULL;
			if (optarg[0] != '/' || o->allow_bind.n == VOLUMES_ALLOW_MAX)
				return cli_usage(cmd, "--allow-bind %s: expected an absolute path (at most %d)", optarg, VOLUMES_ALLOW_MAX);
			/* kept as resolved, so a symlinked prefix still matches the paths binds resolve to */
			strv_push(&o->allow_bind, clean ? clean : optarg);
			free(clean);
			break;
		}
		case O_ALLOW_PRIV:
		case O_DENY_PRIV: o->privileged = ch == O_ALLOW_PRIV ? 1 : -1; break;
		case O_USERNS: {
			struct nodesec ns;
			if (strcmp(optarg, "off") && nodesec_userns_arg(optarg, &ns, rerr))
				return cli_usage(cmd, "%s", rerr);
			o->userns = optarg;
			break;
		}
		case O_LABEL:
			if (!strchr(optarg, '=') || optarg[0] == '=' || o->d.nlabels == 32)
				return cli_usage(cmd, "--label %s: expected KEY=VALUE (at most 32)", optarg);
			o->d.labels[o->d.nlabels++] = optarg;
			break;
		case O_FAILURE:
			if (parse_duration_ms(optarg, &v) || v < 500)
				return cli_usage(cmd, "--failure-timeout %s: expected a duration of at least 500ms, like 5s", optarg);
			o->d.failure_timeout_ms = v;
			break;
		case O_ELECTION:
		case O_HEARTBEAT:
			if (parse_duration_ms(optarg, &v) || v < 10 || v > 60000)
				return cli_usage(cmd, "%s %s: expected a duration like 500ms", argv[optind - 1], optarg);
			if (ch == O_ELECTION)
				o->d.raft.election_ms = (unsigned)v;
			else
				o->d.raft.heartbeat_ms = (unsigned)v;
			break;
		default:
			return cli_usage(cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	if (o->d.raft.heartbeat_ms * 2 > o->d.raft.election_ms)
		return cli_usage(cmd, "--heartbeat must be at most half of --election-timeout");
	/* before anything joins: a node with both would be refused only once a member */
	if (o->privileged > 0 && o->userns && strcmp(o->userns, "off"))
		return cli_usage(cmd, "--allow-privileged and --userns-remap exclude each other: a privileged task is root "
				 "of the machine (orch(8) SECURITY)");
	*optind_out = optind;
	o->argv = argv;
	o->nopts = optind - 1;
	return -1;
}

/* First non-loopback IPv4 address of this host, or 127.0.0.1. */
static void default_ip(char *out, size_t n)
{
	struct ifaddrs *ifa = NULL, *i;
	snprintf(out, n, "127.0.0.1");
	if (getifaddrs(&ifa))
		return;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, (socklen_t)n);
		break;
	}
	freeifaddrs(ifa);
}

static int fill_identity(const char *cmd, const struct start_opts *o, struct identity *id)
{
	char err[ERR_LEN];
	struct sockaddr_in sa;
	memset(id, 0, sizeof *id);
	if (parse_ipport(o->listen, &sa, err))
		return cli_usage(cmd, "--listen: %s", err);
	snprintf(id->listen, sizeof id->listen, "%s", o->listen);
	if (o->advertise) {
		if (parse_ipport(o->advertise, &sa, err))
			return cli_usage(cmd, "--advertise: %s", err);
		if (sa.sin_addr.s_addr == 0)
			return cli_usage(cmd, "--advertise: 0.0.0.0 cannot be reached by peers; give this machine's address");
		snprintf(id->advertise, sizeof id->advertise, "%s", o->advertise);
	} else {
		char ip[64];
		const char *colon = strrchr(o->listen, ':');
		if (!strncmp(o->listen, "0.0.0.0:", 8))
			default_ip(ip, sizeof ip);
		else
			snprintf(ip, sizeof ip, "%.*s", (int)(colon - o->listen), o->listen);
		snprintf(id->advertise, sizeof id->advertise, "%s%s", ip, colon);
	}
	if (o->name)
		snprintf(id->name, sizeof id->name, "%s", o->name);
	else if (gethostname(id->name, sizeof id->name))
		snprintf(id->name, sizeof id->name, "node");
	for (const char *p = id->name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return cli_usage(cmd, "--name %s: use letters, digits, '-', '_' and '.' only", id->name);
	if (!id->name[0] || strlen(id->name) > 63)
		return cli_usage(cmd, "--name: 1 to 63 characters");
	id->id = identity_new_id();
	return -1;
}

static int ensure_dir(const char *dir)
{
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0755);
			*p = '/';
		}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -1;
	return 0;
}

static void tail_log(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char lines[8][512];
	int n = 0;
	while (fgets(lines[n % 8], sizeof lines[0], f))
		n++;
	fclose(f);
	for (int i = n > 8 ? n - 8 : 0; i < n; i++)
		fprintf(stderr, "  %s", lines[i % 8]);
}

/* What a joined node's ready message ("ok ROLE VOTERS", daemon.c) tells the user. */
static void print_joined(FILE *out, const struct identity *id, const char *ready)
{
	char role[16];
	unsigned voters = 0;
	if (!strcmp(ready, "ok worker")) {
		fprintf(out, "joined the cluster as node %s (%016llx), a worker: it runs tasks and is never a raft voter\n", id->name,
			(unsigned long long)id->id);
		return;
	}
	if (sscanf(ready, "ok %15s %u", role, &voters) != 2) {
		fprintf(out, "joined the cluster as node %s (%016llx)\n", id->name, (unsigned long long)id->id);
		return;
	}
	fprintf(out, "joined the cluster as node %s (%016llx), a %s, caught up with the leader\n", id->name,
		(unsigned long long)id->id, role);
	if (voters < 3)
		fprintf(stderr, "warning: the cluster has %u voter%s and does not survive the loss of one yet; "
			"it keeps 3 voters once it has 3 nodes\n", voters, voters == 1 ? "" : "s");
}

static void joined_foreground(const char *msg, const void *arg)
{
	print_joined(stderr, arg, msg);
}

/* Runs the daemon in the foreground, or forks it into the background (--detach) and
 * returns once it serves. `ok_msg` is printed when the node serves; a joining node says
 * instead, once caught up, which role it got. */
/* The start options a boot gives orch start again: those the node does not keep in its
 * data directory (the rest are kept, or are its identity, or were for the first start). */
static const char *const boot_opts[] = {"cpus", "memory", "label", "failure-timeout", "election-timeout", "heartbeat",
					"runtime", "disk-floor", "image-gc-grace"};

static int install(struct cli *cli, const struct start_opts *o, const struct identity *id)
{
	char dir[PATH_MAX], err[ERR_LEN], msg[2 * PATH_MAX];
	if (!realpath(cli->data_dir, dir))
		return cli_fail(E_IO, "--install: %s: %s", cli->data_dir, strerror(errno));
	const char **args = xcalloc((size_t)o->nopts + 1, sizeof *args);
	size_t n = 0;
	for (int i = 1; i <= o->nopts; i++) {
		const char *a = o->argv[i], *eq = strchr(a, '=');
		size_t len = eq ? (size_t)(eq - a) : strlen(a);
		const struct option *lo = NULL;
		for (const struct option *l = start_longopts; a[0] == '-' && a[1] == '-' && l->name; l++)
			if (strlen(l->name) == len - 2 && !strncmp(l->name, a + 2, len - 2))
				lo = l;
		bool has_value = lo && lo->has_arg == required_argument && !eq && i < o->nopts;
		bool keep = false;
		for (size_t k = 0; lo && k < sizeof boot_opts / sizeof *boot_opts; k++)
			keep = keep || !strcmp(lo->name, boot_opts[k]);
		if (keep) {
			args[n++] = a;
			if (has_value)
				args[n++] = o->argv[i + 1];
		}
		i += has_value;
	}
	struct install_req q = {.data_dir = dir, .name = id->name, .args = args, .nargs = n};
	int rc = install_service(&q, msg, sizeof msg, err);
	free(args);
	if (rc)
		return cli_fail(rc, "%s", err);
	printf("%s", msg);
	fflush(stdout);
	return EXIT_OK;
}

static int run_node(struct cli *cli, struct start_opts *o, const struct identity *id, const char *ok_msg, bool joining)
{
	char err[ERR_LEN] = "";
	o->d.data_dir = cli->data_dir;
	if (o->allow_bind.n && volumes_allow_save(cli->data_dir, &o->allow_bind, err))
		return cli_fail(E_IO, "--allow-bind: %s", err);
	if (o->metrics_listen &&
	    layout_write_text(cli->data_dir, LAYOUT_METRICS_LISTEN, strcmp(o->metrics_listen, "off") ? o->metrics_listen : NULL, err))
		return cli_fail(E_IO, "--metrics-listen: %s", err);
	if (o->console_listen &&
	    layout_write_text(cli->data_dir, LAYOUT_CONSOLE_LISTEN, strcmp(o->console_listen, "off") ? o->console_listen : NULL, err))
		return cli_fail(E_IO, "--console-listen: %s", err);
	if (o->privileged || o->userns) {
		struct nodesec ns;
		if (nodesec_load(cli->data_dir, &ns, err))
			return cli_fail(E_IO, "%s", err);
		if (o->privileged)
			ns.allow_privileged = o->privileged > 0;
		if (o->userns && !strcmp(o->userns, "off"))
			ns.userns_count = 0;
		else if (o->userns && nodesec_userns_arg(o->userns, &ns, err))
			return cli_fail(E_INVAL, "%s", err);
		if (ns.allow_privileged && ns.userns_count)
			return cli_fail(E_INVAL, "--allow-privileged and --userns-remap exclude each other: a privileged task "
					"is root of the machine (orch(8) SECURITY)");
		if (nodesec_save(cli->data_dir, &ns, err))
			return cli_fail(E_IO, "%s", err);
	}
	if (!o->detach) {
		if (o->install && install(cli, o, id))
			return EXIT_FAIL;
		if (joining) {
			o->d.on_ready = joined_foreground;
			o->d.ready_arg = id;
		} else if (ok_msg)
			fprintf(stderr, "%s", ok_msg);
		int rc = daemon_run(&o->d, id, err);
		if (rc && err[0])
			fprintf(stderr, "orch: %s\n", err);
		return rc ? EXIT_FAIL : EXIT_OK;
	}
	char logp[600], pidp[600];
	layout_path(logp, sizeof logp, cli->data_dir, LAYOUT_LOG);
	layout_path(pidp, sizeof pidp, cli->data_dir, LAYOUT_PID);
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC))
		return cli_fail(E_IO, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return cli_fail(E_IO, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(pfd[0]);
		setsid();
		int nul = open("/dev/null", O_RDWR);
		int lf = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (nul >= 0)
			dup2(nul, 0);
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		FILE *pf = fopen(pidp, "w");
		if (pf) {
			fprintf(pf, "%d\n", (int)getpid());
			fclose(pf);
		}
		o->d.ready_fd = pfd[1];
		int rc = daemon_run(&o->d, id, err);
		unlink(pidp);
		_exit(rc ? 1 : 0);
	}
	close(pfd[1]);
	char msg[64] = "";
	size_t got = 0;
	struct pollfd p = {.fd = pfd[0], .events = POLLIN};
	uint64_t deadline = now_ms() + 60000;
	while (got < sizeof msg - 1 && now_ms() < deadline) {
		if (poll(&p, 1, 1000) <= 0)
			continue;
		ssize_t r = read(pfd[0], msg + got, sizeof msg - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(pfd[0]);
	if (strncmp(msg, "ok", 2)) {
		int st;
		/* The pipe also ends when the node exits on an error: give it a moment to be reaped
		 * so the message tells a failed start from a slow one. */
		pid_t w = 0;
		for (int i = 0; i < 50 && now_ms() < deadline && (w = waitpid(pid, &st, WNOHANG)) == 0; i++) {
			struct timespec ts = {0, 20 * 1000000};
			nanosleep(&ts, NULL);
		}
		if (w == 0)
			fprintf(stderr, "orch: the node (pid %d) did not report ready within 60 s; its log %s ends with:\n", (int)pid, logp);
		else
			fprintf(stderr, "orch: the node failed to start; its log %s ends with:\n", logp);
		tail_log(logp);
		return EXIT_FAIL;
	}
	if (joining)
		print_joined(stdout, id, msg);
	else if (ok_msg)
		printf("%s", ok_msg);
	printf("node %s running in the background (pid %d, log %s)\n", id->name, (int)pid, logp);
	if (o->install && install(cli, o, id))
		return EXIT_FAIL;
	if (!strncmp(msg, "ok locked", 9))
		printf("the node is locked (autolock): it starts once it has the cluster's unlock key; run orch unlock\n");
	return EXIT_OK;
}

/* Binds the listen address once (and lets go): a join must not make the cluster add a
 * node that then cannot listen (a member that never answers). libuv binds with
 * SO_REUSEADDR too, so a port in TIME_WAIT is not refused here either. */
static int probe_listen(const char *listen, char *err)
{
	struct sockaddr_in sa;
	if (parse_ipport(listen, &sa, err))
		return E_INVAL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return errf(err, E_IO, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int rc = 0;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa))
		rc = errf(err, E_IO, "cannot listen on %s: %s; pick another --listen", listen, strerror(errno));
	close(fd);
	return rc;
}

/* The join token from --token, --token-file or ORCH_TOKEN (in that order), copied into
 * o->token; the variable is removed from the environment so the node does not carry it. */
static int token_gather(const char *cmd, struct start_opts *o)
{
	char *env = getenv("ORCH_TOKEN");
	if (!o->token && o->token_file) {
		struct buf b = {0};
		char err[ERR_LEN];
		if (pki_read_file(o->token_file, &b, err))
			return cli_fail(E_IO, "%s: %s", cmd, err);
		char *t = (char *)b.data;
		t[strcspn(t, "\r\n")] = 0;
		o->token = xstrdup(t);
		OPENSSL_cleanse(b.data, b.len);
		buf_free(&b);
	}
	if (!o->token && env && *env)
		o->token = xstrdup(env);
	if (env) {
		OPENSSL_cleanse(env, strlen(env));
		unsetenv("ORCH_TOKEN");
	}
	if (!o->token)
		return cli_usage(cmd, "missing the join token: --token-file FILE, ORCH_TOKEN=... or --token (printed by orch init and orch token show)");
	return -1;
}

/* A data directory that already holds an identity resumes it. */
static int try_resume(struct cli *cli, struct start_opts *o, const char *cmd)
{
	struct identity id;
	char err[ERR_LEN];
	int rc = identity_load(cli->data_dir, &id, err);
	if (rc == E_NOTFOUND)
		return -1;
	if (rc)
		return cli_fail(rc, "%s", err);
	if (o->token) {
		struct token t;
		if (!token_parse(o->token, &t, err) && memcmp(t.cluster_id, id.cluster_id, CLUSTER_ID_LEN))
			return cli_fail(E_INVAL, "%s already belongs to another cluster; use another --data-dir or remove it", cli->data_dir);
	}
	if (o->worker && !worker_mark_load(cli->data_dir))
		fprintf(stderr, "orch: --worker ignored: %s holds a manager node, resumed as one\n", cli->data_dir);
	char msg[256];
	snprintf(msg, sizeof msg, "resuming node %s (%016llx) from %s\n", id.name, (unsigned long long)id.id, cli->data_dir);
	(void)cmd;
	o->d.bootstrap = false;
	return run_node(cli, o, &id, msg, false);
}

int cmd_init(struct cli *cli, int argc, char **argv)
{
	struct start_opts o;
	int oi, rc = parse_start("init", argc, argv, &o, &oi);
	if (rc >= 0)
		return rc;
	if (oi < argc)
		return cli_usage("init", "unexpected argument %s", argv[oi]);
	if (o.token || o.token_file)
		return cli_usage("init", "--token and --token-file are for orch join");
	if (!o.ca_cert != !o.ca_key)
		return cli_usage("init", "--ca-cert and --ca-key go together");
	if (o.worker)
		return cli_usage("init", "--worker is for orch join: the first node leads, so it is a manager");
	struct identity known;
	char e0[ERR_LEN];
	if (o.autolock && identity_load(cli->data_dir, &known, e0) != E_NOTFOUND)
		return cli_usage("init", "--autolock is for a new cluster; turn it on in a running one with orch cluster update "
				 "--autolock=true");
	if (o.passphrase_file && !o.restore)
		return cli_usage("init", "--passphrase-file goes with --restore");
	/* --restore: the backup is read and checked whole before anything is written */
	struct buf snap = {0};
	struct snapfile_meta sm;
	const uint8_t *sbody = NULL;
	size_t sblen = 0;
	uint8_t skey[SEAL_KEY_LEN];
	bool has_skey = false;
	if (o.restore) {
		if (identity_load(cli->data_dir, &known, e0) != E_NOTFOUND)
			return cli_usage("init", "--restore makes a new cluster: %s already holds a node; give an empty --data-dir",
					 cli->data_dir);
		if ((rc = cli_snapshot_load(o.restore, o.passphrase_file, &snap, &sm, &sbody, &sblen, skey, &has_skey)) >= 0)
			return rc;
		if ((rc = snapfile_check(sbody, sblen, e0))) {
			buf_free(&snap);
			return cli_fail(rc, "%s: %s", o.restore, e0);
		}
	}
	if (ensure_dir(cli->data_dir))
		return cli_fail(E_IO, "cannot create data directory %s: %s", cli->data_dir, strerror(errno));
	if ((rc = try_resume(cli, &o, "init")) >= 0)
		return rc;
	if (o.d.force_new_cluster)
		return cli_fail(E_INVAL, "--force-new-cluster needs the data directory of a surviving node; %s has none", cli->data_dir);
	struct identity id;
	if ((rc = fill_identity("init", &o, &id)) >= 0)
		return rc;
	/* a byte another cluster on this machine uses would give both the same service addresses
	 * on lo; after 64 draws (all taken) the last one stays and the bridge probe still keeps
	 * node subnets apart */
	for (int k = 0; k < 64; k++) {
		random_bytes(id.cluster_id, sizeof id.cluster_id);
		if (!ipam_byte_taken(ipam_cluster_byte(id.cluster_id)))
			break;
	}
	char err[ERR_LEN];
	/* the key first: a data directory with an identity has its key (and the CA key and
	 * tokens are sealed under it) */
	struct datakey dk;
	datakey_generate(&dk);
	if (has_skey) /* the backup's: its sealed values open as they did (orch(8) BACKUPS) */
		memcpy(dk.k, skey, sizeof dk.k);
	OPENSSL_cleanse(skey, sizeof skey);
	if (o.autolock) { /* sealed from the start; the node records the key once it leads */
		o.d.autolock = true;
		unlock_generate(&o.d.autolock_key);
		rc = datakey_save_locked(cli->data_dir, &dk, &o.d.autolock_key, 0, err);
	} else
		rc = datakey_save(cli->data_dir, &dk, err);
	datakey_wipe(&dk);
	if (rc)
		return cli_fail(E_IO, "%s", err);
	struct token mgr, wrk;
	struct creds_init ci = {.ca_cert_file = o.ca_cert, .ca_key_file = o.ca_key, .cert_secs = o.cert_secs};
	char tdir[600];
	tls_dir(cli->data_dir, tdir, sizeof tdir);
	if (mkdir(tdir, 0700) && errno != EEXIST)
		return cli_fail(E_IO, "create %s: %s", tdir, strerror(errno));
	if ((rc = creds_init(cli->data_dir, id.cluster_id, id.id, &ci, &mgr, &wrk, err)))
		return cli_fail(rc, "init: %s", err);
	if ((rc = tls_load(&id.tls, tdir, err)))
		return cli_fail(rc, "init: %s", err);
	if (o.restore) {
		rc = restore_stage(cli->data_dir, sbody, sblen, err);
		OPENSSL_cleanse(snap.data, snap.len);
		buf_free(&snap);
		if (rc)
			return cli_fail(rc, "%s", err);
	}
	if (identity_save(cli->data_dir, &id, err))
		return cli_fail(E_IO, "%s", err);
	o.d.bootstrap = true;
	char tm[TOKEN_STR_LEN + 1], tw[TOKEN_STR_LEN + 1], msg[1600], key[UNLOCK_STR_LEN + 1];
	token_format(&mgr, tm);
	token_format(&wrk, tw);
	OPENSSL_cleanse(&mgr, sizeof mgr);
	OPENSSL_cleanse(&wrk, sizeof wrk);
	int n = snprintf(msg, sizeof msg,
			 "cluster created; node %s (%016llx) is its leader.\n"
			 "To add a manager-capable machine (may become a raft voter), run on it:\n\n"
			 "    ORCH_TOKEN=%s orch join %s\n\n"
			 "To add a worker (runs tasks, never a voter, no data key):\n\n"
			 "    ORCH_TOKEN=%s orch join %s\n\n"
			 "(orch token show [manager|worker] prints them again; orch token rotate replaces one)\n",
			 id.name, (unsigned long long)id.id, tm, id.advertise, tw, id.advertise);
	OPENSSL_cleanse(tm, sizeof tm);
	OPENSSL_cleanse(tw, sizeof tw);
	if (o.restore)
		n += snprintf(msg + n, sizeof msg - (size_t)n,
			      "restored from %s (cluster %s, raft index %llu, orch %s): %llu services, %llu secrets, %llu images\n",
			      o.restore, sm.cluster, (unsigned long long)sm.index, sm.version, (unsigned long long)sm.services,
			      (unsigned long long)sm.secrets, (unsigned long long)sm.images);
	if (o.autolock) { /* shown once, here: the operator keeps it (orch unlock-key shows it again) */
		unlock_format(&o.d.autolock_key, key);
		snprintf(msg + n, sizeof msg - (size_t)n, "Autolock is on. The unlock key (keep it safe: a restarted node waits for it, "
			 "given with orch unlock):\n\n    %s\n\n", key);
		OPENSSL_cleanse(key, sizeof key);
	}
	rc = run_node(cli, &o, &id, msg, false);
	OPENSSL_cleanse(msg, sizeof msg);
	unlock_wipe(&o.d.autolock_key);
	return rc;
}

/* orch start: only ever resumes the node of the data directory (what a service runs at
 * boot, cli/install.h): a data directory that lost its node must not become a new cluster. */
int cmd_start(struct cli *cli, int argc, char **argv)
{
	struct start_opts o;
	int oi, rc = parse_start("start", argc, argv, &o, &oi);
	if (rc >= 0)
		return rc;
	if (oi < argc)
		return cli_usage("start", "unexpected argument %s", argv[oi]);
	if (o.token || o.token_file || o.ca_cert || o.ca_key || o.cert_secs || o.autolock || o.worker || o.d.force_new_cluster)
		return cli_usage("start", "--token, --token-file, --ca-cert, --ca-key, --cert-expiry, --autolock, --worker and "
				 "--force-new-cluster are for orch init and orch join");
	if (o.restore || o.passphrase_file)
		return cli_usage("start", "--restore is for orch init (a new cluster from a backup)");
	struct identity id;
	char err[ERR_LEN];
	if ((rc = identity_load(cli->data_dir, &id, err)) == E_NOTFOUND)
		return cli_fail(E_NOTFOUND, "no node in %s to start: orch init creates a cluster, orch join joins one",
				cli->data_dir);
	if (rc)
		return cli_fail(rc, "%s", err);
	return try_resume(cli, &o, "start");
}

int cmd_uninstall(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage("uninstall", "unexpected argument %s", argv[1]);
	char dir[PATH_MAX], err[ERR_LEN], msg[2 * PATH_MAX + 64];
	if (!realpath(cli->data_dir, dir))
		return cli_fail(E_NOTFOUND, "uninstall: %s: %s", cli->data_dir, strerror(errno));
	int rc = install_remove(dir, msg, sizeof msg, err);
	if (rc)
		return cli_fail(rc, "uninstall: %s", err);
	printf("%sthe node no longer starts on boot; it keeps running now (orch leave takes it out of the "
	       "cluster)\n", msg);
	return EXIT_OK;
}

int cmd_join(struct cli *cli, int argc, char **argv)
{
	struct start_opts o;
	int oi, rc = parse_start("join", argc, argv, &o, &oi);
	if (rc >= 0)
		return rc;
	if (o.restore || o.passphrase_file)
		return cli_usage("join", "--restore is for orch init (a new cluster from a backup)");
	if (oi >= argc)
		return cli_usage("join", "missing the address of a cluster node (IP:PORT)");
	if (oi + 1 < argc)
		return cli_usage("join", "unexpected argument %s", argv[oi + 1]);
	const char *addr = argv[oi];
	char err[ERR_LEN];
	struct sockaddr_in sa;
	if (parse_ipport(addr, &sa, err))
		return cli_usage("join", "%s", err);
	if ((rc = token_gather("join", &o)) >= 0)
		return rc;
	if (o.autolock)
		return cli_usage("join", "--autolock is for orch init (a joiner follows the cluster's setting)");
	struct identity id;
	struct token tok;
	if (token_parse(o.token, &tok, err))
		return cli_fail(E_INVAL, "%s", err);
	if (ensure_dir(cli->data_dir))
		return cli_fail(E_IO, "cannot create data directory %s: %s", cli->data_dir, strerror(errno));
	if ((rc = try_resume(cli, &o, "join")) >= 0)
		return rc;
	OPENSSL_cleanse(o.token, strlen(o.token));
	if ((rc = fill_identity("join", &o, &id)) >= 0)
		return rc;
	memcpy(id.cluster_id, tok.cluster_id, CLUSTER_ID_LEN);
	struct buf key = {0}, csr = {0}, cert = {0}, bundle = {0};
	if ((rc = creds_csr(&key, &csr, err)))
		return cli_fail(rc, "join: %s", err);
	char secret_hex[2 * SECRET_LEN + 1];
	hex_encode(tok.secret, SECRET_LEN, secret_hex);
	if (probe_listen(id.listen, err))
		return cli_fail(E_IO, "join: %s", err);
	/* Ask the cluster to add us, following redirects to the leader. Nothing is written
	 * locally before the leader accepted. */
	char target[64], seed[64] = "";
	struct datakey dk = {{0}};
	struct unlock_key ul = {{0}};
	uint64_t ul_id = 0;
	bool have_dk = false, have_ul = false, worker = false;
	snprintf(target, sizeof target, "%s", addr);
	uint64_t deadline = now_ms() + 30000;
	for (;;) {
		struct client c;
		rc = client_open_join(&c, target, tok.ca_fp, 5000, err);
		if (rc == E_AUTH)
			return cli_fail(rc, "join %s: %s", target, err);
		if (rc) {
			if (now_ms() < deadline && strcmp(target, addr)) {
				snprintf(target, sizeof target, "%s", addr);
				continue;
			}
			return cli_fail(rc, "join: %s", err);
		}
		/* this node's record, in its stored form (state/store.h) */
		struct node self = {.id = id.id, .name = id.name, .addr = id.advertise, .cpus_milli = o.d.cpus_milli,
				    .memory = o.d.memory, .version = ORCH_VERSION};
		/* the runtime the agent will pick on this fresh data directory (agent/adopt.c) */
		const char *rt = getenv("ORCH_RUNTIME");
		self.runtime = (char *)(uintptr_t)(rt && *rt ? rt : "runc");
		for (size_t i = 0; i < o.d.nlabels; i++) {
			const char *eq = strchr(o.d.labels[i], '=');
			char k[256];
			snprintf(k, sizeof k, "%.*s", (int)(eq - o.d.labels[i]), o.d.labels[i]);
			labels_set(&self.labels, k, eq + 1);
		}
		struct mpw rec;
		mpw_init(&rec);
		schema_encode(&node_schema, &self, &rec);
		labels_free(&self.labels);
		struct req_join q = {.proto = PROTO_VERSION, .node = {.raw = rec.sb.data, .len = rec.sb.size}, .secret = secret_hex,
				     .csr = (const char *)csr.data, .worker = o.worker};
		struct mpr resp;
		rc = client_call_req(&c, OP_JOIN, &q, &resp, 15000, err);
		mpw_free(&rec);
		client_close(&c);
		if (rc == E_NOLEADER || rc == E_BUSY) {
			char leader[64] = "";
			if (resp.root)
				mp_get_strbuf(resp.root, "leader", leader, sizeof leader);
			mpr_free(&resp);
			if (now_ms() > deadline)
				return cli_fail(rc, "join: %s", err);
			if (leader[0])
				snprintf(target, sizeof target, "%s", leader);
			else {
				struct timespec ts = {0, 200 * 1000000};
				nanosleep(&ts, NULL);
			}
			continue;
		}
		if (!rc && resp.root) {
			mp_get_u64(resp.root, "commit_index", &o.d.catch_up_index);
			mp_get_bool(resp.root, "worker", &worker);
			mp_get_strbuf(resp.root, "leader", seed, sizeof seed);
			char *cs = mp_get_strdup(resp.root, "cert"), *ca = mp_get_strdup(resp.root, "ca");
			if (cs && ca) {
				buf_append(&cert, cs, strlen(cs) + 1);
				buf_append(&bundle, ca, strlen(ca) + 1);
			}
			free(cs);
			free(ca);
			const msgpack_object *wk = mp_get(resp.root, "datakey");
			if (wk && wk->type == MSGPACK_OBJECT_BIN) {
				if (datakey_unwrap(wk->via.bin.ptr, wk->via.bin.size, &tok, &dk, err))
					fprintf(stderr, "orch: join: the cluster's data key could not be read (%s); this node cannot serve secrets\n", err);
				else
					have_dk = true;
			}
			/* an autolocked cluster: the file is sealed under its unlock key from the start */
			const msgpack_object *uk = mp_get(resp.root, "unlock");
			struct datakey as_key;
			if (have_dk && uk && uk->type == MSGPACK_OBJECT_BIN &&
			    !datakey_unwrap(uk->via.bin.ptr, uk->via.bin.size, &tok, &as_key, err)) {
				memcpy(ul.k, as_key.k, sizeof ul.k);
				mp_get_u64(resp.root, "unlock_id", &ul_id);
				have_ul = true;
				datakey_wipe(&as_key);
			}
		}
		mpr_free(&resp);
		if (rc)
			return cli_fail(rc, "join: %s", err);
		break;
	}
	OPENSSL_cleanse(&tok, sizeof tok);
	OPENSSL_cleanse(secret_hex, sizeof secret_hex);
	rc = !have_dk ? 0 : have_ul ? datakey_save_locked(cli->data_dir, &dk, &ul, ul_id, err) : datakey_save(cli->data_dir, &dk, err);
	datakey_wipe(&dk);
	unlock_wipe(&ul);
	if (rc)
		return cli_fail(E_IO, "%s", err);
	/* the certificate must be this node's, issued by the CA the token pinned */
	struct peer me;
	char cl[17], tdir[600];
	if (!cert.len || !bundle.len || pki_peer_of_pem((char *)cert.data, &me, cl, err) || me.kind != PEER_NODE ||
	    me.node_id != id.id || pki_verify((char *)bundle.data, (char *)cert.data, err) ||
	    !pki_key_matches((char *)cert.data, (char *)key.data))
		return cli_fail(E_AUTH, "join: the leader's reply holds no valid certificate for this node%s%s", err[0] ? ": " : "", err);
	rc = creds_save(cli->data_dir, (char *)key.data, (char *)cert.data, (char *)bundle.data, err);
	OPENSSL_cleanse(key.data, key.len);
	buf_free(&key);
	buf_free(&csr);
	buf_free(&cert);
	buf_free(&bundle);
	tls_dir(cli->data_dir, tdir, sizeof tdir);
	if (rc || (rc = tls_load(&id.tls, tdir, err)))
		return cli_fail(E_IO, "%s", err);
	/* the leader's word: a worker holds no log, so there is nothing to catch up with */
	const char *ask[1] = {seed[0] ? seed : target};
	if (worker && (rc = worker_mark_save(cli->data_dir, ask, 1, err)))
		return cli_fail(rc, "join: %s", err);
	if (worker)
		o.d.catch_up_index = 0;
	else if (o.worker)
		return cli_fail(E_FAIL, "join: asked to join as a worker, but the leader (an older version?) took this node as a manager");
	if (identity_save(cli->data_dir, &id, err))
		return cli_fail(E_IO, "%s", err);
	o.d.bootstrap = false;
	o.d.seed = seed[0] ? seed : target;
	return run_node(cli, &o, &id, NULL, true);
}

/* ---- read commands --------------------------------------------------------------------------- */

static int parse_output(const char *cmd, int argc, char **argv, enum out_fmt *fmt, int *rest)
{
	*fmt = OUT_TABLE;
	static const struct option lo[] = {{"output", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
		if (ch == 'o') {
			if (out_parse_fmt(optarg, fmt))
				return cli_usage(cmd, "-o %s: expected table, json or yaml", optarg);
		} else
			return cli_usage(cmd, "unknown option %s", argv[optind - 1]);
	}
	*rest = optind;
	return -1;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt;
	int rest, rc = parse_output("status", argc, argv, &fmt, &rest);
	if (rc >= 0)
		return rc;
	if (rest < argc)
		return cli_usage("status", "unexpected argument %s", argv[rest]);
	struct mpr r;
	if ((rc = cli_rpc_retry(cli, OP_STATUS, NULL, &r, 0)))
		return rc;
	if (fmt != OUT_TABLE) {
		out_doc(fmt, r.root);
		mpr_free(&r);
		return EXIT_OK;
	}
	bool locked = false;
	mp_get_bool(r.root, "locked", &locked);
	if (locked) {
		char nm[80], nid[20];
		printf("this node:    %s %s\n", mp_str_or(r.root, "name", nm, sizeof nm, "-"), mp_str_or(r.root, "node_id", nid, sizeof nid, "-"));
		printf("state:        locked (autolock): it runs no raft and no task until it has the cluster's unlock key;\n"
		       "              run orch unlock on this machine (orch unlock-key on an unlocked node shows the key)\n");
		mpr_free(&r);
		return EXIT_OK;
	}
	char b[17][128];
	const char *k[] = {"cluster", "node_id", "name", "addr", "role", "raft_state", "leader_name", "leader_addr", "state_hash", "version", "kind"};
	for (int i = 0; i < 11; i++)
		mp_str_or(r.root, k[i], b[i], sizeof b[i], "-");
	if (!strcmp(b[10], "worker")) {
		/* no log and no state here: raft figures would say nothing */
		printf("cluster:      %s\n", b[0]);
		printf("this node:    %s %s %s\n", b[2], b[1], b[3]);
		printf("role:         worker (runs tasks; never a raft voter or standby; holds no log, state or data key)\n");
		printf("leader:       %s\n", strcmp(b[7], "-") && b[7][0] ? b[7] : "(not connected yet)");
		printf("version:      %s\n", b[9]);
		mpr_free(&r);
		return EXIT_OK;
	}
	uint64_t term = 0, commit = 0, applied = 0, rev = 0, nodes = 0, shortage = 0, wanted = 0;
	mp_get_u64(r.root, "term", &term);
	mp_get_u64(r.root, "commit_index", &commit);
	mp_get_u64(r.root, "applied_index", &applied);
	mp_get_u64(r.root, "revision", &rev);
	mp_get_u64(r.root, "nodes", &nodes);
	printf("cluster:      %s (%llu nodes)\n", b[0], (unsigned long long)nodes);
	printf("this node:    %s %s %s\n", b[2], b[1], b[3]);
	printf("role:         %s, %s\n", b[4], b[5]);
	printf("leader:       %s %s\n", b[6][0] ? b[6] : "(none)", b[7]);
	if (!mp_get_u64(r.root, "voter_shortage", &shortage) && shortage) {
		mp_get_u64(r.root, "voters_wanted", &wanted);
		printf("voters:       %llu missing of %llu wanted: no live manager-capable node to promote (workers never vote)\n",
		       (unsigned long long)shortage, (unsigned long long)wanted);
	}
	printf("term:         %llu\n", (unsigned long long)term);
	printf("commit index: %llu\n", (unsigned long long)commit);
	printf("applied:      %llu\n", (unsigned long long)applied);
	printf("revision:     %llu\n", (unsigned long long)rev);
	printf("state hash:   %s\n", b[8]);
	printf("version:      %s\n", b[9]);
	char halted[ERR_LEN];
	uint64_t halted_at = 0;
	if (!mp_get_strbuf(r.root, "halted", halted, sizeof halted)) { /* raft/consensus.h cons_halted */
		mp_get_u64(r.root, "halted_at", &halted_at);
		printf("halted:       at entry %llu: %s;\n              upgrade this node's binary (orch(8) UPGRADES)\n",
		       (unsigned long long)halted_at, halted);
	}
	uint64_t dfree, dfloor = 0;
	if (!mp_get_u64(r.root, "disk_free", &dfree)) {
		char fb[32], lb[32];
		mp_get_u64(r.root, "disk_floor", &dfloor);
		out_bytes(dfree, fb, sizeof fb);
		out_bytes(dfloor, lb, sizeof lb);
		bool deaf = false;
		mp_get_bool(r.root, "disk_deaf", &deaf);
		printf("disk:         %s free (floor %s)%s\n", fb, lb,
		       deaf ? ": below half the floor, not hearing the leader (nothing appended here);\n"
			      "              this node's state is stale until space is freed" : "");
	}
	const msgpack_object *al = mp_get(r.root, "disk_alarms");
	for (uint32_t i = 0; al && al->type == MSGPACK_OBJECT_ARRAY && i < al->via.array.size; i++) {
		char msg[512];
		printf("disk alarm:   %s\n", mp_str_or(&al->via.array.ptr[i], "message", msg, sizeof msg, "-"));
	}
	mpr_free(&r);
	return EXIT_OK;
}

int cmd_nodes(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt;
	int rest, rc = parse_output("nodes", argc, argv, &fmt, &rest);
	if (rc >= 0)
		return rc;
	if (rest < argc)
		return cli_usage("nodes", "unexpected argument %s", argv[rest]);
	struct mpr r;
	if ((rc = cli_rpc_retry(cli, OP_NODES, NULL, &r, 0)))
		return rc;
	const msgpack_object *ns = mp_get(r.root, "nodes");
	if (fmt != OUT_TABLE) {
		out_doc(fmt, ns ? ns : r.root);
		mpr_free(&r);
		return EXIT_OK;
	}
	const char *hdr[] = {"ID", "NAME", "ADDRESS", "KIND", "ROLE", "STATE", "AVAILABILITY", "RUNTIME", "CPUS", "MEMORY", "LABELS"};
	struct out_table t;
	out_table_init(&t, 11, hdr);
	for (uint32_t i = 0; ns && ns->type == MSGPACK_OBJECT_ARRAY && i < ns->via.array.size; i++) {
		const msgpack_object *n = &ns->via.array.ptr[i];
		char id[20], name[80], addr[64], kind[16], role[32], state[32], avail[32], runtime[16], cpus[32], mem[32], labels[256] = "";
		mp_str_or(n, "id", id, sizeof id, "-");
		id[12] = 0;
		mp_str_or(n, "name", name, sizeof name, "-");
		mp_str_or(n, "addr", addr, sizeof addr, "-");
		mp_str_or(n, "kind", kind, sizeof kind, "-");
		mp_str_or(n, "role", role, sizeof role, "-");
		mp_str_or(n, "state", state, sizeof state, "-");
		mp_str_or(n, "availability", avail, sizeof avail, "-");
		if (!mp_str_or(n, "runtime", runtime, sizeof runtime, "-")[0])
			snprintf(runtime, sizeof runtime, "-");
		bool leader = false, self = false;
		mp_get_bool(n, "leader", &leader);
		mp_get_bool(n, "self", &self);
		if (leader)
			strncat(role, " (leader)", sizeof role - strlen(role) - 1);
		bool alarm = false;
		mp_get_bool(mp_get(n, "disk"), "alarm", &alarm);
		if (alarm)
			strncat(state, " (disk low)", sizeof state - strlen(state) - 1);
		if (self)
			strncat(name, " *", sizeof name - strlen(name) - 1);
		uint64_t c = 0, m = 0;
		mp_get_u64(n, "cpus_milli", &c);
		mp_get_u64(n, "memory", &m);
		snprintf(cpus, sizeof cpus, "%.1f", (double)c / 1000);
		out_bytes(m, mem, sizeof mem);
		const msgpack_object *lb = mp_get(n, "labels");
		for (uint32_t j = 0; lb && lb->type == MSGPACK_OBJECT_MAP && j < lb->via.map.size; j++) {
			const msgpack_object *kk = &lb->via.map.ptr[j].key, *vv = &lb->via.map.ptr[j].val;
			if (!mp_is_str(kk) || !mp_is_str(vv))
				continue;
			size_t len = strlen(labels);
			snprintf(labels + len, sizeof labels - len, "%s%.*s=%.*s", len ? "," : "", (int)kk->via.str.size, kk->via.str.ptr,
				 (int)vv->via.str.size, vv->via.str.ptr);
		}
		const char *row[] = {id, name, addr, kind, role, state, avail, runtime, cpus, mem, labels};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
	mpr_free(&r);
	return EXIT_OK;
}

int cmd_leave(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage("leave", "unexpected argument %s", argv[1]);
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_LEAVE, NULL, &r, 20000);
	if (rc)
		return rc;
	mpr_free(&r);
	/* The node answers before it stops and removes its identity: wait for that, so the
	 * message below is true when printed (and a following orch init starts afresh). */
	char idp[600];
	layout_path(idp, sizeof idp, cli->data_dir, LAYOUT_IDENTITY);
	uint64_t deadline = now_ms() + 15000;
	while (access(idp, F_OK) == 0 && now_ms() < deadline) {
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
	if (access(idp, F_OK) == 0) {
		char logp[600];
		layout_path(logp, sizeof logp, cli->data_dir, LAYOUT_LOG);
		return cli_fail(E_FAIL, "the cluster removed this node, but it did not stop and remove %s within 15 s; see %s",
				idp, logp);
	}
	printf("left the cluster; the node has stopped and its identity was removed from %s\n", cli->data_dir);
	return EXIT_OK;
}

static int node_rm(struct cli *cli, int argc, char **argv)
{
	bool force = false;
	const char *ref = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
			force = true;
		else if (argv[i][0] == '-')
			return cli_usage("node", "node rm: unknown option %s", argv[i]);
		else if (ref)
			return cli_usage("node", "node rm: one node at a time");
		else
			ref = argv[i];
	}
	if (!ref)
		return cli_usage("node", "node rm: which node? (name or id, see orch nodes)");
	struct req_node_rm q = {.node = ref, .force = force};
	struct mpr r;
	int rc = cli_rpc(cli, OP_NODE_RM, &q, &r);
	if (rc)
		return rc;
	mpr_free(&r);
	printf("node %s removed\n", ref);
	return EXIT_OK;
}

static int node_update(struct cli *cli, const char *verb, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("node", "node %s: which node?", verb);
	struct req_node_update q = {.node = argv[1]};
	struct mpw f; /* the labels */
	mpw_init(&f);
	if (!strcmp(verb, "label")) {
		if (argc < 3) {
			mpw_free(&f);
			return cli_usage("node", "node label: give KEY=VALUE to set or KEY- to remove");
		}
		mpw_map_begin(&f);
		for (int i = 2; i < argc; i++) {
			const char *eq = strchr(argv[i], '=');
			size_t len = strlen(argv[i]);
			if (eq && eq != argv[i]) {
				mpw_keyn(&f, argv[i], (size_t)(eq - argv[i]));
				mpw_str(&f, eq + 1);
			} else if (len > 1 && argv[i][len - 1] == '-') {
				mpw_keyn(&f, argv[i], len - 1);
				mpw_nil(&f);
			} else {
				mpw_free(&f);
				return cli_usage("node", "node label: %s is neither KEY=VALUE nor KEY-", argv[i]);
			}
		}
		mpw_map_end(&f);
		q.labels.raw = f.sb.data;
		q.labels.len = f.sb.size;
	} else {
		if (argc > 2) {
			mpw_free(&f);
			return cli_usage("node", "node %s: unexpected argument %s", verb, argv[2]);
		}
		q.availability = !strcmp(verb, "drain") ? "drain" : !strcmp(verb, "pause") ? "pause" : "active";
	}
	struct mpr r;
	int rc = cli_rpc(cli, OP_NODE_UPDATE, &q, &r);
	mpw_free(&f);
	if (rc)
		return rc;
	mpr_free(&r);
	printf("node %s updated\n", argv[1]);
	return EXIT_OK;
}

int cmd_node(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("node", "missing subcommand: ls, rm, label, drain, pause or activate");
	const char *sub = argv[1];
	if (!strcmp(sub, "ls"))
		return cmd_nodes(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "rm"))
		return node_rm(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "label") || !strcmp(sub, "drain") || !strcmp(sub, "activate") || !strcmp(sub, "pause"))
		return node_update(cli, sub, argc - 1, argv + 1);
	return cli_usage("node", "unknown subcommand %s", sub);
}

int cmd_version(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	if (argc > 1)
		return cli_usage("version", "unexpected argument %s", argv[1]);
	printf("orch %s\n", ORCH_VERSION);
	return EXIT_OK;
}
