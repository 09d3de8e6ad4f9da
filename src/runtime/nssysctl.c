#include "runtime/nssysctl.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child's exit status: 0, or 1 + the index of the key that failed (up to 250). */
static int child(int nsfd, const char *const *paths, const char *const *vals, size_t n)
{
	if (setns(nsfd, CLONE_NEWNET))
		_exit(255);
	for (size_t i = 0; i < n; i++) {
		int fd = open(paths[i], O_WRONLY | O_CLOEXEC);
		size_t len = strlen(vals[i]);
		if (fd < 0 || write(fd, vals[i], len) != (ssize_t)len)
			_exit(i < 250 ? (int)i + 1 : 250);
		close(fd);
	}
	_exit(0);
}

int nssysctl_apply(const char *netns_path, const char *const *keys, const char *const *vals, size_t n, char *err)
{
	if (!n)
		return 0;
	char (*paths)[256] = xcalloc(n, sizeof *paths);
	const char **pp = xcalloc(n, sizeof *pp);
	for (size_t i = 0; i < n; i++) {
		snprintf(paths[i], sizeof paths[i], "/proc/sys/%s", keys[i]);
		for (char *p = paths[i] + 10; *p; p++)
			if (*p == '.')
				*p = '/';
		pp[i] = paths[i];
	}
	int rc = 0, nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		rc = errf(err, E_IO, "sysctls: open %s: %s", netns_path, strerror(errno));
	pid_t pid = rc ? -1 : fork();
	if (pid == 0)
		child(nsfd, pp, vals, n);
	int st = 0;
	if (!rc && pid < 0)
		rc = errf(err, E_IO, "sysctls: fork: %s", strerror(errno));
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!rc && pid > 0 && (!WIFEXITED(st) || WEXITSTATUS(st))) {
		int c = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
		if (c >= 1 && c <= 250 && (size_t)c <= n)
			rc = errf(err, E_INVAL, "sysctl %s=%s: the kernel refused it", keys[c - 1], vals[c - 1]);
		else
			rc = errf(err, E_IO, "sysctls: could not enter %s", netns_path);
	}
	if (nsfd >= 0)
		close(nsfd);
	free(paths);
	free(pp);
	return rc;
}
