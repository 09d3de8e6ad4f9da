/* A streaming tar reader for image layers and archives: ustar, GNU long names ('L'/'K'),
 * GNU base-256 numbers, pax extended headers ('x' per entry, 'g' global: path, linkpath,
 * size, mtime, uid, gid), and gzip input detected by its magic. Every header checksum is
 * verified; a truncated or corrupt archive is an error naming the label given at open
 * ("layer sha256:ab12…: truncated tar entry at offset 1536"), never a crash. */
#ifndef ORCH_TAR_H
#define ORCH_TAR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>

/* Entry types after normalisation (regular files are always TAR_REG). */
enum {
	TAR_REG = '0',
	TAR_LINK = '1',
	TAR_SYMLINK = '2',
	TAR_CHR = '3',
	TAR_BLK = '4',
	TAR_DIR = '5',
	TAR_FIFO = '6',
};

struct tar_entry {
	char *path;      /* as stored, e.g. "./usr/bin/x" or "etc/" */
	char *linkpath;  /* hard or symbolic link target, else "" */
	char type;
	uint32_t mode;   /* permission bits incl. setuid/setgid/sticky */
	uint32_t uid, gid;
	uint64_t size;   /* data bytes (0 for everything but TAR_REG) */
	int64_t mtime;
	uint32_t devmajor, devminor;
	uint64_t offset; /* offset of this entry's first header in the tar stream */
};

#define TAR_INBUF (64 * 1024)

struct tar_reader {
	int fd;
	char *label;
	bool gz, gz_end, eof;
	z_stream zs;
	uint8_t *in;            /* raw input buffer */
	size_t in_len, in_pos;
	uint64_t off;           /* position in the (uncompressed) tar stream */
	uint64_t remain, pad;   /* of the current entry's data */
	struct tar_entry ent;
	char *g_path, *g_link;  /* pax 'g' defaults */
	bool g_has_mtime, g_has_uid, g_has_gid;
	int64_t g_mtime;
	uint32_t g_uid, g_gid;
};

/* Starts reading fd (not closed by the reader). label prefixes every error message. */
int tar_open(struct tar_reader *r, int fd, const char *label, char *err);
/* 1 and *e set: next entry (valid until the next call); 0: clean end of archive;
 * negative: error. Unread data of the previous entry is skipped. */
int tar_next(struct tar_reader *r, struct tar_entry **e, char *err);
/* Reads the current entry's data: bytes read, 0 at its end, negative on error. */
ssize_t tar_read(struct tar_reader *r, void *p, size_t n, char *err);
void tar_close(struct tar_reader *r);

#endif
