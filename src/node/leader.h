/* The leader's periodic work as a value: commit the cluster record after bootstrap, track
 * liveness from heartbeats, manage Raft roles and reconcile workloads. A `struct leader`
 * owns its state (heartbeat table, requests in flight, when this leadership began) and
 * reaches its node only through `struct leader_host`, so a simulation can host many of
 * them in one process on a virtual clock: no libuv calls and no clock reads in here. */
#ifndef ORCH_LEADER_H
#define ORCH_LEADER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "node/host.h"
#include "node/identity.h"
#include "raft/consensus.h"
#include "state/store.h"
#include "util/clock.h"

typedef host_submit_cb leader_submit_cb;

/* An unchanged state is reconciled again after this long (time-only transitions). */
#define RECONCILE_IDLE_MS 1000

/* What the controllers need from the node that hosts them. Every function gets `data`. */
struct leader_host {
	void *data;
	const struct clock *clock;
	const struct identity *ident;
	const struct store *store; /* the replicated state, read only */
	/* A command through raft (this node leads, so it is applied locally). */
	int (*submit)(void *data, enum cmd type, const void *body, size_t len, leader_submit_cb cb, void *cb_data,
		      char *err);
	/* Raft membership: the servers of the current configuration and role changes. */
	unsigned (*nservers)(void *data);
	void (*server)(void *data, unsigned i, uint64_t *id, enum cons_role *role);
	int (*assign)(void *data, uint64_t id, enum cons_role role, cons_change_cb cb, void *cb_data, char *err);
	int (*add)(void *data, uint64_t id, const char *addr, cons_change_cb cb, void *cb_data, char *err);
	/* How far raft believes follower id's log matches; the log sent to it again from
	 * `from` (raft/consensus.h cons_reprobe). NULL: not offered. */
	uint64_t (*match_index)(void *data, uint64_t id);
	void (*reprobe)(void *data, uint64_t id, uint64_t from);
	/* Whether this node still leads (and is not stopping), raft's term and commit index. */
	bool (*is_leader)(void *data);
	uint64_t (*term)(void *data);
	uint64_t (*commit_index)(void *data);
	/* orch init: this node's record is committed, the parent may return. */
	void (*ready)(void *data, const char *msg);
	/* Run after the controllers on every tick (NULL: none). */
	void (*autoscale)(void *data);
	void (*watch_push)(void *data);
	/* Calls leader_kicked soon (the next loop turn), not from inside this call; NULL: the
	 * next tick does the work. */
	void (*kick)(void *data);
	/* A raft barrier: cb once all entries before it are applied here (NULL: none; the
	 * controllers then start at once). */
	int (*barrier)(void *data, cons_change_cb cb, void *cb_data, char *err);
};

/* From orch init / orch start's options. */
struct leader_config {
	bool bootstrap;              /* commit the cluster record (first node of a new cluster) */
	uint64_t failure_timeout_ms; /* for the cluster record; 0: 5000 */
	uint64_t cpus_milli, memory; /* this node's record */
	const char *const *labels;   /* "k=v", for this node's record */
	size_t nlabels;
	const char *runtime;         /* for this node's record: runc, crun or hollow */
	/* where orch init left the sealed CA key and tokens for the cluster record
	 * (node/creds.h); NULL (the simulation): a record whose tokens admit no one */
	const char *data_dir;
};

struct seen {
	uint64_t id;
	uint64_t last_ms;
	uint64_t behind_since; /* since when its applied index lags what raft believes it has */
	uint64_t behind_at;    /* ... and stands still at this index */
};

struct member;

struct leader {
	const struct leader_host *host;
	struct leader_config cfg;
	struct seen *seen; /* last heartbeat of each node, by id (liveness is not replicated) */
	size_t nseen, capseen;
	uint64_t leader_since; /* monotonic ms when this node last became leader */
	uint64_t term;         /* the term of the last leadership started */
	/* one request of each kind in flight */
	bool init_inflight, liveness_inflight, reconcile_inflight;
	bool reconcile_more;  /* the last reconcile pass was capped: run the next one at once */
	uint64_t reconcile_rev, reconcile_at; /* state revision and time of the last pass */
	/* This leadership has applied what its predecessors committed (its barrier): until
	 * then the state here may lack entries already committed, and a controller acting on
	 * it would redo their work (a slot replaced twice, a hollow node made a standby);
	 * joins wait too. */
	bool caught_up, barrier_inflight;
	bool change_inflight; /* a raft membership change (joins and role plan, node/member.h) */
	struct member *member; /* queued joins and the role plan being run */
	/* voters the role manager wants but has no manager-capable node to promote for (a
	 * worker is never promoted): shown by orch status, logged when it changes */
	unsigned voter_shortage, voters_wanted;
};

void leader_init(struct leader *l, const struct leader_host *host, const struct leader_config *cfg);
void leader_free(struct leader *l);
/* This node leads in a term it has not started a leadership for (it may have lost and won
 * again between two looks: that is a new leadership too). */
bool leader_new_term(const struct leader *l);
/* This node has just become leader. */
void leader_start(struct leader *l);
void leader_tick(struct leader *l);
/* The workloads again (host->kick): a capped reconcile pass left work. */
void leader_kicked(struct leader *l);
/* A heartbeat (or a join) from node id. */
void leader_saw(struct leader *l, uint64_t id);
bool leader_alive(const struct leader *l, uint64_t id);

/* A node's heartbeat, with the raft index it has applied (0: not said): 0, or E_NOTFOUND
 * when that node is not a member of the cluster (removed; it should stop) once this
 * leadership is old enough to know. A node whose applied index stands still behind what
 * raft believes it holds for LEADER_STUCK_MS is sent the log again from its applied index
 * (one that is behind but applying on is left alone). */
int leader_heartbeat(struct leader *l, uint64_t id, uint64_t applied, char *err);
#define LEADER_STUCK_MS 3000

/* The role of server id in the raft configuration (ROLE_NONE: not in it). */
enum cons_role leader_role_of(const struct leader *l, uint64_t id);

#endif
