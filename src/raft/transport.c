#include "raft/transport.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pconnect {
	struct otransport *o;
	raft_id id;
	char addr[64];
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	struct conn *conn;
	bool done;
	struct pconnect *next;
};

static void unlink_pc(struct pconnect *pc)
{
	struct pconnect **pp = &pc->o->pending;
	while (*pp && *pp != pc)
		pp = &(*pp)->next;
	if (*pp)
		*pp = pc->next;
}

/* A relayed stream's conn, until it ends: a peer's death shows there first (its kernel
 * closes its sockets at once), long before libraft's election timeout would. */
struct rwatch {
	struct otransport *o;
	raft_id id;
	char addr[64];
	struct conn *conn;
	struct rwatch *next;
};

/* A stream that ended without a clean close is not proof enough that its peer died: a
 * connection can break between two live processes (a reset on the path, a flapping
 * link). One TCP connect to the peer's address tells: refused (or accepted, then reset)
 * means its machine answered and nothing listens there any more (the process is gone);
 * accepted and still open after PROBE_MS means it is alive (a broken link, no reason to
 * depose it); no answer means its machine or the path to it is silent, which libraft's
 * election timeout is for. */
#define PROBE_MS 200
struct probe {
	uv_tcp_t tcp;
	uv_connect_t req;
	uv_timer_t timer;
	struct otransport *o; /* NULL once the transport closed */
	raft_id id;
	int handles;
	struct probe *next;
};

static void probe_unlink(struct probe *p)
{
	if (!p->o)
		return;
	for (struct probe **pp = &p->o->probes; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	p->o = NULL;
}

static void probe_closed(uv_handle_t *h)
{
	struct probe *p = h->data;
	if (--p->handles == 0)
		free(p);
}

static void probe_end(struct probe *p, bool dead)
{
	struct otransport *o = p->o;
	probe_unlink(p);
	if (!uv_is_closing((uv_handle_t *)&p->tcp)) {
		uv_close((uv_handle_t *)&p->tcp, probe_closed);
		uv_close((uv_handle_t *)&p->timer, probe_closed);
	}
	if (o && !o->closed) {
		TRACE("raft", o->address, "probe of %016llx: %s", (unsigned long long)p->id, dead ? "refused (gone)" : "alive or silent");
		if (dead && o->on_lost)
			o->on_lost(o->lost_data, p->id);
	}
}

static void probe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char sink[64]; /* nothing is kept: only whether the peer resets */
	(void)h;
	(void)suggested;
	*b = uv_buf_init(sink, sizeof sink);
}

/* A node's port does not speak first (TLS waits for our hello): a reset or an end here is
 * a listener that went away with its process after it had queued our connect. */
static void probe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	(void)b;
	if (nread != 0 && !uv_is_closing((uv_handle_t *)s))
		probe_end(s->data, nread < 0);
}

static void probe_connected(uv_connect_t *req, int status)
{
	struct probe *p = req->data;
	if (uv_is_closing((uv_handle_t *)&p->tcp))
		return;
	/* Accepted is not yet alive: a process being killed closes its descriptors one by
	 * one, and the stream that told us may have closed before its listener did (seen
	 * here: a connect accepted by the kernel, then reset). Alive is: no reset until the
	 * probe's time is up. */
	if (!status && !uv_read_start((uv_stream_t *)&p->tcp, probe_alloc, probe_read))
		return;
	probe_end(p, status == UV_ECONNREFUSED);
}

static void probe_timeout(uv_timer_t *t)
{
	probe_end(t->data, false);
}

static void probe_start(struct otransport *o, raft_id id, const char *addr)
{
	struct sockaddr_in sa;
	char err[ERR_LEN];
	if (parse_ipport(addr, &sa, err))
		return;
	struct probe *p = xcalloc(1, sizeof *p);
	p->o = o;
	p->id = id;
	uv_tcp_init(o->loop, &p->tcp);
	uv_timer_init(o->loop, &p->timer);
	p->tcp.data = p->timer.data = p->req.data = p;
	p->handles = 2;
	p->next = o->probes;
	o->probes = p;
	uv_timer_start(&p->timer, probe_timeout, PROBE_MS, 0);
	if (uv_tcp_connect(&p->req, &p->tcp, (const struct sockaddr *)&sa, probe_connected))
		probe_end(p, false);
}

static void watch_end(void *arg, bool lost)
{
	struct rwatch *w = arg;
	struct otransport *o = w->o;
	for (struct rwatch **pp = &o->watches; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	if (lost && !o->closed && o->on_lost) {
		TRACE("raft", o->address, "stream with %016llx ended without a clean close: probing %s", (unsigned long long)w->id, w->addr);
		probe_start(o, w->id, w->addr);
	}
	free(w);
}

static void watch(struct otransport *o, struct conn *conn, raft_id id, const char *addr)
{
	struct rwatch *w = xcalloc(1, sizeof *w);
	w->o = o;
	w->id = id;
	snprintf(w->addr, sizeof w->addr, "%s", addr);
	w->conn = conn;
	w->next = o->watches;
	o->watches = w;
	conn_on_end(conn, watch_end, w); /* may call watch_end at once */
}

static void pc_ready(struct conn *c)
{
	struct pconnect *pc = c->data;
	uv_stream_t *s = conn_detach(c);
	pc->done = true;
	unlink_pc(pc);
	if (s)
		watch(pc->o, c, pc->id, pc->addr);
	pc->cb(pc->req, s, 0);
	free(pc);
}

static void pc_close(struct conn *c, const char *why)
{
	struct pconnect *pc = c->data;
	if (pc->done)
		return;
	pc->done = true;
	unlink_pc(pc);
	TRACE("raft", pc->o->address, "connect failed: %s", why ? why : "closed");
	pc->cb(pc->req, NULL, pc->o->closed ? RAFT_CANCELED : RAFT_NOCONNECTION);
	free(pc);
}

static const struct conn_ops pc_ops = {
	.on_ready = pc_ready,
	.on_close = pc_close,
};

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct otransport *o = (struct otransport *)t;
	o->id = id;
	snprintf(o->address, sizeof o->address, "%s", address);
	return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct otransport *o = (struct otransport *)t;
	o->accept_cb = cb;
	return 0;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct otransport *o = (struct otransport *)t;
	if (o->closed)
		return RAFT_CANCELED;
	uint8_t extra[8 + 64];
	size_t alen = strlen(o->address);
	auth_node_put(o->id, extra);
	memcpy(extra + 8, o->address, alen);
	struct pconnect *pc = xcalloc(1, sizeof *pc);
	pc->o = o;
	pc->req = req;
	pc->cb = cb;
	pc->id = id;
	snprintf(pc->addr, sizeof pc->addr, "%s", address);
	pc->next = o->pending;
	o->pending = pc;
	pc->conn = conn_connect(o->loop, address, AUTH_KIND_RAFT, o->tls, extra, 8 + alen, &pc_ops, pc);
	return 0;
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct otransport *o = (struct otransport *)t;
	o->closed = true;
	o->accept_cb = NULL;
	while (o->watches) { /* the conns outlive the transport: they must not call back */
		struct rwatch *w = o->watches;
		o->watches = w->next;
		conn_on_end(w->conn, NULL, NULL);
		free(w);
	}
	while (o->probes) /* they free themselves once their handles closed */
		probe_end(o->probes, false);
	while (o->pending) {
		struct pconnect *pc = o->pending;
		conn_close(pc->conn, "transport closed"); /* pc_close unlinks and frees pc */
		if (o->pending == pc) { /* already done: drop it */
			o->pending = pc->next;
		}
	}
	if (cb)
		cb(t);
}

void otransport_init(struct otransport *o, uv_loop_t *loop, const struct tlsctx *tls)
{
	memset(o, 0, sizeof *o);
	o->t.impl = o;
	o->t.init = t_init;
	o->t.listen = t_listen;
	o->t.connect = t_connect;
	o->t.close = t_close;
	o->loop = loop;
	o->tls = tls;
}

static void drop_closed(uv_handle_t *h)
{
	raft_free(h);
}

void otransport_incoming(struct otransport *o, struct conn *from, uv_stream_t *stream, const uint8_t *extra,
			 size_t extra_len)
{
	if (!o->accept_cb || o->closed || extra_len < 9 || extra_len > 8 + 63) {
		uv_close((uv_handle_t *)stream, drop_closed);
		return;
	}
	raft_id id = auth_node_get(extra, extra_len);
	char addr[64];
	memcpy(addr, extra + 8, extra_len - 8);
	addr[extra_len - 8] = 0;
	TRACE("raft", addr, "incoming raft stream from id %llx", (unsigned long long)id);
	if (from)
		watch(o, from, id, addr);
	o->accept_cb(&o->t, id, addr, stream);
}
