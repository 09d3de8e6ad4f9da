/* An in-memory `struct raft_io` for the simulation: libraft itself (real elections, real
 * replication, real snapshots) runs on top of it, with virtual time from the world, a
 * seeded random election timeout, a "disk" per host that survives restarts, and messages
 * carried by the simulated network.
 *
 * Why not libraft's own fixture (raft/fixture.h): it holds at most
 * RAFT_FIXTURE_MAX_SERVERS = 8 servers, and a join storm needs 50+ raft members (5 voters
 * and the rest standbys); it also owns the event loop and the network model, where the
 * simulation needs one event queue for raft and node traffic alike.
 *
 * The contract with libraft (0.15), as this implementation keeps it:
 *   - load: libraft owns what it gets (snapshot, its configuration and buffer, the entry
 *     array and the one batch every entry points into);
 *   - append/send/snapshot_put: the arguments stay valid until the callback, so they are
 *     copied at the call; callbacks always come later, from the event queue;
 *   - received AppendEntries/InstallSnapshot: libraft owns the entries batch, the
 *     snapshot data and configuration of the message it is handed;
 *   - disk operations complete in the order they were issued (truncate too), a few
 *     virtual milliseconds later; a crash (kill) loses those not completed yet;
 *   - close: pending requests complete with RAFT_CANCELED, then the close callback fires
 *     from the event queue (libraft frees its log in it). */
#ifndef SIM_SIMIO_H
#define SIM_SIMIO_H
#include <raft.h>
#include "simnet.h"

/* What a host keeps on its disk across restarts. */
struct simdisk {
	raft_term term;
	raft_id vote;
	struct raft_snapshot *snap; /* NULL, or one buffer */
	raft_index start;           /* index of entries[0] */
	struct raft_entry *entries; /* each with its own buffer, batch NULL */
	size_t n, cap;
};
void simdisk_init(struct simdisk *d);
void simdisk_free(struct simdisk *d);

struct simio;
/* Which host answers a raft id, and the raft_io started there now (routing). */
struct simio_dir {
	raft_id id[SIMNET_MAX];
	char addr[SIMNET_MAX][64];
	struct simio *io[SIMNET_MAX];
	unsigned n;
};

struct simop;
struct simtick;

struct simio {
	struct raft_io io;
	struct world *w;
	struct simnet *net;
	struct simio_dir *dir;
	struct simdisk *disk;
	unsigned host;
	const uint32_t *life;
	unsigned disk_min_ms, disk_max_ms;
	uint64_t disk_free_at;
	raft_io_tick_cb tick_cb;
	raft_io_recv_cb recv_cb;
	unsigned tick_ms;
	struct simtick *tick;
	struct simop *ops; /* pending requests, oldest first */
	struct simop *ops_tail;
	bool closing;
	/* called after libraft ran for one of this io's events (its host then steps) */
	void (*touched)(void *arg);
	void *touched_arg;
	uint64_t nsend, nrecv, nappend, ninstall;
};

/* Sets up io for host `host` (its entry in dir must be filled). The io registers itself
 * in dir when started and leaves it when closed. */
void simio_init(struct simio *s, struct world *w, struct simnet *net, struct simio_dir *dir, unsigned host,
		struct simdisk *disk, const uint32_t *life);

#endif
