#include "raft/slowdisk.h"
#include "util/mem.h"
#include <stdlib.h>
#include <time.h>

struct sdreq {
	struct slowdisk *d;
	struct raft_io_append append;       /* ours, given to raft_uv */
	struct raft_io_snapshot_put put;
	struct raft_io_append *append_req;  /* libraft's */
	raft_io_append_cb append_cb;
	struct raft_io_snapshot_put *put_req;
	raft_io_snapshot_put_cb put_cb;
	int status;
	struct sdreq *next;
};

static void answer(struct sdreq *q)
{
	if (q->append_req)
		q->append_cb(q->append_req, q->status);
	else
		q->put_cb(q->put_req, q->status);
	free(q);
}

static void answer_all(struct sdreq *q)
{
	while (q) {
		struct sdreq *next = q->next;
		answer(q);
		q = next;
	}
}

static void flush_done(uv_timer_t *t);

static void flush_start(struct slowdisk *d)
{
	d->covered = d->waiting;
	d->waiting = NULL;
	d->waiting_tail = &d->waiting;
	d->flushing = true;
	d->flushes++;
	uv_timer_start(&d->timer, flush_done, d->ms, 0);
}

static void flush_done(uv_timer_t *t)
{
	struct slowdisk *d = t->data;
	struct sdreq *q = d->covered;
	d->covered = NULL;
	d->flushing = false;
	if (d->waiting) /* written meanwhile: their flush starts now, after this one */
		flush_start(d);
	answer_all(q);
}

static void written(struct sdreq *q, int status)
{
	struct slowdisk *d = q->d;
	q->status = status;
	if (d->closing) {
		answer(q);
		return;
	}
	q->next = NULL;
	*d->waiting_tail = q;
	d->waiting_tail = &q->next;
	if (!d->flushing)
		flush_start(d);
}

static void append_written(struct raft_io_append *req, int status)
{
	written(req->data, status);
}

static void put_written(struct raft_io_snapshot_put *req, int status)
{
	written(req->data, status);
}

void slowdisk_init(struct slowdisk *d, uv_loop_t *loop, struct raft_io *io, unsigned ms)
{
	d->ms = ms;
	d->waiting = d->covered = NULL;
	d->waiting_tail = &d->waiting;
	d->append = io->append;
	d->snapshot_put = io->snapshot_put;
	d->set_term = io->set_term;
	d->set_vote = io->set_vote;
	d->close = io->close;
	uv_timer_init(loop, &d->timer);
	d->timer.data = d;
}

static struct sdreq *newreq(struct slowdisk *d)
{
	struct sdreq *q = xcalloc(1, sizeof *q);
	q->d = d;
	q->append.data = q->put.data = q;
	return q;
}

int slowdisk_append(struct slowdisk *d, struct raft_io *io, struct raft_io_append *req, const struct raft_entry e[],
		    unsigned n, raft_io_append_cb cb)
{
	struct sdreq *q = newreq(d);
	q->append_req = req;
	q->append_cb = cb;
	int rv = d->append(io, &q->append, e, n, append_written);
	if (rv)
		free(q);
	return rv;
}

int slowdisk_snapshot_put(struct slowdisk *d, struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
			  const struct raft_snapshot *s, raft_io_snapshot_put_cb cb)
{
	struct sdreq *q = newreq(d);
	q->put_req = req;
	q->put_cb = cb;
	int rv = d->snapshot_put(io, trailing, &q->put, s, put_written);
	if (rv)
		free(q);
	return rv;
}

static void block(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts))
		;
}

int slowdisk_set_term(struct slowdisk *d, struct raft_io *io, raft_term term)
{
	int rv = d->set_term(io, term);
	block(d->ms);
	return rv;
}

int slowdisk_set_vote(struct slowdisk *d, struct raft_io *io, raft_id id)
{
	int rv = d->set_vote(io, id);
	block(d->ms);
	return rv;
}

void slowdisk_io_close(struct slowdisk *d, struct raft_io *io, raft_io_close_cb cb)
{
	d->closing = true;
	uv_timer_stop(&d->timer);
	struct sdreq *q = d->covered;
	d->covered = NULL;
	struct sdreq *w = d->waiting;
	d->waiting = NULL;
	d->waiting_tail = &d->waiting;
	answer_all(q);
	answer_all(w);
	d->close(io, cb);
}

void slowdisk_close(struct slowdisk *d, uv_close_cb cb, void *data)
{
	d->timer.data = data;
	uv_close((uv_handle_t *)&d->timer, cb);
}
