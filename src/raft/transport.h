/* A raft_uv_transport that carries libraft's streams over orch's node port: outgoing
 * connections go through TLS with the node's certificate (net/conn.h) and libraft gets one
 * end of a socket pair the conn relays through TLS; incoming ones are handed over the same
 * way by the node listener. The preamble's extra bytes carry what raft_uv_tcp's own
 * handshake would: the sender's server id (which must be its certificate's) and address. */
#ifndef ORCH_TRANSPORT_H
#define ORCH_TRANSPORT_H
#include <raft.h>
#include <raft/uv.h>
#include "net/conn.h"

struct otransport {
	struct raft_uv_transport t; /* must stay first: libraft sees this */
	uv_loop_t *loop;
	const struct tlsctx *tls;
	raft_id id;
	char address[64];
	raft_uv_accept_cb accept_cb;
	struct pconnect *pending; /* outgoing connects in progress */
	struct rwatch *watches;   /* relayed streams, in both directions */
	struct probe *probes;     /* is a peer whose stream broke still there? */
	bool closed;
	/* a relayed stream with server `id` ended without a clean close (net/conn.h
	 * conn_on_end) and a connect to its address was refused: its process is gone */
	void (*on_lost)(void *data, raft_id id);
	void *lost_data;
};

void otransport_init(struct otransport *o, uv_loop_t *loop, const struct tlsctx *tls);
/* Called by the listener with a stream that passed the handshake as kind raft; `from` is
 * the conn that relays it. */
void otransport_incoming(struct otransport *o, struct conn *from, uv_stream_t *stream, const uint8_t *extra,
			 size_t extra_len);

#endif
