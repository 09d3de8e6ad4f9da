/* A simulated orch cluster: N nodes in one process on the world's virtual clock. Each
 * node is made of the real parts — the replicated state (state/store.h), the consensus
 * module (raft/consensus.h) over libraft on the sim's raft_io, and the leader's
 * controllers (node/leader.h: liveness, roles, reconciler and scheduler, joins and
 * heartbeats), the link to the leader and the assignment feed on the rules node/link.c and
 * node/watch.c run (node/uplink.h, node/feed.h) — plus the node-to-node traffic they carry
 * (joins, heartbeats, forwarded writes, assignment documents, whois) on simulated TCP-like
 * connections (simconn.h), and a fake runtime (fakert.h) in place of runc. */
#ifndef SIM_SIMCL_H
#define SIM_SIMCL_H
#include "fakert.h"
#include "simconn.h"
#include "simio.h"
#include "node/leader.h"
#include "node/uplink.h"
#include "raft/consensus.h"
#include "secret/seal.h"
#include "state/store.h"

#define SIMCL_MAX SIMNET_MAX

struct sproc;

/* One machine: what survives a restart (disk, identity) and the running process. */
struct snode {
	struct simcl *cl;
	unsigned host;
	uint32_t life;          /* incarnation: bumped at every kill and start */
	struct identity ident;
	struct simdisk disk;
	bool joined;            /* has an identity (joined or bootstrapped) */
	bool seed;              /* orch init */
	struct sproc *p;        /* the running process, or NULL */
	/* the join client (orch join), before the process runs */
	bool joining;
	struct sconn *join_conn;
	unsigned join_target, join_via; /* talking to now; given on the command line */
	int join_seed;          /* the node that accepted the join (asked who leads), or -1 */
	uint64_t join_deadline, join_sent;
	uint32_t join_try;
	char join_err[ERR_LEN];
	bool join_failed;
	bool stopped_self;      /* the process stopped itself (told it was removed) */
	bool wanted;            /* the story wants it running (joined, not killed) */
	bool worker;            /* joins as a worker-only node (orch join --worker) */
	/* a worker's mark on its disk (node/worker.h): whom to ask who leads once restarted,
	 * when its raft and store name nobody and no seed is given */
	char kept[UPLINK_VOTERS][64];
	size_t nkept;
	bool resumed;           /* started again on its data dir: no seed (cli/cmd_cluster.c) */
	int64_t wall_skew_ms;   /* this machine's wall clock minus the world's */
	char stop_why[ERR_LEN];
};

struct simcl_opts {
	unsigned election_ms, heartbeat_ms;
	unsigned failure_timeout_ms;
	unsigned start_min_ms, start_max_ms; /* fake runtime: assigned -> running */
};

struct simcl {
	struct world w;
	struct simnet net;
	struct sconns conns;    /* node-to-node connections */
	struct simio_dir dir;
	struct simcl_opts o;
	struct token tok;
	/* the cluster data key (from the seed): scn_deploy seals environments under it as the
	 * node that takes a deploy does (secret/envseal.h) */
	uint8_t datakey[SEAL_KEY_LEN];
	struct snode n[SIMCL_MAX];
	unsigned count;
	uint64_t wall0;         /* the wall clock at virtual time 0 (a midnight: log times read as virtual time) */
	struct clock clock;     /* the world's: virtual time, wall0 on the wall */
	uint64_t procs_closing; /* killed processes whose raft has not closed yet */
	struct sproc *dirty;    /* processes touched by the current event */
	/* a fake runtime starts a task (NULL: nobody listens) */
	void (*started)(void *arg, unsigned node, const struct ftask *t);
	void *started_arg;
};

void simcl_init(struct simcl *c, uint64_t seed, unsigned count, const struct simcl_opts *o);
void simcl_free(struct simcl *c);

/* orch init on node i. */
int simcl_init_node(struct simcl *c, unsigned i, char *err);
/* orch join on node i through node `via`: the join client runs (following redirects,
 * retrying while busy), then the node starts. */
void simcl_join(struct simcl *c, unsigned i, unsigned via);
/* kill -9 of node i's process (its disk and identity stay; its peers see its connections
 * close). */
void simcl_kill(struct simcl *c, unsigned i);
/* orch stop of node i: a leader hands leadership over first (raft/consensus.h
 * cons_handover), then the process ends cleanly (its raft streams end with TLS's
 * close_notify: no peer takes it for a death). */
void simcl_stop(struct simcl *c, unsigned i);
/* Nodes a and b each take the other for dead (cons_peer_lost) while both live: their
 * raft streams broke and the transport's probe was refused, as when a process restarted
 * at once. The worst case the early election must survive without an election storm. */
void simcl_raft_lost(struct simcl *c, unsigned a, unsigned b);
/* Node i's machine loses power: the same, but its peers hear nothing (their messages and
 * connection attempts go unanswered until it is back). */
void simcl_power_off(struct simcl *c, unsigned i);
/* The node started again on its data (no join), its machine on again. */
int simcl_restart(struct simcl *c, unsigned i, char *err);
void simcl_partition(struct simcl *c, const int *groups);
void simcl_heal(struct simcl *c);

bool simcl_up(const struct simcl *c, unsigned i);
/* The node that leads now (raft leader with the highest term among live ones), or -1. */
int simcl_leader(const struct simcl *c);
const struct store *simcl_store(const struct simcl *c, unsigned i);
struct consensus *simcl_cons(const struct simcl *c, unsigned i);
const struct fakert *simcl_runtime(const struct simcl *c, unsigned i);
uint64_t simcl_wall(const struct simcl *c);

/* A write as a client would make it through node i (forwarded to the leader when i does
 * not lead): type + msgpack body. 0 when it was sent; cb (may be NULL) gets the outcome. */
int simcl_submit(struct simcl *c, unsigned i, enum cmd type, const void *body, size_t len,
		   void (*cb)(void *data, int rc, const struct apply_res *res), void *data, char *err);
/* Submits until acknowledged (retrying through whichever node leads), running the world;
 * 0, or an error after the deadline. */
int simcl_write(struct simcl *c, enum cmd type, const void *body, size_t len, uint64_t within_ms, char *err);
/* The same through node via (its link forwards it when it does not lead). */
int simcl_write_via(struct simcl *c, int via, enum cmd type, const void *body, size_t len, uint64_t within_ms,
		    char *err);

/* Runs the world for ms of virtual time. */
void simcl_run(struct simcl *c, uint64_t ms);

#endif
