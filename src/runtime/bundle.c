/* config.json generation. The defaults follow what Docker gives a container, so images
 * behave as their authors expect: its default capability set, masked /proc entries,
 * /dev as tmpfs, read-only sysfs and cgroupfs, NOFILE 1048576, a seccomp allowlist and
 * no_new_privs. */
#include "runtime/bundle.h"
#include "runtime/caps.h"
#include "runtime/seccomp.h"
#include "runtime/rtjson.h"
#include "util/err.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const no_caps[] = {NULL};

static const char *const masked_paths[] = {
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap", NULL,
};
static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};
static const char *const default_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL,
};

#define CPU_PERIOD_US 100000
#define DEFAULT_NOFILE 1048576

static void mount_(struct rtjson_w *w, const char *dst, const char *type, const char *src,
		   const char *const *opts)
{
	rtjson_obj(w);
	rtjson_kstr(w, "destination", dst);
	rtjson_kstr(w, "type", type);
	rtjson_kstr(w, "source", src);
	rtjson_key(w, "options");
	rtjson_strv(w, opts);
	rtjson_obj_end(w);
}

static void mounts(struct rtjson_w *w, const struct run_spec *rs)
{
	rtjson_key(w, "mounts");
	rtjson_arr(w);
	mount_(w, "/proc", "proc", "proc", (const char *const[]){"nosuid", "noexec", "nodev", NULL});
	mount_(w, "/dev", "tmpfs", "tmpfs",
	       (const char *const[]){"nosuid", "strictatime", "mode=755", "size=65536k", NULL});
	mount_(w, "/dev/pts", "devpts", "devpts",
	       (const char *const[]){"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL});
	mount_(w, "/dev/shm", "tmpfs", "shm",
	       (const char *const[]){"nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL});
	mount_(w, "/dev/mqueue", "mqueue", "mqueue", (const char *const[]){"nosuid", "noexec", "nodev", NULL});
	const char *ro = rs->privileged ? "rw" : "ro";
	/* a user namespace may mount sysfs only for a netns it owns, and the task's belongs
	 * to the host's: the host's /sys then, bound read-only */
	if (rs->userns_count)
		mount_(w, "/sys", "bind", "/sys", (const char *const[]){"rbind", "nosuid", "noexec", "nodev", "ro", NULL});
	else
		mount_(w, "/sys", "sysfs", "sysfs", (const char *const[]){"nosuid", "noexec", "nodev", ro, NULL});
	mount_(w, "/sys/fs/cgroup", "cgroup", "cgroup",
	       (const char *const[]){"nosuid", "noexec", "nodev", "relatime", ro, NULL});
	const char *const bind_ro[] = {"rbind", "rprivate", "ro", NULL};
	if (rs->resolv_conf)
		mount_(w, "/etc/resolv.conf", "bind", rs->resolv_conf, bind_ro);
	if (rs->hosts_file)
		mount_(w, "/etc/hosts", "bind", rs->hosts_file, bind_ro);
	for (size_t i = 0; i < rs->nvol_mounts; i++) {
		const struct bundle_mount *m = &rs->vol_mounts[i];
		mount_(w, m->destination, m->type, m->source, m->options);
	}
	if (rs->init_binary)
		mount_(w, BUNDLE_INIT_PATH, "bind", rs->init_binary, bind_ro);
	/* the secrets' tmpfs is nosuid, nodev, noexec on the host: said again here, as a user
	 * namespace may not remount a bind without flags its source has locked */
	const char *const secret_ro[] = {"rbind", "rprivate", "ro", "nosuid", "nodev", "noexec", NULL};
	for (size_t i = 0; i < rs->nfile_binds; i++)
		mount_(w, rs->file_binds[i].dst, "bind", rs->file_binds[i].src, secret_ro);
	rtjson_arr_end(w);
}

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_CPU", RLIMIT_CPU},
	{"RLIMIT_DATA", RLIMIT_DATA}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_LOCKS", RLIMIT_LOCKS},
	{"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
	{"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_RSS", RLIMIT_RSS},
	{"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
	{"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

/* Without CAP_SYS_RESOURCE a node cannot give a task more than its own hard limit (the
 * runtime would fail the task): the limit is lowered to it, as the default NOFILE is. */
static void rlimit_clamp(const char *type, uint64_t *soft, uint64_t *hard)
{
	if (prctl(PR_CAPBSET_READ, 24 /* CAP_SYS_RESOURCE */, 0, 0, 0) == 1)
		return;
	for (size_t i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++) {
		struct rlimit rl;
		if (strcmp(rlimit_names[i].name, type) || getrlimit(rlimit_names[i].resource, &rl))
			continue;
		uint64_t max = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
		if (*hard > max)
			*hard = max;
		if (*soft > *hard)
			*soft = *hard;
	}
}

static void rlimit_(struct rtjson_w *w, const char *type, uint64_t soft, uint64_t hard)
{
	rlimit_clamp(type, &soft, &hard);
	rtjson_obj(w);
	rtjson_kstr(w, "type", type);
	rtjson_ku64(w, "hard", hard);
	rtjson_ku64(w, "soft", soft);
	rtjson_obj_end(w);
}

static void process(struct rtjson_w *w, const struct run_spec *rs)
{
	rtjson_key(w, "process");
	rtjson_obj(w);
	rtjson_kbool(w, "terminal", false);
	rtjson_key(w, "user");
	rtjson_obj(w);
	rtjson_ku64(w, "uid", rs->uid);
	rtjson_ku64(w, "gid", rs->gid);
	rtjson_obj_end(w);
	rtjson_key(w, "args");
	rtjson_strv(w, (const char *const *)(uintptr_t)rs->args);
	rtjson_key(w, "env");
	rtjson_strv(w, rs->env ? (const char *const *)(uintptr_t)rs->env : default_env);
	rtjson_kstr(w, "cwd", rs->cwd && *rs->cwd ? rs->cwd : "/");
	/* Like Docker: a non-root user keeps the bounding set only, so it needs file
	 * capabilities or setuid binaries to gain any. */
	const char *const *caps = rs->caps ? rs->caps : caps_default;
	const char *const *eff = rs->uid == 0 ? caps : no_caps;
	rtjson_key(w, "capabilities");
	rtjson_obj(w);
	rtjson_key(w, "bounding");
	rtjson_strv(w, caps);
	rtjson_key(w, "effective");
	rtjson_strv(w, eff);
	rtjson_key(w, "permitted");
	rtjson_strv(w, eff);
	rtjson_obj_end(w);
	rtjson_key(w, "rlimits");
	rtjson_arr(w);
	bool nofile_given = false;
	for (size_t i = 0; i < rs->nrlimits; i++) {
		rlimit_(w, rs->rlimits[i].type, rs->rlimits[i].soft, rs->rlimits[i].hard);
		nofile_given |= !strcmp(rs->rlimits[i].type, "RLIMIT_NOFILE");
	}
	uint64_t nofile = rs->nofile;
	if (!nofile) {
		struct rlimit rl;
		nofile = DEFAULT_NOFILE;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < nofile)
			nofile = rl.rlim_max;
	}
	if (!nofile_given)
		rlimit_(w, "RLIMIT_NOFILE", nofile, nofile);
	rtjson_arr_end(w);
	rtjson_kbool(w, "noNewPrivileges", !rs->new_privs);
	rtjson_obj_end(w);
}

static void resources(struct rtjson_w *w, const struct run_spec *rs)
{
	rtjson_key(w, "resources");
	rtjson_obj(w);
	rtjson_key(w, "devices");
	rtjson_arr(w); /* deny all; runc adds its default allowed devices after this */
	rtjson_obj(w);
	rtjson_kbool(w, "allow", rs->privileged);
	rtjson_kstr(w, "access", "rwm");
	rtjson_obj_end(w);
	rtjson_arr_end(w);
	if (rs->mem_limit || rs->mem_reservation) {
		rtjson_key(w, "memory");
		rtjson_obj(w);
		if (rs->mem_limit) {
			rtjson_ku64(w, "limit", rs->mem_limit);
			rtjson_ku64(w, "swap", rs->mem_limit); /* memory+swap = limit: no swap use */
		}
		if (rs->mem_reservation)
			rtjson_ku64(w, "reservation", rs->mem_reservation);
		rtjson_obj_end(w);
	}
	if (rs->cpu_milli_limit || rs->cpu_milli_shares) {
		rtjson_key(w, "cpu");
		rtjson_obj(w);
		if (rs->cpu_milli_shares) {
			uint64_t shares = rs->cpu_milli_shares * 1024 / 1000;
			rtjson_ku64(w, "shares", shares < 2 ? 2 : shares);
		}
		if (rs->cpu_milli_limit) {
			uint64_t quota = rs->cpu_milli_limit * CPU_PERIOD_US / 1000;
			rtjson_ki64(w, "quota", (int64_t)(quota < 1000 ? 1000 : quota));
			rtjson_ku64(w, "period", CPU_PERIOD_US);
		}
		rtjson_obj_end(w);
	}
	if (rs->pids_limit > 0) {
		rtjson_key(w, "pids");
		rtjson_obj(w);
		rtjson_ki64(w, "limit", rs->pids_limit);
		rtjson_obj_end(w);
	}
	rtjson_obj_end(w);
}

static void ns(struct rtjson_w *w, const char *type, const char *path)
{
	rtjson_obj(w);
	rtjson_kstr(w, "type", type);
	if (path)
		rtjson_kstr(w, "path", path);
	rtjson_obj_end(w);
}

static void linux_(struct rtjson_w *w, const struct run_spec *rs)
{
	bool host_net = rs->netns_path && !strcmp(rs->netns_path, BUNDLE_NETNS_HOST);
	rtjson_key(w, "linux");
	rtjson_obj(w);
	resources(w, rs);
	rtjson_kstr(w, "cgroupsPath", rs->cgroups_path);
	rtjson_key(w, "namespaces");
	rtjson_arr(w);
	ns(w, "pid", NULL);
	ns(w, "ipc", NULL);
	ns(w, "uts", NULL);
	ns(w, "mount", NULL);
	if (!host_net)
		ns(w, "network", rs->netns_path);
	if (rs->userns_count)
		ns(w, "user", NULL);
	rtjson_arr_end(w);
	if (rs->userns_count) {
		const char *const keys[] = {"uidMappings", "gidMappings"};
		for (int i = 0; i < 2; i++) {
			rtjson_key(w, keys[i]);
			rtjson_arr(w);
			rtjson_obj(w);
			rtjson_ku64(w, "containerID", 0);
			rtjson_ku64(w, "hostID", rs->userns_base);
			rtjson_ku64(w, "size", rs->userns_count);
			rtjson_obj_end(w);
			rtjson_arr_end(w);
		}
	}
	rtjson_key(w, "sysctl");
	rtjson_obj(w);
	/* As Docker does: any user may bind low ports inside its own netns. */
	bool port_start = false;
	for (size_t i = 0; i < rs->nsysctl; i++)
		port_start |= !strcmp(rs->sysctl_keys[i], "net.ipv4.ip_unprivileged_port_start");
	if (!host_net && !port_start && !rs->userns_count)
		rtjson_kstr(w, "net.ipv4.ip_unprivileged_port_start", "0");
	for (size_t i = 0; i < rs->nsysctl; i++)
		if (!rs->userns_count || strncmp(rs->sysctl_keys[i], "net.", 4))
			rtjson_kstr(w, rs->sysctl_keys[i], rs->sysctl_vals[i]);
	rtjson_obj_end(w);
	if (!rs->privileged) {
		rtjson_key(w, "maskedPaths");
		rtjson_strv(w, masked_paths);
		rtjson_key(w, "readonlyPaths");
		rtjson_strv(w, readonly_paths);
	}
	if (rs->privileged || (rs->seccomp && !strcmp(rs->seccomp, BUNDLE_SECCOMP_UNCONFINED))) {
		/* no filter */
	} else if (rs->seccomp) {
		struct rtjson_v v;
		rtjson_parse(rs->seccomp, strlen(rs->seccomp), &v); /* checked by check_spec */
		rtjson_key(w, "seccomp");
		rtjson_raw(w, &v);
	} else {
		rtjson_key(w, "seccomp");
		seccomp_default(w, rs->caps ? rs->caps : caps_default);
	}
	rtjson_obj_end(w);
}

static int check_spec(const struct run_spec *rs, char *err)
{
	if (!rs->id || !*rs->id)
		return errf(err, E_INVAL, "container id is empty");
	if (!rs->bundle_dir || !*rs->bundle_dir)
		return errf(err, E_INVAL, "container %s: bundle directory is empty", rs->id);
	if (!rs->rootfs || rs->rootfs[0] != '/')
		return errf(err, E_INVAL, "container %s: rootfs must be an absolute path", rs->id);
	if (!rs->args || !rs->args[0] || !*rs->args[0])
		return errf(err, E_INVAL, "container %s: no command to run", rs->id);
	if (!rs->cgroups_path || rs->cgroups_path[0] != '/')
		return errf(err, E_INVAL, "container %s: cgroups path must be absolute and per node", rs->id);
	if (rs->netns_path && strcmp(rs->netns_path, BUNDLE_NETNS_HOST) && rs->netns_path[0] != '/')
		return errf(err, E_INVAL, "container %s: netns path must be absolute or \"host\"", rs->id);
	for (size_t i = 0; i < rs->nvol_mounts; i++)
		if (!rs->vol_mounts[i].destination || rs->vol_mounts[i].destination[0] != '/')
			return errf(err, E_INVAL, "container %s: a mount destination must be absolute", rs->id);
	if (rs->userns_count && (rs->privileged || (rs->netns_path && !strcmp(rs->netns_path, BUNDLE_NETNS_HOST))))
		return errf(err, E_UNSUPP, "container %s: a remapped user namespace takes neither privileged nor the host's network",
			    rs->id);
	struct rtjson_v v;
	/* the profile comes from a spec file: one object, or it could add keys beside it */
	if (rs->seccomp && strcmp(rs->seccomp, BUNDLE_SECCOMP_UNCONFINED) &&
	    (rtjson_parse(rs->seccomp, strlen(rs->seccomp), &v) || rtjson_type(&v) != 'o'))
		return errf(err, E_INVAL, "container %s: the seccomp profile is not a JSON object", rs->id);
	for (size_t i = 0; i < rs->nsysctl; i++)
		if (!*rs->sysctl_keys[i] || strpbrk(rs->sysctl_keys[i], "\"/ ") || strchr(rs->sysctl_vals[i], '\n'))
			return errf(err, E_INVAL, "container %s: sysctl %s is not a valid name", rs->id, rs->sysctl_keys[i]);
	return 0;
}

int bundle_json(const struct run_spec *rs, struct buf *out, char *err)
{
	int rc = check_spec(rs, err);
	if (rc)
		return rc;
	struct rtjson_w w;
	rtjson_init(&w, out);
	rtjson_obj(&w);
	rtjson_kstr(&w, "ociVersion", "1.0.2");
	process(&w, rs);
	rtjson_key(&w, "root");
	rtjson_obj(&w);
	rtjson_kstr(&w, "path", rs->rootfs);
	rtjson_kbool(&w, "readonly", rs->readonly_rootfs);
	rtjson_obj_end(&w);
	if (rs->hostname && *rs->hostname)
		rtjson_kstr(&w, "hostname", rs->hostname);
	mounts(&w, rs);
	linux_(&w, rs);
	rtjson_obj_end(&w);
	buf_append(out, "\n", 1);
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int bundle_write(const struct run_spec *rs, char *err)
{
	struct buf b = {0};
	int rc = bundle_json(rs, &b, err);
	if (rc)
		goto out;
	if (mkdir(rs->bundle_dir, 0700) < 0 && errno != EEXIST) {
		rc = errf(err, E_IO, "create bundle directory %s: %s", rs->bundle_dir, strerror(errno));
		goto out;
	}
	const char *dir = rs->config_dir ? rs->config_dir : rs->bundle_dir;
	char *tmp = xasprintf("%s/config.json.tmp", dir);
	char *dst = xasprintf("%s/config.json", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0)
		rc = errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	if (!rc && rename(tmp, dst) < 0)
		rc = errf(err, E_IO, "rename to %s: %s", dst, strerror(errno));
	if (rc)
		unlink(tmp);
	if (!rc && rs->config_dir) {
		char *ltmp = xasprintf("%s/config.json.tmp", rs->bundle_dir);
		char *link = xasprintf("%s/config.json", rs->bundle_dir);
		unlink(ltmp);
		if (symlink(dst, ltmp) < 0 || rename(ltmp, link) < 0) {
			rc = errf(err, E_IO, "link %s to %s: %s", link, dst, strerror(errno));
			unlink(ltmp);
		}
		free(ltmp);
		free(link);
	}
	free(tmp);
	free(dst);
out:
	buf_free(&b);
	return rc;
}
