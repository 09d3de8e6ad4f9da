#include "secret/secfs.h"
#include "secret/secrets.h"
#include "util/err.h"
#include "util/layout.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECFS_SLACK (64 * 1024)

void secfs_binds_free(struct bundle_bind *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((void *)(uintptr_t)b[i].src);
		free((void *)(uintptr_t)b[i].dst);
	}
	free(b);
}

void secfs_teardown(const char *task_dir)
{
	char dir[LAYOUT_PATH_MAX];
	layout_task_path(dir, sizeof dir, task_dir, LAYOUT_TASK_SECRETS);
	/* lazily: a container still holding a bind of a file keeps its copy until it goes */
	while (umount2(dir, MNT_DETACH) == 0)
		;
	rmdir(dir);
}

/* One file: its value opened into the tmpfs at path. */
static int write_one(const char *data_dir, const msgpack_object *o, const char *path, char *err)
{
	char kind[16], name[256];
	uint64_t uid = 0, gid = 0, mode = 0444;
	const msgpack_object *data = mp_get(o, "data"), *opened = mp_get(o, "value");
	char why[ERR_LEN];
	if (mp_get_strbuf(o, "kind", kind, sizeof kind) || mp_get_strbuf(o, "name", name, sizeof name))
		return errf(err, E_INVAL, "a secret of the task has no kind or name");
	mp_get_u64(o, "uid", &uid);
	mp_get_u64(o, "gid", &gid);
	mp_get_u64(o, "mode", &mode);
	if (!mp_get_strbuf(o, "open_err", why, sizeof why)) /* a worker's: the leader could not open it */
		return errf(err, E_FAIL, "%s", why);
	struct buf v = {0};
	int rc;
	if (opened && opened->type == MSGPACK_OBJECT_BIN) { /* opened by the leader for this worker (node/feed.h) */
		buf_append(&v, opened->via.bin.ptr, opened->via.bin.size);
		rc = 0;
	} else if (!data || data->type != MSGPACK_OBJECT_BIN)
		return errf(err, E_NOTFOUND, "%s %s: this version no longer exists in the cluster", kind, name);
	else
		rc = secrets_open(data_dir, kind, name, data->via.bin.ptr, data->via.bin.size, &v, err);
	if (rc) {
		secrets_wipe(&v);
		return rc;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		rc = errf(err, E_IO, "%s %s: create %s: %s", kind, name, path, strerror(errno));
	else {
		if ((v.len && write(fd, v.data, v.len) != (ssize_t)v.len) || fchown(fd, (uid_t)uid, (gid_t)gid) ||
		    fchmod(fd, (mode_t)(mode & 0777)))
			rc = errf(err, E_IO, "%s %s: write %s: %s", kind, name, path, strerror(errno));
		close(fd);
	}
	secrets_wipe(&v);
	return rc;
}

int secfs_setup(const char *data_dir, const char *task_dir, const uint8_t *files, size_t len, size_t extra,
		struct bundle_bind **binds, size_t *nbinds, char *err)
{
	*binds = NULL;
	*nbinds = 0;
	static const uint8_t no_files[] = {0x90}; /* [] */
	struct mpr r;
	if (!files || !len) {
		files = no_files;
		len = sizeof no_files;
	}
	if (mpr_decode(&r, files, len) || r.root->type != MSGPACK_OBJECT_ARRAY) {
		if (r.root)
			mpr_free(&r);
		return errf(err, E_INVAL, "the task's secrets are malformed");
	}
	uint32_t n = r.root->via.array.size;
	if (!n && !extra) {
		mpr_free(&r);
		return 0;
	}
	size_t total = SECFS_SLACK + extra;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *d = mp_get(&r.root->via.array.ptr[i], "data");
		if (!d || d->type != MSGPACK_OBJECT_BIN)
			d = mp_get(&r.root->via.array.ptr[i], "value"); /* opened for a worker */
		total += (d && d->type == MSGPACK_OBJECT_BIN ? d->via.bin.size : 0) + 4096;
	}
	char dir[LAYOUT_PATH_MAX], opts[64];
	layout_task_path(dir, sizeof dir, task_dir, LAYOUT_TASK_SECRETS);
	secfs_teardown(task_dir); /* a prepare again after a failed one */
	int rc = 0;
	snprintf(opts, sizeof opts, "mode=0700,size=%zu", total);
	if (mkdir(dir, 0700) && errno != EEXIST)
		rc = errf(err, E_IO, "mkdir %s: %s", dir, strerror(errno));
	else if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts))
		rc = errf(err, E_IO, "mount a tmpfs for the task's secrets at %s: %s", dir, strerror(errno));
	struct bundle_bind *b = rc ? NULL : xcalloc(n ? n : 1, sizeof *b);
	for (uint32_t i = 0; !rc && i < n; i++) {
		const msgpack_object *o = &r.root->via.array.ptr[i];
		char path[LAYOUT_PATH_MAX + 16], target[512];
		snprintf(path, sizeof path, "%s/%u", dir, i);
		if (mp_get_strbuf(o, "target", target, sizeof target) || target[0] != '/')
			rc = errf(err, E_INVAL, "a secret of the task has no absolute target");
		else if (!(rc = write_one(data_dir, o, path, err))) {
			b[i].src = xstrdup(path);
			b[i].dst = xstrdup(target);
			(*nbinds)++;
		}
	}
	mpr_free(&r);
	if (rc) {
		secfs_binds_free(b, *nbinds);
		*nbinds = 0;
		secfs_teardown(task_dir);
		return rc;
	}
	*binds = b;
	return 0;
}
