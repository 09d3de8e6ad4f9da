/* Health checks of running tasks: the service's (or the image's) check, run on schedule in
 * the thread pool (agent/health.h probes), with start period, retries and the liveness /
 * readiness verdicts that are reported and stop an unhealthy task. */
#ifndef ORCH_AGENT_CHECKS_H
#define ORCH_AGENT_CHECKS_H
#include "agent/agent_state.h"

void checks_setup(const struct agent *a, struct atask *t);
void checks_free(struct atask *t);
void checks_done(struct agent *a, struct atask *t, int idx, const struct check_req *r);
void checks_run(struct agent *a);

#endif
