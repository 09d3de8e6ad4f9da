/* orch debug: developer tools. write-bench drives replicated writes (kv.set) through the
 * local node — the same path as every orch write: Unix socket, forwarding to the leader,
 * raft commit, apply — and prints throughput and latency percentiles. hollow runs many
 * hollow nodes in this process for scale benchmarks (node/hollow.h). */
#include "cli/cli.h"
#include "agent/nettag.h"
#include "secret/secfs.h"
#include "util/layout.h"
#include "image/rootfs.h"
#include "net/ipam.h"
#include "node/hollow.h"
#include "node/identity.h"
#include "registry/registry.h"
#include "net/conn.h"
#include "spec/units.h"
#include <arpa/inet.h>
#include <errno.h>
#include "runtime/cgroup_stats.h"
#include "runtime/net.h"
#include "runtime/runc.h"
#include "runtime/runproc.h"
#include <sys/wait.h>
#include "util/err.h"
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include "util/mem.h"
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int collect_id(const struct rt_info *ci, void *arg)
{
	struct cl { char ids[256][128]; size_t n; } *l = arg;
	if (l->n < 256)
		snprintf(l->ids[l->n++], sizeof l->ids[0], "%s", ci->id);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int write_bench(struct cli *cli, int argc, char **argv)
{
	long count = 2000, inflight = 1;
	int vsize = 100;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--inflight") && i + 1 < argc)
			inflight = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--value-size") && i + 1 < argc)
			vsize = atoi(argv[++i]);
		else
			return cli_usage("debug", "write-bench: unknown argument %s", argv[i]);
	}
	if (count <= 0 || inflight <= 0 || inflight > 4096 || vsize < 1 || vsize > 65536)
		return cli_usage("debug", "write-bench: bad --count, --inflight or --value-size");
	char err[ERR_LEN];
	struct client c;
	if (client_open(&c, &cli->target, 10000, err))
		return fprintf(stderr, "orch: %s\n", err), EXIT_NODE;
	char *val = xmalloc((size_t)vsize + 1);
	memset(val, 'x', (size_t)vsize);
	val[vsize] = 0;
	uint64_t *lat = xcalloc((size_t)count, sizeof *lat);
	uint64_t *sent_at = xcalloc((size_t)count + 1, sizeof *sent_at);
	long sent = 0, done = 0, failed = 0;
	uint64_t t0 = now_us();
	while (done < count) {
		while (sent < count && sent - done < inflight) {
			struct mpw w;
			mpw_init(&w);
			char key[64];
			snprintf(key, sizeof key, "bench/%ld", sent % 1000);
			struct req_kv_set q = {.key = key, .value = val};
			proto_encode(&w, OP_KV_SET, (uint64_t)sent + 1, &q);
			sent_at[sent + 1] = now_us();
			if (client_send(&c, &w, err)) {
				mpw_free(&w);
				return cli_fail(E_IO, "%s", err);
			}
			mpw_free(&w);
			sent++;
		}
		struct mpr r;
		if (client_read(&c, &r, 30000, err))
			return cli_fail(E_IO, "%s", err);
		uint64_t id = 0;
		int64_t rc = 0;
		mp_get_u64(r.root, "id", &id);
		mp_get_i64(r.root, "rc", &rc);
		mpr_free(&r);
		if (id == 0 || id > (uint64_t)count)
			continue;
		if (rc)
			failed++;
		lat[done++] = now_us() - sent_at[id];
	}
	uint64_t el = now_us() - t0;
	qsort(lat, (size_t)count, sizeof *lat, cmp_u64);
	printf("writes=%ld inflight=%ld failed=%ld seconds=%.3f ops_per_sec=%.0f p50_us=%llu p99_us=%llu max_us=%llu\n", count,
	       inflight, failed, (double)el / 1e6, (double)count * 1e6 / (double)el,
	       (unsigned long long)lat[count / 2], (unsigned long long)lat[count * 99 / 100], (unsigned long long)lat[count - 1]);
	client_close(&c);
	free(val);
	free(lat);
	free(sent_at);
	return failed ? EXIT_FAIL : EXIT_OK;
}

/* Removes everything a node left on this machine: containers (killed and deleted), task
 * root filesystems, cgroups, network namespaces, the bridge and the nft table. For
 * tests and the demo, after the node process is gone. */
static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* A killed node that its parent has not reaped yet is gone for our purposes. */
static bool zombie(int pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	if (!rp || rp[1] == 0)
		return true;
	if (rp[2] != 'Z' && rp[2] != 'X')
		return false;
	/* a multithreaded process's leader is a zombie while its other threads still exit
	 * (with its files open): gone only when no thread is left */
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	int threads = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_name[0] != '.')
			threads++;
	if (d)
		closedir(d);
	return threads <= 1;
}

static int cleanup(struct cli *cli)
{
	char err[ERR_LEN], path[700];
	struct identity id;
	int problems = 0;
	if (identity_load(cli->data_dir, &id, err) && !strstr(err, "no identity"))
		fprintf(stderr, "orch: %s\n", err);
	layout_path(path, sizeof path, cli->data_dir, LAYOUT_PID);
	FILE *pf = fopen(path, "r");
	int pid = 0;
	if (pf) {
		if (fscanf(pf, "%d", &pid) == 1 && pid > 0 && kill(pid, 0) == 0 && !zombie(pid)) {
			fclose(pf);
			return cli_fail(E_BUSY, "the node is still running (pid %d): stop it first", pid);
		}
		fclose(pf);
	}
	char state[700];
	layout_path(state, sizeof state, cli->data_dir, LAYOUT_RUNTIME_STATE);
	/* the runtime the node used (recorded by its agent) */
	char runtime[16] = "runc", rtp[700];
	layout_path(rtp, sizeof rtp, cli->data_dir, LAYOUT_RUNTIME_NAME);
	FILE *rf = fopen(rtp, "r");
	if (rf) {
		if (fscanf(rf, "%15s", runtime) != 1 || (strcmp(runtime, "runc") && strcmp(runtime, "crun")))
			snprintf(runtime, sizeof runtime, "runc");
		fclose(rf);
	}
	if (getenv("ORCH_RUNTIME") && *getenv("ORCH_RUNTIME"))
		snprintf(runtime, sizeof runtime, "%s", getenv("ORCH_RUNTIME"));
	struct rt rt = {.runtime = runtime, .state_dir = state};
	struct cl { char ids[256][128]; size_t n; } *l = xcalloc(1, sizeof *l);
	rt_list(&rt, collect_id, l, err);
	for (size_t i = 0; i < l->n; i++) {
		rt_kill(&rt, l->ids[i], SIGKILL, true, err);
		if (rt_delete(&rt, l->ids[i], true, err)) {
			fprintf(stderr, "orch: delete container %s: %s\n", l->ids[i], err);
			problems++;
		}
		const char *dash = strchr(l->ids[i], '-');
		if (dash) {
			char cg[128];
			snprintf(cg, sizeof cg, "/orch/%016llx/%s", (unsigned long long)id.id, dash + 1);
			cgroup_remove(cg, err);
		}
	}
	printf("containers removed: %zu\n", l->n);
	free(l);
	/* task root filesystems */
	layout_path(path, sizeof path, cli->data_dir, LAYOUT_TASKS);
	DIR *dir = opendir(path);
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		char td[1000];
		snprintf(td, sizeof td, "%s/%s", path, de->d_name);
		/* killed containers may still be exiting: a busy mount gets a few more tries */
		int rc = rootfs_unmount(td, err);
		for (int tries = 0; rc && tries < 20; tries++) {
			struct timespec ts = {0, 100 * 1000000};
			nanosleep(&ts, NULL);
			rc = rootfs_unmount(td, err);
		}
		if (rc) {
			fprintf(stderr, "orch: %s\n", err);
			problems++;
		}
		secfs_teardown(td);
		char cg[128];
		snprintf(cg, sizeof cg, "/orch/%016llx/%s", (unsigned long long)id.id, de->d_name);
		cgroup_remove(cg, err);
	}
	if (dir)
		closedir(dir);
	char cg[128];
	snprintf(cg, sizeof cg, "/orch/%016llx", (unsigned long long)id.id);
	cgroup_remove(cg, err);
	/* network */
	layout_path(path, sizeof path, cli->data_dir, LAYOUT_NET_TAG);
	FILE *f = fopen(path, "r");
	char tag[16], subnet[32];
	if (f && fscanf(f, "%15s %31s", tag, subnet) == 2) {
		struct net_node nn = {.tag = tag, .subnet = subnet};
		if (net_node_teardown(&nn, err)) {
			fprintf(stderr, "orch: network: %s\n", err);
			problems++;
		} else
			printf("network %s (%s) removed\n", tag, subnet);
		nettag_release(tag, cli->data_dir);
	}
	if (f)
		fclose(f);
	/* the cluster's service addresses on lo (net/ipam.h) */
	if (id.id) {
		unsigned cb = ipam_cluster_byte(id.cluster_id);
		struct buf out = {0};
		int st = 0;
		struct runproc rp = {.argv = (const char *const[]){"ip", "-o", "-4", "addr", "show", "dev", "lo", NULL},
				     .out_fd = -1, .out = &out, .timeout_ms = 5000};
		unsigned removed = 0;
		if (!runproc_run(&rp, &st, err)) {
			buf_append(&out, "", 1);
			for (char *line = (char *)out.data, *nl; line && *line; line = nl) {
				nl = strchr(line, '\n');
				if (nl)
					*nl++ = 0;
				unsigned a, b, c, dd;
				char *inet = strstr(line, "inet ");
				if (!inet || sscanf(inet + 5, "%u.%u.%u.%u/32", &a, &b, &c, &dd) != 4 || !ipam_is_service_vip(cb, a, b, c, dd))
					continue;
				char cidr[24];
				snprintf(cidr, sizeof cidr, "%u.%u.%u.%u/32", a, b, c, dd);
				struct runproc del = {.argv = (const char *const[]){"ip", "addr", "del", cidr, "dev", "lo", NULL},
						      .out_fd = -1, .timeout_ms = 5000};
				if (!runproc_run(&del, &st, err) && WIFEXITED(st) && WEXITSTATUS(st) == 0)
					removed++;
			}
		}
		buf_free(&out);
		if (removed)
			printf("service addresses removed: %u\n", removed);
	}
	(void)rm_cb;
	return problems ? EXIT_FAIL : EXIT_OK;
}

/* Parses a number in [lo, hi]; false when it is not one. */
static bool uint_arg(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* orch debug hollow: N hollow nodes in this process (node/hollow.h). */
static int hollow(struct cli *cli, int argc, char **argv)
{
	struct hollow_opts o = {
		.data_dir = cli->data_dir,
		.name_prefix = "hollow",
		.port = 7420,
		.run_delay_ms = 500,
		.parallel = 16,
		.cpus_milli = 4000,
		.memory = 8ull << 30,
	};
	const char *token = NULL, *base = "127.0.10.1";
	unsigned long v;
	char err[ERR_LEN];
	struct sockaddr_in sa;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-')
			return cli_usage("debug", "hollow: unexpected argument %s", a);
		if (!val)
			return cli_usage("debug", "hollow: %s needs a value", a);
		i++;
		if (!strcmp(a, "--join")) {
			if (parse_ipport(val, &sa, err))
				return cli_usage("debug", "hollow: --join %s: %s", val, err);
			o.join = val;
		} else if (!strcmp(a, "--token"))
			token = val;
		else if (!strcmp(a, "--nodes")) {
			if (!uint_arg(val, 1, 10000, &v))
				return cli_usage("debug", "hollow: --nodes %s: expected 1 to 10000", val);
			o.nodes = (unsigned)v;
		} else if (!strcmp(a, "--listen-base"))
			base = val;
		else if (!strcmp(a, "--port")) {
			if (!uint_arg(val, 1, 65535, &v))
				return cli_usage("debug", "hollow: --port %s: expected 1 to 65535", val);
			o.port = (unsigned)v;
		} else if (!strcmp(a, "--run-delay")) {
			if (!uint_arg(val, 0, 3600000, &v))
				return cli_usage("debug", "hollow: --run-delay %s: expected milliseconds (0 to 3600000)", val);
			o.run_delay_ms = (unsigned)v;
		} else if (!strcmp(a, "--name-prefix")) {
			size_t n = strlen(val);
			bool ok = n >= 1 && n <= 40;
			for (const char *p = val; *p && ok; p++)
				ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
			if (!ok)
				return cli_usage("debug", "hollow: --name-prefix %s: 1 to 40 letters, digits, '-', '_' or '.'", val);
			o.name_prefix = val;
		} else if (!strcmp(a, "--cpus")) {
			if (parse_cpus_milli(val, &o.cpus_milli) || !o.cpus_milli)
				return cli_usage("debug", "hollow: --cpus %s: expected a positive number of CPUs like 4 or 0.5", val);
		} else if (!strcmp(a, "--memory")) {
			if (parse_bytes(val, &o.memory) || !o.memory)
				return cli_usage("debug", "hollow: --memory %s: expected a size like 8g or 512m", val);
		} else if (!strcmp(a, "--label")) {
			if (!strchr(val, '=') || val[0] == '=' || o.nlabels == 32)
				return cli_usage("debug", "hollow: --label %s: expected KEY=VALUE (at most 32)", val);
			o.labels[o.nlabels++] = val;
		} else
			return cli_usage("debug", "hollow: unknown option %s", a);
	}
	if (!token)
		token = getenv("ORCH_TOKEN");
	if (!o.join || !token || !o.nodes)
		return cli_usage("debug", "hollow: --join ADDR, the token (ORCH_TOKEN or --token) and --nodes N are required");
	if (token_parse(token, &o.tok, err))
		return cli_fail(E_INVAL, "hollow: %s", err);
	struct in_addr ia;
	if (inet_pton(AF_INET, base, &ia) != 1)
		return cli_usage("debug", "hollow: --listen-base %s: expected an IPv4 address like 127.0.10.1", base);
	o.listen_base = ntohl(ia.s_addr);
	if ((uint64_t)o.listen_base + o.nodes - 1 > 0xffffffffull || (o.listen_base >> 24) != ((o.listen_base + o.nodes - 1) >> 24))
		return cli_usage("debug", "hollow: --listen-base %s: %u addresses from there leave its /8", base, o.nodes);
	int rc = hollow_run(&o, err);
	if (rc)
		return cli_fail(rc, "hollow: %s", err);
	return EXIT_OK;
}

/* ==== pull: registry_pull into a blob store, for tests and benchmarks ==== */

struct pull_creds {
	const char *user;
	char pass[512];
};

/* The one user given applies to whatever registry the reference names. */
static int pull_creds_fn(void *ctx, const char *host, char *user, size_t usize, char *pass, size_t psize, char *err)
{
	const struct pull_creds *pc = ctx;
	if (!pc->user)
		return E_NOTFOUND;
	snprintf(user, usize, "%s", pc->user);
	snprintf(pass, psize, "%s", pc->pass);
	return 0;
}

/* A terminal gets one line rewritten in place; --progress prints a line per change of
 * phase or layer count (for tests), never one per read. */
struct pull_view {
	bool tty, lines;
	const char *phase;
	unsigned layers;
};

static void pull_progress(void *ctx, const struct reg_progress *p)
{
	struct pull_view *v = ctx;
	if (v->tty)
		fprintf(stderr, "\r%-11s %u/%u layers, %llu/%llu bytes", p->phase, p->layers_done, p->layers_total,
			(unsigned long long)p->bytes_done, (unsigned long long)p->bytes_total);
	if (v->lines && (p->phase != v->phase || p->layers_done != v->layers))
		printf("progress\t%s %u/%u layers %llu/%llu bytes\n", p->phase, p->layers_done, p->layers_total,
		       (unsigned long long)p->bytes_done, (unsigned long long)p->bytes_total);
	v->phase = p->phase;
	v->layers = p->layers_done;
}

static void print_strv(const char *key, char **v)
{
	if (!v)
		return;
	printf("%s\t", key);
	for (size_t i = 0; v[i]; i++)
		printf("%s%s", i ? " " : "", v[i]);
	printf("\n");
}

static int pull(int argc, char **argv)
{
	struct reg_config cfg = {0};
	struct pull_creds pc = {0};
	const char *dir = NULL, *refs = NULL;
	bool pw_stdin = false, resolve = false;
	struct pull_view view = {0};
	unsigned long v;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-') {
			if (refs)
				return cli_usage("debug", "pull: one image reference only");
			refs = a;
			continue;
		}
		if (!strcmp(a, "--password-stdin")) {
			pw_stdin = true;
			continue;
		}
		if (!strcmp(a, "--progress")) {
			view.lines = true;
			continue;
		}
		if (!strcmp(a, "--resolve")) {
			resolve = true;
			continue;
		}
		if (!val)
			return cli_usage("debug", "pull: %s needs a value", a);
		i++;
		if (!strcmp(a, "--insecure-registry")) {
			if (cfg.ninsecure == REG_HOSTS_MAX)
				return cli_usage("debug", "pull: at most %d --insecure-registry", REG_HOSTS_MAX);
			cfg.insecure[cfg.ninsecure++] = (char *)(uintptr_t)val;
		} else if (!strcmp(a, "--registry-mirror"))
			cfg.mirror = (char *)(uintptr_t)val;
		else if (!strcmp(a, "--ca-file"))
			cfg.ca_file = (char *)(uintptr_t)val;
		else if (!strcmp(a, "--ca-dir"))
			cfg.ca_dir = (char *)(uintptr_t)val;
		else if (!strcmp(a, "--user"))
			pc.user = val;
		else if (!strcmp(a, "--platform"))
			cfg.platform = val;
		else if (!strcmp(a, "--dir"))
			dir = val;
		else if (!strcmp(a, "--parallel")) {
			if (!uint_arg(val, 1, 16, &v))
				return cli_usage("debug", "pull: --parallel %s: expected 1 to 16", val);
			cfg.parallel = (unsigned)v;
		} else if (!strcmp(a, "--attempts")) {
			if (!uint_arg(val, 1, 20, &v))
				return cli_usage("debug", "pull: --attempts %s: expected 1 to 20", val);
			cfg.attempts = (unsigned)v;
		} else
			return cli_usage("debug", "pull: unknown option %s", a);
	}
	if ((!dir && !resolve) || !refs)
		return cli_usage("debug", "pull: --dir DIR (or --resolve) and an image reference are required");
	if (pw_stdin != (pc.user != NULL))
		return cli_usage("debug", "pull: --user and --password-stdin go together");
	if (pw_stdin) {
		if (!fgets(pc.pass, sizeof pc.pass, stdin))
			return cli_fail(E_INVAL, "pull: no password on standard input");
		pc.pass[strcspn(pc.pass, "\r\n")] = 0;
		cfg.creds = pull_creds_fn;
		cfg.creds_ctx = &pc;
	}
	char err[ERR_LEN];
	struct image_ref ref;
	if (image_ref_parse(refs, &ref, err))
		return cli_usage("debug", "pull: %s", err);
	if (resolve) {
		char dig[DIGEST_LEN], mt[128];
		int rc = registry_resolve(&cfg, &ref, dig, mt, sizeof mt, err);
		explicit_bzero(pc.pass, sizeof pc.pass);
		if (rc)
			return cli_fail(rc, "%s", err);
		printf("digest\t%s\nmedia_type\t%s\n", dig, mt);
		return EXIT_OK;
	}
	struct blobstore bs;
	if (blob_init(&bs, dir, err))
		return cli_fail(E_IO, "pull: %s", err);
	view.tty = isatty(2);
	struct image_info im;
	uint64_t t0 = now_us();
	int rc = registry_pull(&cfg, &bs, &ref, &im, pull_progress, &view, err);
	double secs = (double)(now_us() - t0) / 1e6;
	if (view.tty)
		fprintf(stderr, "\n");
	explicit_bzero(pc.pass, sizeof pc.pass);
	blob_fini(&bs);
	if (rc)
		return cli_fail(rc, "%s", err);
	printf("name\t%s\ndigest\t%s\nconfig\t%s\nlayers\t%zu\n", im.name, im.digest, im.config_digest, im.nlayers);
	for (size_t i = 0; i < im.nlayers; i++)
		printf("layer\t%s\n", im.layers[i]);
	print_strv("entrypoint", im.entrypoint);
	print_strv("cmd", im.cmd);
	print_strv("env", im.env);
	printf("bytes\t%llu\nseconds\t%.3f\n", (unsigned long long)im.size, secs);
	image_info_free(&im);
	return EXIT_OK;
}

int cmd_debug(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "cleanup"))
		return cleanup(cli);
	if (argc < 2)
		return cli_usage("debug", "missing subcommand (write-bench, cleanup, hollow, pull)");
	if (!strcmp(argv[1], "write-bench"))
		return write_bench(cli, argc - 1, argv + 1);
	if (!strcmp(argv[1], "hollow"))
		return hollow(cli, argc - 1, argv + 1);
	if (!strcmp(argv[1], "pull"))
		return pull(argc - 1, argv + 1);
	return cli_usage("debug", "unknown subcommand %s", argv[1]);
}
