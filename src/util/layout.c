#include "util/layout.h"
#include "util/err.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const names[] = {
	[LAYOUT_SOCKET] = "orch.sock",
	[LAYOUT_PID] = "orch.pid",
	[LAYOUT_LOG] = "orch.log",
	[LAYOUT_IDENTITY] = "identity",
	[LAYOUT_RAFT] = "raft",
	[LAYOUT_RUNTIME_STATE] = "runc",
	[LAYOUT_RUNTIME_NAME] = "runtime",
	[LAYOUT_NET_TAG] = "net-tag",
	[LAYOUT_TASKS] = "tasks",
	[LAYOUT_LAYERS] = "layers",
	[LAYOUT_BLOBS] = "blobs/sha256",
	[LAYOUT_REGISTRY] = "registry",
	[LAYOUT_VOLUMES] = "volumes",
	[LAYOUT_ALLOW_BIND] = "allow-bind",
	[LAYOUT_DATAKEY] = "datakey",
	[LAYOUT_METRICS_LISTEN] = "metrics-listen",
	[LAYOUT_CONSOLE_LISTEN] = "console-listen",
	[LAYOUT_WORKER] = "worker",
	[LAYOUT_NODE_SECURITY] = "node-security",
	[LAYOUT_RESTORE] = "restore",
	[LAYOUT_INSTALLED] = "installed",
};

static const char *const task_names[] = {
	[LAYOUT_TASK_LOG] = "log",
	[LAYOUT_TASK_STATE] = "state",
	[LAYOUT_TASK_BUNDLE] = "bundle",
	[LAYOUT_TASK_HOSTS] = "hosts",
	[LAYOUT_TASK_RESOLV] = "resolv.conf",
	[LAYOUT_TASK_SECRETS] = "secrets",
};

static bool join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return n >= 0 && (size_t)n < cap;
}

bool layout_path(char *out, size_t cap, const char *data_dir, enum layout_item item)
{
	return join(out, cap, data_dir, names[item]);
}

bool layout_task_dir(char *out, size_t cap, const char *data_dir, uint64_t task)
{
	int n = snprintf(out, cap, "%s/%s/%llu", data_dir, names[LAYOUT_TASKS], (unsigned long long)task);
	return n >= 0 && (size_t)n < cap;
}

bool layout_task_file(char *out, size_t cap, const char *data_dir, uint64_t task, enum layout_task_item item)
{
	int n = snprintf(out, cap, "%s/%s/%llu/%s", data_dir, names[LAYOUT_TASKS], (unsigned long long)task, task_names[item]);
	return n >= 0 && (size_t)n < cap;
}

bool layout_volume_dir(char *out, size_t cap, const char *data_dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s/%s", data_dir, names[LAYOUT_VOLUMES], name);
	return n >= 0 && (size_t)n < cap;
}

bool layout_task_path(char *out, size_t cap, const char *task_dir, enum layout_task_item item)
{
	return join(out, cap, task_dir, task_names[item]);
}

int layout_write_text(const char *data_dir, enum layout_item item, const char *text, char *err)
{
	char path[LAYOUT_PATH_MAX], tmp[LAYOUT_PATH_MAX + 8];
	layout_path(path, sizeof path, data_dir, item);
	if (!text)
		return unlink(path) && errno != ENOENT ? errf(err, E_IO, "remove %s: %s", path, strerror(errno)) : 0;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	fputs(text, f);
	int rc = fflush(f) || fsync(fileno(f)) ? -1 : 0;
	if (fclose(f) || rc || rename(tmp, path))
		return errf(err, E_IO, "write %s: %s", path, strerror(errno));
	return 0;
}

int layout_read_text(const char *data_dir, enum layout_item item, char *buf, size_t cap, char *err)
{
	char path[LAYOUT_PATH_MAX];
	layout_path(path, sizeof path, data_dir, item);
	buf[0] = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : errf(err, E_IO, "open %s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	fclose(f);
	return 0;
}
