#include "world.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

void world_init(struct world *w, uint64_t seed)
{
	memset(w, 0, sizeof *w);
	w->seed = seed;
	w->rng = seed ^ 0x6a09e667f3bcc909ull;
}

static bool before(const struct wevent *a, const struct wevent *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void sift_up(struct world *w, size_t i)
{
	while (i) {
		size_t p = (i - 1) / 2;
		if (!before(&w->heap[i], &w->heap[p]))
			break;
		struct wevent t = w->heap[i];
		w->heap[i] = w->heap[p];
		w->heap[p] = t;
		i = p;
	}
}

static void sift_down(struct world *w, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < w->n && before(&w->heap[l], &w->heap[m]))
			m = l;
		if (r < w->n && before(&w->heap[r], &w->heap[m]))
			m = r;
		if (m == i)
			return;
		struct wevent t = w->heap[i];
		w->heap[i] = w->heap[m];
		w->heap[m] = t;
		i = m;
	}
}

void world_at(struct world *w, uint64_t delay, world_fn fn, void *arg, void (*drop)(void *), const uint32_t *life)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 1024;
		w->heap = xrealloc(w->heap, w->cap * sizeof *w->heap);
	}
	struct wevent *e = &w->heap[w->n];
	e->at = w->now + delay;
	e->seq = w->seq++;
	e->fn = fn;
	e->drop = drop;
	e->arg = arg;
	e->life = life;
	e->life_at = life ? *life : 0;
	sift_up(w, w->n++);
}

static bool pop(struct world *w, uint64_t limit, struct wevent *out)
{
	if (!w->n || w->heap[0].at > limit)
		return false;
	*out = w->heap[0];
	w->heap[0] = w->heap[--w->n];
	sift_down(w, 0);
	return true;
}

static void fire(struct world *w, struct wevent *e)
{
	w->now = e->at;
	if (e->life && *e->life != e->life_at) {
		if (e->drop)
			e->drop(e->arg);
		return;
	}
	w->fired++;
	e->fn(w, e->arg);
	if (w->after)
		w->after(w, w->after_arg);
}

void world_run_until(struct world *w, uint64_t t)
{
	struct wevent e;
	while (pop(w, t, &e))
		fire(w, &e);
	if (w->now < t)
		w->now = t;
}

bool world_run_while_not(struct world *w, uint64_t deadline, bool (*pred)(void *arg), void *arg)
{
	struct wevent e;
	if (pred(arg))
		return true;
	while (pop(w, deadline, &e)) {
		fire(w, &e);
		if (pred(arg))
			return true;
	}
	if (w->now < deadline)
		w->now = deadline;
	return pred(arg);
}

void world_free(struct world *w)
{
	struct wevent e;
	while (pop(w, UINT64_MAX, &e))
		if (e.drop)
			e.drop(e.arg);
	free(w->heap);
	w->heap = NULL;
}

/* splitmix64: small, fast and good enough to drive timeouts, delays and drops */
uint64_t world_rand(struct world *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t world_range(struct world *w, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + world_rand(w) % (hi - lo + 1);
}

bool world_chance(struct world *w, unsigned per_mille)
{
	return per_mille && world_rand(w) % 1000 < per_mille;
}
