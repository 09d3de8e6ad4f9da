#include "scn.h"
#include "orchestrator/rebalance.h"
#include "secret/envseal.h"
#include "spec/spec.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct simcl *scn_new(uint64_t seed, unsigned count)
{
	struct simcl *c = xcalloc(1, sizeof *c);
	struct simcl_opts o = {
		.election_ms = 500,
		.heartbeat_ms = 100,
		.failure_timeout_ms = 3000,
		.start_min_ms = 200,
		.start_max_ms = 800,
	};
	simcl_init(c, seed, count, &o);
	return c;
}

void scn_lossy(struct simcl *c)
{
	c->net.drop_pm = 50;
	c->net.reorder = true;
	c->net.jitter_ms = 10;
	c->conns.reset_pm = 30;
}

static bool has_record(void *arg)
{
	const struct simcl *c = arg;
	const struct store *s = simcl_store(c, 0);
	return s && table_get_u64(&s->nodes, c->n[0].ident.id);
}

int scn_init(struct simcl *c, char *err)
{
	int rc = simcl_init_node(c, 0, err);
	if (rc)
		return rc;
	if (!world_run_while_not(&c->w, c->w.now + 10000, has_record, c))
		return errf(err, E_TIMEOUT, "the first node did not commit its record within 10 s");
	return 0;
}

struct join_at {
	struct simcl *c;
	unsigned i, via;
};

static void join_fire(struct world *w, void *arg)
{
	struct join_at *j = arg;
	(void)w;
	simcl_join(j->c, j->i, j->via);
	free(j);
}

void scn_join_all(struct simcl *c, unsigned from, unsigned to, unsigned via, uint64_t spread_ms)
{
	for (unsigned i = from; i < to; i++) {
		struct join_at *j = xmalloc(sizeof *j);
		*j = (struct join_at){c, i, via};
		c->n[i].wanted = true;
		world_at(&c->w, world_range(&c->w, 0, spread_ms), join_fire, j, free, NULL);
	}
}

/* A node the story wants joined that has not, and whose join has not failed. */
static bool join_pending(const struct snode *n)
{
	return n->wanted && !n->joined && !n->join_failed;
}

static bool none_pending(void *arg)
{
	const struct simcl *c = arg;
	for (unsigned i = 0; i < c->count; i++)
		if (join_pending(&c->n[i]))
			return false;
	return true;
}

int scn_joined(struct simcl *c, uint64_t within_ms, char *err)
{
	uint64_t deadline = c->w.now + within_ms;
	for (;;) {
		world_run_while_not(&c->w, deadline, none_pending, c);
		int failed = -1;
		for (unsigned i = 0; i < c->count; i++)
			if (c->n[i].wanted && !c->n[i].joined && c->n[i].join_failed)
				failed = (int)i;
		if (failed < 0 && none_pending(c))
			return 0;
		if (c->w.now >= deadline)
			return failed >= 0 ? errf(err, E_FAIL, "%s did not join: %s", c->n[failed].ident.name, c->n[failed].join_err)
					   : errf(err, E_TIMEOUT, "joins still under way after %llu ms", (unsigned long long)within_ms);
		for (unsigned i = 0; i < c->count; i++)
			if (c->n[i].wanted && !c->n[i].joined && c->n[i].join_failed) {
				scn_log(c, "join %s again through %s (%s)", c->n[i].ident.name, c->n[c->n[i].join_via].ident.name,
					c->n[i].join_err);
				simcl_join(c, i, c->n[i].join_via);
			}
	}
}

struct simcl *scn_cluster(uint64_t seed, unsigned count, unsigned members, int *rc, char *err)
{
	struct simcl *c = scn_new(seed, count);
	char hash[65];
	scn_lossy(c);
	*rc = scn_init(c, err);
	if (!*rc) {
		scn_join_all(c, 1, members, 0, 1000);
		*rc = scn_joined(c, 30000, err);
	}
	if (!*rc)
		*rc = check_wait_settled(c, 30000, hash, err);
	return c;
}

int scn_deploy(struct simcl *c, const char *yaml, char *err)
{
	struct spec_file *f;
	int rc = spec_parse_buf("sim.yaml", yaml, strlen(yaml), &f, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < f->nsvc && !rc; i++) {
		if ((rc = envseal_close(c->datakey, &f->svc[i], err)))
			break;
		struct mpw w;
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_kstr(&w, "name", f->svc[i].name);
		mpw_kstr(&w, "project", "sim");
		mpw_ku64(&w, "at", simcl_wall(c));
		mpw_key(&w, "spec");
		svc_spec_encode(&f->svc[i], &w);
		mpw_map_end(&w);
		rc = simcl_write(c, CMD_SERVICE_PUT, w.sb.data, w.sb.size, 20000, err);
		mpw_free(&w);
	}
	spec_file_free(f);
	return rc;
}

int scn_availability(struct simcl *c, uint64_t node, const char *availability, char *err)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "id", node);
	mpw_kstr(&w, "availability", availability);
	mpw_ku64(&w, "at", simcl_wall(c));
	mpw_map_end(&w);
	int rc = simcl_write(c, CMD_NODE_UPDATE, w.sb.data, w.sb.size, 20000, err);
	mpw_free(&w);
	return rc;
}

int scn_scale(struct simcl *c, const char *service, uint64_t replicas, char *err)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", service);
	mpw_ku64(&w, "replicas", replicas);
	mpw_ku64(&w, "at", simcl_wall(c));
	mpw_map_end(&w);
	int rc = simcl_write(c, CMD_SERVICE_SCALE, w.sb.data, w.sb.size, 20000, err);
	mpw_free(&w);
	return rc;
}

int scn_rebalance_moves(struct simcl *c, unsigned moves, char *err)
{
	char v[16];
	snprintf(v, sizeof v, "%u", moves);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "key", REBALANCE_KEY);
	mpw_kstr(&w, "value", v);
	mpw_map_end(&w);
	int rc = simcl_write(c, CMD_KV_SET, w.sb.data, w.sb.size, 20000, err);
	mpw_free(&w);
	return rc;
}

int scn_finish(struct simcl *c, uint64_t within_ms, struct sim_result *res, int rc, char *err)
{
	if (!rc)
		rc = check_wait_settled(c, within_ms, res->hash, err);
	scn_log(c, "network: %llu raft messages, %llu lost; %llu connections, %llu reset, %llu messages (%llu delivered), "
		"%llu stalls", (unsigned long long)c->net.sent, (unsigned long long)c->net.lost, (unsigned long long)c->conns.opened,
		(unsigned long long)c->conns.resets, (unsigned long long)c->conns.sent, (unsigned long long)c->conns.delivered,
		(unsigned long long)c->conns.stalled);
	res->events = c->w.fired;
	res->end_ms = c->w.now;
	res->nodes = c->count;
	simcl_free(c);
	free(c);
	return rc;
}

struct kill_at {
	struct simcl *c;
	unsigned i;
	uint64_t back_ms;
	bool power;
};

static void restart_fire(struct world *w, void *arg)
{
	struct kill_at *k = arg;
	char err[ERR_LEN];
	(void)w;
	scn_log(k->c, "restart %s", k->c->n[k->i].ident.name);
	if (simcl_restart(k->c, k->i, err))
		scn_log(k->c, "restart %s: %s", k->c->n[k->i].ident.name, err);
	free(k);
}

static void kill_fire(struct world *w, void *arg)
{
	struct kill_at *k = arg;
	int l = simcl_leader(k->c);
	if (l < 0) {
		free(k);
		return;
	}
	scn_log(k->c, "%s the leader %s", k->power ? "power off" : "kill", k->c->n[l].ident.name);
	if (k->power)
		simcl_power_off(k->c, (unsigned)l);
	else
		simcl_kill(k->c, (unsigned)l);
	k->i = (unsigned)l;
	world_at(w, k->back_ms, restart_fire, k, free, NULL);
}

void scn_kill_leader(struct simcl *c, uint64_t after_ms, uint64_t back_ms, bool power)
{
	struct kill_at *k = xcalloc(1, sizeof *k);
	k->c = c;
	k->back_ms = back_ms;
	k->power = power;
	world_at(&c->w, after_ms, kill_fire, k, free, NULL);
}

int scn_pick(struct simcl *c, bool voter)
{
	int l = simcl_leader(c);
	if (l < 0)
		return -1;
	unsigned cand[SIMCL_MAX], n = 0;
	for (unsigned i = 0; i < c->count; i++) {
		if ((int)i == l || !simcl_up(c, i))
			continue;
		enum cons_role r = cons_role_of(simcl_cons(c, (unsigned)l), c->n[i].ident.id);
		if ((r == ROLE_VOTER) == voter)
			cand[n++] = i;
	}
	return n ? (int)cand[world_range(&c->w, 0, n - 1)] : -1;
}

void scn_log(const struct simcl *c, const char *fmt, ...)
{
	if (!sim_verbose)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	log_info("sim", &c->clock, "%s", line);
}
