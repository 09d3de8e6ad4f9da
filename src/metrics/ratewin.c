#include "metrics/ratewin.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

void ratewin_init(struct ratewin *w)
{
	memset(w, 0, sizeof *w);
}

void ratewin_free(struct ratewin *w)
{
	for (size_t i = 0; i < RATEWIN_SLOTS; i++)
		free(w->s[i].kv);
	memset(w, 0, sizeof *w);
}

void ratewin_push(struct ratewin *w, uint64_t at, const struct ratewin_kv *kv, size_t n)
{
	struct ratewin_sample *s = &w->s[w->head];
	free(s->kv);
	s->at = at;
	s->n = n;
	s->kv = n ? xmalloc(n * sizeof *kv) : NULL;
	if (n)
		memcpy(s->kv, kv, n * sizeof *kv);
	w->head = (w->head + 1) % RATEWIN_SLOTS;
	if (w->count < RATEWIN_SLOTS)
		w->count++;
}

static bool lookup(const struct ratewin_sample *s, const char *key, uint64_t *v)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->kv[i].key, key)) {
			*v = s->kv[i].v;
			return true;
		}
	return false;
}

bool ratewin_rate(const struct ratewin *w, const char *key, double *rate)
{
	if (w->count < 2)
		return false;
	const struct ratewin_sample *newest = &w->s[(w->head + RATEWIN_SLOTS - 1) % RATEWIN_SLOTS];
	uint64_t vnew;
	if (!lookup(newest, key, &vnew))
		return false;
	/* oldest first */
	for (size_t k = w->count; k-- > 1;) {
		const struct ratewin_sample *old = &w->s[(w->head + RATEWIN_SLOTS - 1 - k) % RATEWIN_SLOTS];
		uint64_t vold;
		if (!lookup(old, key, &vold))
			vold = 0; /* the counter did not exist yet: it starts at 0 (a burst right after
				   * it appeared still shows as a rate) */
		if (newest->at < old->at + 500)
			return false;
		double grow = vnew >= vold ? (double)(vnew - vold) : (double)vnew;
		*rate = grow * 1000.0 / (double)(newest->at - old->at);
		return true;
	}
	return false;
}
