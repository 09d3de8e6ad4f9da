#include "image/tar.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 512
#define MAX_LONGNAME (64 * 1024) /* GNU 'L'/'K' bodies: far above PATH_MAX */
#define MAX_PAX (1024 * 1024)

/* ---- raw byte source: the fd, through zlib when gzip'd ---- */

static int fill_in(struct tar_reader *r, char *err)
{
	if (r->in_pos < r->in_len || r->eof)
		return 0;
	for (;;) {
		ssize_t n = read(r->fd, r->in, TAR_INBUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errf(err, E_IO, "%s: read: %s", r->label, strerror(errno));
		r->in_pos = 0;
		r->in_len = (size_t)n;
		if (n == 0)
			r->eof = true;
		return 0;
	}
}

/* Reads up to n bytes of the tar stream; 0 only at the end of input. */
static ssize_t raw_read(struct tar_reader *r, uint8_t *p, size_t n, char *err)
{
	int rc;
	if (!r->gz) {
		if ((rc = fill_in(r, err)))
			return rc;
		size_t k = r->in_len - r->in_pos;
		if (k > n)
			k = n;
		memcpy(p, r->in + r->in_pos, k);
		r->in_pos += k;
		return (ssize_t)k;
	}
	for (;;) {
		if (r->gz_end) {
			/* Concatenated gzip members are one stream (as gzip -d treats them). */
			if ((rc = fill_in(r, err)))
				return rc;
			if (r->in_pos == r->in_len)
				return 0;
			if (inflateReset(&r->zs) != Z_OK)
				return errf(err, E_INVAL, "%s: corrupt gzip data", r->label);
			r->gz_end = false;
		}
		if ((rc = fill_in(r, err)))
			return rc;
		r->zs.next_in = r->in + r->in_pos;
		r->zs.avail_in = (uInt)(r->in_len - r->in_pos);
		r->zs.next_out = p;
		r->zs.avail_out = (uInt)(n > (1u << 30) ? (1u << 30) : n);
		uInt before = r->zs.avail_out;
		int z = inflate(&r->zs, Z_NO_FLUSH);
		r->in_pos = r->in_len - r->zs.avail_in;
		size_t got = before - r->zs.avail_out;
		if (z == Z_STREAM_END)
			r->gz_end = true;
		else if (z == Z_BUF_ERROR && r->eof && r->in_pos == r->in_len)
			return errf(err, E_INVAL, "%s: truncated gzip stream near tar offset %llu", r->label,
				    (unsigned long long)r->off);
		else if (z != Z_OK && z != Z_BUF_ERROR)
			return errf(err, E_INVAL, "%s: corrupt gzip data near tar offset %llu: %s", r->label,
				    (unsigned long long)r->off, r->zs.msg ? r->zs.msg : "inflate failed");
		if (got)
			return (ssize_t)got;
		if (!r->gz_end && r->eof && r->in_pos == r->in_len)
			return errf(err, E_INVAL, "%s: truncated gzip stream near tar offset %llu", r->label,
				    (unsigned long long)r->off);
	}
}

/* Exactly n bytes, or an error saying the archive is truncated. */
static int read_full(struct tar_reader *r, void *p, size_t n, uint64_t entry_off, char *err)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = raw_read(r, (uint8_t *)p + got, n - got, err);
		if (k < 0)
			return (int)k;
		if (k == 0)
			return errf(err, E_INVAL, "%s: truncated tar entry at offset %llu", r->label,
				    (unsigned long long)entry_off);
		got += (size_t)k;
		r->off += (uint64_t)k;
	}
	return 0;
}

static int skip_bytes(struct tar_reader *r, uint64_t n, uint64_t entry_off, char *err)
{
	uint8_t tmp[4096];
	while (n > 0) {
		size_t k = n > sizeof tmp ? sizeof tmp : (size_t)n;
		int rc = read_full(r, tmp, k, entry_off, err);
		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

int tar_open(struct tar_reader *r, int fd, const char *label, char *err)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->label = xstrdup(label ? label : "tar");
	r->in = xmalloc(TAR_INBUF);
	r->ent.path = xstrdup("");
	r->ent.linkpath = xstrdup("");
	int rc = fill_in(r, err);
	if (rc)
		return rc;
	/* Gzip by magic; a first short read of 1 byte cannot hold a valid tar anyway. */
	if (r->in_len >= 2 && r->in[0] == 0x1f && r->in[1] == 0x8b) {
		if (inflateInit2(&r->zs, 15 + 16) != Z_OK)
			return errf(err, E_FAIL, "%s: cannot start gzip decoder", r->label);
		r->gz = true;
	}
	return 0;
}

void tar_close(struct tar_reader *r)
{
	if (r->gz)
		inflateEnd(&r->zs);
	free(r->in);
	free(r->label);
	free(r->ent.path);
	free(r->ent.linkpath);
	free(r->g_path);
	free(r->g_link);
	memset(r, 0, sizeof *r);
	r->fd = -1;
}

/* ---- header fields ---- */

/* Octal (NUL/space padded) or GNU base-256 (high bit of the first byte set). */
static int parse_num(const uint8_t *f, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n && (f[0] & 0x80)) {
		if (f[0] & 0x40)
			return -1; /* negative */
		v = f[0] & 0x3f;
		for (size_t i = 1; i < n; i++) {
			if (v >> 56)
				return -1;
			v = (v << 8) | f[i];
		}
		*out = v;
		return 0;
	}
	size_t i = 0;
	while (i < n && (f[i] == ' ' || f[i] == 0))
		i++;
	if (i == n) {
		*out = 0;
		return 0;
	}
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 61)
			return -1;
		v = (v << 3) | (uint64_t)(f[i] - '0');
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != 0)
			return -1;
	*out = v;
	return 0;
}

static bool zero_block(const uint8_t *h)
{
	for (int i = 0; i < BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

static bool checksum_ok(const uint8_t *h)
{
	uint64_t want;
	if (parse_num(h + 148, 8, &want))
		return false;
	uint64_t us = 0;
	int64_t ss = 0;
	for (int i = 0; i < BLOCK; i++) {
		uint8_t c = (i >= 148 && i < 156) ? ' ' : h[i];
		us += c;
		ss += (int8_t)c; /* some historic writers summed signed chars */
	}
	return us == want || (ss >= 0 && (uint64_t)ss == want);
}

static char *field_str(const uint8_t *f, size_t n)
{
	size_t l = 0;
	while (l < n && f[l])
		l++;
	return xstrndup((const char *)f, l);
}

/* Reads a metadata body (GNU long name or pax records) of size bytes plus padding. */
static int read_body(struct tar_reader *r, uint64_t size, uint64_t max, uint64_t hoff, char **out, char *err)
{
	if (size > max)
		return errf(err, E_INVAL, "%s: oversized extended header at offset %llu", r->label, (unsigned long long)hoff);
	char *b = xmalloc((size_t)size + 1);
	int rc = read_full(r, b, (size_t)size, hoff, err);
	if (!rc)
		rc = skip_bytes(r, (BLOCK - size % BLOCK) % BLOCK, hoff, err);
	if (rc) {
		free(b);
		return rc;
	}
	b[size] = 0;
	*out = b;
	return 0;
}

struct pax {
	char *path, *link;
	bool has_size, has_mtime, has_uid, has_gid;
	uint64_t size, uid, gid;
	int64_t mtime;
};

static void pax_free(struct pax *p)
{
	free(p->path);
	free(p->link);
	memset(p, 0, sizeof *p);
}

static int dec_u64(const char *s, uint64_t *out)
{
	if (!*s)
		return -1;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return *s ? -1 : 0;
}

/* "<len> key=value\n" records. Unknown keys (xattrs, atime, names) are ignored. */
static int pax_parse(struct tar_reader *r, const char *b, size_t n, uint64_t hoff, struct pax *p, char *err)
{
	size_t i = 0;
	while (i < n) {
		size_t len = 0, j = i;
		while (j < n && b[j] >= '0' && b[j] <= '9' && len < n)
			len = len * 10 + (size_t)(b[j++] - '0');
		if (j >= n || b[j] != ' ' || len == 0 || len > n - i || b[i + len - 1] != '\n')
			return errf(err, E_INVAL, "%s: malformed pax header at offset %llu", r->label, (unsigned long long)hoff);
		const char *kv = b + j + 1, *end = b + i + len - 1;
		const char *eq = memchr(kv, '=', (size_t)(end - kv));
		if (!eq)
			return errf(err, E_INVAL, "%s: malformed pax record at offset %llu", r->label, (unsigned long long)hoff);
		char *key = xstrndup(kv, (size_t)(eq - kv));
		char *val = xstrndup(eq + 1, (size_t)(end - eq - 1));
		int bad = 0;
		if (strlen(val) != (size_t)(end - eq - 1))
			bad = 1; /* NUL inside a value */
		else if (!strcmp(key, "path")) {
			free(p->path);
			p->path = val;
			val = NULL;
		} else if (!strcmp(key, "linkpath")) {
			free(p->link);
			p->link = val;
			val = NULL;
		} else if (!strcmp(key, "size")) {
			bad = dec_u64(val, &p->size);
			p->has_size = true;
		} else if (!strcmp(key, "uid")) {
			bad = dec_u64(val, &p->uid) || p->uid > UINT32_MAX;
			p->has_uid = true;
		} else if (!strcmp(key, "gid")) {
			bad = dec_u64(val, &p->gid) || p->gid > UINT32_MAX;
			p->has_gid = true;
		} else if (!strcmp(key, "mtime")) {
			/* seconds, optionally negative and with a fraction we drop */
			char *dot = strchr(val, '.');
			if (dot)
				*dot = 0;
			const char *v = val[0] == '-' ? val + 1 : val;
			uint64_t m;
			bad = dec_u64(v, &m) || m > INT64_MAX;
			p->mtime = val[0] == '-' ? -(int64_t)m : (int64_t)m;
			p->has_mtime = true;
		}
		free(key);
		free(val);
		if (bad)
			return errf(err, E_INVAL, "%s: bad pax value at offset %llu", r->label, (unsigned long long)hoff);
		i += len;
	}
	return 0;
}

/* ---- entries ---- */

int tar_next(struct tar_reader *r, struct tar_entry **out, char *err)
{
	int rc;
	uint8_t h[BLOCK];
	struct pax px = {0};
	char *gnu_name = NULL, *gnu_link = NULL;
	uint64_t first_off = UINT64_MAX;

	if ((rc = skip_bytes(r, r->remain + r->pad, r->ent.offset, err)))
		return rc;
	r->remain = r->pad = 0;
	for (;;) {
		uint64_t hoff = r->off;
		if (first_off == UINT64_MAX)
			first_off = hoff;
		rc = read_full(r, h, BLOCK, hoff, err);
		if (rc)
			goto fail;
		if (zero_block(h)) {
			/* End of archive. A second zero block normally follows; some writers stop
			 * after one, so its absence at EOF is tolerated. Drain a gzip stream so its
			 * CRC is still checked. */
			if (gnu_name || gnu_link || px.path || px.link || px.has_size) {
				rc = errf(err, E_INVAL, "%s: extended header without an entry at offset %llu", r->label,
					  (unsigned long long)hoff);
				goto fail;
			}
			if (r->gz) {
				uint8_t tmp[4096];
				ssize_t k;
				while ((k = raw_read(r, tmp, sizeof tmp, err)) > 0 && !r->gz_end)
					;
				if (k < 0) {
					rc = (int)k;
					goto fail;
				}
			}
			return 0;
		}
		if (!checksum_ok(h)) {
			rc = errf(err, E_INVAL, "%s: bad tar header checksum at offset %llu", r->label, (unsigned long long)hoff);
			goto fail;
		}
		uint64_t size, mode, uid, gid, mtime, maj, min;
		if (parse_num(h + 124, 12, &size) || parse_num(h + 100, 8, &mode) || parse_num(h + 108, 8, &uid) ||
		    parse_num(h + 116, 8, &gid) || parse_num(h + 136, 12, &mtime) || parse_num(h + 329, 8, &maj) ||
		    parse_num(h + 337, 8, &min) || uid > UINT32_MAX || gid > UINT32_MAX || maj > UINT32_MAX ||
		    min > UINT32_MAX) {
			rc = errf(err, E_INVAL, "%s: bad numeric field in tar header at offset %llu", r->label,
				  (unsigned long long)hoff);
			goto fail;
		}
		char type = (char)h[156];
		if (type == 'L' || type == 'K') {
			char **dst = type == 'L' ? &gnu_name : &gnu_link;
			free(*dst);
			*dst = NULL;
			if ((rc = read_body(r, size, MAX_LONGNAME, hoff, dst, err)))
				goto fail;
			continue;
		}
		if (type == 'x' || type == 'g') {
			char *body;
			if ((rc = read_body(r, size, MAX_PAX, hoff, &body, err)))
				goto fail;
			if (type == 'x') {
				rc = pax_parse(r, body, (size_t)size, hoff, &px, err);
			} else {
				struct pax g = {0};
				rc = pax_parse(r, body, (size_t)size, hoff, &g, err);
				if (!rc) {
					if (g.path) {
						free(r->g_path);
						r->g_path = xstrdup(g.path);
					}
					if (g.link) {
						free(r->g_link);
						r->g_link = xstrdup(g.link);
					}
					if (g.has_mtime)
						r->g_has_mtime = true, r->g_mtime = g.mtime;
					if (g.has_uid)
						r->g_has_uid = true, r->g_uid = (uint32_t)g.uid;
					if (g.has_gid)
						r->g_has_gid = true, r->g_gid = (uint32_t)g.gid;
				}
				pax_free(&g);
			}
			free(body);
			if (rc)
				goto fail;
			continue;
		}

		struct tar_entry *e = &r->ent;
		free(e->path);
		free(e->linkpath);
		if (px.path || gnu_name) {
			e->path = px.path ? px.path : gnu_name;
			if (px.path)
				px.path = NULL;
			else
				gnu_name = NULL;
		} else if (r->g_path) {
			e->path = xstrdup(r->g_path);
		} else {
			char *name = field_str(h, 100);
			/* The POSIX ustar prefix; GNU tar uses these bytes for other things. */
			if (!memcmp(h + 257, "ustar\0", 6) && h[345]) {
				char *pre = field_str(h + 345, 155);
				e->path = xasprintf("%s/%s", pre, name);
				free(pre);
				free(name);
			} else {
				e->path = name;
			}
		}
		if (px.link) {
			e->linkpath = px.link;
			px.link = NULL;
		} else if (gnu_link) {
			e->linkpath = gnu_link;
			gnu_link = NULL;
		} else if (r->g_link) {
			e->linkpath = xstrdup(r->g_link);
		} else {
			e->linkpath = field_str(h + 157, 100);
		}
		if (px.has_size)
			size = px.size;
		e->mode = (uint32_t)(mode & 07777);
		e->uid = px.has_uid ? (uint32_t)px.uid : r->g_has_uid ? r->g_uid : (uint32_t)uid;
		e->gid = px.has_gid ? (uint32_t)px.gid : r->g_has_gid ? r->g_gid : (uint32_t)gid;
		e->mtime = px.has_mtime ? px.mtime : r->g_has_mtime ? r->g_mtime : (int64_t)mtime;
		e->devmajor = (uint32_t)maj;
		e->devminor = (uint32_t)min;
		e->offset = first_off;
		switch (type) {
		case 0:
		case '0':
		case '7':
			type = TAR_REG;
			break;
		case TAR_LINK:
		case TAR_SYMLINK:
		case TAR_CHR:
		case TAR_BLK:
		case TAR_DIR:
		case TAR_FIFO:
			break;
		default:
			rc = errf(err, E_UNSUPP, "%s: unsupported tar entry type '%c' for \"%.100s\" at offset %llu",
				  r->label, type >= 32 && type < 127 ? type : '?', e->path, (unsigned long long)hoff);
			goto fail;
		}
		/* Old tars mark directories by a trailing slash on a regular entry. */
		size_t pl = strlen(e->path);
		if (type == TAR_REG && pl && e->path[pl - 1] == '/')
			type = TAR_DIR;
		e->type = type;
		/* Only regular files carry data blocks: like Go's archive/tar (which wrote most
		 * image layers), a size on links, directories and devices is ignored. */
		e->size = type == TAR_REG ? size : 0;
		r->remain = e->size;
		r->pad = (BLOCK - e->size % BLOCK) % BLOCK;
		pax_free(&px);
		free(gnu_name);
		free(gnu_link);
		*out = e;
		return 1;
	}
fail:
	pax_free(&px);
	free(gnu_name);
	free(gnu_link);
	return rc;
}

ssize_t tar_read(struct tar_reader *r, void *p, size_t n, char *err)
{
	if (r->remain == 0)
		return 0;
	if (n > r->remain)
		n = (size_t)r->remain;
	int rc = read_full(r, p, n, r->ent.offset, err);
	if (rc)
		return rc;
	r->remain -= n;
	return (ssize_t)n;
}
