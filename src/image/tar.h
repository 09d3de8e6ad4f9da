/* A streaming tar reader for image layers and archives: ustar, GNU long names ('L'/'K'),
 * GNU base-256 numbers, pax extended headers ('x' per entry, 'g' global: path, linkpath,
 * size, mtime, uid, gid), sparse files (GNU 'S' entries and GNU tar's pax formats 0.0, 0.1
 * and 1.0), over gzip, zstd or plain input (image/zsrc.h). Every header checksum is
 * verified; a truncated or corrupt archive is an error naming the label given at open
 * ("layer sha256:ab12…: truncated tar entry at offset 1536"), never a crash. */
#ifndef ORCH_TAR_H
#define ORCH_TAR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "image/zsrc.h"

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

/* One stretch of data of a sparse file; what lies between stretches is a hole. */
struct tar_span {
	uint64_t off, len;
};

struct tar_entry {
	char *path;      /* as stored, e.g. "./usr/bin/x" or "etc/" */
	char *linkpath;  /* hard or symbolic link target, else "" */
	char type;
	uint32_t mode;   /* permission bits incl. setuid/setgid/sticky */
	uint32_t uid, gid;
	uint64_t size;   /* bytes of content, holes included (0 for everything but TAR_REG) */
	int64_t mtime;
	uint32_t devmajor, devminor;
	uint64_t offset; /* offset of this entry's first header in the tar stream */
	/* Sparse files only (else NULL/0): the stretches holding data, in ascending order. */
	struct tar_span *spans;
	size_t nspans;
};

struct tar_reader {
	struct zsrc src;
	char *label;
	uint64_t off;           /* position in the (uncompressed) tar stream */
	uint64_t remain, pad;   /* stored data bytes of the current entry still unread, padding */
	uint64_t pos;           /* content offset reached by tar_read */
	size_t span;            /* sparse: the stretch being read, and bytes of it already read */
	uint64_t span_done;
	struct tar_entry ent;
	char *g_path, *g_link;  /* pax 'g' defaults */
	bool g_has_mtime, g_has_uid, g_has_gid;
	int64_t g_mtime;
	uint32_t g_uid, g_gid;
};

/* Starts reading fd (not closed by the reader). label prefixes every error message. */
int tar_open(struct tar_reader *r, int fd, const char *label, char *err);
/* The same over a pull callback (image/zsrc.h); hash keeps the sha256 of the decoded tar
 * (tar_diff_id once tar_next returned 0). */
int tar_open_stream(struct tar_reader *r, zsrc_read_fn fn, void *ctx, const char *label, bool hash, char *err);
int tar_diff_id(struct tar_reader *r, char *out, char *err);
/* 1 and *e set: next entry (valid until the next call); 0: clean end of archive;
 * negative: error. Unread data of the previous entry is skipped. */
int tar_next(struct tar_reader *r, struct tar_entry **e, char *err);
/* Reads the current entry's content in order, holes of a sparse file as zeros: bytes
 * read, 0 at its end, negative on error. */
ssize_t tar_read(struct tar_reader *r, void *p, size_t n, char *err);
/* Reads the next piece of the entry's stored data and says where it belongs (*at, a
 * content offset): holes are skipped, so a writer can leave them holes. Do not mix with
 * tar_read on one entry. */
ssize_t tar_read_at(struct tar_reader *r, void *p, size_t n, uint64_t *at, char *err);
void tar_close(struct tar_reader *r);

#endif
