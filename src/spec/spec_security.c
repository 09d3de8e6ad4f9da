/* The Compose keys that loosen or tighten a task's confinement: cap_add, cap_drop,
 * privileged, read_only, tmpfs, pids_limit, ulimits, sysctls, security_opt. Each is
 * checked here at parse, so a file the nodes could not honour is refused at deploy. */
#include "spec/spec_table.h"
#include "runtime/caps.h"
#include "runtime/rtjson.h"
#include "spec/units.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROFILE_MAX (1 << 20)

static const struct {
	const char *name, *rlimit;
} ulimit_names[] = {
	{"as", "RLIMIT_AS"}, {"core", "RLIMIT_CORE"}, {"cpu", "RLIMIT_CPU"}, {"data", "RLIMIT_DATA"},
	{"fsize", "RLIMIT_FSIZE"}, {"locks", "RLIMIT_LOCKS"}, {"memlock", "RLIMIT_MEMLOCK"},
	{"msgqueue", "RLIMIT_MSGQUEUE"}, {"nice", "RLIMIT_NICE"}, {"nofile", "RLIMIT_NOFILE"},
	{"nproc", "RLIMIT_NPROC"}, {"rss", "RLIMIT_RSS"}, {"rtprio", "RLIMIT_RTPRIO"},
	{"rttime", "RLIMIT_RTTIME"}, {"sigpending", "RLIMIT_SIGPENDING"}, {"stack", "RLIMIT_STACK"},
};

/* a limit, or -1 for none (RLIM_INFINITY) */
static bool number(const char *s, size_t n, uint64_t *out)
{
	char d[24];
	if (n == 2 && !strncmp(s, "-1", 2)) {
		*out = UINT64_MAX;
		return true;
	}
	if (!n || n >= sizeof d || strspn(s, "0123456789") < n)
		return false;
	memcpy(d, s, n);
	d[n] = 0;
	errno = 0;
	*out = strtoull(d, NULL, 10);
	return !errno;
}

bool spec_ulimit(const char *name, const char *value, char *out, uint64_t *soft, uint64_t *hard)
{
	size_t i = 0, n = sizeof ulimit_names / sizeof ulimit_names[0];
	while (i < n && strcmp(ulimit_names[i].name, name))
		i++;
	if (i == n)
		return false;
	const char *colon = strchr(value, ':');
	if (!number(value, colon ? (size_t)(colon - value) : strlen(value), soft))
		return false;
	if (!colon)
		*hard = *soft;
	else if (!number(colon + 1, strlen(colon + 1), hard))
		return false;
	snprintf(out, 32, "%s", ulimit_names[i].rlimit);
	return *soft <= *hard;
}

bool spec_sysctl_namespaced(const char *key, bool host_net)
{
	if (!*key || strpbrk(key, "/ \t\n\"\\") || strstr(key, ".."))
		return false;
	if (!strncmp(key, "net.", 4))
		return !host_net;
	return !strncmp(key, "kernel.shm", 10) || !strncmp(key, "kernel.msg", 10) || !strcmp(key, "kernel.sem") ||
	       !strncmp(key, "fs.mqueue.", 10);
}

static int caps_list(struct strv *v, const char *key, char *msg)
{
	for (size_t i = 0; i < v->n; i++) {
		char c[CAPS_NAME_MAX];
		if (caps_name(v->v[i], c) < 0)
			return errf(msg, E_INVAL, "%s: unknown capability \"%s\" (e.g. NET_ADMIN, CAP_SYS_PTRACE or ALL)",
				    key, v->v[i]);
		free(v->v[i]);
		v->v[i] = xstrdup(c);
	}
	return 0;
}

/* tmpfs: "/path" or "/path:size=64m,mode=1777" (also rw, ro, nosuid, nodev, which tmpfs
 * mounts already have or take), folded into the service's volumes. */
static int tmpfs_entry(struct svc_spec *s, const char *e, char *msg)
{
	struct mount_spec m = {.type = MOUNT_TMPFS};
	const char *colon = strchr(e, ':');
	m.target = colon ? xstrndup(e, (size_t)(colon - e)) : xstrdup(e);
	int rc = 0;
	if (m.target[0] != '/')
		rc = errf(msg, E_INVAL, "tmpfs %s: the target must be an absolute path", e);
	char *opts = colon ? xstrdup(colon + 1) : NULL, *save = NULL;
	for (char *o = opts ? strtok_r(opts, ",", &save) : NULL; o && !rc; o = strtok_r(NULL, ",", &save)) {
		char *end;
		if (!strncmp(o, "size=", 5)) {
			if (parse_bytes(o + 5, &m.tmpfs_size) < 0)
				rc = errf(msg, E_INVAL, "tmpfs %s: invalid size \"%s\"", e, o + 5);
		} else if (!strncmp(o, "mode=", 5)) {
			m.tmpfs_mode = strtoull(o + 5, &end, 8);
			if (!o[5] || *end || m.tmpfs_mode > 07777)
				rc = errf(msg, E_INVAL, "tmpfs %s: invalid mode \"%s\" (octal, e.g. 1777)", e, o + 5);
		} else if (!strcmp(o, "ro")) {
			m.read_only = true;
		} else if (strcmp(o, "rw") && strcmp(o, "nosuid") && strcmp(o, "nodev")) {
			rc = errf(msg, E_INVAL, "tmpfs %s: option \"%s\" is not supported (size=, mode=, ro, rw, nosuid, nodev)",
				  e, o);
		}
	}
	free(opts);
	if (rc) {
		mount_spec_free(&m);
		return rc;
	}
	s->mounts.v = xrealloc(s->mounts.v, (s->mounts.n + 1) * sizeof *s->mounts.v);
	s->mounts.v[s->mounts.n++] = m;
	return 0;
}

static int security_opt(struct svc_spec *s, const char *o, char *msg)
{
	/* Docker takes both '=' and ':' after the option's name */
	size_t k = strcspn(o, "=:");
	const char *val = o[k] ? o + k + 1 : NULL;
	if (!strncmp(o, "seccomp", k) && k == 7 && val && *val) {
		free(s->seccomp);
		s->seccomp = xstrdup(val); /* a file's name until spec_seccomp_load reads it */
		return 0;
	}
	if (!strncmp(o, "no-new-privileges", k) && k == 17) {
		if (!val || !strcmp(val, "true"))
			s->new_privileges = false;
		else if (!strcmp(val, "false"))
			s->new_privileges = true;
		else
			return errf(msg, E_INVAL, "security_opt \"%s\": expected no-new-privileges[:true|false]", o);
		return 0;
	}
	/* no AppArmor or SELinux confinement on orch's nodes: turning it off changes nothing */
	if (!strcmp(o, "apparmor=unconfined") || !strcmp(o, "apparmor:unconfined") || !strcmp(o, "label=disable") ||
	    !strcmp(o, "label:disable"))
		return 0;
	return errf(msg, E_INVAL, "security_opt \"%s\" is not supported (seccomp=unconfined, seccomp=FILE, "
		    "no-new-privileges[:true|false])", o);
}

int spec_security_keys(struct svc_spec *s, char *msg)
{
	if (caps_list(&s->cap_add, "cap_add", msg) || caps_list(&s->cap_drop, "cap_drop", msg))
		return E_INVAL;
	for (size_t i = 0; i < s->tmpfs.n; i++)
		if (tmpfs_entry(s, s->tmpfs.v[i], msg))
			return E_INVAL;
	strv_free(&s->tmpfs);
	if (s->pids_limit) {
		uint64_t *p = &s->deploy.limits.pids;
		if (*p && *p != s->pids_limit)
			return errf(msg, E_INVAL, "pids_limit %llu and deploy.resources.limits.pids %llu differ",
				    (unsigned long long)s->pids_limit, (unsigned long long)*p);
		*p = s->pids_limit;
		s->pids_limit = 0;
	}
	for (size_t i = 0; i < s->ulimits.n; i++) {
		char type[32];
		uint64_t soft, hard;
		if (!spec_ulimit(s->ulimits.k[i], s->ulimits.v[i], type, &soft, &hard))
			return errf(msg, E_INVAL, "ulimits %s: \"%s\": expected a known limit (nofile, nproc, core, ...) "
				    "with a number (-1: unlimited) or soft <= hard", s->ulimits.k[i], s->ulimits.v[i]);
		char norm[48], a[24] = "-1", b[24] = "-1";
		if (soft != UINT64_MAX)
			snprintf(a, sizeof a, "%llu", (unsigned long long)soft);
		if (hard != UINT64_MAX)
			snprintf(b, sizeof b, "%llu", (unsigned long long)hard);
		snprintf(norm, sizeof norm, "%s:%s", a, b);
		free(s->ulimits.v[i]);
		s->ulimits.v[i] = xstrdup(norm);
	}
	for (size_t i = 0; i < s->sysctls.n; i++) {
		const char *k = s->sysctls.k[i];
		if (!spec_sysctl_namespaced(k, s->network_mode == NET_HOST))
			return errf(msg, E_INVAL, "sysctls %s: %s", k,
				    !strncmp(k, "net.", 4) && s->network_mode == NET_HOST
					    ? "with network_mode: host it would change the node's own network"
					    : "not a namespaced sysctl; a task may set net.*, kernel.shm*, kernel.msg*, "
					      "kernel.sem and fs.mqueue.* only");
		if (!*s->sysctls.v[i] || strchr(s->sysctls.v[i], '\n'))
			return errf(msg, E_INVAL, "sysctls %s: the value is empty or spans lines", k);
	}
	for (size_t i = 0; i < s->security_opt.n; i++)
		if (security_opt(s, s->security_opt.v[i], msg))
			return E_INVAL;
	strv_free(&s->security_opt);
	return 0;
}

/* The runtime spec's own form is what runc reads; Docker's file format adds keys runc
 * would ignore (archMap, includes, excludes), which would silently allow more. */
static int profile_check(const char *path, const char *text, size_t len, char *msg)
{
	struct rtjson_v v, x, r, y;
	if (rtjson_parse(text, len, &v) || rtjson_type(&v) != 'o')
		return errf(msg, E_INVAL, "security_opt seccomp=%s: not a JSON object", path);
	if (rtjson_get(&v, "defaultAction", &x) || rtjson_type(&x) != 's')
		return errf(msg, E_INVAL, "security_opt seccomp=%s: no defaultAction", path);
	bool docker = rtjson_get(&v, "archMap", &x) == 0;
	size_t pos = 0;
	if (rtjson_get(&v, "syscalls", &x) == 0)
		while (!docker && rtjson_next(&x, &pos, &r) == 1)
			docker = rtjson_get(&r, "includes", &y) == 0 || rtjson_get(&r, "excludes", &y) == 0;
	if (docker)
		return errf(msg, E_INVAL, "security_opt seccomp=%s: Docker's profile format (archMap, includes, "
			    "excludes) is not read; give the runtime spec's form (defaultAction, architectures, "
			    "syscalls with names, action, args)", path);
	return 0;
}

int spec_seccomp_load(struct svc_spec *s, const char *dir, char *msg)
{
	if (!s->seccomp || !strcmp(s->seccomp, "unconfined") || s->seccomp[0] == '{')
		return 0; /* default, none, or read already */
	char *path = s->seccomp[0] == '/' || !dir ? xstrdup(s->seccomp) : xasprintf("%s%s", dir, s->seccomp);
	FILE *f = fopen(path, "rb");
	struct stat st;
	int rc = 0;
	if (!f || fstat(fileno(f), &st) < 0)
		rc = errf(msg, E_IO, "security_opt seccomp=%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode) || st.st_size > PROFILE_MAX)
		rc = errf(msg, E_INVAL, "security_opt seccomp=%s: not a regular file of at most 1 MiB", path);
	char *text = NULL;
	if (!rc) {
		text = xcalloc(1, (size_t)st.st_size + 1);
		if (fread(text, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
			rc = errf(msg, E_IO, "security_opt seccomp=%s: read failed", path);
		else if (strlen(text) != (size_t)st.st_size)
			rc = errf(msg, E_INVAL, "security_opt seccomp=%s: not a JSON object", path);
	}
	if (!rc)
		rc = profile_check(path, text, (size_t)st.st_size, msg);
	if (f)
		fclose(f);
	free(path);
	if (rc) {
		free(text);
		return rc;
	}
	/* trimmed so the text starts with '{' (a spec already read keeps it as is) */
	char *p = text;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	free(s->seccomp);
	s->seccomp = xstrdup(p);
	free(text);
	return 0;
}
