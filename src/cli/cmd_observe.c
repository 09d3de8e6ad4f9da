/* orch top (per-service and per-task figures of the whole cluster, from the leader's view
 * of every node's heartbeat) and orch events (what the cluster decided and why). */
#include "cli/cli.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fmt_arg(const char *cmd, const char *arg, enum out_fmt *fmt)
{
	if (out_parse_fmt(arg, fmt))
		return cli_usage(cmd, "-o %s: expected table, json or yaml", arg);
	return -1;
}

static double mp_double(const msgpack_object *map, const char *key)
{
	const msgpack_object *o = mp_get(map, key);
	uint64_t u;
	if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32))
		return o->via.f64;
	return !mp_as_u64(o, &u) ? (double)u : 0;
}

static uint64_t mp_u64_or0(const msgpack_object *map, const char *key)
{
	uint64_t v = 0;
	mp_get_u64(map, key, &v);
	return v;
}

/* ---- top ----------------------------------------------------------------------------------------- */

static void top_services(const msgpack_object *sl)
{
	const char *hdr[] = {"SERVICE", "REPLICAS", "CONNECTIONS", "ACTIVE", "REQUESTS", "REQ/S", "BYTES IN", "BYTES OUT", "ERRORS"};
	struct out_table t;
	out_table_init(&t, 9, hdr);
	for (uint32_t i = 0; sl && sl->type == MSGPACK_OBJECT_ARRAY && i < sl->via.array.size; i++) {
		const msgpack_object *o = &sl->via.array.ptr[i];
		char name[80], reps[48], conn[24] = "-", act[24] = "-", req[24] = "-", rps[24] = "-", bin[24] = "-",
			bout[24] = "-", errs[24] = "-";
		bool traffic = false, rate = false;
		mp_get_bool(o, "traffic", &traffic);
		mp_get_bool(o, "rate", &rate);
		mp_str_or(o, "name", name, sizeof name, "-");
		bool global = false;
		mp_get_bool(o, "global", &global);
		snprintf(reps, sizeof reps, "%s%llu/%llu", global ? "global " : "", (unsigned long long)mp_u64_or0(o, "running"),
			 (unsigned long long)mp_u64_or0(o, "replicas"));
		if (traffic) {
			snprintf(conn, sizeof conn, "%llu", (unsigned long long)mp_u64_or0(o, "connections"));
			snprintf(act, sizeof act, "%llu", (unsigned long long)mp_u64_or0(o, "active"));
			snprintf(req, sizeof req, "%llu", (unsigned long long)mp_u64_or0(o, "requests"));
			if (rate)
				snprintf(rps, sizeof rps, "%.1f", mp_double(o, "rps"));
			out_bytes(mp_u64_or0(o, "bytes_in"), bin, sizeof bin);
			out_bytes(mp_u64_or0(o, "bytes_out"), bout, sizeof bout);
			snprintf(errs, sizeof errs, "%llu", (unsigned long long)mp_u64_or0(o, "backend_errors"));
		}
		const char *row[] = {name, reps, conn, act, req, rps, bin, bout, errs};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
}

static void top_tasks(const msgpack_object *tl)
{
	const char *hdr[] = {"TASK", "SERVICE", "SLOT", "NODE", "CPU%", "CPU TIME", "MEMORY"};
	struct out_table t;
	out_table_init(&t, 7, hdr);
	for (uint32_t i = 0; tl && tl->type == MSGPACK_OBJECT_ARRAY && i < tl->via.array.size; i++) {
		const msgpack_object *o = &tl->via.array.ptr[i];
		char id[24], svc[80], slot[16], node[80], cpu[24] = "-", ctime[24], mem[24];
		bool known = false;
		snprintf(id, sizeof id, "%llu", (unsigned long long)mp_u64_or0(o, "id"));
		mp_str_or(o, "service", svc, sizeof svc, "-");
		if (!svc[0])
			snprintf(svc, sizeof svc, "-");
		snprintf(slot, sizeof slot, "%llu", (unsigned long long)mp_u64_or0(o, "slot"));
		mp_str_or(o, "node", node, sizeof node, "-");
		mp_get_bool(o, "cpu_known", &known);
		if (known)
			snprintf(cpu, sizeof cpu, "%.1f", mp_double(o, "cpu_pct"));
		snprintf(ctime, sizeof ctime, "%.2fs", mp_double(o, "cpu_seconds"));
		out_bytes(mp_u64_or0(o, "memory"), mem, sizeof mem);
		const char *row[] = {id, svc, slot, node, cpu, ctime, mem};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
}

int cmd_top(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc) {
			int rc = fmt_arg("top", argv[++i], &fmt);
			if (rc >= 0)
				return rc;
		} else
			return cli_usage("top", "unexpected argument %s", argv[i]);
	}
	struct mpr r;
	int rc = cli_rpc(cli, OP_TOP, NULL, &r);
	if (rc)
		return rc;
	if (fmt != OUT_TABLE) {
		struct mpw w;
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_key(&w, "services");
		const msgpack_object *sv = mp_get(r.root, "services"), *tk = mp_get(r.root, "tasks");
		if (sv)
			mpw_obj(&w, sv);
		else
			mpw_arr(&w, 0);
		mpw_key(&w, "tasks");
		if (tk)
			mpw_obj(&w, tk);
		else
			mpw_arr(&w, 0);
		mpw_map_end(&w);
		struct mpr doc;
		if (!mpr_decode(&doc, w.sb.data, w.sb.size)) {
			out_doc(fmt, doc.root);
			mpr_free(&doc);
		}
		mpw_free(&w);
		mpr_free(&r);
		return EXIT_OK;
	}
	top_services(mp_get(r.root, "services"));
	printf("\n");
	top_tasks(mp_get(r.root, "tasks"));
	mpr_free(&r);
	return EXIT_OK;
}

/* ---- events -------------------------------------------------------------------------------------- */

static void event_line(const msgpack_object *e)
{
	char kind[40], svc[80], msg[600], when[40];
	mp_str_or(e, "kind", kind, sizeof kind, "-");
	mp_str_or(e, "service", svc, sizeof svc, "");
	mp_str_or(e, "message", msg, sizeof msg, "");
	time_t t = (time_t)(mp_u64_or0(e, "at") / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s  %-17s %-16s %s\n", when, kind, svc[0] ? svc : "-", msg);
}

/* Prints events newer than *since and advances it. JSON/YAML print one document per event
 * when following (a stream), else one list. */
static int events_batch(struct cli *cli, enum out_fmt fmt, bool follow, uint64_t *since, int retry_ms)
{
	struct req_events q = {.since = *since};
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_EVENTS, &q, &r, retry_ms);
	if (rc)
		return rc;
	const msgpack_object *el = mp_get(r.root, "events");
	uint32_t n = el && el->type == MSGPACK_OBJECT_ARRAY ? el->via.array.size : 0;
	if (fmt != OUT_TABLE && !follow)
		out_doc(fmt, el);
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *e = &el->via.array.ptr[i];
		if (fmt == OUT_TABLE)
			event_line(e);
		else if (follow)
			out_doc(fmt, e);
		uint64_t id = mp_u64_or0(e, "id");
		if (id > *since)
			*since = id;
	}
	fflush(stdout);
	mpr_free(&r);
	return EXIT_OK;
}

int cmd_events(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	bool follow = false;
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc) {
			int rc = fmt_arg("events", argv[++i], &fmt);
			if (rc >= 0)
				return rc;
		} else if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = true;
		else
			return cli_usage("events", "unexpected argument %s", argv[i]);
	}
	uint64_t since = 0;
	int rc = events_batch(cli, fmt, follow, &since, 0);
	while (!rc && follow) {
		struct timespec ts = {0, 500 * 1000000};
		nanosleep(&ts, NULL);
		rc = events_batch(cli, fmt, follow, &since, 15000);
	}
	return rc;
}

/* orch console: where the node's console is, from the node itself (the kept listener is
 * the node's, and the node port is what a remote browser reaches). */
int cmd_console(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage("console", "unexpected argument %s", argv[1]);
	struct mpr r;
	int rc = cli_rpc(cli, OP_STATUS, NULL, &r);
	if (rc)
		return rc;
	char plain[80] = "", addr[80] = "", role[16] = "operator";
	mp_get_strbuf(r.root, "console_listen", plain, sizeof plain);
	mp_get_strbuf(r.root, "console_role", role, sizeof role);
	mp_get_strbuf(r.root, "addr", addr, sizeof addr);
	if (plain[0])
		printf("http://%s/\t(plain, role %s: the --console-listen address)\n", plain, role);
	printf("https://%s/\t(the node port: a browser with a user certificate of the cluster, its role)\n", addr);
	if (!plain[0])
		printf("no plain listener: start the node with --console-listen 127.0.0.1:7480 to have one\n");
	mpr_free(&r);
	return 0;
}
