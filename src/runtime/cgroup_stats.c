/* cgroup v1 "hybrid" (the layout of the hosts we run on): one hierarchy per controller under /sys/fs/cgroup,
 * plus the named "systemd" and the cgroup2 "unified" mounts where runc also creates
 * the container's directory. */
#include "runtime/cgroup_stats.h"
#include "util/err.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int valid_path(const char *path)
{
	return path && path[0] == '/' && !strstr(path, "/../") &&
	       (strlen(path) < 3 || strcmp(path + strlen(path) - 3, "/.."));
}

/* Reads a small file; returns bytes read or -1 (errno set). */
static ssize_t slurp(const char *ctl, const char *path, const char *file, char *out, size_t cap)
{
	char full[4096];
	snprintf(full, sizeof full, CGROUP_ROOT "/%s%s/%s", ctl, path, file);
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, out, cap - 1);
	int e = errno;
	close(fd);
	errno = e;
	if (n >= 0)
		out[n] = 0;
	return n;
}

static int read_u64(const char *ctl, const char *path, const char *file, uint64_t *v)
{
	char text[64];
	if (slurp(ctl, path, file, text, sizeof text) <= 0)
		return -1;
	char *e;
	errno = 0;
	unsigned long long x = strtoull(text, &e, 10);
	if (errno || e == text)
		return -1;
	*v = x;
	return 0;
}

int cgroup_stats_read(const char *path, struct cgroup_stats *st, char *err)
{
	memset(st, 0, sizeof *st);
	if (!valid_path(path))
		return errf(err, E_INVAL, "invalid cgroup path \"%s\"", path ? path : "");
	if (read_u64("memory", path, "memory.usage_in_bytes", &st->mem_usage) < 0)
		return errno == ENOENT ? errf(err, E_NOTFOUND, "no memory cgroup %s", path)
				       : errf(err, E_IO, "read memory cgroup %s: %s", path, strerror(errno));
	read_u64("memory", path, "memory.max_usage_in_bytes", &st->mem_max_usage);
	read_u64("memory", path, "memory.limit_in_bytes", &st->mem_limit);
	read_u64("cpuacct", path, "cpuacct.usage", &st->cpu_ns);
	read_u64("pids", path, "pids.current", &st->pids);
	char text[512];
	if (slurp("memory", path, "memory.oom_control", text, sizeof text) > 0) {
		const char *p = strstr(text, "oom_kill ");
		if (p)
			st->oom_kills = strtoull(p + 9, NULL, 10);
	}
	return 0;
}

int cgroup_remove(const char *path, char *err)
{
	if (!valid_path(path) || !strcmp(path, "/"))
		return errf(err, E_INVAL, "invalid cgroup path \"%s\"", path ? path : "");
	DIR *d = opendir(CGROUP_ROOT);
	if (!d)
		return errf(err, E_IO, "open " CGROUP_ROOT ": %s", strerror(errno));
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char full[4096];
		snprintf(full, sizeof full, CGROUP_ROOT "/%s%s", e->d_name, path);
		if (rmdir(full) == 0 || errno == ENOENT || errno == ENOTDIR)
			continue;
		if (!rc) /* report the first failure, keep removing the others */
			rc = errf(err, errno == EBUSY ? E_BUSY : E_IO, "remove cgroup %s: %s", full, strerror(errno));
	}
	closedir(d);
	return rc;
}
