/* orch init|join|start --install and orch uninstall: a service that starts the node on
 * boot from its data directory (orch start, which only ever resumes a node), under systemd
 * (a unit, enabled by the link `systemctl enable` would make) or, where systemd is absent
 * and OpenRC is there, an OpenRC script in the default runlevel. No secret goes in: the
 * node's certificate and keys are in its data directory. What was written is recorded in
 * the data directory (util/layout.h "installed") for orch uninstall.
 *
 * The service of the default data directory is "orch"; another data directory's is
 * "orch-NAME" (the node's name), so several nodes of one machine each have theirs.
 *
 * ORCH_INSTALL_ROOT (for tests): a directory that stands for / — the files go under it,
 * the init system is looked for there, and the running systemd is not asked to reload. */
#ifndef ORCH_INSTALL_H
#define ORCH_INSTALL_H
#include <stddef.h>

struct install_req {
	const char *data_dir; /* absolute */
	const char *name;     /* the node's name */
	const char *const *args; /* start options for orch start (--cpus 2, ...) */
	size_t nargs;
};

/* Writes and enables the service; msg says what and where (one line). */
int install_service(const struct install_req *q, char *msg, size_t cap, char *err);
/* Disables and removes what install_service wrote for data_dir; msg says what. E_NOTFOUND
 * when nothing is recorded. */
int install_remove(const char *data_dir, char *msg, size_t cap, char *err);

#endif
