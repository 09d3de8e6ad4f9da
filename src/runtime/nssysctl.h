/* Writes net.* sysctls into a network namespace from the host side: a task in its own
 * user namespace cannot (its netns belongs to the host's user namespace), so the agent
 * sets them before the task starts. */
#ifndef ORCH_NSSYSCTL_H
#define ORCH_NSSYSCTL_H
#include <stddef.h>

/* keys "net.ipv4.ip_forward" (checked by the caller: namespaced, no '/'); 0 or an error
 * naming the key. Forks a child that enters the netns, so no thread of ours changes its
 * namespace. */
int nssysctl_apply(const char *netns_path, const char *const *keys, const char *const *vals, size_t n, char *err);

#endif
