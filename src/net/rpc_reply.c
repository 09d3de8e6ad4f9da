#include "net/rpc_reply.h"
#include "net/conn.h"

void rpc_reply_begin(struct mpw *w, uint64_t id, int rc)
{
	mpw_init(w);
	mpw_map_begin(w);
	mpw_ku64(w, "id", id);
	mpw_ki64(w, "rc", rc);
}

void rpc_reply_send(struct conn *c, struct mpw *w)
{
	uint64_t ri = c && c->ops && c->ops->reply_stamp ? c->ops->reply_stamp(c) : 0;
	if (ri)
		mpw_ku64(w, "ri", ri);
	mpw_map_end(w);
	if (c)
		conn_send_mpw(c, w);
	mpw_free(w);
}

void rpc_reply_err(struct conn *c, uint64_t id, int rc, const char *msg)
{
	if (!c)
		return;
	struct mpw w;
	rpc_reply_begin(&w, id, rc);
	mpw_kstr(&w, "err", msg);
	rpc_reply_send(c, &w);
}

void rpc_reply_ok(struct conn *c, uint64_t id)
{
	if (!c)
		return;
	struct mpw w;
	rpc_reply_begin(&w, id, 0);
	rpc_reply_send(c, &w);
}
