#include "image/rootfs.h"
#include "image/fsutil.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#define OPAQUE_XATTR "trusted.overlay.opaque"
/* mount(2) copies at most one page of options. */
#define MOUNT_OPTS_MAX 4000

/* ==== overlay ==== */

static char *overlay_opts(const char **lowers, size_t n, const char *upper, const char *work)
{
	struct buf b = {0};
	buf_printf(&b, "lowerdir=");
	for (size_t i = n; i-- > 0;) /* overlay wants the top layer first */
		buf_printf(&b, "%s%s", lowers[i], i ? ":" : "");
	buf_printf(&b, ",upperdir=%s,workdir=%s", upper, work);
	buf_append(&b, "", 1);
	return (char *)b.data;
}

static bool bad_overlay_path(const char *p)
{
	return strpbrk(p, ":,\\") != NULL; /* separators in overlay's option syntax */
}

/* Many layers overflow the one-page option limit: link them as short names under
 * <task_dir>/l and mount from a child that chdir'd there (the parent's cwd stays put). */
static int mount_short(const char **lowers, size_t n, const char *task_dir, const char *target, char *err)
{
	char *ldir = xasprintf("%s/l", task_dir);
	fs_rm_rf(ldir);
	int rc = 0;
	if (mkdir(ldir, 0700))
		rc = errf(err, E_IO, "create %s: %s", ldir, strerror(errno));
	for (size_t i = 0; !rc && i < n; i++) {
		char *lk = xasprintf("%s/%zu", ldir, i);
		if (symlink(lowers[i], lk))
			rc = errf(err, E_IO, "link %s: %s", lk, strerror(errno));
		free(lk);
	}
	struct buf ob = {0};
	buf_printf(&ob, "lowerdir=");
	for (size_t i = n; i-- > 0;)
		buf_printf(&ob, "%zu%s", i, i ? ":" : "");
	buf_printf(&ob, ",upperdir=../upper,workdir=../work");
	buf_append(&ob, "", 1);
	char *opts = (char *)ob.data;
	if (!rc && strlen(opts) > MOUNT_OPTS_MAX)
		rc = errf(err, E_UNSUPP, "overlay: %zu layers do not fit in the mount options", n);
	if (!rc) {
		pid_t pid = fork();
		if (pid == 0) {
			if (chdir(ldir) || mount("overlay", target, "overlay", 0, opts))
				_exit(errno & 0xff);
			_exit(0);
		}
		int st = 0;
		if (pid < 0)
			rc = errf(err, E_IO, "fork: %s", strerror(errno));
		else if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			rc = errf(err, E_IO, "mount overlay at %s: %s", target,
				  WIFEXITED(st) ? strerror(WEXITSTATUS(st)) : "mount helper died");
	}
	free(opts);
	free(ldir);
	return rc;
}

static int mount_overlay(const char **lowers, size_t n, const char *task_dir, const char *target, char *err)
{
	for (size_t i = 0; i < n; i++)
		if (bad_overlay_path(lowers[i]))
			return errf(err, E_INVAL, "overlay: layer path %s contains ':', ',' or '\\'", lowers[i]);
	if (bad_overlay_path(task_dir))
		return errf(err, E_INVAL, "overlay: task dir %s contains ':', ',' or '\\'", task_dir);
	char *upper = xasprintf("%s/upper", task_dir), *work = xasprintf("%s/work", task_dir);
	int rc = 0;
	if ((mkdir(upper, 0755) && errno != EEXIST) || (mkdir(work, 0700) && errno != EEXIST))
		rc = errf(err, E_IO, "create %s/{upper,work}: %s", task_dir, strerror(errno));
	char *opts = overlay_opts(lowers, n, upper, work);
	if (!rc) {
		if (strlen(opts) <= MOUNT_OPTS_MAX) {
			if (mount("overlay", target, "overlay", 0, opts))
				rc = errf(err, errno == ENODEV ? E_UNSUPP : E_IO, "mount overlay at %s: %s", target, strerror(errno));
		} else {
			rc = mount_short(lowers, n, task_dir, target, err);
		}
	}
	free(opts);
	free(upper);
	free(work);
	return rc;
}

/* ==== copy fallback ==== */

struct ino_map {
	dev_t dev;
	ino_t ino;
	char *path; /* relative to the destination root */
};

struct copier {
	int droot;
	struct ino_map *links;
	size_t nlinks, cap;
	char *err;
	/* a layer copied as a layer (rootfs_shift_layer): whiteouts and opaque marks kept,
	 * owners moved up by shift; an owner at or above limit is an error */
	bool layer;
	uint32_t shift, limit;
};

#define OWNER(c, st) (uid_t)((st)->st_uid + (c)->shift), (gid_t)((st)->st_gid + (c)->shift)

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == 0 && minor(st->st_rdev) == 0;
}

static int copy_data(int sfd, int dfd)
{
	char b[65536];
	for (;;) {
		ssize_t r = read(sfd, b, sizeof b);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : 0;
		for (ssize_t o = 0; o < r;) {
			ssize_t w = write(dfd, b + o, (size_t)(r - o));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -1;
			o += w;
		}
	}
}

static int copy_tree(struct copier *c, int sdir, int ddir, const char *rel, int depth);

static int copy_one(struct copier *c, int sdir, int ddir, const char *name, const char *rel, int depth)
{
	struct stat st, dst;
	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW))
		return errf(c->err, E_IO, "copy rootfs: stat %s: %s", rel, strerror(errno));
	bool exists = fstatat(ddir, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	if (c->limit && (st.st_uid >= c->limit || st.st_gid >= c->limit))
		return errf(c->err, E_INVAL, "copy rootfs: %s: owner %u:%u lies outside the user namespace's %u ids", rel,
			    (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)c->limit);
	if (is_whiteout(&st) && c->layer) {
		if (mknodat(ddir, name, S_IFCHR | 0000, makedev(0, 0)))
			return errf(c->err, E_IO, "copy rootfs: whiteout %s: %s", rel, strerror(errno));
		return 0;
	}
	if (is_whiteout(&st)) { /* deletes what lower layers put here */
		int r = exists ? fs_rm_at(ddir, name) : 0;
		return r ? errf(c->err, E_IO, "copy rootfs: whiteout %s: %s", rel, strerror(-r)) : 0;
	}
	if (exists && !(S_ISDIR(st.st_mode) && S_ISDIR(dst.st_mode))) {
		int r = fs_rm_at(ddir, name);
		if (r)
			return errf(c->err, E_IO, "copy rootfs: replace %s: %s", rel, strerror(-r));
		exists = false;
	}
	if (S_ISDIR(st.st_mode)) {
		char v[2];
		int s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s < 0)
			return errf(c->err, E_IO, "copy rootfs: open %s: %s", rel, strerror(errno));
		bool opaque = fgetxattr(s, OPAQUE_XATTR, v, sizeof v) == 1 && v[0] == 'y';
		if (exists && opaque) { /* an opaque dir hides everything below it */
			int r = fs_rm_at(ddir, name);
			if (r) {
				close(s);
				return errf(c->err, E_IO, "copy rootfs: opaque %s: %s", rel, strerror(-r));
			}
			exists = false;
		}
		if (!exists && mkdirat(ddir, name, 0700)) {
			close(s);
			return errf(c->err, E_IO, "copy rootfs: mkdir %s: %s", rel, strerror(errno));
		}
		int d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int rc = d < 0 ? errf(c->err, E_IO, "copy rootfs: open %s: %s", rel, strerror(errno)) : 0;
		if (!rc && opaque && c->layer && fsetxattr(d, OPAQUE_XATTR, "y", 1, 0))
			rc = errf(c->err, E_IO, "copy rootfs: opaque %s: %s", rel, strerror(errno));
		if (!rc)
			rc = copy_tree(c, s, d, rel, depth + 1);
		if (!rc && (fchown(d, OWNER(c, &st)) || fchmod(d, st.st_mode & 07777)))
			rc = errf(c->err, E_IO, "copy rootfs: chmod %s: %s", rel, strerror(errno));
		if (!rc) {
			struct timespec ts[2] = {st.st_atim, st.st_mtim};
			futimens(d, ts);
		}
		close(s);
		if (d >= 0)
			close(d);
		return rc;
	}
	if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
		for (size_t i = 0; i < c->nlinks; i++)
			if (c->links[i].dev == st.st_dev && c->links[i].ino == st.st_ino &&
			    linkat(c->droot, c->links[i].path, ddir, name, 0) == 0)
				return 0;
	}
	if (S_ISLNK(st.st_mode)) {
		char t[4097];
		ssize_t l = readlinkat(sdir, name, t, sizeof t - 1);
		if (l < 0)
			return errf(c->err, E_IO, "copy rootfs: readlink %s: %s", rel, strerror(errno));
		t[l] = 0;
		if (symlinkat(t, ddir, name) || fchownat(ddir, name, OWNER(c, &st), AT_SYMLINK_NOFOLLOW))
			return errf(c->err, E_IO, "copy rootfs: symlink %s: %s", rel, strerror(errno));
	} else if (S_ISFIFO(st.st_mode)) {
		if (mkfifoat(ddir, name, st.st_mode & 07777) ||
		    fchownat(ddir, name, OWNER(c, &st), AT_SYMLINK_NOFOLLOW))
			return errf(c->err, E_IO, "copy rootfs: fifo %s: %s", rel, strerror(errno));
	} else if (S_ISREG(st.st_mode)) {
		int s = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		int d = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		int rc = 0;
		if (s < 0 || d < 0 || copy_data(s, d) || fchown(d, OWNER(c, &st)) || fchmod(d, st.st_mode & 07777))
			rc = errf(c->err, E_IO, "copy rootfs: copy %s: %s", rel, strerror(errno));
		if (!rc) {
			struct timespec ts[2] = {st.st_atim, st.st_mtim};
			futimens(d, ts);
		}
		if (s >= 0)
			close(s);
		if (d >= 0)
			close(d);
		if (rc)
			return rc;
		if (st.st_nlink > 1) {
			if (c->nlinks == c->cap) {
				c->cap = c->cap ? c->cap * 2 : 32;
				c->links = xrealloc(c->links, c->cap * sizeof *c->links);
			}
			c->links[c->nlinks++] = (struct ino_map){st.st_dev, st.st_ino, xstrdup(rel)};
		}
	} else {
		return errf(c->err, E_INVAL, "copy rootfs: %s: unsupported file type", rel);
	}
	return 0;
}

static int copy_tree(struct copier *c, int sdir, int ddir, const char *rel, int depth)
{
	if (depth > 1024)
		return errf(c->err, E_INVAL, "copy rootfs: %s: tree too deep", rel);
	int fd = dup(sdir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return errf(c->err, E_IO, "copy rootfs: read %s: %s", rel[0] ? rel : "/", strerror(errno));
	}
	rewinddir(d);
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *sub = rel[0] ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		rc = copy_one(c, sdir, ddir, de->d_name, sub, depth);
		free(sub);
	}
	closedir(d);
	return rc;
}

int rootfs_copy_tree(int sdir, int ddir, char *err)
{
	struct copier c = {.err = err, .droot = ddir};
	int rc = copy_tree(&c, sdir, ddir, "", 0);
	for (size_t k = 0; k < c.nlinks; k++)
		free(c.links[k].path);
	free(c.links);
	return rc;
}

int rootfs_shift_layer(const char *src, const char *dst, uint32_t base, uint32_t count, char *err)
{
	char *tmp = xasprintf("%s.tmp-%d", dst, (int)getpid());
	struct copier c = {.err = err, .layer = true, .shift = base, .limit = count};
	struct stat st;
	int s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	fs_rm_rf(tmp); /* a copy an earlier crash left */
	if (s < 0 || fstat(s, &st) || mkdir(tmp, 0700))
		rc = errf(err, E_IO, "shift layer %s: %s", src, strerror(errno));
	c.droot = rc ? -1 : open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (!rc && c.droot < 0)
		rc = errf(err, E_IO, "shift layer %s: %s", tmp, strerror(errno));
	if (!rc)
		rc = copy_tree(&c, s, c.droot, "", 0);
	if (!rc && (fchown(c.droot, OWNER(&c, &st)) || fchmod(c.droot, st.st_mode & 07777)))
		rc = errf(err, E_IO, "shift layer %s: %s", tmp, strerror(errno));
	if (!rc && rename(tmp, dst) && errno != EEXIST && errno != ENOTEMPTY)
		rc = errf(err, E_IO, "shift layer: rename to %s: %s", dst, strerror(errno));
	if (rc || access(tmp, F_OK) == 0)
		fs_rm_rf(tmp); /* failed, or another task shifted the same layer first */
	for (size_t k = 0; k < c.nlinks; k++)
		free(c.links[k].path);
	free(c.links);
	if (s >= 0)
		close(s);
	if (c.droot >= 0)
		close(c.droot);
	free(tmp);
	return rc;
}

static int copy_layers(const char **lowers, size_t n, const char *target, char *err)
{
	struct copier c = {.err = err};
	c.droot = open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c.droot < 0)
		return errf(err, E_IO, "copy rootfs: open %s: %s", target, strerror(errno));
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		int s = open(lowers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s < 0) {
			rc = errf(err, E_IO, "copy rootfs: open layer %s: %s", lowers[i], strerror(errno));
			break;
		}
		rc = copy_tree(&c, s, c.droot, "", 0);
		struct stat st;
		if (!rc && fstat(s, &st) == 0 && (fchown(c.droot, st.st_uid, st.st_gid) || fchmod(c.droot, st.st_mode & 07777)))
			rc = errf(err, E_IO, "copy rootfs: chmod %s: %s", target, strerror(errno));
		close(s);
		for (size_t k = 0; k < c.nlinks; k++)
			free(c.links[k].path);
		c.nlinks = 0; /* hardlinks never span layers */
	}
	free(c.links);
	close(c.droot);
	return rc;
}

/* ==== entry points ==== */

int rootfs_mount(const char **layer_dirs, size_t n, const char *task_dir, char *rootfs_out, char *err)
{
	if (n == 0)
		return errf(err, E_INVAL, "rootfs: image has no layers");
	int rc = snprintf(rootfs_out, ROOTFS_PATH_LEN, "%s/rootfs", task_dir) >= ROOTFS_PATH_LEN
			 ? errf(err, E_INVAL, "rootfs: task dir path too long")
			 : fs_mkdir_p(task_dir, 0700, err);
	if (rc)
		return rc;
	if (mkdir(rootfs_out, 0755) && errno != EEXIST)
		return errf(err, E_IO, "rootfs: create %s: %s", rootfs_out, strerror(errno));
	const char *mode = getenv("ORCH_ROOTFS");
	bool force_copy = mode && !strcmp(mode, "copy"), force_overlay = mode && !strcmp(mode, "overlay");
	if (!force_copy) {
		rc = mount_overlay(layer_dirs, n, task_dir, rootfs_out, err);
		if (!rc)
			TRACE("image", task_dir, "rootfs: overlay of %zu layers", n);
		if (!rc || force_overlay)
			return rc;
		log_warn(NULL, NULL, "rootfs: %s; falling back to copying the layers", err);
	}
	rc = copy_layers(layer_dirs, n, rootfs_out, err);
	if (!rc)
		TRACE("image", task_dir, "rootfs: copied %zu layers", n);
	if (rc) {
		char e2[ERR_LEN];
		rootfs_unmount(task_dir, e2);
	}
	return rc;
}

int rootfs_unmount(const char *task_dir, char *err)
{
	char *root = xasprintf("%s/rootfs", task_dir);
	int rc = 0;
	if (umount2(root, 0) && errno != EINVAL && errno != ENOENT) {
		/* Busy (a process still holds it): detach so it goes away with its last user. */
		if (errno != EBUSY || umount2(root, MNT_DETACH))
			rc = errf(err, E_IO, "rootfs: unmount %s: %s", root, strerror(errno));
	}
	const char *parts[] = {"rootfs", "upper", "work", "l"};
	for (size_t i = 0; !rc && i < sizeof parts / sizeof *parts; i++) {
		char *p = xasprintf("%s/%s", task_dir, parts[i]);
		int r = fs_rm_rf(p);
		if (r)
			rc = errf(err, E_IO, "rootfs: remove %s: %s", p, strerror(-r));
		free(p);
	}
	free(root);
	return rc;
}
