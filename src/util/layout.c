#include "util/layout.h"
#include <stdio.h>

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
	[LAYOUT_WORKER] = "worker",
	[LAYOUT_NODE_SECURITY] = "node-security",
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
