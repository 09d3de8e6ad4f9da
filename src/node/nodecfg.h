/* What a node reports of its own configuration into its record in the replicated state,
 * so the leader can place tasks by it: the host path prefixes its tasks may bind-mount
 * (--allow-bind, kept in the data dir, agent/volumes.h) and its container options
 * (--allow-privileged, --userns-remap: node/nodesec.h). Read at start; sent with a
 * node.update once the record differs (a new node, or one restarted with another list),
 * retried on the tick until committed. */
#ifndef ORCH_NODECFG_H
#define ORCH_NODECFG_H
#include <stdbool.h>

struct daemon;

struct nodecfg {
	char *binds;   /* the prefixes, a line each ("" for none); NULL: not loaded */
	char *security; /* nodesec_text() of the kept options */
	bool done;     /* the record says the same */
	bool inflight; /* a node.update is on its way */
};

/* Loads what the data dir holds (0, or an error in err). */
int nodecfg_load(struct daemon *d, char *err);
void nodecfg_tick(struct daemon *d);
void nodecfg_free(struct nodecfg *c);

#endif
