/* What the agent's files share: the agent itself, its tasks, followers of task logs and
 * blob reads in flight, and the worker steps. Private to src/agent (agent/agent.h is the
 * interface the node uses). */
#ifndef ORCH_AGENT_STATE_H
#define ORCH_AGENT_STATE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include "agent/agent.h"
#include "agent/backend.h"
#include "agent/health.h"
#include "agent/task_run.h"
#include "node/host.h"
#include "runtime/runc.h"
#include "state/lifecycle.h"
#include "util/err.h"

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
	struct work *preparing; /* its S_PREPARE in flight (its pull's progress), or NULL */
	uint64_t progress_at;   /* when that progress was last reported */
	bool want_stop;         /* desired shutdown or unassigned */
	bool gone;              /* no longer in the assignment: forget once done */
	bool adopted;           /* found again after an agent restart: not our child */
	int pid, status;
	bool exited;
	enum task_state reported; /* last state reported */
	enum task_state stored; /* its state in the last assignment document: reports ask only
				 * for moves its table allows from there (state/lifecycle.h) */
	int port_fds[RUN_MAX_PORTS]; /* host ports held bound while the task has them; 0: none */
	struct relay *relays[RUN_MAX_PORTS]; /* or a TCP one listening for loopback clients */
	char reported_err[ERR_LEN];
	bool reported_exit;
	bool report_lost;       /* the last state report was not applied: send it again */
	bool health_lost;       /* the same for the last health report */
	bool report_due, health_due; /* to go in the next batch (agent/report.h) */
	enum task_state final_state;
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
	const struct backend *be; /* who carries the steps out (agent/backend.h) */
	void *be_data;          /* the backend's own */
	unsigned run_delay_ms;  /* backend_hollow: a start takes this long */
	char runtime[16];       /* the OCI runtime its containers live in, or "hollow" */
	unsigned jobs;          /* worker jobs in flight (steps, blob reads) */
	bool stopped;
	void (*idle_cb)(void *data); /* agent_stop's: once nothing of the agent is left */
	void *idle_data;
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
	struct exec_sess *execs;    /* orch exec sessions (agent/exec.h) */
	uv_timer_t report_timer;    /* the next batch of reports (agent/report.h) */
	uint8_t ip_used[256];
	char *iso_applied;          /* the address pairs isolated on the bridge (agent/isolation.h) */
	bool iso_busy;
	uint64_t iso_retry_at;      /* after a failed nft run */
};

enum step { S_NET, S_PREPARE, S_START, S_STOP, S_CLEANUP, S_CHECK };

/* A worker job of the agent ended (agent_stop waits for them all). */
void agent_job_done(struct agent *a);

struct work {
	uv_work_t req;
	struct agent *a;
	struct atask *t;
	enum step step;
	struct run_job job;
	struct run_progress prog; /* S_PREPARE: the pull's (job.progress points here) */
	char err[ERR_LEN];
	int rc;
	int check;
	struct check_req creq;
	struct rt rt;
};

#endif
