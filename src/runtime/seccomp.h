/* The default seccomp profile of a task: an allowlist (any system call not named returns
 * EPERM) whose effect matches Docker's default profile: the calls a normal program makes
 * are allowed; those that reach kernel state shared with the host (keyrings, modules,
 * kexec, mounts, namespaces, BPF, perf, tracing of other processes) are allowed only when
 * the task holds the capability that governs them. runc compiles the JSON written here
 * with its libseccomp (runtime/bundle.c puts it at linux.seccomp). */
#ifndef ORCH_SECCOMP_H
#define ORCH_SECCOMP_H
#include <stdbool.h>
#include "runtime/rtjson.h"

/* What the default profile does with a call for a task whose bounding set is caps. */
enum seccomp_verdict {
	SECCOMP_DENY,      /* EPERM (or ENOSYS: clone3, so libc falls back to clone) */
	SECCOMP_ALLOW,     /* whatever the arguments */
	SECCOMP_ALLOW_ARGS /* only with some arguments (clone without namespace flags, ...) */
};

/* Writes the profile (an object: defaultAction, architectures, syscalls). caps: the
 * task's bounding set, NULL-terminated "CAP_*" names. */
void seccomp_default(struct rtjson_w *w, const char *const *caps);
enum seccomp_verdict seccomp_verdict_of(const char *name, const char *const *caps);

/* Calls the profile never allows unconditionally: each needs a capability or is denied
 * outright (the tests check the table against it). NULL-terminated. */
extern const char *const seccomp_guarded[];

#endif
