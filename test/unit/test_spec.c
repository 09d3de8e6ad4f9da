/* Spec files: parsing the Compose subset, exact error positions, units, the canonical
 * encoding and YAML output, and a crash-freedom sweep over mangled inputs. */
#include "unit.h"
#include "codec/yaml_out.h"
#include "spec/spec.h"
#include "spec/units.h"
#include "util/err.h"
#include "util/mem.h"
#include <fcntl.h>
#include <unistd.h>

static struct spec_file *parse_ok(const char *yml)
{
	struct spec_file *f = NULL;
	char err[ERR_LEN] = "";
	int rc = spec_parse_buf("app.yml", yml, strlen(yml), &f, err);
	if (rc)
		fprintf(stderr, "  unexpected error: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK(f != NULL);
	return f;
}

/* Parses, expects failure, returns the message (static buffer). */
static const char *parse_err(const char *yml)
{
	static char err[ERR_LEN];
	struct spec_file *f = (struct spec_file *)1;
	err[0] = 0;
	int rc = spec_parse_buf("app.yml", yml, strlen(yml), &f, err);
	if (rc == 0)
		fprintf(stderr, "  expected an error for:\n%s\n", yml);
	CHECK(rc < 0);
	CHECK(f == NULL);
	CHECK(err[0] != 0);
	return err;
}

#define CHECK_HAS(s, sub) \
	do { const char *s_ = (s); if (!strstr(s_, (sub))) { \
		fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, s_, (sub)); exit(1); } } while (0)

static const char compose_yml[] =
	"version: \"3.8\"\n"
	"name: shop\n"
	"x-defaults: &defaults\n"
	"  condition: on-failure\n"
	"  max_attempts: 3\n"
	"services:\n"
	"  web:\n"
	"    image: nginx:1.25\n"
	"    command: [\"nginx\", \"-g\", \"daemon off;\"]\n"
	"    environment:\n"
	"      NGINX_PORT: 80\n"
	"      DEBUG: \"false\"\n"
	"      RATIO: 1.5\n"
	"      ENABLED: true\n"
	"    ports:\n"
	"      - \"8080:80\"\n"
	"      - \"9090:90/udp\"\n"
	"      - target: 443\n"
	"        published: 8443\n"
	"        protocol: tcp\n"
	"        mode: host\n"
	"    labels:\n"
	"      - \"com.example.tier=frontend\"\n"
	"      - \"com.example.flag\"\n"
	"    stop_grace_period: 1m30s\n"
	"    stop_signal: SIGQUIT\n"
	"    healthcheck:\n"
	"      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost/\"]\n"
	"      interval: 10s\n"
	"      timeout: 3s\n"
	"      retries: 5\n"
	"      start_period: 20s\n"
	"    x-tooling: ignored by orch\n"
	"    deploy:\n"
	"      mode: replicated\n"
	"      replicas: 3\n"
	"      resources:\n"
	"        limits:\n"
	"          cpus: '0.50'\n"
	"          memory: 512M\n"
	"          pids: 100\n"
	"        reservations:\n"
	"          cpus: 0.25\n"
	"          memory: 1.5GiB\n"
	"      restart_policy:\n"
	"        <<: *defaults\n"
	"        delay: 2s\n"
	"        window: 120s\n"
	"      placement:\n"
	"        constraints:\n"
	"          - node.labels.zone == east\n"
	"          - node.name!=n3\n"
	"          - node.hostname == box1\n"
	"        max_replicas_per_node: 2\n"
	"      update_config:\n"
	"        parallelism: 2\n"
	"        delay: 10s\n"
	"        failure_action: rollback\n"
	"        monitor: 30s\n"
	"        max_failure_ratio: 0.3\n"
	"        order: start-first\n"
	"      rollback_config:\n"
	"        parallelism: 0\n"
	"        failure_action: continue\n"
	"      labels:\n"
	"        com.example.description: \"web tier\"\n"
	"      x-orch-autoscale:\n"
	"        min: 2\n"
	"        max: 10\n"
	"        target_rps: 200\n"
	"        target_cpu: 70\n"
	"  db:\n"
	"    image: postgres:16\n"
	"    environment:\n"
	"      - POSTGRES_PASSWORD=se=cret\n"
	"      - POSTGRES_DB=shop\n"
	"    entrypoint: docker-entrypoint.sh \"postgres\" -c 'shared_buffers=256MB'\n"
	"    working_dir: /var/lib/postgresql\n"
	"    user: \"999:999\"\n"
	"    hostname: db\n"
	"    network_mode: host\n"
	"    healthcheck:\n"
	"      test: pg_isready -U postgres\n"
	"    x-orch-healthcheck:\n"
	"      type: tcp\n"
	"      port: 5432\n"
	"  api:\n"
	"    image: example/api\n"
	"    x-orch-healthcheck:\n"
	"      type: http\n"
	"      port: 8080\n"
	"    healthcheck:\n"
	"      disable: true\n"
	"x-trailer: {anything: [goes, here]}\n";

UNIT(spec_compose_full)
{
	struct spec_file *f = parse_ok(compose_yml);
	CHECK_STR(f->name, "shop");
	CHECK_EQ_INT(f->nsvc, 3);
	const struct svc_spec *w = &f->svc[0];
	CHECK_STR(w->name, "web");
	CHECK_STR(w->image, "nginx:1.25");
	CHECK_EQ_INT(w->command.n, 3);
	CHECK_STR(w->command.v[2], "daemon off;");
	CHECK_EQ_INT(w->entrypoint.n, 0);
	CHECK_EQ_INT(w->env.n, 4);
	CHECK_STR(labels_get(&w->env, "NGINX_PORT"), "80");
	CHECK_STR(labels_get(&w->env, "DEBUG"), "false");
	CHECK_STR(labels_get(&w->env, "RATIO"), "1.5");
	CHECK_STR(labels_get(&w->env, "ENABLED"), "true");
	CHECK_EQ_INT(w->ports.n, 3);
	CHECK_EQ_INT(w->ports.v[0].published, 8080);
	CHECK_EQ_INT(w->ports.v[0].target, 80);
	CHECK_EQ_INT(w->ports.v[0].protocol, PROTO_TCP);
	CHECK_EQ_INT(w->ports.v[0].mode, PORT_MODE_INGRESS);
	CHECK_EQ_INT(w->ports.v[1].protocol, PROTO_UDP);
	CHECK_EQ_INT(w->ports.v[2].target, 443);
	CHECK_EQ_INT(w->ports.v[2].published, 8443);
	CHECK_EQ_INT(w->ports.v[2].mode, PORT_MODE_HOST);
	CHECK_STR(labels_get(&w->labels, "com.example.tier"), "frontend");
	CHECK_STR(labels_get(&w->labels, "com.example.flag"), "");
	CHECK_EQ_INT(w->stop_grace_ms, 90000);
	CHECK_STR(w->stop_signal, "SIGQUIT");
	CHECK(w->working_dir == NULL);
	CHECK_EQ_INT(w->network_mode, NET_BRIDGE);
	CHECK_EQ_INT(w->healthcheck.kind, HC_CMD);
	CHECK_EQ_INT(w->healthcheck.test.n, 3);
	CHECK_STR(w->healthcheck.test.v[0], "curl");
	CHECK_EQ_INT(w->healthcheck.interval_ms, 10000);
	CHECK_EQ_INT(w->healthcheck.timeout_ms, 3000);
	CHECK_EQ_INT(w->healthcheck.retries, 5);
	CHECK_EQ_INT(w->healthcheck.start_period_ms, 20000);
	CHECK(!w->probe.enabled);

	const struct deploy *d = &w->deploy;
	CHECK_EQ_INT(d->replicas, 3);
	CHECK_EQ_INT(d->limits.cpus_milli, 500);
	CHECK_EQ_INT(d->limits.memory_bytes, 512ULL << 20);
	CHECK_EQ_INT(d->limits.pids, 100);
	CHECK_EQ_INT(d->reservations.cpus_milli, 250);
	CHECK_EQ_INT(d->reservations.memory_bytes, 3ULL << 29);
	CHECK_EQ_INT(d->restart.condition, RESTART_ON_FAILURE); /* from the merged anchor */
	CHECK_EQ_INT(d->restart.max_attempts, 3);
	CHECK_EQ_INT(d->restart.delay_ms, 2000);
	CHECK_EQ_INT(d->restart.window_ms, 120000);
	CHECK_EQ_INT(d->placement.constraints.n, 3);
	CHECK_EQ_INT(d->placement.constraints.v[0].what, CON_NODE_LABEL);
	CHECK_STR(d->placement.constraints.v[0].label, "zone");
	CHECK_STR(d->placement.constraints.v[0].value, "east");
	CHECK(d->placement.constraints.v[0].eq);
	CHECK_EQ_INT(d->placement.constraints.v[1].what, CON_NODE_NAME);
	CHECK(!d->placement.constraints.v[1].eq);
	CHECK_STR(d->placement.constraints.v[1].value, "n3");
	CHECK_EQ_INT(d->placement.constraints.v[2].what, CON_NODE_HOSTNAME);
	CHECK_EQ_INT(d->placement.max_replicas_per_node, 2);
	CHECK_EQ_INT(d->update.parallelism, 2);
	CHECK_EQ_INT(d->update.delay_ms, 10000);
	CHECK_EQ_INT(d->update.failure_action, FAIL_ROLLBACK);
	CHECK_EQ_INT(d->update.monitor_ms, 30000);
	CHECK(d->update.max_failure_ratio > 0.29 && d->update.max_failure_ratio < 0.31);
	CHECK_EQ_INT(d->update.order, ORDER_START_FIRST);
	CHECK_EQ_INT(d->rollback.parallelism, 0);
	CHECK_EQ_INT(d->rollback.failure_action, FAIL_CONTINUE);
	CHECK_EQ_INT(d->rollback.order, ORDER_STOP_FIRST);
	CHECK_EQ_INT(d->rollback.monitor_ms, 5000);
	CHECK_STR(labels_get(&d->labels, "com.example.description"), "web tier");
	CHECK(d->autoscale.enabled);
	CHECK_EQ_INT(d->autoscale.min, 2);
	CHECK_EQ_INT(d->autoscale.max, 10);
	CHECK_EQ_INT(d->autoscale.target_rps, 200);
	CHECK_EQ_INT(d->autoscale.target_cpu, 70);
	CHECK_EQ_INT(d->autoscale.scale_down_cooldown_ms, 300000);

	const struct svc_spec *db = spec_file_find(f, "db");
	CHECK(db == &f->svc[1]);
	CHECK_STR(labels_get(&db->env, "POSTGRES_PASSWORD"), "se=cret");
	CHECK_EQ_INT(db->entrypoint.n, 4);
	CHECK_STR(db->entrypoint.v[0], "docker-entrypoint.sh");
	CHECK_STR(db->entrypoint.v[1], "postgres");
	CHECK_STR(db->entrypoint.v[3], "shared_buffers=256MB");
	CHECK_STR(db->working_dir, "/var/lib/postgresql");
	CHECK_STR(db->user, "999:999");
	CHECK_STR(db->hostname, "db");
	CHECK_EQ_INT(db->network_mode, NET_HOST);
	CHECK_EQ_INT(db->healthcheck.kind, HC_CMD_SHELL);
	CHECK_EQ_INT(db->healthcheck.test.n, 1);
	CHECK_STR(db->healthcheck.test.v[0], "pg_isready -U postgres");
	CHECK(db->probe.enabled);
	CHECK_EQ_INT(db->probe.type, PROBE_TCP);
	CHECK_EQ_INT(db->probe.port, 5432);
	CHECK(db->probe.path == NULL);

	const struct svc_spec *api = spec_file_find(f, "api");
	CHECK_EQ_INT(api->healthcheck.kind, HC_NONE);
	CHECK(api->healthcheck.disable);
	CHECK_EQ_INT(api->probe.type, PROBE_HTTP);
	CHECK_STR(api->probe.path, "/");
	CHECK(spec_file_find(f, "nope") == NULL);
	spec_file_free(f);
}

UNIT(spec_defaults)
{
	struct spec_file *f = parse_ok("services:\n  app:\n    image: busybox\n");
	const struct svc_spec *s = &f->svc[0];
	CHECK(f->name == NULL);
	CHECK_EQ_INT(s->deploy.replicas, 1);
	CHECK_EQ_INT(s->deploy.restart.condition, RESTART_ANY);
	CHECK_EQ_INT(s->deploy.restart.delay_ms, 5000);
	CHECK_EQ_INT(s->deploy.restart.max_attempts, 0);
	CHECK_EQ_INT(s->stop_grace_ms, 10000);
	CHECK_EQ_INT(s->deploy.update.parallelism, 1);
	CHECK_EQ_INT(s->deploy.update.order, ORDER_STOP_FIRST);
	CHECK_EQ_INT(s->deploy.update.failure_action, FAIL_PAUSE);
	CHECK_EQ_INT(s->deploy.update.monitor_ms, 5000);
	CHECK_EQ_INT(s->deploy.rollback.parallelism, 1);
	CHECK_EQ_INT(s->healthcheck.kind, HC_INHERIT);
	CHECK_EQ_INT(s->healthcheck.interval_ms, 30000);
	CHECK_EQ_INT(s->healthcheck.retries, 3);
	CHECK_EQ_INT(s->network_mode, NET_BRIDGE);
	CHECK(!s->deploy.autoscale.enabled);
	CHECK_EQ_INT(s->deploy.limits.memory_bytes, 0);
	/* A parsed minimal spec is exactly svc_spec_init plus name and image. */
	struct svc_spec ref;
	svc_spec_init(&ref);
	ref.name = xstrdup("app");
	ref.image = xstrdup("busybox");
	CHECK(svc_spec_equal(&ref, s));
	svc_spec_free(&ref);
	spec_file_free(f);
}

UNIT(spec_typo_key_position)
{
	const char *e = parse_err("version: \"3\"\n"
				  "services:\n"
				  "  web:\n"
				  "    image: nginx\n"
				  "    ports: [\"80:80\"]\n"
				  "    deploy:\n"
				  "      replica: 3\n");
	CHECK_STR(e, "app.yml:7:7: services.web.deploy: unknown key \"replica\" (did you mean \"replicas\"?)");
	e = parse_err("services:\n  web:\n    image: nginx\n    enviroment: {A: b}\n");
	CHECK_STR(e, "app.yml:4:5: services.web: unknown key \"enviroment\" (did you mean \"environment\"?)");
	e = parse_err("services:\n  web:\n    image: nginx\n    deploy:\n      resources:\n        limits:\n"
		      "          memroy: 1g\n");
	CHECK_STR(e, "app.yml:7:11: services.web.deploy.resources.limits: unknown key \"memroy\" "
		     "(did you mean \"memory\"?)");
	e = parse_err("services:\n  web:\n    image: nginx\n    frobnicate: 1\n");
	CHECK_STR(e, "app.yml:4:5: services.web: unknown key \"frobnicate\"");
	e = parse_err("services:\n  web:\n    image: nginx\n    volumes_from: [db]\n");
	CHECK_HAS(e, "app.yml:4:5: services.web: key \"volumes_from\" is not supported by orch");
	e = parse_err("services:\n  web:\n    image: nginx\n    x-orch-autoscale: {max: 3}\n");
	CHECK_HAS(e, "app.yml:4:5: services.web: unknown orch extension \"x-orch-autoscale\"");
	/* the same key twice is an error, not "last one wins" */
	e = parse_err("services:\n  web:\n    image: nginx\n    image: httpd\n");
	CHECK_STR(e, "app.yml:4:5: services.web: duplicate key \"image\" (first at line 3)");
}

UNIT(spec_wrong_type_position)
{
	const char *e = parse_err("services:\n  web:\n    image: nginx\n    deploy:\n      replicas: \"three\"\n");
	CHECK_STR(e, "app.yml:5:17: services.web.deploy.replicas: expected a non-negative integer, got \"three\"");
	e = parse_err("services:\n  web:\n    image: nginx\n    deploy:\n      replicas: [1]\n");
	CHECK_STR(e, "app.yml:5:17: services.web.deploy.replicas: expected a non-negative integer, got a list");
	e = parse_err("services:\n  web:\n    image: nginx\n    deploy:\n      replicas: -1\n");
	CHECK_HAS(e, "app.yml:5:17: services.web.deploy.replicas:");
	e = parse_err("services:\n  web:\n    image: [nginx]\n");
	CHECK_STR(e, "app.yml:3:12: services.web.image: expected a string, got a list");
	e = parse_err("services:\n  web:\n    command: x\n");
	CHECK_STR(e, "app.yml:3:5: services.web: missing required key \"image\"");
	e = parse_err("services:\n  web:\n    image: x\n    deploy: 3\n");
	CHECK_STR(e, "app.yml:4:13: services.web.deploy: expected a mapping, got \"3\"");
	e = parse_err("services:\n  web:\n    image: x\n    environment:\n      A: [1]\n");
	CHECK_HAS(e, "app.yml:5:10: services.web.environment.A: expected a string, number or boolean, got a list");
	e = parse_err("services:\n  web:\n    image: x\n    environment:\n      - =x\n");
	CHECK_HAS(e, "app.yml:5:9: services.web.environment[0]: missing name before '='");
	e = parse_err("services:\n  web:\n    image: x\n    healthcheck:\n      disable: maybe\n");
	CHECK_HAS(e, "app.yml:5:16: services.web.healthcheck.disable: expected true or false");
	e = parse_err("services:\n  web:\n    image: x\n    healthcheck:\n      test: [\"CMD\"]\n");
	CHECK_HAS(e, "services.web.healthcheck.test: test must be");
	e = parse_err("services:\n  web:\n    image: x\n    deploy:\n      update_config:\n        order: random\n");
	CHECK_HAS(e, "app.yml:6:16: services.web.deploy.update_config.order: expected one of stop-first, start-first");
	e = parse_err("services:\n  web:\n    image: x\n    deploy:\n      mode: global\n      replicas: 3\n");
	CHECK_STR(e, "app.yml:5:7: services.web.deploy: replicas applies to mode replicated only (a global service runs one task per eligible node)");
	e = parse_err("services:\n  web:\n    image: x\n    deploy:\n      mode: sharded\n");
	CHECK_HAS(e, "app.yml:5:13: services.web.deploy.mode: expected one of replicated, global");
	e = parse_err("services:\n  web:\n    image: x\n    network_mode: none\n");
	CHECK_HAS(e, "services.web.network_mode: \"none\" is not supported by orch (supported: bridge, host)");
	e = parse_err("services:\n  web:\n    image: x\n    deploy:\n      x-orch-autoscale: {max: 2, min: 5, target_rps: 1}\n");
	CHECK_HAS(e, "app.yml:5:25: services.web.deploy.x-orch-autoscale: min (5) is greater than max (2)");
	e = parse_err("services:\n  web:\n    image: x\n    working_dir: relative\n");
	CHECK_HAS(e, "working_dir must be an absolute path");
	e = parse_err("services:\n  web:\n    image: x\n    deploy:\n      x-orch-rebalance: sometimes\n");
	CHECK_HAS(e, "app.yml:5:25: services.web.deploy.x-orch-rebalance:");
	e = parse_err("services:\n  web:\n    image: x\n    x-orch-rebalance: false\n");
	CHECK_HAS(e, "unknown orch extension \"x-orch-rebalance\"");
}

UNIT(spec_top_level_keys)
{
	const char *e = parse_err("servces:\n  web:\n    image: x\n");
	CHECK_STR(e, "app.yml:1:1: unknown key \"servces\" (did you mean \"services\"?)");
	e = parse_err("services:\n  web:\n    image: x\nnetworks:\n  default: {driver: macvlan}\n");
	CHECK_STR(e, "app.yml:5:21: networks.default.driver: \"macvlan\" is not supported by orch (supported: bridge, overlay)");
	e = parse_err("version: 3\nfoo: 1\nservices:\n  web:\n    image: x\n");
	CHECK_STR(e, "app.yml:2:1: unknown key \"foo\"");
	e = parse_err("name: Shop\nservices:\n  web:\n    image: x\n");
	CHECK_HAS(e, "app.yml:1:7: name: invalid project name \"Shop\"");
	e = parse_err("name: shop\n");
	CHECK_STR(e, "app.yml:1:1: missing required key \"services\"");
	e = parse_err("services: {}\n");
	CHECK_STR(e, "app.yml:1:11: services: no services defined");
	e = parse_err("- a\n- b\n");
	CHECK_HAS(e, "app.yml:1:1: expected a mapping with \"services:\" at the top level");
	e = parse_err("");
	CHECK_STR(e, "app.yml: the file is empty; expected \"services:\"");
	e = parse_err("# only a comment\n");
	CHECK_HAS(e, "the file is empty");
	e = parse_err("services:\n  web: {image: x}\n---\nservices:\n  db: {image: y}\n");
	CHECK_HAS(e, "more than one yaml document");
	/* x-* extensions are ignored at the top level and in services, with anchors */
	struct spec_file *f = parse_ok("x-env: &env\n  A: '1'\nservices:\n  web:\n    image: x\n    environment: *env\n");
	CHECK_STR(labels_get(&f->svc[0].env, "A"), "1");
	spec_file_free(f);
}

UNIT(spec_service_names)
{
	const char *bad[] = {"_web", "-web", "web.1", "we b",
			     "a1234567890123456789012345678901234567890123456789012345678901234"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char yml[256];
		snprintf(yml, sizeof yml, "services:\n  \"%s\":\n    image: x\n", bad[i]);
		CHECK_HAS(parse_err(yml), "app.yml:2:3: services: invalid service name");
	}
	CHECK(spec_name_valid("web"));
	CHECK(spec_name_valid("0web_1-x"));
	CHECK(spec_name_valid("a12345678901234567890123456789012345678901234567890123456789012"));
	CHECK(!spec_name_valid(""));
	struct spec_file *f = parse_ok("services:\n  web-1: {image: x}\n  web_2: {image: y}\n");
	CHECK_STR(f->svc[1].name, "web_2");
	spec_file_free(f);
	f = parse_ok("services:\n  WebApp: {image: x}\n"); /* Compose allows upper case; DNS ignores it */
	CHECK_STR(f->svc[0].name, "webapp");
	spec_file_free(f);
}

UNIT(spec_units)
{
	uint64_t v;
	CHECK_EQ_INT(parse_duration_ms("10s", &v), 0); CHECK_EQ_INT(v, 10000);
	CHECK_EQ_INT(parse_duration_ms("1m30s", &v), 0); CHECK_EQ_INT(v, 90000);
	CHECK_EQ_INT(parse_duration_ms("500ms", &v), 0); CHECK_EQ_INT(v, 500);
	CHECK_EQ_INT(parse_duration_ms("1.5s", &v), 0); CHECK_EQ_INT(v, 1500);
	CHECK_EQ_INT(parse_duration_ms("2h", &v), 0); CHECK_EQ_INT(v, 7200000);
	CHECK_EQ_INT(parse_duration_ms("1500us", &v), 0); CHECK_EQ_INT(v, 1);
	CHECK_EQ_INT(parse_duration_ms("0", &v), 0); CHECK_EQ_INT(v, 0);
	const char *bad_dur[] = {"", "10", "s", "10x", "-5s", "1.s", "1m30", "abc", "99999999999999999999h", "1 s"};
	for (size_t i = 0; i < sizeof bad_dur / sizeof bad_dur[0]; i++)
		CHECK_EQ_INT(parse_duration_ms(bad_dur[i], &v), -1);

	CHECK_EQ_INT(parse_bytes("16M", &v), 0); CHECK_EQ_INT(v, 16ULL << 20);
	CHECK_EQ_INT(parse_bytes("512m", &v), 0); CHECK_EQ_INT(v, 512ULL << 20);
	CHECK_EQ_INT(parse_bytes("1g", &v), 0); CHECK_EQ_INT(v, 1ULL << 30);
	CHECK_EQ_INT(parse_bytes("1.5GiB", &v), 0); CHECK_EQ_INT(v, 3ULL << 29);
	CHECK_EQ_INT(parse_bytes("1024", &v), 0); CHECK_EQ_INT(v, 1024);
	CHECK_EQ_INT(parse_bytes("100kb", &v), 0); CHECK_EQ_INT(v, 102400);
	CHECK_EQ_INT(parse_bytes("2 MB", &v), 0); CHECK_EQ_INT(v, 2ULL << 20);
	const char *bad_size[] = {"", "M", "1x", "1.5.5g", "-1g", "1gg", "99999999999p", "1 g b", "0x10"};
	for (size_t i = 0; i < sizeof bad_size / sizeof bad_size[0]; i++)
		CHECK_EQ_INT(parse_bytes(bad_size[i], &v), -1);

	CHECK_EQ_INT(parse_cpus_milli("0.5", &v), 0); CHECK_EQ_INT(v, 500);
	CHECK_EQ_INT(parse_cpus_milli("2", &v), 0); CHECK_EQ_INT(v, 2000);
	CHECK_EQ_INT(parse_cpus_milli("0.125", &v), 0); CHECK_EQ_INT(v, 125);
	CHECK_EQ_INT(parse_cpus_milli("1.5000", &v), 0); CHECK_EQ_INT(v, 1500);
	char t[32];
	format_duration_ms(90000, t, sizeof t); CHECK_STR(t, "1m30s");
	format_duration_ms(0, t, sizeof t); CHECK_STR(t, "0s");
	format_duration_ms(3723500, t, sizeof t); CHECK_STR(t, "1h2m3s500ms");
	format_cpus_milli(500, t, sizeof t); CHECK_STR(t, "0.5");
	format_cpus_milli(2000, t, sizeof t); CHECK_STR(t, "2");
	format_cpus_milli(1025, t, sizeof t); CHECK_STR(t, "1.025");
	format_cpus_milli(1050, t, sizeof t); CHECK_STR(t, "1.05");
	for (uint64_t x = 0; x < 5000000; x += 997) { /* formats read back exactly */
		uint64_t y;
		format_duration_ms(x * 37, t, sizeof t);
		CHECK_EQ_INT(parse_duration_ms(t, &y), 0);
		CHECK_EQ_INT(y, x * 37);
		format_cpus_milli(x, t, sizeof t);
		CHECK_EQ_INT(parse_cpus_milli(t, &y), 0);
		CHECK_EQ_INT(y, x);
	}
	const char *bad_cpu[] = {"", "half", "0.0005", "-1", "1e3", "2 cpus", ".", "99999999999"};
	for (size_t i = 0; i < sizeof bad_cpu / sizeof bad_cpu[0]; i++)
		CHECK_EQ_INT(parse_cpus_milli(bad_cpu[i], &v), -1);
}

UNIT(spec_bad_unit_values)
{
	const char *e = parse_err("services:\n  web:\n    image: x\n    deploy:\n      resources:\n        limits:\n"
				  "          memory: lots\n");
	CHECK_STR(e, "app.yml:7:19: services.web.deploy.resources.limits.memory: invalid size \"lots\" "
		     "(use e.g. \"512m\", \"1g\", \"1.5GiB\" or bytes)");
	e = parse_err("services:\n  web:\n    image: x\n    deploy:\n      resources:\n        limits:\n"
		      "          cpus: \"0.0001\"\n");
	CHECK_HAS(e, "app.yml:7:17: services.web.deploy.resources.limits.cpus: invalid cpus \"0.0001\"");
	e = parse_err("services:\n  web:\n    image: x\n    stop_grace_period: 10\n");
	CHECK_HAS(e, "app.yml:4:24: services.web.stop_grace_period: invalid duration \"10\"");
	e = parse_err("services:\n  web:\n    image: x\n    deploy:\n      update_config:\n        max_failure_ratio: 1.5\n");
	CHECK_HAS(e, "app.yml:6:28: services.web.deploy.update_config.max_failure_ratio: expected a number between 0 and 1");
}

UNIT(spec_ports)
{
	struct port_spec p;
	char msg[ERR_LEN];
	CHECK_EQ_INT(spec_parse_port("80", &p, msg), 0);
	CHECK_EQ_INT(p.target, 80); CHECK_EQ_INT(p.published, 0); CHECK_EQ_INT(p.protocol, PROTO_TCP);
	CHECK_EQ_INT(spec_parse_port("8080:80/tcp", &p, msg), 0);
	CHECK_EQ_INT(p.target, 80); CHECK_EQ_INT(p.published, 8080);
	CHECK_EQ_INT(spec_parse_port("53:53/udp", &p, msg), 0);
	CHECK_EQ_INT(p.protocol, PROTO_UDP);
	CHECK(spec_parse_port("127.0.0.1:8080:80", &p, msg) < 0);
	CHECK_HAS(msg, "host ip");
	CHECK(spec_parse_port("8000-8010:8000-8010", &p, msg) < 0);
	CHECK_HAS(msg, "ranges");
	const char *bad[] = {"", ":", "80:", ":80", "0", "65536", "80/sctp", "http", "8080:80/", "1:2:3"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(spec_parse_port(bad[i], &p, msg) < 0);

	struct spec_file *f = parse_ok("services:\n  web:\n    image: x\n    ports:\n      - 80\n      - 8080:81\n"
				       "      - {target: 82}\n      - {target: 83, published: \"9083\", protocol: udp}\n");
	const struct port_list *l = &f->svc[0].ports;
	CHECK_EQ_INT(l->n, 4);
	CHECK_EQ_INT(l->v[0].target, 80);
	CHECK_EQ_INT(l->v[1].published, 8080);
	CHECK_EQ_INT(l->v[2].target, 82);
	CHECK_EQ_INT(l->v[2].published, 0);
	CHECK_EQ_INT(l->v[2].mode, PORT_MODE_INGRESS);
	CHECK_EQ_INT(l->v[3].published, 9083);
	CHECK_EQ_INT(l->v[3].protocol, PROTO_UDP);
	spec_file_free(f);

	const char *e = parse_err("services:\n  web:\n    image: x\n    ports:\n      - \"127.0.0.1:80:80\"\n");
	CHECK_HAS(e, "app.yml:5:9: services.web.ports[0]: port \"127.0.0.1:80:80\": binding to a host ip is not supported");
	e = parse_err("services:\n  web:\n    image: x\n    ports:\n      - {published: 80}\n");
	CHECK_STR(e, "app.yml:5:9: services.web.ports[0]: missing required key \"target\"");
	e = parse_err("services:\n  web:\n    image: x\n    ports:\n      - {target: 70000}\n");
	CHECK_STR(e, "app.yml:5:18: services.web.ports[0].target: 70000 is out of range 1-65535");
	e = parse_err("services:\n  web:\n    image: x\n    ports:\n      - {target: 80, host_ip: 0.0.0.0}\n");
	CHECK_HAS(e, "services.web.ports[0]: key \"host_ip\" is not supported by orch");
	e = parse_err("services:\n  web:\n    image: x\n    ports: [\"80:80\", \"80:81\"]\n");
	CHECK_HAS(e, "services.web: port 80/tcp is published twice");
}

UNIT(spec_words_and_constraints)
{
	struct strv v;
	char msg[ERR_LEN];
	CHECK_EQ_INT(spec_split_words("  sh -c 'echo \"hi there\"' \"a\\\"b\" c\\ d ''", &v, msg), 0);
	CHECK_EQ_INT(v.n, 6);
	CHECK_STR(v.v[0], "sh");
	CHECK_STR(v.v[2], "echo \"hi there\"");
	CHECK_STR(v.v[3], "a\"b");
	CHECK_STR(v.v[4], "c d");
	CHECK_STR(v.v[5], ""); /* '' is an empty word, as in sh */
	strv_free(&v);
	CHECK(spec_split_words("echo 'unterminated", &v, msg) < 0);
	CHECK_HAS(msg, "unclosed quote");
	CHECK(spec_split_words("echo \"x", &v, msg) < 0);

	struct constraint c;
	char out[512];
	CHECK_EQ_INT(spec_parse_constraint("node.labels.disk==ssd", &c, msg), 0);
	spec_format_constraint(&c, out, sizeof out);
	CHECK_STR(out, "node.labels.disk == ssd");
	free(c.label);
	free(c.value);
	CHECK(spec_parse_constraint("node.role == boss", &c, msg) < 0);
	CHECK_HAS(msg, "node.role is manager or worker");
	CHECK(spec_parse_constraint("engine.labels.os == linux", &c, msg) < 0);
	CHECK_HAS(msg, "unsupported attribute \"engine.labels.os\"");
	static const char *const roundtrip[] = {"node.role == manager", "node.role != worker", "node.id == 1a2b3c4d",
						"node.platform.os == linux", "node.platform.arch != arm64", "node.hostname == h1"};
	for (size_t i = 0; i < sizeof roundtrip / sizeof roundtrip[0]; i++) {
		CHECK_EQ_INT(spec_parse_constraint(roundtrip[i], &c, msg), 0);
		spec_format_constraint(&c, out, sizeof out);
		CHECK_STR(out, roundtrip[i]);
		free(c.label);
		free(c.value);
	}
	CHECK(spec_parse_constraint("node.name = x", &c, msg) < 0);
	CHECK(spec_parse_constraint("node.name ==", &c, msg) < 0);
	CHECK(spec_parse_constraint("node.labels. == x", &c, msg) < 0);
	const char *e = parse_err("services:\n  web:\n    image: x\n    deploy:\n      placement:\n        constraints:\n"
				  "          - engine.labels.os == linux\n");
	CHECK_HAS(e, "app.yml:7:13: services.web.deploy.placement.constraints[0]: constraint");
}

static char *encode(const struct svc_spec *s, size_t *len)
{
	struct mpw w;
	mpw_init(&w);
	svc_spec_encode(s, &w);
	char *p = mpw_take(&w, len);
	mpw_free(&w);
	return p;
}

UNIT(spec_codec_roundtrip)
{
	struct spec_file *f = parse_ok(compose_yml);
	for (size_t i = 0; i < f->nsvc; i++) {
		size_t n1, n2;
		char *b1 = encode(&f->svc[i], &n1);
		struct mpr r;
		CHECK_EQ_INT(mpr_decode(&r, b1, n1), 0);
		struct svc_spec back;
		char err[ERR_LEN];
		int rc = svc_spec_decode(r.root, &back, err);
		if (rc)
			fprintf(stderr, "  %s\n", err);
		CHECK_EQ_INT(rc, 0);
		char *b2 = encode(&back, &n2);
		CHECK_EQ_INT(n1, n2);
		CHECK(!memcmp(b1, b2, n1));
		CHECK(svc_spec_equal(&back, &f->svc[i]));
		CHECK_STR(back.name, f->svc[i].name);
		CHECK_EQ_INT(back.deploy.placement.constraints.n, f->svc[i].deploy.placement.constraints.n);
		struct svc_spec cp;
		svc_spec_copy(&cp, &back);
		CHECK(svc_spec_equal(&cp, &f->svc[i]));
		svc_spec_free(&cp);
		svc_spec_free(&back);
		mpr_free(&r);
		free(b1);
		free(b2);
	}
	spec_file_free(f);
}

UNIT(spec_equal_and_changed)
{
	/* Same service written two ways: map vs list env, string vs list command, reordered keys. */
	struct spec_file *a = parse_ok("services:\n  web:\n    image: x\n    command: sh -c 'sleep 1'\n"
				       "    environment: {B: 2, A: 1}\n    deploy: {replicas: 1}\n");
	struct spec_file *b = parse_ok("services:\n  web:\n    environment: [A=1, B=2]\n    command: [sh, -c, sleep 1]\n"
				       "    image: x\n");
	struct spec_file *c = parse_ok("services:\n  web:\n    image: x\n    command: sh -c 'sleep 1'\n"
				       "    environment: {B: 2, A: 3}\n");
	struct spec_file *d = parse_ok("services:\n  web:\n    image: x\n    command: sh -c 'sleep 1'\n"
				       "    environment: {B: 2, A: 1}\n    healthcheck: {test: [NONE]}\n");
	struct spec_file *e = parse_ok("services:\n  web:\n    image: x\n    command: sh -c 'sleep 1'\n"
				       "    environment: {B: 2, A: 1}\n    healthcheck: {disable: true}\n");
	CHECK(svc_spec_equal(&a->svc[0], &b->svc[0]));
	CHECK(!svc_spec_equal(&a->svc[0], &c->svc[0]));
	CHECK(!svc_spec_equal(&a->svc[0], &d->svc[0]));
	CHECK(svc_spec_equal(&d->svc[0], &e->svc[0])); /* disable: true is test: [NONE] */
	spec_file_free(a);
	spec_file_free(b);
	spec_file_free(c);
	spec_file_free(d);
	spec_file_free(e);
}

UNIT(spec_decode_rejects_bad_input)
{
	char err[ERR_LEN];
	struct svc_spec s;
	struct mpw w;
	struct mpr r;
	size_t n;
	/* not a map */
	mpw_init(&w);
	mpw_u64(&w, 7);
	char *p = mpw_take(&w, &n);
	CHECK_EQ_INT(mpr_decode(&r, p, n), 0);
	CHECK(svc_spec_decode(r.root, &s, err) < 0);
	svc_spec_free(&s);
	mpr_free(&r);
	free(p);
	/* newer version */
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "v", 99);
	mpw_map_end(&w);
	p = mpw_take(&w, &n);
	CHECK_EQ_INT(mpr_decode(&r, p, n), 0);
	CHECK_EQ_INT(svc_spec_decode(r.root, &s, err), E_UNSUPP);
	CHECK_HAS(err, "upgrade orch");
	svc_spec_free(&s);
	mpr_free(&r);
	free(p);
	/* wrong types and out-of-range values, with missing keys defaulted */
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "v", SPEC_ENCODING_VERSION);
	mpw_kstr(&w, "image", "x");
	mpw_key(&w, "deploy");
	mpw_map_begin(&w);
	mpw_kstr(&w, "replicas", "three");
	mpw_map_end(&w);
	mpw_map_end(&w);
	p = mpw_take(&w, &n);
	CHECK_EQ_INT(mpr_decode(&r, p, n), 0);
	CHECK(svc_spec_decode(r.root, &s, err) < 0);
	CHECK_HAS(err, "deploy.replicas");
	svc_spec_free(&s);
	mpr_free(&r);
	free(p);
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "v", SPEC_ENCODING_VERSION);
	mpw_key(&w, "ports");
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_ku64(&w, "target", 70000);
	mpw_map_end(&w);
	mpw_map_end(&w);
	p = mpw_take(&w, &n);
	CHECK_EQ_INT(mpr_decode(&r, p, n), 0);
	CHECK(svc_spec_decode(r.root, &s, err) < 0);
	CHECK_HAS(err, "ports.target");
	svc_spec_free(&s);
	mpr_free(&r);
	free(p);
}

UNIT(spec_malformed_yaml)
{
	const char *e = parse_err("services:\n\tweb:\n    image: x\n");
	CHECK_STR(e, "app.yml:2:1: yaml syntax error: tab character; yaml indentation must use spaces");
	e = parse_err("services:\n  web:\n    image: \"nginx\n    ports: [80]\n");
	CHECK_HAS(e, "app.yml:");
	CHECK_HAS(e, "yaml syntax error: found unexpected end of stream (while scanning a quoted scalar at line 3 column 12)");
	e = parse_err("services:\n  web:\n    image: x\n   bad: indent\n");
	CHECK_HAS(e, "app.yml:4:");
	CHECK_HAS(e, "yaml syntax error");
	e = parse_err("services: [\n");
	CHECK_HAS(e, "yaml syntax error");
	e = parse_err("services:\n  web:\n    image: *nope\n");
	CHECK_HAS(e, "app.yml:3:12: yaml syntax error: found undefined alias");
	e = parse_err("services:\n  web:\n    image: \"\xff\"\n");
	CHECK_HAS(e, "invalid yaml");
	e = parse_err("services:\n  web:\n    image: \"a\\0b\"\n");
	CHECK_HAS(e, "app.yml:3:12: services.web.image: contains a NUL character");
	/* a merge key that refers to its own mapping must not loop */
	e = parse_err("services:\n  web: &w\n    image: x\n    <<: *w\n");
	CHECK_HAS(e, "merge keys (<<) nested too deeply");
}

UNIT(spec_parse_file)
{
	char path[] = "/tmp/orch-spec-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, compose_yml, strlen(compose_yml)), (long long)strlen(compose_yml));
	close(fd);
	struct spec_file *f = NULL;
	char err[ERR_LEN];
	int rc = spec_parse_file(path, &f, err);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(f->nsvc, 3);
	spec_file_free(f);
	fd = open(path, O_WRONLY | O_TRUNC);
	const char *bad = "services:\n  web:\n    image: x\n    deploy: {replica: 2}\n";
	CHECK_EQ_INT(write(fd, bad, strlen(bad)), (long long)strlen(bad));
	close(fd);
	CHECK(spec_parse_file(path, &f, err) < 0);
	char want[ERR_LEN];
	snprintf(want, sizeof want, "%s:4:14: services.web.deploy: unknown key \"replica\" (did you mean \"replicas\"?)", path);
	CHECK_STR(err, want);
	unlink(path);
	CHECK_EQ_INT(spec_parse_file(path, &f, err), E_IO);
	CHECK_HAS(err, path);
}

UNIT(spec_yaml_output)
{
	struct spec_file *f = parse_ok(compose_yml);
	size_t n;
	char *p = encode(&f->svc[0], &n);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, p, n), 0);
	struct buf out = {0};
	mp_to_yaml(r.root, &out);
	buf_append(&out, "", 1);
	const char *y = (const char *)out.data;
	CHECK_HAS(y, "name: web\n");
	CHECK_HAS(y, "replicas: 3\n");
	CHECK_HAS(y, "NGINX_PORT: \"80\"\n"); /* a string that looks like a number stays a string */
	CHECK_HAS(y, "DEBUG: \"false\"\n");
	CHECK_HAS(y, "max_failure_ratio: 0.3\n");
	CHECK_HAS(y, "stop_grace_period: 1m30s\n"); /* durations and cpus keep their units */
	CHECK_HAS(y, "cpus: \"0.5\"\n");
	CHECK_HAS(y, "memory: 536870912\n");
	CHECK_HAS(y, "- node.labels.zone == east\n");
	CHECK_HAS(y, "stop_signal: SIGQUIT\n");
	CHECK_HAS(y, "working_dir: null\n");
	/* The YAML output is itself valid YAML that libyaml reads back. */
	{
		struct mpw w;
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_kstr(&w, "empty", "");
		mpw_kstr(&w, "port", "8080:80");
		mpw_kstr(&w, "dur", "1m30s");
		mpw_key(&w, "m");
		mpw_map_begin(&w);
		mpw_map_end(&w);
		mpw_key(&w, "bin");
		mpw_bin(&w, "\x01\xff", 2);
		mpw_map_end(&w);
		size_t m;
		char *q = mpw_take(&w, &m);
		mpw_free(&w);
		struct mpr r2;
		CHECK_EQ_INT(mpr_decode(&r2, q, m), 0);
		struct buf o2 = {0};
		mp_to_yaml(r2.root, &o2);
		buf_append(&o2, "", 1);
		CHECK_STR((const char *)o2.data, "empty: \"\"\nport: \"8080:80\"\ndur: 1m30s\nm: {}\nbin: \"01ff\"\n");
		buf_free(&o2);
		mpr_free(&r2);
		free(q);
	}
	buf_free(&out);
	mpr_free(&r);
	free(p);
	spec_file_free(f);
}

/* xorshift: deterministic, so a failure reproduces. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* The placement and ordering keys, for the fuzzing below. */
static const char placement_yml[] =
	"services:\n"
	"  app:\n    image: a\n    depends_on:\n      db: {condition: service_healthy, restart: true}\n"
	"    networks:\n      back:\n        aliases: [api]\n      front:\n"
	"    deploy:\n      placement:\n        constraints: [\"node.role == worker\", \"node.labels.z != x\"]\n"
	"        preferences:\n          - spread: node.labels.zone\n"
	"  db:\n    image: d\n    networks: [back]\n    depends_on: [cache]\n"
	"  cache:\n    image: c\n    deploy: {mode: global}\n"
	"networks:\n  back:\n    driver: overlay\n  front: {external: true, name: shared}\n";

UNIT(spec_fuzz_never_crashes)
{
	static const char noise[] = ":-[]{}'\"\t\n #&*!|>%@`,?\\0aZ9.=<~\xff";
	spec_file_free(parse_ok(placement_yml)); /* both seeds parse as they are */
	size_t lens[2] = {strlen(compose_yml), strlen(placement_yml)};
	char *buf = xmalloc(lens[0] + lens[1] + 64);
	int parsed = 0, failed = 0;
	for (int iter = 0; iter < 2000; iter++) {
		size_t len = lens[iter % 2];
		memcpy(buf, iter % 2 ? placement_yml : compose_yml, len);
		size_t n = len;
		int kind = (int)(rnd() % 4);
		int edits = 1 + (int)(rnd() % 4);
		for (int e = 0; e < edits; e++) {
			size_t at = rnd() % n;
			if (kind == 0) { /* truncate */
				n = at;
				break;
			} else if (kind == 1) { /* replace a byte */
				buf[at] = noise[rnd() % (sizeof noise - 1)];
			} else if (kind == 2) { /* delete a range */
				size_t k = 1 + rnd() % 12;
				if (at + k > n)
					k = n - at;
				memmove(buf + at, buf + at + k, n - at - k);
				n -= k;
			} else { /* insert a byte */
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = noise[rnd() % (sizeof noise - 1)];
				n++;
			}
			if (n == 0)
				break;
		}
		struct spec_file *f = NULL;
		char err[ERR_LEN] = "";
		int rc = spec_parse_buf("fuzz.yml", buf, n, &f, err);
		if (rc == 0) {
			CHECK(f != NULL);
			parsed++;
			for (size_t i = 0; i < f->nsvc; i++) {
				/* whatever parses must survive the codec unchanged */
				size_t n1, n2;
				char *b1 = encode(&f->svc[i], &n1);
				struct mpr r;
				CHECK_EQ_INT(mpr_decode(&r, b1, n1), 0);
				struct svc_spec back;
				CHECK_EQ_INT(svc_spec_decode(r.root, &back, err), 0);
				char *b2 = encode(&back, &n2);
				CHECK(n1 == n2 && !memcmp(b1, b2, n1));
				/* and a mangled encoding must decode or fail cleanly */
				b1[rnd() % n1] = (char)rnd();
				struct mpr r2;
				if (mpr_decode(&r2, b1, n1) == 0) {
					struct svc_spec junk;
					svc_spec_decode(r2.root, &junk, err);
					svc_spec_free(&junk);
					mpr_free(&r2);
				}
				svc_spec_free(&back);
				mpr_free(&r);
				free(b1);
				free(b2);
			}
			spec_file_free(f);
		} else {
			CHECK(f == NULL);
			CHECK(!strncmp(err, "fuzz.yml", 8));
			failed++;
		}
	}
	free(buf);
	/* both outcomes must actually be exercised */
	CHECK(parsed > 50);
	CHECK(failed > 500);
}

/* ---- hardening keys (spec_security.c) ---- */

static const char secure_yml[] =
	"services:\n"
	"  web:\n"
	"    image: x\n"
	"    cap_add: [net_admin, CAP_SYS_PTRACE]\n"
	"    cap_drop: [ALL]\n"
	"    read_only: true\n"
	"    tmpfs: [/run, '/cache:size=16m,mode=0700,nosuid']\n"
	"    pids_limit: 100\n"
	"    ulimits:\n"
	"      nproc: 512\n"
	"      nofile: {soft: 1024, hard: 2048}\n"
	"      memlock: {soft: -1, hard: -1}\n"
	"    sysctls: {net.core.somaxconn: '1024', kernel.shmmax: '65536'}\n"
	"    security_opt: [seccomp=unconfined, 'no-new-privileges:false', apparmor=unconfined]\n";

UNIT(spec_security_keys_parse)
{
	struct spec_file *f = parse_ok(secure_yml);
	const struct svc_spec *s = &f->svc[0];
	CHECK_EQ_INT(s->cap_add.n, 2);
	CHECK_STR(s->cap_add.v[0], "CAP_NET_ADMIN");
	CHECK_STR(s->cap_add.v[1], "CAP_SYS_PTRACE");
	CHECK_STR(s->cap_drop.v[0], "ALL");
	CHECK(s->read_only);
	CHECK(!s->privileged);
	CHECK_EQ_INT(s->deploy.limits.pids, 100);
	CHECK_EQ_INT(s->mounts.n, 2);
	CHECK_EQ_INT(s->mounts.v[1].type, MOUNT_TMPFS);
	CHECK_STR(s->mounts.v[1].target, "/cache");
	CHECK_EQ_INT(s->mounts.v[1].tmpfs_size, 16 << 20);
	CHECK_EQ_INT(s->mounts.v[1].tmpfs_mode, 0700);
	CHECK_EQ_INT(s->ulimits.n, 3);
	CHECK_STR(s->ulimits.k[0], "memlock");
	CHECK_STR(s->ulimits.v[0], "-1:-1");
	CHECK_STR(s->ulimits.v[1], "1024:2048");
	CHECK_STR(s->ulimits.v[2], "512:512");
	CHECK_EQ_INT(s->sysctls.n, 2);
	CHECK_STR(s->seccomp, "unconfined");
	CHECK(s->new_privileges);
	char type[32];
	uint64_t soft, hard;
	CHECK(spec_ulimit("nofile", "1024:2048", type, &soft, &hard));
	CHECK_STR(type, "RLIMIT_NOFILE");
	CHECK_EQ_INT(soft, 1024);
	CHECK(!spec_ulimit("nofile", "2048:1024", type, &soft, &hard));
	CHECK(!spec_ulimit("bogus", "1", type, &soft, &hard));

	/* through the codec, and each key changes the spec (a rollout) */
	size_t n1, n2;
	char *b1 = encode(s, &n1);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, b1, n1), 0);
	struct svc_spec back;
	char err[ERR_LEN];
	CHECK_EQ_INT(svc_spec_decode(r.root, &back, err), 0);
	char *b2 = encode(&back, &n2);
	CHECK(n1 == n2 && !memcmp(b1, b2, n1));
	CHECK(svc_spec_equal(&back, s));
	svc_spec_free(&back);
	mpr_free(&r);
	free(b1);
	free(b2);
	const char *variants[] = {"    cap_add: [NET_RAW]\n", "    cap_drop: [NET_RAW]\n", "    privileged: true\n",
				  "    read_only: true\n", "    tmpfs: /run\n", "    pids_limit: 5\n",
				  "    ulimits: {nofile: 10}\n", "    sysctls: [net.ipv4.ip_forward=1]\n",
				  "    security_opt: [seccomp=unconfined]\n", "    security_opt: [no-new-privileges=false]\n"};
	struct spec_file *plain = parse_ok("services:\n  web:\n    image: x\n");
	CHECK(!plain->svc[0].new_privileges); /* no_new_privs by default */
	CHECK(!plain->svc[0].seccomp);
	CHECK_EQ_INT(plain->svc[0].deploy.limits.pids, 0); /* the agent's default then: 4096 */
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		char y[256];
		snprintf(y, sizeof y, "services:\n  web:\n    image: x\n%s", variants[i]);
		struct spec_file *v = parse_ok(y);
		if (svc_spec_equal(&v->svc[0], &plain->svc[0]))
			fprintf(stderr, "  %s changes nothing\n", variants[i]);
		CHECK(!svc_spec_equal(&v->svc[0], &plain->svc[0]));
		spec_file_free(v);
	}
	spec_file_free(plain);
	spec_file_free(f);
}

UNIT(spec_security_keys_refused)
{
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    cap_add: [NET_ADMINS]\n"),
		  "app.yml:3:5: services.web: cap_add: unknown capability \"NET_ADMINS\"");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    sysctls: {kernel.hostname: x}\n"),
		  "sysctls kernel.hostname: not a namespaced sysctl");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    sysctls: {vm.swappiness: '1'}\n"),
		  "sysctls vm.swappiness: not a namespaced sysctl");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    network_mode: host\n    sysctls: {net.core.somaxconn: '1'}\n"),
		  "network_mode: host");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    security_opt: [label=type:x]\n"),
		  "security_opt \"label=type:x\" is not supported");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    security_opt: [no-new-privileges:maybe]\n"),
		  "no-new-privileges[:true|false]");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    ulimits: {nofile: {soft: 10}}\n"), "give both soft and hard");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    ulimits: {nofile: {soft: 10, hard: 5}}\n"), "soft <= hard");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    ulimits: {fds: 10}\n"), "ulimits fds");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    tmpfs: ['/t:exec']\n"), "option \"exec\" is not supported");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    tmpfs: [rel]\n"), "absolute path");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    pids_limit: 5\n    deploy: {resources: {limits: {pids: 6}}}\n"),
		  "pids_limit 5 and deploy.resources.limits.pids 6 differ");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    pids_limit: 0\n"), "pids_limit");
	CHECK_HAS(parse_err("services:\n  web:\n    image: x\n    security_opt: [seccomp=/nonexistent/p.json]\n"),
		  "security_opt seccomp=/nonexistent/p.json: No such file");
}

UNIT(spec_seccomp_file)
{
	char dir[] = "/tmp/orch-sc-XXXXXX";
	CHECK(mkdtemp(dir));
	char *good = xasprintf("%s/good.json", dir), *bad = xasprintf("%s/bad.json", dir),
	     *docker = xasprintf("%s/docker.json", dir), *app = xasprintf("%s/app.yml", dir);
	FILE *f = fopen(good, "w");
	fputs("\n{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"keyctl\"], "
	      "\"action\": \"SCMP_ACT_ERRNO\"}]}\n", f);
	fclose(f);
	f = fopen(bad, "w");
	fputs("{\"defaultAction\": \"SCMP_ACT_ALLOW\",", f);
	fclose(f);
	f = fopen(docker, "w");
	fputs("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"mount\"], "
	      "\"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}}]}", f);
	fclose(f);
	const char *cases[][2] = {{"good.json", NULL}, {"bad.json", "not a JSON object"},
				  {"docker.json", "Docker's profile format"}};
	for (size_t i = 0; i < 3; i++) {
		f = fopen(app, "w");
		fprintf(f, "services:\n  web:\n    image: x\n    security_opt: [seccomp=%s]\n", cases[i][0]);
		fclose(f);
		struct spec_file *sf = NULL;
		char err[ERR_LEN] = "";
		int rc = spec_parse_file(app, &sf, err);
		if (!cases[i][1]) {
			CHECK_EQ_INT(rc, 0);
			CHECK(!strncmp(sf->svc[0].seccomp, "{\"defaultAction\"", 16)); /* the content, trimmed */
			spec_file_free(sf);
		} else {
			CHECK(rc < 0);
			CHECK_HAS(err, cases[i][1]);
			CHECK_HAS(err, cases[i][0]); /* names the file */
		}
	}
	char *cmd = xasprintf("rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(cmd);
	free(good);
	free(bad);
	free(docker);
	free(app);
}
