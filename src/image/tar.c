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

#define MAX_SPANS (1u << 18)  /* stretches of one sparse file: 4 MiB of map */
#define MAX_MAP_BYTES (MAX_SPANS * 44u) /* a pax 1.0 map in the data: two 20-digit numbers per span */

static ssize_t raw_read(struct tar_reader *r, uint8_t *p, size_t n, char *err)
{
	return zsrc_read(&r->src, p, n, err);
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

static void reader_init(struct tar_reader *r, const char *label)
{
	memset(r, 0, sizeof *r);
	r->label = xstrdup(label ? label : "tar");
	r->ent.path = xstrdup("");
	r->ent.linkpath = xstrdup("");
}

int tar_open(struct tar_reader *r, int fd, const char *label, char *err)
{
	reader_init(r, label);
	return zsrc_open_fd(&r->src, fd, r->label, false, err);
}

int tar_open_stream(struct tar_reader *r, zsrc_read_fn fn, void *ctx, const char *label, bool hash, char *err)
{
	reader_init(r, label);
	return zsrc_open(&r->src, fn, ctx, r->label, hash, err);
}

int tar_diff_id(struct tar_reader *r, char *out, char *err)
{
	return zsrc_diff_id(&r->src, out, err);
}

void tar_close(struct tar_reader *r)
{
	zsrc_close(&r->src);
	free(r->label);
	free(r->ent.path);
	free(r->ent.linkpath);
	free(r->ent.spans);
	free(r->g_path);
	free(r->g_link);
	memset(r, 0, sizeof *r);
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

/* GNU tar's sparse files in pax form: 0.0 lists GNU.sparse.offset/numbytes pairs, 0.1 one
 * GNU.sparse.map, 1.0 puts the map at the start of the data; 0.1 and 1.0 move the real
 * name to GNU.sparse.name (the header names "GNUSparseFile.<pid>/<name>"). */
struct pax_sparse {
	bool any, has_size, has_blocks, want_len;
	uint64_t major, minor, size, blocks;
	char *name;
	struct tar_span *spans;
	size_t n, cap;
};

struct pax {
	char *path, *link;
	bool has_size, has_mtime, has_uid, has_gid;
	uint64_t size, uid, gid;
	int64_t mtime;
	struct pax_sparse sp;
};

static void pax_free(struct pax *p)
{
	free(p->path);
	free(p->link);
	free(p->sp.name);
	free(p->sp.spans);
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

static int span_add(struct pax_sparse *sp, uint64_t off, uint64_t len)
{
	if (sp->n >= MAX_SPANS)
		return -1;
	if (sp->n == sp->cap) {
		sp->cap = sp->cap ? sp->cap * 2 : 16;
		sp->spans = xrealloc(sp->spans, sp->cap * sizeof *sp->spans);
	}
	sp->spans[sp->n++] = (struct tar_span){off, len};
	return 0;
}

/* GNU.sparse.map: "off,len,off,len,..." */
static int sparse_map_parse(struct pax_sparse *sp, const char *v)
{
	uint64_t nums[2];
	int k = 0;
	while (*v) {
		const char *c = strchr(v, ',');
		size_t l = c ? (size_t)(c - v) : strlen(v);
		char num[24];
		if (l == 0 || l >= sizeof num)
			return -1;
		memcpy(num, v, l);
		num[l] = 0;
		if (dec_u64(num, &nums[k]))
			return -1;
		if (++k == 2) {
			if (span_add(sp, nums[0], nums[1]))
				return -1;
			k = 0;
		}
		v += l;
		if (*v == ',' && !*++v)
			return -1;
	}
	return k ? -1 : 0;
}

static int sparse_key(struct pax_sparse *sp, const char *key, char **val)
{
	const char *k = key + strlen("GNU.sparse.");
	const char *v = *val;
	sp->any = true;
	if (!strcmp(k, "size") || !strcmp(k, "realsize")) {
		sp->has_size = true;
		return dec_u64(v, &sp->size);
	}
	if (!strcmp(k, "numblocks")) {
		sp->has_blocks = true;
		return dec_u64(v, &sp->blocks) || sp->blocks > MAX_SPANS;
	}
	if (!strcmp(k, "major"))
		return dec_u64(v, &sp->major);
	if (!strcmp(k, "minor"))
		return dec_u64(v, &sp->minor);
	if (!strcmp(k, "name")) {
		free(sp->name);
		sp->name = *val;
		*val = NULL;
		return 0;
	}
	if (!strcmp(k, "map"))
		return sparse_map_parse(sp, v);
	/* 0.0: each offset is followed by its numbytes */
	uint64_t x;
	if (!strcmp(k, "offset")) {
		if (sp->want_len || dec_u64(v, &x) || span_add(sp, x, 0))
			return -1;
		sp->want_len = true;
		return 0;
	}
	if (!strcmp(k, "numbytes")) {
		if (!sp->want_len || dec_u64(v, &x))
			return -1;
		sp->spans[sp->n - 1].len = x;
		sp->want_len = false;
		return 0;
	}
	return 0;
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
		} else if (!strncmp(key, "GNU.sparse.", 11)) {
			bad = sparse_key(&p->sp, key, &val);
		}
		free(key);
		free(val);
		if (bad)
			return errf(err, E_INVAL, "%s: bad pax value at offset %llu", r->label, (unsigned long long)hoff);
		i += len;
	}
	return 0;
}

/* ---- sparse files ---- */

static int bad_sparse(struct tar_reader *r, uint64_t hoff, const char *why, char *err)
{
	return errf(err, E_INVAL, "%s: sparse file at offset %llu: %s", r->label, (unsigned long long)hoff, why);
}

/* Old GNU 'S' entry: 4 map slots in the header (offset and length, 12 bytes each, from
 * byte 386), a continuation flag at 482 and the real size at 483; each extension block
 * after the header holds 21 more slots and its own flag at 504. */
static int gnu_sparse(struct tar_reader *r, const uint8_t *h, uint64_t hoff, struct pax_sparse *sp, char *err)
{
	uint8_t blk[BLOCK];
	const uint8_t *slots = h + 386;
	int nslots = 4;
	bool more = h[482] != 0;
	if (parse_num(h + 483, 12, &sp->size))
		return bad_sparse(r, hoff, "bad real size", err);
	sp->has_size = true;
	for (uint64_t blocks = 0;; blocks++) {
		for (int i = 0; i < nslots && slots[i * 24]; i++) {
			uint64_t off, len;
			if (parse_num(slots + i * 24, 12, &off) || parse_num(slots + i * 24 + 12, 12, &len) ||
			    span_add(sp, off, len))
				return bad_sparse(r, hoff, "bad or oversized map", err);
		}
		if (!more)
			return 0;
		if (blocks > MAX_SPANS / 21)
			return bad_sparse(r, hoff, "too many map blocks", err);
		int rc = read_full(r, blk, BLOCK, hoff, err);
		if (rc)
			return rc;
		slots = blk;
		nslots = 21;
		more = blk[504] != 0;
	}
}

/* pax 1.0: the map heads the stored data as decimal lines (the count, then offset and
 * length of each stretch), padded to whole blocks; *stored loses those blocks. */
static int sparse_map_data(struct tar_reader *r, struct pax_sparse *sp, uint64_t *stored, uint64_t hoff, char *err)
{
	uint8_t blk[BLOCK];
	size_t pos = BLOCK, nl = 0;
	uint64_t used = 0, count = 0, seen = 0, pair[2];
	char num[24];
	for (;;) {
		if (pos == BLOCK) {
			if (used + BLOCK > *stored || used >= MAX_MAP_BYTES)
				return bad_sparse(r, hoff, "map runs past the stored data", err);
			int rc = read_full(r, blk, BLOCK, hoff, err);
			if (rc)
				return rc;
			used += BLOCK;
			pos = 0;
		}
		uint8_t c = blk[pos++];
		if (c >= '0' && c <= '9' && nl < 20) {
			num[nl++] = (char)c;
			continue;
		}
		uint64_t v;
		num[nl] = 0;
		if (c != '\n' || dec_u64(num, &v))
			return bad_sparse(r, hoff, "malformed map", err);
		nl = 0;
		if (seen == 0) {
			if (v > MAX_SPANS)
				return bad_sparse(r, hoff, "too many stretches", err);
			count = v;
		} else {
			pair[(seen - 1) % 2] = v;
			if ((seen - 1) % 2 && span_add(sp, pair[0], pair[1]))
				return bad_sparse(r, hoff, "too many stretches", err);
		}
		if (++seen == 1 + 2 * count)
			break;
	}
	*stored -= used;
	return 0;
}

/* Checks a map against the real size and the stored bytes: ascending, not overlapping,
 * inside the file, and covering exactly the data stored. */
static int spans_check(struct tar_reader *r, const struct pax_sparse *sp, uint64_t stored, uint64_t hoff, char *err)
{
	uint64_t end = 0, sum = 0;
	for (size_t i = 0; i < sp->n; i++) {
		const struct tar_span *s = &sp->spans[i];
		if (s->off < end || s->len > sp->size || s->off > sp->size - s->len)
			return bad_sparse(r, hoff, "map out of order or beyond the file's size", err);
		end = s->off + s->len;
		sum += s->len;
	}
	if (sum != stored)
		return bad_sparse(r, hoff, "map does not match the stored data", err);
	return 0;
}

/* Turns the sparse fields gathered for a regular entry into its map. */
static int sparse_finish(struct tar_reader *r, struct pax_sparse *sp, bool pax_1, uint64_t *stored, uint64_t hoff, char *err)
{
	int rc;
	if (sp->major > 1 || (sp->major == 1 && sp->minor > 0))
		return errf(err, E_UNSUPP, "%s: sparse file at offset %llu: format %llu.%llu is not supported",
			    r->label, (unsigned long long)hoff, (unsigned long long)sp->major, (unsigned long long)sp->minor);
	if (pax_1 && (rc = sparse_map_data(r, sp, stored, hoff, err)))
		return rc;
	if (!sp->has_size)
		return bad_sparse(r, hoff, "no real size", err);
	if (sp->want_len || (sp->has_blocks && sp->blocks != sp->n))
		return bad_sparse(r, hoff, "map incomplete", err);
	if ((rc = spans_check(r, sp, *stored, hoff, err)))
		return rc;
	if (sp->n == 0 && span_add(sp, sp->size, 0)) /* all hole: still a sparse file */
		return bad_sparse(r, hoff, "map incomplete", err);
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
			 * after one, so its absence at EOF is tolerated. The input is read to its
			 * end so that a gzip CRC, a truncated zstd frame or a source's own digest
			 * check still fails the archive. */
			if (gnu_name || gnu_link || px.path || px.link || px.has_size) {
				rc = errf(err, E_INVAL, "%s: extended header without an entry at offset %llu", r->label,
					  (unsigned long long)hoff);
				goto fail;
			}
			if ((rc = zsrc_drain(&r->src, err)))
				goto fail;
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

		if (type == 'S') {
			if ((rc = gnu_sparse(r, h, hoff, &px.sp, err)))
				goto fail;
			px.sp.any = true;
			type = '0';
		}

		struct tar_entry *e = &r->ent;
		free(e->spans);
		e->spans = NULL;
		e->nspans = 0;
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
		if (px.sp.name) { /* the real name of a sparse file (pax 0.1, 1.0) */
			free(e->path);
			e->path = px.sp.name;
			px.sp.name = NULL;
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
		r->pos = r->span_done = 0;
		r->span = 0;
		if (type == TAR_REG && px.sp.any) {
			bool pax_1 = px.sp.major == 1 && h[156] != 'S';
			if ((rc = sparse_finish(r, &px.sp, pax_1, &r->remain, hoff, err)))
				goto fail;
			e->size = px.sp.size;
			e->spans = px.sp.spans;
			e->nspans = px.sp.n;
			px.sp.spans = NULL;
		}
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

/* Stored data: at most n bytes of the current stretch (the whole entry when not sparse). */
static ssize_t read_stored(struct tar_reader *r, void *p, size_t n, uint64_t *at, char *err)
{
	const struct tar_entry *e = &r->ent;
	uint64_t left = r->remain;
	if (e->spans) {
		while (r->span < e->nspans && r->span_done == e->spans[r->span].len) {
			r->span++;
			r->span_done = 0;
		}
		if (r->span == e->nspans)
			return 0;
		left = e->spans[r->span].len - r->span_done;
		*at = e->spans[r->span].off + r->span_done;
	} else {
		*at = r->pos;
	}
	if (left == 0)
		return 0;
	if (n > left)
		n = (size_t)left;
	int rc = read_full(r, p, n, e->offset, err);
	if (rc)
		return rc;
	r->remain -= n;
	r->span_done += n;
	r->pos = *at + n;
	return (ssize_t)n;
}

ssize_t tar_read_at(struct tar_reader *r, void *p, size_t n, uint64_t *at, char *err)
{
	return read_stored(r, p, n, at, err);
}

ssize_t tar_read(struct tar_reader *r, void *p, size_t n, char *err)
{
	const struct tar_entry *e = &r->ent;
	if (!e->spans || n == 0) {
		uint64_t at;
		return read_stored(r, p, n, &at, err);
	}
	if (r->pos >= e->size)
		return 0;
	while (r->span < e->nspans && r->span_done == e->spans[r->span].len) {
		r->span++;
		r->span_done = 0;
	}
	uint64_t next = r->span < e->nspans ? e->spans[r->span].off : e->size;
	if (r->pos < next) { /* inside a hole */
		uint64_t k = next - r->pos;
		if (k > n)
			k = n;
		memset(p, 0, (size_t)k);
		r->pos += k;
		return (ssize_t)k;
	}
	uint64_t at;
	return read_stored(r, p, n, &at, err);
}
