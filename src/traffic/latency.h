/* Request latency as the routing mesh measures it (traffic/mesh.c): a histogram with fixed
 * buckets, so recording a request is a bucket search and two additions (no allocation), and
 * histograms of several nodes or of two moments add and subtract bucket by bucket. The
 * buckets follow Prometheus' `le` convention: bucket i counts the times <= lat_bounds_us[i]
 * and above the bound before it; the last bucket is +Inf. Pure. */
#ifndef ORCH_LATENCY_H
#define ORCH_LATENCY_H
#include <stdint.h>
#include "codec/mp.h"

#define LAT_BUCKETS 16 /* LAT_BUCKETS - 1 finite bounds, then +Inf */

extern const uint64_t lat_bounds_us[LAT_BUCKETS - 1];

struct lat_hist {
	uint64_t n[LAT_BUCKETS]; /* per bucket, not cumulative */
	uint64_t sum_us;
};

unsigned lat_bucket(uint64_t us);
void lat_record(struct lat_hist *h, uint64_t us);
uint64_t lat_count(const struct lat_hist *h);
void lat_add(struct lat_hist *into, const struct lat_hist *h);
/* What was recorded between two readings of a growing histogram. One that went backwards
 * anywhere was reset (a node restarted, a new leader lost a node's past): its newer
 * counts are all that is known of the window. */
void lat_since(const struct lat_hist *now, const struct lat_hist *before, struct lat_hist *out);
/* The q-quantile (0 < q <= 1) in µs, linear within its bucket (as Prometheus'
 * histogram_quantile); one in the +Inf bucket is reported as the last finite bound.
 * -1 for an empty histogram. */
double lat_quantile_us(const struct lat_hist *h, double q);
/* The wire form (heartbeats, the "top" reply): key -> [n0, ..., n15, sum_us]. Written
 * only when something was recorded; lat_get leaves h zero when the key is absent (a node
 * of a version that did not time requests) and returns -1 when it is malformed. */
void lat_put(struct mpw *w, const char *key, const struct lat_hist *h);
int lat_get(const msgpack_object *map, const char *key, struct lat_hist *h);

#endif
