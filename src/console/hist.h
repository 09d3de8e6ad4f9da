/* The console's plots: per service, what the cluster measured over the last hour (requests
 * per second and latency from the routing mesh, CPU and memory summed over the service's
 * tasks), one
 * sample every HIST_PERIOD_MS. The nodes keep only their latest figures
 * (metrics/cluster_stats.h); this ring is what gives them a past, kept by every node that
 * serves the console from the "top" op it runs itself. Pure: times come in. */
#ifndef ORCH_HIST_H
#define ORCH_HIST_H
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"
#include "traffic/latency.h"
#include "util/mem.h"

#define HIST_PERIOD_MS 5000
#define HIST_SLOTS 720 /* an hour */
#define HIST_SERVICES 256

struct hist_sample {
	uint64_t at; /* ms, the node's clock */
	float rps, cpu_pct, mem;
	float p50_ms, p95_ms; /* of the requests since the sample before; -1: none */
};

struct hist_series {
	char name[64];
	size_t head, count; /* head: next slot written */
	struct lat_hist lat; /* the cluster's latency counts at the last sample, the window's start */
	bool has_lat;
	struct hist_sample s[HIST_SLOTS];
};

struct hist {
	struct hist_series *series;
	size_t n;
};

/* Adds one sample per service from a "top" reply (metrics/metrics.h); a service that was
 * removed keeps its past until the ring forgets it. */
void hist_add_top(struct hist *h, uint64_t at, const msgpack_object *top);
/* {"period_ms", "now", "services": [{"name", "samples": [[at, rps, cpu_pct, mem, p50_ms,
 * p95_ms], ...]}]}, the latencies null for a sample with no request timed */
void hist_json(const struct hist *h, uint64_t now, struct buf *out);
void hist_free(struct hist *h);

#endif
