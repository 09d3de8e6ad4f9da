#include "agent/agent.h"
#include "util/layout.h"
#include "agent/task_run.h"
#include "agent/health.h"
#include "net/conn.h"
#include "net/ipam.h"
#include "net/rpc_reply.h"
#include "runtime/runproc.h"
#include "spec/spec.h"
#include "image/blobstore.h"
#include "image/image_load.h"
#include <sys/wait.h>
#include "util/log.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum phase { P_NEW, P_PREPARING, P_RUNNING, P_STOPPING, P_EXITED, P_CLEANING, P_DONE };

struct tcheck {
	enum check_kind kind;
	char **argv;
	uint16_t port;
	char path[256];
	uint64_t interval, timeout, retries, start_period;
	bool liveness;
	bool busy, passed_once;
	unsigned fails;
	uint64_t next_at;
};

struct atask {
	uint64_t id;
	struct tcheck checks[2];
	int nchecks;
	uint64_t running_since, drain_until;
	bool unhealthy;
	char health[16], ready[16], check_out[256];
	struct run_job job;     /* identity, resources; copied for every worker step */
	enum phase phase;
	bool busy;              /* a worker step is in flight */
	bool want_stop;         /* desired shutdown or unassigned */
	bool gone;              /* no longer in the assignment: forget once done */
	bool adopted;           /* found again after an agent restart: not our child */
	uint64_t start_after;
	int pid, status;
	bool exited;
	char reported[16];      /* last state reported */
	int port_fds[RUN_MAX_PORTS]; /* host ports held bound while the task has them; 0: none */
	char reported_err[ERR_LEN];
	bool reported_exit;
	bool report_lost;       /* the last state report was not applied: send it again */
	bool health_lost;       /* the same for the last health report */
	char final_state[16];
	char final_err[ERR_LEN];
	int64_t exit_code;
	uint64_t stopped_at;
	struct atask *next;
};

struct follower {
	struct conn *conn;
	uint64_t req_id, task_id;
	off_t off;
	struct follower *next;
};

struct blob_job {
	uv_work_t req;
	struct agent *a;
	struct conn *conn; /* NULL once it closed */
	uint64_t req_id;
	struct blob_job *next;
	char data_dir[512], digest[80];
	uint64_t off, len, size;
	char *buf;
	ssize_t n;
	int rc;
	char err[ERR_LEN];
};

struct agent {
	const struct host *h;
	char runtime[16];       /* the OCI runtime its containers live in */
	unsigned ticks;
	struct run_env env;
	uv_signal_t sigchld;
	bool net_ready, net_busy, have_doc;
	uint64_t subnet;
	struct atask *tasks;
	struct run_peer *peers;
	size_t npeers;
	struct follower *followers;
	struct blob_job *blob_jobs; /* blob.get reads in flight (their conn may go away) */
	uint8_t ip_used[256];
};

/* ---- reporting ---------------------------------------------------------------------------- */

/* Which report a submit carries, to find its task again when it comes back. */
struct report_ref {
	struct agent *a;
	uint64_t id;
	bool health;
};

static struct atask *find(struct agent *a, uint64_t id);

/* A report lost with a leader change (or refused while there is none) is sent again on a
 * later tick; without it the store keeps the task's old state forever (e.g. a stopped task
 * shown running, a started one never running), since the agent reports only changes. */
static void report_lost(struct agent *a, const struct report_ref *ref)
{
	struct atask *t = a ? find(a, ref->id) : NULL;
	if (!t)
		return;
	if (ref->health)
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
			report_lost(ref->a, ref);
	}
	free(ref);
}

/* A task.batch body updating one task: {at, update: [{<n fields follow>}]}. */
static void update_begin(const struct agent *a, struct mpw *w, uint32_t n)
{
	mpw_map(w, 2);
	mpw_ku64(w, "at", clock_wall(a->h->clock));
	mpw_str(w, "update");
	mpw_arr(w, 1);
	mpw_map(w, n);
}

static void submit_report(struct agent *a, uint64_t id, bool health, const struct mpw *w)
{
	struct report_ref *ref = xcalloc(1, sizeof *ref);
	ref->a = a;
	ref->id = id;
	ref->health = health;
	char e[ERR_LEN];
	if (host_submit(a->h, "task.batch", w->sb.data, w->sb.size, reported, ref, e)) {
		TRACE("agent", "report", "task report not sent: %s", e);
		report_lost(a, ref);
		free(ref);
	}
}

static void report(struct agent *a, struct atask *t, const char *state, const char *err, bool with_exit)
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
	struct mpw w;
	mpw_init(&w);
	uint32_t n = 2 + (err != NULL) + (with_exit ? 2 : 0) + (!strcmp(state, "running") ? 4 : 0);
	update_begin(a, &w, n);
	mpw_ku64(&w, "id", t->id);
	mpw_kstr(&w, "state", state);
	if (err)
		mpw_kstr(&w, "err", err);
	if (with_exit) {
		mpw_ki64(&w, "exit_code", t->exit_code);
		mpw_kbool(&w, "oom", t->job.oom);
	}
	if (!strcmp(state, "running")) {
		/* the checks' initial states too: a task with a readiness check is not ready
		 * until it passed once */
		mpw_kstr(&w, "health", t->health);
		mpw_kstr(&w, "ready", t->ready);
		char ep[512] = "";
		const char *host = a->h->ident->advertise;
		const char *colon = strrchr(host, ':');
		for (size_t i = 0; i < t->job.nports; i++) {
			size_t len = strlen(ep);
			snprintf(ep + len, sizeof ep - len, "%s%.*s:%u->%u/%s", len ? "," : "", (int)(colon - host), host,
				 t->job.ports[i].host_port, t->job.ports[i].container_port,
				 t->job.ports[i].proto == IPPROTO_UDP ? "udp" : "tcp");
		}
		mpw_kstr(&w, "endpoint", ep);
		mpw_kstr(&w, "ip", t->job.host_net ? "" : t->job.ip);
	}
	submit_report(a, t->id, false, &w);
	mpw_free(&w);
}

/* ---- workers -------------------------------------------------------------------------------- */

enum step { S_NET, S_PREPARE, S_START, S_STOP, S_CLEANUP, S_CHECK };

struct work {
	uv_work_t req;
	struct agent *a;
	struct atask *t;
	enum step step;
	struct run_job job;
	char err[ERR_LEN];
	int rc;
	int check;
	struct check_req creq;
	struct rt rt;
};

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

static void after_work(uv_work_t *req, int status);
static void setup_checks(const struct agent *a, struct atask *t);
static void check_done(struct agent *a, struct atask *t, int idx, const struct check_req *r);

static void queue_step(struct agent *a, struct atask *t, enum step step)
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
	uv_queue_work(a->h->loop, &w->req, work_run, after_work);
}

/* A published host port is only a DNAT rule, which no other process on the machine can see:
 * another node sharing the machine (another cluster's, whose port range may overlap) would
 * pick it again. Holding it bound (never listening: DNAT'd traffic never reaches the socket)
 * makes net_pick_port's bind test fail for everyone else. Returns the fd + 1, or 0. */
static int hold_port(uint16_t port, int proto)
{
	int fd = socket(AF_INET, (proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa)) {
		close(fd);
		return 0;
	}
	return fd + 1;
}

static void release_ports(struct atask *t)
{
	for (size_t i = 0; i < RUN_MAX_PORTS; i++)
		if (t->port_fds[i]) {
			close(t->port_fds[i] - 1);
			t->port_fds[i] = 0;
		}
}

static void release_resources(struct agent *a, struct atask *t)
{
	release_ports(t);
	if (!t->job.host_net && t->job.ip[0])
		a->ip_used[ipam_host_of(t->job.ip)] = 0;
}

static void finish(struct agent *a, struct atask *t)
{
	t->phase = P_DONE;
	release_resources(a, t);
	report(a, t, t->final_state, t->final_err[0] ? t->final_err : NULL, !strcmp(t->final_state, "complete") || !strcmp(t->final_state, "failed"));
}

static void exit_description(struct atask *t)
{
	if (t->adopted && !t->exited) {
		snprintf(t->final_state, sizeof t->final_state, "failed");
		snprintf(t->final_err, sizeof t->final_err, "exited while the agent was not running (exit status unknown)");
		t->exit_code = -1;
		return;
	}
	int st = t->status;
	if (WIFEXITED(st)) {
		t->exit_code = WEXITSTATUS(st);
		snprintf(t->final_state, sizeof t->final_state, "%s", t->exit_code ? "failed" : "complete");
		if (t->exit_code)
			snprintf(t->final_err, sizeof t->final_err, "exit code %lld", (long long)t->exit_code);
	} else {
		int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
		t->exit_code = 128 + sig;
		snprintf(t->final_state, sizeof t->final_state, "failed");
		snprintf(t->final_err, sizeof t->final_err, "killed by signal %d", sig);
	}
	if (t->job.oom) {
		snprintf(t->final_state, sizeof t->final_state, "failed");
		snprintf(t->final_err, sizeof t->final_err, "OOM-killed: the memory limit was exceeded (exit code %lld)", (long long)t->exit_code);
	}
}

static void after_work(uv_work_t *req, int status)
{
	struct work *w = req->data;
	struct agent *a = w->a;
	struct atask *t = w->t;
	(void)status;
	if (w->step == S_NET) {
		a->net_busy = false;
		if (w->rc)
			log_error(a->h->ident->name, "network setup failed: %s", w->err);
		else
			a->net_ready = true;
		free(w);
		return;
	}
	if (w->step == S_CHECK) {
		check_done(a, t, w->check, &w->creq);
		for (size_t i = 0; w->creq.argv && w->creq.argv[i]; i++)
			free(w->creq.argv[i]);
		free(w->creq.argv);
		free(w);
		return;
	}
	t->busy = false;
	switch (w->step) {
	case S_PREPARE:
		if (!w->job.rc) {
			if (t->want_stop) { /* stopped while preparing: nothing runs yet */
				snprintf(t->final_state, sizeof t->final_state, "shutdown");
				t->phase = P_CLEANING;
				queue_step(a, t, S_CLEANUP);
				break;
			}
			report(a, t, "starting", NULL, false);
			if (t->job.host_net)
				release_ports(t); /* host networking: the task binds its ports itself */
			queue_step(a, t, S_START);
			break;
		}
		/* a failed prepare is handled like a failed start */
		__attribute__((fallthrough));
	case S_START:
		if (w->job.rc) {
			snprintf(t->final_state, sizeof t->final_state, "rejected");
			snprintf(t->final_err, sizeof t->final_err, "%s", w->job.err);
			if (strstr(w->job.err, "set up the node network first"))
				a->net_ready = false; /* the bridge went away: build it again for the next task */
			log_warn(a->h->ident->name, "task %llu (%s.%llu) could not start: %s", (unsigned long long)t->id, t->job.service,
				 (unsigned long long)t->job.slot, w->job.err);
			t->phase = P_CLEANING;
			queue_step(a, t, S_CLEANUP);
			break;
		}
		t->pid = w->job.pid;
		t->phase = P_RUNNING;
		setup_checks(a, t);
		if (runproc_claim(t->pid, &t->status)) /* died before we even saw the pid */
			t->exited = true;
		if (t->exited)
			t->phase = P_EXITED;
		report(a, t, "running", NULL, false);
		break;
	case S_STOP:
		t->phase = P_CLEANING;
		queue_step(a, t, S_CLEANUP);
		break;
	case S_CLEANUP:
		t->job.oom = w->job.oom;
		if (!t->final_state[0]) {
			if (t->want_stop && !(t->exited && !t->stopped_at))
				snprintf(t->final_state, sizeof t->final_state, "shutdown");
			else
				exit_description(t);
		} else if (t->exited && !strcmp(t->final_state, "failed") && !t->want_stop && !t->unhealthy) {
			exit_description(t);
		}
		if (t->job.oom && strcmp(t->final_state, "shutdown") && !t->unhealthy)
			exit_description(t);
		if (t->unhealthy && t->exited)
			t->exit_code = WIFEXITED(t->status) ? WEXITSTATUS(t->status) : 128 + (WIFSIGNALED(t->status) ? WTERMSIG(t->status) : 0);
		finish(a, t);
		break;
	default: break;
	}
	free(w);
}

/* ---- health checks -------------------------------------------------------------------------- */


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
static void setup_checks(const struct agent *a, struct atask *t)
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

static void free_checks(struct atask *t)
{
	for (int i = 0; i < t->nchecks; i++) {
		for (size_t k = 0; t->checks[i].argv && t->checks[i].argv[k]; k++)
			free(t->checks[i].argv[k]);
		free(t->checks[i].argv);
		t->checks[i].argv = NULL;
	}
	t->nchecks = 0;
}

static void report_health(struct agent *a, struct atask *t)
{
	struct mpw w;
	mpw_init(&w);
	update_begin(a, &w, 4);
	mpw_ku64(&w, "id", t->id);
	mpw_kstr(&w, "health", t->health);
	mpw_kstr(&w, "ready", t->ready);
	mpw_kstr(&w, "check_output", t->check_out);
	t->health_lost = false;
	submit_report(a, t->id, true, &w);
	mpw_free(&w);
}

static void check_done(struct agent *a, struct atask *t, int idx, const struct check_req *r)
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
		snprintf(t->final_state, sizeof t->final_state, "failed");
		snprintf(t->final_err, sizeof t->final_err, "unhealthy: %u failed checks, last: %s", c->fails, r->output);
		log_warn(a->h->ident->name, "task %llu (%s.%llu) is unhealthy: %s", (unsigned long long)t->id, t->job.service,
			 (unsigned long long)t->job.slot, r->output);
		t->phase = P_STOPPING;
		t->stopped_at = clock_now(a->h->clock);
		queue_step(a, t, S_STOP);
	}
}

static void run_checks(struct agent *a)
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
			uv_queue_work(a->h->loop, &w->req, work_run, after_work);
		}
	}
}

/* ---- child exits ------------------------------------------------------------------------------ */

/* Takes the exits of this agent's containers from the process's reaper (runproc.h): the
 * reaper may have been run by another node of the same process. */
static void claim_exits(struct agent *a)
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
}

static void sigchld_cb(uv_signal_t *h, int sig)
{
	(void)sig;
	claim_exits(h->data);
}

/* ---- the task state machine ------------------------------------------------------------------ */

static int alloc_ip(struct agent *a, char out[IPAM_ADDR_LEN])
{
	for (unsigned i = 2; i < 255; i++)
		if (!a->ip_used[i] && ipam_host(a->env.subnet, i, out)) {
			a->ip_used[i] = 1;
			return 0;
		}
	return -1;
}

static bool port_taken(const struct agent *a, uint16_t p)
{
	for (const struct atask *t = a->tasks; t; t = t->next)
		if (t->phase != P_DONE)
			for (size_t i = 0; i < t->job.nports; i++)
				if (t->job.ports[i].host_port == p)
					return true;
	return false;
}

static int alloc_ports(struct agent *a, struct atask *t, const struct svc_spec *sp, char *err)
{
	t->job.nports = 0;
	for (size_t i = 0; i < sp->ports.n && i < RUN_MAX_PORTS; i++) {
		int proto = sp->ports.v[i].protocol == PROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP;
		uint16_t hp = 0;
		for (int tries = 0; tries < 64; tries++) {
			if (net_pick_port((uint16_t)a->env.port_lo, (uint16_t)a->env.port_hi, proto, &hp, err))
				return E_BUSY;
			if (!port_taken(a, hp) && (t->port_fds[t->job.nports] = hold_port(hp, proto)))
				break;
			hp = 0;
		}
		if (!hp) {
			release_ports(t);
			return errf(err, E_BUSY, "no free host port in %llu-%llu", (unsigned long long)a->env.port_lo,
				    (unsigned long long)a->env.port_hi);
		}
		struct port_map *pm = &t->job.ports[t->job.nports++];
		pm->host_port = hp;
		pm->container_port = (uint16_t)sp->ports.v[i].target;
		pm->proto = proto;
	}
	return 0;
}

static void start_task(struct agent *a, struct atask *t)
{
	char err[ERR_LEN];
	struct mpr r;
	struct svc_spec sp;
	svc_spec_init(&sp);
	if (!t->job.spec || mpr_decode(&r, t->job.spec, t->job.spec_len)) {
		svc_spec_free(&sp);
		snprintf(t->final_state, sizeof t->final_state, "rejected");
		snprintf(t->final_err, sizeof t->final_err, "no spec for this task");
		finish(a, t);
		return;
	}
	svc_spec_free(&sp);
	int rc = svc_spec_decode(r.root, &sp, err);
	mpr_free(&r);
	if (!rc) {
		t->job.host_net = sp.network_mode == NET_HOST;
		t->job.grace_ms = (int)sp.stop_grace_ms;
		t->job.stop_signal = SIGTERM;
		if (sp.stop_signal && spec_signal(sp.stop_signal))
			t->job.stop_signal = spec_signal(sp.stop_signal);
		rc = alloc_ports(a, t, &sp, err);
		if (!rc && !t->job.host_net && alloc_ip(a, t->job.ip))
			rc = errf(err, E_BUSY, "no free address in this node's subnet");
	}
	svc_spec_free(&sp);
	if (rc) {
		snprintf(t->final_state, sizeof t->final_state, "rejected");
		snprintf(t->final_err, sizeof t->final_err, "%s", err);
		finish(a, t);
		return;
	}
	t->phase = P_PREPARING;
	report(a, t, "preparing", NULL, false);
	queue_step(a, t, S_PREPARE);
}

static void step_task(struct agent *a, struct atask *t)
{
	if (t->busy || t->phase == P_DONE)
		return;
	switch (t->phase) {
	case P_NEW:
		if (t->want_stop) {
			snprintf(t->final_state, sizeof t->final_state, "shutdown");
			finish(a, t);
		} else if (!a->net_ready) {
			/* the bridge and NAT table are made when the first task needs them */
			if (a->subnet && !a->net_busy) {
				a->net_busy = true;
				queue_step(a, NULL, S_NET);
				char p[700];
				layout_path(p, sizeof p, a->env.data_dir, LAYOUT_NET_TAG);
				FILE *f = fopen(p, "w");
				if (f) {
					fprintf(f, "%s %s\n", a->env.tag, a->env.subnet);
					fclose(f);
				}
			}
		} else if (t->start_after <= clock_wall(a->h->clock))
			start_task(a, t);
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
			queue_step(a, t, S_STOP);
		}
		break;
	case P_EXITED:
		t->phase = P_CLEANING;
		queue_step(a, t, S_CLEANUP);
		break;
	default: break;
	}
}

static void free_task(struct atask *t)
{
	free(t->job.spec);
	free(t->job.image);
	free(t->job.peers);
	free(t);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void reap_done(struct agent *a)
{
	for (struct atask **pp = &a->tasks; *pp;) {
		struct atask *t = *pp;
		bool checking = false;
		for (int i = 0; i < t->nchecks; i++)
			checking |= t->checks[i].busy;
		if (t->phase == P_DONE && t->gone && !t->busy && !checking) {
			bool followed = false;
			for (struct follower *f = a->followers; f; f = f->next)
				if (f->task_id == t->id)
					followed = true;
			if (followed) {
				pp = &t->next;
				continue;
			}
			*pp = t->next;
			nftw(t->job.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
			free_checks(t);
			free_task(t);
		} else
			pp = &t->next;
	}
}

static struct atask *find(struct agent *a, uint64_t id)
{
	for (struct atask *t = a->tasks; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

static struct atask *new_task(struct agent *a, uint64_t id)
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

static void copy_raw(const msgpack_object *o, uint8_t **out, size_t *len)
{
	free(*out);
	*out = NULL;
	*len = 0;
	if (!o || o->type == MSGPACK_OBJECT_NIL)
		return;
	struct mpw w;
	mpw_init(&w);
	msgpack_pack_object(&w.pk, *o);
	*out = (uint8_t *)mpw_take(&w, len);
	mpw_free(&w);
}

void agent_assignments(struct agent *a, const msgpack_object *doc)
{
	if (!a || host_stopping(a->h))
		return;
	uint64_t subnet = 0;
	mp_get_u64(doc, "subnet", &subnet);
	if (subnet && !a->subnet && subnet <= IPAM_SUBNET_MAX) {
		/* Names and addresses carry a byte of the cluster id and the node's subnet index,
		 * so several nodes — even of different clusters — can share one machine. */
		unsigned cb = ipam_cluster_byte(&a->h->ident->tok);
		a->subnet = subnet;
		/* kept in net-tag from the first setup on; a new node avoids a bridge name (and
		 * so a subnet) that another node on this machine already uses */
		char p[700], tag[16] = "", sn[32] = "";
		layout_path(p, sizeof p, a->env.data_dir, LAYOUT_NET_TAG);
		FILE *f = fopen(p, "r");
		if (f) {
			if (fscanf(f, "%15s %31s", tag, sn) != 2)
				tag[0] = sn[0] = 0;
			fclose(f);
		}
		unsigned oct = 0;
		if (tag[0] && sscanf(sn, "10.%u.", &oct) == 1) {
			snprintf(a->env.tag, sizeof a->env.tag, "%s", tag);
			snprintf(a->env.subnet, sizeof a->env.subnet, "%s", sn);
		} else {
			for (unsigned k = 0; k < 128; k++) {
				char br[64];
				struct nat_names nm;
				ipam_node_net(cb + k, subnet, a->env.tag, a->env.subnet);
				nat_names(a->env.tag, NULL, &nm);
				snprintf(br, sizeof br, "/sys/class/net/%s", nm.bridge);
				if (access(br, F_OK) != 0)
					break;
			}
		}
		uint16_t lo, hi;
		ipam_port_range(cb, subnet, &lo, &hi);
		a->env.port_lo = lo;
		a->env.port_hi = hi;
		for (struct atask *t = a->tasks; t; t = t->next)
			snprintf(t->job.cid, sizeof t->job.cid, "o%s-%llu", a->env.tag, (unsigned long long)t->id);
	}
	/* peers, for blob fetches */
	const msgpack_object *peers = mp_get(doc, "peers");
	free(a->peers);
	a->peers = NULL;
	a->npeers = 0;
	if (peers && peers->type == MSGPACK_OBJECT_ARRAY) {
		a->peers = xcalloc(peers->via.array.size + 1, sizeof *a->peers);
		for (uint32_t i = 0; i < peers->via.array.size; i++) {
			struct run_peer *p = &a->peers[a->npeers];
			if (mp_get_u64(&peers->via.array.ptr[i], "id", &p->id) ||
			    mp_get_strbuf(&peers->via.array.ptr[i], "addr", p->addr, sizeof p->addr) || p->id == a->h->ident->id)
				continue;
			a->npeers++;
		}
	}
	const msgpack_object *tasks = mp_get(doc, "tasks");
	for (struct atask *t = a->tasks; t; t = t->next)
		t->gone = true;
	for (uint32_t i = 0; tasks && tasks->type == MSGPACK_OBJECT_ARRAY && i < tasks->via.array.size; i++) {
		const msgpack_object *o = &tasks->via.array.ptr[i];
		uint64_t id = 0;
		char desired[16] = "", state[16] = "";
		if (mp_get_u64(o, "id", &id))
			continue;
		mp_get_strbuf(o, "desired", desired, sizeof desired);
		mp_get_strbuf(o, "state", state, sizeof state);
		struct atask *t = find(a, id);
		if (!t) {
			if (task_state_rank(state) == 5 || strcmp(desired, "running"))
				continue; /* history, or stopped before we ever ran it */
			t = new_task(a, id);
			copy_raw(mp_get(o, "spec"), &t->job.spec, &t->job.spec_len);
			copy_raw(mp_get(o, "image"), &t->job.image, &t->job.image_len);
			mp_get_strbuf(o, "service", t->job.service, sizeof t->job.service);
			mp_get_strbuf(o, "project", t->job.project, sizeof t->job.project);
			mp_get_u64(o, "slot", &t->job.slot);
			mp_get_u64(o, "start_after", &t->start_after);
			snprintf(t->reported, sizeof t->reported, "%s", state);
		}
		t->gone = false;
		mp_get_u64(o, "image_node", &t->job.image_node);
		if (strcmp(desired, "running"))
			t->want_stop = true;
		/* the latest peer list for a prepare that has not started yet */
		if (t->phase == P_NEW) {
			free(t->job.peers);
			t->job.peers = xcalloc(a->npeers + 1, sizeof *t->job.peers);
			memcpy(t->job.peers, a->peers, a->npeers * sizeof *a->peers);
			t->job.npeers = a->npeers;
		}
	}
	for (struct atask *t = a->tasks; t; t = t->next)
		if (t->gone)
			t->want_stop = true;
	a->have_doc = true;
	for (struct atask *t = a->tasks; t; t = t->next)
		step_task(a, t);
}

/* ---- adoption after a restart --------------------------------------------------------------- */

static int adopt_one(const struct rt_info *ci, void *arg)
{
	struct agent *a = arg;
	const char *dash = strchr(ci->id, '-');
	if (ci->id[0] != 'o' || !dash)
		return 0;
	uint64_t id = strtoull(dash + 1, NULL, 10);
	if (!id || find(a, id))
		return 0;
	struct atask *t = new_task(a, id);
	snprintf(t->job.cid, sizeof t->job.cid, "%s", ci->id);
	snprintf(a->env.tag, sizeof a->env.tag, "%.*s", (int)(dash - ci->id - 1), ci->id + 1);
	run_load_state(&t->job);
	for (size_t i = 0; i < t->job.nports && !t->job.host_net; i++)
		t->port_fds[i] = hold_port(t->job.ports[i].host_port, t->job.ports[i].proto);
	t->adopted = true;
	t->pid = ci->pid;
	t->phase = ci->status == RT_RUNNING && ci->pid ? P_RUNNING : P_EXITED;
	if (t->job.ip[0] && ipam_host_of(t->job.ip))
		a->ip_used[ipam_host_of(t->job.ip)] = 1;
	snprintf(t->reported, sizeof t->reported, "running");
	log_info(a->h->ident->name, "found container %s of task %llu again (%s, pid %d)", ci->id, (unsigned long long)id, rt_status_name(ci->status), ci->pid);
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

struct agent *agent_start(const struct host *h, char *err)
{
	struct agent *a = xcalloc(1, sizeof *a);
	a->h = h;
	snprintf(a->env.data_dir, sizeof a->env.data_dir, "%s", h->data_dir);
	layout_path(a->env.state_dir, sizeof a->env.state_dir, h->data_dir, LAYOUT_RUNTIME_STATE);
	snprintf(a->env.node_hex, sizeof a->env.node_hex, "%016llx", (unsigned long long)h->ident->id);
	/* the runtime chosen when the node first ran tasks stays (its containers live in that
	 * runtime's state), unless ORCH_RUNTIME / --runtime says otherwise */
	char *runtime = a->runtime;
	const size_t runtime_size = sizeof a->runtime;
	const char *env_rt = getenv("ORCH_RUNTIME");
	char rtp[600];
	layout_path(rtp, sizeof rtp, h->data_dir, LAYOUT_RUNTIME_NAME);
	FILE *rf = NULL;
	if (env_rt && *env_rt)
		snprintf(runtime, runtime_size, "%s", env_rt);
	else if ((rf = fopen(rtp, "r")) && fscanf(rf, "%15s", runtime) == 1 && (!strcmp(runtime, "runc") || !strcmp(runtime, "crun")))
		;
	else
		snprintf(runtime, runtime_size, "runc");
	if (rf)
		fclose(rf);
	if ((rf = fopen(rtp, "w"))) {
		fprintf(rf, "%s\n", runtime);
		fclose(rf);
	}
	a->env.runtime = runtime;
	a->env.tok = &h->ident->tok;
	char tasks[700];
	layout_path(tasks, sizeof tasks, h->data_dir, LAYOUT_TASKS);
	mkdir(tasks, 0700);
	mkdir(a->env.state_dir, 0700);
	uv_signal_init(h->loop, &a->sigchld);
	a->sigchld.data = a;
	uv_signal_start(&a->sigchld, sigchld_cb, SIGCHLD);
	struct rt rt = {.runtime = a->env.runtime, .state_dir = a->env.state_dir};
	char e2[ERR_LEN];
	if (rt_list(&rt, adopt_one, a, e2))
		log_warn(a->h->ident->name, "listing containers: %s", e2);
	/* adopted containers are not our children: poll them in the tick */
	(void)err;
	return a;
}

void agent_stop(struct agent *a)
{
	if (!a)
		return;
	/* Containers outlive the node process (found again on restart). */
	uv_signal_stop(&a->sigchld);
	uv_close((uv_handle_t *)&a->sigchld, NULL);
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	while (a->tasks) {
		struct atask *t = a->tasks;
		a->tasks = t->next;
		free_checks(t);
		free_task(t);
	}
	while (a->followers) {
		struct follower *f = a->followers;
		a->followers = f->next;
		free(f);
	}
	free(a->peers);
	free(a);
}

static void poll_adopted(struct agent *a)
{
	for (struct atask *t = a->tasks; t; t = t->next)
		if (t->adopted && t->phase == P_RUNNING && t->pid && kill(t->pid, 0) && errno == ESRCH) {
			t->phase = P_EXITED;
		}
}

struct rotate_job {
	uv_work_t req;
	char path[700];
};

/* copy then truncate: the container keeps its O_APPEND descriptor (worker thread) */
static void rotate_work(uv_work_t *req)
{
	struct rotate_job *j = req->data;
	char p1[720];
	snprintf(p1, sizeof p1, "%s.1", j->path);
	int in = open(j->path, O_RDONLY | O_CLOEXEC), out = open(p1, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char buf[65536];
	ssize_t n;
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (truncate(j->path, 0))
		log_warn(NULL, "truncate %s: %s", j->path, strerror(errno));
}

static void rotate_done(uv_work_t *req, int status)
{
	(void)status;
	free(req->data);
}

static void rotate_logs(struct agent *a)
{
	for (struct atask *t = a->tasks; t; t = t->next) {
		if (t->phase != P_RUNNING)
			continue;
		char p[700];
		layout_task_path(p, sizeof p, t->job.dir, LAYOUT_TASK_LOG);
		struct stat st;
		if (stat(p, &st) || st.st_size < 10 * 1024 * 1024)
			continue;
		struct rotate_job *j = xcalloc(1, sizeof *j);
		j->req.data = j;
		snprintf(j->path, sizeof j->path, "%s", p);
		uv_queue_work(a->h->loop, &j->req, rotate_work, rotate_done);
	}
}

static void followers_tick(struct agent *a);

void agent_tick(struct agent *a)
{
	if (!a || host_stopping(a->h))
		return;
	claim_exits(a); /* in case a SIGCHLD was coalesced */
	poll_adopted(a);
	for (struct atask *t = a->tasks; t; t = t->next)
		step_task(a, t);
	if (++a->ticks % 25 == 0)
		rotate_logs(a);
	run_checks(a);
	for (struct atask *t = a->tasks; t; t = t->next) {
		if (t->report_lost)
			report(a, t, t->reported, t->reported_err[0] ? t->reported_err : NULL, t->reported_exit);
		if (t->health_lost)
			report_health(a, t);
	}
	followers_tick(a);
	reap_done(a);
}

/* ---- serving logs and blobs ---------------------------------------------------------------- */

#define LOG_CHUNK 65536

static void send_log(struct conn *c, uint64_t id, const char *data, size_t n, bool more)
{
	struct mpw w;
	mpw_init(&w);
	rpc_reply_begin(&w, id, 0, 2);
	mpw_str(&w, "data");
	mpw_strn(&w, data, n);
	mpw_kbool(&w, "more", more);
	conn_send_mpw(c, &w);
	mpw_free(&w);
}

/* Sends from off to the end of the file; returns the new offset. */
static off_t pump(struct conn *c, uint64_t id, const char *path, off_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return off;
	struct stat st;
	fstat(fd, &st);
	if (st.st_size < off)
		off = 0; /* rotated */
	char *buf = xmalloc(LOG_CHUNK);
	ssize_t n;
	while ((n = pread(fd, buf, LOG_CHUNK, off)) > 0) {
		send_log(c, id, buf, (size_t)n, true);
		off += n;
	}
	free(buf);
	close(fd);
	return off;
}

static void op_logs(struct agent *a, struct conn *c, uint64_t id, const msgpack_object *req)
{
	uint64_t tid = 0;
	int64_t tail = -1;
	bool follow = false;
	mp_get_u64(req, "task_id", &tid);
	mp_get_i64(req, "tail", &tail);
	mp_get_bool(req, "follow", &follow);
	char path[700];
	layout_task_file(path, sizeof path, a->h->data_dir, tid, LAYOUT_TASK_LOG);
	struct stat st;
	if (!tid || stat(path, &st)) {
		rpc_reply_err(c, id, E_NOTFOUND, "no log for this task on this node");
		return;
	}
	off_t off = 0;
	if (tail >= 0) { /* find the start of the last `tail` lines */
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		off_t pos = st.st_size;
		int64_t lines = 0;
		char buf[4096];
		while (fd >= 0 && pos > 0 && lines <= tail) {
			off_t from = pos > (off_t)sizeof buf ? pos - (off_t)sizeof buf : 0;
			ssize_t n = pread(fd, buf, (size_t)(pos - from), from);
			if (n <= 0)
				break;
			for (ssize_t i = n - 1; i >= 0; i--) {
				if (buf[i] == '\n' && from + i + 1 != st.st_size && ++lines > tail) {
					off = from + i + 1;
					break;
				}
			}
			if (lines > tail)
				break;
			pos = from;
		}
		if (fd >= 0)
			close(fd);
	}
	off = pump(c, id, path, off);
	struct atask *t = find(a, tid);
	if (follow && t && t->phase != P_DONE) {
		struct follower *f = xcalloc(1, sizeof *f);
		f->conn = c;
		f->req_id = id;
		f->task_id = tid;
		f->off = off;
		f->next = a->followers;
		a->followers = f;
		return;
	}
	send_log(c, id, "", 0, false);
}

static void followers_tick(struct agent *a)
{
	for (struct follower **pp = &a->followers; *pp;) {
		struct follower *f = *pp;
		char path[700];
		layout_task_file(path, sizeof path, a->env.data_dir, f->task_id, LAYOUT_TASK_LOG);
		f->off = pump(f->conn, f->req_id, path, f->off);
		struct atask *t = find(a, f->task_id);
		if (!t || t->phase == P_DONE) {
			send_log(f->conn, f->req_id, "", 0, false);
			*pp = f->next;
			free(f);
		} else
			pp = &f->next;
	}
}

bool agent_gateway(const struct agent *a, char out[16])
{
	if (!a || !a->net_ready || !a->env.subnet[0])
		return false;
	return ipam_host(a->env.subnet, 1, out);
}

void agent_conn_gone(struct agent *a, struct conn *c)
{
	if (!a)
		return;
	for (struct blob_job *j = a->blob_jobs; j; j = j->next)
		if (j->conn == c)
			j->conn = NULL;
	for (struct follower **pp = &a->followers; *pp;) {
		if ((*pp)->conn == c) {
			struct follower *f = *pp;
			*pp = f->next;
			free(f);
		} else
			pp = &(*pp)->next;
	}
}


/* opening and reading the chunk: a worker thread, not the loop */
static void blob_work(uv_work_t *req)
{
	struct blob_job *j = req->data;
	struct blobstore bs;
	if ((j->rc = blob_init(&bs, j->data_dir, j->err)))
		return;
	int fd = blob_open(&bs, j->digest, j->err);
	blob_fini(&bs);
	if (fd < 0) {
		j->rc = E_NOTFOUND;
		return;
	}
	struct stat st;
	fstat(fd, &st);
	j->size = (uint64_t)st.st_size;
	j->buf = xmalloc(j->len ? j->len : 1);
	j->n = j->off < j->size ? pread(fd, j->buf, j->len, (off_t)j->off) : 0;
	close(fd);
}

static void blob_done(uv_work_t *req, int status)
{
	struct blob_job *j = req->data;
	(void)status;
	struct conn *c = j->conn;
	for (struct blob_job **pp = &j->a->blob_jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (c && j->rc == E_NOTFOUND)
		rpc_reply_err(c, j->req_id, E_NOTFOUND, "blob not on this node");
	else if (c && j->rc)
		rpc_reply_err(c, j->req_id, E_IO, j->err);
	else if (c) {
		struct mpw w;
		mpw_init(&w);
		rpc_reply_begin(&w, j->req_id, 0, 2);
		mpw_ku64(&w, "size", j->size);
		mpw_str(&w, "data");
		mpw_bin(&w, j->buf, j->n > 0 ? (size_t)j->n : 0);
		conn_send_mpw(c, &w);
		mpw_free(&w);
	}
	free(j->buf);
	free(j);
}

static void op_blob_get(struct agent *a, struct conn *c, uint64_t id, const msgpack_object *req)
{
	struct blob_job *j = xcalloc(1, sizeof *j);
	j->len = 1 << 20;
	if (mp_get_strbuf(req, "digest", j->digest, sizeof j->digest) || !digest_valid(j->digest)) {
		free(j);
		rpc_reply_err(c, id, E_INVAL, "blob.get: a sha256 digest is required");
		return;
	}
	mp_get_u64(req, "offset", &j->off);
	mp_get_u64(req, "len", &j->len);
	if (j->len > (4u << 20))
		j->len = 4u << 20;
	snprintf(j->data_dir, sizeof j->data_dir, "%s", a->h->data_dir);
	j->a = a;
	j->conn = c; /* the conn may go away meanwhile: agent_conn_gone */
	j->req_id = id;
	j->next = a->blob_jobs;
	a->blob_jobs = j;
	j->req.data = j;
	uv_queue_work(a->h->loop, &j->req, blob_work, blob_done);
}

bool agent_rpc(struct agent *a, struct conn *c, const msgpack_object *op, uint64_t id, const msgpack_object *req,
	       bool local)
{
	(void)local;
	if (!a)
		return false;
	if (mp_str_eq(op, "logs"))
		op_logs(a, c, id, req);
	else if (mp_str_eq(op, "blob.get"))
		op_blob_get(a, c, id, req);
	else
		return false;
	return true;
}
