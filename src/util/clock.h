/* A node's clock: every time a node part reads (monotonic for timeouts and intervals, wall
 * for timestamps written into commands) comes from the clock its host gives it, so a
 * simulation can run many nodes on one virtual clock and a seed reproduces a run. The
 * system clock is the default; code outside a node (the CLI, runc helpers that wait on a
 * child) keeps reading now_ms()/wall_ms() directly. */
#ifndef ORCH_CLOCK_H
#define ORCH_CLOCK_H
#include <stdint.h>

struct clock {
	uint64_t (*mono)(void *data); /* milliseconds, never goes back */
	uint64_t (*wall)(void *data); /* milliseconds since the epoch */
	void *data;
};

/* The process's real clocks (a constant: nothing in it changes). */
extern const struct clock clock_system;

static inline uint64_t clock_now(const struct clock *c) { return c->mono(c->data); }
static inline uint64_t clock_wall(const struct clock *c) { return c->wall(c->data); }

#endif
