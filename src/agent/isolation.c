#include "agent/isolation.h"
#include "agent/agent_state.h"
#include "runtime/net.h"
#include "traffic/scope.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

struct iso_job {
	uv_work_t req;
	struct agent *a;
	char tag[IPAM_TAG_LEN];
	char *pairs;
	int rc;
	char err[ERR_LEN];
};

struct member {
	const char *ip;
	const struct service *v;
};

static int by_service(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	if (x->v != y->v)
		return x->v->id < y->v->id ? -1 : 1;
	return strcmp(x->ip, y->ip);
}

/* "a . b, b . a, ..." for every two bridge tasks of services that may not talk; NULL when
 * a task is not in the state yet (decided on a later tick). */
static char *pairs_now(const struct agent *a)
{
	const struct store *s = a->h->store;
	size_t n = 0, cap = 0;
	struct member *m = NULL;
	bool unknown = false;
	for (const struct atask *t = a->tasks; t; t = t->next) {
		if (t->job.host_net || !t->job.ip[0] || t->gone)
			continue;
		const struct task *st = table_get_u64(&s->tasks, t->id);
		const struct service *v = st ? scope_service(s, st) : NULL;
		if (!v) {
			unknown = true;
			break;
		}
		if (n == cap)
			m = xrealloc(m, (cap = cap ? cap * 2 : 16) * sizeof *m);
		m[n++] = (struct member){t->job.ip, v};
	}
	if (unknown) {
		free(m);
		return NULL;
	}
	if (n)
		qsort(m, n, sizeof *m, by_service);
	struct buf b = {0};
	/* by service: one scope check per two services, not per two tasks */
	for (size_t i = 0; i < n;) {
		size_t ie = i;
		while (ie < n && m[ie].v == m[i].v)
			ie++;
		for (size_t j = ie; j < n;) {
			size_t je = j;
			while (je < n && m[je].v == m[j].v)
				je++;
			if (!scope_allowed(m[i].v, m[j].v))
				for (size_t x = i; x < ie; x++)
					for (size_t y = j; y < je; y++)
						buf_printf(&b, "%s%s . %s, %s . %s", b.len ? ", " : "", m[x].ip, m[y].ip, m[y].ip, m[x].ip);
			j = je;
		}
		i = ie;
	}
	free(m);
	buf_append(&b, "", 1);
	char *out = xstrdup((const char *)b.data);
	buf_free(&b);
	return out;
}

static void iso_run(uv_work_t *req)
{
	struct iso_job *j = req->data;
	struct net_node nn = {.tag = j->tag, .subnet = NULL};
	j->rc = net_isolate(&nn, j->pairs, j->err);
}

static void iso_done(uv_work_t *req, int status)
{
	struct iso_job *j = req->data;
	struct agent *a = j->a;
	(void)status;
	a->iso_busy = false;
	if (j->rc) {
		log_warn(a->h->ident->name, a->h->clock, "task isolation on the bridge: %s (retrying in 5 s)", j->err);
		a->iso_retry_at = clock_now(a->h->clock) + 5000;
		free(j->pairs);
	} else {
		free(a->iso_applied);
		a->iso_applied = j->pairs;
	}
	free(j);
	agent_job_done(a);
}

void isolation_sync(struct agent *a)
{
	if (a->be->synthetic || !a->net_ready || a->iso_busy || a->stopped || host_stopping(a->h) ||
	    clock_now(a->h->clock) < a->iso_retry_at)
		return;
	char *pairs = pairs_now(a);
	if (!pairs || (a->iso_applied && !strcmp(pairs, a->iso_applied))) {
		free(pairs);
		return;
	}
	struct iso_job *j = xcalloc(1, sizeof *j);
	j->req.data = j;
	j->a = a;
	j->pairs = pairs;
	snprintf(j->tag, sizeof j->tag, "%s", a->env.tag);
	a->iso_busy = true;
	a->jobs++;
	uv_queue_work(a->h->loop, &j->req, iso_run, iso_done);
}

void isolation_free(struct agent *a)
{
	free(a->iso_applied);
	a->iso_applied = NULL;
}
