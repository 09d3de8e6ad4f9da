#include "simnet.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

struct flight {
	struct simnet *n;
	unsigned src, dst;
	world_fn deliver;
	void (*drop)(void *);
	void *arg;
};

void simnet_init(struct simnet *n, struct world *w)
{
	memset(n, 0, sizeof *n);
	n->w = w;
	n->latency_ms = 2;
	n->jitter_ms = 3;
}

void simnet_host(struct simnet *n, unsigned i, const uint32_t *life)
{
	n->life[i] = life;
}

bool simnet_connected(const struct simnet *n, unsigned a, unsigned b)
{
	return n->group[a] == n->group[b];
}

void simnet_partition(struct simnet *n, const int *groups, unsigned count)
{
	for (unsigned i = 0; i < count && i < SIMNET_MAX; i++)
		n->group[i] = groups[i];
}

void simnet_heal(struct simnet *n)
{
	memset(n->group, 0, sizeof n->group);
}

static void flight_drop(void *arg)
{
	struct flight *f = arg;
	f->n->lost++;
	if (f->drop)
		f->drop(f->arg);
	free(f);
}

static void arrive(struct world *w, void *arg)
{
	struct flight *f = arg;
	(void)w;
	if (!simnet_connected(f->n, f->src, f->dst)) {
		flight_drop(f);
		return;
	}
	f->n->delivered++;
	f->deliver(f->n->w, f->arg);
	free(f);
}

bool simnet_send(struct simnet *n, unsigned src, unsigned dst, bool lossy, world_fn deliver, void (*drop)(void *),
		 void *arg)
{
	n->sent++;
	if (src >= SIMNET_MAX || dst >= SIMNET_MAX || !n->life[dst] || !simnet_connected(n, src, dst) ||
	    (lossy && world_chance(n->w, n->drop_pm))) {
		n->lost++;
		if (drop)
			drop(arg);
		return false;
	}
	struct flight *f = xmalloc(sizeof *f);
	*f = (struct flight){n, src, dst, deliver, drop, arg};
	uint64_t at = n->w->now + n->latency_ms + world_range(n->w, 0, n->jitter_ms);
	if (!n->reorder && at < n->last[src][dst])
		at = n->last[src][dst];
	n->last[src][dst] = at;
	world_at(n->w, at - n->w->now, arrive, f, flight_drop, n->life[dst]);
	return true;
}
