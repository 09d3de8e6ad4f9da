#include "agent/checks.h"
#include "agent/agent_state.h"
#include "agent/report.h"
#include "agent/tasks.h"
#include "spec/spec.h"
#include "image/image_load.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The image's own HEALTHCHECK, used when the service gives no healthcheck (as Docker does). */
static void image_check(struct atask *t)
{
	struct mpr r;
	struct image_info im;
	if (!t->job.image || mpr_decode(&r, t->job.image, t->job.image_len))
		return;
	if (image_info_decode(r.root, &im, NULL)) {
		mpr_free(&r);
		return;
	}
	char **test = im.health_test;
	size_t n = 0;
	while (test && test[n])
		n++;
	bool cmd = n >= 2 && !strcmp(test[0], "CMD"), shell = n == 2 && !strcmp(test[0], "CMD-SHELL");
	if (cmd || shell) {
		struct tcheck *c = &t->checks[t->nchecks++];
		memset(c, 0, sizeof *c);
		c->kind = CHECK_CMD;
		c->argv = xcalloc(n + 2, sizeof *c->argv);
		if (shell) {
			c->argv[0] = xstrdup("/bin/sh");
			c->argv[1] = xstrdup("-c");
			c->argv[2] = xstrdup(test[1]);
		} else
			for (size_t i = 1; i < n; i++)
				c->argv[i - 1] = xstrdup(test[i]);
		c->interval = im.health_interval_ms ? im.health_interval_ms : 30000;
		c->timeout = im.health_timeout_ms ? im.health_timeout_ms : 30000;
		c->retries = im.health_retries ? im.health_retries : 3;
		c->start_period = im.health_start_ms;
		c->liveness = true;
		snprintf(t->health, sizeof t->health, "starting");
	}
	image_info_free(&im);
	mpr_free(&r);
}

/* Compose healthcheck: liveness (a failing task is restarted). x-orch-healthcheck: its
 * role, readiness by default (decides whether the task takes traffic). */
void checks_setup(const struct agent *a, struct atask *t)
{
	struct mpr r;
	struct svc_spec sp;
	t->nchecks = 0;
	t->running_since = clock_now(a->h->clock);
	if (mpr_decode(&r, t->job.spec, t->job.spec_len))
		return;
	svc_spec_init(&sp);
	svc_spec_free(&sp);
	if (!svc_spec_decode(r.root, &sp, NULL)) {
		const struct healthcheck *h = &sp.healthcheck;
		if ((h->kind == HC_CMD || h->kind == HC_CMD_SHELL) && h->test.n) {
			struct tcheck *c = &t->checks[t->nchecks++];
			memset(c, 0, sizeof *c);
			c->kind = CHECK_CMD;
			if (h->kind == HC_CMD_SHELL) {
				c->argv = xcalloc(4, sizeof *c->argv);
				c->argv[0] = xstrdup("/bin/sh");
				c->argv[1] = xstrdup("-c");
				c->argv[2] = xstrdup(h->test.v[0]);
			} else {
				c->argv = xcalloc(h->test.n + 1, sizeof *c->argv);
				for (size_t i = 0; i < h->test.n; i++)
					c->argv[i] = xstrdup(h->test.v[i]);
			}
			c->interval = h->interval_ms;
			c->timeout = h->timeout_ms;
			c->retries = h->retries ? h->retries : 1;
			c->start_period = h->start_period_ms;
			c->liveness = true;
			snprintf(t->health, sizeof t->health, "starting");
		}
		if (h->kind == HC_INHERIT && !h->disable)
			image_check(t);
		if (sp.probe.enabled) {
			struct tcheck *c = &t->checks[t->nchecks++];
			memset(c, 0, sizeof *c);
			c->kind = sp.probe.type == PROBE_TCP ? CHECK_TCP : CHECK_HTTP;
			c->port = (uint16_t)sp.probe.port;
			snprintf(c->path, sizeof c->path, "%s", sp.probe.path ? sp.probe.path : "/");
			c->interval = sp.probe.interval_ms;
			c->timeout = sp.probe.timeout_ms;
			c->retries = sp.probe.retries ? sp.probe.retries : 1;
			c->start_period = sp.probe.start_period_ms;
			c->liveness = sp.probe.role == PROBE_LIVENESS;
			if (c->liveness)
				snprintf(t->health, sizeof t->health, "starting");
			else
				snprintf(t->ready, sizeof t->ready, "unready");
		}
	}
	svc_spec_free(&sp);
	mpr_free(&r);
	for (int i = 0; i < t->nchecks; i++) {
		if (!t->checks[i].interval)
			t->checks[i].interval = 1000;
		if (!t->checks[i].timeout)
			t->checks[i].timeout = 1000;
		t->checks[i].next_at = clock_now(a->h->clock) + (t->checks[i].interval < 1000 ? t->checks[i].interval : 500);
	}
}

void checks_free(struct atask *t)
{
	for (int i = 0; i < t->nchecks; i++) {
		for (size_t k = 0; t->checks[i].argv && t->checks[i].argv[k]; k++)
			free(t->checks[i].argv[k]);
		free(t->checks[i].argv);
		t->checks[i].argv = NULL;
	}
	t->nchecks = 0;
}

void checks_done(struct agent *a, struct atask *t, int idx, const struct check_req *r)
{
	struct tcheck *c = &t->checks[idx];
	c->busy = false;
	c->next_at = clock_now(a->h->clock) + c->interval;
	if (t->phase != P_RUNNING || idx >= t->nchecks)
		return;
	char tid[32];
	snprintf(tid, sizeof tid, "task:%llu", (unsigned long long)t->id);
	TRACE("health", tid, "%s check %s: %s", c->liveness ? "liveness" : "readiness", r->ok ? "ok" : "failed", r->output);
	char before_h[16], before_r[16];
	snprintf(before_h, sizeof before_h, "%s", t->health);
	snprintf(before_r, sizeof before_r, "%s", t->ready);
	bool in_grace = !c->passed_once && clock_now(a->h->clock) - t->running_since < c->start_period;
	if (r->ok) {
		c->fails = 0;
		c->passed_once = true;
	} else if (!in_grace)
		c->fails++;
	bool failing = c->fails >= c->retries;
	if (c->liveness)
		snprintf(t->health, sizeof t->health, "%s", r->ok ? "healthy" : failing ? "unhealthy" : t->health);
	else
		snprintf(t->ready, sizeof t->ready, "%s", r->ok ? "ready" : failing ? "unready" : t->ready);
	bool changed = strcmp(before_h, t->health) || strcmp(before_r, t->ready);
	if (changed || strcmp(t->check_out, r->output)) {
		snprintf(t->check_out, sizeof t->check_out, "%s", r->output);
		if (changed)
			report_health(a, t);
	}
	if (c->liveness && failing && !t->want_stop && !t->unhealthy) {
		/* liveness failure: stop it; the leader replaces it per the restart policy */
		t->unhealthy = true;
		t->final_state = TS_FAILED;
		snprintf(t->final_err, sizeof t->final_err, "unhealthy: %u failed checks, last: %s", c->fails, r->output);
		log_warn(a->h->ident->name, "task %llu (%s.%llu) is unhealthy: %s", (unsigned long long)t->id, t->job.service,
			 (unsigned long long)t->job.slot, r->output);
		t->phase = P_STOPPING;
		t->stopped_at = clock_now(a->h->clock);
		tasks_queue_step(a, t, S_STOP);
	}
}

void checks_run(struct agent *a)
{
	uint64_t now = clock_now(a->h->clock);
	for (struct atask *t = a->tasks; t; t = t->next) {
		if (t->phase != P_RUNNING || t->busy)
			continue;
		for (int i = 0; i < t->nchecks; i++) {
			struct tcheck *c = &t->checks[i];
			if (c->busy || now < c->next_at)
				continue;
			struct work *w = xcalloc(1, sizeof *w);
			w->req.data = w;
			w->a = a;
			w->t = t;
			w->step = S_CHECK;
			w->check = i;
			w->rt.runtime = a->env.runtime;
			w->rt.state_dir = a->env.state_dir;
			w->creq.rt = &w->rt;
			w->creq.kind = c->kind;
			w->creq.argv = c->argv ? argv_dup(c->argv) : NULL;
			snprintf(w->creq.host, sizeof w->creq.host, "%s", t->job.host_net || !t->job.ip[0] ? "127.0.0.1" : t->job.ip);
			w->creq.port = c->port;
			snprintf(w->creq.path, sizeof w->creq.path, "%s", c->path);
			w->creq.timeout_ms = (int)c->timeout;
			snprintf(w->creq.cid, sizeof w->creq.cid, "%s", t->job.cid);
			c->busy = true;
			tasks_queue_work(a, w);
		}
	}
}
