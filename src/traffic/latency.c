#include "traffic/latency.h"
#include <stdbool.h>
#include <string.h>

/* From 100 µs (a proxied answer on one machine) to 5 s, about three buckets a decade. */
const uint64_t lat_bounds_us[LAT_BUCKETS - 1] = {100,    250,    500,     1000,    2500,    5000,    10000,  25000,
						  50000, 100000, 250000, 500000, 1000000, 2500000, 5000000};

unsigned lat_bucket(uint64_t us)
{
	unsigned i = 0;
	while (i < LAT_BUCKETS - 1 && us > lat_bounds_us[i])
		i++;
	return i;
}

void lat_record(struct lat_hist *h, uint64_t us)
{
	h->n[lat_bucket(us)]++;
	h->sum_us += us;
}

uint64_t lat_count(const struct lat_hist *h)
{
	uint64_t c = 0;
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		c += h->n[i];
	return c;
}

void lat_add(struct lat_hist *into, const struct lat_hist *h)
{
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		into->n[i] += h->n[i];
	into->sum_us += h->sum_us;
}

void lat_since(const struct lat_hist *now, const struct lat_hist *before, struct lat_hist *out)
{
	bool reset = now->sum_us < before->sum_us;
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		reset |= now->n[i] < before->n[i];
	*out = *now;
	if (reset)
		return;
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		out->n[i] -= before->n[i];
	out->sum_us -= before->sum_us;
}

double lat_quantile_us(const struct lat_hist *h, double q)
{
	uint64_t total = lat_count(h);
	if (!total)
		return -1;
	double rank = q * (double)total, below = 0;
	for (unsigned i = 0; i < LAT_BUCKETS; i++) {
		if (!h->n[i] || below + (double)h->n[i] < rank) {
			below += (double)h->n[i];
			continue;
		}
		if (i == LAT_BUCKETS - 1)
			return (double)lat_bounds_us[LAT_BUCKETS - 2];
		double lo = i ? (double)lat_bounds_us[i - 1] : 0, hi = (double)lat_bounds_us[i];
		return lo + (hi - lo) * (rank - below) / (double)h->n[i];
	}
	return (double)lat_bounds_us[LAT_BUCKETS - 2];
}

void lat_put(struct mpw *w, const char *key, const struct lat_hist *h)
{
	if (!lat_count(h))
		return;
	mpw_key(w, key);
	mpw_arr(w, LAT_BUCKETS + 1);
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		mpw_u64(w, h->n[i]);
	mpw_u64(w, h->sum_us);
}

int lat_get(const msgpack_object *map, const char *key, struct lat_hist *h)
{
	memset(h, 0, sizeof *h);
	const msgpack_object *a = mp_get(map, key);
	if (!a)
		return 0;
	if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != LAT_BUCKETS + 1)
		return -1;
	for (unsigned i = 0; i <= LAT_BUCKETS; i++)
		if (mp_as_u64(&a->via.array.ptr[i], i < LAT_BUCKETS ? &h->n[i] : &h->sum_us)) {
			memset(h, 0, sizeof *h);
			return -1;
		}
	return 0;
}
