/* Inside a simulated node's process, shared by the files that make it: simcl.c (the
 * process, its timers and the cluster), simlink.c (the link to the leader, the requests
 * nodes make of each other, the assignment feed) and simjoin.c (orch join). */
#ifndef SIM_SIMPROC_H
#define SIM_SIMPROC_H
#include "simcl.h"
#include "node/feed.h"
#include "node/uplink.h"

/* What daemons do on their timers (node/daemon.c). */
#define SIM_TICK_MS 200

/* The node-to-node messages, as the real ones carry them (node/rpc.c, node/link.c): a
 * request kind and its fields, or the reply to one. */
enum mkind { M_JOIN, M_JOIN_REP, M_HB, M_HB_REP, M_WATCH, M_DOC, M_APPLY, M_APPLY_REP, M_WHOIS, M_WHOIS_REP };

struct smsg {
	enum mkind kind;
	uint64_t a;        /* node id, forward id or join attempt */
	int rc;
	char msg[ERR_LEN];
	uint64_t res_id;   /* apply: the result's id; whois: the leader's id; hb: the applied index */
	char addr[64];     /* join and whois replies: the leader's address ("" when none) */
	bool member;       /* whois: the asker is a member */
	char voters[UPLINK_VOTERS][64]; /* hb reply to a spare: the voters */
	size_t nvoters;
	uint8_t *data;     /* document, entry or node record */
	size_t len;
};

struct smsg *smsg_new(enum mkind kind);
void smsg_free(void *m);

/* A write forwarded to the leader on the link, waiting for its reply. */
struct sfwd {
	uint64_t id;
	void (*cb)(void *data, int rc, const struct apply_res *res);
	void *data;
	struct sfwd *next;
};

/* One run of a node's process. */
struct sproc {
	struct snode *n;
	struct simcl *cl;
	bool dead;
	struct simio io;
	struct store store;
	struct consensus cons;
	struct clock clock;
	struct leader leader;
	struct leader_host lh;
	struct fakert rt;
	uint64_t session, seq; /* request identity: random per process start, counter */
	/* the link to the leader (node/link.c on node/uplink.h's rules) */
	struct uplink up;
	struct sconn *link;
	bool dropping;         /* closing the link on purpose */
	struct sconn *whois;
	struct sfwd *fwds;
	uint64_t fwd_ids;
	/* while leader: the watches of the other nodes (node/watch.c on node/feed.h) */
	struct feed feed;
	/* stepped after the current event */
	bool dirty;
	struct sproc *next_dirty;
};

/* simcl.c */
void proc_touch(struct sproc *p);
uint64_t proc_now(const struct sproc *p);
uint64_t proc_wall(const struct sproc *p);
int proc_start(struct simcl *c, unsigned i, bool bootstrap, char *err);
/* The process ends (killed, or stopping by itself): its connections close with it, their
 * peers told unless `silent` (its machine lost power). */
void proc_end(struct simcl *c, unsigned i, bool silent);
int host_of_addr(const struct simcl *c, const char *addr);

/* simlink.c */
void plink_update(struct sproc *p);
void plink_tick(struct sproc *p);
/* A write (a raft entry) forwarded to the leader on the link. */
int plink_forward(struct sproc *p, const void *entry, size_t n, void (*cb)(void *data, int rc, const struct apply_res *res),
		  void *data, char *err);
/* The process ends: forwarded writes fail, the watches it served go. */
void plink_end(struct sproc *p);
void plink_feed(struct sproc *p);
/* Connections arriving at a host: served by its process when one runs. */
bool plink_accept(void *data, struct sconn *c);

/* simjoin.c: the join request on the node it reached (node/rpc.c op_join) */
void join_serve(struct sproc *p, struct sconn *c, const struct smsg *m);

#endif
