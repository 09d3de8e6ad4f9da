/* The OCI runtime as an external program (runc, or crun with the hybrid-cgroup
 * workaround: on a cgroup v1 "hybrid" host crun runs in a private mount namespace without
 * the cgroup2 mount). Every call is synchronous and thread-safe: run it on a
 * libuv worker. Each node passes its own state_dir (runc --root).
 *
 * Reaping: the agent sets PR_SET_CHILD_SUBREAPER so a container's init is re-parented to
 * it and its exit status can be collected. It must reap with runproc_reap (runproc.h),
 * which hands the statuses of runc processes to the calls waiting for them and passes
 * every other pid (container inits, orphans) to the agent's callback. Reap promptly:
 * a container's init cannot finish dying (and delete fails with "container init still
 * running") while a zombie of its namespace waits for its subreaper. */
#ifndef ORCH_RUNC_H
#define ORCH_RUNC_H
#include <stdbool.h>
#include "util/mem.h"

struct rt {
	const char *runtime;   /* "runc" (default when NULL) or "crun", or a path to either */
	const char *state_dir; /* per node, absolute */
};

enum rt_status { RT_UNKNOWN, RT_CREATING, RT_CREATED, RT_RUNNING, RT_PAUSED, RT_STOPPED };

struct rt_info {
	char id[128];
	char bundle[512];
	int pid; /* 0 when stopped */
	enum rt_status status;
};

#define RT_ID_MAX 127

const char *rt_status_name(enum rt_status s);
enum rt_status rt_status_parse(const char *s);
/* Ids are [A-Za-z0-9_.-], 1..RT_ID_MAX chars, not starting with '-' or '.'. */
bool rt_id_valid(const char *id);

/* runc create: the container's stdout and stderr append to log_path (NULL: discarded),
 * stdin is /dev/null; *pid_out gets the init pid (host namespace). The runtime's own
 * log goes to <bundle>/runtime.log; its last error becomes the message on failure. */
int rt_create(const struct rt *rt, const char *id, const char *bundle, const char *log_path,
	      int *pid_out, char *err);
int rt_start(const struct rt *rt, const char *id, char *err);
/* all: signal every process in the container's cgroup (runc kill --all). */
int rt_kill(const struct rt *rt, const char *id, int sig, bool all, char *err);
/* E_NOTFOUND when the container does not exist. */
int rt_delete(const struct rt *rt, const char *id, bool force, char *err);
/* E_NOTFOUND when the container does not exist; pid is 0 once stopped. */
int rt_state(const struct rt *rt, const char *id, enum rt_status *status, int *pid, char *err);
/* Calls cb for every container in state_dir (after an agent restart); cb returning
 * non-zero stops the walk and becomes the result. */
int rt_list(const struct rt *rt, int (*cb)(const struct rt_info *ci, void *arg), void *arg, char *err);
/* Runs argv inside a running container, stdout+stderr into out (bounded). 0 with the
 * command's exit code, or E_TIMEOUT after timeout_ms (0: none): the exec'd process is
 * killed by pid, not just runc exec, so nothing lingers in the container. */
int rt_exec(const struct rt *rt, const char *id, const char *const *argv, int timeout_ms,
	    int *exit_code, struct buf *out, char *err);
/* orch exec: starts argv in a running container, detached, with the settings of the
 * container's own process (user, env, cwd, capabilities, limits: the "process" of
 * bundle/config.json). tty: on a new pseudo-terminal of rows x cols (0: unset), whose
 * master comes back in *master (the caller closes it); else the process gets stdio[0..2]
 * (*master -1). *pid: the process (host pid namespace); detached, it is re-parented to
 * the subreaper: its exit is claimed with runproc_claim (runproc.h). */
struct rt_exec_req {
	const char *id, *bundle;
	const char *const *argv;
	bool tty;
	unsigned rows, cols;
	const int *stdio;
};
int rt_exec_start(const struct rt *rt, const struct rt_exec_req *q, int *pid, int *master, char *err);
/* Stops and deletes: sig (e.g. SIGTERM) to init, up to grace_ms for it to exit, then
 * SIGKILL, then delete. A container that does not exist counts as stopped (0). */
int rt_stop(const struct rt *rt, const char *id, int sig, int grace_ms, char *err);

#endif
