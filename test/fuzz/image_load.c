/* An archive given to `orch image load` (image/image_load.h): a docker-archive or an OCI
 * layout tar, its manifest.json / index.json / manifests / configs and layer members, the
 * blobs verified and stored. The store is emptied after each input. */
#include "common.h"
#include "image/image_load.h"
#include "util/err.h"
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/orch-fuzz-image-XXXXXX";
static char archive[sizeof dir + 16], blobs[sizeof dir + 16];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(p);
	return 0;
}

static void remove_dir(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(dir))
		abort();
	snprintf(archive, sizeof archive, "%s/in.tar", dir);
	snprintf(blobs, sizeof blobs, "%s/store", dir);
	atexit(remove_dir);
	(void)argc;
	(void)argv;
	return 0;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = open(archive, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	struct image_info *v;
	size_t n;
	char err[ERR_LEN];
	if (!image_load_all(blobs, archive, &v, &n, err))
		image_list_free(v, n);
	nftw(blobs, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
