#include "agent/adopt.h"
#include "agent/agent_state.h"
#include "agent/tasks.h"
#include "agent/ports.h"
#include "net/ipam.h"
#include "util/layout.h"
#include "util/log.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int adopt_one(const struct rt_info *ci, void *arg)
{
	struct agent *a = arg;
	const char *dash = strchr(ci->id, '-');
	if (ci->id[0] != 'o' || !dash)
		return 0;
	uint64_t id = strtoull(dash + 1, NULL, 10);
	if (!id || tasks_find(a, id))
		return 0;
	struct atask *t = tasks_new(a, id);
	snprintf(t->job.cid, sizeof t->job.cid, "%s", ci->id);
	snprintf(a->env.tag, sizeof a->env.tag, "%.*s", (int)(dash - ci->id - 1), ci->id + 1);
	run_load_state(&t->job);
	for (size_t i = 0; i < t->job.nports && !t->job.host_net; i++)
		t->port_fds[i] = ports_hold(t->job.ports[i].host_port, t->job.ports[i].proto);
	t->adopted = true;
	t->pid = ci->pid;
	t->phase = ci->status == RT_RUNNING && ci->pid ? P_RUNNING : P_EXITED;
	if (t->phase == P_RUNNING)
		ports_relay(a, t);
	if (t->job.ip[0] && ipam_host_of(t->job.ip))
		a->ip_used[ipam_host_of(t->job.ip)] = 1;
	t->reported = TS_RUNNING;
	log_info(a->h->ident->name, a->h->clock, "found container %s of task %llu again (%s, pid %d)", ci->id, (unsigned long long)id, rt_status_name(ci->status), ci->pid);
	return 0;
}

void adopt_poll(struct agent *a)
{
	for (struct atask *t = a->tasks; t; t = t->next)
		if (t->adopted && t->phase == P_RUNNING && t->pid && kill(t->pid, 0) && errno == ESRCH) {
			t->phase = P_EXITED;
		}
}

void adopt_runtime(struct agent *a)
{
	/* the runtime chosen when the node first ran tasks stays (its containers live in that
	 * runtime's state), unless ORCH_RUNTIME / --runtime says otherwise */
	char *runtime = a->runtime;
	const size_t runtime_size = sizeof a->runtime;
	const char *env_rt = getenv("ORCH_RUNTIME");
	char rtp[600];
	layout_path(rtp, sizeof rtp, a->h->data_dir, LAYOUT_RUNTIME_NAME);
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
}

void adopt_all(struct agent *a)
{
	struct rt rt = {.runtime = a->env.runtime, .state_dir = a->env.state_dir};
	char err[ERR_LEN];
	if (rt_list(&rt, adopt_one, a, err))
		log_warn(a->h->ident->name, a->h->clock, "listing containers: %s", err);
	/* adopted containers are not our children: poll them in the tick */
}
