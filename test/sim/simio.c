#include "simio.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

/* ---- copies ---------------------------------------------------------------------------- */

static void conf_copy(const struct raft_configuration *src, struct raft_configuration *dst)
{
	raft_configuration_init(dst);
	for (unsigned i = 0; i < src->n; i++)
		if (raft_configuration_add(dst, src->servers[i].id, src->servers[i].address, src->servers[i].role))
			abort(); /* only out of memory: the simulation cannot go on */
}

static void *rmalloc(size_t n)
{
	void *p = raft_malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

/* A snapshot with its buffers joined into one, all allocated with raft_malloc. */
static struct raft_snapshot *snap_copy(const struct raft_snapshot *src)
{
	struct raft_snapshot *s = rmalloc(sizeof *s);
	s->index = src->index;
	s->term = src->term;
	conf_copy(&src->configuration, &s->configuration);
	s->configuration_index = src->configuration_index;
	size_t len = 0;
	for (unsigned i = 0; i < src->n_bufs; i++)
		len += src->bufs[i].len;
	s->bufs = rmalloc(sizeof *s->bufs);
	s->n_bufs = 1;
	s->bufs[0].len = len;
	s->bufs[0].base = rmalloc(len);
	size_t at = 0;
	for (unsigned i = 0; i < src->n_bufs; i++) {
		memcpy((uint8_t *)s->bufs[0].base + at, src->bufs[i].base, src->bufs[i].len);
		at += src->bufs[i].len;
	}
	return s;
}

static void snap_free(struct raft_snapshot *s)
{
	if (!s)
		return;
	raft_configuration_close(&s->configuration);
	for (unsigned i = 0; i < s->n_bufs; i++)
		raft_free(s->bufs[i].base);
	raft_free(s->bufs);
	raft_free(s);
}

/* n entries in one batch (the form libraft expects from load and from the network). */
static struct raft_entry *batch_copy(const struct raft_entry *src, size_t n)
{
	if (!n)
		return NULL;
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += src[i].buf.len;
	uint8_t *batch = rmalloc(len);
	struct raft_entry *e = rmalloc(n * sizeof *e);
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		e[i].term = src[i].term;
		e[i].type = src[i].type;
		e[i].buf.base = batch + at;
		e[i].buf.len = src[i].buf.len;
		e[i].batch = batch;
		memcpy(batch + at, src[i].buf.base, src[i].buf.len);
		at += src[i].buf.len;
	}
	return e;
}

static void batch_free(struct raft_entry *e, size_t n)
{
	if (!e)
		return;
	if (n)
		raft_free(e[0].batch);
	raft_free(e);
}

/* ---- the disk ---------------------------------------------------------------------------- */

void simdisk_init(struct simdisk *d)
{
	memset(d, 0, sizeof *d);
	d->start = 1;
}

static void disk_truncate(struct simdisk *d, raft_index index)
{
	if (index < d->start)
		index = d->start;
	while (d->n && d->start + d->n - 1 >= index)
		raft_free(d->entries[--d->n].buf.base);
}

/* Drops entries up to and including index from the front. */
static void disk_compact(struct simdisk *d, raft_index upto)
{
	size_t k = 0;
	while (k < d->n && d->start + k <= upto)
		raft_free(d->entries[k++].buf.base);
	memmove(d->entries, d->entries + k, (d->n - k) * sizeof *d->entries);
	d->n -= k;
	d->start += k;
}

void simdisk_free(struct simdisk *d)
{
	disk_truncate(d, d->start);
	free(d->entries);
	snap_free(d->snap);
	simdisk_init(d);
}

static void disk_push(struct simdisk *d, const struct raft_entry *e)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->entries = xrealloc(d->entries, d->cap * sizeof *d->entries);
	}
	d->entries[d->n++] = *e;
}

/* ---- pending requests ------------------------------------------------------------------------ */

enum { OP_APPEND, OP_TRUNCATE, OP_SNAP_PUT, OP_SNAP_GET, OP_WORK, OP_SEND };

struct simop {
	int kind;
	struct simio *io; /* NULL once cancelled: the event only frees the op */
	struct simop *next;
	union {
		struct {
			struct raft_io_append *req;
			struct raft_entry *e; /* own buffers */
			unsigned n;
		} app;
		raft_index trunc;
		struct {
			struct raft_io_snapshot_put *req;
			struct raft_snapshot *snap;
			unsigned trailing;
		} put;
		struct raft_io_snapshot_get *get;
		struct raft_io_async_work *work;
		struct raft_io_send *send;
	} u;
};

struct simtick {
	struct simio *io;
};

static void op_free(struct simop *op)
{
	if (op->kind == OP_APPEND && op->u.app.e) {
		for (unsigned i = 0; i < op->u.app.n; i++)
			raft_free(op->u.app.e[i].buf.base);
		free(op->u.app.e);
	}
	if (op->kind == OP_SNAP_PUT)
		snap_free(op->u.put.snap);
	free(op);
}

static void op_unlink(struct simio *s, struct simop *op)
{
	struct simop *prev = NULL;
	for (struct simop *o = s->ops; o; prev = o, o = o->next)
		if (o == op) {
			if (prev)
				prev->next = o->next;
			else
				s->ops = o->next;
			if (s->ops_tail == o)
				s->ops_tail = prev;
			return;
		}
}

/* Completes op: persists its effect (unless cancelled) and calls libraft back. */
static void op_finish(struct simio *s, struct simop *op, int status)
{
	struct simdisk *d = s->disk;
	switch (op->kind) {
	case OP_APPEND:
		if (!status) {
			for (unsigned i = 0; i < op->u.app.n; i++)
				disk_push(d, &op->u.app.e[i]);
			free(op->u.app.e);
			op->u.app.e = NULL;
			s->nappend++;
		}
		op->u.app.req->cb(op->u.app.req, status);
		break;
	case OP_TRUNCATE:
		if (!status)
			disk_truncate(d, op->u.trunc);
		break;
	case OP_SNAP_PUT:
		if (!status) {
			struct raft_snapshot *sn = op->u.put.snap;
			op->u.put.snap = NULL;
			snap_free(d->snap);
			d->snap = sn;
			if (op->u.put.trailing == 0) {
				/* an installed snapshot replaces the whole log */
				disk_truncate(d, d->start);
				d->start = sn->index + 1;
			} else if (sn->index > op->u.put.trailing)
				disk_compact(d, sn->index - op->u.put.trailing);
		}
		if (op->u.put.req->cb)
			op->u.put.req->cb(op->u.put.req, status);
		break;
	case OP_SNAP_GET:
		op->u.get->cb(op->u.get, !status && d->snap ? snap_copy(d->snap) : NULL, status ? status : d->snap ? 0 : RAFT_NOTFOUND);
		break;
	case OP_WORK: {
		int rv = status ? status : op->u.work->work(op->u.work);
		op->u.work->cb(op->u.work, rv);
		break;
	}
	case OP_SEND:
		if (op->u.send->cb)
			op->u.send->cb(op->u.send, status);
		break;
	}
}

static void op_fire(struct world *w, void *arg)
{
	struct simop *op = arg;
	(void)w;
	struct simio *s = op->io;
	if (s) {
		op_unlink(s, op);
		op_finish(s, op, 0);
		if (s->touched)
			s->touched(s->touched_arg);
	}
	op_free(op);
}

/* An op whose event never fires (the world ends first). */
static void op_drop(void *arg)
{
	op_free(arg);
}

/* Queues op; disk operations complete in issue order, a few ms later. */
static void op_queue(struct simio *s, struct simop *op, bool disk)
{
	op->io = s;
	if (s->ops_tail)
		s->ops_tail->next = op;
	else
		s->ops = op;
	s->ops_tail = op;
	uint64_t at = s->w->now;
	if (disk) {
		at += world_range(s->w, s->disk_min_ms, s->disk_max_ms);
		if (at < s->disk_free_at)
			at = s->disk_free_at;
		s->disk_free_at = at;
	}
	world_at(s->w, at - s->w->now, op_fire, op, op_drop, NULL);
}

static struct simop *op_new(int kind)
{
	struct simop *op = xcalloc(1, sizeof *op);
	op->kind = kind;
	return op;
}

/* ---- raft_io methods ------------------------------------------------------------------------- */

static int m_init(struct raft_io *io, raft_id id, const char *address)
{
	struct simio *s = io->impl;
	(void)address;
	return s->dir->id[s->host] == id ? 0 : RAFT_INVALID;
}

static int m_load(struct raft_io *io, raft_term *term, raft_id *vote, struct raft_snapshot **snap,
		  raft_index *start, struct raft_entry *entries[], size_t *n)
{
	struct simio *s = io->impl;
	struct simdisk *d = s->disk;
	*term = d->term;
	*vote = d->vote;
	*snap = d->snap ? snap_copy(d->snap) : NULL;
	*start = d->start;
	*entries = batch_copy(d->entries, d->n);
	*n = d->n;
	return 0;
}

static void tick_fire(struct world *w, void *arg)
{
	struct simtick *t = arg;
	if (!t->io) {
		free(t);
		return;
	}
	struct simio *s = t->io;
	s->tick_cb(&s->io);
	if (t->io && s->touched)
		s->touched(s->touched_arg);
	if (t->io)
		world_at(w, s->tick_ms, tick_fire, t, free, NULL);
	else
		free(t);
}

static int m_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	struct simio *s = io->impl;
	s->tick_ms = msecs ? msecs : 1;
	s->tick_cb = tick;
	s->recv_cb = recv;
	s->tick = xcalloc(1, sizeof *s->tick);
	s->tick->io = s;
	s->dir->io[s->host] = s;
	world_at(s->w, s->tick_ms, tick_fire, s->tick, free, NULL);
	return 0;
}

static int m_bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
	struct simio *s = io->impl;
	struct simdisk *d = s->disk;
	if (d->term || d->n || d->snap)
		return RAFT_CANTBOOTSTRAP;
	struct raft_entry e = {.term = 1, .type = RAFT_CHANGE};
	int rv = raft_configuration_encode(conf, &e.buf);
	if (rv)
		return rv;
	disk_push(d, &e);
	d->term = 1;
	d->vote = 0;
	return 0;
}

/* Forced new configuration: appended as the last entry, as a disk backend would. */
static int m_recover(struct raft_io *io, const struct raft_configuration *conf)
{
	struct simio *s = io->impl;
	struct simdisk *d = s->disk;
	struct raft_entry e = {.term = d->term ? d->term : 1, .type = RAFT_CHANGE};
	int rv = raft_configuration_encode(conf, &e.buf);
	if (rv)
		return rv;
	disk_push(d, &e);
	return 0;
}

static int m_set_term(struct raft_io *io, raft_term term)
{
	struct simio *s = io->impl;
	s->disk->term = term;
	s->disk->vote = 0;
	return 0;
}

static int m_set_vote(struct raft_io *io, raft_id id)
{
	struct simio *s = io->impl;
	s->disk->vote = id;
	return 0;
}

struct simmsg {
	struct raft_message m;
	struct simio_dir *dir;
	unsigned src, dst;
};

static void msg_free(void *arg)
{
	struct simmsg *x = arg;
	if (x->m.type == RAFT_IO_APPEND_ENTRIES)
		batch_free(x->m.append_entries.entries, x->m.append_entries.n_entries);
	else if (x->m.type == RAFT_IO_INSTALL_SNAPSHOT) {
		raft_configuration_close(&x->m.install_snapshot.conf);
		raft_free(x->m.install_snapshot.data.base);
	}
	free(x);
}

static void msg_arrive(struct world *w, void *arg)
{
	struct simmsg *x = arg;
	(void)w;
	struct simio *to = x->dir->io[x->dst];
	if (!to || to->closing || !to->recv_cb) {
		msg_free(x);
		return;
	}
	x->m.server_id = x->dir->id[x->src];
	x->m.server_address = x->dir->addr[x->src];
	to->nrecv++;
	if (x->m.type == RAFT_IO_INSTALL_SNAPSHOT)
		to->ninstall++;
	to->recv_cb(&to->io, &x->m); /* libraft owns the message's entries and data now */
	free(x);
	if (!to->closing && to->touched)
		to->touched(to->touched_arg);
}

static int route(const struct simio_dir *dir, raft_id id)
{
	for (unsigned i = 0; i < dir->n; i++)
		if (dir->id[i] == id)
			return (int)i;
	return -1;
}

static int m_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m, raft_io_send_cb cb)
{
	struct simio *s = io->impl;
	req->cb = cb;
	int dst = route(s->dir, m->server_id);
	struct simop *op = op_new(OP_SEND);
	op->u.send = req;
	op_queue(s, op, false);
	if (dst < 0)
		return 0;
	struct simmsg *x = xcalloc(1, sizeof *x);
	x->m = *m;
	x->dir = s->dir;
	x->src = s->host;
	x->dst = (unsigned)dst;
	if (m->type == RAFT_IO_APPEND_ENTRIES)
		x->m.append_entries.entries = batch_copy(m->append_entries.entries, m->append_entries.n_entries);
	else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
		conf_copy(&m->install_snapshot.conf, &x->m.install_snapshot.conf);
		x->m.install_snapshot.data.base = rmalloc(m->install_snapshot.data.len);
		memcpy(x->m.install_snapshot.data.base, m->install_snapshot.data.base, m->install_snapshot.data.len);
	}
	s->nsend++;
	simnet_send(s->net, s->host, (unsigned)dst, true, msg_arrive, msg_free, x);
	return 0;
}

static int m_append(struct raft_io *io, struct raft_io_append *req, const struct raft_entry entries[], unsigned n,
		    raft_io_append_cb cb)
{
	struct simio *s = io->impl;
	req->cb = cb;
	struct simop *op = op_new(OP_APPEND);
	op->u.app.req = req;
	op->u.app.n = n;
	op->u.app.e = xcalloc(n ? n : 1, sizeof *op->u.app.e);
	for (unsigned i = 0; i < n; i++) {
		op->u.app.e[i].term = entries[i].term;
		op->u.app.e[i].type = entries[i].type;
		op->u.app.e[i].buf.len = entries[i].buf.len;
		op->u.app.e[i].buf.base = rmalloc(entries[i].buf.len);
		memcpy(op->u.app.e[i].buf.base, entries[i].buf.base, entries[i].buf.len);
	}
	op_queue(s, op, true);
	return 0;
}

static int m_truncate(struct raft_io *io, raft_index index)
{
	struct simio *s = io->impl;
	struct simop *op = op_new(OP_TRUNCATE);
	op->u.trunc = index;
	op_queue(s, op, true);
	return 0;
}

static int m_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
			  const struct raft_snapshot *snap, raft_io_snapshot_put_cb cb)
{
	struct simio *s = io->impl;
	req->cb = cb;
	struct simop *op = op_new(OP_SNAP_PUT);
	op->u.put.req = req;
	op->u.put.snap = snap_copy(snap);
	op->u.put.trailing = trailing;
	op_queue(s, op, true);
	return 0;
}

static int m_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req, raft_io_snapshot_get_cb cb)
{
	struct simio *s = io->impl;
	req->cb = cb;
	struct simop *op = op_new(OP_SNAP_GET);
	op->u.get = req;
	op_queue(s, op, true);
	return 0;
}

static int m_async_work(struct raft_io *io, struct raft_io_async_work *req, raft_io_async_work_cb cb)
{
	struct simio *s = io->impl;
	req->cb = cb;
	struct simop *op = op_new(OP_WORK);
	op->u.work = req;
	op_queue(s, op, true);
	return 0;
}

static raft_time m_time(struct raft_io *io)
{
	struct simio *s = io->impl;
	return s->w->now;
}

static int m_random(struct raft_io *io, int min, int max)
{
	struct simio *s = io->impl;
	if (max <= min)
		return min;
	return (int)world_range(s->w, (uint64_t)min, (uint64_t)max - 1);
}

struct closing {
	struct simio *s;
	raft_io_close_cb cb;
};

static void close_fire(struct world *w, void *arg)
{
	struct closing *c = arg;
	(void)w;
	raft_io_close_cb cb = c->cb;
	struct raft_io *io = &c->s->io;
	free(c);
	if (cb)
		cb(io);
}

static void m_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct simio *s = io->impl;
	if (s->closing)
		return;
	s->closing = true;
	if (s->dir->io[s->host] == s)
		s->dir->io[s->host] = NULL;
	if (s->tick)
		s->tick->io = NULL;
	s->tick = NULL;
	/* Cancelled newest first: libraft 0.15's leader truncates its in-memory log from a
	 * failed append's index, so failing an older append first removes the entries a newer
	 * pending one still references (crash in refsDecr, seen here with several appends in
	 * flight); raft_uv cancels its pending queue oldest first and can hit the same. */
	struct simop *rev = NULL;
	while (s->ops) {
		struct simop *op = s->ops;
		s->ops = op->next;
		op->next = rev;
		rev = op;
	}
	s->ops_tail = NULL;
	while (rev) {
		struct simop *op = rev;
		rev = op->next;
		op->io = NULL; /* its event frees it */
		op_finish(s, op, RAFT_CANCELED);
	}
	struct closing *c = xmalloc(sizeof *c);
	c->s = s;
	c->cb = cb;
	world_at(s->w, 0, close_fire, c, NULL, NULL);
}

void simio_init(struct simio *s, struct world *w, struct simnet *net, struct simio_dir *dir, unsigned host,
		struct simdisk *disk, const uint32_t *life)
{
	memset(s, 0, sizeof *s);
	s->w = w;
	s->net = net;
	s->dir = dir;
	s->host = host;
	s->disk = disk;
	s->life = life;
	s->disk_min_ms = 1;
	s->disk_max_ms = 3;
	s->io.version = 2;
	s->io.impl = s;
	s->io.init = m_init;
	s->io.close = m_close;
	s->io.load = m_load;
	s->io.start = m_start;
	s->io.bootstrap = m_bootstrap;
	s->io.recover = m_recover;
	s->io.set_term = m_set_term;
	s->io.set_vote = m_set_vote;
	s->io.send = m_send;
	s->io.append = m_append;
	s->io.truncate = m_truncate;
	s->io.snapshot_put = m_snapshot_put;
	s->io.snapshot_get = m_snapshot_get;
	s->io.time = m_time;
	s->io.random = m_random;
	s->io.async_work = m_async_work;
}
