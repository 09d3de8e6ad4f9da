/* This node's connection to the current leader: heartbeats (liveness is not replicated),
 * the assignment watch, and requests that only the leader can serve, forwarded with their
 * replies relayed. None of it depends on the raft role: the leader is the one raft names,
 * or, when raft names none (a spare receives nothing from the leader; a follower may not
 * have heard from it yet), the one a peer names when asked ("whois"). */
#include "node/daemon.h"
#include "agent/agent.h"
#include "metrics/node_stats.h"
#include "net/conn.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HB_MS 500
#define WHOIS_AFTER_MS 500 /* leaderless for a heartbeat period: ask, one peer per tick */
#define REMOVED_AFTER_MS 10000 /* leaderless this long: believe a peer saying we were removed */
#define LINK_VOTERS 7

struct link {
	struct daemon *d;
	struct conn *conn;
	bool ready;
	raft_id leader;
	char addr[64];
	uint64_t last_hb;
	uint64_t retry_at;
	struct buf queue; /* frames sent before the handshake completed */
	uint64_t leaderless_since;
	struct conn *whois;
	size_t whois_next;
	raft_id hint_id;   /* the leader a peer named, used while raft names none */
	char hint[64];
	char seed[64];     /* the node that accepted our join */
	bool dropping;     /* closing on purpose: the hint stays */
	/* the leader raft names but that said it does not lead: a standby or spare cut off
	 * from the cluster keeps naming its old leader (it never campaigns, and nobody sends
	 * it a newer term), so for that term it is asked around instead */
	raft_id stale;
	uint64_t stale_term;
	/* the voters the leader named in its last heartbeat reply (to a spare, which has no
	 * configuration of its own to ask) */
	char voters[LINK_VOTERS][64];
	size_t nvoters;
};

/* The leader raft names, unless that one said it does not lead (in the same term). */
static bool raft_names(struct daemon *d, struct link *l, raft_id *lid, const char **laddr)
{
	if (!cons_leader(&d->cons, lid, laddr) && !(*lid == l->stale && cons_term(&d->cons) == l->stale_term))
		return true;
	*lid = 0;
	*laddr = NULL;
	return false;
}

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

static void l_ready(struct conn *c)
{
	struct link *l = c->data;
	l->ready = true;
	TRACE("link", l->addr, "connected to leader");
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
		if (doc && doc->type == MSGPACK_OBJECT_MAP)
			agent_assignments(d->agent, doc);
		return;
	}
	if (id == 0) { /* heartbeat reply */
		const msgpack_object *v = mp_get(resp, "voters");
		if (rc == 0 && v && v->type == MSGPACK_OBJECT_ARRAY) {
			l->nvoters = 0;
			for (uint32_t i = 0; i < v->via.array.size && l->nvoters < LINK_VOTERS; i++)
				if (mp_is_str(&v->via.array.ptr[i]) && v->via.array.ptr[i].via.str.size < sizeof l->voters[0]) {
					snprintf(l->voters[l->nvoters], sizeof l->voters[0], "%.*s", (int)v->via.array.ptr[i].via.str.size,
						 v->via.array.ptr[i].via.str.ptr);
					l->nvoters++;
				}
		}
		if (rc == E_NOTFOUND && !d->stopping) {
			log_error(d->ident.name, "the leader says this node is no longer a member of the cluster; stopping");
			daemon_stop(d, 1);
		} else if (rc == E_NOLEADER) {
			TRACE("link", l->addr, "named leader is not the leader (any more): asking again");
			if (!l->hint[0]) {
				l->stale = l->leader;
				l->stale_term = cons_term(&d->cons);
			}
			conn_close(c, "not the leader");
		}
		return;
	}
	for (struct pending *p = d->pending; p; p = p->next) {
		if (p->forwarded && p->fwd_id == id) {
			p->forwarded = false; /* answered: a re-entrant fail_forwarded must skip it */
			if (p->on_reply)
				p->on_reply(p, resp);
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
	TRACE("link", l->addr, "closed: %s", why ? why : "ok");
	l->conn = NULL;
	l->ready = false;
	l->queue.len = 0;
	l->retry_at = clock_now(l->d->clock) + 200;
	if (!l->dropping)
		l->hint[0] = 0; /* a named leader we cannot reach (or not the leader): ask again */
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
		snprintf(d->link->seed, sizeof d->link->seed, "%s", d->opts.seed ? d->opts.seed : "");
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
	raft_id lid = 0;
	const char *laddr = NULL;
	if (!d->stopping) {
		if (raft_names(d, l, &lid, &laddr))
			l->hint[0] = 0; /* raft knows: it has the last word */
		else if (l->hint[0]) {
			lid = l->hint_id;
			laddr = l->hint;
		}
	}
	if (d->stopping || !lid || lid == d->ident.id) {
		drop(l);
		l->leader = 0;
		return;
	}
	if (l->conn && l->leader == lid)
		return;
	drop(l);
	if (clock_now(l->d->clock) < l->retry_at && l->leader == lid)
		return;
	l->leader = lid;
	snprintf(l->addr, sizeof l->addr, "%s", laddr);
	/* the leader binds the entries this link forwards to the id sent here */
	uint8_t me[AUTH_NODE_LEN];
	auth_node_put(d->ident.id, me);
	l->conn = conn_connect(d->loop, l->addr, AUTH_KIND_RPC, &d->ident.tok, me, sizeof me, &link_ops, l);
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
	raft_id rid;
	const char *raddr;
	mp_get_i64(resp, "rc", &rc);
	mp_get_bool(resp, "member", &member);
	mp_get_u64(resp, "leader_id", &lid);
	mp_get_strbuf(resp, "leader", laddr, sizeof laddr);
	/* A peer may not have applied our addition yet: "not a member" is believed only
	 * after a long time without a leader (a removed voter stays a candidate for good). */
	if (rc == 0 && !member && !d->stopping && l->leaderless_since && clock_now(d->clock) - l->leaderless_since >= REMOVED_AFTER_MS) {
		log_error(d->ident.name, "%s says this node is no longer a member of the cluster (removed): stopping; "
			  "remove %s to start afresh, or join again", c->peer, d->data_dir);
		daemon_stop(d, 1);
	} else if (rc == 0 && lid && lid != d->ident.id && laddr[0] && !raft_names(d, l, &rid, &raddr)) {
		TRACE("link", c->peer, "says %s (%016llx) leads", laddr, (unsigned long long)lid);
		l->hint_id = lid;
		snprintf(l->hint, sizeof l->hint, "%s", laddr);
		l->retry_at = 0;
		link_update(d);
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

/* The i-th address to ask, round robin: the voters the last leader named (to a spare),
 * the voters of the raft configuration this node has (a voter always knows the leader),
 * the node that accepted our join, the other servers, the node records. NULL when entry
 * i is not one to ask. */
static const char *peer_addr(struct daemon *d, struct link *l, size_t i)
{
	const char *addr = NULL;
	size_t nconf = cons_nservers(&d->cons);
	raft_id id;
	enum cons_role role;
	if (i < l->nvoters)
		addr = l->voters[i];
	else if ((i -= l->nvoters) < nconf) {
		cons_server(&d->cons, (unsigned)i, &id, &addr, &role);
		if (role != ROLE_VOTER)
			return NULL;
	} else if (i == nconf)
		addr = l->seed[0] ? l->seed : NULL;
	else if (i < 2 * nconf + 1) {
		cons_server(&d->cons, (unsigned)(i - nconf - 1), &id, &addr, &role);
		if (role == ROLE_VOTER)
			return NULL;
	} else
		addr = ((const struct node *)d->store.nodes.items[i - 2 * nconf - 1])->addr;
	return addr && strcmp(addr, d->ident.advertise) ? addr : NULL;
}

static void leaderless(struct daemon *d, struct link *l)
{
	raft_id lid;
	const char *laddr;
	if (raft_names(d, l, &lid, &laddr)) {
		l->leaderless_since = 0;
		return;
	}
	uint64_t now = clock_now(l->d->clock);
	if (!l->leaderless_since)
		l->leaderless_since = now;
	if (l->conn || l->whois || now - l->leaderless_since < WHOIS_AFTER_MS)
		return;
	size_t total = l->nvoters + 2 * (size_t)cons_nservers(&d->cons) + 1 + d->store.nodes.n;
	for (size_t tries = 0; tries < total; tries++) {
		const char *addr = peer_addr(d, l, l->whois_next++ % total);
		if (addr) {
			l->whois = conn_connect(d->loop, addr, AUTH_KIND_RPC, &d->ident.tok, NULL, 0, &whois_ops, l);
			return;
		}
	}
}

void link_tick(struct daemon *d)
{
	struct link *l = get(d);
	leaderless(d, l);
	node_stats_tick(&d->stats, clock_now(d->clock));
	if (!l->conn)
		link_update(d);
	if (!l->conn || clock_now(l->d->clock) - l->last_hb < HB_MS)
		return;
	l->last_hb = clock_now(l->d->clock);
	/* this node's traffic and task figures ride along (metrics/node_stats.h) */
	struct mpw stats, w;
	mpw_init(&stats);
	node_stats_encode(&d->stats.latest, &stats);
	struct req_hb q = {.node_id = d->ident.id, .stats = {.raw = stats.sb.data, .len = stats.sb.size}};
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
	if (!mp_get(req, "id"))
		mpw_ku64(&w, "id", fid);
	for (uint32_t i = 0; i < req->via.map.size; i++) {
		mpw_key_obj(&w, &req->via.map.ptr[i].key);
		if (mp_str_eq(&req->via.map.ptr[i].key, "id"))
			mpw_u64(&w, fid);
		else
			mpw_obj(&w, &req->via.map.ptr[i].val);
	}
	mpw_map_end(&w);
	struct link *l = get(d);
	if (!l->conn)
		link_update(d);
	int rc = 0;
	if (!l->conn || send_frame(l, w.sb.data, w.sb.size))
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
