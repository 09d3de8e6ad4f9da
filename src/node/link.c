/* This node's connection to the current leader: heartbeats (liveness is not replicated),
 * the assignment watch, and requests that only the leader can serve, forwarded with their
 * replies relayed. Which leader, when to ask peers who leads and what their answers mean
 * are node/uplink.h's rules; this file applies them on real connections. */
#include "node/daemon.h"
#include "node/rywait.h"
#include "node/uplink.h"
#include "node/worker.h"
#include "agent/agent.h"
#include "metrics/node_stats.h"
#include "net/access.h"
#include "net/conn.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct link {
	struct daemon *d;
	struct uplink up;
	struct conn *conn;
	bool ready;
	struct buf queue; /* frames sent before the handshake completed */
	struct conn *whois;
	bool dropping;     /* closing on purpose: the leader a peer named stays */
};

/* A reply callback may stop the daemon (leave), which closes the link and fails the
 * remaining requests re-entrantly: each request is unmarked before its callback runs and
 * the scan restarts from the head, so none is answered or freed twice. */
static void fail_forwarded(struct daemon *d)
{
	for (;;) {
		struct pending *p = d->pending;
		while (p && !p->forwarded)
			p = p->next;
		if (!p)
			return;
		p->forwarded = false;
		if (p->on_reply)
			p->on_reply(p, NULL);
		else
			rpc_relay(p, NULL);
		pending_free(p);
	}
}

/* A worker keeps whom to ask after a restart (node/worker.h). */
static void keep_peers(struct link *l)
{
	const char *peers[UPLINK_VOTERS];
	char err[ERR_LEN];
	for (size_t i = 0; i < l->up.nvoters; i++)
		peers[i] = l->up.voters[i];
	if (worker_mark_save(l->d->data_dir, peers, l->up.nvoters, err))
		log_warn(l->d->ident.name, l->d->clock, "keeping the voters to ask after a restart: %s", err);
}

static void l_ready(struct conn *c)
{
	struct link *l = c->data;
	l->ready = true;
	TRACE("link", l->up.addr, "connected to leader");
	if (l->queue.len)
		conn_write_raw(c, l->queue.data, l->queue.len);
	l->queue.len = 0;
	/* (re)subscribe to this node's assignments: the leader answers with the full set */
	struct req_watch q = {.node_id = l->d->ident.id};
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, OP_WATCH, WATCH_REQ_ID, &q);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void l_frame(struct conn *c, const msgpack_object *resp)
{
	struct link *l = c->data;
	struct daemon *d = l->d;
	uint64_t id = 0;
	int64_t rc = 0;
	mp_get_u64(resp, "id", &id);
	mp_get_i64(resp, "rc", &rc);
	if (id == WATCH_REQ_ID) {
		const msgpack_object *doc = mp_get(resp, "doc");
		if (doc && doc->type == MSGPACK_OBJECT_MAP) {
			if (d->worker)
				daemon_members(d, doc);
			mp_get_u64(doc, "ca_tag", &d->renew.want_tag);
			agent_assignments(d->agent, doc);
		}
		return;
	}
	if (id == 0) { /* heartbeat reply */
		const msgpack_object *v = mp_get(resp, "voters");
		if (rc == 0 && v && v->type == MSGPACK_OBJECT_ARRAY) {
			char before[UPLINK_VOTERS][64];
			size_t nb = l->up.nvoters;
			memcpy(before, l->up.voters, sizeof before);
			uplink_voters_clear(&l->up);
			for (uint32_t i = 0; i < v->via.array.size; i++)
				if (mp_is_str(&v->via.array.ptr[i]))
					uplink_voter_add(&l->up, v->via.array.ptr[i].via.str.ptr, v->via.array.ptr[i].via.str.size);
			if (d->worker && l->up.nvoters && (nb != l->up.nvoters || memcmp(before, l->up.voters, sizeof before)))
				keep_peers(l);
		}
		switch (uplink_hb_reply(&l->up, &d->cons, rc)) {
		case UPLINK_REMOVED:
			if (!d->stopping) {
				log_error(d->ident.name, d->clock, "the leader says this node is no longer a member of the cluster; stopping");
				daemon_stop(d, 1);
			}
			break;
		case UPLINK_NOT_LEADER:
			TRACE("link", l->up.addr, "named leader is not the leader (any more): asking again");
			conn_close(c, "not the leader");
			break;
		default:
			break;
		}
		return;
	}
	for (struct pending *p = d->pending; p; p = p->next) {
		if (p->forwarded && p->fwd_id == id) {
			p->forwarded = false; /* answered: a re-entrant fail_forwarded must skip it */
			if (p->on_reply)
				p->on_reply(p, resp);
			else if (rywait_park(d, p, resp))
				return; /* relayed once this node applied the write */
			else
				rpc_relay(p, resp);
			pending_free(p);
			return;
		}
	}
}

static void l_close(struct conn *c, const char *why)
{
	struct link *l = c->data;
	if (l->conn != c)
		return;
	TRACE("link", l->up.addr, "closed: %s", why ? why : "ok");
	l->conn = NULL;
	l->ready = false;
	l->queue.len = 0;
	uplink_closed(&l->up, l->dropping, clock_now(l->d->clock));
	fail_forwarded(l->d);
}

static const struct conn_ops link_ops = {
	.on_ready = l_ready,
	.on_frame = l_frame,
	.on_close = l_close,
};

static struct link *get(struct daemon *d)
{
	if (!d->link) {
		d->link = xcalloc(1, sizeof *d->link);
		d->link->d = d;
		uplink_init(&d->link->up, d->ident.id, d->ident.advertise, d->opts.seed);
		/* a worker's raft and store name nobody: start from the peers it kept */
		char kept[WORKER_PEERS_MAX][64];
		size_t n = d->worker ? worker_peers_load(d->data_dir, kept) : 0;
		for (size_t i = 0; i < n; i++)
			uplink_voter_add(&d->link->up, kept[i], strlen(kept[i]));
	}
	return d->link;
}

static void drop(struct link *l)
{
	if (l->conn) {
		struct conn *c = l->conn;
		l->dropping = true;
		conn_close(c, "leader changed");
		l->dropping = false;
	}
	l->conn = NULL;
	l->ready = false;
	l->queue.len = 0;
}

void link_update(struct daemon *d)
{
	struct link *l = get(d);
	switch (uplink_update(&l->up, &d->cons, d->stopping, l->conn != NULL, clock_now(d->clock))) {
	case UPLINK_KEEP:
		return;
	case UPLINK_CLOSE:
		drop(l);
		return;
	case UPLINK_CONNECT:
		break;
	}
	drop(l);
	/* the leader binds the entries this link forwards to the id sent here */
	uint8_t me[AUTH_NODE_LEN];
	auth_node_put(d->ident.id, me);
	l->conn = conn_connect(d->loop, l->up.addr, AUTH_KIND_RPC, &d->ident.tls, me, sizeof me, &link_ops, l);
}

static int send_frame(struct link *l, const void *p, size_t n)
{
	if (!l->conn)
		return -1;
	if (l->ready)
		return conn_send(l->conn, p, n);
	uint8_t hdr[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	buf_append(&l->queue, hdr, 4);
	buf_append(&l->queue, p, n);
	return 0;
}

/* ---- a node without a leader asks its peers who leads --------------------------------- */

static void w_ready(struct conn *c)
{
	struct link *l = c->data;
	struct req_whois q = {.node_id = l->d->ident.id};
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, OP_WHOIS, 1, &q);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

static void w_frame(struct conn *c, const msgpack_object *resp)
{
	struct link *l = c->data;
	struct daemon *d = l->d;
	int64_t rc = -1;
	bool member = true;
	uint64_t lid = 0;
	char laddr[64] = "";
	mp_get_i64(resp, "rc", &rc);
	mp_get_bool(resp, "member", &member);
	mp_get_u64(resp, "leader_id", &lid);
	mp_get_strbuf(resp, "leader", laddr, sizeof laddr);
	switch (uplink_whois_reply(&l->up, &d->cons, rc, member, lid, laddr, clock_now(d->clock))) {
	case UPLINK_REMOVED:
		if (!d->stopping) {
			log_error(d->ident.name, d->clock, "%s says this node is no longer a member of the cluster (removed): stopping; "
				  "remove %s to start afresh, or join again", c->peer, d->data_dir);
			daemon_stop(d, 1);
		}
		break;
	case UPLINK_LEADER:
		TRACE("link", c->peer, "says %s (%016llx) leads", laddr, (unsigned long long)lid);
		link_update(d);
		break;
	default:
		break;
	}
	conn_close(c, NULL);
}

static void w_close(struct conn *c, const char *why)
{
	struct link *l = c->data;
	(void)why;
	if (l->whois == c)
		l->whois = NULL;
}

static const struct conn_ops whois_ops = {
	.on_ready = w_ready,
	.on_frame = w_frame,
	.on_close = w_close,
};

void link_tick(struct daemon *d)
{
	struct link *l = get(d);
	uint64_t now = clock_now(d->clock);
	const char *peer = uplink_whois_peer(&l->up, &d->cons, &d->store, l->conn || l->whois, now);
	if (peer)
		l->whois = conn_connect(d->loop, peer, AUTH_KIND_RPC, &d->ident.tls, NULL, 0, &whois_ops, l);
	node_stats_tick(&d->stats, now);
	if (!l->conn)
		link_update(d);
	if (!uplink_hb_due(&l->up, l->conn != NULL, clock_now(d->clock)))
		return;
	/* this node's traffic and task figures ride along (metrics/node_stats.h) */
	struct mpw stats, w;
	mpw_init(&stats);
	node_stats_encode(&d->stats.latest, &stats);
	struct req_hb q = {.node_id = d->ident.id, .stats = {.raw = stats.sb.data, .len = stats.sb.size},
			   .applied = cons_applied_index(&d->cons)};
	mpw_init(&w);
	proto_encode(&w, OP_HB, 0, &q);
	send_frame(l, w.sb.data, w.sb.size);
	mpw_free(&w);
	mpw_free(&stats);
}

/* Re-packs the request with a link-local id. */
int link_forward(struct daemon *d, struct pending *p, const msgpack_object *req, char *err)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	uint64_t fid = ++d->fwd_ids;
	/* op first: the leader sizes a frame by the op its first bytes name (net/frame.h) */
	const msgpack_object *op = mp_get(req, "op");
	if (op) {
		mpw_key(&w, "op");
		mpw_obj(&w, op);
	}
	if (!mp_get(req, "id"))
		mpw_ku64(&w, "id", fid);
	for (uint32_t i = 0; i < req->via.map.size; i++) {
		/* op went first; an origin is this node's to say, never the caller's */
		if (mp_str_eq(&req->via.map.ptr[i].key, "op") || mp_str_eq(&req->via.map.ptr[i].key, "origin"))
			continue;
		mpw_key_obj(&w, &req->via.map.ptr[i].key);
		if (mp_str_eq(&req->via.map.ptr[i].key, "id"))
			mpw_u64(&w, fid);
		else
			mpw_obj(&w, &req->via.map.ptr[i].val);
	}
	if (p->has_origin)
		access_origin_put(&w, &p->origin, p->origin_op);
	mpw_map_end(&w);
	struct link *l = get(d);
	if (!l->conn)
		link_update(d);
	int rc = 0;
	/* the leader would close the link over it, failing every request it carries */
	enum op o;
	size_t max = proto_frame_max(proto_lookup(op, &o) ? -1 : (int)o, true);
	if (w.sb.size > max)
		rc = errf(err, E_INVAL, "request of %zu bytes is over the limit of %zu", w.sb.size, max);
	else if (!l->conn || send_frame(l, w.sb.data, w.sb.size))
		rc = errf(err, E_NOLEADER, "no leader reachable right now; retry");
	else {
		p->forwarded = true;
		p->fwd_id = fid;
	}
	mpw_free(&w);
	return rc;
}

int link_forward_raw(struct daemon *d, struct pending *p, const void *body, size_t len, char *err)
{
	struct mpr r;
	if (mpr_decode(&r, body, len))
		return errf(err, E_INVAL, "forward: bad request");
	int rc = link_forward(d, p, r.root, err);
	mpr_free(&r);
	return rc;
}

int link_forward_op(struct daemon *d, struct pending *p, enum op op, const void *args, char *err)
{
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, op, 0, args);
	int rc = link_forward_raw(d, p, w.sb.data, w.sb.size, err);
	mpw_free(&w);
	return rc;
}

bool link_leader(struct daemon *d, uint64_t *id, const char **addr)
{
	const struct link *l = d->link;
	if (!l || !l->ready || !l->up.leader)
		return false;
	*id = l->up.leader;
	*addr = l->up.addr;
	return true;
}

void link_close(struct daemon *d)
{
	if (!d->link)
		return;
	if (d->link->whois)
		conn_close(d->link->whois, "stopping");
	drop(d->link);
	fail_forwarded(d);
	buf_free(&d->link->queue);
	free(d->link);
	d->link = NULL;
}
