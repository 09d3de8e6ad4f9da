#include "orchestrator/depends.h"
#include <stdio.h>
#include <string.h>

const char *depends_condition_name(int condition)
{
	switch (condition) {
	case DEP_HEALTHY: return "healthy";
	case DEP_COMPLETED: return "completed";
	default: return "started";
	}
}

static bool has_run(const struct task *t)
{
	return t->started_at || t->state == TS_RUNNING || t->state == TS_COMPLETE;
}

static bool task_meets(const struct task *t, const struct svc_spec *dsp, int condition)
{
	switch (condition) {
	case DEP_COMPLETED: return t->state == TS_COMPLETE && t->exit_code == 0;
	case DEP_HEALTHY:
		if (t->state != TS_RUNNING)
			return false;
		if (t->health && t->health[0])
			return !strcmp(t->health, "healthy");
		return dsp && dsp->probe.enabled && t->ready && !strcmp(t->ready, "ready");
	default: return t->state == TS_RUNNING;
	}
}

static bool dep_met(const struct store *s, const struct service *d, int condition)
{
	const struct svc_spec *dsp = service_spec(d);
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (t->service_id == d->id && task_meets(t, dsp, condition))
			return true;
	return false;
}

bool depends_waiting(const struct store *s, const struct service *v, const struct svc_spec *sp, const struct task *const *ts,
		     size_t nts, char *why, size_t n)
{
	(void)v;
	if (!sp->depends_on.n)
		return false;
	for (size_t i = 0; i < nts; i++)
		if (has_run(ts[i]))
			return false;
	for (size_t k = 0; k < sp->depends_on.n; k++) {
		const struct dep *d = &sp->depends_on.v[k];
		const struct service *dv = store_service_by_name(s, d->service);
		if (!dv && !d->required)
			continue;
		if (dv && dep_met(s, dv, d->condition))
			continue;
		if (!dv)
			snprintf(why, n, "waiting for %s (%s): no such service", d->service, depends_condition_name(d->condition));
		else
			snprintf(why, n, "waiting for %s (%s)", d->service, depends_condition_name(d->condition));
		return true;
	}
	return false;
}
