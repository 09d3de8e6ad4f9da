/* Assignments from the leader to the agents, by node/feed.h's rules: the documents due go
 * out on the watches' connections, this node's own to its agent. */
#include "node/daemon.h"
#include "secret/envseal.h"
#include <string.h>
#include "agent/agent.h"
#include "secret/secrets.h"
#include "net/conn.h"
#include "util/log.h"

static void send_doc(void *arg, const struct feed_watcher *x, const void *doc, size_t len)
{
	(void)arg;
	struct mpw m;
	rpc_reply_begin(&m, x->req_id, 0);
	mpw_key(&m, "doc");
	mpw_raw(&m, doc, len);
	rpc_reply_send(x->conn, &m);
}

/* For a worker's assignments (node/feed.h): this leader opens the value with its key. */
int watch_open_sealed(void *arg, const char *kind, const char *name, const void *blob, size_t n, struct buf *out, char *err)
{
	const struct daemon *d = arg;
	if (!strcmp(kind, FEED_SPEC_KIND))
		return envseal_open_encoded(d->data_dir, blob, n, out, err);
	return secrets_open(d->data_dir, kind, name, blob, n, out, err);
}

static void self_doc(void *arg, const msgpack_object *doc)
{
	struct daemon *d = arg;
	agent_assignments(d->agent, doc);
}

void watch_add(struct daemon *d, struct conn *c, uint64_t req_id, uint64_t node_id)
{
	struct feed_out out = {send_doc, self_doc, d, watch_open_sealed};
	if (feed_add(&d->watch, c, req_id, node_id, &d->store, &out))
		TRACE("watch", c->peer, "node %016llx watches its assignments", (unsigned long long)node_id);
}

void watch_conn_gone(struct daemon *d, struct conn *c)
{
	feed_conn_gone(&d->watch, c);
}

void watch_reset_self(struct daemon *d)
{
	feed_reset_self(&d->watch);
}

void watch_free(struct daemon *d)
{
	feed_free(&d->watch);
}

void watch_push(struct daemon *d)
{
	if (!cons_is_leader(&d->cons))
		return;
	struct feed_out out = {send_doc, self_doc, d, watch_open_sealed};
	feed_push(&d->watch, &d->store, d->ident.id, &out);
}
