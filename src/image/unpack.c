#include "image/unpack.h"
#include "image/blobstore.h"
#include "image/fsutil.h"
#include "image/tar.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

char *layer_dir(const char *layers_root, const char *digest)
{
	if (!digest_valid(digest))
		return NULL;
	return xasprintf("%s/sha256/%s", layers_root, digest + 7);
}

struct dir_time {
	char *path;
	int64_t mtime;
};

struct unpacker {
	int root;             /* fd of the temp layer directory */
	const char *label;
	struct tar_reader *tr;
	struct dir_time *dirs;
	size_t ndirs, capdirs;
	char *err;
};

/* Splits an archive path into clean components joined by '/', or rejects it.
 * "" (the root itself) is returned for ".", "./" and "/"-free equivalents. */
static int clean_path(struct unpacker *u, const char *in, const char *what, char **out)
{
	if (in[0] == '/')
		return errf(u->err, E_INVAL, "%s: %s \"%.200s\" is an absolute path: rejected", u->label, what, in);
	if (strlen(in) >= PATH_MAX)
		return errf(u->err, E_INVAL, "%s: %s \"%.100s...\" is too long", u->label, what, in);
	struct buf b = {0};
	const char *p = in;
	while (*p) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);
		if (n == 2 && !memcmp(p, "..", 2)) {
			buf_free(&b);
			return errf(u->err, E_INVAL, "%s: %s \"%.200s\" has a \"..\" component: rejected", u->label, what, in);
		}
		if (n && !(n == 1 && p[0] == '.')) {
			if (b.len)
				buf_append(&b, "/", 1);
			buf_append(&b, p, n);
		}
		p += n;
		if (*p == '/')
			p++;
	}
	buf_append(&b, "", 1);
	*out = (char *)b.data;
	return 0;
}

/* Opens the parent directory of a clean path, one component at a time with O_NOFOLLOW,
 * creating missing directories (tars may omit them). *base points into path. */
static int open_parent(struct unpacker *u, char *path, bool create, const char **base, int *out)
{
	int fd = dup(u->root);
	if (fd < 0)
		return errf(u->err, E_IO, "%s: dup: %s", u->label, strerror(errno));
	char *p = path;
	for (;;) {
		char *s = strchr(p, '/');
		if (!s)
			break;
		*s = 0;
		int c = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (c < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, p, 0755) == 0 || errno == EEXIST)
				c = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (c < 0) {
			int e = errno;
			struct stat st;
			bool link = fstatat(fd, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
			close(fd);
			int rc;
			if (link)
				rc = errf(u->err, E_INVAL, "%s: entry \"%.200s\" would be written through the symlink \"%.200s\": rejected",
					  u->label, u->tr->ent.path, path);
			else
				rc = errf(u->err, e == ENOENT ? E_NOTFOUND : E_INVAL, "%s: entry \"%.200s\": parent \"%.200s\": %s",
					  u->label, u->tr->ent.path, path, strerror(e));
			*s = '/';
			return rc;
		}
		*s = '/';
		close(fd);
		fd = c;
		p = s + 1;
	}
	*base = p;
	*out = fd;
	return 0;
}

/* Removes whatever an entry replaces (later entries win, as in tar -x), except a
 * directory replaced by a directory, which is kept with its contents. */
static int clear_slot(struct unpacker *u, int dfd, const char *name, bool keep_dir)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		if (errno == ENOENT)
			return 0;
		return errf(u->err, E_IO, "%s: stat \"%.200s\": %s", u->label, u->tr->ent.path, strerror(errno));
	}
	if (keep_dir && S_ISDIR(st.st_mode))
		return 1;
	int rc = fs_rm_at(dfd, name);
	if (rc)
		return errf(u->err, E_IO, "%s: replace \"%.200s\": %s", u->label, u->tr->ent.path, strerror(-rc));
	return 0;
}

static int set_meta(struct unpacker *u, int fd, const struct tar_entry *e)
{
	/* chown first: it clears setuid/setgid bits that chmod then restores. */
	if (fchown(fd, e->uid, e->gid) || fchmod(fd, e->mode))
		return errf(u->err, E_IO, "%s: set owner/mode of \"%.200s\": %s", u->label, e->path, strerror(errno));
	return 0;
}

static int write_file(struct unpacker *u, int dfd, const char *name, const struct tar_entry *e)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errf(u->err, E_IO, "%s: create \"%.200s\": %s", u->label, e->path, strerror(errno));
	uint8_t *b = xmalloc(1 << 16);
	int rc = 0;
	for (;;) {
		/* Each piece says where it goes: the holes of a sparse file are never written. */
		uint64_t at;
		ssize_t n = tar_read_at(u->tr, b, 1 << 16, &at, u->err);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = pwrite(fd, b + off, (size_t)(n - off), (off_t)(at + (uint64_t)off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = errf(u->err, E_IO, "%s: write \"%.200s\": %s", u->label, e->path, strerror(errno));
				break;
			}
			off += w;
		}
		if (rc)
			break;
	}
	free(b);
	if (!rc && e->spans && ftruncate(fd, (off_t)e->size)) /* a trailing hole */
		rc = errf(u->err, E_IO, "%s: size \"%.200s\": %s", u->label, e->path, strerror(errno));
	if (!rc)
		rc = set_meta(u, fd, e);
	if (!rc) {
		struct timespec ts[2] = {{e->mtime, 0}, {e->mtime, 0}};
		futimens(fd, ts); /* best effort */
	}
	close(fd);
	return rc;
}

static int make_dir(struct unpacker *u, int dfd, const char *name, const char *clean, const struct tar_entry *e)
{
	int rc = clear_slot(u, dfd, name, true);
	if (rc < 0)
		return rc;
	if (rc == 0 && mkdirat(dfd, name, 0700))
		return errf(u->err, E_IO, "%s: mkdir \"%.200s\": %s", u->label, e->path, strerror(errno));
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errf(u->err, E_IO, "%s: open \"%.200s\": %s", u->label, e->path, strerror(errno));
	rc = set_meta(u, fd, e);
	close(fd);
	if (rc)
		return rc;
	/* Directory mtimes change as children are created: set them all at the end. */
	if (u->ndirs == u->capdirs) {
		u->capdirs = u->capdirs ? u->capdirs * 2 : 64;
		u->dirs = xrealloc(u->dirs, u->capdirs * sizeof *u->dirs);
	}
	u->dirs[u->ndirs].path = xstrdup(clean);
	u->dirs[u->ndirs++].mtime = e->mtime;
	return 0;
}

static int make_hardlink(struct unpacker *u, int dfd, const char *name, const char *clean, const struct tar_entry *e)
{
	char *target;
	int rc = clean_path(u, e->linkpath, "hardlink target", &target);
	if (rc)
		return rc;
	if (!target[0] || !strcmp(target, clean)) {
		free(target);
		return errf(u->err, E_INVAL, "%s: hardlink \"%.200s\" has an invalid target \"%.200s\"", u->label,
			    e->path, e->linkpath);
	}
	int tfd;
	const char *tbase;
	if ((rc = open_parent(u, target, false, &tbase, &tfd))) {
		free(target);
		return rc;
	}
	struct stat st;
	if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) || S_ISDIR(st.st_mode)) {
		rc = errf(u->err, E_INVAL, "%s: hardlink \"%.200s\": target \"%.200s\" is missing or a directory",
			  u->label, e->path, e->linkpath);
	} else if ((rc = clear_slot(u, dfd, name, false)) == 0 && linkat(tfd, tbase, dfd, name, 0)) {
		rc = errf(u->err, E_IO, "%s: hardlink \"%.200s\": %s", u->label, e->path, strerror(errno));
	}
	close(tfd);
	free(target);
	return rc;
}

static int make_whiteout(struct unpacker *u, int dfd, const char *name, const struct tar_entry *e)
{
	int rc = clear_slot(u, dfd, name, false);
	if (rc)
		return rc;
	if (mknodat(dfd, name, S_IFCHR | 0, makedev(0, 0)))
		return errf(u->err, E_IO, "%s: whiteout \"%.200s\": %s (needs root)", u->label, e->path, strerror(errno));
	return 0;
}

static int apply_entry(struct unpacker *u, struct tar_entry *e)
{
	char *clean;
	int rc = clean_path(u, e->path, "entry", &clean);
	if (rc)
		return rc;
	if (!clean[0]) {
		/* The layer root itself ("./"): take its owner and mode only. */
		free(clean);
		if (e->type != TAR_DIR)
			return errf(u->err, E_INVAL, "%s: root entry \"%.200s\" is not a directory", u->label, e->path);
		return set_meta(u, u->root, e);
	}
	const char *base;
	int dfd;
	if ((rc = open_parent(u, clean, true, &base, &dfd))) {
		free(clean);
		return rc;
	}
	bool wh = !strncmp(base, WH_PREFIX, strlen(WH_PREFIX));
	if (wh && !strcmp(base, WH_OPAQUE)) {
		if (fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0))
			rc = errf(u->err, E_IO, "%s: opaque whiteout \"%.200s\": %s (needs root)", u->label, e->path, strerror(errno));
	} else if (wh) {
		const char *victim = base + strlen(WH_PREFIX);
		if (!victim[0] || !strcmp(victim, ".") || !strcmp(victim, "..") || !strncmp(victim, WH_PREFIX, strlen(WH_PREFIX)))
			rc = errf(u->err, E_INVAL, "%s: invalid whiteout \"%.200s\"", u->label, e->path);
		else
			rc = make_whiteout(u, dfd, victim, e);
	} else {
		switch (e->type) {
		case TAR_REG:
			if (!(rc = clear_slot(u, dfd, base, false)))
				rc = write_file(u, dfd, base, e);
			break;
		case TAR_DIR:
			rc = make_dir(u, dfd, base, clean, e);
			break;
		case TAR_SYMLINK:
			if (!e->linkpath[0]) {
				rc = errf(u->err, E_INVAL, "%s: symlink \"%.200s\" has an empty target", u->label, e->path);
			} else if (!(rc = clear_slot(u, dfd, base, false))) {
				if (symlinkat(e->linkpath, dfd, base))
					rc = errf(u->err, E_IO, "%s: symlink \"%.200s\": %s", u->label, e->path, strerror(errno));
				else if (fchownat(dfd, base, e->uid, e->gid, AT_SYMLINK_NOFOLLOW))
					rc = errf(u->err, E_IO, "%s: chown \"%.200s\": %s", u->label, e->path, strerror(errno));
				else {
					struct timespec ts[2] = {{e->mtime, 0}, {e->mtime, 0}};
					utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW);
				}
			}
			break;
		case TAR_LINK:
			rc = make_hardlink(u, dfd, base, clean, e);
			break;
		case TAR_CHR:
			if (e->devmajor == 0 && e->devminor == 0) /* an overlay-style whiteout */
				rc = make_whiteout(u, dfd, base, e);
			else
				rc = errf(u->err, E_INVAL, "%s: device node \"%.200s\" (char %u:%u) in a layer: rejected",
					  u->label, e->path, e->devmajor, e->devminor);
			break;
		case TAR_BLK:
			rc = errf(u->err, E_INVAL, "%s: device node \"%.200s\" (block %u:%u) in a layer: rejected",
				  u->label, e->path, e->devmajor, e->devminor);
			break;
		case TAR_FIFO:
			if (!(rc = clear_slot(u, dfd, base, false))) {
				if (mkfifoat(dfd, base, 0600))
					rc = errf(u->err, E_IO, "%s: fifo \"%.200s\": %s", u->label, e->path, strerror(errno));
				else if (fchownat(dfd, base, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) ||
					 fchmodat(dfd, base, e->mode, 0))
					rc = errf(u->err, E_IO, "%s: fifo \"%.200s\": %s", u->label, e->path, strerror(errno));
			}
			break;
		default:
			rc = errf(u->err, E_UNSUPP, "%s: unsupported entry \"%.200s\"", u->label, e->path);
		}
	}
	close(dfd);
	free(clean);
	return rc;
}

static void set_dir_times(struct unpacker *u)
{
	for (size_t i = u->ndirs; i-- > 0;) {
		const char *base;
		int dfd;
		char err[ERR_LEN];
		char *saved = u->err;
		u->err = err;
		if (open_parent(u, u->dirs[i].path, false, &base, &dfd) == 0) {
			struct timespec ts[2] = {{u->dirs[i].mtime, 0}, {u->dirs[i].mtime, 0}};
			utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW);
			close(dfd);
		}
		u->err = saved;
	}
}

static void layer_label(const char *blob_path, char *out, size_t size)
{
	const char *b = strrchr(blob_path, '/');
	b = b ? b + 1 : blob_path;
	if (strlen(b) == 64)
		snprintf(out, size, "layer sha256:%.12s", b);
	else
		snprintf(out, size, "layer %.100s", b);
}

/* Unpacks from an opened reader into dest_dir (through a temp dir renamed into place). */
static int unpack_from(struct tar_reader *tr, const char *label, const char *dest_dir, char *diff_id, char *err)
{
	char *parent = xstrdup(dest_dir);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		int rc = fs_mkdir_p(parent, 0700, err);
		if (rc) {
			free(parent);
			return rc;
		}
	}
	free(parent);
	char *tmp = xasprintf("%s.tmp-XXXXXX", dest_dir);
	if (!mkdtemp(tmp)) {
		int e = errno;
		free(tmp);
		return errf(err, E_IO, "%s: create temp dir beside %s: %s", label, dest_dir, strerror(e));
	}
	struct unpacker u = {.label = label, .tr = tr, .err = err};
	u.root = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = u.root < 0 ? errf(err, E_IO, "%s: open %s: %s", label, tmp, strerror(errno)) : 0;
	if (!rc && fchmod(u.root, 0755))
		rc = errf(err, E_IO, "%s: chmod %s: %s", label, tmp, strerror(errno));
	if (!rc) {
		struct tar_entry *e;
		int n;
		while ((n = tar_next(tr, &e, err)) > 0)
			if ((rc = apply_entry(&u, e)))
				break;
		if (n < 0)
			rc = n;
	}
	if (!rc && diff_id)
		rc = tar_diff_id(tr, diff_id, err);
	if (!rc) {
		set_dir_times(&u);
		if (syncfs(u.root)) /* the rename below must not land before the data */
			rc = errf(err, E_IO, "%s: sync: %s", label, strerror(errno));
	}
	if (u.root >= 0)
		close(u.root);
	for (size_t i = 0; i < u.ndirs; i++)
		free(u.dirs[i].path);
	free(u.dirs);
	if (!rc && rename(tmp, dest_dir)) {
		/* Lost a race with a concurrent unpack of the same digest: theirs is complete. */
		if (!(errno == EEXIST || errno == ENOTEMPTY) || !fs_is_dir(dest_dir))
			rc = errf(err, E_IO, "%s: rename into %s: %s", label, dest_dir, strerror(errno));
		fs_rm_rf(tmp);
	} else if (rc) {
		fs_rm_rf(tmp);
	}
	if (!rc)
		TRACE("image", label, "unpacked %s layer into %s", zsrc_kind_name(tr->src.kind), dest_dir);
	free(tmp);
	return rc;
}

int layer_unpack(const char *blob_path, const char *dest_dir, char *err)
{
	char label[128];
	layer_label(blob_path, label, sizeof label);
	if (fs_is_dir(dest_dir))
		return 0;
	int bfd = open(blob_path, O_RDONLY | O_CLOEXEC);
	if (bfd < 0)
		return errf(err, errno == ENOENT ? E_NOTFOUND : E_IO, "%s: open %s: %s", label, blob_path, strerror(errno));
	struct tar_reader tr;
	int rc = tar_open(&tr, bfd, label, err);
	if (!rc)
		rc = unpack_from(&tr, label, dest_dir, NULL, err);
	tar_close(&tr);
	close(bfd);
	return rc;
}

int layer_unpack_stream(zsrc_read_fn fn, void *ctx, const char *label, const char *dest_dir, char *diff_id, char *err)
{
	if (fs_is_dir(dest_dir))
		return errf(err, E_EXISTS, "%s: %s is already unpacked", label, dest_dir);
	struct tar_reader tr;
	int rc = tar_open_stream(&tr, fn, ctx, label, diff_id != NULL, err);
	if (!rc)
		rc = unpack_from(&tr, label, dest_dir, diff_id, err);
	tar_close(&tr);
	return rc;
}
