/* The default seccomp profile as a table: groups of calls, each allowed always, only with
 * a capability in the task's bounding set, only without one, or only with some argument
 * values. Names the kernel of an architecture lacks are skipped by runc, so one list
 * serves the native ABI and its compat ABIs (x86 and x32 beside amd64, arm beside arm64);
 * names newer than runc's libseccomp are skipped too, and runc makes calls newer than
 * every call the profile names fail with ENOSYS rather than EPERM, so programs fall back
 * to older ones. */
#include "runtime/seccomp.h"
#include <string.h>

#define EPERM_ 1
#define ENOSYS_ 38

/* The namespace bits of clone(2)'s flags: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
 * NEWPID, NEWNET. A task without CAP_SYS_ADMIN may clone only with none of them set. */
#define CLONE_NS_MASK 0x7E020000ull
#define AF_VSOCK_ 40

/* ---- the calls ---- */

static const char *const files_io[] = {
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
	"open", "openat", "openat2", "close", "close_range", "creat", "lseek", "_llseek", "dup", "dup2", "dup3",
	"pipe", "pipe2", "fcntl", "fcntl64", "ioctl", "flock", "fsync", "fdatasync", "sync", "syncfs",
	"sync_file_range", "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate", "fadvise64",
	"fadvise64_64", "readahead", "sendfile", "sendfile64", "splice", "tee", "vmsplice", "copy_file_range",
	"stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "newfstatat", "fstatat64", "statx", "statfs",
	"statfs64", "fstatfs", "fstatfs64", "access", "faccessat", "faccessat2", "readlink", "readlinkat",
	"getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "rename", "renameat",
	"renameat2", "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "mknod", "mknodat", "chmod",
	"fchmod", "fchmodat", "fchmodat2", "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32",
	"umask", "utime", "utimes", "utimensat", "utimensat_time64", "futimesat", "getxattr", "lgetxattr",
	"fgetxattr", "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr",
	"lremovexattr", "fremovexattr", "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	"fanotify_mark", NULL,
};

static const char *const memory[] = {
	"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "pkey_mprotect", "pkey_alloc", "pkey_free",
	"madvise", "mlock", "mlock2", "munlock", "mlockall", "munlockall", "mincore", "msync",
	"remap_file_pages", "membarrier", "memfd_create", "memfd_secret", "set_tid_address", "cachestat", "mseal",
	"map_shadow_stack", "process_mrelease", NULL,
};

static const char *const processes[] = {
	"fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid", "kill", "tkill",
	"tgkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
	"getpriority", "setpriority", "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
	"sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
	"sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_getattr",
	"sched_setattr", "prctl", "capget", "capset", "getrlimit", "setrlimit", "prlimit64", "ugetrlimit",
	"getrusage", "times", "uname", "sysinfo", "getrandom", "rseq", "set_robust_list", "get_robust_list",
	"futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "restart_syscall", "pidfd_open", "pidfd_send_signal",
	"ioprio_get", "ioprio_set", "seccomp", "getcpu", "get_thread_area", "set_thread_area",
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "rt_sigaction",
	"rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending", "rt_sigtimedwait",
	"rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaction", "sigprocmask",
	"sigreturn", "sigsuspend", "sigpending", "sigaltstack", "signal", "signalfd", "signalfd4", "pause",
	"alarm", NULL,
};

/* Changing ids needs CAP_SETUID/CAP_SETGID in the task's own user namespace: the kernel
 * checks that, the filter need not. */
static const char *const ids[] = {
	"getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32", "setuid",
	"setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32", "setresuid",
	"setresuid32", "setresgid", "setresgid32", "getresuid", "getresuid32", "getresgid", "getresgid32",
	"getgroups", "getgroups32", "setgroups", "setgroups32", "setfsuid", "setfsuid32", "setfsgid", "setfsgid32",
	NULL,
};

/* Reading clocks and timers; adjtimex and clock_adjtime change the clock only with
 * CAP_SYS_TIME, which the kernel checks. */
static const char *const timing[] = {
	"time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
	"clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "timer_create", "timer_delete",
	"timer_settime", "timer_settime64", "timer_gettime", "timer_gettime64", "timer_getoverrun",
	"timerfd_create", "timerfd_settime", "timerfd_settime64", "timerfd_gettime", "timerfd_gettime64",
	"getitimer", "setitimer", "adjtimex", "clock_adjtime", "clock_adjtime64", NULL,
};

static const char *const events[] = {
	"poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64", "epoll_create",
	"epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old", "epoll_pwait",
	"epoll_pwait2", "eventfd", "eventfd2", "io_setup", "io_destroy", "io_submit", "io_cancel",
	"io_getevents", "io_pgetevents", "io_pgetevents_time64", NULL,
};

/* socket itself is filtered by its family (below) */
static const char *const net[] = {
	"socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
	"getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
	"recvmmsg_time64", "shutdown", "socketcall", "send", "recv", NULL,
};

/* System V and POSIX IPC live in the task's own IPC namespace. */
static const char *const ipc[] = {
	"msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semtimedop_time64", "semctl",
	"shmget", "shmat", "shmdt", "shmctl", "ipc", "mq_open", "mq_unlink", "mq_timedsend",
	"mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64", "mq_notify", "mq_getsetattr", NULL,
};

#if defined(__x86_64__) || defined(__i386__)
static const char *const arch_own[] = {"arch_prctl", "modify_ldt", NULL};
static const char *const arch_names[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", NULL};
#elif defined(__aarch64__) || defined(__arm__)
static const char *const arch_own[] = {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
				       "breakpoint", "cacheflush", "set_tls", NULL};
static const char *const arch_names[] = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", NULL};
#else
static const char *const arch_own[] = {NULL};
static const char *const arch_names[] = {NULL}; /* the native one only */
#endif

/* Calls the capability named beside them governs. */
static const char *const sys_admin[] = {
	"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
	"mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "perf_event_open", "quotactl",
	"quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare", NULL,
};
static const char *const sys_ptrace[] = {
	"ptrace", "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", NULL,
};
static const char *const sys_module[] = {"init_module", "finit_module", "delete_module", NULL};
static const char *const sys_boot[] = {"reboot", "kexec_load", "kexec_file_load", NULL};
static const char *const sys_time[] = {"settimeofday", "stime", "clock_settime", "clock_settime64", NULL};
static const char *const sys_nice[] = {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node",
				       "move_pages", "migrate_pages", NULL};
static const char *const sys_rawio[] = {"iopl", "ioperm", NULL};
static const char *const sys_pacct[] = {"acct", NULL};
static const char *const sys_chroot[] = {"chroot", NULL};
static const char *const sys_tty[] = {"vhangup", NULL};
static const char *const syslog_[] = {"syslog", NULL};
static const char *const bpf_[] = {"bpf", NULL};
static const char *const perfmon[] = {"perf_event_open", NULL};
static const char *const dac_read_search[] = {"open_by_handle_at", NULL};

static const char *const clone_[] = {"clone", NULL};
static const char *const clone3_[] = {"clone3", NULL};
static const char *const socket_[] = {"socket", NULL};
static const char *const personality_[] = {"personality", NULL};

const char *const seccomp_guarded[] = {
	"keyctl", "add_key", "request_key", "bpf", "mount", "umount", "umount2", "ptrace", "kexec_load",
	"kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
	"name_to_handle_at", "perf_event_open", "userfaultfd", "unshare", "setns", "clone", "clone3",
	"personality", "socket", "reboot", "swapon", "swapoff", "acct", "settimeofday", "stime",
	"clock_settime", "pivot_root", "lookup_dcookie", "quotactl", "iopl", "ioperm", "create_module",
	"get_kernel_syms", "query_module", "nfsservctl", "sysfs", "_sysctl", "uselib", "ustat", "vm86",
	"vm86old", "mbind", "set_mempolicy", "get_mempolicy", "move_pages", "kcmp", "process_vm_readv",
	"process_vm_writev", "fsopen", "fsmount", "fsconfig", "fspick", "move_mount", "open_tree",
	"mount_setattr", "io_uring_setup", "io_uring_enter", "io_uring_register", "syslog", "vhangup",
	"sethostname", "setdomainname", "pidfd_getfd", "process_madvise", "fanotify_init", "quotactl_fd",
	NULL,
};

/* ---- the rules ---- */

enum when { ALWAYS, WITH_CAP, WITHOUT_CAP };

struct arg {
	unsigned index;
	unsigned long long value, value2;
	const char *op;
};

struct rule {
	const char *const *names;
	enum when when;
	const char *cap;
	int errno_ret;        /* 0: allow; else the call fails with this errno */
	struct arg args[1];   /* at most one comparison per rule; op NULL: none */
};

#define ALLOW(list) {list, ALWAYS, NULL, 0, {{0, 0, 0, NULL}}}
#define CAP(c, list) {list, WITH_CAP, c, 0, {{0, 0, 0, NULL}}}
#define PERSONALITY(v) {personality_, ALWAYS, NULL, 0, {{0, (v), 0, "SCMP_CMP_EQ"}}}

static const struct rule rules[] = {
	ALLOW(files_io), ALLOW(memory), ALLOW(processes), ALLOW(ids), ALLOW(timing), ALLOW(events), ALLOW(net),
	ALLOW(ipc), ALLOW(arch_own),
	/* every family but vsock, which reaches the host's hypervisor */
	{socket_, ALWAYS, NULL, 0, {{0, AF_VSOCK_, 0, "SCMP_CMP_NE"}}},
	/* the execution domains programs use: Linux, 32-bit Linux, a 2.6 uname, and a query */
	PERSONALITY(0x0), PERSONALITY(0x8), PERSONALITY(0x20000), PERSONALITY(0x20008), PERSONALITY(0xffffffffull),
	/* Threads and processes, but no new namespace (a user namespace would give the task a
	 * full capability set over it); clone3 passes its flags in memory the filter cannot
	 * read, so it says ENOSYS and libc falls back to clone. */
	{clone_, WITHOUT_CAP, "CAP_SYS_ADMIN", 0, {{0, CLONE_NS_MASK, 0, "SCMP_CMP_MASKED_EQ"}}},
	{clone3_, WITHOUT_CAP, "CAP_SYS_ADMIN", ENOSYS_, {{0, 0, 0, NULL}}},
	CAP("CAP_SYS_ADMIN", sys_admin), CAP("CAP_SYS_PTRACE", sys_ptrace), CAP("CAP_SYS_MODULE", sys_module),
	CAP("CAP_SYS_BOOT", sys_boot), CAP("CAP_SYS_TIME", sys_time), CAP("CAP_SYS_NICE", sys_nice),
	CAP("CAP_SYS_RAWIO", sys_rawio), CAP("CAP_SYS_PACCT", sys_pacct), CAP("CAP_SYS_CHROOT", sys_chroot),
	CAP("CAP_SYS_TTY_CONFIG", sys_tty), CAP("CAP_SYSLOG", syslog_), CAP("CAP_BPF", bpf_),
	CAP("CAP_PERFMON", perfmon), CAP("CAP_DAC_READ_SEARCH", dac_read_search),
};
/* keyctl, add_key, request_key (the kernel keyring is not namespaced), userfaultfd,
 * swapon/swapoff, pivot_root (runc needs it only before the filter is loaded), the
 * obsolete module and sysctl calls and io_uring (its operations bypass this filter) are
 * in no rule: denied whatever the capabilities. */
static bool has_cap(const char *const *caps, const char *cap)
{
	for (size_t i = 0; caps && caps[i]; i++)
		if (!strcmp(caps[i], cap))
			return true;
	return false;
}

static bool applies(const struct rule *r, const char *const *caps)
{
	switch (r->when) {
	case WITH_CAP: return has_cap(caps, r->cap);
	case WITHOUT_CAP: return !has_cap(caps, r->cap);
	default: return true;
	}
}

static bool listed(const char *const *names, const char *name)
{
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

enum seccomp_verdict seccomp_verdict_of(const char *name, const char *const *caps)
{
	enum seccomp_verdict v = SECCOMP_DENY;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		const struct rule *r = &rules[i];
		if (!applies(r, caps) || r->errno_ret || !listed(r->names, name))
			continue;
		if (!r->args[0].op)
			return SECCOMP_ALLOW;
		v = SECCOMP_ALLOW_ARGS;
	}
	return v;
}

void seccomp_default(struct rtjson_w *w, const char *const *caps)
{
	rtjson_obj(w);
	rtjson_kstr(w, "defaultAction", "SCMP_ACT_ERRNO");
	rtjson_ku64(w, "defaultErrnoRet", EPERM_);
	rtjson_key(w, "architectures");
	rtjson_strv(w, arch_names);
	rtjson_key(w, "syscalls");
	rtjson_arr(w);
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		const struct rule *r = &rules[i];
		if (!applies(r, caps) || !r->names[0])
			continue;
		rtjson_obj(w);
		rtjson_key(w, "names");
		rtjson_strv(w, r->names);
		rtjson_kstr(w, "action", r->errno_ret ? "SCMP_ACT_ERRNO" : "SCMP_ACT_ALLOW");
		if (r->errno_ret)
			rtjson_ku64(w, "errnoRet", (uint64_t)r->errno_ret);
		if (r->args[0].op) {
			rtjson_key(w, "args");
			rtjson_arr(w);
			rtjson_obj(w);
			rtjson_ku64(w, "index", r->args[0].index);
			rtjson_ku64(w, "value", r->args[0].value);
			rtjson_ku64(w, "valueTwo", r->args[0].value2);
			rtjson_kstr(w, "op", r->args[0].op);
			rtjson_obj_end(w);
			rtjson_arr_end(w);
		}
		rtjson_obj_end(w);
	}
	rtjson_arr_end(w);
	rtjson_obj_end(w);
}
