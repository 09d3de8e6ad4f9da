/* Traffic counters of this node's routing mesh, per service (read by /metrics, orch top and
 * the autoscaler). Counters only grow; rates are computed by readers from two samples. */
#ifndef ORCH_TRAFFIC_STATS_H
#define ORCH_TRAFFIC_STATS_H
#include <stddef.h>
#include <stdint.h>
#include "traffic/latency.h"

struct svc_traffic {
	char service[64];
	uint64_t connections;   /* accepted client connections */
	uint64_t active;        /* currently open */
	uint64_t requests;      /* HTTP/1.x requests seen (keep-alive aware) */
	uint64_t bytes_in;      /* client -> backend */
	uint64_t bytes_out;     /* backend -> client */
	uint64_t backend_errors;/* connects that failed (each retried on another endpoint) */
	struct lat_hist latency;/* HTTP requests: first byte in to the first byte of the answer */
};

struct mesh;
/* Fills up to max entries (one per service with a published port or a VIP on this node);
 * returns the count. */
size_t traffic_stats(const struct mesh *m, struct svc_traffic *out, size_t max);

#endif
