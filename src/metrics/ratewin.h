/* Rates of growing counters over a sliding window: a ring of timestamped samples, each a
 * set of (key, counter) pairs; the rate of a key is its growth between the oldest sample
 * that has it and the newest, divided by the time between them. Pure (times come in). */
#ifndef ORCH_RATEWIN_H
#define ORCH_RATEWIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATEWIN_SLOTS 11 /* one sample a second: rates over the last ~10 s */
#define RATEWIN_KEY 80

struct ratewin_kv {
	char key[RATEWIN_KEY];
	uint64_t v;
};

struct ratewin_sample {
	uint64_t at;
	size_t n;
	struct ratewin_kv *kv;
};

struct ratewin {
	struct ratewin_sample s[RATEWIN_SLOTS];
	size_t head, count; /* head: next slot written */
};

void ratewin_init(struct ratewin *w);
void ratewin_free(struct ratewin *w);
/* Adds a sample (copied) taken at `at` ms, evicting the oldest when full. */
void ratewin_push(struct ratewin *w, uint64_t at, const struct ratewin_kv *kv, size_t n);
/* Per-second rate of key over the window; false when fewer than two samples have it (or
 * they are less than 500 ms apart). A counter that went backwards (reset) counts from 0. */
bool ratewin_rate(const struct ratewin *w, const char *key, double *rate);

#endif
