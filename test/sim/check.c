#include "check.h"
#include "scenario.h"
#include "spec/spec.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int host_of_id(const struct simcl *c, uint64_t id)
{
	for (unsigned i = 0; i < c->count; i++)
		if (c->n[i].ident.id == id)
			return (int)i;
	return -1;
}

static const char *name_of(const struct simcl *c, uint64_t id)
{
	int h = host_of_id(c, id);
	return h < 0 ? "?" : c->n[h].ident.name;
}

static int check_nodes(const struct simcl *c, int l, char *err)
{
	for (unsigned i = 0; i < c->count; i++) {
		const struct snode *n = &c->n[i];
		if (n->join_failed)
			return errf(err, E_FAIL, "%s failed to join: %s", n->ident.name, n->join_err);
		if (n->stopped_self)
			return errf(err, E_FAIL, "%s stopped itself: %s", n->ident.name, n->stop_why);
		if (n->joining)
			return errf(err, E_FAIL, "%s is still joining", n->ident.name);
		if (n->wanted && !simcl_up(c, i))
			return errf(err, E_FAIL, "%s is not running yet", n->ident.name);
	}
	struct consensus *lc = simcl_cons(c, (unsigned)l);
	const struct store *ls = simcl_store(c, (unsigned)l);
	unsigned ns = cons_nservers(lc), voters = 0, workers = 0;
	for (unsigned k = 0; k < ns; k++) {
		raft_id id;
		const char *addr;
		enum cons_role role;
		cons_server(lc, k, &id, &addr, &role);
		workers += node_spare_only(table_get_u64(&ls->nodes, id));
	}
	unsigned managers = ns - workers; /* workers never vote: the voter set is sized from the others */
	unsigned target = managers >= 5 ? 5 : managers >= 3 ? 3 : 1;
	for (unsigned k = 0; k < ns; k++) {
		raft_id id;
		const char *addr;
		enum cons_role role;
		cons_server(lc, k, &id, &addr, &role);
		if (role != ROLE_VOTER)
			continue;
		voters++;
		int h = host_of_id(c, id);
		if (h < 0 || !simcl_up(c, (unsigned)h))
			return errf(err, E_FAIL, "voter %s is not running", name_of(c, id));
	}
	if (voters != target)
		return errf(err, E_FAIL, "%u voters for %u servers, want %u", voters, ns, target);
	for (unsigned i = 0; i < c->count; i++) {
		if (!simcl_up(c, i))
			continue;
		const struct snode *n = &c->n[i];
		enum cons_role role = cons_role_of(lc, n->ident.id);
		const struct node *wrec = table_get_u64(&ls->nodes, n->ident.id);
		if (wrec && wrec->worker != n->worker)
			return errf(err, E_FAIL, "node %s is recorded as a %s", n->ident.name, wrec->worker ? "worker" : "manager");
		if (n->worker) {
			if (role != ROLE_SPARE)
				return errf(err, E_FAIL, "worker %s is %s in the raft configuration", n->ident.name, cons_role_name(role));
		} else if (role != ROLE_VOTER && role != ROLE_STANDBY)
			return errf(err, E_FAIL, "running node %s is %s in the raft configuration", n->ident.name,
				    role == ROLE_SPARE ? "a spare" : "not a member");
		const struct node *rec = table_get_u64(&ls->nodes, n->ident.id);
		if (!rec)
			return errf(err, E_FAIL, "running node %s has no node record", n->ident.name);
		if (rec->state != NS_READY)
			return errf(err, E_FAIL, "running node %s is marked %s", n->ident.name,
				    rec->state ? lifecycle_name(&lifecycle_node, (int)rec->state) : "(none)");
	}
	return 0;
}

static bool runs(const struct fakert *r, uint64_t task)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (r->t[i].id == task && r->t[i].st == FT_RUNNING)
			return true;
	return false;
}

static int cmp_slot(const void *a, const void *b)
{
	const struct task *x = *(const struct task *const *)a, *y = *(const struct task *const *)b;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* The replicas a service wants: its count, or for a global one a task on every node up and
 * not drained (the scenarios set no constraints on global services). */
static uint64_t wanted(const struct store *s, const struct service *v)
{
	const struct svc_spec *sp = service_spec(v);
	if (!sp || sp->deploy.mode != DEPLOY_GLOBAL)
		return v->replicas;
	uint64_t n = 0;
	TABLE_FOREACH(&s->nodes, const struct node, nd)
		n += nd->state != NS_DOWN && nd->availability != NA_DRAIN;
	return n;
}

static int check_services(const struct simcl *c, int l, char *err)
{
	const struct store *s = simcl_store(c, (unsigned)l);
	TABLE_FOREACH(&s->services, const struct service, v) {
		uint64_t running = 0;
		size_t nlive = 0;
		/* live tasks by slot (a global service's slots are node ids: sorted, not indexed) */
		const struct task **live = xcalloc(s->tasks.n + 1, sizeof *live);
		TABLE_FOREACH(&s->tasks, const struct task, t)
			if (t->service_id == v->id && !task_terminal(t) && t->desired == TD_RUNNING)
				live[nlive++] = t;
		if (nlive)
			qsort(live, nlive, sizeof *live, cmp_slot);
		for (size_t k = 1; k < nlive; k++) {
			if (live[k]->slot != live[k - 1]->slot)
				continue;
			char both[256] = "";
			TABLE_FOREACH(&s->tasks, const struct task, o)
				if (o->service_id == v->id && o->slot == live[k]->slot && !task_terminal(o) && o->desired == TD_RUNNING) {
					size_t m = strlen(both);
					snprintf(both + m, sizeof both - m, "%s%llu on %s %s", m ? ", " : "", (unsigned long long)o->id,
						 name_of(c, o->node_id), task_state_name(o->state));
				}
			uint64_t slot = live[k]->slot;
			free(live);
			return errf(err, E_FAIL, "service %s slot %llu has two live tasks (%s)", v->name, (unsigned long long)slot, both);
		}
		TABLE_FOREACH(&s->tasks, const struct task, t) {
			if (t->service_id != v->id)
				continue;
			if (t->desired != TD_RUNNING || t->state != TS_RUNNING || t->generation != v->generation)
				continue;
			int h = host_of_id(c, t->node_id);
			if (h < 0 || !simcl_up(c, (unsigned)h))
				continue;
			if (!runs(simcl_runtime(c, (unsigned)h), t->id)) {
				free(live);
				return errf(err, E_FAIL, "task %llu of %s is running in the state but not on %s", (unsigned long long)t->id,
					    v->name, c->n[h].ident.name);
			}
			running++;
		}
		free(live);
		if (running != wanted(s, v))
			return errf(err, E_FAIL, "service %s has %llu of %llu replicas running", v->name, (unsigned long long)running,
				    (unsigned long long)wanted(s, v));
	}
	/* what the runtimes run: only live tasks of the state, each slot once */
	for (unsigned i = 0; i < c->count; i++) {
		const struct fakert *r = simcl_runtime(c, i);
		for (size_t k = 0; r && k < r->n; k++) {
			if (r->t[k].st != FT_RUNNING)
				continue;
			const struct task *t = table_get_u64(&s->tasks, r->t[k].id);
			if (!t || task_terminal(t) || t->desired != TD_RUNNING)
				return errf(err, E_FAIL, "%s runs task %llu that the state says %s", c->n[i].ident.name,
					    (unsigned long long)r->t[k].id, !t ? "is gone" : task_terminal(t) ? "ended" : "must stop");
			for (unsigned j = i + 1; j < c->count; j++) {
				const struct fakert *q = simcl_runtime(c, j);
				for (size_t m = 0; q && m < q->n; m++)
					if (q->t[m].st == FT_RUNNING && q->t[m].slot == r->t[k].slot &&
					    !strcmp(q->t[m].service, r->t[k].service))
						return errf(err, E_FAIL, "slot %llu of %s runs on both %s and %s", (unsigned long long)r->t[k].slot,
							    r->t[k].service, c->n[i].ident.name, c->n[j].ident.name);
			}
		}
	}
	return 0;
}

int check_settled(const struct simcl *c, char hash[65], char *err)
{
	int l = simcl_leader(c);
	if (l < 0)
		return errf(err, E_FAIL, "no leader");
	int rc = check_nodes(c, l, err);
	if (rc)
		return rc;
	struct consensus *lc = simcl_cons(c, (unsigned)l);
	uint64_t commit = cons_commit_index(lc);
	for (unsigned i = 0; i < c->count; i++) {
		struct consensus *k = simcl_cons(c, i);
		if (k && c->n[i].worker) { /* a worker holds no log and no state */
			const struct store *ws = simcl_store(c, i);
			if (cons_last_index(k) || cons_applied_index(k) || (ws && (ws->nodes.n || ws->tasks.n)))
				return errf(err, E_FAIL, "worker %s holds raft entries (last %llu) or state (%zu nodes)", c->n[i].ident.name,
					    (unsigned long long)cons_last_index(k), ws ? ws->nodes.n : 0);
			continue;
		}
		if (k && cons_applied_index(k) != commit)
			return errf(err, E_FAIL, "%s applied %llu, the leader %s committed %llu", c->n[i].ident.name,
				    (unsigned long long)cons_applied_index(k), c->n[l].ident.name, (unsigned long long)commit);
	}
	if ((rc = check_services(c, l, err)))
		return rc;
	char h[65];
	store_hash(simcl_store(c, (unsigned)l), hash);
	for (unsigned i = 0; i < c->count; i++) {
		const struct store *s = simcl_store(c, i);
		if (!s || c->n[i].worker)
			continue;
		store_hash(s, h);
		if (strcmp(h, hash))
			return errf(err, E_FAIL, "%s's state hash %.12s differs from the leader's %.12s", c->n[i].ident.name, h, hash);
	}
	return 0;
}

/* How the leader's raft replicates to server id: "probe", "pipeline" or "snapshot", with the
 * highest index it knows the server has. */
static void replication(struct consensus *lc, uint64_t id, char *buf, size_t n)
{
	snprintf(buf, n, "-");
	if (!lc || !cons_is_leader(lc))
		return;
	static const char *const names[] = {"probe", "pipeline", "snapshot"};
	for (unsigned i = 0; i < lc->raft->configuration.n; i++)
		if (lc->raft->configuration.servers[i].id == id) {
			const struct raft_progress *pr = &lc->raft->leader_state.progress[i];
			snprintf(buf, n, "%s/%llu", pr->state < 3 ? names[pr->state] : "?", (unsigned long long)pr->match_index);
		}
}

void check_describe(const struct simcl *c, FILE *f)
{
	int l = simcl_leader(c);
	struct consensus *lc = l >= 0 ? simcl_cons(c, (unsigned)l) : NULL;
	const struct store *ls = l >= 0 ? simcl_store(c, (unsigned)l) : NULL;
	fprintf(f, "at %.1f s: leader %s\n", (double)c->w.now / 1000.0, l >= 0 ? c->n[l].ident.name : "none");
	if (ls && getenv("SIMEVENTS"))
		TABLE_FOREACH(&ls->events, const struct event, e)
			fprintf(f, "  event %llu at %llu %s %s task %llu node %s: %s\n", (unsigned long long)e->id,
				(unsigned long long)(e->at - c->wall0), e->kind, e->service ? e->service : "-", (unsigned long long)e->task,
				name_of(c, e->node), e->message);
	for (unsigned i = 0; i < c->count; i++) {
		const struct snode *n = &c->n[i];
		struct consensus *k = simcl_cons(c, i);
		const struct node *rec = ls ? table_get_u64(&ls->nodes, n->ident.id) : NULL;
		raft_id lid = 0;
		const char *laddr;
		if (k)
			cons_leader(k, &lid, &laddr);
		int lh = -1;
		for (unsigned j = 0; j < c->count; j++)
			if (lid && c->n[j].ident.id == lid)
				lh = (int)j;
		char repl[48];
		replication(lc, n->ident.id, repl, sizeof repl);
		fprintf(f, "  %s %-9s term %-3llu role %-7s (own view %-7s) record %-5s applied %-6llu last %-6llu repl %-14s leader %-4s runs %zu%s%s\n",
			n->ident.name, k ? cons_state_name(k) : "stopped", k ? (unsigned long long)cons_term(k) : 0ull,
			lc ? cons_role_name(cons_role_of(lc, n->ident.id)) : "?", k ? cons_role_name(cons_role_of(k, n->ident.id)) : "-",
			rec ? lifecycle_name(&lifecycle_node, (int)rec->state) : "-", k ? (unsigned long long)cons_applied_index(k) : 0ull,
			k ? (unsigned long long)cons_last_index(k) : 0ull, repl, lh >= 0 ? c->n[lh].ident.name : "-",
			simcl_runtime(c, i) ? fakert_running(simcl_runtime(c, i)) : 0, n->join_failed ? " join failed: " : "",
			n->join_failed ? n->join_err : "");
	}
}

int check_wait_settled(struct simcl *c, uint64_t within_ms, char hash[65], char *err)
{
	uint64_t deadline = c->w.now + within_ms;
	int rc;
	while ((rc = check_settled(c, hash, err)) && c->w.now < deadline)
		simcl_run(c, 100);
	if (rc) {
		errwrap(err, rc, "not settled after %llu ms", (unsigned long long)within_ms);
		if (sim_verbose)
			check_describe(c, stderr);
	}
	return rc;
}
