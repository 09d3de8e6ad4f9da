/* The agent's runtime step behind a small function-pointer interface, the way crun keeps
 * its cgroup managers apart: the agent decides what happens to each task (agent/tasks.c)
 * and a backend carries the steps out.
 *
 *   backend_oci     the real one: every step on the libuv thread pool through runc or crun
 *                   (agent/task_run.h); containers are found again after a restart.
 *   backend_hollow  runs nothing. It exists only for scale simulation (orch debug hollow,
 *                   node/hollow.h), and says so: the node's runtime is "hollow" in
 *                   orch nodes. Its steps complete on the loop — a start after the run
 *                   delay, health checks pass — and its running tasks report synthetic
 *                   CPU and memory figures. No host ports, addresses, bridges, nftables or
 *                   log files: the node's tasks only move through their states. */
#ifndef ORCH_AGENT_BACKEND_H
#define ORCH_AGENT_BACKEND_H
#include <stdbool.h>
#include <stdint.h>

struct agent;
struct atask;
struct work;

struct backend {
	const char *kind;
	/* Nothing runs: the agent binds no host port, takes no address, builds no network,
	 * adopts and reaps no container, rotates no log. */
	bool synthetic;
	int (*start)(struct agent *a, char *err);
	/* Carries step w out, then hands it to tasks_step_done on the loop. */
	void (*queue)(struct agent *a, struct work *w);
	/* Closes the backend's handles; steps queued but not begun are dropped. */
	void (*stop)(struct agent *a);
	void (*free)(struct agent *a);
	/* A running task's figures (synthetic backends; NULL: read from its cgroup). */
	void (*figures)(const struct agent *a, const struct atask *t, uint64_t now, uint64_t *cpu_ns, uint64_t *mem);
};

extern const struct backend backend_oci;
extern const struct backend backend_hollow;

#endif
