/* The mesh's latency histogram (traffic/latency.h): bucket edges, percentiles from the
 * buckets, windows between two readings (resets included), the wire form. */
#include "unit.h"
#include "traffic/latency.h"

UNIT(latency_bucket_edges_are_inclusive)
{
	CHECK_EQ_INT(lat_bucket(0), 0);
	CHECK_EQ_INT(lat_bucket(100), 0);
	CHECK_EQ_INT(lat_bucket(101), 1);
	CHECK_EQ_INT(lat_bucket(50000), 8);
	CHECK_EQ_INT(lat_bucket(50001), 9);
	CHECK_EQ_INT(lat_bucket(5000000), LAT_BUCKETS - 2);
	CHECK_EQ_INT(lat_bucket(5000001), LAT_BUCKETS - 1);
	CHECK_EQ_INT(lat_bucket(UINT64_MAX), LAT_BUCKETS - 1);
	for (unsigned i = 1; i < LAT_BUCKETS - 1; i++) /* bounds grow */
		CHECK(lat_bounds_us[i] > lat_bounds_us[i - 1]);
	struct lat_hist h = {0};
	lat_record(&h, 100);
	lat_record(&h, 101);
	lat_record(&h, 9000000);
	CHECK_EQ_INT(h.n[0], 1);
	CHECK_EQ_INT(h.n[1], 1);
	CHECK_EQ_INT(h.n[LAT_BUCKETS - 1], 1);
	CHECK_EQ_INT(lat_count(&h), 3);
	CHECK_EQ_INT(h.sum_us, 9000201);
}

UNIT(latency_quantiles_from_buckets)
{
	struct lat_hist h = {0};
	CHECK(lat_quantile_us(&h, 0.5) < 0); /* empty */
	for (int i = 0; i < 50; i++)
		lat_record(&h, 80); /* [0, 100] */
	for (int i = 0; i < 50; i++)
		lat_record(&h, 40000); /* (25000, 50000] */
	/* rank 50 is the last of the first bucket: its upper bound */
	CHECK(lat_quantile_us(&h, 0.5) == 100);
	/* rank 90: 40 of 50 into (25000, 50000] */
	CHECK(lat_quantile_us(&h, 0.9) == 25000 + 25000 * 40.0 / 50);
	CHECK(lat_quantile_us(&h, 0.01) == 100 * 1.0 / 50);
	struct lat_hist slow = {0};
	lat_record(&slow, 60000000); /* only in +Inf: reported as the last finite bound */
	CHECK(lat_quantile_us(&slow, 0.95) == (double)lat_bounds_us[LAT_BUCKETS - 2]);
}

UNIT(latency_windows_add_and_reset)
{
	struct lat_hist a = {0}, b = {0}, w, sum = {0};
	lat_record(&a, 200);
	b = a;
	lat_record(&b, 200);
	lat_record(&b, 3000);
	lat_since(&b, &a, &w);
	CHECK_EQ_INT(lat_count(&w), 2);
	CHECK_EQ_INT(w.n[lat_bucket(200)], 1);
	CHECK_EQ_INT(w.sum_us, 3200);
	/* b restarted from zero: what it has now is the window */
	struct lat_hist r = {0};
	lat_record(&r, 3000);
	lat_since(&r, &b, &w);
	CHECK_EQ_INT(lat_count(&w), 1);
	CHECK_EQ_INT(w.n[lat_bucket(3000)], 1);
	lat_add(&sum, &a);
	lat_add(&sum, &b);
	CHECK_EQ_INT(lat_count(&sum), 4);
	CHECK_EQ_INT(sum.sum_us, 3600);
}

UNIT(latency_wire_form)
{
	struct lat_hist h = {0}, back;
	lat_record(&h, 7);
	lat_record(&h, 700000);
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	lat_put(&w, "lat", &h);
	mpw_kstr(&w, "bad", "x");
	mpw_map_end(&w);
	struct mpr r;
	CHECK(!mpr_decode(&r, w.sb.data, w.sb.size));
	CHECK_EQ_INT(lat_get(r.root, "lat", &back), 0);
	CHECK(!memcmp(&back, &h, sizeof h));
	CHECK_EQ_INT(lat_get(r.root, "absent", &back), 0);
	CHECK_EQ_INT(lat_count(&back), 0);
	CHECK_EQ_INT(lat_get(r.root, "bad", &back), -1);
	CHECK_EQ_INT(lat_count(&back), 0);
	mpr_free(&r);
	mpw_free(&w);
	/* nothing recorded: nothing written */
	struct lat_hist empty = {0};
	mpw_init(&w);
	mpw_map_begin(&w);
	lat_put(&w, "lat", &empty);
	mpw_map_end(&w);
	CHECK(!mpr_decode(&r, w.sb.data, w.sb.size));
	CHECK(mp_get(r.root, "lat") == NULL);
	mpr_free(&r);
	mpw_free(&w);
}
