/* The simulated world: one virtual clock, one ordered queue of events and one seeded
 * random stream shared by every simulated node, network link and disk. Events fire in
 * (time, insertion order), so a run is a pure function of its seed: the same seed gives
 * the same events, the same messages and the same final states.
 *
 * An event may belong to an owner incarnation (a node's life between start and kill):
 * when the owner has been killed or restarted since the event was queued, the event is
 * dropped instead of fired (its payload released by `drop`). */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct world;
typedef void (*world_fn)(struct world *w, void *arg);

struct wevent {
	uint64_t at, seq;
	world_fn fn;
	void (*drop)(void *arg); /* may be NULL */
	void *arg;
	const uint32_t *life;    /* owner's incarnation counter, or NULL */
	uint32_t life_at;
};

struct world {
	uint64_t now;            /* virtual milliseconds since the start */
	uint64_t seed;
	uint64_t rng;            /* splitmix64 state */
	uint64_t seq;
	uint64_t fired;          /* events fired so far (determinism check) */
	struct wevent *heap;
	size_t n, cap;
	/* called after every fired event (lets nodes flush work queued during it) */
	void (*after)(struct world *w, void *arg);
	void *after_arg;
};

void world_init(struct world *w, uint64_t seed);
/* Drops every queued event (their payloads released). */
void world_free(struct world *w);

/* Queues fn(arg) delay ms from now. life: see above (NULL: always fires). */
void world_at(struct world *w, uint64_t delay, world_fn fn, void *arg, void (*drop)(void *), const uint32_t *life);
/* Fires every event due up to and including time t, then sets the clock to t. */
void world_run_until(struct world *w, uint64_t t);
/* Runs until pred(arg) holds (checked after each event) or the clock passes deadline;
 * returns whether pred held. */
bool world_run_while_not(struct world *w, uint64_t deadline, bool (*pred)(void *arg), void *arg);

uint64_t world_rand(struct world *w);
/* Uniform in [lo, hi]. */
uint64_t world_range(struct world *w, uint64_t lo, uint64_t hi);
/* True with probability per_mille / 1000. */
bool world_chance(struct world *w, unsigned per_mille);

#endif
