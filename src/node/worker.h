/* A worker-only node (issue 11: joined with the worker token, or orch join --worker with
 * a manager token): never a raft voter or standby, so it holds no raft log, no replica of the state
 * and no data key. The leader keeps it a raft spare (orchestrator/roles.h, node/member.c)
 * and opens the secret values its tasks need into its assignments (node/feed.h); here is
 * what the node itself does differently:
 * - it knows it is one from a mark in its data dir (util/layout.h "worker"), written when
 *   the leader's join reply said so, read at every start;
 * - requests on its local socket that read or change the cluster state (orch ps,
 *   services, nodes, inspect, secret create, ...) are forwarded to the leader over its
 *   link and the reply relayed, since its own store is empty; what is this node's own
 *   (ping, status, leave, its tasks' logs and blobs, an image archive loaded here) is
 *   answered here, and orch logs reads the tasks the leader names (node/logfan.c). */
#ifndef ORCH_WORKER_H
#define ORCH_WORKER_H
#include <stdbool.h>
#include "net/proto.h"

/* The mark also keeps whom to ask who leads after a restart: a worker's raft knows no
 * server and its store no node, so without it a restarted worker could not find the
 * cluster. At the join: the leader that accepted it; later, the voters each leader names
 * in its heartbeat replies (node/uplink.h), rewritten when they change. */
#define WORKER_PEERS_MAX 7
/* True when the data dir carries the worker mark. */
bool worker_mark_load(const char *data_dir);
/* Writes the mark with the peers' addresses (0, or an error in err). */
int worker_mark_save(const char *data_dir, const char *const *peers, size_t n, char *err);
/* The peers the mark keeps, at most WORKER_PEERS_MAX; their count. */
size_t worker_peers_load(const char *data_dir, char peers[][64]);
void worker_mark_remove(const char *data_dir);

enum worker_route {
	WORKER_HERE,    /* answered by this node */
	WORKER_LEADER,  /* forwarded to the leader, its reply relayed */
	WORKER_REFUSE,  /* a local-socket op that needs the state and cannot be forwarded */
};
/* Where an op asked of a worker runs. */
enum worker_route worker_route(enum op op);

#endif
