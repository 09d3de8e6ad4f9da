#include "scn.h"
#include "spec/spec.h"
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

int scn_deploy(struct simcl *c, const char *yaml, char *err)
{
	struct spec_file *f;
	int rc = spec_parse_buf("sim.yaml", yaml, strlen(yaml), &f, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < f->nsvc && !rc; i++) {
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

int scn_finish(struct simcl *c, uint64_t within_ms, struct sim_result *res, int rc, char *err)
{
	if (!rc)
		rc = check_wait_settled(c, within_ms, res->hash, err);
	res->events = c->w.fired;
	res->end_ms = c->w.now;
	res->nodes = c->count;
	simcl_free(c);
	free(c);
	return rc;
}

int scn_pick(struct simcl *c, bool voter)
{
	int l = simcl_leader(c);
	if (l < 0)
		return -1;
	for (unsigned k = 0; k < c->count; k++) {
		unsigned i = (unsigned)world_range(&c->w, 0, c->count - 1);
		if ((int)i == l || !simcl_up(c, i))
			continue;
		enum cons_role r = cons_role_of(simcl_cons(c, (unsigned)l), c->n[i].ident.id);
		if ((r == ROLE_VOTER) == voter)
			return (int)i;
	}
	return -1;
}

void scn_log(const struct simcl *c, const char *fmt, ...)
{
	if (!sim_verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	printf("[%8.3f] ", (double)c->w.now / 1000.0);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}
