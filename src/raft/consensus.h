/* Every libraft call of orch lives here (so a switch to the cowsql fork stays cheap).
 * It wires libraft's disk backend, orch's transport and the state machine (state/store.h)
 * together, and offers requests with callbacks for apply and membership changes.
 *
 * Three ways to run it: cons_init (a node: libraft's disk backend over orch's transport on
 * a libuv loop), cons_init_io (any caller-given raft_io, e.g. a simulation's in-memory
 * network and disk; no libuv loop), or cons_init_fsm + cons_attach (a raft instance made by
 * someone else, e.g. raft_fixture_grow(f, cons_fsm(c)) from raft/fixture.h). Without a loop
 * the host calls cons_step() after each event it delivers: that is what a node's loop does
 * after every turn (the write batch flush and the state change detection). */
#ifndef ORCH_CONSENSUS_H
#define ORCH_CONSENSUS_H
#include <raft.h>
#include <raft/uv.h>
#include "raft/slowdisk.h"
#include "raft/transport.h"
#include "state/store.h"
#include "util/clock.h"

enum cons_role { ROLE_STANDBY = RAFT_STANDBY, ROLE_VOTER = RAFT_VOTER, ROLE_SPARE = RAFT_SPARE, ROLE_NONE = -1 };

typedef void (*cons_apply_cb)(void *data, int status, const struct apply_res *res);
typedef void (*cons_change_cb)(void *data, int status, const char *msg);
typedef void (*cons_state_cb)(void *data); /* raft role, leader or configuration changed */

#define CONS_RESULT_RING 8192

/* Results of applied entries, by index, for the leader's apply callbacks (a pointer into
 * this ring is the FSM "result": nothing to free on followers, where nobody reads it). */
struct cons_slot {
	uint64_t index;
	struct apply_res res;
};

struct cons_settings {
	unsigned election_ms, heartbeat_ms;
	unsigned snapshot_threshold, snapshot_trailing;
	/* raft_uv's open segments (0: libraft's 8 MB, preallocated): small for nodes that
	 * write little, such as many hollow nodes in one process */
	size_t segment_size;
	/* test-only (raft/slowdisk.h, ORCH_TEST_DISK_DELAY_MS): every disk flush takes this
	 * much longer; 0 in production */
	unsigned test_disk_delay_ms;
};

struct queued {
	struct raft_buffer buf;
	cons_apply_cb cb;
	void *data;
};
struct batch;

struct consensus {
	struct raft own;         /* the instance, unless attached */
	struct raft *raft;       /* &own, or the attached instance */
	bool uv_io;              /* io is libraft's disk backend (ours to close) */
	bool attached;           /* raft belongs to its creator (not closed here) */
	uv_idle_t idle;          /* flushes queued writes before the loop blocks (with a loop) */
	struct queued *queue;    /* writes of this loop iteration, not yet given to libraft */
	size_t nqueue, capqueue;
	struct batch *batches;   /* handed to libraft, in index order */
	struct raft_io io;
	struct raft_fsm fsm;
	struct otransport tr;
	struct slowdisk disk;    /* test-only slow disk (disk.ms 0: off) */
	struct store *store;
	uv_loop_t *loop;         /* NULL: no libuv; the host calls cons_step */
	uv_check_t check;        /* cons_step after every loop turn (with a loop) */
	char dir[512];
	raft_id id;
	char addr[64];
	char name[64];           /* in log lines: the node's name (its address by default) */
	const struct clock *clock; /* stamps its log lines (NULL: the system's) */
	bool started, closing;
	bool deaf; /* cons_set_deaf */
	/* an entry this binary cannot apply (state/store.h apply_res.too_new): its index and
	 * why; applying stops there (cons_halted) */
	uint64_t halted_at;
	char halt_msg[ERR_LEN];
	cons_state_cb on_state;
	void *state_data;
	/* last observed, to detect changes */
	int last_state;
	raft_id last_leader;
	unsigned last_nconf;
	uint64_t last_conf_sig;
	struct cons_slot *ring;
	void (*close_cb)(void *);
	void *close_data;
	int closing_handles;     /* early, due, idle, check (and the slow disk's timer), closing after raft itself */
	/* early elections (cons_peer_lost) */
	raft_io_tick_cb tick;    /* libraft's tick, captured at raft_start (NULL: attached) */
	raft_io_recv_cb recv;    /* libraft's receive callback, wrapped at raft_start */
	uv_timer_t early;        /* this follower's turn to campaign, pre-vote retries (with a loop) */
	uv_timer_t due;          /* when the election timer runs out (with a loop): cons_step */
	uint64_t due_at;
	uint64_t drawn_term;     /* the term of the follower's last randomized timeout */
	int (*io_random)(struct raft_io *, int, int);
	unsigned prevote_retries;
	uint64_t prevote_term;
	int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
	uint64_t early_term, early_at; /* the last early election: its term and time */
	uint64_t early_count;    /* early elections started here (tests read it) */
	/* leadership handover before a stop (cons_handover) */
	bool handing_over, handed_over;
	cons_change_cb handover_cb;
	void *handover_data;
};

int cons_init(struct consensus *c, uv_loop_t *loop, const char *dir, raft_id id, const char *addr,
	      const struct tlsctx *tls, struct store *store, const struct cons_settings *set, char *err);
int cons_init_io(struct consensus *c, struct raft_io *io, raft_id id, const char *addr, struct store *store,
		 const struct cons_settings *set, char *err);
/* The state machine alone; cons_fsm for whoever creates the raft instance, then attach it
 * (it counts as started: its creator starts and closes it). */
void cons_init_fsm(struct consensus *c, raft_id id, const char *addr, struct store *store);
struct raft_fsm *cons_fsm(struct consensus *c);
void cons_attach(struct consensus *c, struct raft *r);
/* Hands the writes queued since the last call to libraft as one batch, answers writes a
 * lost leadership will not apply, and calls the state callback when the raft state,
 * leader or configuration changed. Runs by itself after each loop turn with a loop. */
void cons_step(struct consensus *c);
/* First node of a new cluster only; "already bootstrapped" is not an error. */
int cons_bootstrap(struct consensus *c, char *err);
int cons_start(struct consensus *c, char *err);
/* Lost quorum: rewrites the configuration to this node alone as the only voter (appended
 * to the log on disk). Before cons_start, on a stopped cluster's surviving node only. */
int cons_recover(struct consensus *c, char *err);
void cons_set_state_cb(struct consensus *c, cons_state_cb cb, void *data);
void cons_set_name(struct consensus *c, const char *name);
/* The clock of the node it belongs to, for its log lines. */
void cons_set_clock(struct consensus *c, const struct clock *clock);
void cons_close(struct consensus *c, void (*cb)(void *), void *data);

/* buf is copied. Callback on the leader once applied (or with an error). */
int cons_apply(struct consensus *c, const void *buf, size_t len, cons_apply_cb cb, void *data, char *err);
int cons_add(struct consensus *c, raft_id id, const char *addr, cons_change_cb cb, void *data, char *err);
int cons_assign(struct consensus *c, raft_id id, enum cons_role role, cons_change_cb cb, void *data, char *err);
int cons_remove(struct consensus *c, raft_id id, cons_change_cb cb, void *data, char *err);
int cons_transfer(struct consensus *c, raft_id to, cons_change_cb cb, void *data, char *err);
/* Leader only: how far libraft believes follower id's log matches this one (0: unknown). */
uint64_t cons_match_index(struct consensus *c, raft_id id);
/* Leader only: follower id has applied `from` but libraft believes it has more: the log is
 * sent to it again from there. libraft 0.15 takes a follower's answer to an empty
 * AppendEntries as proof of its whole log: a follower holding a longer tail from a deposed
 * leader's term is then believed to match entries it does not have, its rejections are
 * ignored as stale and it is never sent the entries it lacks (its applied index stays
 * behind for good). Its answers prove only what it applied. */
void cons_reprobe(struct consensus *c, raft_id id, uint64_t from);
/* cb once every entry before the barrier is applied here (leader only): a new leader knows
 * what its predecessor committed only after an entry of its own term commits. */
int cons_barrier(struct consensus *c, cons_change_cb cb, void *data, char *err);

bool cons_is_leader(struct consensus *c);
const char *cons_state_name(struct consensus *c);
/* 0 and the leader's id/address, or -1 when none is known. */
int cons_leader(struct consensus *c, raft_id *id, const char **addr);
enum cons_role cons_role_of(const struct consensus *c, raft_id id);
const char *cons_role_name(enum cons_role r);
unsigned cons_nservers(const struct consensus *c);
/* Server i of the current configuration. */
void cons_server(const struct consensus *c, unsigned i, raft_id *id, const char **addr, enum cons_role *role);
uint64_t cons_term(const struct consensus *c);
uint64_t cons_commit_index(const struct consensus *c);
uint64_t cons_applied_index(struct consensus *c);
uint64_t cons_last_index(struct consensus *c);
/* Hands an authenticated incoming raft stream to libraft (from: the conn relaying it). */
void cons_incoming(struct consensus *c, struct conn *from, uv_stream_t *s, const uint8_t *extra, size_t extra_len);

/* Server `id`'s process is gone: its raft stream with this node ended without a clean
 * close and a connect to its address was refused (raft/transport.c), as after a kill -9
 * or a crash (the kernel closes its sockets). When `id` is the leader this follower
 * follows, it stops believing in it and campaigns without waiting for the election
 * timeout (consensus.c says why this is safe). A silent loss (a partition, a machine gone
 * without a word) still waits for the timeout. */
void cons_peer_lost(struct consensus *c, raft_id id);
/* Before a planned stop: a leader hands leadership to an up-to-date voter (libraft's
 * raft_transfer) and refuses new writes meanwhile; cb (from cons_step, where the caller
 * may cons_close) once another node leads or the transfer gave up (after an election
 * timeout). E_NOTFOUND, and no cb, when there is nothing to hand over (not the leader, no
 * other voter). */
int cons_handover(struct consensus *c, cons_change_cb cb, void *data, char *err);
/* While deaf, incoming raft streams are closed as they arrive: a follower that must not
 * append (its disk is nearly full, node/diskwatch.h) hears no leader and so is sent no
 * entry; libraft 0.15 wedges a follower whose append meets ENOSPC. */
void cons_set_deaf(struct consensus *c, bool deaf);
/* NULL, or why this node stopped applying the log: an entry of a newer orch, at index
 * c->halted_at. It serves its state as of the entry before. libraft 0.15 takes a follower
 * whose apply fails out of raft (unavailable: no votes, no entries) and leaves a leader
 * leading but applying nothing; the same entry applies once the node restarts with a
 * binary that knows it (orch(8) UPGRADES). */
const char *cons_halted(const struct consensus *c);

#endif
