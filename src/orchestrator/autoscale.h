/* The autoscaler as a pure function of (replicated state, aggregated load, time): which
 * services with deploy.x-orch-autoscale should change their replica count, and why. No
 * I/O and no clock reads, so tests drive it on a simulated clock. The leader feeds it the
 * load it aggregated from every node's heartbeat (metrics/cluster_stats.h) and commits each
 * decision as a service.scale command carrying a "scaled" event (autoscale_body).
 *
 * Rules, per service, replicas R within [min, max]:
 *   - R outside [min, max] (e.g. after a deploy) is brought back at once, no cooldown;
 *   - up when some target is exceeded: load / R > target, to ceil(load / target) (at
 *     least R + 1, at most max), once scale_up_cooldown has passed since the last scale;
 *   - down when every target would still be met with fewer replicas: to the smallest n
 *     with load / n < target for each target (at least min), once scale_down_cooldown has
 *     passed since the last scale (or since the service was created);
 *   - a target whose load is unknown (no node reports it) takes no part; with none, the
 *     service is left alone.
 * "Load" is requests/s summed over all nodes for target_rps, and the sum over running
 * tasks of their CPU use in percent of the CPU reservation (the limit when there is no
 * reservation) for target_cpu. The last scale time is the newest "scaled" event, so a new
 * leader honours cooldowns from the replicated state alone. */
#ifndef ORCH_AUTOSCALE_H
#define ORCH_AUTOSCALE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"
#include "state/store.h"

/* What the cluster observed of one service. */
struct as_load {
	char service[64];
	bool has_rps;
	double rps;          /* requests per second, all nodes together */
	bool has_cpu;
	double cpu_milli;    /* CPU used by its running tasks together, in millicores */
	uint64_t cpu_tasks;  /* how many tasks that covers */
};

struct as_decision {
	uint64_t service_id;
	char service[64];
	uint64_t from, to;
	char reason[256];
};

/* Fills up to max decisions; returns how many. */
/* Whether any service autoscales (else there is nothing to gather loads for). */
bool autoscale_wanted(const struct store *s);
size_t autoscale_decide(const struct store *s, const struct as_load *loads, size_t nloads, uint64_t now,
			struct as_decision *out, size_t max);
/* Time of the newest "scaled" event of the service, 0 if none. */
uint64_t autoscale_last_scaled(const struct store *s, const char *service);
/* The service.scale command body for a decision: {name, replicas, at, reason, events}. */
void autoscale_body(const struct as_decision *d, uint64_t now, struct mpw *w);
/* A manual scale of an autoscaled service must stay within [min, max]: 0, or E_INVAL with
 * a message naming both bounds. */
int autoscale_check_manual(const struct service *v, uint64_t replicas, char *err);
/* The "scaled" event entry (one map) used by manual and automatic scaling alike. */
void autoscale_event(struct mpw *w, const char *service, uint64_t from, uint64_t to, const char *why);

#endif
