#include "simconn.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum fkind { F_SYN, F_SYNACK, F_DATA, F_FIN, F_RST };

struct sframe {
	enum fkind kind;
	void *msg;
	void (*release)(void *);
	uint64_t due;
	char why[64];
	struct sframe *next;
};

/* the argument of a direction's pump event: the connection and the end it delivers to */
struct sway {
	struct sconn *c;
	int to;
};

struct sconn_priv {
	struct sconn c;
	struct sway way[2];
	unsigned busy;
};

static struct sconn_priv *priv(struct sconn *c)
{
	return (struct sconn_priv *)c;
}

void sconns_init(struct sconns *s, struct simnet *net)
{
	memset(s, 0, sizeof *s);
	s->net = net;
	s->handshake_ms = 10000; /* net/conn.c's HANDSHAKE_TIMEOUT_MS */
	s->retransmit_ms = 100;
}

static void frame_free(struct sframe *f)
{
	if (f->msg && f->release)
		f->release(f->msg);
	free(f);
}

static void conn_free(struct sconn *c)
{
	struct sconns *s = c->set;
	for (int i = 0; i < 2; i++)
		while (c->q[i]) {
			struct sframe *f = c->q[i];
			c->q[i] = f->next;
			frame_free(f);
		}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(priv(c));
}

void sconns_free(struct sconns *s)
{
	while (s->all)
		conn_free(s->all);
}

void sconns_listen(struct sconns *s, unsigned h, sconn_accept_fn fn, void *data)
{
	s->accept[h] = fn;
	s->accept_data[h] = data;
}

static void maybe_free(struct sconn *c)
{
	if (!c->open[0] && !c->open[1] && !c->pumping[0] && !c->pumping[1] && !c->timer && !c->refs && !priv(c)->busy)
		conn_free(c);
}

static void pump(struct world *w, void *arg);

static void schedule(struct sconn *c, int to, uint64_t at)
{
	struct world *w = c->set->net->w;
	c->pumping[to] = true;
	world_at(w, at > w->now ? at - w->now : 0, pump, &priv(c)->way[to], NULL, NULL);
}

/* Queues a frame toward end `to`, after everything already in flight that way. */
static void enqueue(struct sconn *c, int to, enum fkind kind, void *msg, void (*release)(void *), const char *why)
{
	struct simnet *n = c->set->net;
	struct sframe *f = xcalloc(1, sizeof *f);
	f->kind = kind;
	f->msg = msg;
	f->release = release;
	snprintf(f->why, sizeof f->why, "%s", why ? why : "");
	f->due = n->w->now + n->latency_ms + world_range(n->w, 0, n->jitter_ms);
	if (f->due < c->due_last[to])
		f->due = c->due_last[to];
	c->due_last[to] = f->due;
	if (c->tail[to])
		c->tail[to]->next = f;
	else
		c->q[to] = f;
	c->tail[to] = f;
	if (!c->pumping[to])
		schedule(c, to, f->due);
}

static void end_closed(struct sconn *c, int i, const char *why)
{
	if (!c->open[i])
		return;
	c->open[i] = false;
	if (c->ops[i] && c->ops[i]->closed)
		c->ops[i]->closed(c, c->data[i], why);
}

static bool end_alive(const struct sconn *c, int i)
{
	return c->made[i] && c->open[i] && *c->life[i] == c->life_at[i];
}

/* Both ends close: what is in flight is lost, each end hears of it. */
static void reset(struct sconn *c, const char *why)
{
	c->set->resets++;
	for (int i = 0; i < 2; i++) {
		while (c->q[i]) {
			struct sframe *f = c->q[i];
			c->q[i] = f->next;
			frame_free(f);
		}
		c->tail[i] = NULL;
	}
	for (int i = 0; i < 2; i++)
		if (c->open[i])
			enqueue(c, i, F_RST, NULL, NULL, why);
}

static void deliver(struct sconn *c, int i, struct sframe *f)
{
	struct sconns *s = c->set;
	switch (f->kind) {
	case F_SYN:
		if (!c->open[SCONN_CLIENT] || s->down[c->host[i]])
			break; /* the client gave up, or nobody is there to answer */
		if (s->accept[c->host[i]] && s->accept[c->host[i]](s->accept_data[c->host[i]], c))
			enqueue(c, SCONN_CLIENT, F_SYNACK, NULL, NULL, NULL);
		else
			enqueue(c, SCONN_CLIENT, F_RST, NULL, NULL, "connection refused");
		break;
	case F_SYNACK:
		if (end_alive(c, i) && !c->ready) {
			c->ready = true;
			if (c->ops[i] && c->ops[i]->ready)
				c->ops[i]->ready(c, c->data[i]);
		}
		break;
	case F_DATA:
		if (end_alive(c, i)) {
			s->delivered++;
			if (c->ops[i] && c->ops[i]->frame)
				c->ops[i]->frame(c, c->data[i], f->msg);
		}
		break;
	case F_FIN:
	case F_RST:
		end_closed(c, i, f->why);
		break;
	}
}

static void pump(struct world *w, void *arg)
{
	struct sway *way = arg;
	struct sconn *c = way->c;
	int to = way->to;
	c->pumping[to] = false;
	struct sframe *f = c->q[to];
	if (f && c->made[to] && !c->open[to]) {
		bool reachable = simnet_connected(c->set->net, c->host[1 - to], c->host[to]);
		if (c->vanished[to] && c->open[1 - to] && (c->set->down[c->host[to]] || !reachable)) {
			/* a machine that lost power answers nothing: the sender retransmits */
			c->set->stalled++;
			schedule(c, to, w->now + c->set->retransmit_ms);
			return;
		}
		if (c->vanished[to] && c->open[1 - to]) {
			/* it is back: its kernel knows no such connection and resets it */
			c->vanished[to] = false;
			reset(c, "connection reset by peer");
		}
		/* toward an end that is gone: nothing there to deliver to */
		while ((f = c->q[to])) {
			c->q[to] = f->next;
			frame_free(f);
		}
		c->tail[to] = NULL;
	}
	if (!f) {
		maybe_free(c);
		return;
	}
	if (f->due > w->now) {
		schedule(c, to, f->due);
		return;
	}
	if (!simnet_connected(c->set->net, c->host[1 - to], c->host[to])) {
		c->set->stalled++;
		schedule(c, to, w->now + c->set->retransmit_ms);
		return;
	}
	c->q[to] = f->next;
	if (!c->q[to])
		c->tail[to] = NULL;
	priv(c)->busy++;
	deliver(c, to, f);
	priv(c)->busy--;
	frame_free(f);
	if (c->q[to] && !c->pumping[to])
		schedule(c, to, c->q[to]->due);
	maybe_free(c);
}

static void handshake_timeout(struct world *w, void *arg)
{
	struct sconn *c = arg;
	(void)w;
	c->timer = false;
	if (c->open[SCONN_CLIENT] && !c->ready)
		sconn_close(c, SCONN_CLIENT, "handshake timed out");
	maybe_free(c);
}

struct sconn *sconn_open(struct sconns *s, unsigned from, const uint32_t *life, unsigned to, const struct sconn_ops *ops,
			 void *data)
{
	struct sconn_priv *p = xcalloc(1, sizeof *p);
	struct sconn *c = &p->c;
	p->way[0] = (struct sway){c, 0};
	p->way[1] = (struct sway){c, 1};
	c->set = s;
	c->id = ++s->ids;
	c->host[SCONN_CLIENT] = from;
	c->host[SCONN_SERVER] = to;
	c->life[SCONN_CLIENT] = life;
	c->life_at[SCONN_CLIENT] = *life;
	c->made[SCONN_CLIENT] = true;
	c->open[SCONN_CLIENT] = true;
	c->ops[SCONN_CLIENT] = ops;
	c->data[SCONN_CLIENT] = data;
	c->next = s->all;
	if (s->all)
		s->all->prev = c;
	s->all = c;
	s->opened++;
	enqueue(c, SCONN_SERVER, F_SYN, NULL, NULL, NULL);
	c->timer = true;
	world_at(s->net->w, s->handshake_ms, handshake_timeout, c, NULL, NULL);
	return c;
}

void sconn_accept(struct sconn *c, const struct sconn_ops *ops, void *data)
{
	unsigned h = c->host[SCONN_SERVER];
	c->life[SCONN_SERVER] = c->set->net->life[h];
	c->life_at[SCONN_SERVER] = *c->set->net->life[h];
	c->made[SCONN_SERVER] = true;
	c->open[SCONN_SERVER] = true;
	c->ops[SCONN_SERVER] = ops;
	c->data[SCONN_SERVER] = data;
}

int sconn_send(struct sconn *c, int side, void *msg, void (*release)(void *))
{
	if (!c->open[side]) {
		if (release)
			release(msg);
		return -1;
	}
	c->set->sent++;
	if (world_chance(c->set->net->w, c->set->reset_pm)) {
		if (release)
			release(msg);
		reset(c, "connection reset");
		return 0;
	}
	enqueue(c, 1 - side, F_DATA, msg, release, NULL);
	return 0;
}

void sconn_close(struct sconn *c, int side, const char *why)
{
	if (!c->open[side])
		return;
	enqueue(c, 1 - side, F_FIN, NULL, NULL, "closed by peer");
	end_closed(c, side, why);
}

bool sconn_is_open(const struct sconn *c, int side)
{
	return c->open[side];
}

void sconn_hold(struct sconn *c)
{
	c->refs++;
}

void sconn_put(struct sconn *c)
{
	c->refs--;
	maybe_free(c);
}

void sconns_host_died(struct sconns *s, unsigned h, bool silent)
{
	s->down[h] = silent;
	for (struct sconn *c = s->all, *next; c; c = next) {
		next = c->next;
		for (int i = 0; i < 2; i++)
			if (c->host[i] == h && c->made[i] && c->open[i] && *c->life[i] != c->life_at[i]) {
				c->open[i] = false; /* the process is gone: no callback */
				if (silent)
					c->vanished[i] = true;
				else
					enqueue(c, 1 - i, F_FIN, NULL, NULL, "closed by peer (its process ended)");
			}
	}
}

void sconns_host_up(struct sconns *s, unsigned h)
{
	s->down[h] = false;
}
