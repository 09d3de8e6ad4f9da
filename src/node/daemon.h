/* The node daemon: one process per machine, one libuv loop. It owns the consensus module
 * (raft + state machine), the node port listener (raft, RPC, HTTP), the local Unix socket
 * for the CLI, the link to the leader (heartbeats, forwarded requests) and, while leader,
 * the periodic controllers (liveness, roles). */
#ifndef ORCH_DAEMON_H
#define ORCH_DAEMON_H
#include <stdbool.h>
#include <uv.h>
#include "node/feed.h"
#include "node/identity.h"
#include "node/host.h"
#include "node/leader.h"
#include "node/regopts.h"
#include "node/renew.h"
#include "node/imagework.h"
#include "node/nodecfg.h"
#include "node/diskwatch.h"
#include "metrics/cluster_stats.h"
#include "metrics/node_stats.h"
#include "metrics/scaling.h"
#include "net/conn.h"
#include "net/peer.h"
#include "net/proto.h"
#include "net/rpc_reply.h"
#include "raft/consensus.h"
#include "secret/unlock.h"
#include "state/store.h"

struct daemon;

struct daemon_opts {
	const char *data_dir;
	bool bootstrap;      /* orch init on an empty data dir */
	bool force_new_cluster;
	int ready_fd;        /* -1, or a pipe to tell the parent (--detach) we serve */
	/* Called once with the ready message ("ok", or for a join "ok ROLE VOTERS"). */
	void (*on_ready)(const char *msg, const void *arg);
	const void *ready_arg;
	/* orch join: ready once this index (the leader's commit index when it accepted us) is
	 * applied here; seed is the node that accepted, asked who leads until raft tells. */
	uint64_t catch_up_index;
	const char *seed;
	struct cons_settings raft;
	uint64_t disk_floor; /* --disk-floor, bytes (0: the default, node/diskwatch.h) */
	uint64_t cpus_milli, memory;
	uint64_t failure_timeout_ms; /* orch init: recorded in the cluster settings */
	const char *labels[32];
	size_t nlabels;
	/* A hollow node (orch debug hollow, node/hollow.h): its agent runs the hollow backend
	 * (agent/backend.h: tasks run after run_delay_ms, nothing is started), it has no
	 * routing mesh and no DNS, and it takes part in raft as a spare only. */
	bool hollow;
	unsigned run_delay_ms;
	bool no_signals;     /* SIGINT/SIGTERM are the caller's (many nodes in one process) */
	/* registry options given on the command line (NULL: none): they replace the kept
	 * ones of their kind (node/regopts.h) */
	const struct regopts *registry;
	/* orch init --autolock: the unlock key the data key file was sealed under, recorded
	 * in the log once this node leads (node/autolock.h) */
	bool autolock;
	struct unlock_key autolock_key;
	/* Called once the node has stopped: every handle of it closed, no worker job of it in
	 * flight. On a shared loop, daemon_free may be called from it. */
	void (*on_stopped)(struct daemon *d, void *arg);
	void *stopped_arg;
};

struct conn;
struct link;
struct member;

/* A request waiting for an asynchronous answer (raft apply, a forward to the leader).
 * The conn may go away first: it is then NULLed and the answer dropped. */
struct httpreq;
struct pending {
	struct daemon *d;
	struct conn *conn;
	uint64_t req_id;      /* the client's id, echoed in the reply */
	uint64_t fwd_id;      /* id used on the leader link when forwarded */
	void *ctx;            /* handler's own */
	/* Called with the leader's reply to a forwarded request (NULL resp: link lost).
	 * Default (NULL): relay the reply to conn. */
	void (*on_reply)(struct pending *p, const msgpack_object *resp);
	/* Called (when set) once conn has gone, after it was NULLed: a long-lived request
	 * (a stream) stops its work; it may free p. */
	void (*on_gone)(struct pending *p);
	bool forwarded;
	/* who asked, when a handler made this while serving someone (node/rpc.c): sent along
	 * when forwarded to the leader, which checks it again (net/access.h) */
	bool has_origin;
	enum op origin_op;
	struct peer origin;
	struct pending *next, *prev;
};

/* One node: the value that owns every part of it (consensus and store, leader controllers,
 * agent, mesh, DNS, metrics, link, watches). Several may share a process and a loop.
 * Named daemon, not node: `struct node` is the store's record of a cluster member. */
struct daemon {
	uv_loop_t *loop;
	const struct clock *clock; /* every time the node reads (util/clock.h) */
	struct daemon_opts opts;
	char data_dir[512];
	struct identity ident;
	struct store store;
	struct consensus cons;
	uv_tcp_t tcp;
	uv_pipe_t local;
	uv_timer_t tick;
	uv_timer_t catchup;  /* orch join: polls the applied index until caught up */
	uv_timer_t kick;     /* the leader's workloads again at once (leader_host.kick) */
	uv_timer_t park_timer; /* replies held until this node applied the write (node/rywait.h) */
	struct rywait *parked;
	bool park_ready;
	uint64_t caught_up_at;
	uv_signal_t sigint, sigterm;
	struct host host;      /* what the parts below see of this node (node/host.h) */
	struct regopts reg;    /* its registry options, kept and given */
	struct imagework_state imgw; /* image pulls and garbage (node/imagework.h) */
	struct link *link;
	struct agent *agent;
	struct mesh *mesh;
	struct dns *dns;
	struct node_stats_sampler stats; /* this node's figures */
	struct cstats cluster_stats;     /* every node's, from heartbeats (read while leader) */
	struct scaling scaling;
	struct nodecfg cfg;    /* what this node reports of its configuration (node/nodecfg.h) */
	struct diskwatch disk; /* its data dir's free space and alarm (node/diskwatch.h) */
	struct feed watch;     /* the assignment watches served while leading (watch.c) */
	struct renew_state renew; /* this node's certificate renewal (node/renew.h) */
	/* a worker's view of who is a member (its feed's "members", sorted), which it has no
	 * state to read: the certificates of other nodes are refused (removed ones) */
	uint64_t *members;
	size_t nmembers;
	bool members_known;
	struct httpd *metrics; /* --metrics-listen's plain listener, if kept (net/httpd.h) */
	struct console *console; /* the web console (console/console.h) */
	struct pending *pending, *pending_tail; /* requests waiting, oldest first */
	struct conn **conns; /* accepted, open (closed on stop) */
	size_t nconns, capconns;
	uint64_t cap_warned_ms; /* last warning about a connection refused by a cap (daemon.c) */
	uint64_t session;    /* random per process start: request identity (state/store.h) */
	uint64_t seq;        /* counter of commands this node originates in this session */
	uint64_t fwd_ids;
	/* while a handler runs: who called it (rpc_dispatch), taken by the pending requests
	 * it makes (forwards and submits), so the leader checks the caller again */
	bool serving;
	enum op serving_op;
	struct peer serving_peer;
	/* leader state */
	struct leader leader;
	struct leader_host leader_host;
	/* lifecycle */
	bool own_loop;       /* daemon_run's: everything left on it is closed on stop */
	bool cons_ready;     /* cons initialised: closed on stop */
	bool stopping;
	bool leaving;        /* wipe identity and raft data once stopped */
	bool worker;         /* a worker-only node (node/worker.h): read from the data dir at start */
	unsigned stop_pending; /* parts, handles and jobs still to finish once stopping */
	unsigned jobs;       /* worker jobs of the node itself in flight (image ingest) */
	int exit_code;
	int ready_fd;
	/* autolock (node/autolock.h): locked until orch unlock; the unlock record the data key
	 * file is sealed for; init's record submitted */
	bool locked;
	uint64_t lock_seen;
	bool lock_recorded;
	bool ready_sent;
	uint64_t started_ms;
};

/* The node of this process: runs it on a loop of its own until it stops; its exit code. */
int daemon_run(const struct daemon_opts *o, const struct identity *id, char *err);
/* A node on a caller's loop (several may share one): new, start (on failure, or later,
 * daemon_stop), and once the node has stopped (opts.on_stopped, or uv_run returned),
 * daemon_free. */
struct daemon *daemon_new(uv_loop_t *loop, const struct daemon_opts *o, const struct identity *id);
int daemon_start(struct daemon *d, char *err);
/* The rest of the start, after the local socket: at once, or for a locked node once
 * orch unlock opened its data key (node/autolock.h). */
int daemon_start_unlocked(struct daemon *d, char *err);
void daemon_free(struct daemon *d);

/* Submits a command (type + msgpack body) through raft: locally when leader, otherwise
 * forwarded to the leader. cb gets the result. */
typedef void (*submit_cb)(struct daemon *d, void *data, int rc, const struct apply_res *res);
int daemon_submit(struct daemon *d, enum cmd type, const void *body, size_t body_len, submit_cb cb, void *data, char *err);
/* The same with a callback that does not need the daemon (the host interfaces' form). */
int daemon_submit_data(struct daemon *d, enum cmd type, const void *body, size_t body_len,
		       void (*cb)(void *data, int rc, const struct apply_res *res), void *data, char *err);
void daemon_stop(struct daemon *d, int code);
/* A worker: the member ids of a feed document ("members", node/feed.h); the open
 * connections of nodes no longer among them are closed. */
void daemon_members(struct daemon *d, const msgpack_object *doc);
/* A worker job of the node (d->jobs) ended. */
void daemon_job_done(struct daemon *d);

/* rpc.c: a request from the local socket (local) or the node port, dispatched from the
 * protocol table to its handler below */
void rpc_dispatch(struct daemon *d, struct conn *c, const msgpack_object *req, bool local);
struct pending *pending_new(struct daemon *d, struct conn *c, uint64_t req_id);
void pending_free(struct pending *p);
void pending_conn_gone(struct daemon *d, struct conn *c);
void rpc_http(struct daemon *d, struct conn *c, const struct httpreq *rq);
/* A conn for requests the node runs on someone's behalf (net/conn.h conn_internal),
 * dispatched like the node port's and closed with the node's other conns. */
struct conn *daemon_conn_internal(struct daemon *d, const struct peer *who, conn_sink_fn sink, void *sink_arg);
/* 0 when p is not a user known by certificate, or one whose certificate is its user's in
 * the state; else E_AUTH (orch user rm revoked it). */
int rpc_user_current(struct daemon *d, const struct peer *p, char *err);
/* The whole HTTP response for path (/metrics, /healthz, else 404), for either listener. */
void rpc_http_page(struct daemon *d, const char *method, const char *path, struct buf *resp);
/* The handlers of the protocol's ops (rpc_cluster.c, rpc_work.c, logfan.c, ingest.c): each
 * gets its request decoded and checked, and answers on c (now or later). */
#define RPC_HANDLER_(ID, low, name, via, run, need, handler) \
	void handler(struct daemon *d, struct conn *c, const struct req_##low *a);
PROTO_OPS(RPC_HANDLER_)
#undef RPC_HANDLER_
/* Submits a command (body: its struct cmd_<type>) for request id on c; cb gets a pending
 * (data) to answer it with, and frees it. When it cannot be submitted, c is told why at
 * once. */
void rpc_submit(struct daemon *d, struct conn *c, uint64_t id, enum cmd type, const void *body, submit_cb cb);
/* The usual answer to a write submitted that way: {result} (E_EXISTS, "unchanged", is a
 * success) or the error. */
void rpc_submitted(struct daemon *d, void *data, int rc, const struct apply_res *res);
/* Submits the service.put of sp (its environment sealed here first, secret/envseal.h)
 * for request id on c. */
struct svc_spec;
void rpc_service_submit(struct daemon *d, struct conn *c, uint64_t id, struct svc_spec *sp, const char *project);
/* Relays a leader's reply map to p->conn with the client's request id. */
void rpc_relay(struct pending *p, const msgpack_object *resp);
void daemon_ready(struct daemon *d, const char *msg);

/* watch.c: assignments pushed from the leader to every node's agent */
#define WATCH_REQ_ID 0xfffffffffffffff0ull
void watch_add(struct daemon *d, struct conn *c, uint64_t req_id, uint64_t node_id);
void watch_conn_gone(struct daemon *d, struct conn *c);
void watch_push(struct daemon *d);
void watch_reset_self(struct daemon *d);
void watch_free(struct daemon *d);
/* feed_out.open (node/feed.h): a sealed value opened with this node's data key (arg: the
 * daemon), for a worker. */
int watch_open_sealed(void *arg, const char *kind, const char *name, const void *blob, size_t n, struct buf *out, char *err);

/* link.c: this node's connection to the leader */
void link_update(struct daemon *d);   /* (re)connect when the leader changed */
void link_tick(struct daemon *d);     /* heartbeat */
/* Forwards a request map to the leader; the reply is relayed to p->conn. */
int link_forward(struct daemon *d, struct pending *p, const msgpack_object *req, char *err);
int link_forward_raw(struct daemon *d, struct pending *p, const void *body, size_t len, char *err);
/* The same for the request of op (args: its struct req_<op>), this node's own. */
int link_forward_op(struct daemon *d, struct pending *p, enum op op, const void *args, char *err);
void link_close(struct daemon *d);
/* The leader the link is connected to now (false while none): a worker's only view of it. */
bool link_leader(struct daemon *d, uint64_t *id, const char **addr);

#endif
