#include "agent/volumes.h"
#include "image/fsutil.h"
#include "image/rootfs.h"
#include "util/err.h"
#include "util/layout.h"
#include "util/mem.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- allowed bind prefixes ---- */

int volumes_allow_load(const char *data_dir, struct strv *out, char *err)
{
	char path[LAYOUT_PATH_MAX], line[PATH_MAX + 2];
	memset(out, 0, sizeof *out);
	layout_path(path, sizeof path, data_dir, LAYOUT_ALLOW_BIND);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : errf(err, E_IO, "open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f) && out->n < VOLUMES_ALLOW_MAX) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] == '/')
			strv_push(out, line);
	}
	fclose(f);
	return 0;
}

int volumes_allow_save(const char *data_dir, const struct strv *prefixes, char *err)
{
	char *text = volumes_allow_text(prefixes);
	struct buf b = {0};
	buf_printf(&b, "%s\n", text);
	int rc = layout_write_text(data_dir, LAYOUT_ALLOW_BIND, (const char *)b.data, err);
	buf_free(&b);
	free(text);
	return rc;
}

bool volumes_bind_allowed(const struct strv *allow, const char *path)
{
	for (size_t i = 0; i < allow->n; i++)
		if (spec_path_allowed(allow->v[i], path))
			return true;
	return false;
}

/* The prefixes as one text, a line each (a node's record, state/store.h): "" for none. */
char *volumes_allow_text(const struct strv *allow)
{
	struct buf b = {0};
	for (size_t i = 0; i < allow->n; i++) {
		if (i)
			buf_append(&b, "\n", 1);
		buf_append(&b, allow->v[i], strlen(allow->v[i]));
	}
	buf_append(&b, "", 1);
	return (char *)b.data;
}

/* ---- one task's mounts ---- */

static const char *keep(struct volumes_set *s, char *str)
{
	s->owned = xrealloc(s->owned, (s->nowned + 1) * sizeof *s->owned);
	s->owned[s->nowned++] = str;
	return str;
}

static void add(struct volumes_set *s, const char *dst, const char *type, const char *src, const char *const *opts)
{
	size_t n = 0;
	while (opts[n])
		n++;
	char **o = xcalloc(n + 1, sizeof *o);
	for (size_t i = 0; i < n; i++)
		o[i] = (char *)(uintptr_t)keep(s, xstrdup(opts[i]));
	keep(s, (char *)o);
	s->bm = xrealloc(s->bm, (s->n + 1) * sizeof *s->bm);
	s->bm[s->n++] = (struct bundle_mount){keep(s, xstrdup(dst)), type, keep(s, xstrdup(src)), (const char *const *)o};
}

void volumes_set_free(struct volumes_set *s)
{
	for (size_t i = 0; i < s->nowned; i++)
		free(s->owned[i]);
	free(s->owned);
	free(s->bm);
	memset(s, 0, sizeof *s);
}

/* The directory at `target` inside the rootfs, never following a symlink (an image's
 * symlink could point anywhere on the host): -1 when there is none. */
static int open_in_rootfs(const char *rootfs, const char *target)
{
	int fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *t = xstrdup(target), *save = NULL;
	for (char *c = strtok_r(t, "/", &save); fd >= 0 && c; c = strtok_r(NULL, "/", &save)) {
		int next = !strcmp(c, "..") ? -1 : openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = next;
	}
	free(t);
	return fd;
}

static bool dir_empty(int fd)
{
	int d = dup(fd);
	DIR *dp = d >= 0 ? fdopendir(d) : NULL;
	if (!dp) {
		if (d >= 0)
			close(d);
		return false;
	}
	bool empty = true;
	struct dirent *e;
	while (empty && (e = readdir(dp)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(dp);
	return empty;
}

/* Docker's rule: an empty new volume gets the image's files at the target, with the
 * target directory's owner and mode (so a database image's data dir stays its user's). */
static int fill(const char *rootfs, const char *target, const char *data, char *err)
{
	int s = open_in_rootfs(rootfs, target);
	if (s < 0)
		return 0; /* nothing there to copy */
	int d = open(data, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc = 0;
	struct stat st;
	if (d < 0)
		rc = errf(err, E_IO, "open %s: %s", data, strerror(errno));
	else if (dir_empty(d)) {
		rc = rootfs_copy_tree(s, d, err);
		if (!rc && !fstat(s, &st) && (fchown(d, st.st_uid, st.st_gid) || fchmod(d, st.st_mode & 07777)))
			rc = errf(err, E_IO, "chmod %s: %s", data, strerror(errno));
		if (rc)
			errwrap(err, rc, "fill volume from the image's %s", target);
	}
	close(s);
	if (d >= 0)
		close(d);
	return rc;
}

static int named(const char *data_dir, const char *rootfs, const struct mount_spec *m, const char *name, char *dataout,
		 size_t cap, char *err)
{
	char dir[LAYOUT_PATH_MAX], sub[LAYOUT_PATH_MAX + 16];
	if (!layout_volume_dir(dir, sizeof dir, data_dir, name))
		return errf(err, E_INVAL, "volume %s: path too long", name);
	if (fs_mkdir_p(dir, 0700, err))
		return errwrap(err, E_IO, "volume %s", name);
	snprintf(sub, sizeof sub, "%s/lock", dir);
	int lk = open(sub, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lk < 0 || flock(lk, LOCK_EX)) { /* two tasks of one volume starting together */
		if (lk >= 0)
			close(lk);
		return errf(err, E_IO, "volume %s: lock: %s", name, strerror(errno));
	}
	snprintf(dataout, cap, "%s/data", dir);
	int rc = 0;
	if (mkdir(dataout, 0755) && errno != EEXIST)
		rc = errf(err, E_IO, "volume %s: mkdir %s: %s", name, dataout, strerror(errno));
	snprintf(sub, sizeof sub, "%s/ready", dir);
	struct stat st;
	if (!rc && stat(sub, &st)) {
		if (!m->nocopy)
			rc = fill(rootfs, m->target, dataout, err);
		int fd = rc ? -1 : open(sub, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (!rc && fd < 0)
			rc = errf(err, E_IO, "volume %s: %s: %s", name, sub, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	close(lk);
	return rc;
}

static int bind_source(const char *data_dir, const struct mount_spec *m, char *real, char *err)
{
	struct strv allow;
	char why[ERR_LEN];
	int rc = volumes_allow_load(data_dir, &allow, err);
	if (rc)
		return rc;
	/* checked on the path as written (before anything is created) and once resolved (a
	 * symlink may lead out of the allowed tree) */
	bool refused = !volumes_bind_allowed(&allow, m->source);
	if (!refused && access(m->source, F_OK) && m->create_host_path && fs_mkdir_p(m->source, 0755, why))
		rc = errf(err, E_IO, "bind mount %s: %s", m->source, why);
	else if (!refused && !realpath(m->source, real))
		rc = errf(err, E_NOTFOUND, "bind mount %s: %s on this node", m->source, strerror(errno));
	else if (!refused)
		refused = !volumes_bind_allowed(&allow, real);
	if (refused) {
		char list[512] = "";
		for (size_t i = 0; i < allow.n; i++)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", allow.v[i]);
		if (allow.n)
			rc = errf(err, E_INVAL, "bind mount %s refused: not under a prefix this node allows (%s); "
				  "see --allow-bind in orch(8)", m->source, list);
		else
			rc = errf(err, E_INVAL, "bind mount %s refused: this node allows no bind mounts; "
				  "start it with --allow-bind PREFIX (orch(8))", m->source);
	}
	strv_free(&allow);
	return rc;
}

int volumes_prepare(const char *data_dir, const char *task_dir, const char *rootfs, const struct svc_spec *sp,
		    uint64_t slot, struct volumes_set *out, char *err)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < sp->mounts.n; i++) {
		const struct mount_spec *m = &sp->mounts.v[i];
		const char *ro = m->read_only ? "ro" : "rw";
		char src[PATH_MAX + 64], name[128];
		int rc = 0;
		if (m->type == MOUNT_TMPFS) {
			char size[40] = "", mode[24];
			snprintf(mode, sizeof mode, "mode=%04llo", (unsigned long long)(m->tmpfs_mode ? m->tmpfs_mode : 01777));
			if (m->tmpfs_size)
				snprintf(size, sizeof size, "size=%llu", (unsigned long long)m->tmpfs_size);
			const char *o[] = {"nosuid", "nodev", mode, ro, size[0] ? size : NULL, NULL};
			add(out, m->target, "tmpfs", "tmpfs", o);
			continue;
		}
		if (m->type == MOUNT_BIND)
			rc = bind_source(data_dir, m, src, err);
		else if (!m->source) { /* anonymous: the task's own */
			snprintf(src, sizeof src, "%s/volumes/%zu", task_dir, i);
			if (fs_mkdir_p(src, 0755, err))
				rc = E_IO;
			else if (!m->nocopy)
				rc = fill(rootfs, m->target, src, err);
		} else if (!spec_volume_name(m->source, slot, name, sizeof name))
			rc = errf(err, E_INVAL, "volume %s: not a valid name for slot %llu", m->source, (unsigned long long)slot);
		else
			rc = named(data_dir, rootfs, m, name, src, sizeof src, err);
		if (rc) {
			volumes_set_free(out);
			return rc;
		}
		const char *o[] = {"rbind", "rprivate", ro, NULL};
		add(out, m->target, "bind", src, o);
	}
	return 0;
}

void volumes_task_cleanup(const char *task_dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/volumes", task_dir);
	fs_rm_rf(p);
}

int volumes_remove(const char *data_dir, const char *name, char *err)
{
	char dir[LAYOUT_PATH_MAX];
	if (!spec_volume_name_valid(name) || strstr(name, SPEC_SLOT_TEMPLATE) ||
	    !layout_volume_dir(dir, sizeof dir, data_dir, name))
		return errf(err, E_INVAL, "invalid volume name %s", name);
	if (!fs_is_dir(dir))
		return errf(err, E_NOTFOUND, "volume %s has no directory on this node", name);
	int r = fs_rm_rf(dir);
	if (r)
		return errf(err, E_IO, "remove %s: %s", dir, strerror(-r));
	return 0;
}
