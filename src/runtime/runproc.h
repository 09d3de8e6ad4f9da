/* Runs a helper program (runc, crun, ip, nft) synchronously from any thread: fork/exec
 * with a clean signal state, its own session and no inherited descriptors, optional
 * stdin data, captured output and a deadline. The caller's thread blocks; nothing
 * global is touched, so concurrent calls from libuv workers are safe.
 *
 * A subreaper (the agent) must reap through runproc_reap, never a bare waitpid(-1):
 * that would steal the status of a child a call is waiting for. */
#ifndef ORCH_RUNPROC_H
#define ORCH_RUNPROC_H
#include <stdbool.h>
#include <stddef.h>
#include "util/mem.h"

#define RUNPROC_MAX_CAPTURE (1u << 20) /* bytes kept per stream; the rest is drained */

struct runproc {
	const char *const *argv;   /* argv[0] is looked up in PATH */
	const char *input;         /* stdin data; NULL: /dev/null */
	size_t input_len;
	int out_fd;                /* >= 0: stdout (and stderr) go to this fd, nothing is captured */
	const int *stdio;          /* non-NULL: the child's stdin, stdout and stderr, as given
				    * (input, out_fd, out and errout are not used) */
	bool merge_err;            /* capture stderr into out as well */
	struct buf *out, *errout;  /* captures; NULL discards */
	int timeout_ms;            /* 0: wait forever */
	const char *kill_pid_file; /* on timeout, SIGKILL the pid written here first (runc exec) */
	bool crun_workaround;      /* private mount ns without cgroup2 (crun on a cgroup v1 hybrid host: see runc.h) */
};

/* Runs rp; 0 when the program ran to completion (its wait status in *status),
 * E_TIMEOUT when it was killed at the deadline, another E_* if it could not run. */
int runproc_run(const struct runproc *rp, int *status, char *err);

/* Reaps every exited child of this process without blocking. Children of running
 * runproc_run calls get their status delivered to that call; the exit of any other pid
 * (container inits re-parented to a subreaper, orphans) is kept for runproc_claim. Call it
 * on SIGCHLD, from any node of the process; thread-safe. */
void runproc_reap(void);
/* The exit status of pid if it was reaped and not claimed yet (then it is forgotten). */
bool runproc_claim(int pid, int *status);

/* Copies the first non-empty line of text (trimmed) into out (cap bytes). */
void runproc_first_line(const char *text, size_t len, char *out, size_t cap);
/* Describes a wait status: "exit 3", "signal 9". */
void runproc_describe(int status, char *out, size_t cap);

#endif
