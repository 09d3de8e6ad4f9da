/* The Compose keys that decide where and in what order tasks run and which tasks see each
 * other: their parsing (with positions), the canonical encoding, constraint matching with
 * node roles, and service names scoped by networks (traffic/dns.c). */
#include "unit.h"
#include "entry.h"
#include "orchestrator/reconcile.h"
#include "orchestrator/sched.h"
#include "spec/spec.h"
#include "traffic/dns.h"
#include "util/err.h"
#include "util/mem.h"

static struct spec_file *parse(const char *yml, char *err)
{
	struct spec_file *f = NULL;
	err[0] = 0;
	if (spec_parse_buf("app.yml", yml, strlen(yml), &f, err))
		return NULL;
	return f;
}

static void expect_err(const char *yml, const char *want)
{
	char err[ERR_LEN];
	struct spec_file *f = parse(yml, err);
	if (f || strcmp(err, want)) {
		fprintf(stderr, "  for:\n%s  got: %s\n  expected: %s\n", yml, f ? "(parsed)" : err, want);
		exit(1);
	}
}

/* Encodes, decodes, encodes again: the same bytes. */
static void roundtrip(const struct svc_spec *s)
{
	struct mpw a, b;
	struct mpr r;
	char err[ERR_LEN];
	mpw_init(&a);
	svc_spec_encode(s, &a);
	CHECK_EQ_INT(mpr_decode(&r, a.sb.data, a.sb.size), 0);
	struct svc_spec back;
	CHECK_EQ_INT(svc_spec_decode(r.root, &back, err), 0);
	mpw_init(&b);
	svc_spec_encode(&back, &b);
	CHECK(a.sb.size == b.sb.size && !memcmp(a.sb.data, b.sb.data, a.sb.size));
	CHECK(svc_spec_equal(s, &back));
	svc_spec_free(&back);
	mpr_free(&r);
	mpw_free(&a);
	mpw_free(&b);
}

UNIT(placement_keys_parse)
{
	static const char yml[] =
		"name: shop\n"
		"services:\n"
		"  web:\n"
		"    image: web:1\n"
		"    depends_on: [db, cache]\n"
		"    networks: [front, back]\n"
		"    deploy:\n"
		"      placement:\n"
		"        constraints: [\"node.role == worker\", \"node.platform.os == linux\"]\n"
		"        preferences:\n"
		"          - spread: node.labels.zone\n"
		"  db:\n"
		"    image: db:1\n"
		"    networks:\n"
		"      back:\n"
		"        aliases: [database, pg]\n"
		"    depends_on:\n"
		"      cache:\n"
		"        condition: service_healthy\n"
		"        required: false\n"
		"  cache:\n"
		"    image: cache:1\n"
		"  mon:\n"
		"    image: mon:1\n"
		"    deploy:\n"
		"      mode: global\n"
		"networks:\n"
		"  front:\n"
		"  back:\n"
		"    driver: overlay\n"
		"    attachable: true\n";
	char err[ERR_LEN];
	struct spec_file *f = parse(yml, err);
	if (!f)
		fprintf(stderr, "  %s\n", err);
	CHECK(f != NULL);
	const struct svc_spec *web = spec_file_find(f, "web"), *db = spec_file_find(f, "db");
	const struct svc_spec *cache = spec_file_find(f, "cache"), *mon = spec_file_find(f, "mon");
	/* depends_on short form: sorted, condition started, required */
	CHECK_EQ_INT(web->depends_on.n, 2);
	CHECK_STR(web->depends_on.v[0].service, "cache");
	CHECK_STR(web->depends_on.v[1].service, "db");
	CHECK_EQ_INT(web->depends_on.v[1].condition, DEP_STARTED);
	CHECK(web->depends_on.v[1].required);
	CHECK_EQ_INT(db->depends_on.v[0].condition, DEP_HEALTHY);
	CHECK(!db->depends_on.v[0].required);
	/* networks: sorted; aliases kept; none given = the default network */
	CHECK_EQ_INT(web->networks.n, 2);
	CHECK_STR(web->networks.v[0].name, "back");
	CHECK_STR(web->networks.v[1].name, "front");
	CHECK_EQ_INT(db->networks.v[0].aliases.n, 2);
	CHECK_STR(db->networks.v[0].aliases.v[1], "pg");
	CHECK_EQ_INT(cache->networks.n, 0);
	CHECK_EQ_INT(f->nnet, 2);
	CHECK_EQ_INT(f->net[1].driver, NETDRV_OVERLAY);
	/* placement */
	CHECK_EQ_INT(web->deploy.placement.constraints.n, 2);
	CHECK_EQ_INT(web->deploy.placement.constraints.v[0].what, CON_NODE_ROLE);
	CHECK_EQ_INT(web->deploy.placement.preferences.n, 1);
	CHECK_STR(web->deploy.placement.preferences.v[0].spread, "node.labels.zone");
	CHECK_EQ_INT(mon->deploy.mode, DEPLOY_GLOBAL);
	/* who shares a network: web and db on back, cache alone on the default one */
	CHECK(spec_share_network("shop", web, "shop", db));
	CHECK(!spec_share_network("shop", web, "shop", cache));
	CHECK(spec_share_network("shop", cache, "shop", mon));
	CHECK(!spec_share_network("shop", cache, "other", cache)); /* each project its own default */
	for (size_t i = 0; i < f->nsvc; i++)
		roundtrip(&f->svc[i]);
	spec_file_free(f);
}

UNIT(placement_keys_errors_are_located)
{
	expect_err("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n"
		   "  c:\n    image: x\n    depends_on: [a]\n",
		   "app.yml:10:18: services.c.depends_on: dependency cycle: a -> b -> c -> a");
	expect_err("services:\n  a:\n    image: x\n    depends_on:\n      - ghost\n",
		   "app.yml:5:9: services.a.depends_on: unknown service \"ghost\" (not in this file; set required: false "
		   "to start without it)");
	expect_err("services:\n  a:\n    image: x\n    depends_on: [a]\n",
		   "app.yml:4:18: services.a.depends_on: service a depends on itself");
	expect_err("services:\n  a:\n    image: x\n    depends_on: [b, b]\n  b:\n    image: x\n",
		   "app.yml:4:21: services.a.depends_on[1]: \"b\" is listed twice");
	expect_err("services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: service_ready}\n  b:\n    image: x\n",
		   "app.yml:5:22: services.a.depends_on.b.condition: expected one of service_started, service_healthy, "
		   "service_completed_successfully, got \"service_ready\"");
	expect_err("services:\n  a:\n    image: x\n    networks: [back]\n",
		   "app.yml:4:16: services.a.networks: network \"back\" is not defined under the top-level networks:");
	expect_err("services:\n  a:\n    image: x\n    networks:\n      default:\n        ipv4_address: 10.0.0.5\n",
		   "app.yml:6:9: services.a.networks.default: key \"ipv4_address\" is not supported by orch; orch assigns "
		   "task addresses itself");
	expect_err("services:\n  a:\n    image: x\n    deploy:\n      placement:\n        preferences:\n"
		   "          - spread: node.hostname\n",
		   "app.yml:7:13: services.a.deploy.placement.preferences[0]: spread \"node.hostname\": expected "
		   "node.labels.<key>");
	expect_err("services:\n  a:\n    image: x\n    deploy:\n      placement:\n        constraints:\n"
		   "          - node.role === manager\n",
		   "app.yml:7:13: services.a.deploy.placement.constraints[0]: constraint \"node.role === manager\": "
		   "missing or malformed value after the operator");
	expect_err("services:\n  a:\n    image: x\nnetworks:\n  back:\n    internal: true\n",
		   "app.yml:6:5: networks.back: key \"internal\" is not supported by orch");
	expect_err("services:\n  a:\n    image: x\n    network_mode: host\n    networks: [default]\n",
		   "app.yml:5:16: services.a.networks: networks do not apply with network_mode: host");
}

/* The encoding of service `svc` in the file. */
static char *encoded(const char *yml, const char *svc, size_t *len)
{
	char err[ERR_LEN];
	struct spec_file *f = parse(yml, err);
	if (!f)
		fprintf(stderr, "  %s\n", err);
	CHECK(f != NULL);
	struct mpw w;
	mpw_init(&w);
	svc_spec_encode(spec_file_find(f, svc), &w);
	char *out = xmalloc(w.sb.size);
	memcpy(out, w.sb.data, w.sb.size);
	*len = w.sb.size;
	mpw_free(&w);
	spec_file_free(f);
	return out;
}

static bool same_app(const char *a, const char *b)
{
	size_t na, nb;
	char *x = encoded(a, "app", &na), *y = encoded(b, "app", &nb);
	bool eq = na == nb && !memcmp(x, y, na);
	free(x);
	free(y);
	return eq;
}

UNIT(placement_depends_restart_follows_the_dependency)
{
	static const char v1[] = "services:\n  app:\n    image: a\n    depends_on:\n      db: {restart: %s}\n"
				 "  db:\n    image: db:%d\n";
	char a[256], b[256];
	/* restart: true: a new db spec is a new app spec (app rolls too) */
	snprintf(a, sizeof a, v1, "true", 1);
	snprintf(b, sizeof b, v1, "true", 2);
	CHECK(!same_app(a, b));
	snprintf(b, sizeof b, v1, "true", 1);
	CHECK(same_app(a, b));
	/* without it, app does not change */
	snprintf(a, sizeof a, v1, "false", 1);
	snprintf(b, sizeof b, v1, "false", 2);
	CHECK(same_app(a, b));
}

UNIT(placement_external_and_named_networks)
{
	char err[ERR_LEN];
	struct spec_file *f = parse("services:\n  a:\n    image: x\n    networks: [shared]\n  b:\n    image: x\n"
				    "networks:\n  shared:\n    external: true\n    name: infra_net\n  default:\n    name: common\n",
				    err);
	if (!f)
		fprintf(stderr, "  %s\n", err);
	CHECK(f != NULL);
	char id[160];
	spec_network_id("p", &f->svc[0].networks.v[0], id, sizeof id);
	CHECK_STR(id, "infra_net");
	/* b has no networks: but the default was renamed, so it carries it */
	CHECK_EQ_INT(f->svc[1].networks.n, 1);
	spec_network_id("p", &f->svc[1].networks.v[0], id, sizeof id);
	CHECK_STR(id, "common");
	spec_file_free(f);
}

/* ---- platform: a task no node could run waits with the reason ---- */

UNIT(placement_platform_no_node_runs_it)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	entry_add_node(&s, 1, "alpha", &res);
	entry_add_node(&s, 2, "beta", &res);
	struct sched_ctx c;
	sched_init(&c, &s);
	char reason[ERR_LEN] = "", here[64];
	struct svc_spec sp;
	svc_spec_init(&sp);
	sp.platform = xstrdup("linux/s390x");
	if (spec_platform_matches(sp.platform, "amd64", here, sizeof here)) /* guard: the test is for amd64 builds */
		CHECK(0);
	CHECK_EQ_INT(sched_place(&c, &sp, 99, reason, sizeof reason), 0);
	CHECK(strstr(reason, "no node runs linux/s390x") != NULL);
	CHECK_EQ_INT(sched_place_on(&c, &sp, 99, 1, reason, sizeof reason), 0);
	free(sp.platform);
	sp.platform = NULL;
	CHECK(sched_place(&c, &sp, 99, reason, sizeof reason) != 0); /* no platform: placed */
	svc_spec_free(&sp);
	sched_free(&c);
	store_free(&s);
}

/* ---- constraint matching with roles ---- */

static bool only_node_2_manages(uint64_t node, void *arg)
{
	(void)arg;
	return node == 2;
}

UNIT(placement_constraints_match_nodes)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	entry_add_node(&s, 1, "alpha", &res);
	entry_add_node(&s, 2, "beta", &res);
	entry_add_node(&s, 3, "gamma", &res);
	struct sched_ctx c;
	sched_init(&c, &s);
	c.manager = only_node_2_manages;
	static const struct {
		const char *con;
		uint64_t node; /* the only one that fits, 0: none */
	} cases[] = {
		{"node.role == manager", 2},
		{"node.hostname == gamma", 3},
		{"node.id == 0000000000000001", 1},
		{"node.platform.os != linux", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char msg[ERR_LEN], reason[ERR_LEN];
		struct svc_spec sp;
		svc_spec_init(&sp);
		sp.deploy.placement.constraints.v = xcalloc(1, sizeof(struct constraint));
		CHECK_EQ_INT(spec_parse_constraint(cases[i].con, &sp.deploy.placement.constraints.v[0], msg), 0);
		sp.deploy.placement.constraints.n = 1;
		for (uint64_t n = 1; n <= 3; n++)
			CHECK_EQ_INT(sched_constraints_ok(&c, &sp, table_get_u64(&s.nodes, n)), n == cases[i].node);
		CHECK_EQ_INT(sched_place(&c, &sp, 99, reason, sizeof reason), cases[i].node);
		if (!cases[i].node)
			CHECK(strstr(reason, "no node satisfies the placement constraints") != NULL);
		svc_spec_free(&sp);
	}
	/* with a spread preference, the reason is still the constraints */
	{
		char msg[ERR_LEN], reason[ERR_LEN];
		struct svc_spec sp;
		svc_spec_init(&sp);
		sp.deploy.placement.constraints.v = xcalloc(1, sizeof(struct constraint));
		CHECK_EQ_INT(spec_parse_constraint("node.labels.zone == mars", &sp.deploy.placement.constraints.v[0], msg), 0);
		sp.deploy.placement.constraints.n = 1;
		sp.deploy.placement.preferences.v = xcalloc(1, sizeof(struct pref));
		sp.deploy.placement.preferences.v[0].spread = xstrdup("node.labels.zone");
		sp.deploy.placement.preferences.n = 1;
		CHECK_EQ_INT(sched_place(&c, &sp, 99, reason, sizeof reason), 0);
		CHECK(strstr(reason, "no node satisfies the placement constraints: 3 nodes checked") != NULL);
		svc_spec_free(&sp);
	}
	/* worker: every node but the manager */
	struct svc_spec sp;
	char msg[ERR_LEN];
	svc_spec_init(&sp);
	sp.deploy.placement.constraints.v = xcalloc(1, sizeof(struct constraint));
	CHECK_EQ_INT(spec_parse_constraint("node.role == worker", &sp.deploy.placement.constraints.v[0], msg), 0);
	sp.deploy.placement.constraints.n = 1;
	CHECK(sched_constraints_ok(&c, &sp, table_get_u64(&s.nodes, 1)));
	CHECK(!sched_constraints_ok(&c, &sp, table_get_u64(&s.nodes, 2)));
	svc_spec_free(&sp);
	sched_free(&c);
	store_free(&s);
}

/* ---- service names scoped by networks ---- */

static void put(struct store *s, const char *project, const char *yaml)
{
	struct spec_file *f = NULL;
	char err[ERR_LEN];
	if (spec_parse_buf("t.yml", yaml, strlen(yaml), &f, err)) {
		fprintf(stderr, "  spec: %s\n", err);
		exit(1);
	}
	for (size_t i = 0; i < f->nsvc; i++) {
		struct mpw w;
		struct apply_res res;
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_kstr(&w, "name", f->svc[i].name);
		mpw_kstr(&w, "project", project);
		mpw_ku64(&w, "at", 1);
		mpw_key(&w, "spec");
		svc_spec_encode(&f->svc[i], &w);
		mpw_map_end(&w);
		entry_apply(s, CMD_SERVICE_PUT, &w, &res);
		CHECK_EQ_INT(res.rc, 0);
	}
	spec_file_free(f);
}

/* Creates and places every task (all on node 1), running at an address made from its
 * service's id. */
static void place_all(struct store *s)
{
	struct mpw w;
	struct apply_res res;
	for (int pass = 0; pass < 2; pass++) { /* created, then placed */
		mpw_init(&w);
		CHECK(reconcile(s, 1000, &w));
		entry_apply(s, CMD_TASK_BATCH, &w, &res);
		CHECK_EQ_INT(res.rc, 0);
	}
	struct mpw u;
	mpw_init(&u);
	mpw_init(&w);
	uint32_t n = 0;
	TABLE_FOREACH(&s->tasks, struct task, t) {
		char ip[16];
		snprintf(ip, sizeof ip, "10.9.0.%u", (unsigned)(t->service_id % 250) + 1);
		mpw_map_begin(&u);
		CHECK_EQ_INT(t->node_id, 1);
		mpw_ku64(&u, "id", t->id);
		mpw_kstr(&u, "state", "running");
		mpw_kstr(&u, "ip", ip);
		mpw_map_end(&u);
		n++;
	}
	mpw_map_begin(&w);
	mpw_ku64(&w, "at", 2000);
	mpw_key(&w, "update");
	mpw_arr(&w, n);
	mpw_raw(&w, u.sb.data, u.sb.size);
	mpw_map_end(&w);
	entry_apply(s, CMD_TASK_BATCH, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	mpw_free(&u);
}

static const char *ip_of(const struct store *s, const char *svc, char *buf)
{
	const struct service *v = store_service_by_name(s, svc);
	CHECK(v != NULL);
	snprintf(buf, 16, "10.9.0.%u", (unsigned)(v->id % 250) + 1);
	return buf;
}

static const char *resolved(const struct store *s, const char *from, const char *name)
{
	char ip[16];
	const struct service *v = dns_resolve(s, 1, 0, from ? ip_of(s, from, ip) : "10.9.9.9", name);
	return v ? v->name : "-";
}

UNIT(placement_dns_scoped_by_networks)
{
	struct store s;
	struct apply_res res;
	store_init(&s);
	entry_add_node(&s, 1, "n1", &res);
	put(&s, "shop",
	    "services:\n"
	    "  web:\n    image: x\n    networks: [front, back]\n"
	    "  db:\n    image: x\n    networks:\n      back:\n        aliases: [database]\n"
	    "  proxy:\n    image: x\n    networks: [front]\n"
	    "  cron:\n    image: x\n"
	    "  hostsvc:\n    image: x\n    network_mode: host\n"
	    "networks:\n  front:\n  back:\n");
	put(&s, "blog", "services:\n  wp:\n    image: x\n");
	place_all(&s);
	CHECK_STR(resolved(&s, "web", "db"), "db");
	CHECK_STR(resolved(&s, "web", "database"), "db");      /* an alias on a shared network */
	CHECK_STR(resolved(&s, "web", "db.shop"), "db");
	CHECK_STR(resolved(&s, "web", "proxy"), "proxy");
	CHECK_STR(resolved(&s, "proxy", "db"), "-");           /* no network in common */
	CHECK_STR(resolved(&s, "proxy", "database"), "-");
	CHECK_STR(resolved(&s, "db", "proxy"), "-");
	CHECK_STR(resolved(&s, "cron", "web"), "-");           /* cron is on default only */
	CHECK_STR(resolved(&s, "wp", "cron"), "-");            /* another project's default */
	CHECK_STR(resolved(&s, "wp", "wp"), "wp");
	CHECK_STR(resolved(&s, "proxy", "hostsvc"), "hostsvc"); /* on the host's network: as the host */
	CHECK_STR(resolved(&s, NULL, "db"), "db");             /* not a task: names, unscoped */
	CHECK_STR(resolved(&s, NULL, "database"), "-");
	/* the asker named by the node's agent, before the state has its address */
	uint64_t proxy_task = 0;
	TABLE_FOREACH(&s.tasks, struct task, t)
		if (!strcmp(t->service, "proxy"))
			proxy_task = t->id;
	CHECK(dns_resolve(&s, 1, proxy_task, "10.255.0.1", "db") == NULL);
	CHECK(dns_resolve(&s, 1, proxy_task, "10.255.0.1", "web") == store_service_by_name(&s, "web"));
	store_free(&s);
}

/* A spec that the parser would refuse, crafted in its encoding (a service.put from a
 * client that is not the CLI), does not decode: the scheduler never sees it. */
UNIT(placement_crafted_encodings_refused)
{
	char err[ERR_LEN];
	struct spec_file *f = parse("services:\n  a:\n    image: x\n    depends_on: [b]\n    networks:\n      default:\n"
				    "        aliases: [api]\n    deploy:\n      placement:\n        preferences:\n"
				    "          - spread: node.labels.zone\n  b:\n    image: x\n", err);
	CHECK(f != NULL);
	struct svc_spec *s = &f->svc[0];
	for (int bad = 0; bad < 4; bad++) {
		char *keep_spread = s->deploy.placement.preferences.v[0].spread, *keep_dep = s->depends_on.v[0].service;
		char *keep_alias = s->networks.v[0].aliases.v[0];
		if (bad == 0)
			s->deploy.placement.preferences.v[0].spread = (char *)(uintptr_t)"zone";
		else if (bad == 1)
			s->deploy.placement.preferences.v[0].spread = NULL;
		else if (bad == 2)
			s->depends_on.v[0].service = NULL;
		else
			s->networks.v[0].aliases.v[0] = (char *)(uintptr_t)"Not An Alias";
		struct mpw w;
		struct mpr r;
		mpw_init(&w);
		svc_spec_encode(s, &w);
		s->deploy.placement.preferences.v[0].spread = keep_spread;
		s->depends_on.v[0].service = keep_dep;
		s->networks.v[0].aliases.v[0] = keep_alias;
		CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
		struct svc_spec back;
		CHECK(svc_spec_decode(r.root, &back, err) < 0);
		svc_spec_free(&back);
		mpr_free(&r);
		mpw_free(&w);
	}
	spec_file_free(f);
}
