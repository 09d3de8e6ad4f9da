/* orch debug: developer tools. write-bench drives replicated writes (kv.set) through the
 * local node — the same path as every orch write: Unix socket, forwarding to the leader,
 * raft commit, apply — and prints throughput and latency percentiles. */
#include "cli/cli.h"
#include "util/err.h"
#include "util/mem.h"
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int write_bench(struct cli *cli, int argc, char **argv)
{
	long count = 2000, inflight = 1;
	int vsize = 100;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--inflight") && i + 1 < argc)
			inflight = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--value-size") && i + 1 < argc)
			vsize = atoi(argv[++i]);
		else
			return cli_usage("debug", "write-bench: unknown argument %s", argv[i]);
	}
	if (count <= 0 || inflight <= 0 || inflight > 4096 || vsize < 1 || vsize > 65536)
		return cli_usage("debug", "write-bench: bad --count, --inflight or --value-size");
	char err[ERR_LEN];
	struct client c;
	if (client_open_local(&c, cli->data_dir, err))
		return fprintf(stderr, "orch: %s\n", err), EXIT_NODE;
	char *val = xmalloc((size_t)vsize + 1);
	memset(val, 'x', (size_t)vsize);
	val[vsize] = 0;
	uint64_t *lat = xcalloc((size_t)count, sizeof *lat);
	uint64_t *sent_at = xcalloc((size_t)count + 1, sizeof *sent_at);
	long sent = 0, done = 0, failed = 0;
	uint64_t t0 = now_us();
	while (done < count) {
		while (sent < count && sent - done < inflight) {
			struct mpw w;
			mpw_init(&w);
			char key[64];
			snprintf(key, sizeof key, "bench/%ld", sent % 1000);
			mpw_map(&w, 4);
			mpw_kstr(&w, "op", "kv.set");
			mpw_ku64(&w, "id", (uint64_t)sent + 1);
			mpw_kstr(&w, "key", key);
			mpw_kstr(&w, "value", val);
			sent_at[sent + 1] = now_us();
			if (client_send(&c, &w, err)) {
				mpw_free(&w);
				return cli_fail(E_IO, "%s", err);
			}
			mpw_free(&w);
			sent++;
		}
		struct mpr r;
		if (client_read(&c, &r, 30000, err))
			return cli_fail(E_IO, "%s", err);
		uint64_t id = 0;
		int64_t rc = 0;
		mp_get_u64(r.root, "id", &id);
		mp_get_i64(r.root, "rc", &rc);
		mpr_free(&r);
		if (id == 0 || id > (uint64_t)count)
			continue;
		if (rc)
			failed++;
		lat[done++] = now_us() - sent_at[id];
	}
	uint64_t el = now_us() - t0;
	qsort(lat, (size_t)count, sizeof *lat, cmp_u64);
	printf("writes=%ld inflight=%ld failed=%ld seconds=%.3f ops_per_sec=%.0f p50_us=%llu p99_us=%llu max_us=%llu\n", count,
	       inflight, failed, (double)el / 1e6, (double)count * 1e6 / (double)el,
	       (unsigned long long)lat[count / 2], (unsigned long long)lat[count * 99 / 100], (unsigned long long)lat[count - 1]);
	client_close(&c);
	free(val);
	free(lat);
	free(sent_at);
	return failed ? EXIT_FAIL : EXIT_OK;
}

int cmd_debug(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("debug", "missing subcommand (write-bench)");
	if (!strcmp(argv[1], "write-bench"))
		return write_bench(cli, argc - 1, argv + 1);
	return cli_usage("debug", "unknown subcommand %s", argv[1]);
}
