/* Test-only: libraft's disk made slow, to check that fsync latency does not make nodes look
 * down or start elections (test/integration/test_slowness.py). There is no device-mapper
 * delay target and no loadable module on the test machines, so the delay is added where
 * libraft meets its disk backend: a write (append, snapshot) counts as done only at the end
 * of the next "flush" of `ms`, and flushes run one at a time, each covering every write
 * finished before it began, as fsyncs of one disk do (group commit). The synchronous
 * metadata writes (term, vote) block the loop for `ms`, as raft_uv's own fsync of them would.
 * Enabled only by ORCH_TEST_DISK_DELAY_MS (orch(8) ENVIRONMENT); never in production. */
#ifndef ORCH_SLOWDISK_H
#define ORCH_SLOWDISK_H
#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct sdreq;

struct slowdisk {
	unsigned ms;                /* 0: off */
	uv_timer_t timer;           /* the flush in progress */
	bool flushing, closing;
	struct sdreq *waiting, **waiting_tail; /* written, for the next flush */
	struct sdreq *covered;      /* written before the flush in progress began */
	uint64_t flushes;
	/* raft_uv's own methods */
	int (*append)(struct raft_io *, struct raft_io_append *, const struct raft_entry[], unsigned, raft_io_append_cb);
	int (*snapshot_put)(struct raft_io *, unsigned, struct raft_io_snapshot_put *, const struct raft_snapshot *,
			    raft_io_snapshot_put_cb);
	int (*set_term)(struct raft_io *, raft_term);
	int (*set_vote)(struct raft_io *, raft_id);
	void (*close)(struct raft_io *, raft_io_close_cb);
};

/* Keeps io's methods and the timer; the caller's hooks forward to the slowdisk_* below. */
void slowdisk_init(struct slowdisk *d, uv_loop_t *loop, struct raft_io *io, unsigned ms);
int slowdisk_append(struct slowdisk *d, struct raft_io *io, struct raft_io_append *req, const struct raft_entry e[],
		    unsigned n, raft_io_append_cb cb);
int slowdisk_snapshot_put(struct slowdisk *d, struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
			  const struct raft_snapshot *s, raft_io_snapshot_put_cb cb);
int slowdisk_set_term(struct slowdisk *d, struct raft_io *io, raft_term term);
int slowdisk_set_vote(struct slowdisk *d, struct raft_io *io, raft_id id);
/* Before io's own close: what waits for a flush is answered now (raft_uv answers its
 * requests before its close callback; so must this). */
void slowdisk_io_close(struct slowdisk *d, struct raft_io *io, raft_io_close_cb cb);
/* The timer handle, once raft is closed: cb as for uv_close, with the handle's data set to
 * `data` (the owner's, who counts its closing handles). */
void slowdisk_close(struct slowdisk *d, uv_close_cb cb, void *data);

#endif
