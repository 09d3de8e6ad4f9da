#include "net/rpc_reply.h"
#include "net/conn.h"

void rpc_reply_begin(struct mpw *w, uint64_t id, int rc, uint32_t extra)
{
	mpw_map(w, 2 + extra);
	mpw_ku64(w, "id", id);
	mpw_ki64(w, "rc", rc);
}

void rpc_reply_err(struct conn *c, uint64_t id, int rc, const char *msg)
{
	if (!c)
		return;
	struct mpw w;
	mpw_init(&w);
	rpc_reply_begin(&w, id, rc, 1);
	mpw_kstr(&w, "err", msg);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}
