/* Container usage read straight from cgroup v1 files (no process spawn), and removal
 * of a deleted container's leftover cgroup directories. Paths are the absolute
 * linux.cgroupsPath given to the runtime, e.g. "/orch/<node>/<task>". */
#ifndef ORCH_CGROUP_STATS_H
#define ORCH_CGROUP_STATS_H
#include <stdint.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

struct cgroup_stats {
	uint64_t mem_usage;     /* memory.usage_in_bytes */
	uint64_t mem_max_usage; /* memory.max_usage_in_bytes */
	uint64_t mem_limit;     /* memory.limit_in_bytes (huge when unlimited) */
	uint64_t oom_kills;     /* memory.oom_control: oom_kill */
	uint64_t cpu_ns;        /* cpuacct.usage */
	uint64_t pids;          /* pids.current */
};

/* Reads all counters; E_NOTFOUND if the memory cgroup does not exist. Counters of a
 * missing controller read as 0. */
int cgroup_stats_read(const char *path, struct cgroup_stats *st, char *err);
/* rmdir the path in every mounted hierarchy; missing dirs are fine, a busy one
 * (processes left) is E_BUSY. */
int cgroup_remove(const char *path, char *err);

#endif
