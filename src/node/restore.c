#include "node/restore.h"
#include "pki/pki.h"
#include "util/err.h"
#include "util/layout.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int restore_stage(const char *data_dir, const void *body, size_t n, char *err)
{
	char path[LAYOUT_PATH_MAX];
	layout_path(path, sizeof path, data_dir, LAYOUT_RESTORE);
	return pki_write_file(path, body, n, 0600, err);
}

bool restore_staged(const char *data_dir)
{
	char path[LAYOUT_PATH_MAX];
	layout_path(path, sizeof path, data_dir, LAYOUT_RESTORE);
	return access(path, F_OK) == 0;
}

int restore_load(const char *data_dir, struct buf *out, char *err)
{
	char path[LAYOUT_PATH_MAX];
	layout_path(path, sizeof path, data_dir, LAYOUT_RESTORE);
	FILE *f = fopen(path, "r");
	if (!f)
		return errf(err, errno == ENOENT ? E_NOTFOUND : E_IO, "open %s: %s", path, strerror(errno));
	char tmp[65536];
	size_t k;
	while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_append(out, tmp, k);
	int rc = ferror(f) ? errf(err, E_IO, "read %s: %s", path, strerror(errno)) : 0;
	fclose(f);
	return rc;
}

void restore_done(const char *data_dir)
{
	char path[LAYOUT_PATH_MAX];
	layout_path(path, sizeof path, data_dir, LAYOUT_RESTORE);
	unlink(path);
}
