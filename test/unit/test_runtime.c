/* Runtime layer tests. The JSON/bundle cases are pure; the rest drive real runc/crun
 * containers on a busybox rootfs and need root: they fail (not skip) without it.
 * Container work runs in a child (the subreaper) so the parent can always clean up:
 * runtime state, cgroups, netns, veths and nft tables, even after a failed CHECK. */
#include "unit.h"
#include "runtime/bundle.h"
#include "runtime/cgroup_stats.h"
#include "runtime/net.h"
#include "runtime/runc.h"
#include "runtime/rtjson.h"
#include "runtime/runproc.h"
#include "util/err.h"
#include "util/mem.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A buffer holds no terminating NUL: search within its length. */
static bool buf_has(const struct buf *b, const char *s)
{
	return memmem(b->data, b->len, s, strlen(s)) != NULL;
}

/* ---- pure: JSON and config.json ---- */

UNIT(runtime_json_write_read)
{
	struct buf b = {0};
	struct rtjson_w w;
	rtjson_init(&w, &b);
	rtjson_obj(&w);
	rtjson_kstr(&w, "s", "a\"b\\c\nd\x01");
	rtjson_ku64(&w, "n", 18446744073709551615ull);
	rtjson_ki64(&w, "neg", -5);
	rtjson_key(&w, "arr");
	rtjson_strv(&w, (const char *const[]){"x", "", "y", NULL});
	rtjson_key(&w, "o");
	rtjson_obj(&w);
	rtjson_kbool(&w, "t", true);
	rtjson_obj_end(&w);
	rtjson_obj_end(&w);
	buf_append(&b, "", 1);
	CHECK_STR((char *)b.data, "{\"s\":\"a\\\"b\\\\c\\nd\\u0001\",\"n\":18446744073709551615,\"neg\":-5,"
				  "\"arr\":[\"x\",\"\",\"y\"],\"o\":{\"t\":true}}");

	struct rtjson_v v, a, e;
	char s[64];
	int64_t n;
	CHECK_EQ_INT(rtjson_parse((char *)b.data, b.len - 1, &v), 0);
	CHECK_EQ_INT(rtjson_get_str(&v, "s", s, sizeof s), 0);
	CHECK_STR(s, "a\"b\\c\nd\x01");
	CHECK_EQ_INT(rtjson_get_int(&v, "neg", &n), 0);
	CHECK_EQ_INT(n, -5);
	CHECK_EQ_INT(rtjson_get(&v, "arr", &a), 0);
	size_t pos = 0;
	int count = 0;
	while (rtjson_next(&a, &pos, &e) == 1)
		count++;
	CHECK_EQ_INT(count, 3);
	CHECK(rtjson_get(&v, "missing", &e) < 0);
	buf_free(&b);

	/* Untrusted text: errors, never crashes or reads past the end. */
	const char *bad[] = {"", "{", "{\"a\"", "{\"a\":}", "[1,", "\"abc", "{\"a\":1,}x", "nul", "[[[[", "{\"a\":\"\\u12\"}"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int r = rtjson_parse(bad[i], strlen(bad[i]), &v);
		if (r == 0) /* only the \u case parses; decoding it must fail */
			CHECK(rtjson_get_str(&v, "a", s, sizeof s) < 0);
	}
	CHECK_EQ_INT(rtjson_parse("null", 4, &v), 0);
	CHECK_EQ_INT(rtjson_type(&v), 'z');
	const char *state = "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"pid\":4242,\"status\":\"running\",\"bundle\":\"/b\",\"annotations\":{\"x\":[1,{\"y\":null}]}}";
	CHECK_EQ_INT(rtjson_parse(state, strlen(state), &v), 0);
	CHECK_EQ_INT(rtjson_get_int(&v, "pid", &n), 0);
	CHECK_EQ_INT(n, 4242);
	CHECK_EQ_INT(rtjson_get_str(&v, "bundle", s, sizeof s), 0);
	CHECK_STR(s, "/b");
}

static char *test_args[] = {"/bin/sh", "-c", "echo \"hi\"", NULL};

static struct run_spec base_spec(void)
{
	struct run_spec rs = {
		.id = "orch-n1-t1", .bundle_dir = "/tmp/b", .rootfs = "/tmp/b/rootfs", .args = test_args,
		.cgroups_path = "/orch/n1/t1", .mem_limit = 16 << 20, .cpu_milli_limit = 500,
		.cpu_milli_shares = 250, .pids_limit = 64, .hostname = "web-1",
		.netns_path = "/var/run/netns/orch-n1-t1", .resolv_conf = "/tmp/resolv.conf",
	};
	return rs;
}

UNIT(runtime_bundle_config)
{
	struct run_spec rs = base_spec();
	struct buf b = {0};
	char err[ERR_LEN], s[256];
	int64_t n;
	CHECK_EQ_INT(bundle_json(&rs, &b, err), 0);
	struct rtjson_v v, x, y, z, e;
	CHECK_EQ_INT(rtjson_parse((char *)b.data, b.len, &v), 0);
	CHECK_EQ_INT(rtjson_get_str(&v, "ociVersion", s, sizeof s), 0);
	CHECK_STR(s, "1.0.2");
	CHECK_EQ_INT(rtjson_get(&v, "process", &x), 0);
	CHECK_EQ_INT(rtjson_get(&x, "terminal", &y), 0);
	CHECK_EQ_INT(rtjson_type(&y), 'f');
	CHECK_EQ_INT(rtjson_get(&x, "args", &y), 0);
	size_t pos = 0;
	CHECK_EQ_INT(rtjson_next(&y, &pos, &e), 1);
	CHECK_EQ_INT(rtjson_next(&y, &pos, &e), 1);
	CHECK_EQ_INT(rtjson_next(&y, &pos, &e), 1);
	CHECK_EQ_INT(rtjson_string(&e, s, sizeof s), 0);
	CHECK_STR(s, "echo \"hi\"");
	CHECK_EQ_INT(rtjson_get_str(&x, "cwd", s, sizeof s), 0);
	CHECK_STR(s, "/");
	CHECK_EQ_INT(rtjson_get(&x, "noNewPrivileges", &y), 0);
	CHECK_EQ_INT(rtjson_type(&y), 't');
	CHECK_EQ_INT(rtjson_get(&v, "linux", &x), 0);
	CHECK_EQ_INT(rtjson_get_str(&x, "cgroupsPath", s, sizeof s), 0);
	CHECK_STR(s, "/orch/n1/t1");
	CHECK_EQ_INT(rtjson_get(&x, "resources", &y), 0);
	CHECK_EQ_INT(rtjson_get(&y, "memory", &z), 0);
	CHECK_EQ_INT(rtjson_get_int(&z, "limit", &n), 0);
	CHECK_EQ_INT(n, 16 << 20);
	CHECK_EQ_INT(rtjson_get(&y, "cpu", &z), 0);
	CHECK_EQ_INT(rtjson_get_int(&z, "quota", &n), 0);
	CHECK_EQ_INT(n, 50000);
	CHECK_EQ_INT(rtjson_get_int(&z, "shares", &n), 0);
	CHECK_EQ_INT(n, 256);
	CHECK_EQ_INT(rtjson_get(&y, "pids", &z), 0);
	CHECK_EQ_INT(rtjson_get_int(&z, "limit", &n), 0);
	CHECK_EQ_INT(n, 64);
	CHECK(buf_has(&b, "{\"type\":\"network\",\"path\":\"/var/run/netns/orch-n1-t1\"}"));
	CHECK(buf_has(&b, "\"destination\":\"/etc/resolv.conf\""));
	CHECK(!buf_has(&b, "/etc/hosts"));
	CHECK(buf_has(&b, "\"hostname\":\"web-1\""));

	/* host networking: no network namespace at all */
	buf_free(&b);
	rs.netns_path = BUNDLE_NETNS_HOST;
	CHECK_EQ_INT(bundle_json(&rs, &b, err), 0);
	CHECK(!buf_has(&b, "\"network\""));
	buf_free(&b);
	rs.netns_path = NULL; /* fresh empty netns */
	CHECK_EQ_INT(bundle_json(&rs, &b, err), 0);
	CHECK(buf_has(&b, "{\"type\":\"network\"}"));
	buf_free(&b);

	rs.rootfs = "relative/rootfs";
	CHECK_EQ_INT(bundle_json(&rs, &b, err), E_INVAL);
	CHECK(strstr(err, "rootfs"));
	rs = base_spec();
	rs.cgroups_path = NULL;
	CHECK_EQ_INT(bundle_json(&rs, &b, err), E_INVAL);
	buf_free(&b);
}

UNIT(runtime_ids_and_first_line)
{
	CHECK(rt_id_valid("orch-n1-t1.2_x"));
	CHECK(!rt_id_valid(""));
	CHECK(!rt_id_valid("-rf"));
	CHECK(!rt_id_valid("a/b"));
	CHECK(!rt_id_valid("a b"));
	char out[32];
	runproc_first_line("\n  \n  first line  \nsecond", 26, out, sizeof out);
	CHECK_STR(out, "first line");
	CHECK_EQ_INT(rt_status_parse("running"), RT_RUNNING);
	CHECK_EQ_INT(rt_status_parse("bogus"), RT_UNKNOWN);
}

UNIT(runtime_runproc_io_timeout)
{
	char err[ERR_LEN];
	struct buf out = {0}, eo = {0};
	int st;
	struct runproc rp = {.argv = (const char *const[]){"sh", "-c", "tr a-z A-Z; echo oops >&2; exit 4", NULL},
			     .input = "hello", .input_len = 5, .out_fd = -1, .out = &out, .errout = &eo};
	CHECK_EQ_INT(runproc_run(&rp, &st, err), 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 4);
	buf_append(&out, "", 1);
	buf_append(&eo, "", 1);
	CHECK_STR((char *)out.data, "HELLO");
	CHECK_STR((char *)eo.data, "oops\n");
	uint64_t t0 = now_ms();
	struct runproc slow = {.argv = (const char *const[]){"sleep", "10", NULL}, .out_fd = -1, .timeout_ms = 200};
	CHECK_EQ_INT(runproc_run(&slow, &st, err), E_TIMEOUT);
	CHECK(now_ms() - t0 < 2000);
	struct runproc none = {.argv = (const char *const[]){"no-such-program-orch", NULL}, .out_fd = -1};
	CHECK_EQ_INT(runproc_run(&none, &st, err), E_NOTFOUND);
	buf_free(&out);
	buf_free(&eo);
}

/* Concurrent calls from worker threads while a subreaper reaps on another thread: each
 * call gets its own child's status; an orphan's exit is kept until claimed by its pid. */
static volatile int reaper_stop;
static void *reaper_main(void *arg)
{
	while (!__atomic_load_n(&reaper_stop, __ATOMIC_SEQ_CST)) {
		runproc_reap();
		usleep(1000);
	}
	return NULL;
}
static void *worker_main(void *arg)
{
	long id = (long)arg, bad = 0;
	for (int i = 0; i < 15; i++) {
		char cmd[64], err[ERR_LEN], want[32];
		int code = (int)(id * 16 + i) % 120, st = 0;
		snprintf(cmd, sizeof cmd, "echo w%ld-%d; exit %d", id, i, code);
		snprintf(want, sizeof want, "w%ld-%d\n", id, i);
		struct buf out = {0};
		struct runproc rp = {.argv = (const char *const[]){"sh", "-c", cmd, NULL}, .out_fd = -1, .out = &out,
				     .timeout_ms = 10000};
		int rc = runproc_run(&rp, &st, err);
		buf_append(&out, "", 1);
		if (rc || !WIFEXITED(st) || WEXITSTATUS(st) != code || strcmp((char *)out.data, want)) {
			fprintf(stderr, "  worker %ld run %d: rc %d status %d out %s %s\n", id, i, rc, st, (char *)out.data, err);
			bad++;
		}
		buf_free(&out);
	}
	return (void *)bad;
}

UNIT(runtime_runproc_threads_with_reaper)
{
	CHECK_EQ_INT(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	pthread_t reaper, workers[4];
	CHECK_EQ_INT(pthread_create(&reaper, NULL, reaper_main, NULL), 0);
	for (long i = 0; i < 4; i++)
		CHECK_EQ_INT(pthread_create(&workers[i], NULL, worker_main, (void *)i), 0);
	char err[ERR_LEN];
	int st;
	struct buf pid_out = {0};
	struct runproc orphan = {.argv = (const char *const[]){"sh", "-c", "sleep 0.2 & echo $!; exit 0", NULL}, .out_fd = -1,
				 .out = &pid_out};
	CHECK_EQ_INT(runproc_run(&orphan, &st, err), 0);
	buf_append(&pid_out, "", 1);
	int orphan_pid = atoi((char *)pid_out.data), orphan_st = -1;
	buf_free(&pid_out);
	CHECK(orphan_pid > 1);
	long bad = 0;
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(workers[i], &r);
		bad += (long)r;
	}
	uint64_t end = now_ms() + 3000;
	bool claimed = false;
	while (!(claimed = runproc_claim(orphan_pid, &orphan_st)) && now_ms() < end)
		usleep(5000);
	__atomic_store_n(&reaper_stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(reaper, NULL);
	CHECK_EQ_INT(bad, 0);
	CHECK(claimed); /* the backgrounded sleep, re-parented to us, reaped by the other thread */
	CHECK(WIFEXITED(orphan_st) && WEXITSTATUS(orphan_st) == 0);
	CHECK(!runproc_claim(orphan_pid, &orphan_st)); /* claimed once */
}

/* ---- containers (root, runc) ---- */

struct fx {
	char dir[64];       /* temp dir: rootfs, bundles, logs, runtime state */
	char state[96];     /* runc --root */
	char cg_parent[64]; /* cgroup parent of every container here */
	char rootfs[96];
	struct rt rt;
	char tag[8]; /* network tag, for the network test */
};

static void require_root(const char *runtime)
{
	if (geteuid() != 0)
		fprintf(stderr, "  runtime tests need root (they create containers, cgroups, netns)\n");
	CHECK(geteuid() == 0);
	char err[ERR_LEN] = "";
	int st = 0;
	const char *flag = strcmp(runtime, "ip") ? "--version" : "-V";
	struct runproc rp = {.argv = (const char *const[]){runtime, flag, NULL}, .out_fd = -1};
	int rc = runproc_run(&rp, &st, err);
	if (rc || !WIFEXITED(st) || WEXITSTATUS(st))
		fprintf(stderr, "  %s is required for the runtime tests (install it): %s\n", runtime, err);
	CHECK(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void sh(const char *cmd)
{
	int st = 0;
	char err[ERR_LEN];
	struct runproc rp = {.argv = (const char *const[]){"sh", "-c", cmd, NULL}, .out_fd = 2};
	runproc_run(&rp, &st, err);
}

static void make_rootfs(const char *root)
{
	static const char *const applets[] = {"sh", "sleep", "cat", "echo", "head", "tr", "httpd", "ps", "nc",
					      "ls", "wget", "mkdir", "dd", "true", "unshare",
					      "mount", "grep", "wc", NULL};
	char *cmd = xasprintf("mkdir -p %s/bin %s/proc %s/dev %s/sys %s/etc %s/tmp %s/www && cp /bin/busybox %s/bin/",
			      root, root, root, root, root, root, root, root);
	sh(cmd);
	free(cmd);
	for (const char *const *a = applets; *a; a++) {
		char *l = xasprintf("%s/bin/%s", root, *a);
		CHECK(symlink("busybox", l) == 0 || errno == EEXIST);
		free(l);
	}
	char *bb = xasprintf("%s/bin/busybox", root);
	CHECK(access(bb, X_OK) == 0);
	free(bb);
}

static void fx_init(struct fx *f, const char *runtime)
{
	require_root(runtime);
	memset(f, 0, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/orch-rt-XXXXXX");
	CHECK(mkdtemp(f->dir));
	snprintf(f->state, sizeof f->state, "%s/state", f->dir);
	snprintf(f->rootfs, sizeof f->rootfs, "%s/rootfs", f->dir);
	snprintf(f->cg_parent, sizeof f->cg_parent, "/orch-test-%d", (int)getpid());
	f->rt.runtime = runtime;
	f->rt.state_dir = f->state;
	make_rootfs(f->rootfs);
}

static int delete_cb(const struct rt_info *ci, void *arg)
{
	char err[ERR_LEN];
	rt_delete(arg, ci->id, true, err);
	return 0;
}

/* Removes every cgroup under the fixture's parent in every hierarchy, then the parent. */
static void remove_cgroups(const char *parent)
{
	DIR *root = opendir(CGROUP_ROOT);
	struct dirent *h;
	while (root && (h = readdir(root))) {
		if (h->d_name[0] == '.')
			continue;
		char *p = xasprintf(CGROUP_ROOT "/%s%s", h->d_name, parent);
		DIR *d = opendir(p);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_type != DT_DIR || e->d_name[0] == '.')
				continue;
			char *sub = xasprintf("%s/%s", parent, e->d_name);
			char err[ERR_LEN];
			cgroup_remove(sub, err);
			free(sub);
		}
		if (d)
			closedir(d);
		rmdir(p);
		free(p);
	}
	if (root)
		closedir(root);
}

static void (*net_cleanup)(struct fx *f); /* set by the network test */

static void fx_cleanup(struct fx *f)
{
	char err[ERR_LEN];
	rt_list(&f->rt, delete_cb, &f->rt, err);
	remove_cgroups(f->cg_parent);
	if (net_cleanup)
		net_cleanup(f);
	char *cmd = xasprintf("rm -rf %s", f->dir);
	sh(cmd);
	free(cmd);
}

/* Runs body in a subreaper child with a deadline; always cleans up; then checks it passed. */
static void guarded(struct fx *f, void (*body)(struct fx *), int timeout_ms)
{
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		body(f);
		exit(0);
	}
	int st = 0;
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() > end) {
			fprintf(stderr, "  test body timed out after %d ms\n", timeout_ms);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		usleep(10000);
	}
	fx_cleanup(f);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static char *bundle_for(struct fx *f, const char *name)
{
	char *b = xasprintf("%s/b-%s", f->dir, name);
	return b;
}

static void (*rs_tweak)(struct run_spec *rs); /* set by tests that change the defaults */

/* Writes the bundle and creates+starts the container; returns its init pid. */
static int run_container(struct fx *f, const char *name, char **args, uint64_t mem_limit, const char *netns,
			 char **log_out)
{
	char err[ERR_LEN];
	char *bundle = bundle_for(f, name);
	char *cg = xasprintf("%s/%s", f->cg_parent, name);
	char *id = xasprintf("t%d-%s", (int)getpid(), name);
	*log_out = xasprintf("%s/%s.log", f->dir, name);
	struct run_spec rs = {.id = id, .bundle_dir = bundle, .rootfs = f->rootfs, .args = args,
			      .cgroups_path = cg, .mem_limit = mem_limit, .netns_path = netns, .hostname = name};
	if (rs_tweak)
		rs_tweak(&rs);
	int rc = bundle_write(&rs, err);
	if (rc)
		fprintf(stderr, "  bundle_write: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	int pid = 0;
	rc = rt_create(&f->rt, id, bundle, *log_out, &pid, err);
	if (rc)
		fprintf(stderr, "  rt_create: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK(pid > 1);
	enum rt_status st;
	int spid;
	CHECK_EQ_INT(rt_state(&f->rt, id, &st, &spid, err), 0);
	CHECK_EQ_INT(st, RT_CREATED);
	CHECK_EQ_INT(spid, pid);
	rc = rt_start(&f->rt, id, err);
	if (rc)
		fprintf(stderr, "  rt_start: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	free(bundle);
	free(cg);
	free(id);
	return pid;
}

static char *cid(const char *name)
{
	static char id[64];
	snprintf(id, sizeof id, "t%d-%s", (int)getpid(), name);
	return id;
}

/* Reaps like the agent does (runproc_reap as subreaper) until pid's status shows up. */
static int wait_status(int pid, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int status;
		runproc_reap();
		if (runproc_claim(pid, &status))
			return status;
		CHECK(now_ms() < end);
		usleep(5000);
	}
}

static char *slurp_file(const char *path)
{
	struct buf b = {0};
	char tmp[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n;
	while (fd >= 0 && (n = read(fd, tmp, sizeof tmp)) > 0)
		buf_append(&b, tmp, (size_t)n);
	if (fd >= 0)
		close(fd);
	buf_append(&b, "", 1);
	return (char *)b.data;
}

static void body_log_exit(struct fx *f)
{
	char err[ERR_LEN];
	char *args[] = {"sh", "-c", "echo hello-stdout; echo hello-stderr >&2; exit 7", NULL};
	char *log;
	int pid = run_container(f, "logexit", args, 0, NULL, &log);
	int st = wait_status(pid, 10000);
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WEXITSTATUS(st), 7);
	char *text = slurp_file(log);
	CHECK(strstr(text, "hello-stdout\n"));
	CHECK(strstr(text, "hello-stderr\n"));
	free(text);
	enum rt_status s;
	int spid;
	CHECK_EQ_INT(rt_state(&f->rt, cid("logexit"), &s, &spid, err), 0);
	CHECK_EQ_INT(s, RT_STOPPED);
	CHECK_EQ_INT(rt_delete(&f->rt, cid("logexit"), false, err), 0);
	CHECK_EQ_INT(rt_state(&f->rt, cid("logexit"), &s, &spid, err), E_NOTFOUND);
	CHECK_EQ_INT(rt_delete(&f->rt, cid("logexit"), false, err), E_NOTFOUND);
	/* the cgroup went with the container */
	struct cgroup_stats cs;
	char *cg = xasprintf("%s/logexit", f->cg_parent);
	CHECK_EQ_INT(cgroup_stats_read(cg, &cs, err), E_NOTFOUND);
	free(cg);
	/* a failing create reports the runtime's reason */
	char *bundle = bundle_for(f, "logexit");
	int pid2;
	CHECK_EQ_INT(rt_create(&f->rt, "bad-bundle", "/nonexistent-orch", NULL, &pid2, err), E_FAIL);
	CHECK(strlen(err) > 20);
	free(bundle);
	free(log);
}

UNIT(runtime_run_log_exit)
{
	struct fx f;
	fx_init(&f, "runc");
	guarded(&f, body_log_exit, 20000);
}

UNIT(runtime_crun_run_log_exit)
{
	struct fx f;
	fx_init(&f, "crun");
	guarded(&f, body_log_exit, 20000);
}

struct found {
	const char *id;
	int pid;
	enum rt_status status;
};

static int find_cb(const struct rt_info *ci, void *arg)
{
	struct found *fd = arg;
	if (!strcmp(ci->id, fd->id)) {
		fd->pid = ci->pid;
		fd->status = ci->status;
	}
	return 0;
}

static void body_stop_list(struct fx *f)
{
	char err[ERR_LEN];
	char *args[] = {"sh", "-c", "sleep 1000; true", NULL}; /* PID 1 sh ignores TERM */
	char *log;
	int pid = run_container(f, "stop", args, 0, NULL, &log);
	struct found fd = {.id = cid("stop")};
	CHECK_EQ_INT(rt_list(&f->rt, find_cb, &fd, err), 0);
	CHECK_EQ_INT(fd.pid, pid);
	CHECK_EQ_INT(fd.status, RT_RUNNING);
	/* usage counters of a live container */
	struct cgroup_stats cs;
	char *cg = xasprintf("%s/stop", f->cg_parent);
	CHECK_EQ_INT(cgroup_stats_read(cg, &cs, err), 0);
	CHECK(cs.mem_usage > 0);
	CHECK(cs.pids >= 2);
	CHECK(cs.cpu_ns > 0);
	uint64_t t0 = now_ms();
	int rc = rt_stop(&f->rt, cid("stop"), SIGTERM, 600, err);
	uint64_t took = now_ms() - t0;
	if (rc)
		fprintf(stderr, "  rt_stop: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK(took >= 600);        /* TERM was ignored: it waited the grace period */
	CHECK(took < 600 + 1500);  /* then KILL and delete were quick */
	int st = wait_status(pid, 2000);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	enum rt_status s;
	int spid;
	CHECK_EQ_INT(rt_state(&f->rt, cid("stop"), &s, &spid, err), E_NOTFOUND);
	CHECK_EQ_INT(rt_stop(&f->rt, cid("stop"), SIGTERM, 100, err), 0); /* already gone: fine */
	fd.pid = -1;
	CHECK_EQ_INT(rt_list(&f->rt, find_cb, &fd, err), 0);
	CHECK_EQ_INT(fd.pid, -1);
	free(cg);
	free(log);
}

UNIT(runtime_stop_grace_and_list)
{
	struct fx f;
	fx_init(&f, "runc");
	guarded(&f, body_stop_list, 20000);
}

static void body_oom(struct fx *f)
{
	char err[ERR_LEN];
	char *args[] = {"sh", "-c", "echo start; x=$(head -c 67108864 /dev/zero | tr '\\0' x); echo survived", NULL};
	char *log;
	int pid = run_container(f, "oom", args, 16 << 20, NULL, &log);
	int st = wait_status(pid, 15000);
	struct cgroup_stats cs;
	char *cg = xasprintf("%s/oom", f->cg_parent);
	CHECK_EQ_INT(cgroup_stats_read(cg, &cs, err), 0);
	CHECK_EQ_INT(cs.mem_limit, 16 << 20);
	CHECK(cs.oom_kills >= 1);
	char *text = slurp_file(log);
	CHECK(strstr(text, "start"));
	CHECK(!strstr(text, "survived"));
	/* The hog is a child of sh: either sh died of SIGKILL itself or saw its child die. */
	CHECK(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strstr(text, "survived")));
	free(text);
	CHECK_EQ_INT(rt_delete(&f->rt, cid("oom"), false, err), 0);
	free(cg);
	free(log);
}

UNIT(runtime_oom_kill_detected)
{
	struct fx f;
	fx_init(&f, "runc");
	guarded(&f, body_oom, 25000);
}

static void body_exec(struct fx *f)
{
	char err[ERR_LEN];
	char *args[] = {"sleep", "999", NULL};
	char *log;
	run_container(f, "exec", args, 0, NULL, &log);
	const char *id = cid("exec");
	struct buf out = {0};
	int code = -1;
	CHECK_EQ_INT(rt_exec(&f->rt, id, (const char *const[]){"sh", "-c", "echo in-container; exit 3", NULL}, 5000,
			     &code, &out, err), 0);
	CHECK_EQ_INT(code, 3);
	buf_append(&out, "", 1);
	CHECK_STR((char *)out.data, "in-container\n");
	buf_free(&out);

	uint64_t t0 = now_ms();
	int rc = rt_exec(&f->rt, id, (const char *const[]){"sleep", "100", NULL}, 500, &code, &out, err);
	CHECK_EQ_INT(rc, E_TIMEOUT);
	CHECK(now_ms() - t0 < 3000);
	buf_free(&out);
	/* a shell with a child: the child must not linger either */
	rc = rt_exec(&f->rt, id, (const char *const[]){"sh", "-c", "sleep 100; true", NULL}, 500, &code, &out, err);
	CHECK_EQ_INT(rc, E_TIMEOUT);
	buf_free(&out);
	usleep(100000);
	CHECK_EQ_INT(rt_exec(&f->rt, id, (const char *const[]){"ps", NULL}, 5000, &code, &out, err), 0);
	CHECK_EQ_INT(code, 0);
	buf_append(&out, "", 1);
	CHECK(strstr((char *)out.data, "sleep 999"));
	if (strstr((char *)out.data, "sleep 100\n"))
		fprintf(stderr, "  lingering exec process:\n%s", (char *)out.data);
	CHECK(!strstr((char *)out.data, "sleep 100\n"));
	buf_free(&out);
	rc = rt_stop(&f->rt, id, SIGKILL, 2000, err);
	if (rc) {
		fprintf(stderr, "  rt_stop: %s\n", err);
		sh("ps -eo pid,ppid,pgid,sid,stat,wchan:20,args >&2");
	}
	CHECK_EQ_INT(rc, 0);
	free(log);
}

UNIT(runtime_exec_timeout_kills)
{
	struct fx f;
	fx_init(&f, "runc");
	guarded(&f, body_exec, 20000);
}

/* ---- networking ---- */

UNIT(runtime_nat_names_and_rules)
{
	char err[ERR_LEN];
	struct nat_subnet s;
	CHECK_EQ_INT(nat_subnet_parse("10.88.3.7/24", &s, err), 0);
	CHECK_STR(s.cidr, "10.88.3.0/24");
	CHECK_STR(s.gw_str, "10.88.3.1");
	CHECK_EQ_INT(nat_subnet_parse("192.168.4.0/22", &s, err), 0);
	CHECK_STR(s.gw_str, "192.168.4.1");
	CHECK_EQ_INT(nat_subnet_parse("8.8.8.0/24", &s, err), E_INVAL); /* public: refused */
	CHECK_EQ_INT(nat_subnet_parse("10.0.0.0/4", &s, err), E_INVAL);
	CHECK_EQ_INT(nat_subnet_parse("172.32.0.0/16", &s, err), E_INVAL);
	CHECK_EQ_INT(nat_subnet_parse("10.1.2.0", &s, err), E_INVAL);
	CHECK_EQ_INT(nat_subnet_parse("10.1.2.0/24x", &s, err), E_INVAL);
	CHECK_EQ_INT(nat_subnet_parse("10.88.3.0/24", &s, err), 0);
	CHECK_EQ_INT(nat_ip_check(&s, "10.88.3.2", err), 0);
	CHECK_EQ_INT(nat_ip_check(&s, "10.88.3.1", err), E_INVAL);
	CHECK_EQ_INT(nat_ip_check(&s, "10.88.3.255", err), E_INVAL);
	CHECK_EQ_INT(nat_ip_check(&s, "10.88.4.2", err), E_INVAL);
	CHECK(nat_tag_valid("n1", NAT_TAG_MAX));
	CHECK(!nat_tag_valid("abcdefg", NAT_TAG_MAX));
	CHECK(!nat_tag_valid("a-b", NAT_TAG_MAX));
	struct nat_names nm;
	nat_names("abcdef", "1234567", &nm);
	CHECK_STR(nm.bridge, "orchabcdef");
	CHECK_STR(nm.veth, "vabcdef-1234567");
	CHECK(strlen(nm.veth) < IFNAMSIZ);
	CHECK_STR(nm.netns_path, "/var/run/netns/orch-abcdef-1234567");

	struct buf b = {0};
	nat_ruleset("n1", &s, &b);
	struct port_map pm[2] = {{8080, 80, IPPROTO_TCP}, {5353, 53, IPPROTO_UDP}};
	nat_elements("n1", "10.88.3.2", pm, 2, true, &b);
	nat_elements("n1", NULL, pm, 2, false, &b);
	nat_bridge_ruleset("n1", &b);
	nat_isolated("n1", "10.88.3.2 . 10.88.3.3, 10.88.3.3 . 10.88.3.2", &b);
	nat_isolated("n1", "", &b);
	buf_append(&b, "", 1);
	CHECK(buf_has(&b, "add element bridge orch_n1 isolated { 10.88.3.2 . 10.88.3.3, 10.88.3.3 . 10.88.3.2 }"));
	CHECK(buf_has(&b, "add element ip orch_n1 isolated { 10.88.3.2 . 10.88.3.3, 10.88.3.3 . 10.88.3.2 }"));
	/* hardening: nothing with a loopback source is DNAT'ed onto the bridge (it could not be
	 * routed there without route_localnet), the bridge cannot reach 127/8, and the forward
	 * filter ends in a drop for what is neither reply, DNAT nor the node's own tasks */
	CHECK(buf_has(&b, "add rule ip orch_n1 output ip saddr != 127.0.0.0/8 fib daddr type local dnat"));
	CHECK(!buf_has(&b, "ip saddr 127.0.0.0/8 oifname"));
	CHECK(buf_has(&b, "add rule ip orch_n1 guard iifname \"orchn1\" ip daddr 127.0.0.0/8 drop"));
	CHECK(buf_has(&b, "add rule ip orch_n1 forward oifname \"orchn1\" ct status dnat accept"));
	CHECK(buf_has(&b, "add rule ip orch_n1 forward oifname \"orchn1\" iifname \"orchn1\" ip saddr . ip daddr @isolated drop"));
	CHECK(buf_has(&b, "add rule ip orch_n1 forward oifname \"orchn1\" drop"));
	CHECK(buf_has(&b, "add rule bridge orch_n1 forward iifname \"vn1-*\" ether type ip6 drop"));
	CHECK(buf_has(&b, "add rule bridge orch_n1 input iifname \"vn1-*\" ether type ip6 drop"));
	CHECK(buf_has(&b, "add element ip orch_n1 ports { tcp . 8080 : 10.88.3.2 . 80, udp . 5353 : 10.88.3.2 . 53 }"));
	CHECK(buf_has(&b, "delete element ip orch_n1 ports { tcp . 8080, udp . 5353 }"));
	/* nft itself accepts the text (check mode changes nothing) */
	require_root("nft");
	char e2[ERR_LEN];
	int st = 0;
	struct buf eo = {0};
	struct runproc rp = {.argv = (const char *const[]){"nft", "-c", "-f", "-", NULL}, .input = (char *)b.data,
			     .input_len = b.len - 1, .out_fd = -1, .errout = &eo};
	CHECK_EQ_INT(runproc_run(&rp, &st, e2), 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		buf_append(&eo, "", 1);
		fprintf(stderr, "  nft -c: %s\n", (char *)eo.data);
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	buf_free(&b);
	buf_free(&eo);

	uint16_t port = 0;
	CHECK_EQ_INT(net_pick_port(20000, 30000, IPPROTO_TCP, &port, err), 0);
	CHECK(port >= 20000 && port <= 30000);
}

/* HTTP GET over TCP with a deadline; returns the response (caller frees) or NULL. */
static char *http_get(const char *ip, uint16_t port, int timeout_ms)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &sa.sin_addr);
	if (fd < 0)
		return NULL;
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	struct pollfd pf = {.fd = fd, .events = POLLOUT};
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if ((connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) ||
	    poll(&pf, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
		close(fd);
		return NULL;
	}
	const char *req = "GET / HTTP/1.0\r\n\r\n";
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return NULL;
	}
	struct buf b = {0};
	for (;;) {
		uint64_t now = now_ms();
		pf.events = POLLIN;
		if (now >= end || poll(&pf, 1, (int)(end - now)) != 1)
			break;
		char tmp[2048];
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n <= 0)
			break;
		buf_append(&b, tmp, (size_t)n);
	}
	close(fd);
	buf_append(&b, "", 1);
	return (char *)b.data;
}

/* Retries until body appears in a response (httpd may still be starting). */
static bool http_has(const char *ip, uint16_t port, const char *body, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	do {
		char *r = http_get(ip, port, 1000);
		bool ok = r && strstr(r, body);
		free(r);
		if (ok)
			return true;
		usleep(50000);
	} while (now_ms() < end);
	return false;
}

static struct net_node test_node(char *tag, size_t tcap, char *subnet, size_t scap, char *prefix, size_t pcap)
{
	int p = (int)getpid();
	snprintf(tag, tcap, "t%d", p % 100000);
	snprintf(prefix, pcap, "10.199.%d", p % 250);
	snprintf(subnet, scap, "%s.0/24", prefix);
	return (struct net_node){.tag = tag, .subnet = subnet};
}

static char g_tag[8], g_subnet[32], g_prefix[24];

static void net_cleanup_node(struct fx *f)
{
	char err[ERR_LEN];
	struct net_node nn = {.tag = g_tag, .subnet = g_subnet};
	if (net_node_teardown(&nn, err))
		fprintf(stderr, "  net_node_teardown: %s\n", err);
}

static bool table_present(const char *tag)
{
	char *name = xasprintf("orch_%s", tag), err[ERR_LEN];
	int st = 1;
	struct runproc rp = {.argv = (const char *const[]){"nft", "list", "table", "ip", name, NULL}, .out_fd = -1};
	runproc_run(&rp, &st, err);
	free(name);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void body_net(struct fx *f)
{
	char err[ERR_LEN];
	struct net_node nn = {.tag = g_tag, .subnet = g_subnet};
	int rc = net_node_setup(&nn, err);
	if (rc)
		fprintf(stderr, "  net_node_setup: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(net_node_setup(&nn, err), 0); /* repeatable */

	const char *tags[2] = {"a", "b"};
	char ips[2][32], gw[32], netns[2][NAT_PATH_LEN];
	struct port_map pm[2];
	snprintf(gw, sizeof gw, "%s.1", g_prefix);
	for (int i = 0; i < 2; i++) {
		snprintf(ips[i], sizeof ips[i], "%s.%d", g_prefix, 10 + i);
		uint16_t hp;
		do
			CHECK_EQ_INT(net_pick_port(20000, 40000, IPPROTO_TCP, &hp, err), 0);
		while (i == 1 && hp == pm[0].host_port);
		pm[i] = (struct port_map){hp, 80, IPPROTO_TCP};
		rc = net_task_setup(&nn, tags[i], ips[i], &pm[i], 1, netns[i], err);
		if (rc)
			fprintf(stderr, "  net_task_setup: %s\n", err);
		CHECK_EQ_INT(rc, 0);
		char *cmd = xasprintf("mkdir -p /www/%s && echo hello-%s > /www/%s/index.html && exec httpd -f -p 80 -h /www/%s",
				      tags[i], tags[i], tags[i], tags[i]);
		char *args[] = {"sh", "-c", cmd, NULL};
		char *log;
		run_container(f, tags[i], args, 0, netns[i], &log);
		free(cmd);
		free(log);
	}
	/* a bad address is refused before anything is created */
	char tmp[NAT_PATH_LEN];
	CHECK_EQ_INT(net_task_setup(&nn, "c", "192.0.2.99", NULL, 0, tmp, err), E_INVAL);
	CHECK(access("/var/run/netns/orch-x-c", F_OK) != 0);

	for (int i = 0; i < 2; i++) {
		char want[16];
		snprintf(want, sizeof want, "hello-%s", tags[i]);
		if (!http_has(ips[i], 80, want, 5000))
			fprintf(stderr, "  no answer from %s:80\n", ips[i]);
		CHECK(http_has(ips[i], 80, want, 100));
		/* from a local, non-loopback address: loopback clients are the agent's relay's
		 * (agent/ports.h), the kernel does not route them onto the bridge */
		if (!http_has(gw, pm[i].host_port, want, 3000))
			fprintf(stderr, "  no answer from %s:%u\n", gw, pm[i].host_port);
		CHECK(http_has(gw, pm[i].host_port, want, 100));
	}
	char rl[96], val[8] = "";
	snprintf(rl, sizeof rl, "/proc/sys/net/ipv4/conf/orch%s/route_localnet", g_tag);
	FILE *fp = fopen(rl, "r");
	CHECK(fp && fgets(val, sizeof val, fp));
	if (fp)
		fclose(fp);
	CHECK_STR(val, "0\n");
	/* hairpin: task a reaches task b's published port through the gateway */
	char url[96];
	snprintf(url, sizeof url, "http://%s:%u/", gw, pm[1].host_port);
	struct buf out = {0};
	int code = -1;
	rc = rt_exec(&f->rt, cid("a"), (const char *const[]){"wget", "-q", "-O", "-", url, NULL}, 5000, &code, &out, err);
	buf_append(&out, "", 1);
	if (rc || code)
		fprintf(stderr, "  hairpin wget: rc %d code %d: %s %s\n", rc, code, err, (char *)out.data);
	CHECK(rc == 0 && code == 0 && strstr((char *)out.data, "hello-b"));
	buf_free(&out);

	/* node setup again (agent restart) keeps published ports working */
	CHECK_EQ_INT(net_node_setup(&nn, err), 0);
	CHECK(http_has(gw, pm[0].host_port, "hello-a", 3000));

	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(rt_stop(&f->rt, cid(tags[i]), SIGKILL, 1000, err), 0);
		rc = net_task_teardown(&nn, tags[i], &pm[i], 1, err);
		if (rc)
			fprintf(stderr, "  net_task_teardown: %s\n", err);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(net_task_teardown(&nn, tags[i], &pm[i], 1, err), 0); /* idempotent */
		struct nat_names nm;
		nat_names(g_tag, tags[i], &nm);
		CHECK(access(nm.netns_path, F_OK) != 0);
		CHECK(if_nametoindex(nm.veth) == 0);
	}
	CHECK(!http_has(gw, pm[0].host_port, "hello-a", 100));
	/* half-created: a netns without veth tears down too */
	CHECK_EQ_INT(net_task_setup(&nn, "c", ips[0], NULL, 0, tmp, err), 0);
	struct nat_names nm;
	nat_names(g_tag, "c", &nm);
	char e2[ERR_LEN];
	int st;
	struct runproc rp = {.argv = (const char *const[]){"ip", "link", "del", nm.veth, NULL}, .out_fd = -1};
	CHECK_EQ_INT(runproc_run(&rp, &st, e2), 0);
	CHECK_EQ_INT(net_task_teardown(&nn, "c", NULL, 0, err), 0);
	CHECK(access(nm.netns_path, F_OK) != 0);

	CHECK_EQ_INT(net_node_teardown(&nn, err), 0);
	CHECK_EQ_INT(net_node_teardown(&nn, err), 0);
	CHECK(!table_present(g_tag));
	CHECK(if_nametoindex(nm.bridge) == 0);
}

UNIT(runtime_net_two_tasks_published)
{
	struct fx f;
	require_root("ip");
	require_root("nft");
	fx_init(&f, "runc");
	test_node(g_tag, sizeof g_tag, g_subnet, sizeof g_subnet, g_prefix, sizeof g_prefix);
	net_cleanup = net_cleanup_node;
	guarded(&f, body_net, 25000);
	/* after the cleanup, nothing of the node is left even if the body failed */
	CHECK(!table_present(g_tag));
	char br[16];
	snprintf(br, sizeof br, "orch%s", g_tag);
	CHECK(if_nametoindex(br) == 0);
}

UNIT(runtime_cgroup_remove)
{
	require_root("runc");
	char err[ERR_LEN], path[64], dir[128];
	snprintf(path, sizeof path, "/orch-cgtest-%d", (int)getpid());
	const char *ctl[] = {"memory", "pids", "cpuacct"};
	for (int i = 0; i < 3; i++) {
		snprintf(dir, sizeof dir, CGROUP_ROOT "/%s%s", ctl[i], path);
		CHECK_EQ_INT(mkdir(dir, 0755), 0);
	}
	struct cgroup_stats cs;
	CHECK_EQ_INT(cgroup_stats_read(path, &cs, err), 0);
	CHECK_EQ_INT(cs.pids, 0);
	CHECK_EQ_INT(cgroup_remove(path, err), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(dir, sizeof dir, CGROUP_ROOT "/%s%s", ctl[i], path);
		CHECK(access(dir, F_OK) != 0);
	}
	CHECK_EQ_INT(cgroup_remove(path, err), 0); /* already gone: fine */
	CHECK_EQ_INT(cgroup_stats_read(path, &cs, err), E_NOTFOUND);
	CHECK_EQ_INT(cgroup_remove("/a/../../etc", err), E_INVAL);
	CHECK_EQ_INT(cgroup_remove("/", err), E_INVAL);
	CHECK_EQ_INT(cgroup_remove("relative", err), E_INVAL);
}

/* Task figures and OOM kills from captured trees of both layouts (test/fixtures/cgroup):
 * the same two tasks must read the same on a v1 and a v2 host. */
UNIT(runtime_cgroup_stats_layouts)
{
	const char *roots[] = {"test/fixtures/cgroup/v1", "test/fixtures/cgroup/v2"};
	const enum cgroup_layout want[] = {CGROUP_V1, CGROUP_V2};
	char err[ERR_LEN];
	for (int i = 0; i < 2; i++) {
		enum cgroup_layout l = cgroup_layout_of(roots[i]);
		CHECK_EQ_INT(l, want[i]);
		struct cgroup_stats st;
		/* 42: killed at its 16 MiB limit */
		CHECK_EQ_INT(cgroup_stats_read_at(roots[i], l, "/orch/00000000000000ab/42", &st, err), 0);
		CHECK_EQ_INT(st.oom_kills, 1);
		CHECK(st.mem_usage > 16700000 && st.mem_usage <= 16777216);
		CHECK_EQ_INT(st.mem_max_usage, 16777216);
		CHECK_EQ_INT(st.mem_limit, 16777216);
		CHECK(st.cpu_ns / 1000 == 38219);
		CHECK_EQ_INT(st.pids, 1);
		/* 43: running, unlimited */
		CHECK_EQ_INT(cgroup_stats_read_at(roots[i], l, "/orch/00000000000000ab/43", &st, err), 0);
		CHECK_EQ_INT(st.oom_kills, 0);
		CHECK(st.mem_usage > 1300000 && st.mem_usage < 1500000);
		CHECK(st.mem_limit > (1ull << 62));
		CHECK(st.cpu_ns / 1000000 == 1250);
		CHECK_EQ_INT(st.pids, 3);
		CHECK_EQ_INT(cgroup_stats_read_at(roots[i], l, "/orch/00000000000000ab/44", &st, err), E_NOTFOUND);
		CHECK(strstr(err, "no memory cgroup /orch/00000000000000ab/44"));
		CHECK_EQ_INT(cgroup_stats_read_at(roots[i], l, "/orch/../etc", &st, err), E_INVAL);
		char dir[256];
		cgroup_dir(dir, sizeof dir, roots[i], l, "memory", "/orch/00000000000000ab");
		CHECK_STR(dir, i ? "test/fixtures/cgroup/v2/orch/00000000000000ab"
				 : "test/fixtures/cgroup/v1/memory/orch/00000000000000ab");
	}
	/* the host's layout is one of the two, and the same as its mount says */
	enum cgroup_layout host = cgroup_layout_of(CGROUP_ROOT);
	CHECK(host == CGROUP_V1 || host == CGROUP_V2);
	FILE *f = fopen("/proc/self/mounts", "r");
	CHECK(f);
	char line[1024];
	bool unified_root = false;
	while (fgets(line, sizeof line, f))
		if (strstr(line, " " CGROUP_ROOT " cgroup2 "))
			unified_root = true;
	fclose(f);
	CHECK_EQ_INT(host == CGROUP_V2, unified_root);
}

/* ---- seccomp and hardening, pure and in real containers ---- */

#include "runtime/caps.h"
#include "runtime/seccomp.h"

UNIT(runtime_seccomp_table)
{
	const char *const none[] = {NULL};
	/* nothing guarded is allowed outright with Docker's default capabilities, or none */
	for (size_t i = 0; seccomp_guarded[i]; i++) {
		if (seccomp_verdict_of(seccomp_guarded[i], caps_default) == SECCOMP_ALLOW)
			fprintf(stderr, "  %s is allowed by default\n", seccomp_guarded[i]);
		CHECK(seccomp_verdict_of(seccomp_guarded[i], caps_default) != SECCOMP_ALLOW);
		CHECK(seccomp_verdict_of(seccomp_guarded[i], none) != SECCOMP_ALLOW);
	}
	CHECK_EQ_INT(seccomp_verdict_of("read", none), SECCOMP_ALLOW);
	CHECK_EQ_INT(seccomp_verdict_of("clone", caps_default), SECCOMP_ALLOW_ARGS);
	CHECK_EQ_INT(seccomp_verdict_of("clone3", caps_default), SECCOMP_DENY);
	CHECK_EQ_INT(seccomp_verdict_of("chroot", caps_default), SECCOMP_ALLOW);
	CHECK_EQ_INT(seccomp_verdict_of("chroot", none), SECCOMP_DENY);
	/* a capability opens exactly its calls */
	const char *const admin[] = {"CAP_SYS_ADMIN", NULL}, *const ptrace_[] = {"CAP_SYS_PTRACE", NULL};
	CHECK_EQ_INT(seccomp_verdict_of("mount", admin), SECCOMP_ALLOW);
	CHECK_EQ_INT(seccomp_verdict_of("unshare", admin), SECCOMP_ALLOW);
	CHECK_EQ_INT(seccomp_verdict_of("clone", admin), SECCOMP_ALLOW);
	CHECK_EQ_INT(seccomp_verdict_of("clone3", admin), SECCOMP_ALLOW);
	CHECK_EQ_INT(seccomp_verdict_of("ptrace", admin), SECCOMP_DENY);
	CHECK_EQ_INT(seccomp_verdict_of("ptrace", ptrace_), SECCOMP_ALLOW);
	CHECK_EQ_INT(seccomp_verdict_of("keyctl", admin), SECCOMP_DENY);
	const char **all = caps_resolve(NULL, 0, NULL, 0, true);
	CHECK_EQ_INT(seccomp_verdict_of("keyctl", all), SECCOMP_DENY);
	CHECK_EQ_INT(seccomp_verdict_of("init_module", all), SECCOMP_ALLOW);

	/* the JSON is one object, with an errno default and no name twice in one verdict */
	struct buf b = {0};
	struct rtjson_w w;
	rtjson_init(&w, &b);
	seccomp_default(&w, caps_default);
	struct rtjson_v v, x, r, n;
	char s[64];
	CHECK_EQ_INT(rtjson_parse((char *)b.data, b.len, &v), 0);
	CHECK_EQ_INT(rtjson_get_str(&v, "defaultAction", s, sizeof s), 0);
	CHECK_STR(s, "SCMP_ACT_ERRNO");
	int64_t e;
	CHECK_EQ_INT(rtjson_get_int(&v, "defaultErrnoRet", &e), 0);
	CHECK_EQ_INT(e, 1);
	CHECK(buf_has(&b, "\"SCMP_ARCH_X86_64\"") || buf_has(&b, "\"SCMP_ARCH_AARCH64\""));
	CHECK_EQ_INT(rtjson_get(&v, "syscalls", &x), 0);
	size_t pos = 0, nrules = 0, nplain = 0;
	char seen[600][32];
	while (rtjson_next(&x, &pos, &r) == 1) {
		nrules++;
		struct rtjson_v names, args;
		CHECK_EQ_INT(rtjson_get(&r, "names", &names), 0);
		if (rtjson_get(&r, "args", &args) == 0)
			continue; /* argument rules repeat a name by design (personality) */
		size_t p2 = 0;
		while (rtjson_next(&names, &p2, &n) == 1) {
			CHECK_EQ_INT(rtjson_string(&n, s, sizeof s), 0);
			for (size_t k = 0; k < nplain; k++)
				if (!strcmp(seen[k], s))
					fprintf(stderr, "  %s listed twice\n", s);
			for (size_t k = 0; k < nplain; k++)
				CHECK(strcmp(seen[k], s));
			CHECK(nplain < 600);
			snprintf(seen[nplain++], sizeof seen[0], "%s", s);
		}
	}
	CHECK(nrules >= 10);
	CHECK(nplain > 250);
	for (size_t i = 0; seccomp_guarded[i]; i++)
		for (size_t k = 0; k < nplain; k++)
			CHECK(strcmp(seen[k], seccomp_guarded[i]) || !strcmp(s, "chroot"));
	buf_free(&b);
	free(all);
}

UNIT(runtime_caps_resolve)
{
	char n[CAPS_NAME_MAX];
	CHECK_EQ_INT(caps_name("net_admin", n), 0);
	CHECK_STR(n, "CAP_NET_ADMIN");
	CHECK_EQ_INT(caps_name("CAP_SYS_ADMIN", n), 0);
	CHECK_STR(n, "CAP_SYS_ADMIN");
	CHECK_EQ_INT(caps_name("all", n), 0);
	CHECK_STR(n, "ALL");
	CHECK(caps_name("NET_ADMINX", n) < 0);
	CHECK(caps_name("", n) < 0);
	char *add[] = {"sys_ptrace"}, *drop[] = {"CAP_NET_RAW", "chown"}, *all[] = {"ALL"};
	const char **c = caps_resolve(add, 1, drop, 2, false);
	size_t k = 0;
	bool ptrace_ = false, raw = false, kill_ = false;
	for (; c[k]; k++) {
		ptrace_ |= !strcmp(c[k], "CAP_SYS_PTRACE");
		raw |= !strcmp(c[k], "CAP_NET_RAW") || !strcmp(c[k], "CAP_CHOWN");
		kill_ |= !strcmp(c[k], "CAP_KILL");
	}
	CHECK(ptrace_ && !raw && kill_);
	CHECK_EQ_INT(k, 14 + 1 - 2);
	free(c);
	c = caps_resolve(add, 1, all, 1, false); /* only what is added */
	CHECK(c[0] && !strcmp(c[0], "CAP_SYS_PTRACE") && !c[1]);
	free(c);
	c = caps_resolve(all, 1, drop, 2, false);
	for (k = 0; c[k]; k++)
		CHECK(strcmp(c[k], "CAP_NET_RAW"));
	CHECK_EQ_INT(k, 41 - 2);
	free(c);
}

static void report(const char *name, long rc)
{
	printf("%s %d\n", name, rc < 0 ? errno : 0);
	errno = 0;
}

/* Runs inside a container (orch-unit copied into its rootfs). */
int unit_probe_syscalls(void)
{
	report("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 1));
	report("add_key", syscall(SYS_add_key, "user", "orch", "x", 1, -3));
	report("request_key", syscall(SYS_request_key, "user", "orch", NULL, 0));
	report("bpf", syscall(SYS_bpf, 0, NULL, 0));
	report("userfaultfd", syscall(SYS_userfaultfd, 0));
	report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
	report("mount", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL));
	report("unshare_user", syscall(SYS_unshare, CLONE_NEWUSER));
	long rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
	if (rc == 0)
		_exit(0); /* the child of a clone that got through */
	report("clone_newuser", rc);
	report("clone3", syscall(SYS_clone3, NULL, 0));
	report("ptrace", syscall(SYS_ptrace, 0 /* TRACEME */, 0, NULL, NULL));
	report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	report("init_module", syscall(SYS_init_module, NULL, 0, ""));
	report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
	report("getpid", syscall(SYS_getpid));
	return 0;
}

static char *probe_out(const char *text, const char *name)
{
	static char line[64];
	snprintf(line, sizeof line, "\n%s ", name);
	const char *p = strstr(text, line);
	CHECK(p);
	snprintf(line, sizeof line, "%s", p + strlen(name) + 2);
	*strchrnul(line, '\n') = 0;
	return line;
}

static const char *const unconfined_caps[] = {"CAP_SYS_ADMIN", NULL};
static void unconfined(struct run_spec *rs)
{
	rs->seccomp = BUNDLE_SECCOMP_UNCONFINED;
	rs->new_privs = true;
}
static void with_admin(struct run_spec *rs)
{
	rs->caps = unconfined_caps;
}

static void body_seccomp(struct fx *f)
{
	char *cp = xasprintf("cp /proc/%d/exe %s/bin/probe", (int)getppid(), f->rootfs);
	sh(cp);
	free(cp);
	char *script = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; echo; /bin/probe " UNIT_PROBE_ARG
		       "; unshare -U -r true; echo unshare=$?; echo interrupts=$(wc -c < /proc/interrupts)";
	char *args[] = {"sh", "-c", script, NULL};
	char *log;
	int pid = run_container(f, "sc", args, 0, NULL, &log);
	int st = wait_status(pid, 10000);
	CHECK(WIFEXITED(st));
	char *text = slurp_file(log);
	CHECK(strstr(text, "Seccomp:\t2"));
	CHECK(strstr(text, "NoNewPrivs:\t1"));
	const char *eperm[] = {"keyctl", "add_key", "request_key", "bpf", "userfaultfd", "perf_event_open",
			       "mount", "unshare_user", "clone_newuser", "ptrace", "kexec_load", "init_module",
			       "open_by_handle_at"};
	for (size_t i = 0; i < sizeof eperm / sizeof eperm[0]; i++) {
		if (strcmp(probe_out(text, eperm[i]), "1"))
			fprintf(stderr, "  %s: errno %s, expected EPERM\n", eperm[i], probe_out(text, eperm[i]));
		CHECK_STR(probe_out(text, eperm[i]), "1");
	}
	CHECK_STR(probe_out(text, "clone3"), "38"); /* ENOSYS: libc falls back to clone */
	CHECK_STR(probe_out(text, "getpid"), "0");
	CHECK(strstr(text, "unshare=1") || strstr(text, "unshare=2"));
	CHECK(strstr(text, "interrupts=0"));
	free(text);
	free(log);

	/* unconfined: no filter, no no_new_privs; a keyring lookup then works */
	rs_tweak = unconfined;
	pid = run_container(f, "sc2", args, 0, NULL, &log);
	st = wait_status(pid, 10000);
	text = slurp_file(log);
	CHECK(strstr(text, "Seccomp:\t0"));
	CHECK(strstr(text, "NoNewPrivs:\t0"));
	CHECK_STR(probe_out(text, "keyctl"), "0");
	free(text);
	free(log);

	/* CAP_SYS_ADMIN opens mount and unshare (of a user namespace too) under the filter;
	 * keyrings stay closed */
	rs_tweak = with_admin;
	pid = run_container(f, "sc3", args, 0, NULL, &log);
	st = wait_status(pid, 10000);
	text = slurp_file(log);
	CHECK(strstr(text, "Seccomp:\t2"));
	CHECK_STR(probe_out(text, "mount"), "0");
	CHECK_STR(probe_out(text, "unshare_user"), "0");
	CHECK_STR(probe_out(text, "keyctl"), "1");
	free(text);
	free(log);
	rs_tweak = NULL;
}

UNIT(runtime_seccomp_in_container)
{
	struct fx f;
	fx_init(&f, "runc");
	guarded(&f, body_seccomp, 25000);
}

UNIT(runtime_bundle_userns_and_privileged)
{
	struct run_spec rs = base_spec();
	rs.userns_base = 100000;
	rs.userns_count = 65536;
	const char *k[] = {"net.core.somaxconn", "kernel.shmmax"}, *v[] = {"1000", "4096"};
	rs.sysctl_keys = k;
	rs.sysctl_vals = v;
	rs.nsysctl = 2;
	struct buf b = {0};
	char err[ERR_LEN];
	CHECK_EQ_INT(bundle_json(&rs, &b, err), 0);
	CHECK(buf_has(&b, "{\"type\":\"user\"}"));
	CHECK(buf_has(&b, "\"uidMappings\":[{\"containerID\":0,\"hostID\":100000,\"size\":65536}]"));
	CHECK(buf_has(&b, "\"gidMappings\":[{\"containerID\":0,\"hostID\":100000,\"size\":65536}]"));
	/* net.* is the agent's to set from the host; the IPC one stays */
	CHECK(!buf_has(&b, "net.core.somaxconn") && !buf_has(&b, "ip_unprivileged_port_start"));
	CHECK(buf_has(&b, "\"kernel.shmmax\":\"4096\""));
	CHECK(buf_has(&b, "\"destination\":\"/sys\",\"type\":\"bind\",\"source\":\"/sys\""));
	buf_free(&b);
	rs.privileged = true;
	CHECK_EQ_INT(bundle_json(&rs, &b, err), E_UNSUPP);
	buf_free(&b);

	/* privileged: every device, no filter, nothing masked, /sys writable */
	rs = base_spec();
	rs.privileged = true;
	CHECK_EQ_INT(bundle_json(&rs, &b, err), 0);
	CHECK(!buf_has(&b, "\"seccomp\"") && !buf_has(&b, "maskedPaths") && !buf_has(&b, "readonlyPaths"));
	CHECK(buf_has(&b, "{\"allow\":true,\"access\":\"rwm\"}"));
	buf_free(&b);
	/* a profile that is not one JSON object never reaches config.json */
	rs = base_spec();
	rs.seccomp = "{\"defaultAction\":\"SCMP_ACT_ALLOW\"},\"hooks\":{}";
	CHECK_EQ_INT(bundle_json(&rs, &b, err), E_INVAL);
	rs.seccomp = "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}";
	CHECK_EQ_INT(bundle_json(&rs, &b, err), 0);
	CHECK(buf_has(&b, "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\"}"));
	buf_free(&b);
}
