#include "agent/report.h"
#include "agent/agent_state.h"
#include "agent/tasks.h"
#include "util/log.h"
#include "util/mem.h"
#include <arpa/inet.h>
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
	if (rc == E_STATE) {
		/* the cluster moved a task on meanwhile (state/lifecycle.h): sending it again
		 * would be refused again */
		TRACE("agent", "report", "task report refused: %s", res ? res->msg : "");
	} else if (rc && rc != E_EXISTS) {
		TRACE("agent", "report", "task report not applied: %s", res ? res->msg : "");
		if (!host_stopping(ref->a->h))
			for (size_t i = 0; i < ref->n; i++)
				report_lost(ref->a, ref->s[i].id, ref->s[i].health);
	}
	free(ref->s);
	free(ref);
}

/* The IPv4 address of this node's advertised IP:PORT (host byte order; 0 if it is none). */
static uint32_t advertised_ipv4(const struct agent *a)
{
	char ip[INET_ADDRSTRLEN];
	const char *adv = a->h->ident->advertise, *colon = strrchr(adv, ':');
	size_t n = colon ? (size_t)(colon - adv) : strlen(adv);
	struct in_addr in;
	if (n >= sizeof ip)
		return 0;
	memcpy(ip, adv, n);
	ip[n] = 0;
	return inet_pton(AF_INET, ip, &in) == 1 ? ntohl(in.s_addr) : 0;
}

/* One task's state, as last recorded in t (reported, reported_err, reported_exit). */
static void encode_state(const struct agent *a, const struct atask *t, struct mpw *w)
{
	enum task_state state = t->reported;
	const char *err = t->reported_err[0] ? t->reported_err : NULL;
	mpw_map_begin(w);
	mpw_ku64(w, "id", t->id);
	mpw_kstr(w, "state", task_state_name(state));
	if (err)
		mpw_kstr(w, "err", err);
	if (t->reported_exit) {
		mpw_ki64(w, "exit_code", t->exit_code);
		mpw_kbool(w, "oom", t->job.oom);
	}
	if (state == TS_RUNNING) {
		/* the checks' initial states too: a task with a readiness check is not ready
		 * until it passed once */
		mpw_kstr(w, "health", t->health);
		mpw_kstr(w, "ready", t->ready);
		/* other nodes reach the published ports on this node's advertised address */
		struct endpoints eps = {0};
		uint32_t host = advertised_ipv4(a);
		for (size_t i = 0; i < t->job.nports; i++) {
			const struct port_map *pm = &t->job.ports[i];
			struct endpoint ep = {host, pm->host_port, pm->container_port, pm->proto == IPPROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP};
			endpoints_add(&eps, &ep);
		}
		mpw_key(w, "endpoint");
		endpoints_encode(&eps, w);
		endpoints_free(&eps);
		mpw_kstr(w, "ip", t->job.host_net ? "" : t->job.ip);
	}
	mpw_map_end(w);
}

static void encode_health(const struct atask *t, struct mpw *w)
{
	mpw_map_begin(w);
	mpw_ku64(w, "id", t->id);
	mpw_kstr(w, "health", t->health);
	mpw_kstr(w, "ready", t->ready);
	mpw_kstr(w, "check_output", t->check_out);
	mpw_map_end(w);
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
	struct mpw u;
	mpw_init(&u);
	mpw_arr(&u, (uint32_t)n);
	for (struct atask *t = a->tasks; t; t = t->next) {
		if (t->report_due) {
			encode_state(a, t, &u);
			ref->s[ref->n++] = (struct sent){t->id, false};
			t->report_due = false;
		}
		if (t->health_due) {
			encode_health(t, &u);
			ref->s[ref->n++] = (struct sent){t->id, true};
			t->health_due = false;
		}
	}
	char e[ERR_LEN];
	struct cmd_task_batch b = {.update = {.raw = u.sb.data, .len = u.sb.size}, .at = clock_wall(a->h->clock)};
	struct mpw w;
	mpw_init(&w);
	cmd_body(&w, CMD_TASK_BATCH, &b);
	int rc = host_submit(a->h, CMD_TASK_BATCH, w.sb.data, w.sb.size, reported, ref, e);
	mpw_free(&w);
	mpw_free(&u);
	if (rc) {
		TRACE("agent", "report", "task report not sent: %s", e);
		for (size_t i = 0; i < ref->n; i++)
			report_lost(a, ref->s[i].id, ref->s[i].health);
		free(ref->s);
		free(ref);
	}
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

void report_state(struct agent *a, struct atask *t, enum task_state state, const char *err, bool with_exit)
{
	if (t->reported == state && !err && !t->report_lost)
		return;
	t->report_lost = false;
	t->reported = state;
	if (err != t->reported_err)
		snprintf(t->reported_err, sizeof t->reported_err, "%s", err ? err : "");
	t->reported_exit = with_exit;
	char tid[32];
	snprintf(tid, sizeof tid, "task:%llu", (unsigned long long)t->id);
	/* Ask only for a move the task's table allows from where the cluster has it (the
	 * assignment document): a task orphaned while this node was away has ended there, and
	 * its container's end is no news. Unknown until the first document (an adopted task):
	 * the state machine decides. */
	if (t->stored && !lifecycle_allows(&lifecycle_task, (int)t->stored, (int)state)) {
		TRACE("agent", tid, "not reported: %s (the task is %s in the cluster)", task_state_name(state),
		      task_state_name(t->stored));
		t->report_due = false;
		return;
	}
	TRACE("agent", tid, "-> %s%s%s", task_state_name(state), err ? ": " : "", err ? err : "");
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
