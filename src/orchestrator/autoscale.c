#include "orchestrator/autoscale.h"
#include "spec/spec.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

uint64_t autoscale_last_scaled(const struct store *s, const char *service)
{
	uint64_t last = 0;
	TABLE_FOREACH(&s->events, const struct event, e)
		if (e->kind && !strcmp(e->kind, "scaled") && e->service && !strcmp(e->service, service) && e->at > last)
			last = e->at;
	return last;
}

static const struct as_load *load_of(const struct as_load *loads, size_t n, const char *service)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(loads[i].service, service))
			return &loads[i];
	return NULL;
}

/* One target with its observed load, in the same unit (requests/s, or CPU percent of one
 * replica's reservation summed over replicas). */
struct metric {
	const char *what; /* "requests/s", "CPU %" */
	double load, target;
};

static size_t metrics_of(const struct svc_spec *sp, const struct as_load *l, struct metric m[2])
{
	const struct autoscale *a = &sp->deploy.autoscale;
	size_t n = 0;
	if (!l)
		return 0;
	if (a->target_rps && l->has_rps)
		m[n++] = (struct metric){"requests/s", l->rps, (double)a->target_rps};
	uint64_t per = sp->deploy.reservations.cpus_milli ? sp->deploy.reservations.cpus_milli : sp->deploy.limits.cpus_milli;
	if (a->target_cpu && l->has_cpu && l->cpu_tasks && per)
		m[n++] = (struct metric){"CPU %", l->cpu_milli * 100.0 / (double)per, (double)a->target_cpu};
	return n;
}

static bool decide_one(const struct service *v, const struct svc_spec *sp, const struct as_load *l, uint64_t last,
		       uint64_t now, struct as_decision *d)
{
	const struct autoscale *a = &sp->deploy.autoscale;
	uint64_t R = v->replicas;
	memset(d, 0, sizeof *d);
	d->service_id = v->id;
	snprintf(d->service, sizeof d->service, "%s", v->name);
	d->from = R;
	if (R < a->min || R > a->max) {
		d->to = R < a->min ? a->min : a->max;
		snprintf(d->reason, sizeof d->reason, "%llu replicas is outside the autoscaling range [%llu, %llu]",
			 (unsigned long long)R, (unsigned long long)a->min, (unsigned long long)a->max);
		return true;
	}
	struct metric m[2];
	size_t n = metrics_of(sp, l, m);
	if (!n)
		return false;
	/* up: some target exceeded */
	uint64_t up = 0;
	const struct metric *why = NULL;
	for (size_t i = 0; i < n; i++) {
		if (R && m[i].load / (double)R <= m[i].target)
			continue;
		if (!R && m[i].load <= 0)
			continue;
		uint64_t want = (uint64_t)ceil(m[i].load / m[i].target);
		if (want > up) {
			up = want;
			why = &m[i];
		}
	}
	if (why) {
		if (up < R + 1)
			up = R + 1;
		if (up > a->max)
			up = a->max;
		if (up <= R || (last && now < last + a->scale_up_cooldown_ms))
			return false;
		d->to = up;
		snprintf(d->reason, sizeof d->reason, "%s per replica %.1f > target %.0f", why->what,
			 R ? why->load / (double)R : why->load, why->target);
		return true;
	}
	/* down: every target still met with fewer replicas */
	uint64_t down = a->min > 1 ? a->min : 1;
	for (size_t i = 0; i < n; i++) {
		uint64_t need = (uint64_t)floor(m[i].load / m[i].target) + 1;
		if (need > down)
			down = need;
	}
	uint64_t since = last > v->created_at ? last : v->created_at;
	if (down >= R || now < since + a->scale_down_cooldown_ms)
		return false;
	d->to = down;
	size_t off = 0;
	for (size_t i = 0; i < n && off < sizeof d->reason; i++)
		off += (size_t)snprintf(d->reason + off, sizeof d->reason - off, "%s%s per replica %.1f < target %.0f with %llu",
					i ? ", " : "", m[i].what, m[i].load / (double)down, m[i].target,
					(unsigned long long)down);
	return true;
}

bool autoscale_wanted(const struct store *s)
{
	bool any = false;
	TABLE_FOREACH(&s->services, const struct service, v) {
		struct mpr r;
		struct svc_spec sp;
		if (any || mpr_decode(&r, v->spec.data, v->spec.len))
			continue;
		any = !svc_spec_decode(r.root, &sp, NULL) && sp.deploy.autoscale.enabled;
		svc_spec_free(&sp);
		mpr_free(&r);
	}
	return any;
}

size_t autoscale_decide(const struct store *s, const struct as_load *loads, size_t nloads, uint64_t now,
			struct as_decision *out, size_t max)
{
	size_t n = 0;
	TABLE_FOREACH(&s->services, const struct service, v) {
		if (n == max)
			break;
		const struct svc_spec *sp = service_spec(v);
		if (sp && sp->deploy.autoscale.enabled &&
		    decide_one(v, sp, load_of(loads, nloads, v->name), autoscale_last_scaled(s, v->name), now, &out[n]))
			n++;
	}
	return n;
}

void autoscale_event(struct mpw *w, const char *service, uint64_t from, uint64_t to, const char *why)
{
	char msg[512];
	snprintf(msg, sizeof msg, "%s scaled from %llu to %llu: %s", service, (unsigned long long)from, (unsigned long long)to,
		 why);
	mpw_map_begin(w);
	mpw_kstr(w, "kind", "scaled");
	mpw_kstr(w, "service", service);
	mpw_kstr(w, "message", msg);
	mpw_map_end(w);
}

void autoscale_body(const struct as_decision *d, uint64_t now, struct mpw *w)
{
	char why[300];
	snprintf(why, sizeof why, "autoscaler: %s", d->reason);
	struct mpw ev;
	mpw_init(&ev);
	mpw_arr(&ev, 1);
	autoscale_event(&ev, d->service, d->from, d->to, why);
	struct cmd_service_scale b = {.name = d->service, .replicas = d->to, .reason = why, .at = now,
				      .events = {.raw = ev.sb.data, .len = ev.sb.size}};
	cmd_body(w, CMD_SERVICE_SCALE, &b);
	mpw_free(&ev);
}

int autoscale_check_manual(const struct service *v, uint64_t replicas, char *err)
{
	const struct svc_spec *sp = service_spec(v);
	if (sp && sp->deploy.autoscale.enabled && (replicas < sp->deploy.autoscale.min || replicas > sp->deploy.autoscale.max))
		return errf(err, E_INVAL,
			  "scale %s: %llu replicas is outside its autoscaling range: min %llu, max %llu "
			  "(change deploy.x-orch-autoscale in its spec to go beyond)",
			  v->name, (unsigned long long)replicas, (unsigned long long)sp->deploy.autoscale.min,
			  (unsigned long long)sp->deploy.autoscale.max);
	return 0;
}
