/* The simulated network between the hosts of a world: every message (raft RPCs, node
 * RPCs, heartbeats, assignment pushes) takes a per-link delay (base latency plus seeded
 * jitter). Messages sent here (raft's) keep order per link unless `reorder` is set (raft
 * tolerates it: its transport reconnects, so two connections' messages can cross), lossy
 * ones may be dropped at random, and a partition (hosts in different groups) loses
 * everything sent here that crosses it, including messages already in flight when it
 * starts. Node-to-node connections (simconn.h) use the delays and partitions of this
 * network with TCP's rules instead. */
#ifndef SIM_SIMNET_H
#define SIM_SIMNET_H
#include "world.h"

#define SIMNET_MAX 256

struct simnet {
	struct world *w;
	unsigned latency_ms, jitter_ms;
	unsigned drop_pm;                   /* lossy messages dropped, per mille */
	bool reorder;                       /* messages of a link may overtake each other */
	int group[SIMNET_MAX];              /* partition group of each host */
	const uint32_t *life[SIMNET_MAX];   /* each host's incarnation (NULL: not there) */
	uint64_t last[SIMNET_MAX][SIMNET_MAX]; /* last delivery time per link (order) */
	uint64_t sent, delivered, lost;
};

void simnet_init(struct simnet *n, struct world *w);
/* Registers host i with its incarnation counter: messages to a host that restarted while
 * they were in flight are lost with the old connection. */
void simnet_host(struct simnet *n, unsigned i, const uint32_t *life);
bool simnet_connected(const struct simnet *n, unsigned a, unsigned b);
/* Puts hosts in groups: group[i] for host i (0 for everyone heals the network). */
void simnet_partition(struct simnet *n, const int *groups, unsigned count);
void simnet_heal(struct simnet *n);

/* Sends arg from host src to host dst: deliver(w, arg) fires on arrival, or drop(arg)
 * when the message is lost. Returns false when it was lost at once. */
bool simnet_send(struct simnet *n, unsigned src, unsigned dst, bool lossy, world_fn deliver, void (*drop)(void *),
		 void *arg);

#endif
