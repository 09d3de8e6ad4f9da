/* fork/exec with pipes and a deadline. Between fork and exec only async-signal-safe
 * calls are made, because the parent is multithreaded (libuv workers). */
#include "runtime/runproc.h"
#include "util/err.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int find_exe(const char *name, char *out, size_t cap)
{
	if (strchr(name, '/')) {
		snprintf(out, cap, "%s", name);
		return access(out, X_OK);
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);
		if (n > 0 && (size_t)snprintf(out, cap, "%.*s/%s", (int)n, path, name) < cap &&
		    access(out, X_OK) == 0)
			return 0;
		path += n;
		if (*path == ':')
			path++;
	}
	return -1;
}

/* In the child: only async-signal-safe calls from here to exec. */
static void child(const struct runproc *rp, const char *exe, int in_fd, int out_fd, int err_fd, int status_fd)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < 65; s++)
		sigaction(s, &sa, NULL); /* ignored SIGPIPE etc. must not reach runc or containers */
	setsid(); /* a container outlives its agent's process group */
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		goto fail;
	if (rp->crun_workaround) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			goto fail;
		umount2("/sys/fs/cgroup/unified", MNT_DETACH); /* absent is fine */
	}
	/* Keep only stdio and the exec-status pipe (close-on-exec). */
	for (int fd = 3; fd < status_fd; fd++)
		close(fd);
	syscall(SYS_close_range, (unsigned)status_fd + 1, ~0u, 0);
	execve(exe, (char *const *)(uintptr_t)rp->argv, environ);
fail:;
	int e = errno;
	ssize_t w = write(status_fd, &e, sizeof e);
	(void)w;
	_exit(127);
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Reads what is available from *fd into b (bounded); closes it at EOF. */
static void drain(int *fd, struct buf *b)
{
	char tmp[8192];
	for (;;) {
		ssize_t n = read(*fd, tmp, sizeof tmp);
		if (n > 0) {
			if (b && b->len < RUNPROC_MAX_CAPTURE)
				buf_append(b, tmp, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		close(*fd);
		*fd = -1;
		return;
	}
}

/* Parent pid from /proc/<pid>/stat, or -1. */
static int ppid_of(int pid)
{
	char path[64], text[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = 0;
	const char *p = strrchr(text, ')'); /* comm may hold spaces and parens */
	int ppid;
	char state;
	return p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 ? ppid : -1;
}

/* Adds root's descendants (by one /proc scan, repeated until stable) to set. */
static size_t descendants(int root, int *set, size_t cap)
{
	size_t n = 0, before;
	do {
		before = n;
		DIR *d = opendir("/proc");
		struct dirent *e;
		while (d && (e = readdir(d)) && n < cap) {
			int pid = atoi(e->d_name);
			if (pid <= 1)
				continue;
			int pp = ppid_of(pid);
			bool known = false, parent_in = pp == root;
			for (size_t i = 0; i < n; i++) {
				known |= set[i] == pid;
				parent_in |= set[i] == pp;
			}
			if (parent_in && !known)
				set[n++] = pid;
		}
		if (d)
			closedir(d);
	} while (n != before && n < cap);
	return n;
}

/* Kills a process and everything below it. The tree is stopped first so nothing forks
 * or gets re-parented (and lost from view) while it is collected; "runc exec" gives
 * no other handle on what the command started. */
static void kill_tree(int root)
{
	enum { CAP = 1024 };
	int *set = malloc(CAP * sizeof *set);
	if (!set)
		return;
	kill(root, SIGSTOP);
	size_t n = descendants(root, set, CAP);
	for (size_t i = 0; i < n; i++)
		kill(set[i], SIGSTOP);
	n = descendants(root, set, CAP);
	kill(root, SIGKILL);
	for (size_t i = 0; i < n; i++)
		kill(set[i], SIGKILL);
	free(set);
}

static void kill_from_pid_file(const char *path)
{
	if (!path)
		return;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	long pid = 0;
	if (fscanf(f, "%ld", &pid) == 1 && pid > 1 && pid < 1 << 22)
		kill_tree((int)pid);
	fclose(f);
}

/* ---- the process's reaper ----------------------------------------------------------------
 *
 * The one piece of process-wide mutable state in orch, on purpose: child exits belong to
 * the process, not to a node. waitpid(-1) reaps every child of the process and SIGCHLD is
 * delivered once per process, so with several nodes in one process (orch debug hollow, a
 * simulation) whichever node reaps first must not lose another's exit. Hence one table for
 * the process: the children of running runproc_run calls (their status is delivered to
 * that call) and the exits nobody waited for, kept by pid until their owner (the agent of
 * the node that started the container) claims them. fork happens under the lock, so a
 * child cannot be reaped before it is registered. */
struct inflight {
	pid_t pid;
	int status;
	bool done;
	struct inflight *next;
};

#define EXITS_KEPT 256 /* unclaimed exits (oldest dropped: orphans nobody will claim) */

static pthread_mutex_t inflight_mu = PTHREAD_MUTEX_INITIALIZER;
static struct inflight *inflight_head;
static struct {
	int pid, status;
} exits[EXITS_KEPT];
static unsigned nexits;

static void inflight_remove(struct inflight *in)
{
	pthread_mutex_lock(&inflight_mu);
	for (struct inflight **pp = &inflight_head; *pp; pp = &(*pp)->next)
		if (*pp == in) {
			*pp = in->next;
			break;
		}
	pthread_mutex_unlock(&inflight_mu);
}

/* 0 once the child's status is known, 1 while it runs, -1 if it vanished. */
static int try_wait(struct inflight *in, int *status)
{
	int rc = 1;
	pthread_mutex_lock(&inflight_mu);
	if (!in->done) {
		pid_t r;
		while ((r = waitpid(in->pid, &in->status, WNOHANG)) < 0 && errno == EINTR)
			;
		if (r == in->pid)
			in->done = true;
		else if (r < 0)
			rc = -1;
	}
	if (in->done) {
		*status = in->status;
		rc = 0;
	}
	pthread_mutex_unlock(&inflight_mu);
	return rc;
}

static int wait_exit(struct inflight *in, int *status, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		int r = try_wait(in, status);
		if (r <= 0)
			return r;
		if (timeout_ms >= 0 && now_ms() >= end)
			return 1;
		usleep(2000);
	}
}

void runproc_reap(void)
{
	for (;;) {
		int st = 0;
		pthread_mutex_lock(&inflight_mu);
		pid_t pid = waitpid(-1, &st, WNOHANG);
		struct inflight *in = pid > 0 ? inflight_head : NULL;
		while (in && in->pid != pid)
			in = in->next;
		if (in) {
			in->status = st;
			in->done = true;
		} else if (pid > 0) {
			exits[nexits % EXITS_KEPT].pid = pid;
			exits[nexits % EXITS_KEPT].status = st;
			nexits++;
		}
		pthread_mutex_unlock(&inflight_mu);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
	}
}

bool runproc_claim(int pid, int *status)
{
	bool found = false;
	pthread_mutex_lock(&inflight_mu);
	for (unsigned i = 0; pid > 0 && i < EXITS_KEPT && i < nexits; i++)
		if (exits[i].pid == pid) {
			*status = exits[i].status;
			exits[i].pid = 0;
			found = true;
			break;
		}
	pthread_mutex_unlock(&inflight_mu);
	return found;
}

int runproc_run(const struct runproc *rp, int *status, char *err)
{
	char exe[4096];
	*status = 0;
	if (!rp->argv || !rp->argv[0])
		return errf(err, E_INVAL, "no program to run");
	if (find_exe(rp->argv[0], exe, sizeof exe) < 0)
		return errf(err, E_NOTFOUND, "%s: not found in PATH (install it)", rp->argv[0]);

	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
	int rc = 0;
	struct inflight in = {0};
	bool given = rp->stdio != NULL, capture = !given && rp->out_fd < 0;
	if (devnull < 0 || pipe2(st_p, O_CLOEXEC) < 0 || (!given && rp->input && pipe2(in_p, O_CLOEXEC) < 0) ||
	    (capture && pipe2(out_p, O_CLOEXEC) < 0) || (capture && !rp->merge_err && pipe2(err_p, O_CLOEXEC) < 0)) {
		rc = errf(err, E_IO, "pipe: %s", strerror(errno));
		goto out;
	}
	int c_in = given ? rp->stdio[0] : rp->input ? in_p[0] : devnull;
	int c_out = given ? rp->stdio[1] : rp->out_fd >= 0 ? rp->out_fd : out_p[1];
	int c_err = given ? rp->stdio[2] : rp->out_fd >= 0 || rp->merge_err ? c_out : err_p[1];

	pthread_mutex_lock(&inflight_mu);
	pid_t pid = fork();
	if (pid == 0)
		child(rp, exe, c_in, c_out, c_err, st_p[1]);
	if (pid > 0) {
		in.pid = pid;
		in.next = inflight_head;
		inflight_head = &in;
	}
	pthread_mutex_unlock(&inflight_mu);
	if (pid < 0) {
		rc = errf(err, E_IO, "fork: %s", strerror(errno));
		goto out;
	}

	/* Parent: close the child's ends so EOF can be seen. */
	close(st_p[1]), st_p[1] = -1;
	if (in_p[0] >= 0) close(in_p[0]), in_p[0] = -1;
	if (out_p[1] >= 0) close(out_p[1]), out_p[1] = -1;
	if (err_p[1] >= 0) close(err_p[1]), err_p[1] = -1;

	int child_errno = 0;
	ssize_t n;
	while ((n = read(st_p[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof child_errno) {
		wait_exit(&in, status, -1);
		rc = errf(err, E_IO, "run %s: %s", rp->argv[0], strerror(child_errno));
		goto out;
	}

	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	size_t in_off = 0;
	if (in_p[1] >= 0)
		set_nonblock(in_p[1]);
	if (out_p[0] >= 0)
		set_nonblock(out_p[0]);
	if (err_p[0] >= 0)
		set_nonblock(err_p[0]);
	uint64_t deadline = rp->timeout_ms > 0 ? now_ms() + (uint64_t)rp->timeout_ms : 0;
	bool exited = false, timed_out = false;
	while (!exited) {
		struct pollfd pf[4];
		int np = 0, i_in = -1, i_out = -1, i_err = -1;
		if (in_p[1] >= 0) i_in = np, pf[np++] = (struct pollfd){.fd = in_p[1], .events = POLLOUT};
		if (out_p[0] >= 0) i_out = np, pf[np++] = (struct pollfd){.fd = out_p[0], .events = POLLIN};
		if (err_p[0] >= 0) i_err = np, pf[np++] = (struct pollfd){.fd = err_p[0], .events = POLLIN};
		if (pidfd >= 0) pf[np++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		int wait = pidfd >= 0 ? -1 : 10;
		if (deadline) {
			uint64_t now = now_ms();
			int left = now >= deadline ? 0 : (int)(deadline - now);
			if (wait < 0 || left < wait)
				wait = left;
		}
		int r = poll(pf, (nfds_t)np, wait);
		if (r < 0 && errno != EINTR)
			usleep(10000); /* cannot happen with valid fds; keep waiting for the child */
		if (r > 0) {
			if (i_in >= 0 && pf[i_in].revents) {
				ssize_t w = write(in_p[1], rp->input + in_off, rp->input_len - in_off);
				if (w > 0)
					in_off += (size_t)w;
				if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off >= rp->input_len)
					close(in_p[1]), in_p[1] = -1;
			}
			if (i_out >= 0 && pf[i_out].revents)
				drain(&out_p[0], rp->out);
			if (i_err >= 0 && pf[i_err].revents)
				drain(&err_p[0], rp->errout);
		}
		if (in_p[1] >= 0 && rp->input_len == 0)
			close(in_p[1]), in_p[1] = -1;
		int w = wait_exit(&in, status, 0);
		if (w == 0)
			exited = true;
		else if (w < 0) {
			rc = errf(err, E_IO, "wait for %s: %s (was it reaped elsewhere?)", rp->argv[0], strerror(errno));
			break;
		} else if (deadline && now_ms() >= deadline) {
			timed_out = true;
			/* runc exec: kill the command and let runc reap it and exit by itself;
			 * killed first, runc would leave the command's zombie to us (subreaper)
			 * and the container's init could not finish dying until we reap it. */
			kill_from_pid_file(rp->kill_pid_file);
			if (rp->kill_pid_file && wait_exit(&in, status, 2000) == 0) {
				exited = true;
				break;
			}
			/* The child leads its own process group (setsid): this also takes any
			 * helper it started that stayed in the group. */
			kill(-pid, SIGKILL);
			wait_exit(&in, status, -1);
			kill_from_pid_file(rp->kill_pid_file); /* it may have appeared meanwhile */
			exited = true;
		}
	}
	/* Output written just before exit is still in the pipes; grandchildren may keep
	 * them open, so take what is there without waiting for EOF. */
	if (out_p[0] >= 0)
		drain(&out_p[0], rp->out);
	if (err_p[0] >= 0)
		drain(&err_p[0], rp->errout);
	if (pidfd >= 0)
		close(pidfd);
	if (timed_out && !rc)
		rc = errf(err, E_TIMEOUT, "%s timed out after %d ms", rp->argv[0], rp->timeout_ms);
out:
	if (in.pid)
		inflight_remove(&in);
	for (int i = 0; i < 2; i++) {
		if (in_p[i] >= 0) close(in_p[i]);
		if (out_p[i] >= 0) close(out_p[i]);
		if (err_p[i] >= 0) close(err_p[i]);
		if (st_p[i] >= 0) close(st_p[i]);
	}
	if (devnull >= 0)
		close(devnull);
	return rc;
}

void runproc_first_line(const char *text, size_t len, char *out, size_t cap)
{
	size_t i = 0;
	out[0] = 0;
	while (i < len) {
		while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
			i++;
		size_t s = i;
		while (i < len && text[i] != '\n')
			i++;
		size_t e = i;
		while (e > s && (text[e - 1] == ' ' || text[e - 1] == '\r' || text[e - 1] == '\t'))
			e--;
		if (e > s) {
			size_t n = e - s < cap - 1 ? e - s : cap - 1;
			memcpy(out, text + s, n);
			out[n] = 0;
			return;
		}
	}
}

void runproc_describe(int status, char *out, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(out, cap, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, cap, "signal %d", WTERMSIG(status));
	else
		snprintf(out, cap, "status %d", status);
}
