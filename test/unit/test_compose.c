/* The Compose front end: interpolation, .env files, several files merged, env_file,
 * extends, include, profiles, ignored keys, linear parsing of huge inputs, and every file of
 * the corpus under test/compose/corpus checked against the outcome it states. */
#include "unit.h"
#include "spec/compose.h"
#include "spec/dotenv.h"
#include "spec/interp.h"
#include "util/err.h"
#include "util/mem.h"
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHECK_HAS(s, sub) \
	do { const char *s_ = (s); if (!strstr(s_, (sub))) { \
		fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, s_, (sub)); exit(1); } } while (0)

static char *interp(const struct labels *env, const char *in)
{
	struct interp_res r;
	char msg[ERR_LEN];
	if (interp_string(in, env, &r, msg))
		return xstrdup(msg);
	return r.out;
}

UNIT(compose_interpolation_forms)
{
	struct labels env = {0};
	labels_set(&env, "TAG", "1.27");
	labels_set(&env, "EMPTY", "");
	labels_set(&env, "B", "bee");
	char *s;
#define EXPECT(in, want) do { s = interp(&env, in); CHECK_STR(s, want); free(s); } while (0)
	EXPECT("nginx:${TAG}", "nginx:1.27");
	EXPECT("nginx:$TAG-x", "nginx:1.27-x");
	EXPECT("${NOPE:-def}", "def");
	EXPECT("${EMPTY:-def}", "def");
	EXPECT("${EMPTY-def}", "");
	EXPECT("${NOPE-def}", "def");
	EXPECT("${NOPE:-${B}}", "bee");
	EXPECT("${NOPE:-${ALSO:-deep}}", "deep");
	EXPECT("${B:+yes}|${NOPE:+yes}|${EMPTY+set}", "yes||set");
	EXPECT("$$HOME $$$$ cost $5 $", "$HOME $$ cost $5 $");
	EXPECT("${NOPE}", "");
	EXPECT("${NOPE:?give NOPE a value}", "required variable NOPE is not set: give NOPE a value");
	EXPECT("${EMPTY:?}", "required variable EMPTY is empty");
	EXPECT("${EMPTY?}", "");
	EXPECT("${B", "invalid interpolation: \"${\" without its closing '}'");
	EXPECT("${1X}", "invalid interpolation \"${1X}\": expected a variable name (write $$ for a literal '$')");
	EXPECT("${B/x/y}", "invalid interpolation \"${B/x/y}\": after the name expected '}', :-, -, :?, ?, :+ or +");
#undef EXPECT
	struct interp_res r;
	char msg[ERR_LEN];
	CHECK_EQ_INT(interp_string("${PUBLIC_PORT}:80", &env, &r, msg), 0);
	CHECK_STR(r.out, ":80");
	CHECK_STR(r.unset, "PUBLIC_PORT");
	free(r.out);
	labels_free(&env);
}

UNIT(compose_dotenv_syntax)
{
	const char *text = "# comment\n\nexport A=1\nB = two words # note\nC='lit $A'\nD=\"x\\ny $A\"\n"
			   "E=${A}-${NOPE:-d}\nHOME\nM=\"multi\nline\"\n";
	struct labels outer = {0}, out = {0};
	labels_set(&outer, "HOME", "/root");
	char err[ERR_LEN];
	CHECK_EQ_INT(dotenv_parse("t.env", text, strlen(text), &outer, &out, err), 0);
	CHECK_STR(interp_lookup(&out, "A"), "1");
	CHECK_STR(interp_lookup(&out, "B"), "two words");
	CHECK_STR(interp_lookup(&out, "C"), "lit $A");
	CHECK_STR(interp_lookup(&out, "D"), "x\ny 1");
	CHECK_STR(interp_lookup(&out, "E"), "1-d");
	CHECK_STR(interp_lookup(&out, "HOME"), "/root");
	CHECK_STR(interp_lookup(&out, "M"), "multi\nline");
	labels_free(&out);
	const char *bad = "A=1\nB=\"open\n";
	CHECK(dotenv_parse("t.env", bad, strlen(bad), &outer, &out, err) < 0);
	CHECK_HAS(err, "t.env:2: B has an unterminated double quote");
	labels_free(&out);
	labels_free(&outer);
}

/* ---- files in a scratch directory ---- */

static char dir[256];

static void put(const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

static void scratch(void)
{
	snprintf(dir, sizeof dir, "/tmp/orch-compose-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	char p[512];
	snprintf(p, sizeof p, "%s/sub", dir);
	mkdir(p, 0755);
}

static void scratch_rm(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

/* Loads files (names in dir) with the given environment; err or "" */
static int load(const char *const *names, size_t n, char *const *envp, const char *const *profiles, size_t np,
		struct spec_file **f, char *err)
{
	char *paths[8];
	for (size_t i = 0; i < n; i++)
		paths[i] = !strcmp(names[i], "-") ? xstrdup("-") : xasprintf("%s/%s", dir, names[i]);
	struct compose_opts o = {.files = (const char *const *)paths, .nfiles = n, .environ = envp,
				 .profiles = profiles, .nprofiles = np};
	char project[64];
	err[0] = 0;
	int rc = compose_load(&o, f, project, err);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	return rc;
}

static const char *env_of(const struct svc_spec *s, const char *k)
{
	return interp_lookup(&s->env, k);
}

UNIT(compose_env_files_and_interpolation)
{
	scratch();
	put(".env", "TAG=1.27\nDB_PW=from-dotenv\nPORT=8080\n");
	put("sub/app.env", "# app settings\nMODE=prod\nLEVEL=info\n");
	put("compose.yaml",
	    "services:\n"
	    "  web:\n"
	    "    image: \"nginx:${TAG}\"\n"
	    "    ports: [\"${PORT}:80\"]\n"
	    "    env_file: sub/app.env\n"
	    "    environment:\n"
	    "      LEVEL: debug\n"
	    "      PW: ${DB_PW}\n"
	    "      HOME_FROM_SHELL:\n"
	    "      UNSET_IS_DROPPED:\n"
	    "      LITERAL: $$NOT\n"
	    "    env_file_missing_is_fine: &x 1\n");
	char err[ERR_LEN];
	struct spec_file *f = NULL;
	const char *files[] = {"compose.yaml"};
	char *shell[] = {"DB_PW=from-shell", "HOME_FROM_SHELL=/root", NULL};
	CHECK(load(files, 1, shell, NULL, 0, &f, err) < 0); /* the unknown key */
	CHECK_HAS(err, "compose.yaml:12:5: services.web: unknown key \"env_file_missing_is_fine\"");
	put("compose.yaml",
	    "services:\n"
	    "  web:\n"
	    "    image: \"nginx:${TAG}\"\n"
	    "    ports: [\"${PORT}:80\"]\n"
	    "    env_file: sub/app.env\n"
	    "    environment:\n"
	    "      LEVEL: debug\n"
	    "      PW: ${DB_PW}\n"
	    "      HOME_FROM_SHELL:\n"
	    "      UNSET_IS_DROPPED:\n"
	    "      LITERAL: $$NOT\n");
	CHECK_EQ_INT(load(files, 1, shell, NULL, 0, &f, err), 0);
	const struct svc_spec *w = &f->svc[0];
	CHECK_STR(w->image, "nginx:1.27");
	CHECK(w->ports.n == 1 && w->ports.v[0].published == 8080);
	CHECK_STR(env_of(w, "MODE"), "prod");
	CHECK_STR(env_of(w, "LEVEL"), "debug"); /* environment: wins over env_file: */
	CHECK_STR(env_of(w, "PW"), "from-shell"); /* the shell wins over .env */
	CHECK_STR(env_of(w, "HOME_FROM_SHELL"), "/root");
	CHECK(env_of(w, "UNSET_IS_DROPPED") == NULL);
	CHECK_STR(env_of(w, "LITERAL"), "$NOT");
	spec_file_free(f);

	/* an unset variable that makes a value invalid is named in the error */
	put(".env", "TAG=1\n");
	CHECK(load(files, 1, NULL, NULL, 0, &f, err) < 0);
	CHECK_HAS(err, "compose.yaml:4:13: services.web.ports[0]:");
	CHECK_HAS(err, "PORT is not set (from \"${PORT}:80\")");
	/* a required variable: its name, its message and its place */
	put("compose.yaml", "services:\n  db:\n    image: postgres\n    environment:\n"
			    "      POSTGRES_PASSWORD: ${DB_PW:?set DB_PW in .env}\n");
	CHECK(load(files, 1, NULL, NULL, 0, &f, err) < 0);
	CHECK_HAS(err, "/compose.yaml:5:26: required variable DB_PW is not set: set DB_PW in .env");
	/* a missing env_file is an error unless required: false */
	put("compose.yaml", "services:\n  db:\n    image: postgres\n    env_file: [{path: none.env, required: false}]\n");
	CHECK_EQ_INT(load(files, 1, NULL, NULL, 0, &f, err), 0);
	spec_file_free(f);
	put("compose.yaml", "services:\n  db:\n    image: postgres\n    env_file: none.env\n");
	CHECK(load(files, 1, NULL, NULL, 0, &f, err) < 0);
	CHECK_HAS(err, "compose.yaml:4:15: services.db.env_file: open ");
	scratch_rm();
}

UNIT(compose_files_merged_in_order)
{
	scratch();
	put("compose.yaml",
	    "name: shop\n"
	    "services:\n"
	    "  web:\n"
	    "    image: web:1\n"
	    "    command: [\"serve\", \"--dev\"]\n"
	    "    ports: [\"8080:80\", \"9090:90\"]\n"
	    "    environment: [A=1, B=2]\n"
	    "    labels: {tier: front}\n"
	    "    dns: [10.0.0.1]\n"
	    "  db:\n"
	    "    image: postgres:16\n");
	put("sub/prod.yaml",
	    "services:\n"
	    "  web:\n"
	    "    image: web:2\n"
	    "    command: [\"serve\"]\n"
	    "    ports: [\"8080:80\", \"443:443\"]\n"
	    "    environment: {B: \"20\", C: \"3\"}\n"
	    "    dns: [10.0.0.2]\n"
	    "    deploy: {replicas: 3}\n"
	    "    env_file: sub/prod.env\n"
	    "  db:\n"
	    "    labels: !reset {}\n"
	    "  cache:\n"
	    "    image: redis\n");
	put("sub/prod.env", "FROM_PROD_ENV=1\n");
	const char *files[] = {"compose.yaml", "sub/prod.yaml"};
	char err[ERR_LEN];
	struct spec_file *f = NULL;
	CHECK_EQ_INT(load(files, 2, NULL, NULL, 0, &f, err), 0);
	CHECK_STR(f->name, "shop");
	CHECK(f->nsvc == 3);
	const struct svc_spec *w = spec_file_find(f, "web");
	CHECK_STR(w->image, "web:2");
	CHECK(w->command.n == 1); /* command is replaced, not appended */
	CHECK(w->ports.n == 3);   /* 8080:80 once, 9090:90, 443:443 */
	CHECK_STR(env_of(w, "A"), "1");
	CHECK_STR(env_of(w, "B"), "20");
	CHECK_STR(env_of(w, "C"), "3");
	CHECK(w->dns.n == 2); /* other lists are appended */
	CHECK(w->deploy.replicas == 3);
	/* an override file's paths are relative to the first file, as in Compose */
	CHECK_STR(env_of(w, "FROM_PROD_ENV"), "1");
	CHECK(spec_file_find(f, "cache") != NULL);
	spec_file_free(f);
	/* standard input as a later file */
	const char *stdin_files[] = {"-"};
	const char *over = "services:\n  web:\n    image: from-stdin\n";
	struct compose_opts o = {.files = stdin_files, .nfiles = 1, .data = over, .data_len = strlen(over)};
	CHECK_EQ_INT(compose_load(&o, &f, NULL, err), 0);
	CHECK_STR(f->svc[0].image, "from-stdin");
	spec_file_free(f);
	scratch_rm();
}

UNIT(compose_extends_include_profiles_ignored_keys)
{
	scratch();
	put("common.yaml",
	    "services:\n"
	    "  base:\n"
	    "    image: app:1\n"
	    "    environment: {LOG: info}\n"
	    "    env_file: sub/base.env\n");
	put("sub/base.env", "FROM_BASE=yes\n");
	put("sub/inc.yaml", "services:\n  metrics:\n    image: prom/prometheus\n    ports: [\"${MPORT}:9090\"]\n");
	put("sub/.env", "MPORT=9091\n");
	put("compose.yaml",
	    "include:\n"
	    "  - sub/inc.yaml\n"
	    "services:\n"
	    "  api:\n"
	    "    extends: {file: common.yaml, service: base}\n"
	    "    environment: {LOG: debug}\n"
	    "  worker:\n"
	    "    extends: api\n"
	    "    command: work\n"
	    "  Admin:\n"
	    "    build: ./admin\n"
	    "    container_name: admin1\n"
	    "    links: [api]\n"
	    "    restart: on-failure:4\n"
	    "    expose: [\"8000\", 9000-9001/udp]\n"
	    "    extra_hosts: [\"db.local:10.1.2.3\", \"v6=::1\"]\n"
	    "  debug:\n"
	    "    image: busybox\n"
	    "    profiles: [debug]\n");
	const char *files[] = {"compose.yaml"};
	char err[ERR_LEN];
	struct spec_file *f = NULL;
	CHECK_EQ_INT(load(files, 1, NULL, NULL, 0, &f, err), 0);
	CHECK(spec_file_find(f, "debug") == NULL);
	const struct svc_spec *api = spec_file_find(f, "api"), *wk = spec_file_find(f, "worker");
	CHECK(api && wk);
	CHECK_STR(api->image, "app:1");
	CHECK_STR(env_of(api, "LOG"), "debug");
	CHECK_STR(env_of(api, "FROM_BASE"), "yes"); /* env_file relative to common.yaml */
	CHECK_STR(wk->command.v[0], "work");
	CHECK_STR(env_of(wk, "LOG"), "debug");
	const struct svc_spec *m = spec_file_find(f, "metrics");
	CHECK(m && m->ports.v[0].published == 9091); /* the included file's own .env */
	const struct svc_spec *ad = spec_file_find(f, "admin"); /* names are lowercased */
	CHECK(ad != NULL);
	char want[128];
	snprintf(want, sizeof want, "%s-admin", strrchr(dir, '/') + 1);
	for (char *p = want; *p; p++)
		*p = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ? *p : '-');
	CHECK_STR(ad->image, want);
	CHECK(ad->deploy.restart.condition == RESTART_ON_FAILURE && ad->deploy.restart.max_attempts == 4);
	CHECK_STR(interp_lookup(&ad->extra_hosts, "db.local"), "10.1.2.3");
	CHECK_STR(interp_lookup(&ad->extra_hosts, "v6"), "::1");
	spec_file_free(f);
	const char *prof[] = {"debug"};
	CHECK_EQ_INT(load(files, 1, NULL, prof, 1, &f, err), 0);
	CHECK(spec_file_find(f, "debug") != NULL);
	spec_file_free(f);
	char *envp[] = {"COMPOSE_PROFILES=other,debug", NULL};
	CHECK_EQ_INT(load(files, 1, envp, NULL, 0, &f, err), 0);
	CHECK(spec_file_find(f, "debug") != NULL);
	spec_file_free(f);
	char *named[] = {"COMPOSE_PROJECT_NAME=Acme", NULL};
	CHECK_EQ_INT(load(files, 1, named, NULL, 0, &f, err), 0);
	CHECK_STR(spec_file_find(f, "admin")->image, "acme-admin");
	spec_file_free(f);
	/* restart_policy wins over restart: */
	put("compose.yaml", "services:\n  a:\n    image: x\n    restart: \"no\"\n    deploy:\n      restart_policy: {condition: any}\n");
	CHECK_EQ_INT(load(files, 1, NULL, NULL, 0, &f, err), 0);
	CHECK(f->svc[0].deploy.restart.condition == RESTART_ANY);
	spec_file_free(f);
	put("compose.yaml", "services:\n  a:\n    image: x\n    restart: sometimes\n");
	CHECK(load(files, 1, NULL, NULL, 0, &f, err) < 0);
	CHECK_HAS(err, "compose.yaml:3:5: services.a: restart \"sometimes\": expected no, always");
	put("compose.yaml", "services:\n  a:\n    extends: b\n  b:\n    extends: a\n");
	CHECK(load(files, 1, NULL, NULL, 0, &f, err) < 0);
	CHECK_HAS(err, "a loop?");
	put("compose.yaml", "services:\n  web:\n    image: x\n  Web:\n    image: y\n");
	CHECK(load(files, 1, NULL, NULL, 0, &f, err) < 0);
	CHECK_HAS(err, "services: \"Web\" and \"web\" are one name");
	put("compose.yaml", "services:\n  a:\n    image: x\n    platform: windows/amd64\n");
	CHECK(load(files, 1, NULL, NULL, 0, &f, err) < 0);
	CHECK_HAS(err, "orch runs linux containers only");
	scratch_rm();
}

UNIT(compose_warnings_name_their_place)
{
	scratch();
	put("compose.yaml",
	    "services:\n"
	    "  web:\n"
	    "    build: .\n"
	    "    image: web${WEB_TAG}\n"
	    "    container_name: w1\n"
	    "  job:\n"
	    "    build: {context: ./job}\n"
	    "    links: [web]\n");
	char *text = NULL, err[ERR_LEN];
	size_t len = 0;
	FILE *w = open_memstream(&text, &len);
	char *path = xasprintf("%s/compose.yaml", dir);
	const char *files[] = {path};
	struct compose_opts o = {.files = files, .nfiles = 1, .warn = w, .project = "Shop"};
	struct spec_file *f = NULL;
	char project[64];
	CHECK_EQ_INT(compose_load(&o, &f, project, err), 0);
	fclose(w);
	CHECK_STR(project, "shop");
	CHECK_HAS(text, "compose.yaml:4:12: variable WEB_TAG is not set; using an empty string");
	CHECK_HAS(text, "compose.yaml:3:5: services.web: build is ignored; the image comes from image: web");
	CHECK_HAS(text, "compose.yaml:5:5: services.web: container_name is ignored");
	CHECK_HAS(text, "compose.yaml:7:5: services.job: build is ignored; the service uses image shop-job");
	CHECK_HAS(text, "compose.yaml:8:5: services.job: links is ignored");
	CHECK_STR(spec_file_find(f, "job")->image, "shop-job");
	spec_file_free(f);
	free(text);
	free(path);
	scratch_rm();
}

UNIT(compose_keys_that_cannot_apply_say_so)
{
	const char *keys[] = {"develop: {}", "runtime: runsc", "volumes_from: [db]", "ipc: host", "pid: host",
			      "cgroup_parent: x", "userns_mode: host", "gpus: all", "mem_limit: 1g", "devices: [/dev/x]"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char y[256], err[ERR_LEN], want[128];
		snprintf(y, sizeof y, "services:\n  web:\n    image: x\n    %s\n", keys[i]);
		struct spec_file *f = NULL;
		CHECK(spec_parse_buf("app.yml", y, strlen(y), &f, err) < 0);
		snprintf(want, sizeof want, "app.yml:4:5: services.web: key \"%.*s\" is not supported by orch",
			 (int)strcspn(keys[i], ":"), keys[i]);
		CHECK_HAS(err, want);
	}
}

UNIT(compose_platform_against_the_node)
{
	char here[64];
	CHECK(spec_platform_matches("linux/amd64", "x86_64", here, sizeof here));
	CHECK_STR(here, "linux/amd64");
	CHECK(spec_platform_matches("linux/arm64/v8", "aarch64", here, sizeof here));
	CHECK(!spec_platform_matches("linux/arm64", "x86_64", here, sizeof here));
	CHECK(!spec_platform_matches("linux/amd", "x86_64", here, sizeof here));
	CHECK(!spec_platform_matches("windows/amd64", "x86_64", here, sizeof here));
}

/* ---- linear parsing ---- */

static double secs(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

UNIT(compose_huge_inputs_parse_linearly)
{
	struct buf b = {0};
	buf_printf(&b, "x-big:\n");
	for (int i = 0; i < 200000; i++)
		buf_printf(&b, "  k%d: %d\n", i, i);
	buf_printf(&b, "services:\n  web:\n    image: x\n    environment:\n");
	for (int i = 0; i < 200000; i++)
		buf_printf(&b, "      K%d: v\n", i);
	struct spec_file *f = NULL;
	char err[ERR_LEN];
	double t0 = secs();
	CHECK_EQ_INT(spec_parse_buf("big.yml", (const char *)b.data, b.len, &f, err), 0);
	printf("  200,000 environment keys + 200,000 other keys (%zu KB): %.2f s\n", b.len >> 10, secs() - t0);
	CHECK(f->svc[0].env.n == 200000);
	spec_file_free(f);
	/* a duplicate among them is still found, and where */
	buf_printf(&b, "      K7: again\n");
	CHECK(spec_parse_buf("big.yml", (const char *)b.data, b.len, &f, err) < 0);
	CHECK_HAS(err, "duplicate key \"K7\" (first at line 200013)");
	buf_free(&b);

	struct buf d = {0};
	buf_printf(&d, "services: {web: {image: x}}\nx-deep: ");
	for (int i = 0; i < 100000; i++)
		buf_append(&d, "[", 1);
	for (int i = 0; i < 100000; i++)
		buf_append(&d, "]", 1);
	buf_printf(&d, "\n");
	t0 = secs();
	CHECK(spec_parse_buf("deep.yml", (const char *)d.data, d.len, &f, err) < 0);
	printf("  100,000 nested brackets refused: %.3f s\n", secs() - t0);
	CHECK_HAS(err, "deep.yml:2:");
	CHECK_HAS(err, "nested more than 64 levels deep");
	buf_free(&d);
}

/* ---- the corpus ---- */

/* Every corpus file states "# expect: ok" or "# expect: error SUBSTRING"; "# env: K=V",
 * "# profile: NAME" and "# also: FILE" lines set the environment, profiles and later -f
 * files. A directory holds one project: its compose.yaml (with its .env) is the case. */
static void corpus_case(const char *path)
{
	FILE *fp = fopen(path, "r");
	CHECK(fp != NULL);
	char line[512], expect[512] = "";
	char *envs[16] = {0}, *profs[8], *also[8];
	size_t ne = 0, np = 0, na = 0;
	while (fgets(line, sizeof line, fp)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "# expect: ", 10))
			snprintf(expect, sizeof expect, "%s", line + 10);
		else if (!strncmp(line, "# env: ", 7) && ne < 15)
			envs[ne++] = xstrdup(line + 7);
		else if (!strncmp(line, "# profile: ", 11) && np < 8)
			profs[np++] = xstrdup(line + 11);
		else if (!strncmp(line, "# also: ", 8) && na < 7)
			also[na++] = xstrdup(line + 8);
	}
	fclose(fp);
	if (!expect[0]) {
		fprintf(stderr, "  %s: no \"# expect:\" line\n", path);
		exit(1);
	}
	const char *files[8] = {path};
	char *owned[8];
	for (size_t i = 0; i < na; i++) {
		char *d = xstrdup(path);
		*strrchr(d, '/') = 0;
		owned[i] = xasprintf("%s/%s", d, also[i]);
		files[i + 1] = owned[i];
		free(d);
	}
	struct compose_opts o = {.files = files, .nfiles = 1 + na, .environ = envs, .profiles = (const char *const *)profs,
				 .nprofiles = np};
	struct spec_file *f = NULL;
	char err[ERR_LEN] = "", project[64];
	int rc = compose_load(&o, &f, project, err);
	bool ok = !strcmp(expect, "ok") ? rc == 0 : !strncmp(expect, "error ", 6) && rc < 0 && strstr(err, expect + 6);
	if (!ok) {
		fprintf(stderr, "  %s: expected %s, got %s\n", path, expect, rc ? err : "ok");
		exit(1);
	}
	/* nothing of a reference survives interpolation */
	for (size_t i = 0; !rc && i < f->nsvc; i++) {
		const struct svc_spec *sv = &f->svc[i];
		bool left = strstr(sv->image, "${") != NULL;
		for (size_t j = 0; j < sv->env.n; j++)
			left |= strstr(sv->env.v[j], "${") != NULL;
		for (size_t j = 0; j < sv->command.n; j++)
			left |= strstr(sv->command.v[j], "${") != NULL;
		if (left) {
			fprintf(stderr, "  %s: service %s keeps a ${...} reference\n", path, sv->name);
			exit(1);
		}
	}
	printf("  %-60s %s\n", strstr(path, "corpus/") ? strstr(path, "corpus/") + 7 : path, rc ? "error (as expected)" : "ok");
	spec_file_free(f);
	for (size_t i = 0; i < ne; i++)
		free(envs[i]);
	for (size_t i = 0; i < np; i++)
		free(profs[i]);
	for (size_t i = 0; i < na; i++) {
		free(also[i]);
		free(owned[i]);
	}
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

UNIT(compose_corpus_outcomes)
{
	char root[512];
	snprintf(root, sizeof root, "%s", __FILE__);
	*strrchr(root, '/') = 0; /* test/unit */
	*strrchr(root, '/') = 0; /* test */
	strcat(root, "/compose/corpus");
	struct dirent **ents;
	int n = scandir(root, &ents, NULL, by_name);
	CHECK(n > 0);
	int cases = 0;
	for (int i = 0; i < n; i++) {
		const char *nm = ents[i]->d_name;
		char p[1024];
		size_t l = strlen(nm);
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", root, nm);
		if (nm[0] != '.' && !stat(p, &st) && S_ISDIR(st.st_mode)) {
			snprintf(p, sizeof p, "%s/%s/compose.yaml", root, nm);
			corpus_case(p);
			cases++;
		} else if (l > 4 && (!strcmp(nm + l - 4, ".yml") || !strcmp(nm + l - 5, ".yaml")) && !strstr(nm, ".part.")) {
			corpus_case(p);
			cases++;
		}
		free(ents[i]);
	}
	free(ents);
	printf("  %d corpus files checked\n", cases);
	CHECK(cases >= 30);
}
