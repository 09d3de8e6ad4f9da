/* orch-sim: runs the simulation scenarios, each seed in its own child process with a
 * timeout, and prints "ok"/"FAIL" per scenario and seed and a closing "N passed, N failed".
 *
 * usage: orch-sim [-s SEED] [-n COUNT [-f FIRST]] [-v] [NAME...]
 *   NAME    a scenario's name (that one only), or a substring of names; "determinism/NAME"
 *           is the same-seed-twice check of NAME
 *   -s SEED run this seed only (decimal or 0x hex), e.g. the one a failure printed
 *   -n COUNT run seeds FIRST..FIRST+COUNT-1 (FIRST is 1 unless -f) instead of the suite's
 *   -v      node and raft logs on stderr, in virtual time
 * ORCH_SIM_SEED and ORCH_SIM_SEEDS in the environment do what -s and -n do. A failure
 * prints the command that runs it again (scripts/sim-sweep.sh runs many seeds). */
#include "scenario.h"
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int sim_verbose;

static const uint64_t suite_seeds[] = {1, 2, 3};
#define TIMEOUT_S 120

struct outcome {
	int rc;
	char err[ERR_LEN];
	struct sim_result res;
};

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one scenario with one seed in a child; the outcome comes back through a pipe. */
static void run_child(const struct scenario *s, uint64_t seed, struct outcome *o)
{
	int fd[2];
	memset(o, 0, sizeof *o);
	if (pipe(fd)) {
		o->rc = E_IO;
		snprintf(o->err, sizeof o->err, "pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		/* a fresh process image each run (its own address layout), so the determinism
		 * check also catches behaviour that depends on where memory lands */
		close(fd[0]);
		char prog[] = "orch-sim", flag[] = "--child", name[64], seedbuf[32], fdbuf[16], verbose[2];
		snprintf(name, sizeof name, "%s", s->name);
		snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)seed);
		snprintf(fdbuf, sizeof fdbuf, "%d", fd[1]);
		snprintf(verbose, sizeof verbose, "%s", sim_verbose ? "v" : "-");
		char *args[] = {prog, flag, name, seedbuf, fdbuf, verbose, NULL};
		execv("/proc/self/exe", args);
		_exit(4);
	}
	close(fd[1]);
	ssize_t got = 0, k;
	while (got < (ssize_t)sizeof *o && (k = read(fd[0], (char *)o + got, sizeof *o - (size_t)got)) > 0)
		got += k;
	close(fd[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	if (got != (ssize_t)sizeof *o) {
		memset(o, 0, sizeof *o);
		o->rc = E_FAIL;
		if (WIFSIGNALED(st))
			snprintf(o->err, sizeof o->err, "crashed with signal %d%s", WTERMSIG(st),
				 WTERMSIG(st) == SIGALRM ? " (timed out)" : "");
		else
			snprintf(o->err, sizeof o->err, "exited with status %d", WEXITSTATUS(st));
	}
}

/* An argument naming a scenario (or its determinism check) exactly selects that one
 * only; any other selects every name it is part of. */
static bool exact(const char *arg)
{
	for (unsigned i = 0; i < nscenarios; i++) {
		char d[128];
		snprintf(d, sizeof d, "determinism/%s", scenarios[i].name);
		if (!strcmp(arg, scenarios[i].name) || !strcmp(arg, d))
			return true;
	}
	return false;
}

static bool selected(const char *name, int argc, char **argv, int first)
{
	if (first >= argc)
		return true;
	for (int i = first; i < argc; i++)
		if (exact(argv[i]) ? !strcmp(name, argv[i]) : strstr(name, argv[i]) != NULL)
			return true;
	return false;
}

static void report(const char *name, uint64_t seed, const struct outcome *o, double secs, int *passed, int *failed)
{
	if (!o->rc) {
		(*passed)++;
		printf("ok   %s seed=%llu (%.2fs; %u nodes, %.1f s simulated, %llu events, state %.12s)\n", name,
		       (unsigned long long)seed, secs, o->res.nodes, (double)o->res.end_ms / 1000.0,
		       (unsigned long long)o->res.events, o->res.hash);
	} else {
		(*failed)++;
		printf("FAIL %s seed=%llu: %s\n     reproduce (from the repository root; -v for the logs): "
		       "vendor/zig/zig build sim -- -s %llu %s\n",
		       name, (unsigned long long)seed, o->err, (unsigned long long)seed, name);
	}
	fflush(stdout);
}

/* The same seed twice must give the same events and the same final state. */
static void determinism(const struct scenario *s, uint64_t seed, int *passed, int *failed)
{
	struct outcome a, b;
	double t0 = mono_s();
	run_child(s, seed, &a);
	run_child(s, seed, &b);
	char name[128];
	snprintf(name, sizeof name, "determinism/%s", s->name);
	/* judged on sameness alone: a scenario that fails fails in its own test, and must
	 * still fail the same way twice */
	struct outcome o = a;
	o.rc = 0;
	if (a.rc != b.rc || strcmp(a.err, b.err) || strcmp(a.res.hash, b.res.hash) || a.res.events != b.res.events ||
	    a.res.end_ms != b.res.end_ms) {
		o.rc = E_FAIL;
		snprintf(o.err, sizeof o.err, "two runs differ: %llu vs %llu events, ended at %llu vs %llu ms, state %.12s vs %.12s, \"%.60s\" vs \"%.60s\"",
			 (unsigned long long)a.res.events, (unsigned long long)b.res.events, (unsigned long long)a.res.end_ms,
			 (unsigned long long)b.res.end_ms, a.res.hash, b.res.hash, a.err, b.err);
	}
	report(name, seed, &o, mono_s() - t0, passed, failed);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || !*s || *end)
		return -1;
	*v = x;
	return 0;
}

/* The child side: runs one scenario and writes its outcome to the given descriptor. */
static int child(char **argv)
{
	uint64_t seed;
	int fd = atoi(argv[4]);
	sim_verbose = argv[5][0] == 'v';
	if (parse_u64(argv[3], &seed))
		return 2;
	alarm(TIMEOUT_S);
	if (!sim_verbose && !freopen("/dev/null", "w", stderr))
		return 3;
	for (unsigned i = 0; i < nscenarios; i++) {
		if (strcmp(scenarios[i].name, argv[2]))
			continue;
		struct outcome r;
		memset(&r, 0, sizeof r);
		r.rc = scenarios[i].fn(seed, &r.res, r.err);
		fflush(stdout);
		return write(fd, &r, sizeof r) == (ssize_t)sizeof r ? 0 : 2;
	}
	return 2;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--child"))
		return child(argv);
	uint64_t one = 0, count = 0, first_seed = 1;
	bool have_one = false;
	const char *e;
	if ((e = getenv("ORCH_SIM_SEED")) && *e)
		have_one = !parse_u64(e, &one);
	if ((e = getenv("ORCH_SIM_SEEDS")) && *e && parse_u64(e, &count))
		count = 0;
	int opt;
	while ((opt = getopt(argc, argv, "s:n:f:vh")) != -1) {
		switch (opt) {
		case 's':
			if (parse_u64(optarg, &one)) {
				fprintf(stderr, "orch-sim: -s wants a number, got %s\n", optarg);
				return 2;
			}
			have_one = true;
			break;
		case 'n':
			if (parse_u64(optarg, &count) || !count) {
				fprintf(stderr, "orch-sim: -n wants a positive number, got %s\n", optarg);
				return 2;
			}
			break;
		case 'f':
			if (parse_u64(optarg, &first_seed)) {
				fprintf(stderr, "orch-sim: -f wants a number, got %s\n", optarg);
				return 2;
			}
			break;
		case 'v':
			sim_verbose = 1;
			break;
		default:
			fprintf(stderr, "usage: orch-sim [-s SEED] [-n COUNT [-f FIRST]] [-v] [NAME...]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	for (int a = optind; a < argc; a++) {
		bool any = false;
		for (unsigned i = 0; i < nscenarios && !any; i++) {
			char d[128];
			snprintf(d, sizeof d, "determinism/%s", scenarios[i].name);
			any = strstr(scenarios[i].name, argv[a]) || strstr(d, argv[a]);
		}
		if (!any) {
			fprintf(stderr, "orch-sim: no scenario is named like %s\n", argv[a]);
			return 2;
		}
	}
	uint64_t *seeds, nseeds;
	if (have_one) {
		seeds = malloc(sizeof *seeds);
		seeds[0] = one;
		nseeds = 1;
	} else if (count) {
		seeds = malloc(count * sizeof *seeds);
		for (uint64_t i = 0; i < count; i++)
			seeds[i] = first_seed + i;
		nseeds = count;
	} else {
		nseeds = sizeof suite_seeds / sizeof suite_seeds[0];
		seeds = malloc(sizeof suite_seeds);
		memcpy(seeds, suite_seeds, sizeof suite_seeds);
	}
	int passed = 0, failed = 0;
	for (unsigned i = 0; i < nscenarios; i++) {
		const struct scenario *s = &scenarios[i];
		if (!selected(s->name, argc, argv, optind))
			continue;
		/* the suite's fixed seeds: a heavy scenario runs the first one only */
		uint64_t n = !have_one && !count && s->heavy ? 1 : nseeds;
		for (uint64_t k = 0; k < n; k++) {
			struct outcome o;
			double t0 = mono_s();
			run_child(s, seeds[k], &o);
			report(s->name, seeds[k], &o, mono_s() - t0, &passed, &failed);
		}
	}
	/* the determinism check: the first seed of a few scenarios, each run twice */
	for (unsigned i = 0; i < nscenarios; i++) {
		char name[128];
		snprintf(name, sizeof name, "determinism/%s", scenarios[i].name);
		if (!selected(name, argc, argv, optind) || (optind >= argc && !scenarios[i].twice))
			continue;
		determinism(&scenarios[i], seeds[0], &passed, &failed);
	}
	free(seeds);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
