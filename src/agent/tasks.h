/* The task table and its steps: each task the assignment names is an entry that walks
 * new -> preparing -> running -> stopping -> exited -> cleaning -> done; the blocking work
 * of a step (prepare, start, stop, cleanup, the node network, a health probe) is carried
 * out by the agent's backend (agent/backend.h: runc/crun in libuv's thread pool, on a copy
 * of the task's job), and its completion moves the task on.
 * Container exits come from the process's reaper (runtime/runproc.h). */
#ifndef ORCH_AGENT_TASKS_H
#define ORCH_AGENT_TASKS_H
#include "agent/agent_state.h"

void tasks_queue_step(struct agent *a, struct atask *t, enum step step);
void tasks_claim_exits(struct agent *a);
void tasks_step(struct agent *a, struct atask *t);
void tasks_free(struct atask *t);
void tasks_reap_done(struct agent *a);
struct atask *tasks_find(struct agent *a, uint64_t id);
struct atask *tasks_new(struct agent *a, uint64_t id);
/* Queues a worker step built by the caller (a health probe), to the agent's backend. */
void tasks_queue_work(struct agent *a, struct work *w);
/* A step carried out (its results in w): moves its task on and frees w. Called by the
 * backend on the loop. */
void tasks_step_done(struct work *w);
/* A task whose prepare is in flight: its pull's progress reported as its message, at most
 * once a second (the agent's tick). */
void tasks_pull_progress(struct agent *a, struct atask *t);

#endif
