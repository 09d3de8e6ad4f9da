/* runc/crun invocations. The runtime keeps its own state under --root, so this module
 * holds none: every function is a pure function of its arguments plus the runtime's
 * state directory, which is what lets a restarted agent find its containers again. */
#include "runtime/runc.h"
#include "runtime/rtjson.h"
#include "runtime/runproc.h"
#include "util/err.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define RT_CALL_TIMEOUT_MS 60000 /* runc itself hanging longer than this is a bug */
#define RT_MAX_ARGS 24

static const char *const status_names[] = {"unknown", "creating", "created", "running", "paused", "stopped"};

const char *rt_status_name(enum rt_status s)
{
	return (unsigned)s < sizeof status_names / sizeof *status_names ? status_names[s] : "unknown";
}

enum rt_status rt_status_parse(const char *s)
{
	for (unsigned i = 1; i < sizeof status_names / sizeof *status_names; i++)
		if (!strcmp(s, status_names[i]))
			return (enum rt_status)i;
	return RT_UNKNOWN;
}

bool rt_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > RT_ID_MAX || id[0] == '-' || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

static const char *prog(const struct rt *rt)
{
	return rt->runtime && *rt->runtime ? rt->runtime : "runc";
}

static bool is_crun(const struct rt *rt)
{
	const char *p = prog(rt);
	const char *base = strrchr(p, '/');
	return !strcmp(base ? base + 1 : p, "crun");
}

/* argv under construction: runtime --root DIR <args...> */
struct args {
	const char *v[RT_MAX_ARGS + 1];
	int n;
};

static void args_init(struct args *a, const struct rt *rt)
{
	a->n = 0;
	a->v[a->n++] = prog(rt);
	a->v[a->n++] = "--root";
	a->v[a->n++] = rt->state_dir;
	a->v[a->n] = NULL;
}

static void arg(struct args *a, const char *s)
{
	if (a->n < RT_MAX_ARGS) {
		a->v[a->n++] = s;
		a->v[a->n] = NULL;
	}
}

/* The runtime's error, preferring logrus' msg="..." or a JSON "msg" over raw text. */
static void runtime_msg(const char *text, size_t len, char *out, size_t cap)
{
	out[0] = 0;
	const char *end = text + len, *best = NULL;
	for (const char *p = text; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le > p && *p == '{') {
			struct rtjson_v v;
			char lvl[16] = "";
			if (rtjson_parse(p, (size_t)(le - p), &v) == 0 && rtjson_get_str(&v, "level", lvl, sizeof lvl) == 0 &&
			    !strcmp(lvl, "error") && rtjson_get_str(&v, "msg", out, cap) == 0)
				best = p; /* keep the last error */
		} else {
			const char *m = memmem(p, (size_t)(le - p), "msg=\"", 5);
			if (m) {
				size_t n = 0;
				for (m += 5; m < le && *m != '"' && n + 1 < cap; m++) {
					if (*m == '\\' && m + 1 < le)
						m++;
					out[n++] = *m;
				}
				out[n] = 0;
				best = p;
			}
		}
		p = le + 1;
	}
	if (!best)
		runproc_first_line(text, len, out, cap);
}

/* Runs the runtime; 0 on exit status 0, otherwise an error naming what failed. */
static int call(const struct rt *rt, const struct args *a, const char *what, const char *id, struct buf *out,
		char *err)
{
	struct buf eb = {0};
	struct runproc rp = {
		.argv = a->v, .out_fd = -1, .out = out, .errout = &eb,
		.timeout_ms = RT_CALL_TIMEOUT_MS, .crun_workaround = is_crun(rt),
	};
	int status = 0;
	int rc = runproc_run(&rp, &status, err);
	if (rc) {
		errwrap(err, rc, "%s %s %s", prog(rt), what, id);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char msg[ERR_LEN / 2], how[32];
		runtime_msg((const char *)eb.data, eb.len, msg, sizeof msg);
		runproc_describe(status, how, sizeof how);
		rc = errf(err, E_FAIL, "%s %s %s: %s", prog(rt), what, id, *msg ? msg : how);
	}
	buf_free(&eb);
	return rc;
}

static int check(const struct rt *rt, const char *id, char *err)
{
	if (!rt->state_dir || rt->state_dir[0] != '/')
		return errf(err, E_INVAL, "runtime state directory must be an absolute path");
	if (!rt_id_valid(id))
		return errf(err, E_INVAL, "invalid container id \"%s\"", id ? id : "");
	return 0;
}

/* Both runc and crun keep one directory per container under --root. */
static bool exists(const struct rt *rt, const char *id)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", rt->state_dir, id);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
		return -1;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int read_pid_file(const char *path)
{
	FILE *f = fopen(path, "re");
	long pid = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 0 || pid > 1 << 22)
		pid = 0;
	fclose(f);
	return (int)pid;
}

int rt_create(const struct rt *rt, const char *id, const char *bundle, const char *log_path, int *pid_out,
	      char *err)
{
	int rc = check(rt, id, err);
	if (rc)
		return rc;
	*pid_out = 0;
	if (exists(rt, id))
		return errf(err, E_EXISTS, "container %s already exists (delete it first)", id);
	if (mkdir_p(rt->state_dir, 0700) < 0)
		return errf(err, E_IO, "create runtime state directory %s: %s", rt->state_dir, strerror(errno));
	int log_fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)
			      : open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (log_fd < 0)
		return errf(err, E_IO, "open container log %s: %s", log_path ? log_path : "/dev/null", strerror(errno));
	char *pid_file = xasprintf("%s/init.pid", bundle);
	char *rt_log = xasprintf("%s/runtime.log", bundle);
	unlink(pid_file);
	unlink(rt_log);

	struct args a;
	args_init(&a, rt);
	arg(&a, "--log");
	arg(&a, rt_log);
	arg(&a, "--log-format");
	arg(&a, "json");
	arg(&a, "create");
	arg(&a, "--bundle");
	arg(&a, bundle);
	arg(&a, "--pid-file");
	arg(&a, pid_file);
	arg(&a, id);
	/* terminal:false means the container inherits these descriptors: give it the log. */
	struct runproc rp = {.argv = a.v, .out_fd = log_fd, .timeout_ms = RT_CALL_TIMEOUT_MS,
			     .crun_workaround = is_crun(rt)};
	int status = 0;
	rc = runproc_run(&rp, &status, err);
	close(log_fd);
	if (rc) {
		errwrap(err, rc, "%s create %s", prog(rt), id);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char msg[ERR_LEN / 2] = "", how[32];
		FILE *f = fopen(rt_log, "re");
		if (f) {
			char text[16384];
			size_t n = fread(text, 1, sizeof text - 1, f);
			fclose(f);
			runtime_msg(text, n, msg, sizeof msg);
		}
		runproc_describe(status, how, sizeof how);
		rc = errf(err, E_FAIL, "%s create %s: %s", prog(rt), id, *msg ? msg : how);
	} else if (!(*pid_out = read_pid_file(pid_file))) {
		rc = errf(err, E_FAIL, "%s create %s: no pid in %s", prog(rt), id, pid_file);
	}
	free(pid_file);
	free(rt_log);
	return rc;
}

int rt_start(const struct rt *rt, const char *id, char *err)
{
	int rc = check(rt, id, err);
	if (rc)
		return rc;
	struct args a;
	args_init(&a, rt);
	arg(&a, "start");
	arg(&a, id);
	return call(rt, &a, "start", id, NULL, err);
}

int rt_kill(const struct rt *rt, const char *id, int sig, bool all, char *err)
{
	int rc = check(rt, id, err);
	if (rc)
		return rc;
	char signum[16];
	snprintf(signum, sizeof signum, "%d", sig);
	struct args a;
	args_init(&a, rt);
	arg(&a, "kill");
	if (all)
		arg(&a, "--all");
	arg(&a, id);
	arg(&a, signum);
	return call(rt, &a, "kill", id, NULL, err);
}

int rt_delete(const struct rt *rt, const char *id, bool force, char *err)
{
	int rc = check(rt, id, err);
	if (rc)
		return rc;
	if (!exists(rt, id))
		return errf(err, E_NOTFOUND, "container %s does not exist", id);
	struct args a;
	args_init(&a, rt);
	arg(&a, "delete");
	if (force)
		arg(&a, "--force");
	arg(&a, id);
	rc = call(rt, &a, "delete", id, NULL, err);
	if (rc && !exists(rt, id)) /* deleted concurrently */
		return errf(err, E_NOTFOUND, "container %s does not exist", id);
	return rc;
}

/* Fills ci from one state object as printed by "state" or "list --format json". */
static int parse_info(const struct rtjson_v *o, struct rt_info *ci)
{
	char status[32];
	int64_t pid = 0;
	memset(ci, 0, sizeof *ci);
	if (rtjson_get_str(o, "id", ci->id, sizeof ci->id) || rtjson_get_str(o, "status", status, sizeof status))
		return -1;
	rtjson_get_str(o, "bundle", ci->bundle, sizeof ci->bundle);
	rtjson_get_int(o, "pid", &pid);
	ci->status = rt_status_parse(status);
	ci->pid = ci->status == RT_STOPPED || pid < 0 || pid > 1 << 22 ? 0 : (int)pid;
	return 0;
}

int rt_state(const struct rt *rt, const char *id, enum rt_status *status, int *pid, char *err)
{
	int rc = check(rt, id, err);
	if (rc)
		return rc;
	*status = RT_UNKNOWN;
	*pid = 0;
	if (!exists(rt, id))
		return errf(err, E_NOTFOUND, "container %s does not exist", id);
	struct args a;
	args_init(&a, rt);
	arg(&a, "state");
	arg(&a, id);
	struct buf out = {0};
	rc = call(rt, &a, "state", id, &out, err);
	if (rc) {
		if (!exists(rt, id))
			rc = errf(err, E_NOTFOUND, "container %s does not exist", id);
		goto done;
	}
	struct rtjson_v v;
	struct rt_info ci;
	if (rtjson_parse((const char *)out.data, out.len, &v) || parse_info(&v, &ci)) {
		rc = errf(err, E_FAIL, "%s state %s: unreadable output", prog(rt), id);
		goto done;
	}
	*status = ci.status;
	*pid = ci.pid;
done:
	buf_free(&out);
	return rc;
}

int rt_list(const struct rt *rt, int (*cb)(const struct rt_info *ci, void *arg), void *cb_arg, char *err)
{
	if (!rt->state_dir || rt->state_dir[0] != '/')
		return errf(err, E_INVAL, "runtime state directory must be an absolute path");
	struct stat st;
	if (stat(rt->state_dir, &st) < 0)
		return errno == ENOENT ? 0 : errf(err, E_IO, "%s: %s", rt->state_dir, strerror(errno));
	struct args a;
	args_init(&a, rt);
	arg(&a, "list");
	arg(&a, "--format");
	arg(&a, "json");
	struct buf out = {0};
	int rc = call(rt, &a, "list", rt->state_dir, &out, err);
	if (rc)
		goto done;
	struct rtjson_v v, e;
	if (rtjson_parse((const char *)out.data, out.len, &v)) {
		rc = errf(err, E_FAIL, "%s list: unreadable output", prog(rt));
		goto done;
	}
	if (rtjson_type(&v) == 'z') /* runc prints null when there are none */
		goto done;
	size_t pos = 0;
	int more;
	while ((more = rtjson_next(&v, &pos, &e)) == 1) {
		struct rt_info ci;
		if (parse_info(&e, &ci))
			continue;
		if ((rc = cb(&ci, cb_arg)) != 0)
			goto done;
	}
	if (more < 0)
		rc = errf(err, E_FAIL, "%s list: unreadable output", prog(rt));
done:
	buf_free(&out);
	return rc;
}

int rt_exec(const struct rt *rt, const char *id, const char *const *argv, int timeout_ms, int *exit_code,
	    struct buf *out, char *err)
{
	int rc = check(rt, id, err);
	if (rc)
		return rc;
	*exit_code = -1;
	if (!argv || !argv[0])
		return errf(err, E_INVAL, "exec in %s: no command", id);
	char dir[] = "/tmp/orch-exec-XXXXXX";
	if (!mkdtemp(dir))
		return errf(err, E_IO, "exec in %s: temp directory: %s", id, strerror(errno));
	char pid_file[sizeof dir + 16];
	snprintf(pid_file, sizeof pid_file, "%s/pid", dir);

	size_t n = 0;
	while (argv[n])
		n++;
	const char **v = xcalloc(n + 8, sizeof *v);
	size_t k = 0;
	v[k++] = prog(rt);
	v[k++] = "--root";
	v[k++] = rt->state_dir;
	v[k++] = "exec";
	v[k++] = "--pid-file";
	v[k++] = pid_file;
	v[k++] = id;
	for (size_t i = 0; i < n; i++)
		v[k++] = argv[i];
	v[k] = NULL;

	struct runproc rp = {
		.argv = v, .out_fd = -1, .merge_err = true, .out = out,
		.timeout_ms = timeout_ms > 0 ? timeout_ms : 0, .kill_pid_file = pid_file,
		.crun_workaround = is_crun(rt),
	};
	int status = 0;
	rc = runproc_run(&rp, &status, err);
	if (rc == E_TIMEOUT)
		rc = errf(err, E_TIMEOUT, "exec in %s: timed out after %d ms", id, timeout_ms);
	else if (rc)
		errwrap(err, rc, "exec in %s", id);
	else if (WIFEXITED(status))
		*exit_code = WEXITSTATUS(status);
	else
		*exit_code = 128 + WTERMSIG(status);
	unlink(pid_file);
	rmdir(dir);
	free(v);
	return rc;
}

/* True when pid is gone or a zombie: /proc/<pid>/stat field 3. */
static bool pid_dead(int pid)
{
	char path[64], text[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return true;
	text[n] = 0;
	const char *paren = strrchr(text, ')'); /* comm may contain spaces and parens */
	return !paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X';
}

static bool wait_dead(int pid, int ms)
{
	uint64_t end = now_ms() + (uint64_t)(ms > 0 ? ms : 0);
	for (;;) {
		if (pid_dead(pid))
			return true;
		if (now_ms() >= end)
			return false;
		usleep(10000);
	}
}

int rt_stop(const struct rt *rt, const char *id, int sig, int grace_ms, char *err)
{
	enum rt_status st;
	int pid = 0;
	int rc = rt_state(rt, id, &st, &pid, err);
	if (rc == E_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if ((st == RT_RUNNING || st == RT_PAUSED) && pid > 0) {
		/* The polling reads /proc instead of spawning "runc state" (46 ms each). */
		if (st == RT_RUNNING && rt_kill(rt, id, sig, false, err) == 0 && wait_dead(pid, grace_ms))
			goto del;
		rt_kill(rt, id, SIGKILL, false, err);
		wait_dead(pid, 5000); /* delete --force below kills whatever is left */
	}
del:
	rc = rt_delete(rt, id, true, err);
	return rc == E_NOTFOUND ? 0 : rc;
}

/* ---- orch exec ------------------------------------------------------------------------------ */

static int slurp(struct buf *b, const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char tmp[8192];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0 && b->len < (4u << 20))
		buf_append(b, tmp, n);
	fclose(f);
	return 0;
}

/* The process of an exec: the container's own (bundle/config.json), with the command, the
 * terminal and its size given. runc takes a consoleSize only from a process file, and a
 * size set after the start would race with a command that reads it at once (stty size). */
static int exec_process(const struct rt_exec_req *q, const char *path, char *err)
{
	char *cfg_path = xasprintf("%s/config.json", q->bundle);
	struct buf cfg = {0}, out = {0};
	int rc = slurp(&cfg, cfg_path);
	struct rtjson_v root, proc, v;
	if (rc || rtjson_parse((const char *)cfg.data, cfg.len, &root) || rtjson_get(&root, "process", &proc) ||
	    rtjson_type(&proc) != 'o') {
		rc = errf(err, E_IO, "exec in %s: no process in %s", q->id, cfg_path);
		goto done;
	}
	struct rtjson_w w;
	rtjson_init(&w, &out);
	rtjson_obj(&w);
	static const char *const kept[] = {"user", "env", "cwd", "capabilities", "rlimits", "noNewPrivileges",
					   "apparmorProfile", "oomScoreAdj", "selinuxLabel"};
	for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
		if (!rtjson_get(&proc, kept[i], &v)) {
			rtjson_key(&w, kept[i]);
			rtjson_raw(&w, &v);
		}
	rtjson_kbool(&w, "terminal", q->tty);
	if (q->tty && q->rows && q->cols) {
		rtjson_key(&w, "consoleSize");
		rtjson_obj(&w);
		rtjson_ku64(&w, "height", q->rows);
		rtjson_ku64(&w, "width", q->cols);
		rtjson_obj_end(&w);
	}
	rtjson_key(&w, "args");
	rtjson_strv(&w, q->argv);
	rtjson_obj_end(&w);
	FILE *f = fopen(path, "we");
	bool ok = f && fwrite(out.data, 1, out.len, f) == out.len;
	if ((f && fclose(f)) || !ok)
		rc = errf(err, E_IO, "exec in %s: write %s: %s", q->id, path, strerror(errno));
done:
	free(cfg_path);
	buf_free(&cfg);
	buf_free(&out);
	return rc;
}

/* The pseudo-terminal's master that runc sends over the console socket (SCM_RIGHTS). */
static int recv_master(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	if (poll(&p, 1, 5000) <= 0)
		return -1;
	int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		return -1;
	char data[64];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	int fd = -1;
	p.fd = cfd;
	if (poll(&p, 1, 5000) > 0 && recvmsg(cfd, &m, MSG_CMSG_CLOEXEC) >= 0) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof fd);
	}
	close(cfd);
	return fd;
}

int rt_exec_start(const struct rt *rt, const struct rt_exec_req *q, int *pid, int *master, char *err)
{
	*pid = 0;
	*master = -1;
	int rc = check(rt, q->id, err);
	if (rc)
		return rc;
	if (!q->argv || !q->argv[0])
		return errf(err, E_INVAL, "exec in %s: no command", q->id);
	char dir[] = "/tmp/orch-exec-XXXXXX";
	if (!mkdtemp(dir))
		return errf(err, E_IO, "exec in %s: temp directory: %s", q->id, strerror(errno));
	char pid_file[64], log[64], sock[64], proc[64];
	snprintf(pid_file, sizeof pid_file, "%s/pid", dir);
	snprintf(log, sizeof log, "%s/log", dir);
	snprintf(sock, sizeof sock, "%s/console", dir);
	snprintf(proc, sizeof proc, "%s/process.json", dir);
	int lfd = -1, devnull = -1;
	if ((rc = exec_process(q, proc, err)))
		goto done;
	if (q->tty) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 1)) {
			rc = errf(err, E_IO, "exec in %s: console socket: %s", q->id, strerror(errno));
			goto done;
		}
	}
	struct args a;
	args_init(&a, rt);
	arg(&a, "--log");
	arg(&a, log);
	arg(&a, "--log-format");
	arg(&a, "json");
	arg(&a, "exec");
	arg(&a, "--detach");
	arg(&a, "--pid-file");
	arg(&a, pid_file);
	arg(&a, "--process");
	arg(&a, proc);
	if (q->tty) {
		arg(&a, "--console-socket");
		arg(&a, sock);
	}
	arg(&a, q->id);
	/* with a terminal the process has it as stdio, and runc's own output is only errors */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int quiet[3] = {devnull, devnull, devnull};
	struct runproc rp = {.argv = a.v, .out_fd = -1, .stdio = q->tty ? quiet : q->stdio,
			     .timeout_ms = RT_CALL_TIMEOUT_MS, .crun_workaround = is_crun(rt)};
	int status = 0;
	if ((rc = runproc_run(&rp, &status, err))) {
		errwrap(err, rc, "%s exec %s", prog(rt), q->id);
		goto done;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char msg[ERR_LEN / 2] = "", how[32];
		struct buf text = {0};
		if (!slurp(&text, log))
			runtime_msg((const char *)text.data, text.len, msg, sizeof msg);
		buf_free(&text);
		runproc_describe(status, how, sizeof how);
		rc = errf(err, E_FAIL, "%s", *msg ? msg : how);
		goto done;
	}
	if (!(*pid = read_pid_file(pid_file))) {
		rc = errf(err, E_FAIL, "%s exec %s: no pid in %s", prog(rt), q->id, pid_file);
		goto done;
	}
	if (q->tty && (*master = recv_master(lfd)) < 0) {
		kill(*pid, SIGKILL);
		rc = errf(err, E_FAIL, "%s exec %s: no terminal came over the console socket", prog(rt), q->id);
	}
done:
	if (lfd >= 0)
		close(lfd);
	if (devnull >= 0)
		close(devnull);
	unlink(sock);
	unlink(proc);
	unlink(log);
	unlink(pid_file);
	rmdir(dir);
	return rc;
}
