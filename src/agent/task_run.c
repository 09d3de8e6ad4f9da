#include "agent/task_run.h"
#include "util/layout.h"
#include "agent/fetch.h"
#include "agent/volumes.h"
#include "image/blobstore.h"
#include "image/image_load.h"
#include "image/ref.h"
#include "registry/registry.h"
#include "image/rootfs.h"
#include "image/unpack.h"
#include "net/ipam.h"
#include "runtime/bundle.h"
#include "runtime/caps.h"
#include "runtime/nssysctl.h"
#include "agent/userns.h"
#include "runtime/cgroup_stats.h"
#include "secret/envseal.h"
#include "secret/secfs.h"
#include "spec/spec.h"
#include "util/log.h"
#include "util/mem.h"
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static void rt_of(const struct run_job *j, struct rt *rt)
{
	rt->runtime = j->env->runtime;
	rt->state_dir = j->env->state_dir;
}

static void cgroup_of(const struct run_job *j, char *out, size_t n)
{
	snprintf(out, n, "/orch/%s/%llu", j->env->node_hex, (unsigned long long)j->task_id);
}

char **argv_dup(char **v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **o = xcalloc(n + 1, sizeof *o);
	for (size_t i = 0; i < n; i++)
		o[i] = xstrdup(v[i]);
	return o;
}

static char **strv_from(const struct strv *s)
{
	char **o = xcalloc(s->n + 1, sizeof *o);
	for (size_t i = 0; i < s->n; i++)
		o[i] = xstrdup(s->v[i]);
	return o;
}

static size_t strv_len(char **v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static void argv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static char **strv_cat(char **a, char **b)
{
	size_t na = strv_len(a), nb = strv_len(b);
	char **o = xcalloc(na + nb + 1, sizeof *o);
	for (size_t i = 0; i < na; i++)
		o[i] = xstrdup(a[i]);
	for (size_t i = 0; i < nb; i++)
		o[na + i] = xstrdup(b[i]);
	return o;
}

/* Docker's rules: a service entrypoint replaces the image's and drops the image's cmd;
 * a service command replaces the image's cmd. */
static char **resolve_args(const struct svc_spec *sp, const struct image_info *im)
{
	char **ep = sp->entrypoint.n ? strv_from(&sp->entrypoint) : argv_dup(im->entrypoint);
	char **cmd = sp->command.n ? strv_from(&sp->command) : sp->entrypoint.n ? argv_dup(NULL) : argv_dup(im->cmd);
	char **args = strv_cat(ep, cmd);
	argv_free(ep);
	argv_free(cmd);
	return args;
}

static void env_set(char ***env, const char *k, const char *v)
{
	size_t n = strv_len(*env), kl = strlen(k);
	for (size_t i = 0; i < n; i++)
		if (!strncmp((*env)[i], k, kl) && (*env)[i][kl] == '=') {
			free((*env)[i]);
			(*env)[i] = xasprintf("%s=%s", k, v);
			return;
		}
	*env = xrealloc(*env, (n + 2) * sizeof **env);
	(*env)[n] = xasprintf("%s=%s", k, v);
	(*env)[n + 1] = NULL;
}

static int write_file(const char *path, const char *text, char *err)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return errf(err, E_IO, "write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
	return 0;
}

/* Every blob of the image present locally: fetched from peers when missing. */
static int ensure_image(struct run_job *j, const struct image_info *im, const struct blobstore *bs)
{
	for (size_t i = 0; i <= im->nlayers; i++) {
		const char *dg = i < im->nlayers ? im->layers[i] : im->config_digest;
		if (!dg || blob_has(bs, dg))
			continue;
		if (fetch_blob(bs, dg, j->peers, j->npeers, j->image_node, j->env->tls, j->err))
			return errwrap(j->err, E_NOTFOUND, "image %s missing on this node", im->name);
	}
	return 0;
}

static void pull_progress(void *ctx, const struct reg_progress *p)
{
	struct run_job *j = ctx;
	if (!j->progress)
		return;
	pthread_mutex_lock(&j->progress->mu);
	snprintf(j->progress->msg, sizeof j->progress->msg, "pulling %.100s: %s, %u/%u layers, %.1f/%.1f MB", j->pulling,
		 p->phase ? p->phase : "", p->layers_done, p->layers_total, (double)p->bytes_done / 1e6,
		 (double)p->bytes_total / 1e6);
	j->progress->fresh = true;
	pthread_mutex_unlock(&j->progress->mu);
}

/* The image from its registry, when the spec pins one (node/resolve.h): blobs the store
 * holds already are not downloaded again. */
static int pull_image(struct run_job *j, const char *name, const char *platform, const struct blobstore *bs,
		      struct image_info *im)
{
	struct image_ref ref;
	int rc = image_ref_parse(name, &ref, j->err);
	if (rc)
		return rc;
	if (!j->env->reg)
		return errf(j->err, E_UNSUPP, "image %s: this node does not pull from registries", name);
	image_info_free(im);
	memset(im, 0, sizeof *im);
	struct reg_config cfg;
	regopts_bind(&cfg, j->env->reg, &j->login);
	cfg.platform = platform; /* the service's platform: (checked against this node), or the node's */
	j->pulling = name;
	rc = registry_pull(&cfg, bs, &ref, im, pull_progress, j, j->err);
	j->pulling = NULL;
	if (rc) /* the registry's message already says "pull <image>: ..." */
		return rc;
	free(im->name);
	im->name = xstrdup(name);
	struct mpw w;
	mpw_init(&w);
	image_info_encode(im, &w);
	j->pulled = (uint8_t *)mpw_take(&w, &j->pulled_len);
	mpw_free(&w);
	return 0;
}

/* A spec image pinned to a digest by the leader: the only kind a registry can serve again
 * byte for byte. */
static bool pinned(const char *name)
{
	struct image_ref ref;
	char e[ERR_LEN];
	return name && !image_ref_parse(name, &ref, e) && ref.digest[0];
}

/* A remapped task's net.* sysctls, set from the host (runtime/nssysctl.h), with the one
 * bundle.c gives every task of its own netns. */
static int net_sysctls(const char *netns, const struct svc_spec *sp, char *err)
{
	const char **k = xcalloc(sp->sysctls.n + 1, sizeof *k), **v = xcalloc(sp->sysctls.n + 1, sizeof *v);
	size_t n = 0;
	k[n] = "net.ipv4.ip_unprivileged_port_start";
	v[n++] = "0";
	for (size_t i = 0; i < sp->sysctls.n; i++)
		if (!strncmp(sp->sysctls.k[i], "net.", 4)) {
			k[n] = sp->sysctls.k[i];
			v[n++] = sp->sysctls.v[i];
		}
	int rc = nssysctl_apply(netns, k, v, n, err);
	free(k);
	free(v);
	return rc;
}

void run_prepare(struct run_job *j)
{
	struct svc_spec sp;
	struct image_info im;
	struct mpr r;
	struct blobstore bs = {0};
	char **args = NULL, **env = NULL;
	const char **layers = NULL;
	struct volumes_set vols = {0};
	struct bundle_bind *binds = NULL;
	size_t nbinds = 0;
	const char **caps = NULL;
	struct bundle_rlimit *rlim = NULL;
	char *rlim_types = NULL;
	memset(&im, 0, sizeof im);
	svc_spec_init(&sp);
	j->rc = 0;
	if (mpr_decode(&r, j->spec, j->spec_len)) {
		j->rc = errf(j->err, E_INVAL, "task spec is not msgpack");
		goto out;
	}
	svc_spec_free(&sp);
	j->rc = svc_spec_decode(r.root, &sp, j->err);
	mpr_free(&r);
	if (!j->rc) /* the environment comes sealed as the log holds it */
		j->rc = envseal_open_node(j->env->data_dir, &sp, j->err);
	if (j->rc)
		goto out;
	struct utsname un;
	char here[64];
	if (sp.platform && !uname(&un) && !spec_platform_matches(sp.platform, un.machine, here, sizeof here)) {
		j->rc = errf(j->err, E_UNSUPP, "platform %s: this node is %s", sp.platform, here);
		goto out;
	}
	bool known = j->image && !mpr_decode(&r, j->image, j->image_len);
	if (known) {
		j->rc = image_info_decode(r.root, &im, j->err);
		mpr_free(&r);
		if (j->rc)
			goto out;
	}
	if ((j->rc = blob_init(&bs, j->env->data_dir, j->err)))
		goto out;
	/* peers that hold the blobs first (a registry may be slow, far or rate-limited), then
	 * the registry */
	if (known)
		j->rc = ensure_image(j, &im, &bs);
	if ((!known || j->rc) && pinned(sp.image))
		j->rc = pull_image(j, sp.image, sp.platform, &bs, &im);
	else if (!known)
		j->rc = errf(j->err, E_NOTFOUND, "image %s is not loaded in the cluster (orch image load)", sp.image);
	if (j->rc)
		goto out;

	/* layers, unpacked once per digest */
	char layers_root[700];
	layout_path(layers_root, sizeof layers_root, j->env->data_dir, LAYOUT_LAYERS);
	mkdir(layers_root, 0700);
	layers = xcalloc(im.nlayers + 1, sizeof *layers);
	for (size_t i = 0; i < im.nlayers; i++) {
		char *bp = blob_path(&bs, im.layers[i]), *ld = layer_dir(layers_root, im.layers[i]);
		if (!bp || !ld) {
			free(bp);
			free(ld);
			j->rc = errf(j->err, E_INVAL, "image %s: bad layer digest", im.name);
			goto out;
		}
		struct stat st;
		if (stat(ld, &st))
			j->rc = layer_unpack(bp, ld, j->err);
		free(bp);
		layers[i] = ld;
		if (j->rc)
			goto out;
	}
	bool remap = j->env->userns_count > 0;
	if (remap && (sp.privileged || j->host_net)) {
		j->rc = errf(j->err, E_UNSUPP, "%s does not run on a node with --userns-remap (orch(8) SECURITY)",
			     sp.privileged ? "a privileged task" : "network_mode: host");
		goto out;
	}
	if (remap && (j->rc = userns_layers(j->env, layers_root, layers, im.layers, im.nlayers, j->err)))
		goto out;
	mkdir(j->dir, 0700);
	char rootfs[ROOTFS_PATH_LEN];
	if ((j->rc = rootfs_mount(layers, im.nlayers, j->dir, rootfs, j->err)))
		goto out;
	if ((j->rc = volumes_prepare(j->env->data_dir, j->dir, rootfs, &sp, j->slot, &vols, j->err)))
		goto out;

	/* network */
	char netns[NAT_PATH_LEN] = BUNDLE_NETNS_HOST;
	struct net_node nn = {.tag = j->env->tag, .subnet = j->env->subnet};
	if (!j->host_net && (j->rc = net_task_setup(&nn, j->task_tag, j->ip, j->ports, j->nports, netns, j->err)))
		goto out;

	/* process */
	args = resolve_args(&sp, &im);
	if (!args[0]) {
		j->rc = errf(j->err, E_INVAL, "nothing to run: neither the service nor image %s gives a command", im.name);
		goto out;
	}
	char self[PATH_MAX] = "";
	if (sp.init) { /* init: true: this very (static) binary as the container's PID 1 */
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n <= 0) {
			j->rc = errf(j->err, E_IO, "init: cannot find the orch binary: %s", strerror(errno));
			goto out;
		}
		self[n] = 0;
		char *pre[] = {BUNDLE_INIT_PATH, "--", NULL};
		char **with = strv_cat(pre, args);
		argv_free(args);
		args = with;
	}
	env = argv_dup(im.env);
	if (!env[0])
		env_set(&env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	for (size_t i = 0; i < sp.env.n; i++)
		env_set(&env, sp.env.k[i], sp.env.v[i]);
	char hostname[128], val[64];
	snprintf(hostname, sizeof hostname, "%s", sp.hostname ? sp.hostname : "");
	if (!hostname[0])
		snprintf(hostname, sizeof hostname, "%s-%llu-%llu", j->service, (unsigned long long)j->slot,
			 (unsigned long long)j->task_id);
	env_set(&env, "HOSTNAME", hostname);
	snprintf(val, sizeof val, "%llu", (unsigned long long)j->slot);
	env_set(&env, "ORCH_TASK_SLOT", val);
	env_set(&env, "ORCH_SERVICE", j->service);
	if (j->host_net) {
		for (size_t i = 0; i < j->nports; i++) {
			char k[32];
			snprintf(val, sizeof val, "%u", j->ports[i].host_port);
			snprintf(k, sizeof k, "PORT_%zu", i);
			env_set(&env, k, val);
			if (i == 0)
				env_set(&env, "PORT", val);
		}
	}
	/* the node's DNS (service names) is the gateway of its bridge */
	char resolv[700] = "";
	if (!j->host_net) {
		char gw[IPAM_ADDR_LEN] = "";
		layout_task_path(resolv, sizeof resolv, j->dir, LAYOUT_TASK_RESOLV);
		ipam_host(j->env->subnet, 1, gw);
		/* dns: servers come after the node's, which answers the service names */
		struct buf rt = {0};
		buf_printf(&rt, "nameserver %s\n", gw);
		for (size_t i = 0; i < sp.dns.n; i++)
			buf_printf(&rt, "nameserver %s\n", sp.dns.v[i]);
		if (sp.dns_search.n) {
			buf_printf(&rt, "search");
			for (size_t i = 0; i < sp.dns_search.n; i++)
				buf_printf(&rt, " %s", sp.dns_search.v[i]);
			buf_printf(&rt, "\n");
		}
		buf_printf(&rt, "options ndots:1 timeout:2 attempts:2\n");
		buf_append(&rt, "", 1);
		j->rc = write_file(resolv, (char *)rt.data, j->err);
		buf_free(&rt);
		if (j->rc)
			goto out;
	}
	char hosts[700];
	layout_task_path(hosts, sizeof hosts, j->dir, LAYOUT_TASK_HOSTS);
	struct buf ht = {0};
	buf_printf(&ht, "127.0.0.1\tlocalhost\n%s\t%s\n", j->host_net ? "127.0.1.1" : j->ip, hostname);
	for (size_t i = 0; i < sp.extra_hosts.n; i++) /* extra_hosts: */
		buf_printf(&ht, "%s\t%s\n", sp.extra_hosts.v[i], sp.extra_hosts.k[i]);
	buf_append(&ht, "", 1);
	j->rc = write_file(hosts, (char *)ht.data, j->err);
	buf_free(&ht);
	if (j->rc)
		goto out;
	uint32_t uid = 0, gid = 0;
	const char *user = sp.user ? sp.user : im.user;
	if (user && *user) {
		char *end;
		unsigned long u = strtoul(user, &end, 10);
		if (end == user || (*end && *end != ':')) {
			j->rc = errf(j->err, E_UNSUPP, "user %s: only numeric uid[:gid] is supported", user);
			goto out;
		}
		uid = (uint32_t)u;
		gid = *end == ':' ? (uint32_t)strtoul(end + 1, NULL, 10) : uid;
	}
	/* config.json holds the opened environment (secret/envseal.h): it goes on the task's
	 * tmpfs, never on the node's disk (the runtime reads it again for every exec) */
	size_t env_room = 0;
	for (size_t i = 0; i < sp.env.n; i++)
		env_room += strlen(sp.env.k[i]) + strlen(sp.env.v[i]) + 64;
	if (env_room)
		env_room += 256 * 1024;
	if ((j->rc = secfs_setup(j->env->data_dir, j->dir, j->files, j->files_len, env_room, &binds, &nbinds, j->err)))
		goto out;
	/* the leader places privileged tasks only here, but a spec decoded from the network is
	 * checked again where it would run */
	if (sp.privileged && !j->env->allow_privileged) {
		j->rc = errf(j->err, E_UNSUPP, "privileged task refused: this node was not started with --allow-privileged");
		goto out;
	}
	for (size_t i = 0; i < sp.sysctls.n; i++)
		if (!spec_sysctl_namespaced(sp.sysctls.k[i], j->host_net)) {
			j->rc = errf(j->err, E_INVAL, "sysctl %s refused: not of the task's own namespaces", sp.sysctls.k[i]);
			goto out;
		}
	rlim = xcalloc(sp.ulimits.n + 1, sizeof *rlim);
	rlim_types = xcalloc(sp.ulimits.n + 1, 32);
	for (size_t i = 0; i < sp.ulimits.n; i++) {
		rlim[i].type = rlim_types + 32 * i;
		if (!spec_ulimit(sp.ulimits.k[i], sp.ulimits.v[i], rlim_types + 32 * i, &rlim[i].soft, &rlim[i].hard)) {
			j->rc = errf(j->err, E_INVAL, "ulimits %s: invalid", sp.ulimits.k[i]);
			goto out;
		}
	}
	if (remap && (j->rc = userns_task(j->env, rootfs, layers[im.nlayers - 1], &vols, binds, nbinds,
						self[0] ? self : NULL, j->err)))
		goto out;
	if (remap && !j->host_net && (j->rc = net_sysctls(netns, &sp, j->err)))
		goto out;
	caps = caps_resolve(sp.cap_add.v, sp.cap_add.n, sp.cap_drop.v, sp.cap_drop.n, sp.privileged);
	caps_held_only(caps);
	char secdir[700];
	layout_task_path(secdir, sizeof secdir, j->dir, LAYOUT_TASK_SECRETS);
	char cg[128], bundle[700], logp[700];
	cgroup_of(j, cg, sizeof cg);
	layout_task_path(bundle, sizeof bundle, j->dir, LAYOUT_TASK_BUNDLE);
	layout_task_path(logp, sizeof logp, j->dir, LAYOUT_TASK_LOG);
	struct run_spec rs = {
		.id = j->cid,
		.bundle_dir = bundle,
		.rootfs = rootfs,
		.args = args,
		.env = env,
		.cwd = sp.working_dir ? sp.working_dir : im.workdir,
		.hostname = hostname,
		.uid = uid,
		.gid = gid,
		.mem_limit = sp.deploy.limits.memory_bytes,
		.mem_reservation = sp.deploy.reservations.memory_bytes,
		.cpu_milli_limit = sp.deploy.limits.cpus_milli,
		.cpu_milli_shares = sp.deploy.reservations.cpus_milli,
		.pids_limit = sp.deploy.limits.pids ? (int64_t)sp.deploy.limits.pids : RUN_PIDS_DEFAULT,
		.cgroups_path = cg,
		.netns_path = netns,
		.hosts_file = hosts,
		.init_binary = self[0] ? self : NULL,
		.resolv_conf = resolv[0] ? resolv : access("/etc/resolv.conf", R_OK) == 0 ? "/etc/resolv.conf" : NULL,
		.vol_mounts = vols.bm,
		.nvol_mounts = vols.n,
		.file_binds = binds,
		.nfile_binds = nbinds,
		.readonly_rootfs = sp.read_only,
		.caps = caps,
		.privileged = sp.privileged,
		.seccomp = sp.seccomp,
		.new_privs = sp.new_privileges,
		.sysctl_keys = (const char *const *)(uintptr_t)sp.sysctls.k,
		.sysctl_vals = (const char *const *)(uintptr_t)sp.sysctls.v,
		.nsysctl = sp.sysctls.n,
		.rlimits = rlim,
		.nrlimits = sp.ulimits.n,
		.userns_base = j->env->userns_base,
		.userns_count = j->env->userns_count,
		.config_dir = env_room ? secdir : NULL,
	};
	if ((j->rc = bundle_write(&rs, j->err)))
		goto out;
	run_save_state(j);
out:
	if (layers)
		for (size_t i = 0; i < im.nlayers; i++)
			free((void *)(uintptr_t)layers[i]);
	free(layers);
	secfs_binds_free(binds, nbinds);
	free(caps);
	free(rlim);
	free(rlim_types);
	argv_free(args);
	argv_free(env);
	volumes_set_free(&vols);
	envseal_spec_free(&sp);
	image_info_free(&im);
	blob_fini(&bs);
}

void run_start(struct run_job *j)
{
	struct rt rt;
	rt_of(j, &rt);
	char bundle[700], logp[700];
	layout_task_path(bundle, sizeof bundle, j->dir, LAYOUT_TASK_BUNDLE);
	layout_task_path(logp, sizeof logp, j->dir, LAYOUT_TASK_LOG);
	int pid = 0;
	j->rc = rt_create(&rt, j->cid, bundle, logp, &pid, j->err);
	if (!j->rc)
		j->rc = rt_start(&rt, j->cid, j->err);
	if (!j->rc)
		j->pid = pid;
}

void run_stop(struct run_job *j)
{
	struct rt rt;
	rt_of(j, &rt);
	j->rc = rt_stop(&rt, j->cid, j->stop_signal ? j->stop_signal : SIGTERM, j->grace_ms, j->err);
}

void run_cleanup(struct run_job *j)
{
	struct rt rt;
	rt_of(j, &rt);
	char cg[128], e2[ERR_LEN];
	cgroup_of(j, cg, sizeof cg);
	struct cgroup_stats st;
	if (!cgroup_stats_read(cg, &st, e2) && st.oom_kills)
		j->oom = true;
	rt_delete(&rt, j->cid, true, e2);
	if (!j->host_net && j->ip[0]) {
		struct net_node nn = {.tag = j->env->tag, .subnet = j->env->subnet};
		net_task_teardown(&nn, j->task_tag, j->ports, j->nports, e2);
	}
	rootfs_unmount(j->dir, e2);
	volumes_task_cleanup(j->dir);
	secfs_teardown(j->dir);
	cgroup_remove(cg, e2);
	j->rc = 0;
}

/* <dir>/state: "ip=..\nhost=0|1\nport=host:container:proto\n..." */
int run_save_state(const struct run_job *j)
{
	char path[700];
	layout_task_path(path, sizeof path, j->dir, LAYOUT_TASK_STATE);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "ip=%s\nhost=%d\n", j->ip, j->host_net);
	for (size_t i = 0; i < j->nports; i++)
		fprintf(f, "port=%u:%u:%d\n", j->ports[i].host_port, j->ports[i].container_port, j->ports[i].proto);
	fclose(f);
	return 0;
}

/* One number of a port line, up to `sep` (or the end when sep is 0). */
static int port_num(const char **p, char sep, unsigned long max, unsigned long *out)
{
	char *end;
	if (**p < '0' || **p > '9')
		return -1;
	*out = strtoul(*p, &end, 10);
	if (*out > max || *end != sep)
		return -1;
	*p = sep ? end + 1 : end;
	return 0;
}

/* "HOST_PORT:CONTAINER_PORT:PROTO" as run_save_state writes it. */
static int port_line(const char *p, struct port_map *pm)
{
	unsigned long hp, cp, proto;
	if (port_num(&p, ':', 65535, &hp) || port_num(&p, ':', 65535, &cp) || port_num(&p, 0, 255, &proto) ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return -1;
	pm->host_port = (uint16_t)hp;
	pm->container_port = (uint16_t)cp;
	pm->proto = (int)proto;
	return 0;
}

int run_load_state(struct run_job *j)
{
	char path[700], line[128];
	layout_task_path(path, sizeof path, j->dir, LAYOUT_TASK_STATE);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	j->nports = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		int host;
		if (!strncmp(line, "ip=", 3))
			snprintf(j->ip, sizeof j->ip, "%s", line + 3);
		else if (sscanf(line, "host=%d", &host) == 1)
			j->host_net = host;
		else if (!strncmp(line, "port=", 5) && j->nports < RUN_MAX_PORTS && !port_line(line + 5, &j->ports[j->nports]))
			j->nports++;
	}
	fclose(f);
	return 0;
}
