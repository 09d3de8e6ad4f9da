/* A node's container options, given to orch init/join and kept in its data directory:
 * --allow-privileged (the node runs tasks with privileged: true) and --userns-remap
 * (root of every task is an unprivileged host uid range). The same text goes into the
 * node's record (state/store.h security), so the leader places tasks by it. */
#ifndef ORCH_NODESEC_H
#define ORCH_NODESEC_H
#include <stdbool.h>
#include <stdint.h>

struct nodesec {
	bool allow_privileged;
	uint32_t userns_base, userns_count; /* count 0: no remapping */
};

/* Absent file: every option off. */
int nodesec_load(const char *data_dir, struct nodesec *o, char *err);
int nodesec_save(const char *data_dir, const struct nodesec *o, char *err);
/* The text form, a line each ("" for none); free it. */
char *nodesec_text(const struct nodesec *o);
/* "100000:65536", or "default": the first range of the "orch" user in /etc/subuid,
 * else 100000:65536. 0, or -1 with msg. */
int nodesec_userns_arg(const char *arg, struct nodesec *o, char *msg);

#endif
