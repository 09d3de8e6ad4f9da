/* The OCI backend (agent/backend.h): each step runs on libuv's thread pool on a copy of
 * its task's job — runc or crun for the container, the node network, health probes — and
 * the containers are children of this process (child subreaper), found again after a
 * restart. */
#include "agent/backend.h"
#include "agent/adopt.h"
#include "agent/agent_state.h"
#include "agent/tasks.h"
#include "runtime/net.h"
#include "util/layout.h"
#include <signal.h>
#include <sys/stat.h>

static void sigchld_cb(uv_signal_t *h, int sig)
{
	(void)sig;
	tasks_claim_exits(h->data);
}

static int oci_start(struct agent *a, char *err)
{
	(void)err;
	adopt_runtime(a);
	char tasks[700];
	layout_path(tasks, sizeof tasks, a->h->data_dir, LAYOUT_TASKS);
	mkdir(tasks, 0700);
	mkdir(a->env.state_dir, 0700);
	uv_signal_init(a->h->loop, &a->sigchld);
	a->sigchld.data = a;
	uv_signal_start(&a->sigchld, sigchld_cb, SIGCHLD);
	adopt_all(a);
	/* adopted containers are not our children: poll them in the tick */
	return 0;
}

static void work_run(uv_work_t *req)
{
	struct work *w = req->data;
	switch (w->step) {
	case S_NET: {
		struct net_node nn = {.tag = w->a->env.tag, .subnet = w->a->env.subnet};
		w->rc = net_node_setup(&nn, w->err);
		break;
	}
	case S_PREPARE: run_prepare(&w->job); break;
	case S_START: run_start(&w->job); break;
	case S_STOP: run_stop(&w->job); break;
	case S_CLEANUP: run_cleanup(&w->job); break;
	case S_CHECK: health_run(&w->creq); break;
	}
}

static void work_done(uv_work_t *req, int status)
{
	struct work *w = req->data;
	struct agent *a = w->a;
	(void)status;
	tasks_step_done(w);
	agent_job_done(a);
}

static void oci_queue(struct agent *a, struct work *w)
{
	a->jobs++;
	uv_queue_work(a->h->loop, &w->req, work_run, work_done);
}

static void sigchld_closed(uv_handle_t *h)
{
	agent_job_done(h->data);
}

static void oci_stop(struct agent *a)
{
	if (!a->sigchld.loop || uv_is_closing((uv_handle_t *)&a->sigchld))
		return;
	uv_signal_stop(&a->sigchld);
	a->jobs++; /* the handle's close counts as a job of the agent */
	uv_close((uv_handle_t *)&a->sigchld, sigchld_closed);
}

static void oci_free(struct agent *a)
{
	(void)a;
}

const struct backend backend_oci = {
	.kind = "oci",
	.synthetic = false,
	.start = oci_start,
	.queue = oci_queue,
	.stop = oci_stop,
	.free = oci_free,
	.figures = NULL,
};
