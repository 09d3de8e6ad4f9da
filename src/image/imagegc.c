#include "image/imagegc.h"
#include "image/blobstore.h"
#include "image/fsutil.h"
#include "util/err.h"
#include "util/layout.h"
#include "util/mem.h"
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void imagegc_sort(char **keep, size_t n)
{
	if (n)
		qsort(keep, n, sizeof *keep, cmp_str);
}

static bool kept(char *const *keep, size_t n, const char *hex)
{
	char dg[DIGEST_LEN];
	snprintf(dg, sizeof dg, "sha256:%s", hex);
	const char *k = dg;
	return n && bsearch(&k, keep, n, sizeof *keep, cmp_str);
}

static bool hex64(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

/* du of a tree (allocated blocks, as df sees them); nftw has no context argument */
static __thread uint64_t tree_sum;
static int tree_add(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)p;
	(void)flag;
	(void)f;
	tree_sum += (uint64_t)st->st_blocks * 512;
	return 0;
}

static uint64_t tree_bytes(const char *path)
{
	tree_sum = 0;
	nftw(path, tree_add, 16, FTW_PHYS | FTW_MOUNT);
	return tree_sum;
}

/* One directory of entries named by hex digest: blobs (files) or layers (trees). */
static int scan(const char *dir, bool layers, char *const *keep, size_t nkeep, bool remove, uint64_t cutoff,
		struct imagegc_res *res, char *err)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return errno == ENOENT ? 0 : errf(err, E_IO, "%s: %s", dir, strerror(errno));
	struct dirent *e;
	while ((e = readdir(dp))) {
		bool tmp = !strncmp(e->d_name, ".tmp-", 5);
		if (!tmp && !hex64(e->d_name))
			continue; /* not ours to judge */
		char p[LAYOUT_PATH_MAX + 80];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p, &st))
			continue;
		uint64_t bytes = layers && S_ISDIR(st.st_mode) ? tree_bytes(p) : (uint64_t)st.st_blocks * 512;
		bool old = (uint64_t)st.st_mtime <= cutoff; /* no grace: whatever it is, however new */
		if (remove && old && (tmp || !kept(keep, nkeep, e->d_name))) {
			int rc = layers ? fs_rm_rf(p) : unlink(p) ? -errno : 0;
			if (rc == 0) {
				res->freed_bytes += bytes;
				if (layers)
					res->freed_layers++;
				else
					res->freed_blobs++;
				continue;
			}
		}
		if (layers)
			res->layer_bytes += bytes;
		else
			res->blob_bytes += bytes;
	}
	closedir(dp);
	return 0;
}

int imagegc_run(const char *data_dir, char *const *keep, size_t nkeep, bool remove, uint64_t grace_s, uint64_t now_s,
		struct imagegc_res *res, char *err)
{
	memset(res, 0, sizeof *res);
	char blobs[LAYOUT_PATH_MAX], layers[LAYOUT_PATH_MAX + 16];
	layout_path(blobs, sizeof blobs, data_dir, LAYOUT_BLOBS);
	layout_path(layers, sizeof layers, data_dir, LAYOUT_LAYERS);
	strcat(layers, "/sha256");
	uint64_t cutoff = grace_s >= now_s ? 0 : now_s - grace_s;
	int rc = scan(blobs, false, keep, nkeep, remove, cutoff, res, err);
	if (!rc)
		rc = scan(layers, true, keep, nkeep, remove, cutoff, res, err);
	/* the copies of a node with --userns-remap: layers/userns-BASE/sha256 (agent/userns.h) */
	layers[strlen(layers) - 7] = 0;
	DIR *dp = rc ? NULL : opendir(layers);
	struct dirent *e;
	while (dp && !rc && (e = readdir(dp))) {
		if (strncmp(e->d_name, "userns-", 7) || strspn(e->d_name + 7, "0123456789") != strlen(e->d_name + 7))
			continue;
		char sub[LAYOUT_PATH_MAX + 64];
		snprintf(sub, sizeof sub, "%s/%s/sha256", layers, e->d_name);
		rc = scan(sub, true, keep, nkeep, remove, cutoff, res, err);
	}
	if (dp)
		closedir(dp);
	return rc;
}

uint64_t imagegc_blob_bytes(const char *data_dir, const char *digest)
{
	if (!digest_valid(digest))
		return 0;
	char p[LAYOUT_PATH_MAX + 80], root[LAYOUT_PATH_MAX];
	struct stat st;
	uint64_t n = 0;
	layout_path(root, sizeof root, data_dir, LAYOUT_BLOBS);
	snprintf(p, sizeof p, "%s/%s", root, digest + 7);
	if (!lstat(p, &st))
		n += (uint64_t)st.st_blocks * 512;
	layout_path(root, sizeof root, data_dir, LAYOUT_LAYERS);
	snprintf(p, sizeof p, "%s/sha256/%s", root, digest + 7);
	if (!lstat(p, &st) && S_ISDIR(st.st_mode))
		n += tree_bytes(p);
	return n;
}
