/* OCI bundles: turns a task's run_spec into <bundle>/config.json (runtime spec 1.0.2)
 * with Docker-like defaults (mounts, capabilities, masked paths, no new privileges). */
#ifndef ORCH_BUNDLE_H
#define ORCH_BUNDLE_H
#include <stdbool.h>
#include <stdint.h>
#include "util/mem.h"

#define BUNDLE_NETNS_HOST "host"
#define BUNDLE_INIT_PATH "/.orch-init" /* where init_binary appears in the container */

/* A mount beyond the defaults (a task's volumes, agent/volumes.h). */
struct bundle_mount {
	const char *destination, *type, *source;
	const char *const *options; /* NULL-terminated */
};

/* A file or directory of the host bind-mounted read-only into the container. */
struct bundle_bind {
	const char *src, *dst; /* absolute */
};

/* A resource limit (Compose ulimits): type "RLIMIT_NOFILE", ... */
struct bundle_rlimit {
	const char *type;
	uint64_t soft, hard;
};

#define BUNDLE_SECCOMP_UNCONFINED "unconfined"

struct run_spec {
	const char *id;         /* container id, e.g. "orch-<node>-<task>" */
	const char *bundle_dir; /* config.json goes here (created if missing) */
	const char *rootfs;     /* absolute */
	char **args;            /* NULL-terminated, at least one */
	char **env;             /* NULL-terminated "K=V"; NULL: a default PATH only */
	const char *cwd;        /* NULL: "/" */
	const char *hostname;   /* NULL: none set */
	uint32_t uid, gid;
	uint64_t mem_limit, mem_reservation; /* bytes, 0: unlimited */
	uint64_t cpu_milli_limit;            /* 1000 = one core (CFS quota), 0: unlimited */
	uint64_t cpu_milli_shares;           /* relative weight, 1000 = 1024 shares, 0: default */
	int64_t pids_limit;                  /* <= 0: unlimited */
	uint64_t nofile;                     /* RLIMIT_NOFILE; 0: 1048576 capped at our own hard
	                                        limit (raising it needs CAP_SYS_RESOURCE) */
	const char *cgroups_path;            /* absolute, per node: "/orch/<node>/<task>" */
	const char *netns_path;              /* NULL: new netns with lo only; "host": share the host's;
	                                        else a path such as /var/run/netns/NAME */
	bool readonly_rootfs;
	const char *resolv_conf;             /* bind-mounted read-only over /etc/resolv.conf if set */
	const char *hosts_file;              /* likewise /etc/hosts */
	const struct bundle_mount *vol_mounts; /* the task's volumes, after the defaults */
	size_t nvol_mounts;
	const struct bundle_bind *file_binds; /* secrets and configs (secret/secfs.h), read-only */
	size_t nfile_binds;
	const char *init_binary;             /* bind-mounted read-only at BUNDLE_INIT_PATH if set */
	/* NULL: config.json in bundle_dir; else written in this directory (a tmpfs: it holds
	 * the opened environment) and <bundle_dir>/config.json is a symlink to it */
	const char *config_dir;
	/* hardening (orch(8) SECURITY): */
	const char *const *caps;             /* bounding set, NULL-terminated; NULL: caps_default */
	bool privileged;                     /* every device, no seccomp, no masked paths, rw /sys */
	const char *seccomp;                 /* NULL: the default profile (runtime/seccomp.h);
	                                        BUNDLE_SECCOMP_UNCONFINED: none; else a profile
	                                        as JSON text (linux.seccomp of the runtime spec) */
	bool new_privs;                      /* leave no_new_privs off (security_opt) */
	const char *const *sysctl_keys, *const *sysctl_vals; /* namespaced ones, checked by the spec */
	size_t nsysctl;
	const struct bundle_rlimit *rlimits; /* beside the default NOFILE, which one here replaces */
	size_t nrlimits;
	/* --userns-remap: a user namespace whose ids 0..count-1 are host ids base.. The net.*
	 * sysctls then stay out of config.json: the task's netns belongs to the host's user
	 * namespace, so its root cannot write them (the agent does, runtime/nssysctl.h). */
	uint32_t userns_base, userns_count;
};

/* Renders the config.json text (pure; for tests and for bundle_write). */
int bundle_json(const struct run_spec *rs, struct buf *out, char *err);
/* Writes <bundle_dir>/config.json (or <config_dir>/config.json and the symlink)
 * atomically (temp file + rename). */
int bundle_write(const struct run_spec *rs, char *err);

#endif
