#include "agent/userns.h"
#include "image/rootfs.h"
#include "image/unpack.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The first directory above path that keeps other users out (no o+x), into dir; false
 * when there is none. */
static bool closed_above(const char *path, char *dir, size_t n)
{
	char *p = realpath(path, NULL);
	bool found = false;
	for (char *s = p ? strrchr(p, '/') : NULL; !found && s; s = strrchr(p, '/')) {
		*s = 0;
		struct stat st;
		const char *d = *p ? p : "/";
		if (stat(d, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			snprintf(dir, n, "%s", d);
			found = true;
		}
		if (!*p)
			break;
	}
	free(p);
	return found;
}

int userns_reachable(const char *data_dir, char *err)
{
	char dir[PATH_MAX];
	struct stat st;
	if (realpath(data_dir, dir) == NULL)
		return errf(err, E_IO, "--userns-remap: %s: %s", data_dir, strerror(errno));
	if (closed_above(data_dir, dir, sizeof dir) && stat(dir, &st) == 0)
		return errf(err, E_INVAL, "--userns-remap: %s (mode %04o) keeps other users out, and the tasks' root is one; "
			    "allow them through (chmod o+x %s) or choose a data dir below one that does", dir,
			    (unsigned)(st.st_mode & 07777), dir);
	return 0;
}

int userns_layers(const struct run_env *env, const char *layers_root, const char **layers, char *const *digests, size_t n,
		  char *err)
{
	char *root = xasprintf("%s/userns-%u", layers_root, (unsigned)env->userns_base);
	mkdir(root, 0700);
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		char *sd = layer_dir(root, digests[i]);
		char *parent = sd ? xstrndup(sd, (size_t)(strrchr(sd, '/') - sd)) : NULL;
		struct stat st;
		if (!sd)
			rc = errf(err, E_INVAL, "bad layer digest %s", digests[i]);
		else if (mkdir(parent, 0700) && errno != EEXIST)
			rc = errf(err, E_IO, "mkdir %s: %s", parent, strerror(errno));
		else if (stat(sd, &st))
			rc = rootfs_shift_layer(layers[i], sd, env->userns_base, env->userns_count, err);
		free(parent);
		if (rc) {
			free(sd);
			break;
		}
		free((void *)(uintptr_t)layers[i]);
		layers[i] = sd;
	}
	free(root);
	return rc;
}

/* Every directory from the data dir down to path's parent made passable for the task's
 * root: the data dir and its first level (tasks/, volumes/) by everyone (x only: names
 * must be known), deeper ones (a task's, a volume's) by the group BASE only. */
static int reach(const struct run_env *env, const char *path, char *err)
{
	size_t dl = strlen(env->data_dir);
	if (strncmp(path, env->data_dir, dl) || path[dl] != '/')
		return 0; /* outside the data dir: the host's own permissions */
	char *p = xstrdup(path);
	int rc = 0, depth = 0;
	for (char *s = p + dl; !rc && (s = strchr(s, '/')); depth++) {
		*s = 0;
		struct stat st;
		bool open_ = depth <= 1;
		if (stat(p, &st) || (!open_ && st.st_gid != env->userns_base && chown(p, (uid_t)-1, env->userns_base)) ||
		    chmod(p, (st.st_mode & 07777) | (open_ ? 0001 : 0010)))
			rc = errf(err, E_IO, "userns: open the way to %s: %s: %s", path, p, strerror(errno));
		*s = '/';
		s++;
	}
	/* the data dir itself */
	struct stat st;
	if (!rc && (stat(env->data_dir, &st) || chmod(env->data_dir, (st.st_mode & 07777) | 0001)))
		rc = errf(err, E_IO, "userns: %s: %s", env->data_dir, strerror(errno));
	free(p);
	return rc;
}

/* path owned by ids of the host (below BASE): moved to the task's (a new volume's empty
 * directory, a secret file written as 0:0) */
static int shift_owner(const struct run_env *env, const char *path, char *err)
{
	struct stat st;
	if (lstat(path, &st))
		return errf(err, E_IO, "userns: %s: %s", path, strerror(errno));
	if (st.st_uid >= env->userns_base && st.st_gid >= env->userns_base)
		return 0;
	if (st.st_uid >= env->userns_count || st.st_gid >= env->userns_count)
		return errf(err, E_INVAL, "userns: %s: owner %u:%u lies outside the user namespace", path, (unsigned)st.st_uid,
			    (unsigned)st.st_gid);
	if (lchown(path, st.st_uid + env->userns_base, st.st_gid + env->userns_base))
		return errf(err, E_IO, "userns: chown %s: %s", path, strerror(errno));
	return 0;
}

int userns_task(const struct run_env *env, const char *rootfs, const char *top_layer, const struct volumes_set *vols,
		const struct bundle_bind *binds, size_t nbinds, const char *init_binary, char *err)
{
	struct stat st;
	char closed[PATH_MAX];
	if (init_binary && closed_above(init_binary, closed, sizeof closed))
		return errf(err, E_UNSUPP, "init: true: the task's root cannot reach orch's binary %s (%s keeps other users "
			    "out); install orch where others may pass", init_binary, closed);
	/* the overlay's root comes from its upper directory, which orch made: give it the
	 * owner the image's own root has */
	if (stat(top_layer, &st) || chown(rootfs, st.st_uid, st.st_gid) || chmod(rootfs, st.st_mode & 07777))
		return errf(err, E_IO, "userns: rootfs %s: %s", rootfs, strerror(errno));
	int rc = reach(env, rootfs, err);
	size_t dl = strlen(env->data_dir);
	for (size_t i = 0; !rc && i < vols->n; i++) {
		const char *src = vols->bm[i].source;
		/* named and anonymous volumes live in the data dir; binds keep the host's owners */
		if (!src || strcmp(vols->bm[i].type, "bind") || strncmp(src, env->data_dir, dl) || src[dl] != '/')
			continue;
		rc = reach(env, src, err);
		if (!rc)
			rc = shift_owner(env, src, err);
	}
	for (size_t i = 0; !rc && i < nbinds; i++) {
		rc = reach(env, binds[i].src, err);
		if (!rc)
			rc = shift_owner(env, binds[i].src, err);
	}
	return rc;
}
