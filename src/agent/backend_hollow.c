/* The hollow backend (agent/backend.h): a runtime that runs nothing, for scale simulation
 * only (orch debug hollow). A step completes on the loop, in arrival order: at once, except
 * a start, which takes the run delay; health checks pass. Running tasks report synthetic
 * figures. Nothing is bound, mounted, addressed or written to disk for a task. */
#include "agent/backend.h"
#include "agent/agent_state.h"
#include "agent/tasks.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hstep {
	struct work *w;
	uint64_t due;
	struct hstep *next;
};

struct hqueue {
	struct hstep *head, **tail;
};

struct hollow {
	uv_timer_t timer;
	struct hqueue now, later; /* later: starts, due in arrival order (one delay for all) */
};

static void hq_init(struct hqueue *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

static void hq_push(struct hqueue *q, struct hstep *s)
{
	s->next = NULL;
	*q->tail = s;
	q->tail = &s->next;
}

static struct hstep *hq_pop(struct hqueue *q)
{
	struct hstep *s = q->head;
	if (s && !(q->head = s->next))
		q->tail = &q->head;
	return s;
}

static void arm(struct agent *a);

/* What the step would have found out, had anything run. */
static void carry_out(struct work *w)
{
	w->rc = 0;
	w->job.rc = 0;
	w->job.pid = 0; /* no process: the task runs until it is stopped */
	w->job.oom = false;
	if (w->step == S_CHECK) {
		w->creq.ok = true;
		snprintf(w->creq.output, sizeof w->creq.output, "hollow runtime: nothing runs, checks pass");
	}
}

static void timer_cb(uv_timer_t *tm)
{
	struct agent *a = tm->data;
	struct hollow *h = a->be_data;
	uint64_t now = clock_now(a->h->clock);
	/* the steps due now, taken first: completing one may queue the next */
	struct hqueue due;
	hq_init(&due);
	for (struct hstep *s; (s = hq_pop(&h->now));)
		hq_push(&due, s);
	while (h->later.head && h->later.head->due <= now)
		hq_push(&due, hq_pop(&h->later));
	for (struct hstep *s; (s = hq_pop(&due));) {
		struct work *w = s->w;
		free(s);
		carry_out(w);
		tasks_step_done(w);
	}
	arm(a);
}

static void arm(struct agent *a)
{
	struct hollow *h = a->be_data;
	if (a->stopped)
		return;
	uint64_t now = clock_now(a->h->clock);
	if (h->now.head)
		uv_timer_start(&h->timer, timer_cb, 0, 0);
	else if (h->later.head)
		uv_timer_start(&h->timer, timer_cb, h->later.head->due > now ? h->later.head->due - now : 0, 0);
}

static int hollow_start(struct agent *a, char *err)
{
	(void)err;
	struct hollow *h = xcalloc(1, sizeof *h);
	hq_init(&h->now);
	hq_init(&h->later);
	a->be_data = h;
	snprintf(a->runtime, sizeof a->runtime, "hollow");
	a->env.runtime = a->runtime;
	a->net_ready = true; /* no bridge, no nftables: nothing to set up */
	uv_timer_init(a->h->loop, &h->timer);
	h->timer.data = a;
	return 0;
}

static void hollow_queue(struct agent *a, struct work *w)
{
	struct hollow *h = a->be_data;
	struct hstep *s = xcalloc(1, sizeof *s);
	s->w = w;
	if (w->step == S_START) {
		s->due = clock_now(a->h->clock) + a->run_delay_ms;
		hq_push(&h->later, s);
	} else
		hq_push(&h->now, s);
	arm(a);
}

static void drop(struct hqueue *q)
{
	for (struct hstep *s; (s = hq_pop(q));) {
		for (size_t i = 0; s->w->creq.argv && s->w->creq.argv[i]; i++)
			free(s->w->creq.argv[i]);
		free(s->w->creq.argv);
		free(s->w);
		free(s);
	}
}

static void timer_closed(uv_handle_t *hd)
{
	agent_job_done(hd->data);
}

static void hollow_stop(struct agent *a)
{
	struct hollow *h = a->be_data;
	drop(&h->now);
	drop(&h->later);
	if (uv_is_closing((uv_handle_t *)&h->timer))
		return;
	a->jobs++; /* the timer's close counts as a job of the agent */
	uv_close((uv_handle_t *)&h->timer, timer_closed);
}

static void hollow_free(struct agent *a)
{
	struct hollow *h = a->be_data;
	if (!h)
		return;
	drop(&h->now);
	drop(&h->later);
	free(h);
	a->be_data = NULL;
}

/* Synthetic, and stable per task: 1 to 5 % of a CPU and 16 to 63 MiB. */
static void hollow_figures(const struct agent *a, const struct atask *t, uint64_t now, uint64_t *cpu_ns, uint64_t *mem)
{
	(void)a;
	uint64_t milli = 10 + t->id % 41, ran = now > t->running_since ? now - t->running_since : 0;
	*cpu_ns = ran * milli * 1000;
	*mem = (16 + t->id % 48) << 20;
}

const struct backend backend_hollow = {
	.kind = "hollow",
	.synthetic = true,
	.start = hollow_start,
	.queue = hollow_queue,
	.stop = hollow_stop,
	.free = hollow_free,
	.figures = hollow_figures,
};
