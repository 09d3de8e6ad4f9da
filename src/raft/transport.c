#include "raft/transport.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pconnect {
	struct otransport *o;
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

static void pc_ready(struct conn *c)
{
	struct pconnect *pc = c->data;
	uv_stream_t *s = conn_detach(c);
	pc->done = true;
	unlink_pc(pc);
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
	pc->next = o->pending;
	o->pending = pc;
	(void)id;
	pc->conn = conn_connect(o->loop, address, AUTH_KIND_RAFT, o->tls, extra, 8 + alen, &pc_ops, pc);
	return 0;
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct otransport *o = (struct otransport *)t;
	o->closed = true;
	o->accept_cb = NULL;
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

void otransport_incoming(struct otransport *o, uv_stream_t *stream, const uint8_t *extra, size_t extra_len)
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
	o->accept_cb(&o->t, id, addr, stream);
}
