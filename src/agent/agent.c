/* The agent's entry points (agent/agent.h): start and stop, the tick that moves every task
 * on, the assignment document turned into the task table, and its ops (logs.c, blob_get.c). */
#include "agent/agent.h"
#include "agent/exec.h"
#include "node/nodesec.h"
#include "agent/userns.h"
#include "agent/agent_state.h"
#include "agent/report.h"
#include "agent/tasks.h"
#include "agent/checks.h"
#include "agent/adopt.h"
#include "agent/logs.h"
#include "agent/blob_get.h"
#include "agent/isolation.h"
#include "agent/nettag.h"
#include "metrics/node_stats.h"
#include "net/conn.h"
#include "net/ipam.h"
#include "runtime/nat.h"
#include "spec/spec.h"
#include "image/image_load.h"
#include "util/layout.h"
#include "util/mem.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* One task of an assignment document: taken on when new and meant to run, its desired
 * state and image holder followed when known. */
static void assign_one(struct agent *a, const msgpack_object *o)
{
	uint64_t id = 0;
	if (mp_get_u64(o, "id", &id))
		return;
	const msgpack_object *so = mp_get(o, "state"), *dso = mp_get(o, "desired");
	int state = mp_is_str(so) ? lifecycle_parse(&lifecycle_task, so->via.str.ptr, so->via.str.size) : -1;
	bool run = mp_is_str(dso) && lifecycle_parse(&lifecycle_desired, dso->via.str.ptr, dso->via.str.size) == TD_RUNNING;
	struct atask *t = tasks_find(a, id);
	if (!t) {
		/* history, or in a state this binary does not know (a newer leader's) */
		if (state <= TS_NONE || task_state_ended((enum task_state)state))
			return;
		/* Stopped before this agent ever saw it run (a service removed right after its
		 * tasks were placed, before the document reached us): the task is ours and only
		 * we may end it, so it is taken on to be ended as shutdown — ignored, it stayed
		 * "assigned" forever. Past assigned, a run before a restart may have left a task
		 * directory behind: cleaned up first (containers were adopted at start). */
		t = tasks_new(a, id);
		copy_raw(mp_get(o, "spec"), &t->job.spec, &t->job.spec_len);
		copy_raw(mp_get(o, "image"), &t->job.image, &t->job.image_len);
		copy_raw(mp_get(o, "files"), &t->job.files, &t->job.files_len);
		regopts_given(&t->job.login, mp_get(o, "registry")); /* a worker's (node/feed.h) */
		mp_get_strbuf(o, "service", t->job.service, sizeof t->job.service);
		mp_get_strbuf(o, "project", t->job.project, sizeof t->job.project);
		mp_get_u64(o, "slot", &t->job.slot);
		t->reported = (enum task_state)state;
		if (!run && state > TS_ASSIGNED) {
			t->want_stop = true;
			t->final_state = TS_SHUTDOWN;
			t->phase = P_CLEANING;
			tasks_queue_step(a, t, S_CLEANUP);
		}
	}
	/* as of when the leader last sent this task: documents carry changes in what the agent
	 * acts on, not every move of the state (node/watch.c), so it may be older */
	if (state > TS_NONE)
		t->stored = (enum task_state)state;
	t->gone = false;
	mp_get_u64(o, "image_node", &t->job.image_node);
	if (!run)
		t->want_stop = true;
	/* the latest peer list for a prepare that has not started yet (blob fetches; a
	 * synthetic backend fetches nothing) */
	if (t->phase == P_NEW && !a->be->synthetic) {
		free(t->job.peers);
		t->job.peers = xcalloc(a->npeers + 1, sizeof *t->job.peers);
		memcpy(t->job.peers, a->peers, a->npeers * sizeof *a->peers);
		t->job.npeers = a->npeers;
	}
}

void agent_assignments(struct agent *a, const msgpack_object *doc)
{
	if (!a || host_stopping(a->h))
		return;
	uint64_t subnet = 0;
	mp_get_u64(doc, "subnet", &subnet);
	if (subnet && !a->subnet && subnet <= IPAM_SUBNET_MAX && a->be->synthetic)
		a->subnet = subnet; /* no network: nothing to name or address */
	else if (subnet && !a->subnet && subnet <= IPAM_SUBNET_MAX) {
		/* Names and addresses carry a byte of the cluster id and the node's subnet index,
		 * so several nodes — even of different clusters — can share one machine. */
		unsigned cb = ipam_cluster_byte(a->h->ident->cluster_id);
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
				if (access(br, F_OK) != 0 && nettag_claim(a->env.tag, a->env.data_dir))
					break;
			}
			f = fopen(p, "w");
			if (f) {
				fprintf(f, "%s %s\n", a->env.tag, a->env.subnet);
				fclose(f);
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
	const msgpack_object *tasks = mp_get(doc, "tasks"), *changed = mp_get(doc, "changed"), *removed = mp_get(doc, "removed");
	if (tasks) { /* the whole set: what it does not list is gone */
		for (struct atask *t = a->tasks; t; t = t->next)
			t->gone = true;
		for (uint32_t i = 0; tasks->type == MSGPACK_OBJECT_ARRAY && i < tasks->via.array.size; i++)
			assign_one(a, &tasks->via.array.ptr[i]);
	} else { /* changes since the last document (node/watch.c) */
		for (uint32_t i = 0; changed && changed->type == MSGPACK_OBJECT_ARRAY && i < changed->via.array.size; i++)
			assign_one(a, &changed->via.array.ptr[i]);
		for (uint32_t i = 0; removed && removed->type == MSGPACK_OBJECT_ARRAY && i < removed->via.array.size; i++) {
			uint64_t id;
			struct atask *t = mp_as_u64(&removed->via.array.ptr[i], &id) ? NULL : tasks_find(a, id);
			if (t)
				t->gone = true;
		}
	}
	for (struct atask *t = a->tasks; t; t = t->next)
		if (t->gone)
			t->want_stop = true;
	a->have_doc = true;
	for (struct atask *t = a->tasks; t; t = t->next)
		tasks_step(a, t);
}

/* ---- lifecycle ------------------------------------------------------------------------------------ */

struct agent *agent_start(const struct host *h, const struct agent_config *cfg, char *err)
{
	struct agent *a = xcalloc(1, sizeof *a);
	a->h = h;
	a->be = cfg && cfg->backend ? cfg->backend : &backend_oci;
	a->run_delay_ms = cfg ? cfg->run_delay_ms : 0;
	snprintf(a->env.data_dir, sizeof a->env.data_dir, "%s", h->data_dir);
	layout_path(a->env.state_dir, sizeof a->env.state_dir, h->data_dir, LAYOUT_RUNTIME_STATE);
	snprintf(a->env.node_hex, sizeof a->env.node_hex, "%016llx", (unsigned long long)h->ident->id);
	a->env.tls = &h->ident->tls;
	a->env.reg = h->registry;
	struct nodesec ns;
	if (nodesec_load(h->data_dir, &ns, err)) {
		free(a);
		return NULL;
	}
	if (ns.userns_count && userns_reachable(h->data_dir, err)) {
		free(a);
		return NULL;
	}
	a->env.allow_privileged = ns.allow_privileged;
	a->env.userns_base = ns.userns_base;
	a->env.userns_count = ns.userns_count;
	if (a->be->start(a, err)) {
		a->be->free(a);
		free(a);
		return NULL;
	}
	report_init(a);
	return a;
}

static void check_idle(struct agent *a)
{
	if (a->stopped && a->idle_cb && !a->jobs) {
		void (*cb)(void *) = a->idle_cb;
		a->idle_cb = NULL;
		cb(a->idle_data);
	}
}

void agent_job_done(struct agent *a)
{
	a->jobs--;
	check_idle(a);
}

void agent_stop(struct agent *a, void (*idle_cb)(void *data), void *data)
{
	if (!a) {
		if (idle_cb)
			idle_cb(data);
		return;
	}
	/* Containers outlive the node process (found again on restart). */
	a->stopped = true;
	a->idle_cb = idle_cb;
	a->idle_data = data;
	report_stop(a);
	exec_stop_all(a);
	a->be->stop(a);
	check_idle(a);
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	while (a->tasks) {
		struct atask *t = a->tasks;
		a->tasks = t->next;
		checks_free(t);
		tasks_free(t);
	}
	logs_free(a);
	isolation_free(a);
	a->be->free(a);
	free(a->peers);
	free(a);
}

const char *agent_runtime(const struct agent *a)
{
	return a ? a->runtime : "";
}

bool agent_synthetic(const struct agent *a)
{
	return a && a->be->synthetic;
}

bool agent_assigned(const struct agent *a)
{
	return a && a->have_doc;
}

void agent_sample(void *agent, uint64_t now, struct node_stats *ns)
{
	struct agent *a = agent;
	size_t cap = 0;
	if (!a->be->figures)
		return;
	for (const struct atask *t = a->tasks; t; t = t->next) {
		if (t->phase != P_RUNNING)
			continue;
		if (ns->ntasks == cap)
			ns->tasks = xrealloc(ns->tasks, (cap = cap ? cap * 2 : 16) * sizeof *ns->tasks);
		struct task_stat *ts = &ns->tasks[ns->ntasks++];
		memset(ts, 0, sizeof *ts);
		ts->task_id = t->id;
		snprintf(ts->service, sizeof ts->service, "%s", t->job.service);
		a->be->figures(a, t, now, &ts->cpu_ns, &ts->mem);
	}
}

void agent_tick(struct agent *a)
{
	if (!a || host_stopping(a->h))
		return;
	if (!a->be->synthetic) {
		tasks_claim_exits(a); /* in case a SIGCHLD was coalesced */
		adopt_poll(a);
	}
	for (struct atask *t = a->tasks; t; t = t->next) {
		tasks_step(a, t);
		if (t->preparing)
			tasks_pull_progress(a, t);
	}
	if (++a->ticks % 25 == 0 && !a->be->synthetic)
		logs_rotate(a);
	checks_run(a);
	isolation_sync(a);
	report_resend_lost(a);
	logs_followers_tick(a);
	tasks_reap_done(a);
}

bool agent_gateway(const struct agent *a, char out[16])
{
	if (!a || !a->net_ready || !a->env.subnet[0])
		return false;
	return ipam_host(a->env.subnet, 1, out);
}

uint64_t agent_task_at(const struct agent *a, const char *ip)
{
	for (const struct atask *t = a ? a->tasks : NULL; t && ip && ip[0]; t = t->next)
		if (!strcmp(t->job.ip, ip))
			return t->id;
	return 0;
}

void agent_conn_gone(struct agent *a, struct conn *c)
{
	if (!a)
		return;
	blob_get_conn_gone(a, c);
	logs_conn_gone(a, c);
	exec_conn_gone(a, c);
}

void agent_exec(struct agent *a, struct conn *c, const struct req_exec_task *q)
{
	exec_task(a, c, q);
}

bool agent_exec_input(struct agent *a, struct conn *c, const struct req_exec_input *q)
{
	return a && exec_input(a, c, q);
}

void agent_logs(struct agent *a, struct conn *c, const struct req_logs *q)
{
	logs_op(a, c, q);
}

void agent_blob_get(struct agent *a, struct conn *c, const struct req_blob_get *q)
{
	blob_get_op(a, c, q);
}

void agent_used_blobs(const struct agent *a, void (*add)(void *ctx, const char *digest), void *ctx)
{
	for (const struct atask *t = a ? a->tasks : NULL; t; t = t->next) {
		struct mpr r;
		struct image_info im;
		if (t->phase == P_DONE || !t->job.image || mpr_decode(&r, t->job.image, t->job.image_len))
			continue;
		if (!image_info_decode(r.root, &im, NULL)) {
			add(ctx, im.digest);
			if (im.config_digest)
				add(ctx, im.config_digest);
			for (size_t i = 0; i < im.nlayers; i++)
				add(ctx, im.layers[i]);
			image_info_free(&im);
		}
		mpr_free(&r);
	}
}
