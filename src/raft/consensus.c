#include "raft/consensus.h"
#include "util/log.h"
#include "util/mem.h"
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void batch_entry_applied(struct consensus *c, uint64_t index, const struct apply_res *res);

/* ---- state machine callbacks --------------------------------------------------- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct consensus *c = fsm->data;
	uint64_t index = raft_last_applied(c->raft) + 1;
	if (!c->ring) /* at the first entry: a spare that never applies one needs none (2 MB) */
		c->ring = xcalloc(CONS_RESULT_RING, sizeof *c->ring);
	struct cons_slot *slot = &c->ring[index % CONS_RESULT_RING];
	slot->index = index;
	store_apply(c->store, buf->base, buf->len, &slot->res);
	if (slot->res.too_new) {
		/* Skipping it would part this replica from the nodes that apply it; so a non-zero
		 * return (not applied: a leader retries at the next commit, a follower leaves raft
		 * as unavailable) is what is wanted here, said once and shown by orch status. */
		if (c->halted_at != index) {
			c->halted_at = index;
			snprintf(c->halt_msg, sizeof c->halt_msg, "%s", slot->res.msg);
			log_error(c->name, c->clock, "entry %llu: %s; this node stops applying the log here until it runs a binary that "
				  "knows it (orch(8) UPGRADES)", (unsigned long long)index, slot->res.msg);
		}
		return RAFT_INVALID;
	}
	c->halted_at = 0;
	if (slot->res.rc && slot->res.rc != E_EXISTS)
		TRACE("fsm", c->addr, "entry %llu rejected: %s", (unsigned long long)index, slot->res.msg);
	*result = slot;
	if (c->batches)
		batch_entry_applied(c, index, &slot->res);
	return 0; /* never non-zero: that would wedge the state machine (libraft 0.15: a non-zero return stops applying at that entry without a word) */
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
	struct consensus *c = fsm->data;
	struct mpw w;
	mpw_init(&w);
	uint64_t t0 = now_ms(); /* the loop is blocked meanwhile: worth a line in the log */
	store_snapshot(c->store, &w);
	*bufs = raft_malloc(sizeof **bufs);
	if (!*bufs) {
		mpw_free(&w);
		return RAFT_NOMEM;
	}
	(*bufs)[0].len = w.sb.size;
	(*bufs)[0].base = raft_malloc(w.sb.size ? w.sb.size : 1);
	if (!(*bufs)[0].base) {
		raft_free(*bufs);
		mpw_free(&w);
		return RAFT_NOMEM;
	}
	memcpy((*bufs)[0].base, w.sb.data, w.sb.size);
	*n = 1;
	mpw_free(&w);
	log_info(c->name, c->clock, "snapshot of the state at index %llu: %zu bytes in %llu ms", (unsigned long long)raft_last_applied(c->raft),
		 (size_t)(*bufs)[0].len, (unsigned long long)(now_ms() - t0));
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct consensus *c = fsm->data;
	char err[ERR_LEN];
	int rc = store_restore(c->store, buf->base, buf->len, err);
	if (rc) {
		log_error(c->name, c->clock, "snapshot restore failed: %s", err);
		return RAFT_CORRUPT;
	}
	log_info(c->name, c->clock, "restored state from snapshot (%zu bytes, revision %llu)", (size_t)buf->len,
		 (unsigned long long)c->store->revision);
	raft_free(buf->base);
	return 0;
}

/* ---- state change detection -------------------------------------------------------- */

static uint64_t conf_sig(const struct consensus *c)
{
	uint64_t h = 1469598103934665603ull;
	for (unsigned i = 0; i < c->raft->configuration.n; i++) {
		h = (h ^ c->raft->configuration.servers[i].id) * 1099511628211ull;
		h = (h ^ (uint64_t)c->raft->configuration.servers[i].role) * 1099511628211ull;
	}
	return h;
}

static void flush(struct consensus *c);
static void batches_lost(struct consensus *c);
static void early_cb(uv_timer_t *t);
static void election_due(struct consensus *c);
static unsigned min_timeout(const struct raft *r);
#define PREVOTE_RETRY_MS 20 /* early_cb */

/* libraft 0.15 refuses every vote and pre-vote while it knows a leader, however long ago it
 * last heard from it; the Raft dissertation (4.2.3) refuses only within the minimum
 * election timeout of hearing from the leader. With 0.15's rule, when a leader goes
 * silent the first follower whose randomized timeout runs out is refused by the others
 * (they still know the leader) and the election waits for the last one to run out
 * (measured: failover 0.85-0.9 s at 500 ms against etcd's ~0.5). Forgetting a leader
 * not heard from for the minimum election timeout (min_timeout: one heartbeat less than
 * the election timeout, see random_hook) restores the dissertation's rule: the first
 * follower to time out can win. It changes nothing while the leader is heard (it
 * contacts every follower at least every heartbeat or two, well within it) and grants
 * nothing by itself: a vote still needs an up-to-date log, one per term. */
static void forget_leader(struct raft *r)
{
	raft_free(r->follower_state.current_leader.address);
	r->follower_state.current_leader.address = NULL;
	r->follower_state.current_leader.id = 0;
}

static void forget_silent_leader(struct consensus *c)
{
	struct raft *r = c->raft;
	if (raft_state(r) != RAFT_FOLLOWER || !r->follower_state.current_leader.id)
		return;
	if (r->io->time(r->io) - r->election_timer_start >= min_timeout(r))
		forget_leader(r);
}

void cons_step(struct consensus *c)
{
	if (!c->started || c->closing)
		return;
	if (c->handed_over) { /* from here, not from libraft's callback: cb may close raft */
		cons_change_cb cb = c->handover_cb;
		c->handed_over = c->handing_over = false;
		c->handover_cb = NULL;
		if (cb)
			cb(c->handover_data, 0, NULL);
		if (c->closing)
			return;
	}
	flush(c);
	if (c->batches && raft_state(c->raft) != RAFT_LEADER)
		batches_lost(c);
	forget_silent_leader(c);
	int st = raft_state(c->raft);
	raft_id lid = 0;
	const char *laddr = NULL;
	raft_leader(c->raft, &lid, &laddr);
	uint64_t sig = conf_sig(c);
	if (st == RAFT_CANDIDATE && c->last_state != RAFT_CANDIDATE && c->loop && c->raft->candidate_state.in_pre_vote) {
		c->prevote_retries = 2;
		c->prevote_term = c->raft->current_term;
		uv_timer_start(&c->early, early_cb, PREVOTE_RETRY_MS, 0);
	}
	if (st != c->last_state || lid != c->last_leader || sig != c->last_conf_sig) {
		if (st != c->last_state || lid != c->last_leader)
			log_info(c->name, c->clock, "raft: %s, leader %016llx (%s), term %llu", cons_state_name(c), (unsigned long long)lid,
				 laddr ? laddr : "-", (unsigned long long)c->raft->current_term);
		c->last_state = st;
		c->last_leader = lid;
		c->last_conf_sig = sig;
		if (c->on_state)
			c->on_state(c->state_data);
	}
	election_due(c);
}

static void check_cb(uv_check_t *h)
{
	cons_step(h->data);
}

/* ---- lifecycle ------------------------------------------------------------------- */

void cons_init_fsm(struct consensus *c, raft_id id, const char *addr, struct store *store)
{
	memset(c, 0, sizeof *c);
	c->store = store;
	c->id = id;
	c->last_state = -1;
	c->raft = &c->own;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	snprintf(c->name, sizeof c->name, "%s", addr);
	c->fsm.version = 1;
	c->fsm.data = c;
	c->fsm.apply = fsm_apply;
	c->fsm.snapshot = fsm_snapshot;
	c->fsm.restore = fsm_restore;
}

struct raft_fsm *cons_fsm(struct consensus *c)
{
	return &c->fsm;
}

void cons_attach(struct consensus *c, struct raft *r)
{
	c->raft = r;
	c->attached = true;
	c->started = true;
}

/* libraft's tick, kept so that an early election (cons_peer_lost) starts on time rather
 * than at the next tick (up to a heartbeat later), and its receive callback, wrapped; the
 * io itself is unchanged. */
static struct consensus *of_io(struct raft_io *io)
{
	return (struct consensus *)((char *)io->data - offsetof(struct consensus, own));
}

/* libraft 0.15 grants a pre-vote for term t on a log check alone, also when it is itself a
 * candidate that already voted for itself in term t; both candidates then stand in term t,
 * each with its own vote, and the votes split (another randomized timeout, another
 * term). A pre-vote is a promise to vote in the next election: a node that cannot grant
 * the vote should not grant the pre-vote (etcd grants one only for a term above its
 * own). Such a request is left unanswered, which counts as a refusal: the asking node
 * gets no majority there, and the vote request of the node already standing, which is for
 * a higher term than its own, makes it a follower that grants it. A request carries no
 * buffers of its own (nothing to free). */
static bool split_prevote(struct raft *r, const struct raft_request_vote *rv)
{
	return rv->pre_vote && raft_state(r) == RAFT_CANDIDATE && !r->candidate_state.in_pre_vote && rv->term <= r->current_term &&
	       r->voted_for == r->id;
}

/* A vote request is where a silent leader must be forgotten (forget_silent_leader): the
 * check after each loop turn may come up to a tick after the candidate asked. */
static void recv_hook(struct raft_io *io, struct raft_message *m)
{
	struct consensus *c = of_io(io);
	if (m->type == RAFT_IO_REQUEST_VOTE) {
		if (split_prevote(c->raft, &m->request_vote))
			return;
		forget_silent_leader(c);
	}
	c->recv(io, m);
}

static int start_hook(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	struct consensus *c = of_io(io);
	c->tick = tick;
	c->recv = recv;
	return c->io_start(io, msecs, tick, recv_hook);
}

/* test-only (raft/slowdisk.h): libraft's disk writes through the slow disk */
static int append_hook(struct raft_io *io, struct raft_io_append *req, const struct raft_entry e[], unsigned n,
		       raft_io_append_cb cb)
{
	return slowdisk_append(&of_io(io)->disk, io, req, e, n, cb);
}

static int put_hook(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req, const struct raft_snapshot *s,
		    raft_io_snapshot_put_cb cb)
{
	return slowdisk_snapshot_put(&of_io(io)->disk, io, trailing, req, s, cb);
}

static int term_hook(struct raft_io *io, raft_term term)
{
	return slowdisk_set_term(&of_io(io)->disk, io, term);
}

static int vote_hook(struct raft_io *io, raft_id id)
{
	return slowdisk_set_vote(&of_io(io)->disk, io, id);
}

static void io_close_hook(struct raft_io *io, raft_io_close_cb cb)
{
	slowdisk_io_close(&of_io(io)->disk, io, cb);
}

/* ---- election timing ------------------------------------------------------------------ */

/* When a leader goes silent (a partition: nothing closes), the first follower whose
 * randomized timeout runs out wins (forget_silent_leader), so the failover takes the
 * earliest of the followers' timeouts. libraft draws them from [T, 2T] (T the election
 * timeout, through its io's random method): on average T + T/3 with two followers, plus up
 * to a heartbeat before its tick notices (election_due). etcd, with the same T and
 * heartbeat h, counts its timeout in ticks from the first tick after the last heartbeat:
 * in effect [T - h, 2T - h), T - h + T/5 on average with two followers (measured here:
 * orch 0.73 s, etcd 0.58 s at T 500 ms). orch draws from etcd's lower end with a narrower
 * spread: [T - h, T - h + T*ELECTION_SPREAD_PCT/100]; followers forget a leader not heard
 * from for T - h, the same minimum (forget_silent_leader). A follower that hears its
 * leader (every heartbeat, so every h) still never campaigns: T - h is at least h more
 * than that (the CLI keeps h <= T/2), on slow links with jitter too (test_slowness.py).
 * What the narrower spread costs is a higher chance that two followers run out within a
 * round trip of each other and split their votes (split_prevote narrows that window to
 * the pre-vote's round trip); a split costs one more timeout. At 40 % two of nine
 * partition failovers split on a loaded machine; at 60 % none of nine did. */
#define ELECTION_SPREAD_PCT 60

/* The shortest silence after which a follower campaigns, or forgets its leader. */
static unsigned min_timeout(const struct raft *r)
{
	return r->election_timeout > 2 * r->heartbeat_timeout ? r->election_timeout - r->heartbeat_timeout : r->election_timeout;
}

static int random_hook(struct raft_io *io, int min, int max)
{
	struct consensus *c = of_io(io);
	if (max <= min) /* not an election timeout */
		return c->io_random(io, min, max);
	int lo = (int)min_timeout(c->raft);
	return c->io_random(io, lo, lo + (int)((long long)(max - min) * ELECTION_SPREAD_PCT / 100));
}

/* libraft looks at its election timer on its tick only, once per heartbeat interval: a
 * timeout that ran out was acted on up to a heartbeat later (half of it on average). This
 * timer fires when it runs out, and runs libraft's tick then (the path its own timer
 * takes; a tick before that changes nothing). */
static void due_cb(uv_timer_t *t)
{
	struct consensus *c = t->data;
	int st = raft_state(c->raft);
	c->due_at = 0;
	if (c->closing || !c->tick || (st != RAFT_FOLLOWER && st != RAFT_CANDIDATE))
		return;
	TRACE("raft", c->addr, "%s: election timeout of %u ms ran out", st == RAFT_FOLLOWER ? "follower" : "candidate",
	      st == RAFT_FOLLOWER ? c->raft->follower_state.randomized_election_timeout : c->raft->candidate_state.randomized_election_timeout);
	c->tick(c->raft->io);
}

/* libraft 0.15 draws a follower's randomized timeout when it becomes a follower and keeps
 * it while it stays one, through any number of terms: the follower that lost the race to
 * campaign after a leader's loss (its draw was the larger) keeps its large draw for the
 * next loss, and the failover after that takes the larger on average (seen here: 4 of 8
 * partition failovers in a row above 800 ms at a 500 ms timeout). A new draw with every
 * new term, as etcd makes, keeps the draws independent. */
static void election_due(struct consensus *c)
{
	struct raft *r = c->raft;
	int st = raft_state(r);
	if (!c->loop || !c->tick || (st != RAFT_FOLLOWER && st != RAFT_CANDIDATE)) {
		if (c->due_at && c->loop)
			uv_timer_stop(&c->due);
		c->due_at = 0;
		return;
	}
	if (st == RAFT_FOLLOWER && r->current_term != c->drawn_term) {
		c->drawn_term = r->current_term;
		r->follower_state.randomized_election_timeout =
			(unsigned)r->io->random(r->io, (int)r->election_timeout, 2 * (int)r->election_timeout);
	}
	unsigned timeout = st == RAFT_FOLLOWER ? r->follower_state.randomized_election_timeout
					       : r->candidate_state.randomized_election_timeout;
	uint64_t due = r->election_timer_start + timeout;
	if (due == c->due_at)
		return;
	c->due_at = due;
	raft_time now = r->io->time(r->io);
	uv_timer_start(&c->due, due_cb, due > now ? due - now : 0, 0);
}

static void slow_disk(struct consensus *c, unsigned ms)
{
	slowdisk_init(&c->disk, c->loop, &c->io, ms);
	c->io.append = append_hook;
	c->io.snapshot_put = put_hook;
	c->io.set_term = term_hook;
	c->io.set_vote = vote_hook;
	c->io.close = io_close_hook;
	log_info(c->name, c->clock, "raft: TEST ONLY: every disk flush delayed by %u ms (ORCH_TEST_DISK_DELAY_MS)", ms);
}

static int raft_setup(struct consensus *c, struct raft_io *io, const struct cons_settings *set, char *err)
{
	c->io_start = io->start;
	io->start = start_hook;
	int rv = raft_init(c->raft, io, &c->fsm, c->id, c->addr);
	if (rv)
		return errf(err, E_IO, "raft init in %s: %s", c->dir[0] ? c->dir : "memory",
			    raft_errmsg(c->raft)[0] ? raft_errmsg(c->raft) : raft_strerror(rv));
	raft_set_election_timeout(c->raft, set->election_ms);
	raft_set_heartbeat_timeout(c->raft, set->heartbeat_ms);
	raft_set_pre_vote(c->raft, true);
	raft_set_snapshot_threshold(c->raft, set->snapshot_threshold);
	raft_set_snapshot_trailing(c->raft, set->snapshot_trailing);
	/* libraft waits this long for the answer to an InstallSnapshot before sending it again
	 * (default 30 s): a snapshot or its answer lost on a broken connection left a new node
	 * that long without the log, and its join waiting for it (found by the simulation's
	 * lossy join storm). The state is compact: sending it takes far less. */
	unsigned install = set->election_ms * 10 > 5000 ? set->election_ms * 10 : 5000;
	raft_set_install_snapshot_timeout(c->raft, install);
	return 0;
}

static void peer_lost(void *data, raft_id id)
{
	cons_peer_lost(data, id);
}

int cons_init(struct consensus *c, uv_loop_t *loop, const char *dir, raft_id id, const char *addr,
	      const struct tlsctx *tls, struct store *store, const struct cons_settings *set, char *err)
{
	cons_init_fsm(c, id, addr, store);
	c->loop = loop;
	snprintf(c->dir, sizeof c->dir, "%s", dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return errf(err, E_IO, "create %s: %s", dir, strerror(errno));
	otransport_init(&c->tr, loop, tls);
	int rv = raft_uv_init(&c->io, loop, c->dir, &c->tr.t);
	if (rv)
		return errf(err, E_IO, "raft disk backend in %s: %s", dir, c->io.errmsg[0] ? c->io.errmsg : raft_strerror(rv));
	c->uv_io = true;
	c->tr.on_lost = peer_lost;
	c->tr.lost_data = c;
	raft_uv_set_connect_retry_delay(&c->io, 100);
	if (set->segment_size)
		raft_uv_set_segment_size(&c->io, set->segment_size);
	if (set->test_disk_delay_ms)
		slow_disk(c, set->test_disk_delay_ms);
	c->io_random = c->io.random;
	c->io.random = random_hook;
	if ((rv = raft_setup(c, &c->io, set, err)))
		return rv;
	uv_check_init(loop, &c->check);
	c->check.data = c;
	uv_idle_init(loop, &c->idle);
	uv_timer_init(loop, &c->early);
	c->early.data = c;
	uv_timer_init(loop, &c->due);
	c->due.data = c;
	c->idle.data = c;
	uv_check_start(&c->check, check_cb);
	return 0;
}

int cons_init_io(struct consensus *c, struct raft_io *io, raft_id id, const char *addr, struct store *store,
		 const struct cons_settings *set, char *err)
{
	cons_init_fsm(c, id, addr, store);
	return raft_setup(c, io, set, err);
}

int cons_bootstrap(struct consensus *c, char *err)
{
	struct raft_configuration conf;
	raft_configuration_init(&conf);
	int rv = raft_configuration_add(&conf, c->id, c->addr, RAFT_VOTER);
	if (!rv)
		rv = raft_bootstrap(c->raft, &conf);
	raft_configuration_close(&conf);
	if (rv && rv != RAFT_CANTBOOTSTRAP)
		return errf(err, E_IO, "raft bootstrap: %s", raft_errmsg(c->raft)[0] ? raft_errmsg(c->raft) : raft_strerror(rv));
	return 0;
}

int cons_recover(struct consensus *c, char *err)
{
	struct raft_configuration conf;
	raft_configuration_init(&conf);
	int rv = raft_configuration_add(&conf, c->id, c->addr, RAFT_VOTER);
	if (!rv)
		rv = raft_recover(c->raft, &conf);
	raft_configuration_close(&conf);
	if (rv)
		return errf(err, E_IO, "raft recover: %s", raft_errmsg(c->raft)[0] ? raft_errmsg(c->raft) : raft_strerror(rv));
	return 0;
}

int cons_start(struct consensus *c, char *err)
{
	int rv = raft_start(c->raft);
	if (rv)
		return errf(err, E_IO, "raft start: %s", raft_errmsg(c->raft)[0] ? raft_errmsg(c->raft) : raft_strerror(rv));
	c->started = true;
	return 0;
}

void cons_set_name(struct consensus *c, const char *name)
{
	snprintf(c->name, sizeof c->name, "%s", name);
}

void cons_set_clock(struct consensus *c, const struct clock *clock)
{
	c->clock = clock;
}

void cons_set_state_cb(struct consensus *c, cons_state_cb cb, void *data)
{
	c->on_state = cb;
	c->state_data = data;
}

static void closed(struct consensus *c)
{
	free(c->ring);
	c->ring = NULL;
	free(c->queue);
	c->queue = NULL;
	if (c->close_cb)
		c->close_cb(c->close_data);
}

/* The owner may free the consensus from its close callback: only once both handles are. */
static void handle_closed(uv_handle_t *h)
{
	struct consensus *c = h->data;
	if (--c->closing_handles == 0)
		closed(c);
}

static void raft_closed(struct raft *r)
{
	struct consensus *c = r->data;
	if (c->uv_io)
		raft_uv_close(&c->io);
	if (!c->loop) {
		closed(c);
		return;
	}
	c->closing_handles = c->disk.ms ? 5 : 4;
	if (c->disk.ms)
		slowdisk_close(&c->disk, handle_closed, c);
	uv_close((uv_handle_t *)&c->early, handle_closed);
	uv_close((uv_handle_t *)&c->due, handle_closed);
	uv_close((uv_handle_t *)&c->idle, handle_closed);
	uv_close((uv_handle_t *)&c->check, handle_closed);
}

void cons_close(struct consensus *c, void (*cb)(void *), void *data)
{
	/* writes not yet handed to libraft fail now; libraft fails the others */
	for (size_t i = 0; i < c->nqueue; i++) {
		struct apply_res res = {.rc = E_NOLEADER};
		snprintf(res.msg, sizeof res.msg, "the node is stopping; retry");
		raft_free(c->queue[i].buf.base);
		if (c->queue[i].cb)
			c->queue[i].cb(c->queue[i].data, E_NOLEADER, &res);
	}
	c->nqueue = 0;
	c->closing = true;
	c->close_cb = cb;
	c->close_data = data;
	if (c->attached) {
		/* the instance is its creator's to close; answer what it has not applied yet */
		batches_lost(c);
		closed(c);
		return;
	}
	c->raft->data = c;
	raft_close(c->raft, raft_closed);
}

/* ---- requests ---------------------------------------------------------------- */

static int rerr(struct consensus *c, int rv, char *err, const char *what)
{
	if (rv == RAFT_NOTLEADER)
		return errf(err, E_NOLEADER, "%s: this node is not the leader", what);
	if (rv == RAFT_CANTCHANGE)
		return errf(err, E_BUSY, "%s: a configuration change is already in progress", what);
	return errf(err, E_FAIL, "%s: %s", what, raft_errmsg(c->raft)[0] ? raft_errmsg(c->raft) : raft_strerror(rv));
}

/* Writes are batched: entries submitted during one loop iteration go to libraft in one
 * raft_apply (one append, one AppendEntries per follower) instead of one each, which is
 * what makes many writes in flight cheap. libraft calls a batch's callback once, when
 * its first entry is applied, so each entry's own callback is fired from the state
 * machine's apply of that entry (fsm_apply -> batch_entry_applied). */
struct batch_entry {
	cons_apply_cb cb;
	void *data;
	bool done;
};

struct batch {
	struct raft_apply req;
	struct consensus *c;
	size_t n, ndone;
	uint64_t first;
	bool raft_done;
	struct batch_entry *e;
	struct batch *next;
};

static void batch_maybe_free(struct consensus *c, struct batch *b)
{
	if (!b->raft_done || b->ndone < b->n)
		return;
	for (struct batch **pp = &c->batches; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	free(b->e);
	free(b);
}

static void batch_fail(struct batch *b, int rc, const char *msg)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->e[i].done)
			continue;
		b->e[i].done = true;
		b->ndone++;
		struct apply_res res = {.rc = rc};
		snprintf(res.msg, sizeof res.msg, "%s", msg);
		if (b->e[i].cb)
			b->e[i].cb(b->e[i].data, rc, &res);
	}
}

static void batch_done(struct raft_apply *req, int status, void *result)
{
	struct batch *b = req->data;
	(void)result;
	b->raft_done = true;
	if (status)
		batch_fail(b, status == RAFT_LEADERSHIPLOST ? E_NOLEADER : E_FAIL,
			   status == RAFT_LEADERSHIPLOST ? "leadership lost before the write was committed; retry" : raft_strerror(status));
	batch_maybe_free(b->c, b);
}

static void batch_entry_applied(struct consensus *c, uint64_t index, const struct apply_res *res)
{
	for (struct batch *b = c->batches; b; b = b->next) {
		if (index < b->first || index >= b->first + b->n)
			continue;
		struct batch_entry *e = &b->e[index - b->first];
		if (!e->done) {
			e->done = true;
			b->ndone++;
			if (e->cb)
				e->cb(e->data, 0, res);
		}
		batch_maybe_free(c, b);
		return;
	}
}

/* No longer leader: entries not applied yet may never be; answer them now (a retry is
 * safe: commands carry request ids). */
static void batches_lost(struct consensus *c)
{
	struct batch *b = c->batches;
	while (b) {
		struct batch *next = b->next;
		batch_fail(b, E_NOLEADER, "leadership lost before the write was committed; retry");
		batch_maybe_free(c, b);
		b = next;
	}
}

static void flush(struct consensus *c)
{
	size_t n = c->nqueue;
	if (!n)
		return;
	c->nqueue = 0;
	if (c->loop)
		uv_idle_stop(&c->idle);
	struct batch *b = xcalloc(1, sizeof *b);
	b->c = c;
	b->n = n;
	b->e = xcalloc(n, sizeof *b->e);
	struct raft_buffer *bufs = xcalloc(n, sizeof *bufs);
	for (size_t i = 0; i < n; i++) {
		bufs[i] = c->queue[i].buf;
		b->e[i].cb = c->queue[i].cb;
		b->e[i].data = c->queue[i].data;
	}
	b->req.data = b;
	int rv = raft_apply(c->raft, &b->req, bufs, (unsigned)n, batch_done);
	free(bufs);
	if (rv) {
		char err[ERR_LEN];
		int rc = rerr(c, rv, err, "apply");
		for (size_t i = 0; i < n; i++)
			raft_free(c->queue[i].buf.base);
		b->raft_done = true;
		batch_fail(b, rc, err);
		free(b->e);
		free(b);
		return;
	}
	b->first = b->req.index;
	struct batch **pp = &c->batches;
	while (*pp)
		pp = &(*pp)->next;
	*pp = b;
}

static void idle_cb(uv_idle_t *h)
{
	flush(h->data);
}

int cons_apply(struct consensus *c, const void *buf, size_t len, cons_apply_cb cb, void *data, char *err)
{
	/* libraft cannot carry an empty entry: followers crash freeing its batch (seen with
	 * libraft 0.17, replicationAppend -> entryBatchesDestroy), so it never enters the log. */
	if (len == 0 || len % 8)
		return errf(err, E_INVAL, "apply: entry length %zu is not a positive multiple of 8", len);
	if (!cons_is_leader(c) || c->closing)
		return errf(err, E_NOLEADER, "apply: this node is not the leader");
	if (c->handing_over)
		return errf(err, E_NOLEADER, "apply: this node is stopping and hands leadership over; retry");
	if (c->nqueue == c->capqueue) {
		c->capqueue = c->capqueue ? c->capqueue * 2 : 64;
		c->queue = xrealloc(c->queue, c->capqueue * sizeof *c->queue);
	}
	struct queued *q = &c->queue[c->nqueue++];
	q->buf.base = raft_malloc(len);
	q->buf.len = len;
	memcpy(q->buf.base, buf, len);
	q->cb = cb;
	q->data = data;
	if (c->nqueue >= 1024)
		flush(c);
	else if (c->loop)
		uv_idle_start(&c->idle, idle_cb);
	return 0;
}

struct change_req {
	struct raft_change req;
	struct raft_transfer treq;
	struct raft_barrier breq;
	cons_change_cb cb;
	void *data;
	struct consensus *c;
};

static void change_done(struct raft_change *req, int status)
{
	struct change_req *r = req->data;
	if (r->cb)
		r->cb(r->data, status ? E_FAIL : 0, status ? raft_strerror(status) : NULL);
	free(r);
}

static void transfer_done(struct raft_transfer *req)
{
	struct change_req *r = req->data;
	if (r->cb)
		r->cb(r->data, 0, NULL);
	free(r);
}

static struct change_req *mkchange(struct consensus *c, cons_change_cb cb, void *data)
{
	struct change_req *r = xcalloc(1, sizeof *r);
	r->cb = cb;
	r->data = data;
	r->c = c;
	r->req.data = r;
	r->treq.data = r;
	r->breq.data = r;
	return r;
}

static void barrier_done(struct raft_barrier *req, int status)
{
	struct change_req *r = req->data;
	if (r->cb)
		r->cb(r->data, status ? E_NOLEADER : 0, status ? raft_strerror(status) : NULL);
	free(r);
}

int cons_barrier(struct consensus *c, cons_change_cb cb, void *data, char *err)
{
	struct change_req *r = mkchange(c, cb, data);
	int rv = raft_barrier(c->raft, &r->breq, barrier_done);
	if (rv) {
		free(r);
		return rerr(c, rv, err, "barrier");
	}
	return 0;
}

int cons_add(struct consensus *c, raft_id id, const char *addr, cons_change_cb cb, void *data, char *err)
{
	struct change_req *r = mkchange(c, cb, data);
	int rv = raft_add(c->raft, &r->req, id, addr, change_done);
	if (rv) {
		free(r);
		return rerr(c, rv, err, "add server");
	}
	return 0;
}

int cons_assign(struct consensus *c, raft_id id, enum cons_role role, cons_change_cb cb, void *data, char *err)
{
	struct change_req *r = mkchange(c, cb, data);
	int rv = raft_assign(c->raft, &r->req, id, (int)role, change_done);
	if (rv) {
		free(r);
		return rerr(c, rv, err, "assign role");
	}
	return 0;
}

int cons_remove(struct consensus *c, raft_id id, cons_change_cb cb, void *data, char *err)
{
	struct change_req *r = mkchange(c, cb, data);
	int rv = raft_remove(c->raft, &r->req, id, change_done);
	if (rv) {
		free(r);
		return rerr(c, rv, err, "remove server");
	}
	return 0;
}

int cons_transfer(struct consensus *c, raft_id to, cons_change_cb cb, void *data, char *err)
{
	struct change_req *r = mkchange(c, cb, data);
	int rv = raft_transfer(c->raft, &r->treq, to, transfer_done);
	if (rv) {
		free(r);
		return rerr(c, rv, err, "transfer leadership");
	}
	return 0;
}

/* libraft's replication states of a follower (its src/progress.h; struct raft_progress is
 * public, the names are not) */
enum { PROGRESS_PROBE = 0, PROGRESS_PIPELINE = 1 };

static struct raft_progress *progress_of(struct consensus *c, raft_id id)
{
	if (!cons_is_leader(c) || !c->raft->leader_state.progress)
		return NULL;
	for (unsigned i = 0; i < c->raft->configuration.n; i++)
		if (c->raft->configuration.servers[i].id == id)
			return &c->raft->leader_state.progress[i];
	return NULL;
}

uint64_t cons_match_index(struct consensus *c, raft_id id)
{
	const struct raft_progress *p = progress_of(c, id);
	return p ? p->match_index : 0;
}

void cons_reprobe(struct consensus *c, raft_id id, uint64_t from)
{
	struct raft_progress *p = progress_of(c, id);
	if (!p || (p->state != PROGRESS_PROBE && p->state != PROGRESS_PIPELINE) || from >= p->match_index)
		return;
	/* what libraft's own progressToProbe does, from the index the follower proved it has */
	p->match_index = from;
	p->next_index = from + 1;
	p->state = PROGRESS_PROBE;
}

/* ---- queries ---------------------------------------------------------------------- */

bool cons_is_leader(struct consensus *c)
{
	return c->started && raft_state(c->raft) == RAFT_LEADER;
}

const char *cons_state_name(struct consensus *c)
{
	if (!c->started)
		return "stopped";
	switch (raft_state(c->raft)) {
	case RAFT_FOLLOWER: return "follower";
	case RAFT_CANDIDATE: return "candidate";
	case RAFT_LEADER: return "leader";
	default: return "unavailable";
	}
}

int cons_leader(struct consensus *c, raft_id *id, const char **addr)
{
	*id = 0;
	*addr = NULL;
	if (!c->started)
		return -1;
	raft_leader(c->raft, id, addr);
	return *id ? 0 : -1;
}

enum cons_role cons_role_of(const struct consensus *c, raft_id id)
{
	for (unsigned i = 0; i < c->raft->configuration.n; i++)
		if (c->raft->configuration.servers[i].id == id)
			return (enum cons_role)c->raft->configuration.servers[i].role;
	return ROLE_NONE;
}

const char *cons_role_name(enum cons_role r)
{
	switch (r) {
	case ROLE_VOTER: return "voter";
	case ROLE_STANDBY: return "standby";
	case ROLE_SPARE: return "spare";
	default: return "none";
	}
}

unsigned cons_nservers(const struct consensus *c)
{
	return c->raft->configuration.n;
}

void cons_server(const struct consensus *c, unsigned i, raft_id *id, const char **addr, enum cons_role *role)
{
	*id = c->raft->configuration.servers[i].id;
	*addr = c->raft->configuration.servers[i].address;
	*role = (enum cons_role)c->raft->configuration.servers[i].role;
}

uint64_t cons_term(const struct consensus *c) { return c->raft->current_term; }
uint64_t cons_commit_index(const struct consensus *c) { return c->raft->commit_index; }
uint64_t cons_applied_index(struct consensus *c) { return raft_last_applied(c->raft); }
uint64_t cons_last_index(struct consensus *c) { return raft_last_index(c->raft); }

static void deaf_closed(uv_handle_t *h)
{
	raft_free(h);
}

void cons_set_deaf(struct consensus *c, bool deaf)
{
	c->deaf = deaf;
}

void cons_incoming(struct consensus *c, struct conn *from, uv_stream_t *s, const uint8_t *extra, size_t extra_len)
{
	if (c->deaf) { /* the stream is one libraft would own: freed the way it frees them */
		uv_close((uv_handle_t *)s, deaf_closed);
		return;
	}
	/* without orch's transport (a simulation's raft_io) accept_cb is unset: dropped there */
	otransport_incoming(&c->tr, from, s, extra, extra_len);
}

/* ---- faster failover ------------------------------------------------------------------ */

/* Why an early election is safe, and why it does not turn into an election storm:
 *  - It is an ordinary raft election: the node still needs a majority of pre-votes, then a
 *    majority of votes for a new term, and voters still refuse a candidate whose log is
 *    behind theirs. Nothing here can make two leaders of one term or lose a committed
 *    entry; at worst it makes an election that was not needed.
 *  - The transport reports a peer only when its stream ended without TLS's close_notify
 *    (a process that stops cleanly, or libraft closing a stream, ends it cleanly) AND a
 *    new TCP connect to its address was refused (its machine is up, its process is not):
 *    a link that breaks between live processes is not reported (raft/transport.c).
 *  - It acts only when the reported peer is the leader this node follows now, and at most
 *    once per election timeout (whatever the term): never more often than its own
 *    election timer could make it campaign anyway (its randomized timeout is at least
 *    one election timeout).
 *  - A leader that is in fact alive is not deposed by one follower's report: the other
 *    followers still hear it and refuse the pre-vote (libraft 0.15 refuses any vote while
 *    it knows a leader), the term does not move, and the leader's next heartbeat makes
 *    this node its follower again. Only when a majority lost it, as when its process
 *    died, does the election go through.
 *  - Every follower of a dead leader gets the report at nearly the same moment; if all
 *    campaigned at once each would vote for itself and the votes would split (then all
 *    wait a randomized election timeout). So they take turns by rank (position by id
 *    among the voters other than the lost leader): rank 0 campaigns at once, rank k a
 *    heartbeat interval later per rank, unless by then it has voted for someone or hears
 *    a new leader (both restart libraft's election timer). Each forgets the lost leader at
 *    once, so that it grants the early candidate its (pre-)vote. Rank 0 waits
 *    EARLY_GRACE_MS first: the others learn of the death by their own probes, and a
 *    pre-vote that reaches one before its probe finished is refused (it still knows the
 *    leader), which would leave the election to rank 1.
 * libraft 0.15 has no call for "campaign now": this moves the follower's election timer
 * (fields of the public struct raft) and runs libraft's own tick, the path its timer
 * takes. */
#define EARLY_GRACE_MS 10

/* With a loop, the follower's turn comes on this timer rather than at libraft's next
 * tick (up to a heartbeat later); libraft's tick does the rest, the timer being due.
 * The same timer asks for pre-votes again, twice, PREVOTE_RETRY_MS apart, while the node
 * is still a candidate in its pre-vote phase: libraft 0.15 does not read its outgoing
 * streams, so one to a peer that restarted since it was opened looks open until a write
 * fails, and the vote request written to it is lost (seen here: the first candidate
 * after a restart lost its election and waited a whole randomized timeout). Asking again
 * is what its election timer would do later; a pre-vote changes no term and no vote. */
static void early_cb(uv_timer_t *t)
{
	struct consensus *c = t->data;
	struct raft *r = c->raft;
	if (c->closing || !c->tick)
		return;
	if (raft_state(r) == RAFT_FOLLOWER) {
		if (!r->follower_state.current_leader.id)
			c->tick(r->io);
		return;
	}
	if (raft_state(r) != RAFT_CANDIDATE || !r->candidate_state.in_pre_vote || !c->prevote_retries ||
	    r->current_term != c->prevote_term)
		return;
	c->prevote_retries--;
	r->election_timer_start = r->io->time(r->io) - r->candidate_state.randomized_election_timeout;
	c->tick(r->io);
	if (c->prevote_retries && raft_state(r) == RAFT_CANDIDATE)
		uv_timer_start(&c->early, early_cb, PREVOTE_RETRY_MS, 0);
}

void cons_peer_lost(struct consensus *c, raft_id id)
{
	struct raft *r = c->raft;
	if (!c->started || c->closing || !id || raft_state(r) != RAFT_FOLLOWER || r->follower_state.current_leader.id != id ||
	    cons_role_of(c, c->id) != ROLE_VOTER)
		return;
	raft_time now = r->io->time(r->io);
	if (c->early_count && now - c->early_at < r->election_timeout)
		return;
	c->early_term = r->current_term;
	c->early_at = now;
	c->early_count++;
	unsigned rank = 0;
	for (unsigned i = 0; i < r->configuration.n; i++) {
		const struct raft_server *s = &r->configuration.servers[i];
		if (s->role == RAFT_VOTER && s->id != id && s->id < c->id)
			rank++;
	}
	forget_leader(r);
	unsigned timeout = r->follower_state.randomized_election_timeout;
	/* without a loop (a simulation) every follower hears of the death in the same event
	 * turn: no grace needed */
	unsigned wait = rank ? rank * r->heartbeat_timeout : c->loop ? EARLY_GRACE_MS : 0;
	if (wait > timeout)
		wait = timeout;
	r->election_timer_start = now - (timeout - wait);
	log_info(c->name, c->clock, "raft: the leader %016llx is gone (its stream ended without a clean close, its port refuses), term %llu: campaigning in %u ms",
		 (unsigned long long)id, (unsigned long long)r->current_term, wait);
	if (c->loop)
		uv_timer_start(&c->early, early_cb, wait, 0);
	else if (!wait && c->tick)
		c->tick(r->io);
}

static void handover_done(struct raft_transfer *req)
{
	struct consensus *c = req->data;
	free(req);
	c->handed_over = true; /* cons_step calls back */
}

int cons_handover(struct consensus *c, cons_change_cb cb, void *data, char *err)
{
	if (c->attached || c->closing || c->handing_over || !cons_is_leader(c))
		return errf(err, E_NOTFOUND, "handover: this node does not lead");
	struct raft_transfer *req = xcalloc(1, sizeof *req);
	req->data = c;
	int rv = raft_transfer(c->raft, req, 0, handover_done);
	if (rv) {
		free(req);
		return errf(err, E_NOTFOUND, "handover: %s", raft_errmsg(c->raft)[0] ? raft_errmsg(c->raft) : raft_strerror(rv));
	}
	c->handing_over = true;
	c->handover_cb = cb;
	c->handover_data = data;
	log_info(c->name, c->clock, "raft: handing leadership over before stopping, term %llu", (unsigned long long)c->raft->current_term);
	return 0;
}

const char *cons_halted(const struct consensus *c)
{
	return c->halted_at ? c->halt_msg : NULL;
}
