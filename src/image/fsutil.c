#include "image/fsutil.h"
#include "util/err.h"
#include "util/mem.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path, unsigned mode, char *err)
{
	char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || !*s) {
			char c = *s;
			*s = 0;
			if (mkdir(p, mode) && errno != EEXIST) {
				int e = errno;
				free(p);
				return errf(err, E_IO, "create directory %s: %s", path, strerror(e));
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return 0;
}

bool fs_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int rm_children(int dfd, dev_t dev, int depth)
{
	if (depth > 4096)
		return -ELOOP;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				rc = -EBUSY; /* a mount point: never empty someone's mount */
				continue;
			}
			int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				rc = -errno;
				continue;
			}
			int r = rm_children(cfd, dev, depth + 1);
			if (r)
				rc = r;
			if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) && !rc)
				rc = -errno;
		} else if (unlinkat(dirfd(d), de->d_name, 0) && errno != ENOENT && !rc) {
			rc = -errno;
		}
	}
	closedir(d);
	return rc;
}

int fs_rm_at(int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) ? -errno : 0;
	struct stat pst;
	if (fstat(dfd, &pst) == 0 && pst.st_dev != st.st_dev)
		return -EBUSY;
	int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0)
		return -errno;
	int rc = rm_children(cfd, st.st_dev, 0);
	if (rc)
		return rc;
	return unlinkat(dfd, name, AT_REMOVEDIR) ? -errno : 0;
}

int fs_rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) ? -errno : 0;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The top itself may be a mount point (an overlay rootfs): refuse to empty it. */
	char *parent = xasprintf("%s/..", path);
	struct stat pst;
	int prc = stat(parent, &pst);
	free(parent);
	if (prc == 0 && pst.st_dev != st.st_dev) {
		close(fd);
		return -EBUSY;
	}
	int rc = rm_children(fd, st.st_dev, 0);
	if (rc)
		return rc;
	return rmdir(path) ? -errno : 0;
}
