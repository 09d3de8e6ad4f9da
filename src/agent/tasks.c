#include "agent/tasks.h"
#include "agent/exec.h"
#include "agent/agent_state.h"
#include "agent/report.h"
#include "agent/ports.h"
#include "agent/checks.h"
#include "node/imgrec.h"
#include "image/ref.h"
#include "runtime/runproc.h"
#include "runtime/net.h"
#include "spec/spec.h"
#include "util/layout.h"
#include "util/log.h"
#include "util/mem.h"
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

void tasks_queue_step(struct agent *a, struct atask *t, enum step step)
{
	struct work *w = xcalloc(1, sizeof *w);
	w->req.data = w;
	w->a = a;
	w->t = t;
	w->step = step;
	if (t) {
		w->job = t->job;
		t->busy = true;
	}
	if (step == S_PREPARE) {
		pthread_mutex_init(&w->prog.mu, NULL);
		w->job.progress = &w->prog;
	}
	tasks_queue_work(a, w);
}

static void finish(struct agent *a, struct atask *t)
{
	t->phase = P_DONE;
	ports_release_all(a, t);
	report_state(a, t, t->final_state, t->final_err[0] ? t->final_err : NULL,
		     t->final_state == TS_COMPLETE || t->final_state == TS_FAILED);
}

static void exit_description(struct atask *t)
{
	if (t->adopted && !t->exited) {
		/* lost with the node rather than failed: whether it crashed or never got past its
		 * start when the node was killed is unknown, and a rollout must not pause or roll
		 * back on the node's fault (a version that does crash fails again, seen this time) */
		t->final_state = TS_ORPHANED;
		snprintf(t->final_err, sizeof t->final_err, "ended while its node was not running (exit status unknown)");
		t->exit_code = -1;
		return;
	}
	int st = t->status;
	if (WIFEXITED(st)) {
		t->exit_code = WEXITSTATUS(st);
		t->final_state = t->exit_code ? TS_FAILED : TS_COMPLETE;
		if (t->exit_code)
			snprintf(t->final_err, sizeof t->final_err, "exit code %lld", (long long)t->exit_code);
	} else {
		int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
		t->exit_code = 128 + sig;
		t->final_state = TS_FAILED;
		snprintf(t->final_err, sizeof t->final_err, "killed by signal %d", sig);
	}
	if (t->job.oom) {
		t->final_state = TS_FAILED;
		snprintf(t->final_err, sizeof t->final_err, "OOM-killed: the memory limit was exceeded (exit code %lld)", (long long)t->exit_code);
	}
}

void tasks_step_done(struct work *w)
{
	struct agent *a = w->a;
	struct atask *t = w->t;
	if (w->step == S_NET) {
		a->net_busy = false;
		if (w->rc)
			log_error(a->h->ident->name, a->h->clock, "network setup failed: %s", w->err);
		else
			a->net_ready = true;
		free(w);
		return;
	}
	if (w->step == S_CHECK) {
		checks_done(a, t, w->check, &w->creq);
		for (size_t i = 0; w->creq.argv && w->creq.argv[i]; i++)
			free(w->creq.argv[i]);
		free(w->creq.argv);
		free(w);
		return;
	}
	t->busy = false;
	if (w->job.pulled) {
		char err[ERR_LEN];
		if (imgrec_submit(a->h, w->job.pulled, w->job.pulled_len, err))
			log_warn(a->h->ident->name, a->h->clock, "task %llu: pulled image not recorded: %s", (unsigned long long)t->id, err);
		free(w->job.pulled);
		w->job.pulled = NULL;
	}
	if (w->step == S_PREPARE) { /* credentials live no longer than the pull */
		regopts_wipe(&w->job.login);
		regopts_wipe(&t->job.login);
		t->preparing = NULL;
		pthread_mutex_destroy(&w->prog.mu);
	}
	switch (w->step) {
	case S_PREPARE:
		if (!w->job.rc) {
			if (t->want_stop) { /* stopped while preparing: nothing runs yet */
				t->final_state = TS_SHUTDOWN;
				t->phase = P_CLEANING;
				tasks_queue_step(a, t, S_CLEANUP);
				break;
			}
			report_state(a, t, TS_STARTING, NULL, false);
			if (t->job.host_net)
				ports_release(t); /* host networking: the task binds its ports itself */
			else
				ports_relay(a, t);
			tasks_queue_step(a, t, S_START);
			break;
		}
		/* a failed prepare is handled like a failed start */
		__attribute__((fallthrough));
	case S_START:
		if (w->job.rc) {
			t->final_state = TS_REJECTED;
			snprintf(t->final_err, sizeof t->final_err, "%s", w->job.err);
			if (strstr(w->job.err, "set up the node network first"))
				a->net_ready = false; /* the bridge went away: build it again for the next task */
			log_warn(a->h->ident->name, a->h->clock, "task %llu (%s.%llu) could not start: %s", (unsigned long long)t->id, t->job.service,
				 (unsigned long long)t->job.slot, w->job.err);
			t->phase = P_CLEANING;
			tasks_queue_step(a, t, S_CLEANUP);
			break;
		}
		t->pid = w->job.pid;
		t->phase = P_RUNNING;
		checks_setup(a, t);
		if (runproc_claim(t->pid, &t->status)) /* died before we even saw the pid */
			t->exited = true;
		if (t->exited)
			t->phase = P_EXITED;
		report_state(a, t, TS_RUNNING, NULL, false);
		break;
	case S_STOP:
		t->phase = P_CLEANING;
		tasks_queue_step(a, t, S_CLEANUP);
		break;
	case S_CLEANUP:
		t->job.oom = w->job.oom;
		if (!t->final_state) {
			if (t->want_stop && !(t->exited && !t->stopped_at))
				t->final_state = TS_SHUTDOWN;
			else
				exit_description(t);
		} else if (t->exited && t->final_state == TS_FAILED && !t->want_stop && !t->unhealthy) {
			exit_description(t);
		}
		if (t->job.oom && t->final_state != TS_SHUTDOWN && !t->unhealthy)
			exit_description(t);
		if (t->unhealthy && t->exited)
			t->exit_code = WIFEXITED(t->status) ? WEXITSTATUS(t->status) : 128 + (WIFSIGNALED(t->status) ? WTERMSIG(t->status) : 0);
		finish(a, t);
		break;
	default: break;
	}
	free(w);
}

/* Takes the exits of this agent's containers from the process's reaper (runproc.h): the
 * reaper may have been run by another node of the same process. */
void tasks_claim_exits(struct agent *a)
{
	runproc_reap();
	for (struct atask *t = a->tasks; t; t = t->next) {
		int status;
		if (t->exited || t->pid <= 0 || !runproc_claim(t->pid, &status))
			continue;
		t->exited = true;
		t->status = status;
		char tid[32];
		snprintf(tid, sizeof tid, "task:%llu", (unsigned long long)t->id);
		TRACE("agent", tid, "container init %d exited (status %d)", t->pid, status);
		if (t->phase == P_RUNNING)
			t->phase = P_EXITED;
	}
	exec_claim_exits(a);
}

static void start_task(struct agent *a, struct atask *t)
{
	char err[ERR_LEN];
	struct mpr r;
	struct svc_spec sp;
	svc_spec_init(&sp);
	if (!t->job.spec || mpr_decode(&r, t->job.spec, t->job.spec_len)) {
		svc_spec_free(&sp);
		t->final_state = TS_REJECTED;
		snprintf(t->final_err, sizeof t->final_err, "no spec for this task");
		finish(a, t);
		return;
	}
	svc_spec_free(&sp);
	int rc = svc_spec_decode(r.root, &sp, err);
	mpr_free(&r);
	char pulling[ERR_LEN] = "";
	if (!rc) {
		/* an image the cluster does not hold yet comes from its registry: say so while
		 * it downloads (orch ps) */
		struct image_ref ref;
		if (!t->job.image && sp.image && !image_ref_parse(sp.image, &ref, err) && ref.digest[0] && a->h->registry) {
			snprintf(pulling, sizeof pulling, "pulling %.200s", sp.image);
			if (!t->job.login.n) /* else a worker's, given with the task (agent.c) */
				regopts_login(a->h, a->h->registry, &ref, &t->job.login);
		}
		t->job.host_net = sp.network_mode == NET_HOST;
		t->job.grace_ms = (int)sp.stop_grace_ms;
		t->job.stop_signal = SIGTERM;
		if (sp.stop_signal && spec_signal(sp.stop_signal))
			t->job.stop_signal = spec_signal(sp.stop_signal);
		/* a synthetic backend holds no port and takes no address: nothing would answer */
		rc = a->be->synthetic ? 0 : ports_alloc(a, t, &sp, err);
		if (!rc && !t->job.host_net && !a->be->synthetic && ports_alloc_ip(a, t->job.ip))
			rc = errf(err, E_BUSY, "no free address in this node's subnet");
	}
	svc_spec_free(&sp);
	if (rc) {
		t->final_state = TS_REJECTED;
		snprintf(t->final_err, sizeof t->final_err, "%s", err);
		finish(a, t);
		return;
	}
	t->phase = P_PREPARING;
	report_state(a, t, TS_PREPARING, pulling[0] ? pulling : NULL, false);
	tasks_queue_step(a, t, S_PREPARE);
}

void tasks_step(struct agent *a, struct atask *t)
{
	if (t->busy || t->phase == P_DONE)
		return;
	switch (t->phase) {
	case P_NEW:
		if (t->want_stop) {
			t->final_state = TS_SHUTDOWN;
			finish(a, t);
		} else if (!a->net_ready) {
			/* the bridge and NAT table are made when the first task needs them */
			if (a->subnet && !a->net_busy) {
				a->net_busy = true;
				tasks_queue_step(a, NULL, S_NET); /* net-tag was kept when the tag was chosen */
			}
		} else {
			/* no wait here for the restart back-off: the leader assigns a task only once
			 * its start_after has passed by the leader's clock, and this machine's clock
			 * may be behind (a wait on it stretched the back-off by the skew: found by the
			 * simulation's restart_backoff with clocks 20 s apart) */
			start_task(a, t);
		}
		break;
	case P_RUNNING:
		if (t->want_stop && t->job.nports && !t->drain_until) {
			/* every node's mesh drops the endpoint at commit time; give in-flight
			 * connections a moment before the stop signal */
			const char *e = getenv("ORCH_DRAIN_MS");
			t->drain_until = clock_now(a->h->clock) + (e && *e ? strtoull(e, NULL, 10) : 1000);
		}
		if (t->want_stop && clock_now(a->h->clock) >= t->drain_until) {
			t->phase = P_STOPPING;
			t->stopped_at = clock_now(a->h->clock);
			tasks_queue_step(a, t, S_STOP);
		}
		break;
	case P_EXITED:
		t->phase = P_CLEANING;
		tasks_queue_step(a, t, S_CLEANUP);
		break;
	default: break;
	}
}

void tasks_free(struct atask *t)
{
	if (t->job.spec) /* a worker's environment comes opened (node/feed.c) */
		explicit_bzero(t->job.spec, t->job.spec_len);
	free(t->job.spec);
	free(t->job.image);
	if (t->job.files) /* a worker's values come opened (node/feed.h) */
		explicit_bzero(t->job.files, t->job.files_len);
	free(t->job.files);
	free(t->job.peers);
	regopts_wipe(&t->job.login); /* a worker's given credentials, if it never pulled */
	free(t);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void tasks_reap_done(struct agent *a)
{
	for (struct atask **pp = &a->tasks; *pp;) {
		struct atask *t = *pp;
		bool checking = false;
		for (int i = 0; i < t->nchecks; i++)
			checking |= t->checks[i].busy;
		if (t->phase == P_DONE && t->gone && !t->busy && !checking && !report_pending(t)) {
			bool followed = false;
			for (struct follower *f = a->followers; f; f = f->next)
				if (f->task_id == t->id)
					followed = true;
			if (followed) {
				pp = &t->next;
				continue;
			}
			*pp = t->next;
			if (!a->be->synthetic)
				nftw(t->job.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
			checks_free(t);
			tasks_free(t);
		} else
			pp = &t->next;
	}
}

struct atask *tasks_find(struct agent *a, uint64_t id)
{
	for (struct atask *t = a->tasks; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

struct atask *tasks_new(struct agent *a, uint64_t id)
{
	struct atask *t = xcalloc(1, sizeof *t);
	t->id = id;
	t->job.env = &a->env;
	t->job.task_id = id;
	snprintf(t->job.cid, sizeof t->job.cid, "o%s-%llu", a->env.tag, (unsigned long long)id);
	snprintf(t->job.task_tag, sizeof t->job.task_tag, "%llx", (unsigned long long)(id & 0xfffffff));
	layout_task_dir(t->job.dir, sizeof t->job.dir, a->env.data_dir, id);
	t->next = a->tasks;
	a->tasks = t;
	return t;
}

void tasks_queue_work(struct agent *a, struct work *w)
{
	if (a->stopped) { /* the node is going: what runs stays as it is (found again on restart) */
		for (size_t i = 0; w->creq.argv && w->creq.argv[i]; i++)
			free(w->creq.argv[i]);
		free(w->creq.argv);
		free(w);
		return;
	}
	if (w->t && w->step == S_PREPARE)
		w->t->preparing = w;
	a->be->queue(a, w);
}

void tasks_pull_progress(struct agent *a, struct atask *t)
{
	char msg[sizeof t->preparing->prog.msg];
	struct run_progress *p = &t->preparing->prog;
	uint64_t now = clock_now(a->h->clock);
	/* a report is a raft write: once a second is plenty for a person watching orch ps */
	if (now - t->progress_at < 1000)
		return;
	pthread_mutex_lock(&p->mu);
	bool fresh = p->fresh;
	p->fresh = false;
	memcpy(msg, p->msg, sizeof msg);
	pthread_mutex_unlock(&p->mu);
	if (!fresh)
		return;
	t->progress_at = now;
	report_state(a, t, TS_PREPARING, msg, false);
}
