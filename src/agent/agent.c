/* The agent's entry points (agent/agent.h): start and stop, the tick that moves every task
 * on, the assignment document turned into the task table, and its ops (logs.c, blob_get.c). */
#include "agent/agent.h"
#include "agent/agent_state.h"
#include "agent/report.h"
#include "agent/tasks.h"
#include "agent/checks.h"
#include "agent/adopt.h"
#include "agent/logs.h"
#include "agent/blob_get.h"
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

static void sigchld_cb(uv_signal_t *h, int sig)
{
	(void)sig;
	tasks_claim_exits(h->data);
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
		if (mp_get_u64(o, "id", &id))
			continue;
		const msgpack_object *so = mp_get(o, "state"), *dso = mp_get(o, "desired");
		int state = mp_is_str(so) ? lifecycle_parse(&lifecycle_task, so->via.str.ptr, so->via.str.size) : -1;
		bool run = mp_is_str(dso) && lifecycle_parse(&lifecycle_desired, dso->via.str.ptr, dso->via.str.size) == TD_RUNNING;
		struct atask *t = tasks_find(a, id);
		if (!t) {
			/* history, stopped before we ever ran it, or in a state this binary does not
			 * know (a newer leader's) */
			if (state <= TS_NONE || task_state_ended((enum task_state)state) || !run)
				continue;
			t = tasks_new(a, id);
			copy_raw(mp_get(o, "spec"), &t->job.spec, &t->job.spec_len);
			copy_raw(mp_get(o, "image"), &t->job.image, &t->job.image_len);
			mp_get_strbuf(o, "service", t->job.service, sizeof t->job.service);
			mp_get_strbuf(o, "project", t->job.project, sizeof t->job.project);
			mp_get_u64(o, "slot", &t->job.slot);
			t->reported = (enum task_state)state;
		}
		if (state > TS_NONE)
			t->stored = (enum task_state)state;
		t->gone = false;
		mp_get_u64(o, "image_node", &t->job.image_node);
		if (!run)
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
		tasks_step(a, t);
}

/* ---- lifecycle ------------------------------------------------------------------------------------ */

struct agent *agent_start(const struct host *h, char *err)
{
	struct agent *a = xcalloc(1, sizeof *a);
	a->h = h;
	snprintf(a->env.data_dir, sizeof a->env.data_dir, "%s", h->data_dir);
	layout_path(a->env.state_dir, sizeof a->env.state_dir, h->data_dir, LAYOUT_RUNTIME_STATE);
	snprintf(a->env.node_hex, sizeof a->env.node_hex, "%016llx", (unsigned long long)h->ident->id);
	adopt_runtime(a);
	a->env.tok = &h->ident->tok;
	char tasks[700];
	layout_path(tasks, sizeof tasks, h->data_dir, LAYOUT_TASKS);
	mkdir(tasks, 0700);
	mkdir(a->env.state_dir, 0700);
	uv_signal_init(h->loop, &a->sigchld);
	a->sigchld.data = a;
	uv_signal_start(&a->sigchld, sigchld_cb, SIGCHLD);
	adopt_all(a);
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
		checks_free(t);
		tasks_free(t);
	}
	logs_free(a);
	free(a->peers);
	free(a);
}

void agent_tick(struct agent *a)
{
	if (!a || host_stopping(a->h))
		return;
	tasks_claim_exits(a); /* in case a SIGCHLD was coalesced */
	adopt_poll(a);
	for (struct atask *t = a->tasks; t; t = t->next)
		tasks_step(a, t);
	if (++a->ticks % 25 == 0)
		logs_rotate(a);
	checks_run(a);
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

void agent_conn_gone(struct agent *a, struct conn *c)
{
	if (!a)
		return;
	blob_get_conn_gone(a, c);
	logs_conn_gone(a, c);
}

void agent_logs(struct agent *a, struct conn *c, const struct req_logs *q)
{
	logs_op(a, c, q);
}

void agent_blob_get(struct agent *a, struct conn *c, const struct req_blob_get *q)
{
	blob_get_op(a, c, q);
}
