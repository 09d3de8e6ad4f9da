/* A simulated node's traffic with its peers, on simulated connections (simconn.h): the
 * link to the leader and the whois questions, run by node/uplink.h's rules as node/link.c
 * runs them; the requests a node serves (node/rpc.c: hb, watch, apply, whois; joins in
 * simjoin.c); and the leader's assignment feed, by node/feed.h's rules as node/watch.c. */
#include "simproc.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smsg *smsg_new(enum mkind kind)
{
	struct smsg *m = xcalloc(1, sizeof *m);
	m->kind = kind;
	return m;
}

void smsg_free(void *arg)
{
	struct smsg *m = arg;
	free(m->data);
	free(m);
}

static void send_msg(struct sconn *c, int side, struct smsg *m)
{
	sconn_send(c, side, m, smsg_free);
}

/* ---- the link to the leader (node/link.c) --------------------------------------------------- */

static void fail_forwarded(struct sproc *p)
{
	while (p->fwds) {
		struct sfwd *f = p->fwds;
		p->fwds = f->next;
		struct apply_res res = {.rc = E_NOLEADER};
		snprintf(res.msg, sizeof res.msg, "lost the connection to the leader before it answered; retry");
		if (f->cb)
			f->cb(f->data, E_NOLEADER, &res);
		free(f);
	}
}

static void l_ready(struct sconn *c, void *data)
{
	struct sproc *p = data;
	/* (re)subscribe to this node's assignments: the leader answers with the full set */
	struct smsg *m = smsg_new(M_WATCH);
	m->a = p->n->ident.id;
	send_msg(c, SCONN_CLIENT, m);
}

static void l_frame(struct sconn *c, void *data, const void *msg)
{
	struct sproc *p = data;
	const struct smsg *m = msg;
	switch (m->kind) {
	case M_DOC: {
		struct mpr r;
		if (!mpr_decode(&r, m->data, m->len)) {
			fakert_assign(&p->rt, r.root);
			mpr_free(&r);
		}
		break;
	}
	case M_HB_REP:
		if (m->rc == 0 && m->nvoters) {
			uplink_voters_clear(&p->up);
			for (size_t i = 0; i < m->nvoters; i++)
				uplink_voter_add(&p->up, m->voters[i], strlen(m->voters[i]));
			if (p->n->worker) { /* kept on its disk (node/link.c) */
				p->n->nkept = p->up.nvoters;
				memcpy(p->n->kept, p->up.voters, sizeof p->n->kept);
			}
		}
		switch (uplink_hb_reply(&p->up, &p->cons, m->rc)) {
		case UPLINK_REMOVED:
			p->n->stopped_self = true;
			snprintf(p->n->stop_why, sizeof p->n->stop_why, "the leader says it is no longer a member: %s", m->msg);
			proc_end(p->cl, p->n->host, false);
			break;
		case UPLINK_NOT_LEADER:
			sconn_close(c, SCONN_CLIENT, "not the leader");
			break;
		default:
			break;
		}
		break;
	case M_APPLY_REP:
		for (struct sfwd **pp = &p->fwds; *pp; pp = &(*pp)->next)
			if ((*pp)->id == m->a) {
				struct sfwd *f = *pp;
				*pp = f->next;
				struct apply_res res = {.rc = m->rc, .id = m->res_id};
				snprintf(res.msg, sizeof res.msg, "%s", m->msg);
				if (f->cb)
					f->cb(f->data, m->rc, &res);
				free(f);
				break;
			}
		break;
	default:
		break;
	}
}

static void l_closed(struct sconn *c, void *data, const char *why)
{
	struct sproc *p = data;
	(void)why;
	if (p->link != c)
		return;
	p->link = NULL;
	uplink_closed(&p->up, p->dropping, proc_now(p));
	fail_forwarded(p);
}

static const struct sconn_ops link_ops = {l_ready, l_frame, l_closed};

static void drop(struct sproc *p)
{
	if (!p->link)
		return;
	p->dropping = true;
	sconn_close(p->link, SCONN_CLIENT, "leader changed");
	p->dropping = false;
	p->link = NULL;
}

void plink_update(struct sproc *p)
{
	switch (uplink_update(&p->up, &p->cons, p->dead, p->link != NULL, proc_now(p))) {
	case UPLINK_KEEP:
		return;
	case UPLINK_CLOSE:
		drop(p);
		return;
	case UPLINK_CONNECT:
		break;
	}
	drop(p);
	int h = host_of_addr(p->cl, p->up.addr);
	if (h < 0) { /* an address no host has: connecting fails */
		uplink_closed(&p->up, false, proc_now(p));
		return;
	}
	p->link = sconn_open(&p->cl->conns, p->n->host, &p->n->life, (unsigned)h, &link_ops, p);
}

int plink_forward(struct sproc *p, const void *entry, size_t n, void (*cb)(void *data, int rc, const struct apply_res *res),
		  void *data, char *err)
{
	if (!p->link)
		plink_update(p);
	if (!p->link)
		return errf(err, E_NOLEADER, "no leader reachable right now; retry");
	struct sfwd *f = xcalloc(1, sizeof *f);
	f->id = ++p->fwd_ids;
	f->cb = cb;
	f->data = data;
	f->next = p->fwds;
	p->fwds = f;
	struct smsg *m = smsg_new(M_APPLY);
	m->a = f->id;
	m->data = xmalloc(n);
	memcpy(m->data, entry, n);
	m->len = n;
	send_msg(p->link, SCONN_CLIENT, m);
	return 0;
}

/* ---- whois (node/link.c) ---------------------------------------------------------------- */

static void w_ready(struct sconn *c, void *data)
{
	struct sproc *p = data;
	struct smsg *m = smsg_new(M_WHOIS);
	m->a = p->n->ident.id;
	send_msg(c, SCONN_CLIENT, m);
}

static void w_frame(struct sconn *c, void *data, const void *msg)
{
	struct sproc *p = data;
	const struct smsg *m = msg;
	if (m->kind != M_WHOIS_REP)
		return;
	switch (uplink_whois_reply(&p->up, &p->cons, m->rc, m->member, m->res_id, m->addr, proc_now(p))) {
	case UPLINK_REMOVED:
		sconn_close(c, SCONN_CLIENT, NULL);
		p->n->stopped_self = true;
		snprintf(p->n->stop_why, sizeof p->n->stop_why, "%s says this node is no longer a member",
			 p->cl->n[c->host[SCONN_SERVER]].ident.name);
		proc_end(p->cl, p->n->host, false);
		return;
	case UPLINK_LEADER:
		plink_update(p);
		break;
	default:
		break;
	}
	sconn_close(c, SCONN_CLIENT, NULL);
}

static void w_closed(struct sconn *c, void *data, const char *why)
{
	struct sproc *p = data;
	(void)why;
	if (p->whois == c)
		p->whois = NULL;
}

static const struct sconn_ops whois_ops = {w_ready, w_frame, w_closed};

void plink_tick(struct sproc *p)
{
	uint64_t now = proc_now(p);
	const char *peer = uplink_whois_peer(&p->up, &p->cons, &p->store, p->link || p->whois, now);
	int h = peer ? host_of_addr(p->cl, peer) : -1;
	if (h >= 0)
		p->whois = sconn_open(&p->cl->conns, p->n->host, &p->n->life, (unsigned)h, &whois_ops, p);
	if (!p->link)
		plink_update(p);
	if (!uplink_hb_due(&p->up, p->link != NULL, now))
		return;
	struct smsg *m = smsg_new(M_HB);
	m->a = p->n->ident.id;
	m->res_id = cons_applied_index(&p->cons);
	send_msg(p->link, SCONN_CLIENT, m);
}

void plink_end(struct sproc *p)
{
	fail_forwarded(p);
	feed_free(&p->feed);
}

/* ---- the leader's assignment feed (node/watch.c) ----------------------------------------- */

static void feed_send(void *arg, const struct feed_watcher *x, const void *doc, size_t len)
{
	(void)arg;
	struct smsg *m = smsg_new(M_DOC);
	m->data = xmalloc(len);
	memcpy(m->data, doc, len);
	m->len = len;
	send_msg(x->conn, SCONN_SERVER, m);
}

static void feed_self(void *arg, const msgpack_object *doc)
{
	struct sproc *p = arg;
	fakert_assign(&p->rt, doc);
}

void plink_feed(struct sproc *p)
{
	if (!cons_is_leader(&p->cons))
		return;
	struct feed_out out = {feed_send, feed_self, p, NULL};
	feed_push(&p->feed, &p->store, p->n->ident.id, &out);
}

/* ---- requests served (node/rpc.c) ----------------------------------------------------------- */

static void reply(struct sconn *c, enum mkind kind, uint64_t a, int rc, const char *msg)
{
	struct smsg *m = smsg_new(kind);
	m->a = a;
	m->rc = rc;
	snprintf(m->msg, sizeof m->msg, "%s", msg ? msg : "");
	send_msg(c, SCONN_SERVER, m);
}

struct apply_ctx {
	struct sproc *p;
	struct snode *n;
	uint32_t life;
	struct sconn *c;
	uint64_t fwd_id;
};

static void apply_replied(void *data, int rc, const struct apply_res *res)
{
	struct apply_ctx *x = data;
	/* answered while the process that took the write still runs, on its connection */
	if (x->n->life == x->life && sconn_is_open(x->c, SCONN_SERVER)) {
		struct smsg *m = smsg_new(M_APPLY_REP);
		m->a = x->fwd_id;
		m->rc = rc;
		m->res_id = res ? res->id : 0;
		snprintf(m->msg, sizeof m->msg, "%s", res ? res->msg : "");
		send_msg(x->c, SCONN_SERVER, m);
	}
	sconn_put(x->c);
	free(x);
}

static void serve_apply(struct sproc *p, struct sconn *c, const struct smsg *m)
{
	char err[ERR_LEN];
	/* node/rpc.c op_apply: an entry only from the node it names, a member, to a leader */
	uint64_t peer = p->cl->n[c->host[SCONN_CLIENT]].ident.id;
	const struct node *pn = table_get_u64(&p->store.nodes, peer);
	int rc = cmd_check_origin(m->data, m->len, peer, pn && pn->worker, err);
	if (!rc && !table_get_u64(&p->store.nodes, peer) && cons_role_of(&p->cons, peer) == ROLE_NONE)
		rc = errf(err, E_AUTH, "apply: node %016llx is not a member of this cluster", (unsigned long long)peer);
	if (!rc && !cons_is_leader(&p->cons))
		rc = errf(err, E_NOLEADER, "apply: this node is not the leader; retry");
	if (rc) {
		reply(c, M_APPLY_REP, m->a, rc, err);
		return;
	}
	struct apply_ctx *x = xcalloc(1, sizeof *x);
	*x = (struct apply_ctx){p, p->n, p->n->life, c, m->a};
	sconn_hold(c);
	rc = cons_apply(&p->cons, m->data, m->len, apply_replied, x, err);
	if (rc) {
		sconn_put(c);
		free(x);
		reply(c, M_APPLY_REP, m->a, rc, err);
	}
}

static void serve_whois(struct sproc *p, struct sconn *c, const struct smsg *m)
{
	uint64_t lid;
	const char *laddr;
	bool member;
	if (uplink_whois_answer(&p->cons, &p->store, m->a, &lid, &laddr, &member)) {
		reply(c, M_WHOIS_REP, 0, E_NOLEADER, "no leader known here either");
		return;
	}
	struct smsg *r = smsg_new(M_WHOIS_REP);
	r->member = member;
	r->res_id = lid;
	snprintf(r->addr, sizeof r->addr, "%s", laddr);
	send_msg(c, SCONN_SERVER, r);
}

static void s_frame(struct sconn *c, void *data, const void *msg)
{
	struct sproc *p = data;
	const struct smsg *m = msg;
	char err[ERR_LEN];
	proc_touch(p);
	switch (m->kind) {
	case M_JOIN:
		join_serve(p, c, m);
		break;
	case M_HB:
		if (!cons_is_leader(&p->cons))
			reply(c, M_HB_REP, 0, E_NOLEADER, "not the leader");
		else {
			int rc = leader_heartbeat(&p->leader, m->a, m->res_id, err);
			struct smsg *r = smsg_new(M_HB_REP);
			r->rc = rc;
			snprintf(r->msg, sizeof r->msg, "%s", rc ? err : "");
			const char *voters[UPLINK_VOTERS];
			r->nvoters = rc ? 0 : uplink_voters_for(&p->cons, m->a, voters);
			for (size_t i = 0; i < r->nvoters; i++)
				snprintf(r->voters[i], sizeof r->voters[i], "%s", voters[i]);
			send_msg(c, SCONN_SERVER, r);
		}
		break;
	case M_WATCH:
		if (!cons_is_leader(&p->cons))
			reply(c, M_DOC, 0, E_NOLEADER, "watch: not the leader");
		else {
			struct feed_out out = {feed_send, feed_self, p, NULL};
			feed_add(&p->feed, c, 0, m->a, &p->store, &out);
		}
		break;
	case M_APPLY:
		serve_apply(p, c, m);
		break;
	case M_WHOIS:
		serve_whois(p, c, m);
		break;
	default:
		break;
	}
}

static void s_closed(struct sconn *c, void *data, const char *why)
{
	struct sproc *p = data;
	(void)why;
	feed_conn_gone(&p->feed, c);
}

static const struct sconn_ops server_ops = {NULL, s_frame, s_closed};

bool plink_accept(void *data, struct sconn *c)
{
	struct snode *n = data;
	if (!n->p)
		return false;
	sconn_accept(c, &server_ops, n->p);
	return true;
}
