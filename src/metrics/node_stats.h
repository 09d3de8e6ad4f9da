/* This node's own figures, sampled once a second: per-service traffic counters of the
 * routing mesh (traffic/stats.h) with their request rate over ~10 s, and per-task CPU and
 * memory read from each container's cgroup (/orch/<node>/<task>). Served by /metrics and
 * sent to the leader with every heartbeat (never through the Raft log), where the
 * autoscaler and orch top use them. */
#ifndef ORCH_NODE_STATS_H
#define ORCH_NODE_STATS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"
#include "metrics/ratewin.h"
#include "state/store.h"
#include "traffic/stats.h"

struct task_stat {
	uint64_t task_id;
	char service[64];
	uint64_t cpu_ns;     /* cpuacct.usage */
	uint64_t mem;        /* memory.usage_in_bytes (v1), memory.current (v2) */
	bool has_rate;
	double cpu_milli;    /* CPU used over the window, in millicores */
};

struct svc_stat {
	struct svc_traffic t;
	bool has_rate;
	double rps;          /* requests/s over the window */
};

struct node_stats {
	uint64_t at; /* the node clock's time of the sample (monotonic ms); 0 before the first */
	size_t ntasks, nsvc;
	struct task_stat *tasks;
	struct svc_stat *svc;
};

struct mesh;

/* A node's sampler: its latest sample and the counters behind the rates. */
struct node_stats_sampler {
	uint64_t node_id;          /* its containers' cgroups are /orch/<node_id>/<task> */
	const struct store *store; /* which service a task belongs to */
	const struct mesh *mesh;   /* traffic counters (NULL: none) */
	/* Where the per-task figures come from: NULL reads each container's cgroup; a
	 * synthetic runtime gives its own (agent/agent.h, agent_sample). */
	void (*sample_tasks)(void *arg, uint64_t now, struct node_stats *ns);
	void *sample_arg;
	struct node_stats latest;  /* empty before the first sample */
	struct ratewin window;
	bool window_ready;
};

void node_stats_init(struct node_stats_sampler *s, uint64_t node_id, const struct store *store, const struct mesh *mesh);
void node_stats_sampler_free(struct node_stats_sampler *s);
/* Samples when a second has passed since the last sample (call it often). */
void node_stats_tick(struct node_stats_sampler *s, uint64_t now);

void node_stats_free(struct node_stats *ns);
void node_stats_copy(struct node_stats *dst, const struct node_stats *src);
/* The heartbeat form: {svc: [...], tasks: [...]} with rates in thousandths. */
void node_stats_encode(const struct node_stats *ns, struct mpw *w);
/* Decodes the heartbeat form into a zeroed ns; bad entries are errors (ns freeable). */
int node_stats_decode(const msgpack_object *o, struct node_stats *ns, char *err);

#endif
