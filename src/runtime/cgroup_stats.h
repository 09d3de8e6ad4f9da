/* Container usage read straight from cgroup files (no process spawn), and removal of a
 * deleted container's leftover cgroup directories, on either layout a host may have:
 * v1 (one hierarchy per controller, as on the "hybrid" hosts we test on) or v2 (the
 * unified hierarchy most current distributions run). Paths are the absolute
 * linux.cgroupsPath given to the runtime, e.g. "/orch/<node>/<task>". */
#ifndef ORCH_CGROUP_STATS_H
#define ORCH_CGROUP_STATS_H
#include <stddef.h>
#include <stdint.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

enum cgroup_layout { CGROUP_V1 = 1, CGROUP_V2 = 2 };

struct cgroup_stats {
	uint64_t mem_usage;     /* v1 memory.usage_in_bytes, v2 memory.current */
	uint64_t mem_max_usage; /* v1 memory.max_usage_in_bytes, v2 memory.peak (0 before 5.19) */
	uint64_t mem_limit;     /* v1 memory.limit_in_bytes, v2 memory.max; huge when unlimited */
	uint64_t oom_kills;     /* oom_kill of v1 memory.oom_control, v2 memory.events */
	uint64_t cpu_ns;        /* v1 cpuacct.usage, v2 cpu.stat usage_usec × 1000 */
	uint64_t pids;          /* pids.current */
};

/* v2 when root is a cgroup2 mount (its statfs magic) or holds cgroup.controllers (the
 * unified hierarchy's root file; a hybrid host keeps it under root/unified), else v1. */
enum cgroup_layout cgroup_layout_of(const char *root);
/* Where controller ctl's files of path live: <root>/<ctl><path> (v1), <root><path> (v2). */
void cgroup_dir(char *out, size_t size, const char *root, enum cgroup_layout l, const char *ctl, const char *path);

/* Reads all counters; E_NOTFOUND if the memory cgroup does not exist. Counters of a
 * missing controller read as 0. cgroup_stats_read is the host's (CGROUP_ROOT). */
int cgroup_stats_read_at(const char *root, enum cgroup_layout l, const char *path, struct cgroup_stats *st, char *err);
int cgroup_stats_read(const char *path, struct cgroup_stats *st, char *err);
/* rmdir the path in every mounted hierarchy; missing dirs are fine, a busy one
 * (processes left) is E_BUSY. */
int cgroup_remove(const char *path, char *err);

#endif
