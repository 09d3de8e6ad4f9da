#include "agent/report.h"
#include "agent/agent_state.h"
#include "agent/tasks.h"
#include "util/log.h"
#include "util/mem.h"
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which reports a submit carries, to find their tasks again when it comes back. */
struct report_ref {
	struct agent *a;
	size_t n;
	struct sent { uint64_t id; bool health; } *s;
};

/* A report lost with a leader change (or refused while there is none) is sent again on a
 * later tick; without it the store keeps the task's old state forever (e.g. a stopped task
 * shown running, a started one never running), since the agent reports only changes. */
static void report_lost(struct agent *a, uint64_t id, bool health)
{
	struct atask *t = a ? tasks_find(a, id) : NULL;
	if (!t)
		return;
	if (health)
		t->health_lost = true;
	else
		t->report_lost = true;
}

static void reported(void *data, int rc, const struct apply_res *res)
{
	struct report_ref *ref = data;
	if (rc && rc != E_EXISTS) {
		TRACE("agent", "report", "task report not applied: %s", res ? res->msg : "");
		if (!host_stopping(ref->a->h))
			for (size_t i = 0; i < ref->n; i++)
				report_lost(ref->a, ref->s[i].id, ref->s[i].health);
	}
	free(ref->s);
	free(ref);
}

/* One task's state, as last recorded in t (reported, reported_err, reported_exit). */
static void encode_state(const struct agent *a, const struct atask *t, struct mpw *w)
{
	const char *state = t->reported, *err = t->reported_err[0] ? t->reported_err : NULL;
	bool running = !strcmp(state, "running");
	mpw_map(w, 2 + (err != NULL) + (t->reported_exit ? 2 : 0) + (running ? 4 : 0));
	mpw_ku64(w, "id", t->id);
	mpw_kstr(w, "state", state);
	if (err)
		mpw_kstr(w, "err", err);
	if (t->reported_exit) {
		mpw_ki64(w, "exit_code", t->exit_code);
		mpw_kbool(w, "oom", t->job.oom);
	}
	if (running) {
		/* the checks' initial states too: a task with a readiness check is not ready
		 * until it passed once */
		mpw_kstr(w, "health", t->health);
		mpw_kstr(w, "ready", t->ready);
		char ep[512] = "";
		const char *host = a->h->ident->advertise;
		const char *colon = strrchr(host, ':');
		for (size_t i = 0; i < t->job.nports; i++) {
			size_t len = strlen(ep);
			snprintf(ep + len, sizeof ep - len, "%s%.*s:%u->%u/%s", len ? "," : "", (int)(colon - host), host,
				 t->job.ports[i].host_port, t->job.ports[i].container_port,
				 t->job.ports[i].proto == IPPROTO_UDP ? "udp" : "tcp");
		}
		mpw_kstr(w, "endpoint", ep);
		mpw_kstr(w, "ip", t->job.host_net ? "" : t->job.ip);
	}
}

static void encode_health(const struct atask *t, struct mpw *w)
{
	mpw_map(w, 4);
	mpw_ku64(w, "id", t->id);
	mpw_kstr(w, "health", t->health);
	mpw_kstr(w, "ready", t->ready);
	mpw_kstr(w, "check_output", t->check_out);
}

/* Sends what is due as one task.batch {at, update: [...]}: every task's latest state and
 * health, however many changes it went through since the last one. */
void report_flush(struct agent *a)
{
	size_t n = 0;
	for (const struct atask *t = a->tasks; t; t = t->next)
		n += t->report_due + t->health_due;
	if (!n || host_stopping(a->h))
		return;
	struct report_ref *ref = xcalloc(1, sizeof *ref);
	ref->a = a;
	ref->s = xcalloc(n, sizeof *ref->s);
	struct mpw w;
	mpw_init(&w);
	mpw_map(&w, 2);
	mpw_ku64(&w, "at", clock_wall(a->h->clock));
	mpw_str(&w, "update");
	mpw_arr(&w, (uint32_t)n);
	for (struct atask *t = a->tasks; t; t = t->next) {
		if (t->report_due) {
			encode_state(a, t, &w);
			ref->s[ref->n++] = (struct sent){t->id, false};
			t->report_due = false;
		}
		if (t->health_due) {
			encode_health(t, &w);
			ref->s[ref->n++] = (struct sent){t->id, true};
			t->health_due = false;
		}
	}
	char e[ERR_LEN];
	if (host_submit(a->h, "task.batch", w.sb.data, w.sb.size, reported, ref, e)) {
		TRACE("agent", "report", "task report not sent: %s", e);
		for (size_t i = 0; i < ref->n; i++)
			report_lost(a, ref->s[i].id, ref->s[i].health);
		free(ref->s);
		free(ref);
	}
	mpw_free(&w);
}

static void flush_cb(uv_timer_t *tm)
{
	report_flush(tm->data);
}

/* Changes within REPORT_DELAY_MS go out together. */
static void due(struct agent *a)
{
	if (!a->report_timer.loop || a->stopped || uv_is_active((uv_handle_t *)&a->report_timer))
		return;
	uv_timer_start(&a->report_timer, flush_cb, REPORT_DELAY_MS, 0);
}

void report_state(struct agent *a, struct atask *t, const char *state, const char *err, bool with_exit)
{
	if (!strcmp(t->reported, state) && !err && !t->report_lost)
		return;
	t->report_lost = false;
	if (t->reported != state)
		snprintf(t->reported, sizeof t->reported, "%s", state);
	if (err != t->reported_err)
		snprintf(t->reported_err, sizeof t->reported_err, "%s", err ? err : "");
	t->reported_exit = with_exit;
	char tid[32];
	snprintf(tid, sizeof tid, "task:%llu", (unsigned long long)t->id);
	TRACE("agent", tid, "-> %s%s%s", state, err ? ": " : "", err ? err : "");
	t->report_due = true;
	due(a);
}

void report_health(struct agent *a, struct atask *t)
{
	t->health_lost = false;
	t->health_due = true;
	due(a);
}

void report_resend_lost(struct agent *a)
{
	for (struct atask *t = a->tasks; t; t = t->next) {
		if (t->report_lost)
			report_state(a, t, t->reported, t->reported_err[0] ? t->reported_err : NULL, t->reported_exit);
		if (t->health_lost)
			report_health(a, t);
	}
}

bool report_pending(const struct atask *t)
{
	return t->report_due || t->health_due || t->report_lost || t->health_lost;
}

void report_init(struct agent *a)
{
	uv_timer_init(a->h->loop, &a->report_timer);
	a->report_timer.data = a;
}

static void timer_closed(uv_handle_t *h)
{
	agent_job_done(h->data);
}

void report_stop(struct agent *a)
{
	if (!a->report_timer.loop || uv_is_closing((uv_handle_t *)&a->report_timer))
		return;
	a->jobs++; /* the timer's close counts as a job of the agent */
	uv_close((uv_handle_t *)&a->report_timer, timer_closed);
}
