/* A layer or archive as tar members (image/tar.h): ustar, GNU and pax headers, sparse
 * maps, over plain, gzip or zstd input; every entry's content read to its end, by
 * tar_read and tar_read_at alternately. */
#include "common.h"
#include "image/tar.h"
#include "util/err.h"
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-tar", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET))
		return 0;
	struct tar_reader r;
	char err[ERR_LEN];
	if (!tar_open(&r, fd, "fuzz", err)) {
		struct tar_entry *e;
		char buf[4096];
		for (int i = 0; tar_next(&r, &e, err) == 1; i++) {
			ssize_t n;
			uint64_t at;
			if (i % 2)
				while ((n = tar_read(&r, buf, sizeof buf, err)) > 0) {}
			else
				while ((n = tar_read_at(&r, buf, sizeof buf, &at, err)) > 0) {}
		}
		tar_close(&r);
	}
	close(fd);
	return 0;
}
