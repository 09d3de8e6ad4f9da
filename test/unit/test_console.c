/* The console's pure parts: HTTP requests read from a byte stream (net/httpreq.h) whole or
 * in pieces, with their body, refused when malformed or too large; and the plots' hour of
 * samples (console/hist.h) from "top" replies, oldest first, bounded. */
#include "unit.h"
#include "console/hist.h"
#include "net/httpreq.h"
#include "util/err.h"
#include "util/mem.h"

UNIT(httpreq_whole_and_in_pieces)
{
	const char *req = "POST /api/service.scale HTTP/1.1\r\nHost: 127.0.0.1:7480\r\nX-Orch-Console: 1\r\n"
			  "content-length: 29\r\n\r\n{\"name\":\"web\",\"replicas\":3}\r\n";
	struct httpreq rq;
	char err[ERR_LEN];
	size_t n = strlen(req);
	for (size_t k = 0; k < n; k++) /* every prefix: more bytes needed */
		CHECK_EQ_INT(httpreq_parse(req, k, &rq, err), 0);
	CHECK_EQ_INT(httpreq_parse(req, n, &rq, err), 1);
	CHECK_STR(rq.method, "POST");
	CHECK_STR(rq.path, "/api/service.scale");
	CHECK_STR(rq.host, "127.0.0.1:7480");
	CHECK(rq.console);
	CHECK_EQ_INT(rq.body_len, 29);
	CHECK(!memcmp(rq.body, "{\"name\":\"web\"", 13));
	CHECK_EQ_INT(rq.total, n);
	/* a GET without headers, bare newlines */
	CHECK_EQ_INT(httpreq_parse("GET / HTTP/1.0\n\n", 16, &rq, err), 1);
	CHECK_STR(rq.path, "/");
	CHECK(!rq.console && !rq.body_len);
}

UNIT(httpreq_refuses_bad_requests)
{
	struct httpreq rq;
	char err[ERR_LEN];
	const char *bad[] = {
		"GET\r\n\r\n",
		"GET nopath HTTP/1.1\r\n\r\n",
		"GET /a\x01b HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"TOOLONGMETHOD / HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ_INT(httpreq_parse(bad[i], strlen(bad[i]), &rq, err), -1);
	/* a head that never ends is refused once it passes the limit */
	char *big = xmalloc(HTTPREQ_HEAD_MAX + 2);
	memset(big, 'a', HTTPREQ_HEAD_MAX + 1);
	memcpy(big, "GET /", 5);
	CHECK_EQ_INT(httpreq_parse(big, HTTPREQ_HEAD_MAX + 1, &rq, err), -1);
	free(big);
}

/* A top reply: services [{name, rps, latency}], tasks [{service, cpu_pct, memory}]. */
static void top_reply_lat(struct mpr *r, double rps, uint64_t mem, const struct lat_hist *lat)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_key(&w, "services");
	mpw_arr(&w, 2);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "web");
	mpw_key(&w, "rps");
	msgpack_pack_double(&w.pk, rps);
	if (lat)
		lat_put(&w, "latency", lat);
	mpw_map_end(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "bad\"name"); /* not a service name: kept out of the JSON */
	mpw_map_end(&w);
	mpw_key(&w, "tasks");
	mpw_arr(&w, 2);
	for (int i = 0; i < 2; i++) {
		mpw_map_begin(&w);
		mpw_kstr(&w, "service", "web");
		mpw_key(&w, "cpu_pct");
		msgpack_pack_double(&w.pk, 1.5);
		mpw_ku64(&w, "memory", mem);
		mpw_map_end(&w);
	}
	mpw_map_end(&w);
	CHECK(!mpr_decode(r, w.sb.data, w.sb.size));
	mpw_free(&w);
}

static void top_reply(struct mpr *r, double rps, uint64_t mem)
{
	top_reply_lat(r, rps, mem, NULL);
}

UNIT(hist_keeps_an_hour_oldest_first)
{
	struct hist h = {0};
	for (int i = 0; i < HIST_SLOTS + 10; i++) {
		struct mpr r;
		top_reply(&r, i, 1000);
		hist_add_top(&h, (uint64_t)i * HIST_PERIOD_MS, r.root);
		mpr_free(&r);
	}
	CHECK_EQ_INT(h.n, 1);
	CHECK_EQ_INT(h.series[0].count, HIST_SLOTS);
	struct buf b = {0};
	hist_json(&h, 1, &b);
	buf_append(&b, "", 1);
	const char *s = (const char *)b.data;
	/* the ten oldest samples were forgotten: the first kept is sample 10, summed over both
	 * tasks (CPU 3 %, memory 2000) */
	char first[64];
	snprintf(first, sizeof first, "\"samples\":[[%d,10.000,3.00,2000,null,null]", 10 * HIST_PERIOD_MS);
	CHECK(strstr(s, first) != NULL);
	CHECK(strstr(s, "bad") == NULL);
	buf_free(&b);
	hist_free(&h);
}

/* Latency per sample: the percentiles of the requests timed since the sample before (the
 * cluster's counts only grow), none for the first sample or a quiet window, and a count
 * that went backwards (a node restarted) starts the window again. */
UNIT(hist_latency_per_window)
{
	struct hist h = {0};
	struct lat_hist lat = {0};
	struct mpr r;
	for (int i = 0; i < 10; i++)
		lat_record(&lat, 30000); /* before the first sample: no window yet */
	top_reply_lat(&r, 1, 0, &lat);
	hist_add_top(&h, 0, r.root);
	mpr_free(&r);
	for (int i = 0; i < 100; i++) /* 100 requests in (1, 2.5] ms */
		lat_record(&lat, 2000);
	top_reply_lat(&r, 1, 0, &lat);
	hist_add_top(&h, HIST_PERIOD_MS, r.root);
	mpr_free(&r);
	top_reply_lat(&r, 1, 0, &lat); /* nothing since */
	hist_add_top(&h, 2 * HIST_PERIOD_MS, r.root);
	mpr_free(&r);
	struct lat_hist fresh = {0}; /* a restart: fewer than before */
	for (int i = 0; i < 4; i++)
		lat_record(&fresh, 70000);
	top_reply_lat(&r, 1, 0, &fresh);
	hist_add_top(&h, 3 * HIST_PERIOD_MS, r.root);
	mpr_free(&r);
	struct buf b = {0};
	hist_json(&h, 1, &b);
	buf_append(&b, "", 1);
	const char *s = (const char *)b.data;
	CHECK(strstr(s, "[0,1.000,3.00,0,null,null]") != NULL);
	/* p50 of 100 in (1000, 2500] µs: 1000 + 1500 * 50/100 = 1750 µs; p95: 2425 µs */
	CHECK(strstr(s, ",1.750,2.425]") != NULL);
	CHECK(strstr(s, "[10000,1.000,3.00,0,null,null]") != NULL);
	/* 4 in (50, 100] ms: p50 75 ms, p95 50 + 50 * 3.8/4 = 97.5 ms */
	CHECK(strstr(s, "[15000,1.000,3.00,0,75.000,97.500]") != NULL);
	buf_free(&b);
	hist_free(&h);
}
