/* This node's own figures, sampled once a second: per-service traffic counters of the
 * routing mesh (traffic/stats.h) with their request rate over ~10 s, and per-task CPU and
 * memory read from each container's cgroup (/orch/<node>/<task>). Served by /metrics and
 * sent to the leader with every heartbeat (never through the Raft log), where the
 * autoscaler and orch top use them. One daemon per process: the sampler state is static. */
#ifndef ORCH_NODE_STATS_H
#define ORCH_NODE_STATS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"
#include "traffic/stats.h"

struct task_stat {
	uint64_t task_id;
	char service[64];
	uint64_t cpu_ns;     /* cpuacct.usage */
	uint64_t mem;        /* memory.usage_in_bytes */
	bool has_rate;
	double cpu_milli;    /* CPU used over the window, in millicores */
};

struct svc_stat {
	struct svc_traffic t;
	bool has_rate;
	double rps;          /* requests/s over the window */
};

struct node_stats {
	uint64_t at; /* now_ms() of the sample; 0 before the first */
	size_t ntasks, nsvc;
	struct task_stat *tasks;
	struct svc_stat *svc;
};

struct daemon;
/* Samples when a second has passed since the last sample (call it often). */
void node_stats_tick(struct daemon *d);
/* The latest sample (empty before the first). */
const struct node_stats *node_stats_latest(void);

void node_stats_free(struct node_stats *ns);
void node_stats_copy(struct node_stats *dst, const struct node_stats *src);
/* The heartbeat form: {svc: [...], tasks: [...]} with rates in thousandths. */
void node_stats_encode(const struct node_stats *ns, struct mpw *w);
/* Decodes the heartbeat form into a zeroed ns; bad entries are errors (ns freeable). */
int node_stats_decode(const msgpack_object *o, struct node_stats *ns, char *err);

#endif
