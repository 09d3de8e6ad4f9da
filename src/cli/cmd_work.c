/* orch deploy, rm, services, inspect, ps, scale, logs, image. */
#include "cli/cli.h"
#include "image/ref.h"
#include "image/image_load.h"
#include "spec/compose.h"
#include "spec/spec.h"
#include "state/store.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* -o FMT, -oFMT, --output FMT, --output=FMT at argv[*i]: 1 when consumed (i advanced),
 * 0 when not an output option, or an exit code (> 1) on a bad value. */
int cli_output_opt(const char *cmd, int argc, char **argv, int *i, enum out_fmt *fmt)
{
	const char *a = argv[*i], *v = NULL;
	if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
		if (*i + 1 >= argc)
			return cli_usage(cmd, "%s needs a format: table, json or yaml", a);
		v = argv[++*i];
	} else if (!strncmp(a, "--output=", 9))
		v = a + 9;
	else if (!strncmp(a, "-o", 2) && a[2])
		v = a + 2;
	else
		return 0;
	if (out_parse_fmt(v, fmt))
		return cli_usage(cmd, "-o %s: expected table, json or yaml", v);
	return 1;
}


/* ---- deploy ---------------------------------------------------------------------------------- */

/* Whether the stored spec equals sp apart from deploy.replicas (the service.put rule: a
 * change of replicas alone is a scale, not a new generation). */
static bool spec_bytes_equal(const msgpack_object *stored, const struct svc_spec *sp)
{
	struct mpw a, b;
	mpw_init(&a);
	mpw_init(&b);
	msgpack_pack_object(&a.pk, *stored);
	struct svc_spec same = *sp; /* shallow: only encoded, never freed */
	mp_get_u64(mp_get(stored, "deploy"), "replicas", &same.deploy.replicas);
	/* the leader pinned a registry image to its digest (node/resolve.h): the same name is
	 * the same image for the plan (the deploy itself asks the registry again) */
	char img[600], want[600], e[ERR_LEN];
	if (!mp_get_strbuf(stored, "image", img, sizeof img) && strchr(img, '@') && sp->image &&
	    !image_ref_normalise(sp->image, want, sizeof want, e) && !strncmp(img, want, strlen(want)) &&
	    img[strlen(want)] == '@')
		same.image = img;
	svc_spec_encode(&same, &b);
	bool eq = a.sb.size == b.sb.size && !memcmp(a.sb.data, b.sb.data, a.sb.size);
	mpw_free(&a);
	mpw_free(&b);
	return eq;
}

/* A task's state and desired state as a node's reply names them (TS_NONE, TD_NONE when
 * unknown to this binary). */
static enum task_state state_of(const msgpack_object *t)
{
	const msgpack_object *o = mp_get(t, "state");
	int v = mp_is_str(o) ? lifecycle_parse(&lifecycle_task, o->via.str.ptr, o->via.str.size) : -1;
	return v > 0 ? (enum task_state)v : TS_NONE;
}

static bool wanted_running(const msgpack_object *t)
{
	const msgpack_object *o = mp_get(t, "desired");
	return mp_is_str(o) && lifecycle_parse(&lifecycle_desired, o->via.str.ptr, o->via.str.size) == TD_RUNNING;
}

/* A restart waiting out its back-off: its error column says why the previous task ended,
 * yet it is on its way. */
static bool restart_waits(const msgpack_object *t)
{
	uint64_t after = 0, now = 0;
	mp_get_u64(t, "start_after", &after);
	mp_get_u64(t, "now", &now);
	return after > now;
}

/* A pending task held by its service's depends_on (orchestrator/depends.h) is on its way. */
static bool depends_waits(const char *err)
{
	return !strncmp(err, "waiting for ", 12);
}

/* A global service's desired count is its live tasks (one per eligible node). */
static bool spec_global(const msgpack_object *spec)
{
	char mode[32];
	return !mp_get_strbuf(mp_get(spec, "deploy"), "mode", mode, sizeof mode) && !strcmp(mode, "global");
}

/* Is some service of the file short of replicas with no task in progress? why: the last
 * error seen. */
static bool stuck(struct cli *cli, const struct spec_file *sf, char *why, size_t n)
{
	struct req_tasks q = {.all = true};
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_TASKS, &q, &r, 5000);
	if (rc)
		return false;
	bool any_stuck = false;
	const msgpack_object *tl = mp_get(r.root, "tasks");
	for (size_t i = 0; i < sf->nsvc; i++) {
		uint64_t running = 0, moving = 0;
		for (uint32_t k = 0; tl && k < tl->via.array.size; k++) {
			const msgpack_object *t = &tl->via.array.ptr[k];
			char svc[128], er[256];
			mp_str_or(t, "service", svc, sizeof svc, "");
			if (strcmp(svc, sf->svc[i].name))
				continue;
			enum task_state st = state_of(t);
			bool want = wanted_running(t);
			mp_str_or(t, "err", er, sizeof er, "");
			if (want && st == TS_RUNNING)
				running++;
			else if (want && st != TS_NONE && st < TS_RUNNING &&
				 !(st == TS_PENDING && er[0] && !restart_waits(t) && !depends_waits(er))) /* pending with a reason: unschedulable */
				moving++;
			if (er[0] && (st == TS_FAILED || st == TS_REJECTED || st == TS_PENDING))
				snprintf(why, n, "%s: %s", svc, er);
		}
		if (running < sf->svc[i].deploy.replicas && !moving)
			any_stuck = true;
	}
	mpr_free(&r);
	return any_stuck;
}

/* --wait: until every service of the file has all its replicas running and its rollout
 * settled; a progress line on a terminal. */
static int wait_running(struct cli *cli, const struct spec_file *sf)
{
	bool tty = isatty(1);
	uint64_t deadline = now_ms() + 10 * 60 * 1000;
	int stuck_rounds = 0, ok_rounds = 0;
	for (;;) {
		struct mpr r;
		int rc = cli_rpc_retry(cli, OP_SERVICES, NULL, &r, 5000);
		if (rc)
			return rc;
		const msgpack_object *sl = mp_get(r.root, "services");
		uint64_t want = 0, have = 0;
		bool paused = false;
		for (size_t i = 0; i < sf->nsvc; i++)
			for (uint32_t k = 0; sl && k < sl->via.array.size; k++) {
				const msgpack_object *o = &sl->via.array.ptr[k];
				char n[128], st[32];
				if (mp_get_strbuf(o, "name", n, sizeof n) || strcmp(n, sf->svc[i].name))
					continue;
				uint64_t rep = 0, run = 0;
				mp_get_u64(o, "replicas", &rep);
				if (sf->svc[i].deploy.mode == DEPLOY_GLOBAL)
					mp_get_u64(o, "desired", &rep);
				mp_get_u64(o, "running", &run);
				mp_str_or(o, "update_state", st, sizeof st, "");
				want += rep;
				have += run < rep ? run : rep;
				if (!strcmp(st, "paused") || !strcmp(st, "rolled_back"))
					paused = true;
				if ((!strcmp(st, "updating") || !strcmp(st, "rolling_back")) && run >= rep)
					have -= have ? 1 : 0; /* not settled yet */
			}
		mpr_free(&r);
		if (tty) {
			char bar[31];
			size_t fill = want ? (size_t)(have * 30 / want) : 30;
			for (size_t i = 0; i < 30; i++)
				bar[i] = i < fill ? '#' : '-';
			bar[30] = 0;
			printf("\rwaiting for replicas [%s] %llu/%llu ", bar, (unsigned long long)have, (unsigned long long)want);
			fflush(stdout);
		}
		if (paused) {
			if (tty)
				printf("\n");
			return cli_fail(E_FAIL, "the rollout paused or rolled back: see orch rollout status");
		}
		/* all running, and still so a moment later (a task that exits at once was
		 * running for an instant) */
		if (have >= want && ++ok_rounds < 4) {
			struct timespec ts = {0, 250 * 1000000};
			nanosleep(&ts, NULL);
			continue;
		}
		if (have < want)
			ok_rounds = 0;
		if (have >= want) {
			if (tty)
				printf("\n");
			printf("all %llu replicas running\n", (unsigned long long)want);
			return EXIT_OK;
		}
		/* replicas missing and nothing on its way (every task ended, none restarting): it
		 * will not get better by waiting; seen twice a second apart to skip the moment
		 * between a task's end and its replacement */
		char why[ERR_LEN] = "";
		if (stuck(cli, sf, why, sizeof why)) {
			if (++stuck_rounds >= 5) {
				if (tty)
					printf("\n");
				return cli_fail(E_FAIL, "%llu of %llu replicas running and none on the way%s%s (see orch ps -a)",
						(unsigned long long)have, (unsigned long long)want, why[0] ? ": " : "", why);
			}
		} else
			stuck_rounds = 0;
		if (now_ms() > deadline)
			return cli_fail(E_TIMEOUT, "replicas still not running after 10 minutes: see orch ps");
		struct timespec ts = {0, 250 * 1000000};
		nanosleep(&ts, NULL);
	}
}

/* Does a service deployed by another project use the network called ref? */
static bool network_exists(const msgpack_object *sl, const char *project, const char *ref)
{
	for (uint32_t k = 0; sl && k < sl->via.array.size; k++) {
		const msgpack_object *o = &sl->via.array.ptr[k];
		char proj[128];
		struct svc_spec sp;
		char err[ERR_LEN];
		mp_str_or(o, "project", proj, sizeof proj, "");
		const msgpack_object *spec = mp_get(o, "spec");
		if (!spec || !strcmp(proj, project))
			continue;
		if (svc_spec_decode(spec, &sp, err)) {
			svc_spec_free(&sp);
			continue;
		}
		struct svc_net def = {.name = (char *)(uintptr_t)"default"};
		bool found = false;
		for (size_t i = 0; i < (sp.networks.n ? sp.networks.n : 1) && !found; i++) {
			char id[160];
			spec_network_id(proj, sp.networks.n ? &sp.networks.v[i] : &def, id, sizeof id);
			found = !strcmp(id, ref);
		}
		svc_spec_free(&sp);
		if (found)
			return true;
	}
	return false;
}

/* An external network must exist: some service of another project is on it (Compose
 * refuses an external network that was never created). 0, or an exit code with the
 * error printed, before anything is deployed. */
static int external_networks_missing(struct cli *cli, const char *const *files, size_t nfiles, const struct spec_file *sf,
				     const char *project)
{
	bool any = false;
	for (size_t i = 0; i < sf->nnet; i++)
		any |= sf->net[i].external;
	if (!any)
		return 0;
	struct mpr svcs;
	int rc = cli_rpc(cli, OP_SERVICES, NULL, &svcs);
	if (rc)
		return rc;
	const msgpack_object *sl = mp_get(svcs.root, "services");
	for (size_t i = 0; i < sf->nnet && !rc; i++) {
		const struct spec_network *n = &sf->net[i];
		const char *ref = n->name ? n->name : n->key;
		if (!n->external || network_exists(sl, project, ref))
			continue;
		bool used = false;
		for (size_t k = 0; k < sf->nsvc && !used; k++)
			for (size_t j = 0; j < sf->svc[k].networks.n; j++)
				used |= !strcmp(sf->svc[k].networks.v[j].name, n->key);
		if (!used && strcmp(n->key, "default"))
			continue;
		fprintf(stderr, "orch: %s:%u:%u: networks.%s: external network \"%s\" does not exist: no service of another "
			"project is on it (deploy the project that creates it first; nothing was deployed)\n",
			n->pos.file < nfiles ? files[n->pos.file] : "?", n->pos.line, n->pos.col, n->key, ref);
		rc = EXIT_FAIL;
	}
	mpr_free(&svcs);
	return rc;
}

/* Asks the leader what each image of the file would run (node/resolve.h): the error of
 * the first that none would, before anything is deployed. The leader asks again at each
 * service.put: what runs is what the registry serves then. */
static int deploy_images(struct cli *cli, const char *file, const struct spec_file *sf)
{
	for (size_t i = 0; i < sf->nsvc; i++) {
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen = seen || !strcmp(sf->svc[k].image, sf->svc[i].image);
		if (seen)
			continue;
		struct req_image_resolve q = {.ref = sf->svc[i].image};
		struct mpr r;
		char err[ERR_LEN] = "";
		int rc = cli_call(&cli->target, OP_IMAGE_RESOLVE, &q, &r, 15000, 60000, err);
		if (rc == E_IO && strstr(err, "no node running"))
			return cli_call_fail(rc, err);
		if (rc) {
			fprintf(stderr, "orch: %s: service %s: %s (nothing was deployed)\n", file, sf->svc[i].name, err);
			return EXIT_FAIL;
		}
		mpr_free(&r);
	}
	return EXIT_OK;
}

static const char *strv_at(void *ctx, size_t i)
{
	const struct strv *v = ctx;
	return i < v->n ? v->v[i] : NULL;
}

/* Every bind mount of the file allowed by some node's --allow-bind, checked before anything
 * is deployed (the leader checks each service again at service.put). */
static int deploy_binds(struct cli *cli, const char *file, const struct spec_file *sf)
{
	bool any = false;
	for (size_t i = 0; i < sf->nsvc && !any; i++)
		for (size_t k = 0; k < sf->svc[i].mounts.n; k++)
			any = any || sf->svc[i].mounts.v[k].type == MOUNT_BIND;
	if (!any)
		return EXIT_OK;
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_NODES, NULL, &r, 0);
	if (rc)
		return rc;
	const msgpack_object *ns = mp_get(r.root, "nodes");
	struct strv binds = {0};
	for (uint32_t j = 0; ns && ns->type == MSGPACK_OBJECT_ARRAY && j < ns->via.array.size; j++) {
		char b[4096];
		strv_push(&binds, mp_str_or(&ns->via.array.ptr[j], "allow_bind", b, sizeof b, ""));
	}
	mpr_free(&r);
	for (size_t i = 0; i < sf->nsvc && !rc; i++) {
		const char *nowhere = spec_bind_nowhere(&sf->svc[i], strv_at, &binds);
		if (nowhere) {
			fprintf(stderr, "orch: %s: service %s: bind mount %s: no node of the cluster allows it; start "
				"nodes with --allow-bind PREFIX (orch(8)) (nothing was deployed)\n", file, sf->svc[i].name,
				nowhere);
			rc = EXIT_FAIL;
		}
	}
	strv_free(&binds);
	return rc;
}

extern char **environ;

/* No -f: the files Compose would read: those of COMPOSE_FILE (separated by ':'), else the
 * first of compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml in the working
 * directory and its override file beside it. buf holds the names (size bytes). */
static size_t default_files(const char **files, size_t max, char *buf, size_t size)
{
	static const char *const base[] = {"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"};
	static const char *const over[] = {"compose.override.yaml", "compose.override.yml",
					   "docker-compose.override.yaml", "docker-compose.override.yml"};
	const char *cf = getenv("COMPOSE_FILE");
	size_t n = 0;
	if (cf && *cf) {
		snprintf(buf, size, "%s", cf);
		for (char *save = NULL, *t = strtok_r(buf, ":", &save); t && n < max; t = strtok_r(NULL, ":", &save))
			files[n++] = t;
		return n;
	}
	for (size_t i = 0; i < 4 && !n; i++)
		if (!access(base[i], R_OK))
			files[n++] = base[i];
	for (size_t i = 0; i < 4 && n == 1; i++)
		if (!access(over[i], R_OK))
			files[n++] = over[i];
	return n;
}

int cmd_deploy(struct cli *cli, int argc, char **argv)
{
	const char *project = NULL;
	const char *files[32], *envs[32], *profiles[32];
	size_t nfiles = 0, nenvs = 0, nprofiles = 0;
	bool dry = false, wait = false;
	static const struct option lo[] = {{"file", required_argument, NULL, 'f'}, {"dry-run", no_argument, NULL, 'n'},
					   {"project", required_argument, NULL, 'p'}, {"wait", no_argument, NULL, 'w'},
					   {"env-file", required_argument, NULL, 'e'}, {"profile", required_argument, NULL, 'P'},
					   {NULL, 0, NULL, 0}};
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "f:np:w", lo, NULL)) != -1) {
		if (ch == 'w')
			wait = true;
		else if (ch == 'f' || ch == 'e' || ch == 'P') {
			const char **l = ch == 'f' ? files : ch == 'e' ? envs : profiles;
			size_t *n = ch == 'f' ? &nfiles : ch == 'e' ? &nenvs : &nprofiles;
			if (*n == 32)
				return cli_usage("deploy", "at most 32 of %s", argv[optind - 1]);
			l[(*n)++] = optarg;
		} else if (ch == 'n')
			dry = true;
		else if (ch == 'p')
			project = optarg;
		else
			return cli_usage("deploy", "unknown option %s", argv[optind - 1]);
	}
	if (optind < argc)
		return cli_usage("deploy", "unexpected argument %s", argv[optind]);
	char defbuf[4096];
	if (!nfiles && !(nfiles = default_files(files, 32, defbuf, sizeof defbuf)))
		return cli_usage("deploy", "missing -f FILE (and no compose.yaml, compose.yml, docker-compose.yaml or "
				 "docker-compose.yml here)");
	const char *file = files[0];
	char err[ERR_LEN], projbuf[64];
	struct spec_file *sf = NULL;
	struct compose_opts co = {.files = files, .nfiles = nfiles, .env_files = envs, .nenv_files = nenvs,
				  .profiles = profiles, .nprofiles = nprofiles, .project = project,
				  .environ = environ, .warn = stderr};
	if (compose_load(&co, &sf, projbuf, err))
		return cli_fail(E_INVAL, "%s", err);
	project = projbuf;
	spec_file_qualify(sf, project);
	int rc = external_networks_missing(cli, files, nfiles, sf, project);
	/* every image first: one loaded or one its registry serves (and lets us pull), else
	 * nothing changes */
	if (!rc)
		rc = deploy_binds(cli, file, sf);
	if (!rc)
		rc = deploy_images(cli, file, sf);
	if (rc) {
		spec_file_free(sf);
		return rc;
	}
	/* secrets and configs first: the services' specs name the cluster's ones */
	rc = deploy_secrets(cli, file, project, sf, dry);
	if (rc) {
		spec_file_free(sf);
		return rc;
	}
	/* The plan against the current state. Images are not checked here: one loaded into
	 * the cluster is used as is, any other is resolved in its registry by the leader,
	 * which refuses the service with the registry's answer (node/resolve.h). */
	struct mpr svcs;
	rc = cli_rpc(cli, OP_SERVICES, NULL, &svcs);
	if (rc) {
		spec_file_free(sf);
		return rc;
	}
	const msgpack_object *sl = mp_get(svcs.root, "services");
	int failed = 0;
	for (size_t i = 0; i < sf->nsvc; i++) {
		const struct svc_spec *sp = &sf->svc[i];
		const char *plan = "create";
		for (uint32_t k = 0; sl && k < sl->via.array.size; k++) {
			const msgpack_object *o = &sl->via.array.ptr[k];
			char n[128];
			if (mp_get_strbuf(o, "name", n, sizeof n) || strcmp(n, sp->name))
				continue;
			uint64_t rep = 0;
			mp_get_u64(o, "replicas", &rep);
			const msgpack_object *st = mp_get(o, "spec");
			if (st && spec_bytes_equal(st, sp))
				plan = rep == sp->deploy.replicas ? "unchanged" : "scale";
			else
				plan = "update";
		}
		if (dry) {
			printf("%-20s %s\n", sp->name, plan);
			continue;
		}
		struct mpw spec;
		mpw_init(&spec);
		svc_spec_encode(sp, &spec);
		struct req_service_put q = {.project = project, .spec = {.raw = spec.sb.data, .len = spec.sb.size}};
		struct mpr r;
		rc = cli_rpc(cli, OP_SERVICE_PUT, &q, &r);
		mpw_free(&spec);
		if (rc) {
			failed++;
			continue;
		}
		char res[64];
		mp_str_or(r.root, "result", res, sizeof res, "done");
		printf("%-20s %s\n", sp->name, res);
		mpr_free(&r);
	}
	if (dry)
		printf("(dry run: nothing changed)\n");
	mpr_free(&svcs);
	int rc2 = failed ? EXIT_FAIL : EXIT_OK;
	if (wait && !dry && !failed)
		rc2 = wait_running(cli, sf);
	spec_file_free(sf);
	return rc2;
}

/* ---- rm, scale ---------------------------------------------------------------------------------- */

int cmd_rm(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("rm", "which service? (see orch services)");
	int worst = EXIT_OK;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			return cli_usage("rm", "unknown option %s", argv[i]);
		struct req_service_rm q = {.name = argv[i]};
		struct mpr r;
		int rc = cli_rpc(cli, OP_SERVICE_RM, &q, &r);
		if (rc) {
			worst = rc;
			continue;
		}
		mpr_free(&r);
		printf("%s removed\n", argv[i]);
	}
	return worst;
}

int cmd_scale(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("scale", "give SERVICE=REPLICAS");
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char *end;
		if (!eq || eq == argv[i] || !eq[1] || (strtoull(eq + 1, &end, 10), *end))
			return cli_usage("scale", "%s: expected SERVICE=REPLICAS, like web=5", argv[i]);
	}
	int worst = EXIT_OK;
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char name[128];
		snprintf(name, sizeof name, "%.*s", (int)(eq - argv[i]), argv[i]);
		struct req_service_scale q = {.name = name, .replicas = strtoull(eq + 1, NULL, 10)};
		struct mpr r;
		int rc = cli_rpc(cli, OP_SERVICE_SCALE, &q, &r);
		if (rc) {
			worst = rc;
			continue;
		}
		mpr_free(&r);
		printf("%s scaled to %s\n", name, eq + 1);
	}
	return worst;
}

/* ---- services, inspect -------------------------------------------------------------------------- */

static void ports_text(const msgpack_object *spec, char *out, size_t n)
{
	out[0] = 0;
	const msgpack_object *ports = mp_get(spec, "ports");
	for (uint32_t i = 0; ports && ports->type == MSGPACK_OBJECT_ARRAY && i < ports->via.array.size; i++) {
		const msgpack_object *p = &ports->via.array.ptr[i];
		uint64_t target = 0, pub = 0;
		char proto[8] = "tcp";
		mp_get_u64(p, "target", &target);
		mp_get_u64(p, "published", &pub);
		mp_get_strbuf(p, "protocol", proto, sizeof proto);
		size_t len = strlen(out);
		if (pub)
			snprintf(out + len, n - len, "%s%llu->%llu/%s", len ? "," : "", (unsigned long long)pub, (unsigned long long)target, proto);
		else
			snprintf(out + len, n - len, "%s%llu/%s", len ? "," : "", (unsigned long long)target, proto);
	}
}

int cmd_services(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	for (int i = 1; i < argc; i++) {
		int orc = cli_output_opt("services", argc, argv, &i, &fmt);
		if (orc > 1)
			return orc;
		if (orc == 1)
			continue;
		return cli_usage("services", "unexpected argument %s", argv[i]);
	}
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_SERVICES, NULL, &r, 0);
	if (rc)
		return rc;
	const msgpack_object *sl = mp_get(r.root, "services");
	if (fmt != OUT_TABLE) {
		out_doc(fmt, sl);
		mpr_free(&r);
		return EXIT_OK;
	}
	const char *hdr[] = {"NAME", "IMAGE", "REPLICAS", "PORTS", "GENERATION", "PROJECT"};
	struct out_table t;
	out_table_init(&t, 6, hdr);
	for (uint32_t i = 0; sl && i < sl->via.array.size; i++) {
		const msgpack_object *o = &sl->via.array.ptr[i], *spec = mp_get(o, "spec");
		char name[128], image[256], reps[64], ports[256], gen[32], proj[128];
		uint64_t running = 0, replicas = 0, g = 0;
		mp_str_or(o, "name", name, sizeof name, "-");
		mp_str_or(spec, "image", image, sizeof image, "-");
		mp_get_u64(o, "running", &running);
		mp_get_u64(o, "replicas", &replicas);
		mp_get_u64(o, "generation", &g);
		if (spec_global(spec)) {
			mp_get_u64(o, "desired", &replicas);
			snprintf(reps, sizeof reps, "global %llu/%llu", (unsigned long long)running, (unsigned long long)replicas);
		} else
			snprintf(reps, sizeof reps, "%llu/%llu", (unsigned long long)running, (unsigned long long)replicas);
		snprintf(gen, sizeof gen, "%llu", (unsigned long long)g);
		ports_text(spec, ports, sizeof ports);
		mp_str_or(o, "project", proj, sizeof proj, "");
		const char *row[] = {name, image, reps, ports, gen, proj};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
	mpr_free(&r);
	return EXIT_OK;
}

int cmd_inspect(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt = OUT_YAML;
	const char *name = NULL;
	for (int i = 1; i < argc; i++) {
		int orc = cli_output_opt("inspect", argc, argv, &i, &fmt);
		if (orc > 1)
			return orc;
		if (orc == 1)
			continue;
		if (argv[i][0] == '-')
			return cli_usage("inspect", "unknown option %s", argv[i]);
		else if (name)
			return cli_usage("inspect", "one service at a time");
		else
			name = argv[i];
	}
	if (!name)
		return cli_usage("inspect", "which service?");
	struct req_service_get q = {.name = name};
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_SERVICE_GET, &q, &r, 0);
	if (rc)
		return rc;
	out_doc(fmt == OUT_TABLE ? OUT_YAML : fmt, mp_get(r.root, "service"));
	mpr_free(&r);
	return EXIT_OK;
}

/* ---- ps ------------------------------------------------------------------------------------------- */

static int get_tasks(struct cli *cli, const char *svc, bool all, struct mpr *r)
{
	struct req_tasks q = {.service = svc, .all = all};
	return cli_rpc_retry(cli, OP_TASKS, &q, r, 0);
}

/* A restart waiting out its back-off reads "restarting in 40s, 5 failures"; a task on its
 * way up after failures in a row says how many ("starting, 5 failures"). */
static void ps_backoff(const msgpack_object *o, uint64_t now, char *state, size_t n)
{
	uint64_t after = 0, failures = 0;
	mp_get_u64(o, "start_after", &after);
	mp_get_u64(o, "failures", &failures);
	enum task_state st = state_of(o);
	if (!wanted_running(o) || st == TS_NONE || st >= TS_RUNNING)
		return;
	if (st == TS_PENDING && after > now) {
		char in[16];
		out_age(after - now + 999, in, sizeof in);
		snprintf(state, n, "restarting in %s", in);
	}
	if (failures) {
		size_t l = strlen(state);
		snprintf(state + l, n - l, ", %llu failure%s", (unsigned long long)failures, failures == 1 ? "" : "s");
	}
}

/* A task's image in Docker's short form, a pinned digest cut to 12 hex digits: the column
 * says which bytes run, -o json has it whole. */
static void ps_image(const msgpack_object *o, char *out, size_t n)
{
	char full[600], e[ERR_LEN];
	struct image_ref r;
	mp_str_or(o, "image", full, sizeof full, "-");
	if (image_ref_parse(full, &r, e)) {
		snprintf(out, n, "%s", full);
		return;
	}
	char dg[REF_DIGEST_MAX + 1];
	snprintf(dg, sizeof dg, "%s", r.digest);
	r.digest[0] = 0;
	image_ref_familiar(&r, out, n);
	size_t l = strlen(out);
	if (dg[0])
		snprintf(out + l, n - l, "@%.19s", dg);
}

int cmd_ps(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	const char *svc = NULL;
	bool all = false;
	for (int i = 1; i < argc; i++) {
		int orc = cli_output_opt("ps", argc, argv, &i, &fmt);
		if (orc > 1)
			return orc;
		if (orc == 1)
			continue;
		if (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--all"))
			all = true;
		else if (argv[i][0] == '-')
			return cli_usage("ps", "unknown option %s", argv[i]);
		else if (svc)
			return cli_usage("ps", "one service at a time");
		else
			svc = argv[i];
	}
	struct mpr r;
	int rc = get_tasks(cli, svc, all, &r);
	if (rc)
		return rc;
	const msgpack_object *tl = mp_get(r.root, "tasks");
	if (fmt != OUT_TABLE) {
		out_doc(fmt, tl);
		mpr_free(&r);
		return EXIT_OK;
	}
	const char *hdr[] = {"TASK", "SERVICE", "SLOT", "NODE", "DESIRED", "STATE", "AGE", "IMAGE", "ENDPOINT", "ERROR"};
	struct out_table t;
	out_table_init(&t, 10, hdr);
	for (uint32_t i = 0; tl && i < tl->via.array.size; i++) {
		const msgpack_object *o = &tl->via.array.ptr[i];
		char id[32], service[128], slot[16], node[80], desired[16], state[64], age[16], ep[256], er[300], img[600];
		uint64_t v = 0, sat = 0, now = 0;
		mp_get_u64(o, "id", &v);
		snprintf(id, sizeof id, "%llu", (unsigned long long)v);
		mp_str_or(o, "service", service, sizeof service, "-");
		mp_get_u64(o, "slot", &v);
		bool global = false;
		mp_get_bool(o, "global", &global);
		snprintf(slot, sizeof slot, global ? "global" : "%llu", (unsigned long long)v);
		mp_str_or(o, "node", node, sizeof node, "-");
		if (!node[0])
			snprintf(node, sizeof node, "-");
		mp_str_or(o, "desired", desired, sizeof desired, "-");
		mp_str_or(o, "state", state, sizeof state, "-");
		int64_t code = 0;
		mp_get_i64(o, "exit_code", &code);
		enum task_state st = state_of(o);
		if (st == TS_FAILED || st == TS_COMPLETE) {
			size_t l = strlen(state);
			snprintf(state + l, sizeof state - l, " (%lld)", (long long)code);
		}
		char health[16] = "", ready[16] = "";
		mp_str_or(o, "health", health, sizeof health, "");
		mp_str_or(o, "ready", ready, sizeof ready, "");
		if (st == TS_RUNNING && (health[0] || ready[0])) {
			size_t l = strlen(state);
			snprintf(state + l, sizeof state - l, " (%s%s%s)", health, health[0] && ready[0] ? ", " : "", ready);
		}
		mp_get_u64(o, "state_at", &sat);
		mp_get_u64(o, "now", &now);
		ps_backoff(o, now, state, sizeof state);
		out_age(now > sat ? now - sat : 0, age, sizeof age);
		mp_str_or(o, "endpoint", ep, sizeof ep, "");
		mp_str_or(o, "err", er, sizeof er, "");
		bool oom = false;
		mp_get_bool(o, "oom", &oom);
		ps_image(o, img, sizeof img);
		const char *row[] = {id, service, slot, node, desired, state, age, img, ep, er};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
	mpr_free(&r);
	/* problems that belong to a service rather than a task */
	struct mpr sv;
	if (!cli_rpc_retry(cli, OP_SERVICES, NULL, &sv, 0)) {
		const msgpack_object *sl = mp_get(sv.root, "services");
		for (uint32_t i = 0; sl && i < sl->via.array.size; i++) {
			char name[128];
			mp_str_or(&sl->via.array.ptr[i], "name", name, sizeof name, "");
			if (svc && strcmp(svc, name))
				continue;
			const msgpack_object *pe = mp_get(&sl->via.array.ptr[i], "port_errors");
			for (uint32_t k = 0; pe && pe->type == MSGPACK_OBJECT_MAP && k < pe->via.map.size; k++)
				if (mp_is_str(&pe->via.map.ptr[k].val))
					fprintf(stderr, "%swarning%s: service %s: %.*s\n", out_err_red(), out_err_reset(), name,
						(int)pe->via.map.ptr[k].val.via.str.size, pe->via.map.ptr[k].val.via.str.ptr);
		}
		mpr_free(&sv);
	}
	return EXIT_OK;
}

/* ---- logs ------------------------------------------------------------------------------------------ */

/* Prints each line of data as "PREFIX | line" (the node sends whole lines only). */
static void log_lines(const char *prefix, const msgpack_object *data)
{
	const char *p = data->via.str.ptr, *end = p + data->via.str.size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		printf("%s%s%s | %.*s\n", out_dim(), prefix, out_reset(), (int)n, p);
		p += n + (nl != NULL);
	}
}

int cmd_logs(struct cli *cli, int argc, char **argv)
{
	bool follow = false;
	int64_t tail = -1;
	const char *what = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = true;
		else if ((!strcmp(argv[i], "--tail") || !strcmp(argv[i], "-n")) && i + 1 < argc) {
			char *end;
			tail = strtoll(argv[++i], &end, 10);
			if (*end || tail < 0)
				return cli_usage("logs", "--tail %s: expected a number of lines", argv[i]);
		} else if (argv[i][0] == '-')
			return cli_usage("logs", "unknown option %s", argv[i]);
		else if (what)
			return cli_usage("logs", "one service or task at a time");
		else
			what = argv[i];
	}
	if (!what)
		return cli_usage("logs", "which service or task?");
	/* a task id, or a service name; the local node gathers the output from every node */
	char *end;
	uint64_t task_id = strtoull(what, &end, 10);
	bool by_task = *what && !*end;
	struct req_logs_cluster q = {.task_id = by_task ? task_id : 0, .service = by_task ? NULL : what, .tail = tail,
				     .follow = follow};
	char err[ERR_LEN];
	struct client c;
	int rc = cli_request(&c, &cli->target, OP_LOGS_CLUSTER, &q, err);
	if (rc)
		return cli_call_fail(rc, err);
	for (bool more = true; more;) {
		struct mpr m;
		/* a node that stops answering ends a finite read; a followed one may stay quiet */
		if ((rc = cli_stream_next(&c, &m, &more, follow ? -1 : 30000, err))) {
			rc = cli_fail(rc, "logs %s: %s", what, err);
			break;
		}
		char prefix[128], warn[ERR_LEN];
		const msgpack_object *data = mp_get(m.root, "data");
		if (!mp_get_strbuf(m.root, "warn", warn, sizeof warn))
			fprintf(stderr, "orch: %s\n", warn);
		if (data && mp_is_str(data))
			log_lines(mp_str_or(m.root, "prefix", prefix, sizeof prefix, "?"), data);
		fflush(stdout);
		mpr_free(&m);
	}
	client_close(&c);
	return rc;
}

/* ---- images ---------------------------------------------------------------------------------------- */

int cmd_image(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("image", "missing subcommand: load, pull, prune, ls or rm");
	if (!strcmp(argv[1], "ls"))
		return cmd_images(cli, argc - 1, argv + 1);
	if (!strcmp(argv[1], "pull"))
		return argc == 3 ? cmd_image_pull(cli, argv[2]) : cli_usage("image", "image pull REF");
	if (!strcmp(argv[1], "prune"))
		return argc == 2 ? cmd_image_prune(cli) : cli_usage("image", "image prune takes no argument");
	if (!strcmp(argv[1], "rm")) {
		if (argc != 3)
			return cli_usage("image", "image rm NAME");
		struct req_image_rm q = {.name = argv[2]};
		struct mpr r;
		int rc = cli_rpc(cli, OP_IMAGE_RM, &q, &r);
		if (rc)
			return rc;
		mpr_free(&r);
		printf("%s removed\n", argv[2]);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "load"))
		return cli_usage("image", "unknown subcommand %s", argv[1]);
	if (argc != 3)
		return cli_usage("image", "image load FILE|DIR");
	/* The local node reads the archive (it runs on this machine), verifies and unpacks it
	 * into its own blob store and records the image; it needs the path from here. */
	char *abs = realpath(argv[2], NULL);
	if (!abs)
		return cli_fail(E_INVAL, "image load %s: %s", argv[2], strerror(errno));
	struct req_image_load q = {.path = abs};
	struct mpr r;
	/* no time limit: a large archive takes as long as its bytes take to hash and unpack */
	int rc = cli_rpc_wait(cli, OP_IMAGE_LOAD, &q, &r);
	free(abs);
	if (rc)
		return rc;
	/* one line per name recorded (every tag of every image in the archive); a node
	 * without "images" answered for its one image at the top level */
	const msgpack_object *il = mp_get(r.root, "images");
	uint32_t n = il && il->type == MSGPACK_OBJECT_ARRAY ? il->via.array.size : 0;
	for (uint32_t i = 0; i < (n ? n : 1); i++) {
		const msgpack_object *o = n ? &il->via.array.ptr[i] : r.root;
		char res[64], name[IMAGE_NAME_MAX], digest[80], size[32];
		uint64_t bytes = 0, layers = 0;
		mp_get_u64(o, "size", &bytes);
		mp_get_u64(o, "layers", &layers);
		out_bytes(bytes, size, sizeof size);
		printf("%s %s (%s, %llu layers): %s\n", mp_str_or(o, "name", name, sizeof name, "?"),
		       mp_str_or(o, "digest", digest, sizeof digest, "?"), size, (unsigned long long)layers,
		       !strcmp(mp_str_or(o, "result", res, sizeof res, "loaded"), "unchanged") ? "already loaded" : "loaded");
	}
	mpr_free(&r);
	return EXIT_OK;
}

/* ---- rollout --------------------------------------------------------------------------------------- */

struct rollout_view {
	char state[32], msg[256];
	uint64_t generation, replicas, updated, old;
};

static int rollout_read(struct cli *cli, const char *name, struct rollout_view *rv)
{
	struct req_service_get q = {.name = name};
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_SERVICE_GET, &q, &r, 5000);
	if (rc)
		return rc;
	const msgpack_object *v = mp_get(r.root, "service");
	memset(rv, 0, sizeof *rv);
	mp_str_or(v, "update_state", rv->state, sizeof rv->state, "");
	mp_str_or(v, "update_msg", rv->msg, sizeof rv->msg, "");
	mp_get_u64(v, "generation", &rv->generation);
	mp_get_u64(v, "replicas", &rv->replicas);
	const msgpack_object *tl = mp_get(v, "tasks");
	for (uint32_t i = 0; tl && i < tl->via.array.size; i++) {
		const msgpack_object *t = &tl->via.array.ptr[i];
		uint64_t g = 0;
		char h[16], rd[16];
		mp_get_u64(t, "generation", &g);
		mp_str_or(t, "health", h, sizeof h, "");
		mp_str_or(t, "ready", rd, sizeof rd, "");
		if (!wanted_running(t))
			continue;
		if (g == rv->generation && state_of(t) == TS_RUNNING && (!h[0] || !strcmp(h, "healthy")) && (!rd[0] || !strcmp(rd, "ready")))
			rv->updated++;
		else if (g != rv->generation)
			rv->old++;
	}
	mpr_free(&r);
	return 0;
}

static void rollout_print(const char *name, const struct rollout_view *rv, bool bar)
{
	uint64_t total = rv->replicas ? rv->replicas : 1, done = rv->updated > total ? total : rv->updated;
	const char *st = rv->state[0] ? rv->state : "completed";
	if (bar) {
		char b[41];
		size_t fill = (size_t)(done * 40 / total);
		for (size_t i = 0; i < 40; i++)
			b[i] = i < fill ? '#' : '-';
		b[40] = 0;
		printf("\r%s: generation %llu %-12s [%s] %llu/%llu%s", name, (unsigned long long)rv->generation, st, b,
		       (unsigned long long)done, (unsigned long long)rv->replicas, "   ");
	} else
		printf("%s: generation %llu, %s, %llu/%llu tasks updated%s%s\n", name, (unsigned long long)rv->generation, st,
		       (unsigned long long)done, (unsigned long long)rv->replicas, rv->msg[0] ? ": " : "", rv->msg);
	fflush(stdout);
}

int cmd_rollout(struct cli *cli, int argc, char **argv)
{
	if (argc < 3)
		return cli_usage("rollout", "rollout status|undo|pause|resume SERVICE");
	const char *verb = argv[1], *name = argv[2];
	bool wait = false;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--wait") || !strcmp(argv[i], "-w"))
			wait = true;
		else
			return cli_usage("rollout", "unexpected argument %s", argv[i]);
	}
	if (strcmp(verb, "status")) {
		if (strcmp(verb, "undo") && strcmp(verb, "pause") && strcmp(verb, "resume"))
			return cli_usage("rollout", "unknown action %s", verb);
		if (wait)
			return cli_usage("rollout", "--wait goes with status");
		struct req_service_update q = {.name = name, .action = verb};
		struct mpr r;
		int rc = cli_rpc(cli, OP_SERVICE_UPDATE, &q, &r);
		if (rc)
			return rc;
		mpr_free(&r);
		printf("%s: %s\n", name, !strcmp(verb, "undo") ? "rolling back to the previous version" : !strcmp(verb, "pause") ? "rollout paused" : "rollout resumed");
		return EXIT_OK;
	}
	struct rollout_view rv;
	int rc = rollout_read(cli, name, &rv);
	if (rc)
		return rc;
	bool tty = isatty(1);
	uint64_t deadline = now_ms() + 30 * 60 * 1000;
	while (wait && now_ms() < deadline) {
		bool settled = !strcmp(rv.state, "paused") || ((!strcmp(rv.state, "completed") || !strcmp(rv.state, "rolled_back") || !rv.state[0]) && !rv.old);
		if (settled)
			break;
		if (tty)
			rollout_print(name, &rv, true);
		struct timespec ts = {0, 300 * 1000000};
		nanosleep(&ts, NULL);
		if ((rc = rollout_read(cli, name, &rv)))
			return rc;
	}
	if (tty && wait)
		printf("\n");
	rollout_print(name, &rv, false);
	if (wait && (!strcmp(rv.state, "paused") || !strcmp(rv.state, "rolled_back")))
		return EXIT_FAIL;
	return EXIT_OK;
}
