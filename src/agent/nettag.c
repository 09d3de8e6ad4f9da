#include "agent/nettag.h"
#include "util/layout.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAG_CLAIMS "/run/orch/net-tags"

static bool claim_holder_keeps(const char *holder, const char *tag)
{
	char p[700], kept[16] = "";
	layout_path(p, sizeof p, holder, LAYOUT_NET_TAG);
	FILE *f = fopen(p, "r");
	if (!f)
		return false;
	bool keeps = fscanf(f, "%15s", kept) == 1 && strcmp(kept, tag) == 0;
	fclose(f);
	return keeps;
}

/* The data dir a claim names ("" when there is none). */
static size_t read_holder(const char *path, char *holder, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(holder, 1, cap - 1, f) : 0;
	if (f)
		fclose(f);
	holder[n] = 0;
	return n;
}

bool nettag_claim(const char *tag, const char *data_dir)
{
	char p[128], holder[600];
	(void)mkdir("/run/orch", 0700);
	(void)mkdir(TAG_CLAIMS, 0700);
	snprintf(p, sizeof p, TAG_CLAIMS "/%s", tag);
	for (int tries = 0; tries < 2; tries++) {
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			bool ok = write(fd, data_dir, strlen(data_dir)) == (ssize_t)strlen(data_dir);
			close(fd);
			return ok;
		}
		if (errno != EEXIST)
			return true; /* no claims here (read-only /run): the bridge probe alone decides */
		size_t n = read_holder(p, holder, sizeof holder);
		if (strcmp(holder, data_dir) == 0)
			return true;
		if (n && claim_holder_keeps(holder, tag))
			return false;
		unlink(p); /* stale: its node left or chose again */
	}
	return false;
}

void nettag_release_dir(const char *data_dir)
{
	char p[700], tag[16];
	layout_path(p, sizeof p, data_dir, LAYOUT_NET_TAG);
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	if (fscanf(f, "%15s", tag) == 1)
		nettag_release(tag, data_dir);
	fclose(f);
}

void nettag_release(const char *tag, const char *data_dir)
{
	char p[128], holder[600];
	snprintf(p, sizeof p, TAG_CLAIMS "/%s", tag);
	if (read_holder(p, holder, sizeof holder) && strcmp(holder, data_dir) == 0)
		unlink(p);
}
