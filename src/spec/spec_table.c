/* The spec's field lists: every supported key, its type, default and range, in the
 * order of the canonical encoding. Adding a key means adding one line here (and a
 * member in spec.h); the parser, codec and defaults follow. Appending keeps older
 * encodings decodable; reordering changes every stored spec's bytes. */
#include "spec/spec_table.h"
#include "util/err.h"
#include "util/mem.h"
#include <stddef.h>
#include <string.h>

#define S(n) ((uint64_t)(n) * 1000)
#define N(arr) (sizeof arr / sizeof arr[0])

static const char *const port_proto_names[] = {"tcp", "udp", NULL};
static const char *const port_mode_names[] = {"ingress", "host", NULL};
static const char *const net_names[] = {"bridge", "host", NULL};
static const char *const net_unsupported[] = {"none", NULL};
static const char *const deploy_mode_names[] = {"replicated", "global", NULL};
static const char *const dep_names[] = {"service_started", "service_healthy", "service_completed_successfully", NULL};
static const char *const netdrv_names[] = {"bridge", "overlay", NULL};
static const char *const netdrv_unsupported[] = {"host", "none", "macvlan", "ipvlan", NULL};
static const char *const restart_names[] = {"none", "on-failure", "any", NULL};
static const char *const fail_names[] = {"pause", "rollback", "continue", NULL};
static const char *const order_names[] = {"stop-first", "start-first", NULL};
static const char *const probe_names[] = {"http", "tcp", NULL};
static const char *const probe_role_names[] = {"readiness", "liveness", NULL};
static const char *const mount_type_names[] = {"volume", "bind", "tmpfs", NULL};
static const char *const mount_type_unsupported[] = {"npipe", "cluster", "image", NULL};

/* ---- ports (long syntax) ---- */

static const struct sf port_f[] = {
	{.key = "target", .kind = SF_U64, .off = offsetof(struct port_spec, target), .flags = SFF_REQUIRED, .lo = 1, .hi = 65535},
	{.key = "published", .kind = SF_U64, .off = offsetof(struct port_spec, published), .flags = 0, .hi = 65535},
	{.key = "protocol", .kind = SF_ENUM, .off = offsetof(struct port_spec, protocol), .flags = 0, .def = PROTO_TCP, .names = port_proto_names},
	{.key = "mode", .kind = SF_ENUM, .off = offsetof(struct port_spec, mode), .flags = 0, .def = PORT_MODE_INGRESS, .names = port_mode_names},
};
const struct sf_table port_table = {"port", N(port_f), port_f, NULL};

/* ---- volumes (long syntax) ---- */

/* Offsets relative to struct mount_spec: volume:, bind: and tmpfs: are only levels of
 * YAML nesting. */
static const struct sf mount_volume_f[] = {
	{.key = "nocopy", .kind = SF_BOOL, .off = offsetof(struct mount_spec, nocopy), .flags = 0},
};
static const struct sf_table mount_volume_table = {"volume", N(mount_volume_f), mount_volume_f, NULL};

static const struct sf mount_bind_f[] = {
	{.key = "create_host_path", .kind = SF_BOOL, .off = offsetof(struct mount_spec, create_host_path), .flags = 0},
};
static const struct sf_table mount_bind_table = {"bind", N(mount_bind_f), mount_bind_f, NULL};

static const struct sf mount_tmpfs_f[] = {
	{.key = "size", .kind = SF_BYTES, .off = offsetof(struct mount_spec, tmpfs_size), .flags = 0},
	{.key = "mode", .kind = SF_MODE, .off = offsetof(struct mount_spec, tmpfs_mode), .flags = 0, .hi = 07777},
};
static const struct sf_table mount_tmpfs_table = {"tmpfs", N(mount_tmpfs_f), mount_tmpfs_f, NULL};

static int mount_check(void *obj, char *msg)
{
	struct mount_spec *m = obj;
	if (!m->target || m->target[0] != '/')
		return errf(msg, E_INVAL, "target must be an absolute path");
	if (m->type == MOUNT_TMPFS && m->source)
		return errf(msg, E_INVAL, "a tmpfs mount takes no source");
	if (m->type == MOUNT_BIND && !m->source)
		return errf(msg, E_INVAL, "a bind mount needs a source (a host path)");
	if (m->type != MOUNT_TMPFS && (m->tmpfs_size || m->tmpfs_mode))
		return errf(msg, E_INVAL, "tmpfs options apply to type tmpfs only");
	if (m->type != MOUNT_VOLUME && m->nocopy)
		return errf(msg, E_INVAL, "volume.nocopy applies to type volume only");
	if (m->type != MOUNT_BIND && m->create_host_path)
		return errf(msg, E_INVAL, "bind.create_host_path applies to type bind only");
	return 0;
}

static const struct sf mount_f[] = {
	{.key = "type", .kind = SF_ENUM, .off = offsetof(struct mount_spec, type), .flags = SFF_REQUIRED, .def = MOUNT_VOLUME,
	 .names = mount_type_names, .unsupported = mount_type_unsupported},
	{.key = "source", .kind = SF_STR, .off = offsetof(struct mount_spec, source), .flags = 0},
	{.key = "target", .kind = SF_STR, .off = offsetof(struct mount_spec, target), .flags = SFF_REQUIRED},
	{.key = "read_only", .kind = SF_BOOL, .off = offsetof(struct mount_spec, read_only), .flags = 0},
	{.key = "volume", .kind = SF_SUB, .off = 0, .flags = 0, .sub = &mount_volume_table},
	{.key = "bind", .kind = SF_SUB, .off = 0, .flags = 0, .sub = &mount_bind_table},
	{.key = "tmpfs", .kind = SF_SUB, .off = 0, .flags = 0, .sub = &mount_tmpfs_table},
	{.key = "external", .kind = SF_BOOL, .off = offsetof(struct mount_spec, external), .flags = SFF_NOYAML},
	{.key = "labels", .kind = SF_LABELS, .off = offsetof(struct mount_spec, labels), .flags = SFF_NOYAML},
};
const struct sf_table mount_table = {"volume", N(mount_f), mount_f, mount_check};

/* ---- healthcheck (Compose) and x-orch-healthcheck ---- */

static int hc_check(void *obj, char *msg)
{
	struct healthcheck *h = obj;
	if (h->disable && h->kind != HC_NONE) {
		strv_free(&h->test);
		h->kind = HC_NONE;
	}
	h->disable = h->kind == HC_NONE;
	return 0;
}

static const struct sf hc_f[] = {
	{.key = "test", .kind = SF_HCTEST, .off = 0, .flags = 0},
	{.key = "interval", .kind = SF_DUR, .off = offsetof(struct healthcheck, interval_ms), .flags = 0, .def = S(30)},
	{.key = "timeout", .kind = SF_DUR, .off = offsetof(struct healthcheck, timeout_ms), .flags = 0, .def = S(30)},
	{.key = "retries", .kind = SF_U64, .off = offsetof(struct healthcheck, retries), .flags = 0, .def = 3},
	{.key = "start_period", .kind = SF_DUR, .off = offsetof(struct healthcheck, start_period_ms), .flags = 0},
	{.key = "disable", .kind = SF_BOOL, .off = offsetof(struct healthcheck, disable), .flags = 0},
};
static const struct sf_table hc_table = {"healthcheck", N(hc_f), hc_f, hc_check};

static int probe_check(void *obj, char *msg)
{
	struct probe *p = obj;
	p->enabled = true;
	/* Range checks that hold only once enabled (a disabled probe encodes port 0). */
	if (p->port == 0)
		return errf(msg, E_INVAL, "port must be between 1 and 65535");
	if (p->type == PROBE_TCP && p->path)
		return errf(msg, E_INVAL, "path applies to type http only");
	if (p->type == PROBE_HTTP && !p->path)
		p->path = xstrdup("/");
	if (p->path && p->path[0] != '/')
		return errf(msg, E_INVAL, "path must start with \"/\"");
	return 0;
}

static const struct sf probe_f[] = {
	{.key = "enabled", .kind = SF_BOOL, .off = offsetof(struct probe, enabled), .flags = SFF_NOYAML},
	{.key = "type", .kind = SF_ENUM, .off = offsetof(struct probe, type), .flags = SFF_REQUIRED, .names = probe_names},
	{.key = "port", .kind = SF_U64, .off = offsetof(struct probe, port), .flags = SFF_REQUIRED, .hi = 65535},
	{.key = "path", .kind = SF_STR, .off = offsetof(struct probe, path), .flags = 0},
	{.key = "interval", .kind = SF_DUR, .off = offsetof(struct probe, interval_ms), .flags = 0, .def = S(10)},
	{.key = "timeout", .kind = SF_DUR, .off = offsetof(struct probe, timeout_ms), .flags = 0, .def = S(5)},
	{.key = "retries", .kind = SF_U64, .off = offsetof(struct probe, retries), .flags = 0, .def = 3},
	{.key = "start_period", .kind = SF_DUR, .off = offsetof(struct probe, start_period_ms), .flags = 0},
	{.key = "role", .kind = SF_ENUM, .off = offsetof(struct probe, role), .flags = 0, .def = PROBE_READINESS, .names = probe_role_names},
};
static const struct sf_table probe_table = {"x-orch-healthcheck", N(probe_f), probe_f, probe_check};

/* ---- deploy ---- */

static const struct sf limits_f[] = {
	{.key = "cpus", .kind = SF_CPUS, .off = offsetof(struct resources, cpus_milli), .flags = 0},
	{.key = "memory", .kind = SF_BYTES, .off = offsetof(struct resources, memory_bytes), .flags = 0},
	{.key = "pids", .kind = SF_U64, .off = offsetof(struct resources, pids), .flags = 0},
};
static const struct sf_table limits_table = {"resources", N(limits_f), limits_f, NULL};

/* Offsets relative to struct deploy: "resources" is only a level of YAML nesting. */
static const struct sf resources_f[] = {
	{.key = "limits", .kind = SF_SUB, .off = offsetof(struct deploy, limits), .flags = 0, .sub = &limits_table},
	{.key = "reservations", .kind = SF_SUB, .off = offsetof(struct deploy, reservations), .flags = 0, .sub = &limits_table},
};
static const struct sf_table resources_table = {"resources", N(resources_f), resources_f, NULL};

static int restart_given(void *obj, char *msg)
{
	((struct restart_policy *)obj)->given = true;
	return 0;
}

static const struct sf restart_f[] = {
	{.key = "condition", .kind = SF_ENUM, .off = offsetof(struct restart_policy, condition), .flags = 0, .def = RESTART_ANY, .names = restart_names},
	{.key = "delay", .kind = SF_DUR, .off = offsetof(struct restart_policy, delay_ms), .flags = 0, .def = S(5)},
	{.key = "max_attempts", .kind = SF_U64, .off = offsetof(struct restart_policy, max_attempts), .flags = 0},
	{.key = "window", .kind = SF_DUR, .off = offsetof(struct restart_policy, window_ms), .flags = 0},
	{.key = "given", .kind = SF_BOOL, .off = offsetof(struct restart_policy, given), .flags = SFF_NOYAML | SFF_NOCODEC},
};
static const struct sf_table restart_table = {"restart_policy", N(restart_f), restart_f, restart_given};

/* Swarm spreads over node labels only. */
static int pref_check(void *obj, char *msg)
{
	const struct pref *p = obj;
	if (!p->spread || strncmp(p->spread, "node.labels.", 12) || !p->spread[12])
		return errf(msg, E_INVAL, "spread \"%s\": expected node.labels.<key>", p->spread ? p->spread : "");
	return 0;
}

static const struct sf pref_f[] = {
	{.key = "spread", .kind = SF_STR, .off = offsetof(struct pref, spread), .flags = SFF_REQUIRED},
};
static const struct sf_table pref_table = {"preference", N(pref_f), pref_f, pref_check};

static const struct sf placement_f[] = {
	{.key = "constraints", .kind = SF_CONSTRAINTS, .off = offsetof(struct placement, constraints), .flags = 0},
	{.key = "preferences", .kind = SF_LIST, .off = offsetof(struct placement, preferences), .flags = 0, .sub = &pref_table,
	 .size = sizeof(struct pref)},
	{.key = "max_replicas_per_node", .kind = SF_U64, .off = offsetof(struct placement, max_replicas_per_node), .flags = 0},
};
static const struct sf_table placement_table = {"placement", N(placement_f), placement_f, NULL};

static const struct sf update_f[] = {
	{.key = "parallelism", .kind = SF_U64, .off = offsetof(struct update_config, parallelism), .flags = 0, .def = 1},
	{.key = "delay", .kind = SF_DUR, .off = offsetof(struct update_config, delay_ms), .flags = 0},
	{.key = "failure_action", .kind = SF_ENUM, .off = offsetof(struct update_config, failure_action), .flags = 0, .def = FAIL_PAUSE, .names = fail_names},
	{.key = "monitor", .kind = SF_DUR, .off = offsetof(struct update_config, monitor_ms), .flags = 0, .def = S(5)},
	{.key = "max_failure_ratio", .kind = SF_RATIO, .off = offsetof(struct update_config, max_failure_ratio), .flags = 0},
	{.key = "order", .kind = SF_ENUM, .off = offsetof(struct update_config, order), .flags = 0, .def = ORDER_STOP_FIRST, .names = order_names},
};
static const struct sf_table update_table = {"update_config", N(update_f), update_f, NULL};

static int autoscale_check(void *obj, char *msg)
{
	struct autoscale *a = obj;
	a->enabled = true;
	if (a->max == 0)
		return errf(msg, E_INVAL, "max must be at least 1");
	if (a->min > a->max)
		return errf(msg, E_INVAL, "min (%llu) is greater than max (%llu)", (unsigned long long)a->min,
			    (unsigned long long)a->max);
	if (!a->target_rps && !a->target_cpu)
		return errf(msg, E_INVAL, "set target_rps or target_cpu (or both)");
	return 0;
}

static const struct sf autoscale_f[] = {
	{.key = "enabled", .kind = SF_BOOL, .off = offsetof(struct autoscale, enabled), .flags = SFF_NOYAML},
	{.key = "min", .kind = SF_U64, .off = offsetof(struct autoscale, min), .flags = 0, .def = 1},
	{.key = "max", .kind = SF_U64, .off = offsetof(struct autoscale, max), .flags = SFF_REQUIRED},
	{.key = "target_rps", .kind = SF_U64, .off = offsetof(struct autoscale, target_rps), .flags = 0},
	{.key = "target_cpu", .kind = SF_U64, .off = offsetof(struct autoscale, target_cpu), .flags = 0, .hi = 100},
	{.key = "scale_up_cooldown", .kind = SF_DUR, .off = offsetof(struct autoscale, scale_up_cooldown_ms), .flags = 0, .def = S(30)},
	{.key = "scale_down_cooldown", .kind = SF_DUR, .off = offsetof(struct autoscale, scale_down_cooldown_ms), .flags = 0, .def = S(300)},
};
static const struct sf_table autoscale_table = {"x-orch-autoscale", N(autoscale_f), autoscale_f, autoscale_check};

/* A global service has one task per eligible node: no replica count of its own. */
static int deploy_check(void *obj, char *msg)
{
	const struct deploy *d = obj;
	if (d->mode != DEPLOY_GLOBAL)
		return 0;
	if (d->replicas != 1)
		return errf(msg, E_INVAL, "replicas applies to mode replicated only (a global service runs one task per eligible node)");
	if (d->autoscale.enabled)
		return errf(msg, E_INVAL, "x-orch-autoscale applies to mode replicated only");
	return 0;
}

static const struct sf deploy_f[] = {
	{.key = "mode", .kind = SF_ENUM, .off = offsetof(struct deploy, mode), .flags = 0, .def = DEPLOY_REPLICATED, .names = deploy_mode_names},
	{.key = "replicas", .kind = SF_U64, .off = offsetof(struct deploy, replicas), .flags = 0, .def = 1},
	{.key = "resources", .kind = SF_SUB, .off = 0, .flags = 0, .sub = &resources_table},
	{.key = "restart_policy", .kind = SF_SUB, .off = offsetof(struct deploy, restart), .flags = 0, .sub = &restart_table},
	{.key = "placement", .kind = SF_SUB, .off = offsetof(struct deploy, placement), .flags = 0, .sub = &placement_table},
	{.key = "update_config", .kind = SF_SUB, .off = offsetof(struct deploy, update), .flags = 0, .sub = &update_table},
	{.key = "rollback_config", .kind = SF_SUB, .off = offsetof(struct deploy, rollback), .flags = 0, .sub = &update_table},
	{.key = "labels", .kind = SF_LABELS, .off = offsetof(struct deploy, labels), .flags = 0},
	{.key = "x-orch-autoscale", .kind = SF_SUB, .off = offsetof(struct deploy, autoscale), .flags = 0, .sub = &autoscale_table},
	{.key = "x-orch-rebalance", .kind = SF_BOOL, .off = offsetof(struct deploy, rebalance), .flags = 0, .def = 1},
};
static const struct sf_table deploy_table = {"deploy", N(deploy_f), deploy_f, deploy_check};

/* ---- depends_on and networks ---- */

static const struct sf dep_f[] = {
	{.key = "service", .kind = SF_STR, .off = offsetof(struct dep, service), .flags = SFF_NOYAML},
	{.key = "condition", .kind = SF_ENUM, .off = offsetof(struct dep, condition), .flags = 0, .def = DEP_STARTED, .names = dep_names},
	{.key = "required", .kind = SF_BOOL, .off = offsetof(struct dep, required), .flags = 0, .def = 1},
	{.key = "restart", .kind = SF_BOOL, .off = offsetof(struct dep, restart), .flags = 0},
	{.key = "digest", .kind = SF_STR, .off = offsetof(struct dep, digest), .flags = SFF_NOYAML},
};
static const struct sf_table dep_table = {"depends_on", N(dep_f), dep_f, NULL};

static bool alias_valid(const char *a)
{
	size_t n = strlen(a);
	if (!n || n > 253 || a[0] == '.' || a[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9') || strchr("-_.", a[i])))
			return false;
	return true;
}

static int svc_net_check(void *obj, char *msg)
{
	const struct svc_net *n = obj;
	for (size_t i = 0; i < n->aliases.n; i++)
		if (!alias_valid(n->aliases.v[i]))
			return errf(msg, E_INVAL, "alias \"%s\": use lowercase letters, digits, '-', '_' and '.'", n->aliases.v[i]);
	return 0;
}

static const struct sf svc_net_f[] = {
	{.key = "name", .kind = SF_STR, .off = offsetof(struct svc_net, name), .flags = SFF_NOYAML},
	{.key = "aliases", .kind = SF_ARGV, .off = offsetof(struct svc_net, aliases), .flags = 0},
	{.key = "ref", .kind = SF_STR, .off = offsetof(struct svc_net, ref), .flags = SFF_NOYAML},
};
static const struct sf_table svc_net_table = {"network", N(svc_net_f), svc_net_f, svc_net_check};

/* Top-level networks: (spec_yaml.c resolves services' networks against them). */
static const struct sf network_f[] = {
	{.key = "key", .kind = SF_STR, .off = offsetof(struct spec_network, key), .flags = SFF_NOYAML},
	{.key = "driver", .kind = SF_ENUM, .off = offsetof(struct spec_network, driver), .flags = 0, .def = NETDRV_BRIDGE,
	 .names = netdrv_names, .unsupported = netdrv_unsupported},
	{.key = "external", .kind = SF_BOOL, .off = offsetof(struct spec_network, external), .flags = 0},
	{.key = "name", .kind = SF_STR, .off = offsetof(struct spec_network, name), .flags = 0},
	{.key = "labels", .kind = SF_LABELS, .off = offsetof(struct spec_network, labels), .flags = 0},
	/* Swarm's "standalone containers may join": orch runs no standalone containers */
	{.key = "attachable", .kind = SF_BOOL, .off = offsetof(struct spec_network, attachable), .flags = 0},
};
const struct sf_table network_table = {"network", N(network_f), network_f, NULL};

/* ---- secrets and configs (short syntax: the source alone) ---- */

/* The target a reference gets when it names none, or names a relative one: under
 * /run/secrets for a secret (as Compose), under / for a config. */
static int ref_target(struct file_ref *r, const char *dir, char *msg)
{
	if (!r->source || !*r->source)
		return errf(msg, E_INVAL, "source must name a secret or config");
	const char *t = r->target && *r->target ? r->target : r->source;
	if (t[0] != '/') {
		char *abs = xasprintf("%s/%s", dir, t);
		free(r->target);
		r->target = abs;
	} else if (t != r->target) { /* no target, and the source itself is a path */
		free(r->target);
		r->target = xstrdup(t);
	}
	size_t len = strlen(r->target);
	if (strstr(r->target, "/../") || (len >= 3 && !strcmp(r->target + len - 3, "/..")))
		return errf(msg, E_INVAL, "target %s must not contain \"..\"", r->target);
	if (r->target[len - 1] == '/')
		return errf(msg, E_INVAL, "target %s must name a file", r->target);
	return 0;
}

static int secret_ref_check(void *obj, char *msg)
{
	return ref_target(obj, "/run/secrets", msg);
}

static int config_ref_check(void *obj, char *msg)
{
	return ref_target(obj, "", msg);
}

static const struct sf file_ref_f[] = {
	{.key = "source", .kind = SF_STR, .off = offsetof(struct file_ref, source), .flags = SFF_REQUIRED},
	{.key = "target", .kind = SF_STR, .off = offsetof(struct file_ref, target), .flags = 0},
	{.key = "uid", .kind = SF_U64, .off = offsetof(struct file_ref, uid), .flags = 0, .hi = 0xffffffffu},
	{.key = "gid", .kind = SF_U64, .off = offsetof(struct file_ref, gid), .flags = 0, .hi = 0xffffffffu},
	{.key = "mode", .kind = SF_MODE, .off = offsetof(struct file_ref, mode), .flags = 0, .def = 0444, .hi = 0777},
	{.key = "version", .kind = SF_U64, .off = offsetof(struct file_ref, version), .flags = SFF_NOYAML},
};
const struct sf_table secret_ref_table = {"secret", N(file_ref_f), file_ref_f, secret_ref_check};
const struct sf_table config_ref_table = {"config", N(file_ref_f), file_ref_f, config_ref_check};

/* ---- service ---- */

static int svc_check(void *obj, char *msg)
{
	struct svc_spec *s = obj;
	if (s->working_dir && s->working_dir[0] != '/')
		return errf(msg, E_INVAL, "working_dir must be an absolute path");
	if (s->stop_signal && !spec_signal(s->stop_signal))
		return errf(msg, E_INVAL, "stop_signal %s: expected a signal name like SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 or a number", s->stop_signal);
	if (spec_compose_keys(s, msg) || spec_security_keys(s, msg))
		return E_INVAL;
	for (size_t i = 0; i < s->ports.n; i++) {
		const struct port_spec *a = &s->ports.v[i];
		for (size_t j = 0; a->published && j < i; j++) {
			const struct port_spec *b = &s->ports.v[j];
			if (a->published == b->published && a->protocol == b->protocol)
				return errf(msg, E_INVAL, "port %llu/%s is published twice",
					    (unsigned long long)a->published, port_proto_names[a->protocol]);
		}
	}
	for (size_t i = 0; i < s->mounts.n; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->mounts.v[i].target, s->mounts.v[j].target))
				return errf(msg, E_INVAL, "volumes: two mounts on %s", s->mounts.v[i].target);
	/* two files at one path would hide one another */
	for (size_t i = 0; i < s->secrets.n + s->configs.n; i++) {
		const struct file_ref *a = i < s->secrets.n ? &s->secrets.v[i] : &s->configs.v[i - s->secrets.n];
		for (size_t j = 0; j < i; j++) {
			const struct file_ref *b = j < s->secrets.n ? &s->secrets.v[j] : &s->configs.v[j - s->secrets.n];
			if (a->target && b->target && !strcmp(a->target, b->target))
				return errf(msg, E_INVAL, "%s and %s are both mounted at %s", b->source, a->source, a->target);
		}
	}
	return 0;
}

static const struct sf svc_f[] = {
	{.key = "name", .kind = SF_STR, .off = offsetof(struct svc_spec, name), .flags = SFF_NOYAML},
	{.key = "image", .kind = SF_STR, .off = offsetof(struct svc_spec, image), .flags = SFF_REQUIRED},
	{.key = "command", .kind = SF_ARGV, .off = offsetof(struct svc_spec, command), .flags = 0},
	{.key = "entrypoint", .kind = SF_ARGV, .off = offsetof(struct svc_spec, entrypoint), .flags = 0},
	{.key = "environment", .kind = SF_ENV, .off = offsetof(struct svc_spec, env), .flags = 0},
	{.key = "labels", .kind = SF_LABELS, .off = offsetof(struct svc_spec, labels), .flags = 0},
	{.key = "ports", .kind = SF_PORTS, .off = offsetof(struct svc_spec, ports), .flags = 0},
	{.key = "stop_grace_period", .kind = SF_DUR, .off = offsetof(struct svc_spec, stop_grace_ms), .flags = 0, .def = S(10)},
	{.key = "stop_signal", .kind = SF_STR, .off = offsetof(struct svc_spec, stop_signal), .flags = 0},
	{.key = "working_dir", .kind = SF_STR, .off = offsetof(struct svc_spec, working_dir), .flags = 0},
	{.key = "user", .kind = SF_STR, .off = offsetof(struct svc_spec, user), .flags = 0},
	{.key = "hostname", .kind = SF_STR, .off = offsetof(struct svc_spec, hostname), .flags = 0},
	{.key = "network_mode", .kind = SF_ENUM, .off = offsetof(struct svc_spec, network_mode), .flags = 0, .def = NET_BRIDGE, .names = net_names,
	 .unsupported = net_unsupported},
	{.key = "healthcheck", .kind = SF_SUB, .off = offsetof(struct svc_spec, healthcheck), .flags = 0, .sub = &hc_table},
	{.key = "x-orch-healthcheck", .kind = SF_SUB, .off = offsetof(struct svc_spec, probe), .flags = 0, .sub = &probe_table},
	{.key = "deploy", .kind = SF_SUB, .off = offsetof(struct svc_spec, deploy), .flags = 0, .sub = &deploy_table},
	{.key = "secrets", .kind = SF_FILES, .off = offsetof(struct svc_spec, secrets), .flags = 0, .sub = &secret_ref_table},
	{.key = "configs", .kind = SF_FILES, .off = offsetof(struct svc_spec, configs), .flags = 0, .sub = &config_ref_table},
	{.key = "restart", .kind = SF_STR, .off = offsetof(struct svc_spec, restart), .flags = SFF_NOCODEC},
	{.key = "expose", .kind = SF_ARGV, .off = offsetof(struct svc_spec, expose), .flags = SFF_NOCODEC},
	{.key = "extra_hosts", .kind = SF_LABELS, .off = offsetof(struct svc_spec, extra_hosts), .flags = SFF_HOSTS},
	{.key = "dns", .kind = SF_ARGV, .off = offsetof(struct svc_spec, dns), .flags = 0},
	{.key = "dns_search", .kind = SF_ARGV, .off = offsetof(struct svc_spec, dns_search), .flags = 0},
	{.key = "platform", .kind = SF_STR, .off = offsetof(struct svc_spec, platform), .flags = 0},
	{.key = "init", .kind = SF_BOOL, .off = offsetof(struct svc_spec, init), .flags = 0},
	{.key = "volumes", .kind = SF_MOUNTS, .off = offsetof(struct svc_spec, mounts), .flags = 0},
	{.key = "depends_on", .kind = SF_NAMED, .off = offsetof(struct svc_spec, depends_on), .flags = 0, .sub = &dep_table,
	 .size = sizeof(struct dep), .has_pos = true, .pos_off = offsetof(struct dep, pos)},
	{.key = "networks", .kind = SF_NAMED, .off = offsetof(struct svc_spec, networks), .flags = 0, .sub = &svc_net_table,
	 .size = sizeof(struct svc_net), .has_pos = true, .pos_off = offsetof(struct svc_net, pos)},
	{.key = "cap_add", .kind = SF_ARGV, .off = offsetof(struct svc_spec, cap_add), .flags = 0},
	{.key = "cap_drop", .kind = SF_ARGV, .off = offsetof(struct svc_spec, cap_drop), .flags = 0},
	{.key = "privileged", .kind = SF_BOOL, .off = offsetof(struct svc_spec, privileged), .flags = 0},
	{.key = "read_only", .kind = SF_BOOL, .off = offsetof(struct svc_spec, read_only), .flags = 0},
	{.key = "tmpfs", .kind = SF_ARGV, .off = offsetof(struct svc_spec, tmpfs), .flags = SFF_NOCODEC},
	{.key = "pids_limit", .kind = SF_U64, .off = offsetof(struct svc_spec, pids_limit), .flags = SFF_NOCODEC, .lo = 1},
	{.key = "ulimits", .kind = SF_LABELS, .off = offsetof(struct svc_spec, ulimits), .flags = SFF_ULIMITS},
	{.key = "sysctls", .kind = SF_LABELS, .off = offsetof(struct svc_spec, sysctls), .flags = 0},
	{.key = "security_opt", .kind = SF_ARGV, .off = offsetof(struct svc_spec, security_opt), .flags = SFF_NOCODEC},
	{.key = "seccomp", .kind = SF_STR, .off = offsetof(struct svc_spec, seccomp), .flags = SFF_NOYAML},
	{.key = "new_privileges", .kind = SF_BOOL, .off = offsetof(struct svc_spec, new_privileges), .flags = SFF_NOYAML},
};
const struct sf_table svc_table = {"service", N(svc_f), svc_f, svc_check};
