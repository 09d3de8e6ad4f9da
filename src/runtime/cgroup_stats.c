/* Both layouts. v1 "hybrid" (the hosts we test on): one hierarchy per controller under
 * /sys/fs/cgroup, plus the named "systemd" and the cgroup2 "unified" mounts where runc
 * also creates the container's directory. v2: one hierarchy at /sys/fs/cgroup, where
 * runc creates the cgroupsPath directly and enables the controllers of its ancestors. */
#include "runtime/cgroup_stats.h"
#include "util/err.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define CGROUP2_MAGIC 0x63677270 /* linux/magic.h CGROUP2_SUPER_MAGIC */

static int valid_path(const char *path)
{
	return path && path[0] == '/' && !strstr(path, "/../") &&
	       (strlen(path) < 3 || strcmp(path + strlen(path) - 3, "/.."));
}

enum cgroup_layout cgroup_layout_of(const char *root)
{
	struct statfs sf;
	if (statfs(root, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_MAGIC)
		return CGROUP_V2;
	char p[4096];
	snprintf(p, sizeof p, "%s/cgroup.controllers", root);
	return access(p, F_OK) == 0 ? CGROUP_V2 : CGROUP_V1;
}

void cgroup_dir(char *out, size_t size, const char *root, enum cgroup_layout l, const char *ctl, const char *path)
{
	if (l == CGROUP_V2)
		snprintf(out, size, "%s%s", root, path);
	else
		snprintf(out, size, "%s/%s%s", root, ctl, path);
}

/* Reads a small file of dir; returns bytes read or -1 (errno set). */
static ssize_t slurp(const char *dir, const char *file, char *out, size_t cap)
{
	char full[4200];
	snprintf(full, sizeof full, "%s/%s", dir, file);
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

/* A number, or v2's "max" (no limit) as UINT64_MAX. */
static int read_u64(const char *dir, const char *file, uint64_t *v)
{
	char text[64];
	if (slurp(dir, file, text, sizeof text) <= 0)
		return -1;
	if (!strncmp(text, "max", 3)) {
		*v = UINT64_MAX;
		return 0;
	}
	char *e;
	errno = 0;
	unsigned long long x = strtoull(text, &e, 10);
	if (errno || e == text)
		return -1;
	*v = x;
	return 0;
}

/* The value of "key N" in a flat-keyed file (memory.oom_control, memory.events, cpu.stat). */
static void read_key(const char *dir, const char *file, const char *key, uint64_t *v)
{
	char text[1024];
	if (slurp(dir, file, text, sizeof text) <= 0)
		return;
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ' ') {
			*v = strtoull(p + kl + 1, NULL, 10);
			return;
		}
}

int cgroup_stats_read_at(const char *root, enum cgroup_layout l, const char *path, struct cgroup_stats *st, char *err)
{
	memset(st, 0, sizeof *st);
	if (!valid_path(path))
		return errf(err, E_INVAL, "invalid cgroup path \"%s\"", path ? path : "");
	char mem[4096], cpu[4096], pids[4096];
	cgroup_dir(mem, sizeof mem, root, l, "memory", path);
	cgroup_dir(cpu, sizeof cpu, root, l, "cpuacct", path);
	cgroup_dir(pids, sizeof pids, root, l, "pids", path);
	bool v2 = l == CGROUP_V2;
	if (read_u64(mem, v2 ? "memory.current" : "memory.usage_in_bytes", &st->mem_usage) < 0)
		return errno == ENOENT ? errf(err, E_NOTFOUND, "no memory cgroup %s", path)
				       : errf(err, E_IO, "read memory cgroup %s: %s", path, strerror(errno));
	read_u64(mem, v2 ? "memory.peak" : "memory.max_usage_in_bytes", &st->mem_max_usage);
	read_u64(mem, v2 ? "memory.max" : "memory.limit_in_bytes", &st->mem_limit);
	read_key(mem, v2 ? "memory.events" : "memory.oom_control", "oom_kill", &st->oom_kills);
	if (v2) {
		uint64_t us = 0;
		read_key(cpu, "cpu.stat", "usage_usec", &us);
		st->cpu_ns = us * 1000;
	} else {
		read_u64(cpu, "cpuacct.usage", &st->cpu_ns);
	}
	read_u64(pids, "pids.current", &st->pids);
	return 0;
}

int cgroup_stats_read(const char *path, struct cgroup_stats *st, char *err)
{
	return cgroup_stats_read_at(CGROUP_ROOT, cgroup_layout_of(CGROUP_ROOT), path, st, err);
}

static int remove_one(const char *full, int rc, char *err)
{
	if (rmdir(full) == 0 || errno == ENOENT || errno == ENOTDIR)
		return rc;
	if (!rc) /* report the first failure, keep removing the others */
		rc = errf(err, errno == EBUSY ? E_BUSY : E_IO, "remove cgroup %s: %s", full, strerror(errno));
	return rc;
}

int cgroup_remove(const char *path, char *err)
{
	if (!valid_path(path) || !strcmp(path, "/"))
		return errf(err, E_INVAL, "invalid cgroup path \"%s\"", path ? path : "");
	char full[4096];
	if (cgroup_layout_of(CGROUP_ROOT) == CGROUP_V2) {
		snprintf(full, sizeof full, CGROUP_ROOT "%s", path);
		return remove_one(full, 0, err);
	}
	DIR *d = opendir(CGROUP_ROOT);
	if (!d)
		return errf(err, E_IO, "open " CGROUP_ROOT ": %s", strerror(errno));
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(full, sizeof full, CGROUP_ROOT "/%s%s", e->d_name, path);
		rc = remove_one(full, rc, err);
	}
	closedir(d);
	return rc;
}
