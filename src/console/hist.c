#include "console/hist.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct hist_series *series_of(struct hist *h, const char *name, size_t n)
{
	for (size_t i = 0; i < h->n; i++)
		if (strlen(h->series[i].name) == n && !memcmp(h->series[i].name, name, n))
			return &h->series[i];
	if (h->n == HIST_SERVICES || n >= sizeof h->series[0].name)
		return NULL;
	for (size_t i = 0; i < n; i++) /* hist_json writes names unescaped */
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return NULL;
	h->series = xrealloc(h->series, (h->n + 1) * sizeof *h->series);
	struct hist_series *s = &h->series[h->n++];
	memset(s, 0, sizeof *s);
	memcpy(s->name, name, n);
	return s;
}

static double num(const msgpack_object *o)
{
	if (!o)
		return 0;
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return o->via.f64;
	default: return 0;
	}
}

void hist_add_top(struct hist *h, uint64_t at, const msgpack_object *top)
{
	const msgpack_object *sv = mp_get(top, "services"), *tk = mp_get(top, "tasks");
	if (!sv || sv->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < sv->via.array.size; i++) {
		const msgpack_object *o = &sv->via.array.ptr[i], *name = mp_get(o, "name");
		if (!mp_is_str(name))
			continue;
		struct hist_series *s = series_of(h, name->via.str.ptr, name->via.str.size);
		if (!s)
			continue;
		struct hist_sample x = {.at = at, .rps = (float)num(mp_get(o, "rps")), .p50_ms = -1, .p95_ms = -1};
		struct lat_hist lat, win;
		if (!lat_get(o, "latency", &lat)) {
			if (s->has_lat) {
				lat_since(&lat, &s->lat, &win);
				if (lat_count(&win)) {
					x.p50_ms = (float)(lat_quantile_us(&win, 0.5) / 1000);
					x.p95_ms = (float)(lat_quantile_us(&win, 0.95) / 1000);
				}
			}
			s->lat = lat;
			s->has_lat = true;
		}
		for (uint32_t k = 0; tk && tk->type == MSGPACK_OBJECT_ARRAY && k < tk->via.array.size; k++) {
			const msgpack_object *t = &tk->via.array.ptr[k], *ts = mp_get(t, "service");
			if (mp_is_str(ts) && ts->via.str.size == name->via.str.size &&
			    !memcmp(ts->via.str.ptr, name->via.str.ptr, ts->via.str.size)) {
				x.cpu_pct += (float)num(mp_get(t, "cpu_pct"));
				x.mem += (float)num(mp_get(t, "memory"));
			}
		}
		s->s[s->head] = x;
		s->head = (s->head + 1) % HIST_SLOTS;
		if (s->count < HIST_SLOTS)
			s->count++;
	}
}

void hist_json(const struct hist *h, uint64_t now, struct buf *out)
{
	buf_printf(out, "{\"period_ms\":%d,\"now\":%llu,\"services\":[", HIST_PERIOD_MS, (unsigned long long)now);
	for (size_t i = 0; i < h->n; i++) {
		const struct hist_series *s = &h->series[i];
		buf_printf(out, "%s{\"name\":\"%s\",\"samples\":[", i ? "," : "", s->name);
		for (size_t k = 0; k < s->count; k++) {
			const struct hist_sample *x = &s->s[(s->head + HIST_SLOTS - s->count + k) % HIST_SLOTS];
			buf_printf(out, "%s[%llu,%.3f,%.2f,%.0f,", k ? "," : "", (unsigned long long)x->at, x->rps, x->cpu_pct,
				   x->mem);
			if (x->p50_ms < 0)
				buf_printf(out, "null,null]");
			else
				buf_printf(out, "%.3f,%.3f]", x->p50_ms, x->p95_ms);
		}
		buf_printf(out, "]}");
	}
	buf_printf(out, "]}");
}

void hist_free(struct hist *h)
{
	free(h->series);
	h->series = NULL;
	h->n = 0;
}
