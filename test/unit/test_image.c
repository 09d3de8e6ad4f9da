/* Images: JSON reader, tar reader, blob store, image import (both formats, built by
 * scripts/build-demo-image.sh), hostile layers, whiteouts, overlay and copy rootfs.
 * Unpacking and mounting need root: those cases fail (not skip) without it. */
#include "unit.h"
#include "codec/json.h"
#include "image/blobstore.h"
#include "image/fsutil.h"
#include "image/image_load.h"
#include "image/rootfs.h"
#include "image/tar.h"
#include "image/unpack.h"
#include "image/zsrc.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

/* ---- helpers ---- */

static char *tmpdirs[32];
static int ntmpdirs;

/* Runs at exit of the test's child, also after a failed CHECK: no mount or dir survives. */
static void cleanup_tmp(void)
{
	for (int i = 0; i < ntmpdirs; i++) {
		char cmd[512];
		snprintf(cmd, sizeof cmd,
			 "grep -o ' %s/[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l; rm -rf '%s'",
			 tmpdirs[i], tmpdirs[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "  cleanup of %s failed\n", tmpdirs[i]);
	}
	ntmpdirs = 0;
}

static char *mktmp(void)
{
	char *d = xstrdup("/tmp/orch-image-test-XXXXXX");
	CHECK(mkdtemp(d));
	CHECK(ntmpdirs < 32);
	if (ntmpdirs == 0)
		atexit(cleanup_tmp);
	tmpdirs[ntmpdirs++] = xstrdup(d);
	return d;
}

static void need_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "  this test needs root (unpack creates devices/xattrs, rootfs mounts overlayfs)\n");
		exit(1);
	}
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static int count_entries(const char *dir)
{
	char *cmd = xasprintf("ls -A '%s' | wc -l", dir);
	FILE *f = popen(cmd, "r");
	int n = -1;
	CHECK(f && fscanf(f, "%d", &n) == 1);
	pclose(f);
	free(cmd);
	return n;
}

/* "path mode uid gid type target size" for every file under dir, sorted. */
static char *listing(const char *dir)
{
	char *cmd = xasprintf("cd '%s' && find . -printf '%%p %%m %%U %%G %%y %%l %%s\\n' | grep -v '^\\. ' | LC_ALL=C sort", dir);
	FILE *f = popen(cmd, "r");
	CHECK(f);
	struct buf b = {0};
	char line[1024];
	while (fgets(line, sizeof line, f))
		buf_append(&b, line, strlen(line));
	buf_append(&b, "", 1);
	pclose(f);
	free(cmd);
	return (char *)b.data;
}

/* A minimal ustar writer for crafting hostile archives. */
static void tw(struct buf *b, const char *name, char type, unsigned mode, const char *link, const void *data,
	       size_t size, unsigned maj, unsigned min)
{
	uint8_t h[512] = {0};
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", mode);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011zo", size);
	snprintf((char *)h + 136, 12, "%011o", 1700000000);
	h[156] = (uint8_t)type;
	if (link)
		snprintf((char *)h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar\0" "00", 8);
	snprintf((char *)h + 329, 8, "%07o", maj);
	snprintf((char *)h + 337, 8, "%07o", min);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	buf_append(b, h, 512);
	if (size) {
		buf_append(b, data, size);
		uint8_t z[512] = {0};
		buf_append(b, z, (512 - size % 512) % 512);
	}
}

static void tw_end(struct buf *b)
{
	uint8_t z[1024] = {0};
	buf_append(b, z, sizeof z);
}

static void tw_file(struct buf *b, const char *name, const char *content)
{
	tw(b, name, '0', 0644, NULL, content, strlen(content), 0, 0);
}

static void gz_file(const char *path, const void *p, size_t n)
{
	gzFile g = gzopen(path, "wb");
	CHECK(g);
	CHECK(gzwrite(g, p, (unsigned)n) == (int)n);
	CHECK(gzclose(g) == Z_OK);
}

/* ---- JSON ---- */

UNIT(image_json_parse)
{
	char err[ERR_LEN];
	struct json *j;
	const char *doc = " {\"a\": [1, 2.5, -3e2, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"a\": {\"k\": \"v\"}} ";
	CHECK_EQ_INT(json_parse(doc, strlen(doc), &j, err), 0);
	CHECK_STR(json_get_str(json_get(j, "a"), "k"), "v"); /* last duplicate wins */
	CHECK_STR(json_get_str(j, "s"), "x\xc3\xa9\xf0\x9f\x98\x80\n");
	json_free(j);
	const char *arr = "[18446744073709551615, 7, 1.5]";
	CHECK_EQ_INT(json_parse(arr, strlen(arr), &j, err), 0);
	uint64_t v;
	CHECK_EQ_INT(json_u64(json_at(j, 1), &v), 0);
	CHECK_EQ_INT(v, 7);
	CHECK_EQ_INT(json_u64(json_at(j, 2), &v), -1);
	CHECK(json_at(j, 3) == NULL);
	json_free(j);
	const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "\"\\u0000\"", "\"\\ud800\"", "01", "[1] x", "\"a\nb\"",
			     "tru", "{\"a\":1,}", "-", "1.", "\"\\x\""};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK(json_parse(bad[i], strlen(bad[i]), &j, err) == E_INVAL);
		CHECK(j == NULL);
		CHECK(strstr(err, "json: "));
	}
	char deep[200];
	memset(deep, '[', sizeof deep);
	CHECK(json_parse(deep, sizeof deep, &j, err) == E_INVAL);
	CHECK(strstr(err, "nesting too deep"));
}

/* ---- tar reader ---- */

static int tar_list(const char *path, struct buf *out, char *err)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	struct tar_reader r;
	int rc = tar_open(&r, fd, "test", err);
	struct tar_entry *e;
	int k = 0;
	while (!rc && (k = tar_next(&r, &e, err)) > 0) {
		buf_printf(out, "%c %s -> %s %llu %o|", e->type, e->path, e->linkpath, (unsigned long long)e->size, e->mode);
		if (e->type == TAR_REG && e->size < 100) {
			char data[100];
			ssize_t n = tar_read(&r, data, sizeof data, err);
			if (n < 0) {
				rc = (int)n;
				break;
			}
			CHECK(n == (ssize_t)e->size);
			buf_append(out, data, (size_t)n);
			buf_append(out, "|", 1);
		}
	}
	if (!rc)
		rc = k;
	tar_close(&r);
	close(fd);
	buf_append(out, "", 1);
	return rc;
}

UNIT(image_tar_gnu_pax_gzip)
{
	char *d = mktmp(), err[ERR_LEN];
	char longname[300];
	memset(longname, 'n', 250);
	longname[250] = 0;
	CHECK_EQ_INT(sh("cd %s && mkdir -p src/sub && printf hello > src/sub/%s && ln -s sub/%s src/lnk && "
			"printf x > src/small && ln src/small src/hard && chmod 4755 src/small", d, longname, longname), 0);
	const char *fmts[] = {"gnu", "pax", "ustar"};
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(sh("cd %s/src && tar --format=%s --sort=name -cf ../t.tar . 2>/dev/null; true", d, fmts[i]), 0);
		if (i == 2) /* ustar cannot hold a 250-byte name: tar must have failed or skipped it */
			continue;
		CHECK_EQ_INT(sh("cd %s && gzip -kf t.tar", d), 0);
		struct buf a = {0}, b = {0};
		char *p = xasprintf("%s/t.tar", d), *pg = xasprintf("%s/t.tar.gz", d);
		CHECK_EQ_INT(tar_list(p, &a, err), 0);
		CHECK_EQ_INT(tar_list(pg, &b, err), 0);
		CHECK_STR((char *)a.data, (char *)b.data);
		char *want = xasprintf("0 ./sub/%s ->  5 644|hello|", longname);
		CHECK(strstr((char *)a.data, want));
		free(want);
		want = xasprintf("2 ./lnk -> sub/%s 0", longname);
		CHECK(strstr((char *)a.data, want));
		free(want);
		CHECK(strstr((char *)a.data, "0 ./hard ->  1 4755|x|"));
		CHECK(strstr((char *)a.data, "1 ./small -> ./hard 0"));
		free(p);
		free(pg);
		buf_free(&a);
		buf_free(&b);
	}
	sh("rm -rf %s", d);
	free(d);
}

UNIT(image_tar_corrupt)
{
	char *d = mktmp(), err[ERR_LEN];
	struct buf t = {0}, out = {0};
	tw_file(&t, "a", "aaaa");
	tw_file(&t, "b", "bbbbbbbbbbbbbbbbbbbbbbbbbbb");
	tw_end(&t);
	char *p = xasprintf("%s/x.tar", d);
	/* truncated inside b's data */
	write_file(p, t.data, 512 + 512 + 512 + 10);
	CHECK(tar_list(p, &out, err) == E_INVAL);
	CHECK_STR(err, "test: truncated tar entry at offset 1024");
	/* a flipped header byte fails the checksum */
	t.data[1024 + 3] ^= 1;
	write_file(p, t.data, t.len);
	out.len = 0;
	CHECK(tar_list(p, &out, err) == E_INVAL);
	CHECK(strstr(err, "bad tar header checksum at offset 1024"));
	t.data[1024 + 3] ^= 1;
	/* no end-of-archive marker */
	write_file(p, t.data, 2048);
	out.len = 0;
	CHECK(tar_list(p, &out, err) == E_INVAL);
	CHECK(strstr(err, "truncated tar entry at offset 2048"));
	/* gzip: corrupt deflate data, then a truncated stream */
	gz_file(p, t.data, t.len);
	struct stat st;
	CHECK(stat(p, &st) == 0);
	int fd = open(p, O_RDWR);
	uint8_t buf[4096];
	ssize_t n = read(fd, buf, sizeof buf);
	CHECK(n == st.st_size);
	struct buf g = {0};
	buf_append(&g, buf, (size_t)n);
	close(fd);
	for (size_t i = 12; i < g.len - 8; i++)
		g.data[i] ^= 0x55;
	write_file(p, g.data, g.len);
	out.len = 0;
	CHECK(tar_list(p, &out, err) == E_INVAL);
	CHECK(strstr(err, "gzip"));
	gz_file(p, t.data, t.len);
	CHECK(truncate(p, st.st_size - 20) == 0);
	out.len = 0;
	CHECK(tar_list(p, &out, err) == E_INVAL);
	CHECK(strstr(err, "truncated"));
	buf_free(&t);
	buf_free(&g);
	buf_free(&out);
	free(p);
	sh("rm -rf %s", d);
	free(d);
}

/* ---- blob store ---- */

UNIT(image_blob_store)
{
	char *d = mktmp(), err[ERR_LEN], dig[DIGEST_LEN];
	struct blobstore bs;
	CHECK_EQ_INT(blob_init(&bs, d, err), 0);
	const char *hello_d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
	CHECK_EQ_INT(blob_put_mem(&bs, hello_d, "hello", 5, dig, err), 0);
	CHECK_STR(dig, hello_d);
	CHECK(blob_has(&bs, hello_d));
	char *p = blob_path(&bs, hello_d);
	CHECK(strstr(p, "/blobs/sha256/2cf24dba"));
	free(p);
	/* wrong content for the expected digest: rejected, nothing stored, no temp left */
	const char *other = "sha256:486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7";
	CHECK(blob_put_mem(&bs, other, "hellO", 5, dig, err) == E_INVAL);
	CHECK(strstr(err, "tampered"));
	CHECK(!blob_has(&bs, other));
	CHECK_EQ_INT(count_entries(bs.dir), 1);
	/* from a file, digest unknown in advance */
	char *src = xasprintf("%s/src", d);
	write_file(src, "world", 5);
	int fd = open(src, O_RDONLY);
	CHECK_EQ_INT(blob_put_file(&bs, NULL, fd, -1, dig, err), 0);
	close(fd);
	CHECK_STR(dig, "sha256:486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7");
	fd = blob_open(&bs, dig, err);
	CHECK(fd >= 0);
	char b[8] = {0};
	CHECK(read(fd, b, 8) == 5 && !strcmp(b, "world"));
	close(fd);
	CHECK(blob_open(&bs, "sha256:00", err) == E_INVAL);
	CHECK(blob_open(&bs, "sha256:0000000000000000000000000000000000000000000000000000000000000000", err) == E_NOTFOUND);
	CHECK(!digest_valid("sha512:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"));
	CHECK(!digest_valid("sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"));
	free(src);
	blob_fini(&bs);
	sh("rm -rf %s", d);
	free(d);
}

/* ---- image import ---- */

static char *build_demo(void)
{
	char *d = mktmp();
	CHECK_EQ_INT(sh("scripts/build-demo-image.sh %s/img >/dev/null", d), 0);
	return d;
}

static void check_demo(const struct image_info *im)
{
	CHECK_STR(im->name, "docker.io/library/demo:latest");
	CHECK(im->names && !strcmp(im->names[0], im->name) && !im->names[1]);
	CHECK_EQ_INT(im->nlayers, 2);
	CHECK(digest_valid(im->digest) && digest_valid(im->config_digest));
	CHECK(im->entrypoint == NULL);
	CHECK(im->cmd && !strcmp(im->cmd[0], "/bin/httpd") && !strcmp(im->cmd[5], "/www") && !im->cmd[6]);
	CHECK(im->env && !strncmp(im->env[0], "PATH=", 5));
	CHECK_STR(im->workdir, "/");
	CHECK(im->user == NULL);
	CHECK(im->size > 500000);
}

UNIT(image_load_both_formats)
{
	need_root();
	char *d = build_demo(), err[ERR_LEN];
	char *store = xasprintf("%s/store", d);
	CHECK_EQ_INT(sh("gzip -c %s/img/demo-docker.tar > %s/img/docker.tar.gz", d, d), 0);
	const char *srcs[] = {"img/demo-docker.tar", "img/demo-oci", "img/demo-oci.tar", "img/docker.tar.gz"};
	struct image_info im[4];
	char *lists[4][2];
	for (int i = 0; i < 4; i++) {
		char *p = xasprintf("%s/%s", d, srcs[i]);
		int rc = image_load(store, p, &im[i], err);
		if (rc)
			fprintf(stderr, "  %s: %s\n", srcs[i], err);
		CHECK_EQ_INT(rc, 0);
		check_demo(&im[i]);
		free(p);
		struct blobstore bs;
		CHECK_EQ_INT(blob_init(&bs, store, err), 0);
		for (size_t l = 0; l < 2; l++) {
			CHECK(blob_has(&bs, im[i].layers[l]));
			char *bp = blob_path(&bs, im[i].layers[l]);
			char *ld = layer_dir(d, im[i].layers[l]);
			CHECK_EQ_INT(layer_unpack(bp, ld, err), 0);
			CHECK_EQ_INT(layer_unpack(bp, ld, err), 0); /* present: skipped */
			lists[i][l] = listing(ld);
			free(bp);
			free(ld);
		}
		blob_fini(&bs);
	}
	/* same config either way; docker layers are plain tars, OCI ones gzip'd, same content */
	CHECK_STR(im[0].config_digest, im[1].config_digest);
	CHECK_STR(im[1].digest, im[2].digest);
	CHECK(strcmp(im[0].layers[0], im[1].layers[0]));
	CHECK_STR(im[1].layers[0], im[2].layers[0]);
	CHECK_STR(im[0].digest, im[3].digest);
	for (int l = 0; l < 2; l++) {
		CHECK_STR(lists[0][l], lists[1][l]);
		CHECK_STR(lists[0][l], lists[2][l]);
		CHECK_STR(lists[0][l], lists[3][l]);
	}
	CHECK(strstr(lists[0][0], "./bin/busybox 755 0 0 f  "));
	CHECK(strstr(lists[0][0], "./bin/sh 777 0 0 l busybox"));
	CHECK(strstr(lists[0][0], "./tmp 1777 0 0 d"));
	CHECK(strstr(lists[0][1], "./www/cgi-bin/id 755 0 0 f"));
	/* the image record survives msgpack */
	struct mpw w;
	mpw_init(&w);
	image_info_encode(&im[1], &w);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	struct image_info back;
	CHECK_EQ_INT(image_info_decode(r.root, &back, err), 0);
	CHECK_STR(back.name, im[1].name);
	CHECK_STR(back.digest, im[1].digest);
	CHECK_STR(back.config_digest, im[1].config_digest);
	CHECK_EQ_INT(back.size, im[1].size);
	CHECK_EQ_INT(back.nlayers, 2);
	CHECK_STR(back.layers[1], im[1].layers[1]);
	CHECK_STR(back.cmd[3], "80");
	CHECK(back.entrypoint == NULL && back.user == NULL);
	image_info_free(&back);
	mpr_free(&r);
	mpw_free(&w);
	for (int i = 0; i < 4; i++) {
		image_info_free(&im[i]);
		free(lists[i][0]);
		free(lists[i][1]);
	}
	free(store);
	sh("rm -rf %s", d);
	free(d);
}

UNIT(image_info_decode_rejects_garbage)
{
	char err[ERR_LEN];
	struct image_info im;
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "v", 1);
	mpw_kstr(&w, "digest", "sha256:nothex");
	mpw_kstr(&w, "name", "x");
	mpw_map_end(&w);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	CHECK(image_info_decode(r.root, &im, err) == E_INVAL);
	CHECK(im.name == NULL);
	mpr_free(&r);
	mpw_free(&w);
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "v", 9);
	mpw_map_end(&w);
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	CHECK(image_info_decode(r.root, &im, err) == E_UNSUPP);
	mpr_free(&r);
	mpw_free(&w);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	uint8_t c;
	CHECK(pread(fd, &c, 1, off) == 1);
	c ^= 0x01;
	CHECK(pwrite(fd, &c, 1, off) == 1);
	close(fd);
}

UNIT(image_load_tampered)
{
	char *d = build_demo(), err[ERR_LEN];
	struct image_info im;
	/* OCI directory: one byte of the base layer blob flipped */
	char *blobs = xasprintf("%s/img/demo-oci/blobs/sha256", d);
	char *store = xasprintf("%s/store", d);
	CHECK_EQ_INT(sh("cd %s && ls -S | head -1 > %s/big", blobs, d), 0);
	char *bigf = xasprintf("%s/big", d), name[80] = {0};
	FILE *f = fopen(bigf, "r");
	CHECK(f && fgets(name, sizeof name, f));
	fclose(f);
	name[strcspn(name, "\n")] = 0;
	char *victim = xasprintf("%s/%s", blobs, name);
	flip_byte(victim, 1000);
	char *p = xasprintf("%s/img/demo-oci", d);
	CHECK(image_load(store, p, &im, err) == E_INVAL);
	CHECK(strstr(err, "tampered"));
	CHECK(im.name == NULL && im.layers == NULL);
	char *stored = xasprintf("%s/blobs/sha256/%s", store, name);
	CHECK(!exists(stored));
	free(p);
	/* docker-archive: a byte in the middle of the busybox layer's data */
	p = xasprintf("%s/img/demo-docker.tar", d);
	flip_byte(p, 1024 * 1024);
	char *store2 = xasprintf("%s/store2", d);
	CHECK(image_load(store2, p, &im, err) == E_INVAL);
	CHECK(strstr(err, "tampered"));
	/* only verified blobs may remain: the config (small) but no layer */
	char *sd = xasprintf("%s/blobs/sha256", store2);
	CHECK(count_entries(sd) <= 1);
	free(p);
	/* not an image at all */
	p = xasprintf("%s/big", d);
	CHECK(image_load(store2, p, &im, err) < 0);
	free(sd);
	free(p);
	free(stored);
	free(victim);
	free(bigf);
	free(blobs);
	free(store);
	free(store2);
	sh("rm -rf %s", d);
	free(d);
}

/* ---- hostile layers ---- */

struct evil {
	const char *what;
	const char *expect; /* substring of the error */
};

static void craft(struct buf *t, int which, const char *outside)
{
	switch (which) {
	case 0:
		tw_file(t, "ok", "fine");
		tw_file(t, "../evil", "pwned");
		break;
	case 1:
		tw_file(t, "/abs/evil", "pwned");
		break;
	case 2:
		tw(t, "link", '2', 0777, outside, NULL, 0, 0, 0);
		tw_file(t, "link/x", "pwned");
		break;
	case 3:
		tw(t, "dir", '5', 0755, NULL, NULL, 0, 0, 0);
		tw(t, "dir/link", '2', 0777, "..", NULL, 0, 0, 0);
		tw(t, "dir/link/x", '2', 0777, outside, NULL, 0, 0, 0);
		break;
	case 4:
		tw(t, "passwd", '1', 0644, "/etc/passwd", NULL, 0, 0, 0);
		break;
	case 5:
		tw(t, "passwd", '1', 0644, "../../etc/passwd", NULL, 0, 0, 0);
		break;
	case 6:
		tw(t, "dev/mem", '3', 0600, NULL, NULL, 0, 1, 1);
		break;
	case 7:
		tw(t, "dev/sda", '4', 0600, NULL, NULL, 0, 8, 0);
		break;
	case 8: /* a.. is a fine name, but a/../.. is not */
		tw_file(t, "a..", "ok");
		tw_file(t, "x/./../../evil", "pwned");
		break;
	case 9: /* a hardlink whose target is reached through a symlink */
		tw(t, "link", '2', 0777, "/etc", NULL, 0, 0, 0);
		tw(t, "pw", '1', 0644, "link/passwd", NULL, 0, 0, 0);
		break;
	case 10: /* a whiteout through a symlink would delete outside */
		tw(t, "link", '2', 0777, outside, NULL, 0, 0, 0);
		tw(t, "link/.wh.victim", '0', 0644, NULL, NULL, 0, 0, 0);
		break;
	case 11:
		tw(t, "d/.wh..", '0', 0644, NULL, NULL, 0, 0, 0);
		break;
	}
	tw_end(t);
}

UNIT(image_unpack_rejects_hostile)
{
	need_root();
	const struct evil cases[] = {
		{"dotdot", "\"../evil\" has a \"..\" component: rejected"},
		{"absolute", "\"/abs/evil\" is an absolute path: rejected"},
		{"symlink", "\"link/x\" would be written through the symlink \"link\": rejected"},
		{"symlink2", "would be written through the symlink"},
		{"hardlink abs", "is an absolute path: rejected"},
		{"hardlink up", "has a \"..\" component: rejected"},
		{"chardev", "device node \"dev/mem\" (char 1:1) in a layer: rejected"},
		{"blockdev", "device node \"dev/sda\" (block 8:0) in a layer: rejected"},
		{"dotdot2", "has a \"..\" component"},
		{"hardlink via symlink", "through the symlink \"link\": rejected"},
		{"whiteout via symlink", "\"link/.wh.victim\" would be written through the symlink"},
		{"bad whiteout", "invalid whiteout \"d/.wh..\""},
	};
	for (int i = 0; i < (int)(sizeof cases / sizeof *cases); i++) {
		char *d = mktmp(), err[ERR_LEN] = "";
		char *outside = xasprintf("%s/outside", d);
		CHECK(mkdir(outside, 0755) == 0);
		char *victim = xasprintf("%s/victim", outside);
		write_file(victim, "keep", 4);
		struct buf t = {0};
		craft(&t, i, outside);
		char *blob = xasprintf("%s/aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999", d);
		write_file(blob, t.data, t.len);
		char *layers = xasprintf("%s/layers/sha256", d), *dest = xasprintf("%s/L", layers);
		int rc = layer_unpack(blob, dest, err);
		if (rc == 0 || !strstr(err, cases[i].expect))
			fprintf(stderr, "  case %s: rc %d: %s\n", cases[i].what, rc, err);
		CHECK(rc < 0);
		CHECK(strstr(err, cases[i].expect));
		CHECK(!strncmp(err, "layer sha256:aaaabbbbcccc: ", 27));
		CHECK(!exists(dest));
		CHECK_EQ_INT(count_entries(layers), 0); /* no temp dir left behind */
		CHECK_EQ_INT(count_entries(outside), 1);
		CHECK(exists(victim));
		free(victim);
		char *ev = xasprintf("%s/layers/evil", d);
		CHECK(!exists(ev));
		free(ev);
		buf_free(&t);
		free(blob);
		free(layers);
		free(dest);
		free(outside);
		sh("rm -rf %s", d);
		free(d);
	}
}

UNIT(image_unpack_rejects_corrupt)
{
	need_root();
	char *d = mktmp(), err[ERR_LEN];
	struct buf t = {0};
	tw(&t, "dir", '5', 0755, NULL, NULL, 0, 0, 0);
	char big[3000];
	memset(big, 'z', sizeof big);
	big[sizeof big - 1] = 0;
	tw_file(&t, "dir/big", big);
	tw_file(&t, "dir/small", "s");
	tw_end(&t);
	char *blob = xasprintf("%s/1111222233334444555566667777888899990000aaaabbbbccccddddeeeeffff", d);
	char *layers = xasprintf("%s/layers", d), *dest = xasprintf("%s/layers/L", d);
	write_file(blob, t.data, 2048);
	CHECK(layer_unpack(blob, dest, err) == E_INVAL);
	CHECK_STR(err, "layer sha256:111122223333: truncated tar entry at offset 512");
	CHECK(!exists(dest));
	CHECK_EQ_INT(count_entries(layers), 0);
	/* gzip with corrupt deflate data */
	gz_file(blob, t.data, t.len);
	flip_byte(blob, 40);
	flip_byte(blob, 60);
	int rc = layer_unpack(blob, dest, err);
	CHECK(rc < 0);
	CHECK(strstr(err, "layer sha256:111122223333: "));
	CHECK(strstr(err, "gzip") || strstr(err, "checksum"));
	CHECK(!exists(dest));
	CHECK_EQ_INT(count_entries(layers), 0);
	/* and the intact one unpacks */
	gz_file(blob, t.data, t.len);
	CHECK_EQ_INT(layer_unpack(blob, dest, err), 0);
	char *small = xasprintf("%s/dir/small", dest);
	CHECK(exists(small));
	free(small);
	buf_free(&t);
	free(blob);
	free(layers);
	free(dest);
	sh("rm -rf %s", d);
	free(d);
}

/* ---- whiteouts and rootfs ---- */

static void make_layers(const char *d, char **l1, char **l2)
{
	char err[ERR_LEN];
	struct buf a = {0}, b = {0};
	tw(&a, "./", '5', 0755, NULL, NULL, 0, 0, 0);
	tw(&a, "d", '5', 0755, NULL, NULL, 0, 0, 0);
	tw_file(&a, "d/a", "a");
	tw_file(&a, "d/b", "b");
	tw_file(&a, "f", "f");
	tw(&a, "o", '5', 0750, NULL, NULL, 0, 0, 0);
	tw_file(&a, "o/x", "x");
	tw(&a, "o/sub", '5', 0755, NULL, NULL, 0, 0, 0);
	tw_file(&a, "o/sub/deep", "deep");
	tw(&a, "s", '2', 0777, "d/b", NULL, 0, 0, 0);
	tw(&a, "h", '1', 0644, "d/b", NULL, 0, 0, 0);
	tw(&a, "p", '6', 0600, NULL, NULL, 0, 0, 0);
	tw_end(&a);
	tw(&b, "d/.wh.a", '0', 0644, NULL, NULL, 0, 0, 0);
	tw(&b, ".wh.f", '0', 0644, NULL, NULL, 0, 0, 0);
	tw(&b, "o/.wh..wh..opq", '0', 0644, NULL, NULL, 0, 0, 0);
	tw_file(&b, "o/y", "y");
	tw_file(&b, "new", "new");
	tw_end(&b);
	char *ba = xasprintf("%s/blob-a", d), *bb = xasprintf("%s/blob-b", d);
	write_file(ba, a.data, a.len);
	gz_file(bb, b.data, b.len);
	*l1 = xasprintf("%s/layers/sha256/a", d);
	*l2 = xasprintf("%s/layers/sha256/b", d);
	CHECK_EQ_INT(layer_unpack(ba, *l1, err), 0);
	CHECK_EQ_INT(layer_unpack(bb, *l2, err), 0);
	/* the unpacked upper layer carries overlay-style whiteouts */
	struct stat st;
	char *wh = xasprintf("%s/d/a", *l2), *op = xasprintf("%s/o", *l2);
	CHECK(lstat(wh, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	char v[4] = {0};
	CHECK(getxattr(op, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y');
	free(wh);
	free(op);
	free(ba);
	free(bb);
	buf_free(&a);
	buf_free(&b);
}

static void check_merged(const char *root)
{
	char *l = listing(root);
	const char *want =
		"./d 755 0 0 d  4096\n"
		"./d/b 644 0 0 f  1\n"
		"./h 644 0 0 f  1\n"
		"./new 644 0 0 f  3\n"
		"./o 755 0 0 d  4096\n" /* implicit dir of the upper layer wins */
		"./o/y 644 0 0 f  1\n"
		"./p 600 0 0 p  0\n"
		"./s 777 0 0 l d/b 3\n";
	if (strcmp(l, want))
		fprintf(stderr, "  merged tree of %s:\n%s", root, l);
	CHECK_STR(l, want);
	free(l);
}

static void rootfs_case(const char *mode)
{
	need_root();
	setenv("ORCH_ROOTFS", mode, 1);
	char *d = mktmp(), err[ERR_LEN], root[ROOTFS_PATH_LEN];
	char *l1, *l2;
	make_layers(d, &l1, &l2);
	const char *lowers[] = {l1, l2};
	char *task = xasprintf("%s/tasks/t1", d);
	int rc = rootfs_mount(lowers, 2, task, root, err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	CHECK_EQ_INT(rc, 0);
	char *expect = xasprintf("%s/rootfs", task);
	CHECK_STR(root, expect);
	check_merged(root);
	/* writes land in the upper dir (overlay) and never in a layer */
	char *nf = xasprintf("%s/written", root);
	write_file(nf, "w", 1);
	char *in_l2 = xasprintf("%s/written", l2);
	CHECK(!exists(in_l2));
	char *db = xasprintf("%s/d/b", root);
	CHECK(unlink(db) == 0);
	char *l1db = xasprintf("%s/d/b", l1);
	CHECK(exists(l1db));
	CHECK_EQ_INT(rootfs_unmount(task, err), 0);
	CHECK(!exists(expect));
	CHECK_EQ_INT(count_entries(task), 0);
	CHECK(exists(l1db)); /* layers untouched */
	free(nf);
	free(in_l2);
	free(db);
	free(l1db);
	free(expect);
	free(task);
	free(l1);
	free(l2);
	sh("rm -rf %s", d);
	free(d);
}

UNIT(image_rootfs_overlay)
{
	rootfs_case("overlay");
}

UNIT(image_rootfs_copy)
{
	rootfs_case("copy");
}

/* More layers than fit in one page of mount options: the short-path mount. */
UNIT(image_rootfs_many_layers)
{
	need_root();
	setenv("ORCH_ROOTFS", "overlay", 1);
	char *d = mktmp(), err[ERR_LEN], root[ROOTFS_PATH_LEN];
	enum { N = 60 };
	char *dirs[N];
	const char *lowers[N];
	for (int i = 0; i < N; i++) {
		dirs[i] = xasprintf("%s/layers/sha256/%064d", d, i);
		CHECK_EQ_INT(fs_mkdir_p(dirs[i], 0755, err), 0);
		char *f = xasprintf("%s/file%d", dirs[i], i);
		write_file(f, "x", 1);
		free(f);
		char *top = xasprintf("%s/top", dirs[i]);
		write_file(top, dirs[i] + strlen(dirs[i]) - 2, 2);
		free(top);
		lowers[i] = dirs[i];
	}
	char *task = xasprintf("%s/task", d);
	int rc = rootfs_mount(lowers, N, task, root, err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	CHECK_EQ_INT(rc, 0);
	char *f0 = xasprintf("%s/file0", root), *f59 = xasprintf("%s/file59", root), *top = xasprintf("%s/top", root);
	CHECK(exists(f0) && exists(f59));
	char b[3] = {0};
	int fd = open(top, O_RDONLY);
	CHECK(fd >= 0 && read(fd, b, 2) == 2);
	close(fd);
	CHECK_STR(b, "59"); /* the last layer is on top */
	CHECK_EQ_INT(rootfs_unmount(task, err), 0);
	CHECK_EQ_INT(count_entries(task), 0);
	for (int i = 0; i < N; i++)
		free(dirs[i]);
	free(f0);
	free(f59);
	free(top);
	free(task);
	sh("rm -rf %s", d);
	free(d);
}

/* Random corruption of a layer (plain and gzip'd) and of a manifest: errors, never a
 * crash, and never a half-unpacked layer left behind. */
/* A damaged layer either unpacks or is refused with a message, leaving nothing behind. */
static void unpack_or_refuse(const char *blob, const char *dest, const char *layers)
{
	char err[ERR_LEN] = "";
	int rc = layer_unpack(blob, dest, err);
	CHECK(rc <= 0);
	CHECK(rc == 0 || strlen(err) > 0);
	if (rc == 0)
		fs_rm_rf(dest);
	CHECK_EQ_INT(count_entries(layers), 0);
}

UNIT(image_fuzz_never_crashes)
{
	need_root();
	char *d = mktmp(), err[ERR_LEN];
	struct buf t = {0};
	tw(&t, "dir", '5', 0755, NULL, NULL, 0, 0, 0);
	tw_file(&t, "dir/f", "content");
	tw(&t, "dir/l", '2', 0777, "f", NULL, 0, 0, 0);
	tw(&t, "dir/h", '1', 0644, "dir/f", NULL, 0, 0, 0);
	tw(&t, "dir/.wh.gone", '0', 0644, NULL, NULL, 0, 0, 0);
	const char *pax = "28 path=dir/a-long-pax-name\n";
	tw(&t, "PaxHeader", 'x', 0644, NULL, pax, strlen(pax), 0, 0);
	tw_file(&t, "ignored", "pax named");
	tw_end(&t);
	char *blob = xasprintf("%s/blob", d), *layers = xasprintf("%s/layers", d);
	char *dest = xasprintf("%s/layers/L", d);
	write_file(blob, t.data, t.len);
	CHECK_EQ_INT(layer_unpack(blob, dest, err), 0);
	char *paxf = xasprintf("%s/dir/a-long-pax-name", dest);
	CHECK(exists(paxf));
	free(paxf);
	fs_rm_rf(dest);
	srand(42);
	uint8_t *m = xmalloc(t.len);
	for (int it = 0; it < 300; it++) {
		memcpy(m, t.data, t.len);
		int flips = 1 + rand() % 4;
		for (int k = 0; k < flips; k++)
			m[rand() % t.len] = (uint8_t)rand();
		size_t len = it % 5 == 0 ? (size_t)rand() % t.len : t.len;
		if (it % 2)
			write_file(blob, m, len);
		else
			gz_file(blob, m, len);
		unpack_or_refuse(blob, dest, layers);
	}
	free(m);
	const char *man = "[{\"Config\":\"c.json\",\"RepoTags\":[\"a:b\"],\"Layers\":[\"l/layer.tar\",\"\\u00e9\"]}]";
	size_t ml = strlen(man);
	char *mm = xmalloc(ml);
	for (int it = 0; it < 2000; it++) {
		memcpy(mm, man, ml);
		mm[rand() % ml] = (char)rand();
		struct json *j = NULL;
		int rc = json_parse(mm, (size_t)rand() % (ml + 1), &j, err);
		CHECK(rc == 0 ? j != NULL : j == NULL);
		json_free(j);
	}
	free(mm);
	buf_free(&t);
	free(blob);
	free(layers);
	free(dest);
	free(d);
}

/* ---- compressed streams: gzip, zstd, plain ---- */

/* A source that hands over its bytes a few at a time and can fail at its end, as a
 * network body checked against its digest does. */
struct dribble {
	const uint8_t *p;
	size_t len, pos, step;
	bool fail_at_end;
};

static ssize_t dribble_read(void *ctx, void *p, size_t n, char *err)
{
	struct dribble *d = ctx;
	if (d->pos == d->len)
		return d->fail_at_end ? errf(err, E_INVAL, "source: digest mismatch") : 0;
	size_t k = d->len - d->pos;
	if (k > d->step)
		k = d->step;
	if (k > n)
		k = n;
	memcpy(p, d->p + d->pos, k);
	d->pos += k;
	return (ssize_t)k;
}

static struct buf slurp(const char *path)
{
	struct buf b = {0};
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	for (;;) {
		buf_reserve(&b, 65536);
		ssize_t n = read(fd, b.data + b.len, 65536);
		CHECK(n >= 0);
		if (n == 0)
			break;
		b.len += (size_t)n;
	}
	close(fd);
	return b;
}

/* Builds <d>/src (a small tree), its tar, and the tar as .gz, .zst and a two-frame .zst. */
static void make_compressed(const char *d)
{
	CHECK_EQ_INT(sh("cd %s && mkdir -p src/etc src/bin && printf 'hello zstd' > src/etc/motd && "
			"head -c 300000 /dev/urandom > src/bin/blob && ln -s ../etc/motd src/bin/lnk && "
			"tar --format=pax --sort=name -C src -cf t.tar . && gzip -kf t.tar && zstd -q -f -19 t.tar -o t.tar.zst && "
			"head -c 100000 t.tar | zstd -q -c > two.zst && tail -c +100001 t.tar | zstd -q -c >> two.zst", d), 0);
}

UNIT(image_zsrc_gzip_zstd_plain)
{
	char *d = mktmp(), err[ERR_LEN];
	make_compressed(d);
	char *plain = xasprintf("%s/t.tar", d);
	struct buf want = slurp(plain);
	char want_id[DIGEST_LEN];
	sha256_digest(want.data, want.len, want_id);
	const char *names[] = {"t.tar", "t.tar.gz", "t.tar.zst", "two.zst"};
	const enum zsrc_kind kinds[] = {ZSRC_PLAIN, ZSRC_GZIP, ZSRC_ZSTD, ZSRC_ZSTD};
	for (int i = 0; i < 4; i++) {
		char *p = xasprintf("%s/%s", d, names[i]);
		struct buf raw = slurp(p);
		/* one byte at a time, then in large reads: the same decoded bytes */
		for (size_t step = 1; step <= 1 << 20; step <<= 20) {
			struct dribble src = {raw.data, raw.len, 0, step, false};
			struct zsrc z;
			CHECK_EQ_INT(zsrc_open(&z, dribble_read, &src, "t", true, err), 0);
			CHECK_EQ_INT(z.kind, kinds[i]);
			struct buf got = {0};
			ssize_t n;
			for (;;) {
				buf_reserve(&got, 4096);
				n = zsrc_read(&z, got.data + got.len, 4096, err);
				if (n <= 0)
					break;
				got.len += (size_t)n;
			}
			if (n < 0)
				fprintf(stderr, "  %s: %s\n", names[i], err);
			CHECK_EQ_INT(n, 0);
			CHECK(got.len == want.len && !memcmp(got.data, want.data, want.len));
			char id[DIGEST_LEN];
			CHECK_EQ_INT(zsrc_diff_id(&z, id, err), 0);
			CHECK_STR(id, want_id);
			zsrc_close(&z);
			buf_free(&got);
		}
		/* the blob store's diff_id agrees (it is what image_load checks) */
		struct blobstore bs;
		char *store = xasprintf("%s/store", d), dig[DIGEST_LEN], id[DIGEST_LEN];
		CHECK_EQ_INT(blob_init(&bs, store, err), 0);
		CHECK_EQ_INT(blob_put_mem(&bs, NULL, raw.data, raw.len, dig, err), 0);
		CHECK_EQ_INT(blob_diff_id(&bs, dig, id, err), 0);
		CHECK_STR(id, want_id);
		blob_fini(&bs);
		/* the tar reader lists the same entries whatever the compression */
		struct buf l = {0};
		CHECK_EQ_INT(tar_list(p, &l, err), 0);
		CHECK(strstr((char *)l.data, "0 ./etc/motd ->  10 644|hello zstd|"));
		CHECK(strstr((char *)l.data, "2 ./bin/lnk -> ../etc/motd 0"));
		buf_free(&l);
		free(store);
		buf_free(&raw);
		free(p);
	}
	buf_free(&want);
	free(plain);
}

UNIT(image_zsrc_zstd_corrupt)
{
	char *d = mktmp(), err[ERR_LEN];
	make_compressed(d);
	char *p = xasprintf("%s/t.tar.zst", d);
	struct buf raw = slurp(p);
	struct buf l = {0};
	/* cut short: the frame never ends */
	write_file(p, raw.data, raw.len - 50);
	CHECK(tar_list(p, &l, err) == E_INVAL);
	CHECK(strstr(err, "test: truncated zstd stream") || strstr(err, "truncated tar entry"));
	/* cut right after the tar's end blocks were decoded but before the frame ended: the
	 * drain at the end of the archive still notices */
	write_file(p, raw.data, raw.len - 4);
	l.len = 0;
	CHECK(tar_list(p, &l, err) < 0);
	CHECK(strstr(err, "zstd"));
	/* flipped bytes in the compressed data */
	struct buf bad = {0};
	buf_append(&bad, raw.data, raw.len);
	for (size_t i = 100; i < bad.len - 20; i += 997)
		bad.data[i] ^= 0x5a;
	write_file(p, bad.data, bad.len);
	l.len = 0;
	CHECK(tar_list(p, &l, err) < 0);
	CHECK(strstr(err, "zstd") || strstr(err, "checksum") || strstr(err, "tar"));
	/* a frame asking for a window beyond the limit is refused, not given the memory */
	CHECK_EQ_INT(sh("cd %s && head -c 1000 /dev/zero | zstd -q -c --long=30 --zstd=wlog=30 > big.zst 2>/dev/null", d), 0);
	char *big = xasprintf("%s/big.zst", d);
	struct buf bb = slurp(big);
	struct dribble src = {bb.data, bb.len, 0, 1 << 20, false};
	struct zsrc z;
	uint8_t out[4096];
	CHECK_EQ_INT(zsrc_open(&z, dribble_read, &src, "big", false, err), 0);
	CHECK(zsrc_read(&z, out, sizeof out, err) == E_INVAL);
	CHECK(strstr(err, "big: corrupt zstd data"));
	zsrc_close(&z);
	buf_free(&bb);
	free(big);
	buf_free(&bad);
	buf_free(&raw);
	buf_free(&l);
	free(p);
}

UNIT(image_unpack_zstd_and_stream)
{
	need_root();
	char *d = mktmp(), err[ERR_LEN];
	make_compressed(d);
	char *ref = xasprintf("%s/layers/ref", d);
	char *plain = xasprintf("%s/t.tar", d);
	CHECK_EQ_INT(layer_unpack(plain, ref, err), 0);
	char *want = listing(ref);
	const char *names[] = {"t.tar.gz", "t.tar.zst", "two.zst"};
	for (int i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s", d, names[i]), *dest = xasprintf("%s/layers/L%d", d, i);
		CHECK_EQ_INT(layer_unpack(p, dest, err), 0);
		char *got = listing(dest);
		CHECK_STR(got, want);
		CHECK_EQ_INT(sh("cmp -s %s/src/bin/blob %s/bin/blob", d, dest), 0);
		free(got);
		free(p);
		free(dest);
	}
	/* from a stream: the diff_id comes out, and a source failing at its end leaves nothing */
	char *zp = xasprintf("%s/t.tar.zst", d);
	struct buf raw = slurp(zp), tarb = slurp(plain);
	char want_id[DIGEST_LEN], id[DIGEST_LEN];
	sha256_digest(tarb.data, tarb.len, want_id);
	char *sdest = xasprintf("%s/layers/S", d);
	struct dribble src = {raw.data, raw.len, 0, 777, true};
	CHECK(layer_unpack_stream(dribble_read, &src, "layer x", sdest, id, err) == E_INVAL);
	CHECK_STR(err, "source: digest mismatch");
	CHECK(!exists(sdest));
	char *layers = xasprintf("%s/layers", d);
	CHECK_EQ_INT(count_entries(layers), 4); /* ref, L0..L2: no temp dir left */
	free(layers);
	src = (struct dribble){raw.data, raw.len, 0, 777, false};
	CHECK_EQ_INT(layer_unpack_stream(dribble_read, &src, "layer x", sdest, id, err), 0);
	CHECK_STR(id, want_id);
	char *got = listing(sdest);
	CHECK_STR(got, want);
	free(got);
	src.pos = 0;
	CHECK(layer_unpack_stream(dribble_read, &src, "layer x", sdest, NULL, err) == E_EXISTS);
	buf_free(&raw);
	buf_free(&tarb);
	free(sdest);
	free(zp);
	free(want);
	free(plain);
	free(ref);
}

/* ---- sparse files ---- */

/* <d>/sp/f: 3 MiB with data at 0, 1 MiB and 2 MiB (more stretches with many). */
static void make_sparse(const char *d, int stretches)
{
	CHECK_EQ_INT(sh("mkdir -p %s/sp && cd %s/sp && rm -f f && truncate -s 3M f", d, d), 0);
	for (int i = 0; i < stretches; i++)
		CHECK_EQ_INT(sh("cd %s/sp && printf 'data%d' | dd of=f bs=1 seek=%d conv=notrunc 2>/dev/null", d, i,
				i * (3 << 20) / stretches + (i ? 5 : 0)), 0);
}

UNIT(image_tar_sparse_formats)
{
	need_root();
	char *d = mktmp(), err[ERR_LEN];
	/* 3 stretches fit the old GNU header; 40 need extension blocks and long pax maps */
	const int stretches[] = {3, 40};
	const char *fmts[] = {"--format=pax --sparse-version=0.0", "--format=pax --sparse-version=0.1",
			      "--format=pax --sparse-version=1.0", "--format=gnu", "--format=oldgnu"};
	for (int s = 0; s < 2; s++) {
		make_sparse(d, stretches[s]);
		for (int i = 0; i < 5; i++) {
			CHECK_EQ_INT(sh("cd %s/sp && tar --sparse %s -cf ../s.tar f && mkdir -p ../x && cp f ../x/", d, fmts[i]), 0);
			char *p = xasprintf("%s/s.tar", d), *dest = xasprintf("%s/layers/L", d);
			/* the reader: real name, real size, holes read back as zeros */
			int fd = open(p, O_RDONLY);
			struct tar_reader r;
			struct tar_entry *e;
			CHECK_EQ_INT(tar_open(&r, fd, "t", err), 0);
			int k = tar_next(&r, &e, err);
			if (k != 1)
				fprintf(stderr, "  %s: %s\n", fmts[i], err);
			CHECK_EQ_INT(k, 1);
			CHECK_STR(e->path, "f");
			CHECK_EQ_INT(e->type, TAR_REG);
			CHECK_EQ_INT(e->size, 3 << 20);
			CHECK(e->nspans >= (size_t)stretches[s]);
			struct buf got = {0};
			ssize_t n;
			for (;;) {
				buf_reserve(&got, 100000);
				n = tar_read(&r, got.data + got.len, 100000, err);
				if (n <= 0)
					break;
				got.len += (size_t)n;
			}
			CHECK_EQ_INT(n, 0);
			char *fp = xasprintf("%s/sp/f", d);
			struct buf orig = slurp(fp);
			CHECK(got.len == orig.len && !memcmp(got.data, orig.data, orig.len));
			CHECK_EQ_INT(tar_next(&r, &e, err), 0);
			tar_close(&r);
			close(fd);
			/* the unpacker: the file at its real name, same bytes, holes kept */
			CHECK_EQ_INT(layer_unpack(p, dest, err), 0);
			char *out = xasprintf("%s/f", dest);
			struct stat st;
			CHECK(stat(out, &st) == 0);
			CHECK_EQ_INT(st.st_size, 3 << 20);
			CHECK(st.st_blocks * 512 < 1 << 20);
			CHECK_EQ_INT(count_entries(dest), 1); /* no GNUSparseFile.NNN directory */
			CHECK_EQ_INT(sh("cmp -s %s %s", fp, out), 0);
			fs_rm_rf(dest);
			free(out);
			free(fp);
			buf_free(&orig);
			buf_free(&got);
			free(p);
			free(dest);
		}
	}
	free(d);
}

UNIT(image_tar_sparse_bad_maps)
{
	char *d = mktmp(), err[ERR_LEN];
	/* pax 0.1 maps that lie about the data: each is an error, none a crash */
	const char *maps[][2] = {
		{"10,4,0,4", "out of order"},          /* descending */
		{"0,4,2,4", "out of order"},           /* overlapping */
		{"0,4,100,4", "beyond the file's size"},
		{"0,3", "does not match the stored data"},
		{"0,4,", "bad pax value"},
		{"0,x", "bad pax value"},
	};
	for (size_t i = 0; i < sizeof maps / sizeof *maps; i++) {
		struct buf t = {0}, l = {0};
		char pax[256], rec[200];
		snprintf(rec, sizeof rec, "GNU.sparse.map=%s\n", maps[i][0]);
		int len = (int)strlen(rec) + 3;
		if (len >= 100)
			len += 1;
		int w = snprintf(pax, sizeof pax, "%d %s", len, rec);
		const char *sz = "22 GNU.sparse.size=20\n";
		strcat(pax, sz);
		tw(&t, "PaxHeader", 'x', 0644, NULL, pax, (size_t)w + strlen(sz), 0, 0);
		tw(&t, "f", '0', 0644, NULL, "abcdefgh", 8, 0, 0);
		tw_end(&t);
		char *p = xasprintf("%s/bad.tar", d);
		write_file(p, t.data, t.len);
		int rc = tar_list(p, &l, err);
		if (rc >= 0 || !strstr(err, maps[i][1]))
			fprintf(stderr, "  map %s: rc %d: %s\n", maps[i][0], rc, err);
		CHECK(rc < 0);
		CHECK(strstr(err, maps[i][1]));
		buf_free(&t);
		buf_free(&l);
		free(p);
	}
	free(d);
}

/* ---- archives holding several images and names ---- */

static bool first_bytes(const char *store, const char *digest, const char *magic, size_t n)
{
	char err[ERR_LEN];
	struct blobstore bs;
	CHECK_EQ_INT(blob_init(&bs, store, err), 0);
	int fd = blob_open(&bs, digest, err);
	CHECK(fd >= 0);
	char b[8] = {0};
	CHECK(read(fd, b, n) == (ssize_t)n);
	close(fd);
	blob_fini(&bs);
	return !memcmp(b, magic, n);
}

static void check_names(const struct image_info *im, const char *const *want)
{
	size_t i = 0;
	for (; want[i]; i++) {
		CHECK(im->names && im->names[i]);
		CHECK_STR(im->names[i], want[i]);
	}
	CHECK(!im->names[i]);
	CHECK_STR(im->name, want[0]);
}

UNIT(image_load_tags_indexes_zstd)
{
	need_root();
	char *d = build_demo(), err[ERR_LEN];
	char *store = xasprintf("%s/store", d);
	/* skopeo writes every tag into a docker-archive, and zstd layers and several images
	 * into one OCI layout; a multi-platform index is written here by hand around them */
	CHECK_EQ_INT(sh("cd %s/img && skopeo copy -q oci:demo-oci:demo:latest docker-archive:multi.tar:foo/bar:1 "
			"--additional-tag foo/bar:latest --additional-tag demo:v2 && "
			"skopeo copy -q --dest-compress-format zstd oci:demo-oci:demo:latest oci:many:first:1 && "
			"skopeo copy -q oci:demo-oci:demo:latest oci:many:second:2 && tar -C many -cf - . | zstd -q -c > many.tar.zst", d), 0);
	/* the docker-archive again with its layers zstd'd in place (as docker 25 may write them) */
	CHECK_EQ_INT(sh("cd %s/img && mkdir dz && tar -C dz -xf multi.tar && for l in dz/*.tar; do zstd -q -f $l -o $l.z && mv $l.z $l; done && "
			"tar -C dz -cf multi-zstd.tar .", d), 0);
	const char *arches[] = {"amd64", "s390x"};
	for (int i = 0; i < 2; i++)
		CHECK_EQ_INT(sh("cd %s/img && cp -r many multi-%s && cd multi-%s && "
				"a=$(grep -o 'sha256:[0-9a-f]*' index.json | sed -n 1p) && b=$(grep -o 'sha256:[0-9a-f]*' index.json | sed -n 2p) && "
				"sa=$(wc -c < blobs/sha256/${a#sha256:}) && sb=$(wc -c < blobs/sha256/${b#sha256:}) && "
				"m=application/vnd.oci.image.manifest.v1+json && "
				"printf '{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
				"{\"mediaType\":\"%%s\",\"digest\":\"%%s\",\"size\":%%s,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},"
				"{\"mediaType\":\"%%s\",\"digest\":\"%%s\",\"size\":%%s,\"platform\":{\"architecture\":\"%s\",\"os\":\"linux\"}}]}' "
				"$m $b $sb $m $a $sa > nested && n=$(sha256sum nested | cut -c1-64) && sn=$(wc -c < nested) && mv nested blobs/sha256/$n && "
				"printf '{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
				"\"digest\":\"sha256:%%s\",\"size\":%%s,\"annotations\":{\"org.opencontainers.image.ref.name\":\"multi:1\"}}]}' "
				"$n $sn > index.json && echo $a > ../amd64-digest", d, arches[i], arches[i], arches[i]), 0);
	struct image_info *v;
	size_t n;
	/* every tag of a docker-archive, canonical; plain and zstd'd layers give one image */
	const char *tags[] = {"docker.io/foo/bar:1", "docker.io/foo/bar:latest", "docker.io/library/demo:v2", NULL};
	const char *das[] = {"multi.tar", "multi-zstd.tar"};
	char *plain_layer = NULL;
	for (int i = 0; i < 2; i++) {
		char *p = xasprintf("%s/img/%s", d, das[i]);
		int rc = image_load_all(store, p, &v, &n, err);
		if (rc)
			fprintf(stderr, "  %s: %s\n", das[i], err);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(n, 1);
		check_names(&v[0], tags);
		CHECK_EQ_INT(v[0].nlayers, 2);
		CHECK(first_bytes(store, v[0].layers[0], i ? "\x28\xb5\x2f\xfd" : "./", i ? 4 : 2));
		char *bp = xasprintf("%s/blobs/sha256/%s", store, v[0].layers[1] + 7);
		char *ld = xasprintf("%s/layers/%d", d, i);
		CHECK_EQ_INT(layer_unpack(bp, ld, err), 0);
		char *l = listing(ld);
		CHECK(strstr(l, "./www/cgi-bin/id 755 0 0 f"));
		if (i)
			CHECK_STR(l, plain_layer);
		else
			plain_layer = xstrdup(l);
		free(l);
		free(bp);
		free(ld);
		image_list_free(v, n);
		free(p);
	}
	free(plain_layer);
	/* several images in one layout, each under its ref.name; the layout as a zstd'd tar too */
	const char *lays[] = {"many", "many.tar.zst"};
	for (int i = 0; i < 2; i++) {
		char *p = xasprintf("%s/img/%s", d, lays[i]);
		int rc = image_load_all(store, p, &v, &n, err);
		if (rc)
			fprintf(stderr, "  %s: %s\n", lays[i], err);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(n, 2);
		const char *first[] = {"docker.io/library/first:1", NULL}, *second[] = {"docker.io/library/second:2", NULL};
		check_names(&v[0], first);
		check_names(&v[1], second);
		CHECK(strcmp(v[0].digest, v[1].digest));
		CHECK_STR(v[0].config_digest, v[1].config_digest);
		CHECK(first_bytes(store, v[0].layers[0], "\x28\xb5\x2f\xfd", 4)); /* zstd */
		CHECK(first_bytes(store, v[1].layers[0], "\x1f\x8b", 2));           /* gzip */
		image_list_free(v, n);
		free(p);
	}
	/* a multi-platform index: linux/amd64 picked, the index's name kept */
	char *p = xasprintf("%s/img/multi-amd64", d);
	CHECK_EQ_INT(image_load_all(store, p, &v, &n, err), 0);
	CHECK_EQ_INT(n, 1);
	const char *multi[] = {"docker.io/library/multi:1", NULL};
	check_names(&v[0], multi);
	char want[80] = "";
	char *dp = xasprintf("%s/img/amd64-digest", d);
	FILE *f = fopen(dp, "r");
	CHECK(f && fscanf(f, "%79s", want) == 1);
	fclose(f);
	CHECK_STR(v[0].digest, want);
	image_list_free(v, n);
	/* no linux/amd64 in it: a clear error */
	free(p);
	p = xasprintf("%s/img/multi-s390x", d);
	CHECK(image_load_all(store, p, &v, &n, err) == E_NOTFOUND);
	CHECK(strstr(err, "multi-s390x: no manifest for linux/amd64"));
	free(dp);
	free(p);
	free(store);
}

UNIT(image_names_as_docker_compares_them)
{
	const char *cases[][3] = {
		{"nginx", "docker.io/library/nginx:latest", "nginx:latest"},
		{"nginx:1.27", "docker.io/library/nginx:1.27", "nginx:1.27"},
		{"docker.io/library/nginx:latest", "docker.io/library/nginx:latest", "nginx:latest"},
		{"index.docker.io/library/nginx", "docker.io/library/nginx:latest", "nginx:latest"},
		{"foo/bar:1", "docker.io/foo/bar:1", "foo/bar:1"},
		{"ghcr.io/org/app:tag", "ghcr.io/org/app:tag", "ghcr.io/org/app:tag"},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest"},
		/* not references: kept as they are */
		{"sha256:2c1d1a6932e2", "sha256:2c1d1a6932e2", "sha256:2c1d1a6932e2"},
		{"Bad Name", "Bad Name", "Bad Name"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char key[IMAGE_NAME_MAX], shown[IMAGE_NAME_MAX];
		image_name_key(cases[i][0], key, sizeof key);
		CHECK_STR(key, cases[i][1]);
		image_name_show(key, shown, sizeof shown);
		CHECK_STR(shown, cases[i][2]);
	}
}

/* Sparse archives of both kinds with random damage: an error or a clean unpack, never a
 * crash or a stray file. */
UNIT(image_tar_sparse_fuzz)
{
	need_root();
	char *d = mktmp();
	make_sparse(d, 12);
	const char *fmts[] = {"--format=gnu", "--format=pax --sparse-version=1.0", "--format=pax --sparse-version=0.1"};
	char *blob = xasprintf("%s/blob", d), *layers = xasprintf("%s/layers", d), *dest = xasprintf("%s/layers/L", d);
	srand(7);
	for (int f = 0; f < 3; f++) {
		CHECK_EQ_INT(sh("cd %s/sp && tar --sparse %s -cf ../s.tar f", d, fmts[f]), 0);
		char *p = xasprintf("%s/s.tar", d);
		struct buf t = slurp(p);
		uint8_t *m = xmalloc(t.len);
		for (int it = 0; it < 150; it++) {
			memcpy(m, t.data, t.len);
			/* aim at the headers and the map, where the sparse code reads */
			for (int k = 0; k < 1 + rand() % 4; k++)
				m[rand() % 2048] = (uint8_t)(it % 3 ? rand() : '0' + rand() % 10);
			write_file(blob, m, t.len);
			unpack_or_refuse(blob, dest, layers);
		}
		free(m);
		buf_free(&t);
		free(p);
	}
	free(blob);
	free(layers);
	free(dest);
	free(d);
}

/* A layer copied for a user namespace keeps what overlayfs reads from a lower layer
 * (whiteouts, opaque marks, links, modes) with every owner moved up. */
UNIT(image_rootfs_shift_layer)
{
	CHECK(geteuid() == 0); /* chown to other ids */
	char src[] = "/tmp/orch-shift-XXXXXX", err[ERR_LEN];
	CHECK(mkdtemp(src));
	char *p = xasprintf("%s/l", src), *dst = xasprintf("%s/shifted", src), *bad = xasprintf("%s/bad", src);
	CHECK(mkdir(p, 0755) == 0);
	char *f = xasprintf("%s/file", p), *d = xasprintf("%s/dir", p), *w = xasprintf("%s/gone", p),
	     *ln = xasprintf("%s/link", p), *hl = xasprintf("%s/hard", p);
	int fd = open(f, O_WRONLY | O_CREAT, 04750);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
	CHECK(chown(f, 1000, 50) == 0 && chmod(f, 04750) == 0);
	CHECK(mkdir(d, 0700) == 0 && setxattr(d, "trusted.overlay.opaque", "y", 1, 0) == 0);
	CHECK(mknod(w, S_IFCHR, makedev(0, 0)) == 0);
	CHECK(symlink("file", ln) == 0 && link(f, hl) == 0);

	CHECK_EQ_INT(rootfs_shift_layer(p, dst, 200000, 65536, err), 0);
	struct stat st, st2;
	char *g = xasprintf("%s/file", dst);
	CHECK(stat(g, &st) == 0);
	CHECK_EQ_INT(st.st_uid, 201000);
	CHECK_EQ_INT(st.st_gid, 200050);
	CHECK_EQ_INT(st.st_mode & 07777, 04750);
	char *h = xasprintf("%s/hard", dst);
	CHECK(stat(h, &st2) == 0 && st2.st_ino == st.st_ino); /* still one file */
	char *gw = xasprintf("%s/gone", dst), v[2];
	CHECK(lstat(gw, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	char *gd = xasprintf("%s/dir", dst);
	CHECK(getxattr(gd, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y');
	CHECK(stat(dst, &st) == 0 && st.st_uid == 200000);
	char *gl = xasprintf("%s/link", dst);
	CHECK(lstat(gl, &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid == 200000);

	/* an owner beyond the namespace's ids: refused, nothing left */
	CHECK(chown(f, 70000, 0) == 0);
	CHECK_EQ_INT(rootfs_shift_layer(p, bad, 200000, 65536, err), E_INVAL);
	CHECK(strstr(err, "outside the user namespace"));
	CHECK(access(bad, F_OK) != 0);

	char *cmd = xasprintf("rm -rf %s", src);
	CHECK(system(cmd) == 0);
	free(cmd), free(p), free(dst), free(bad), free(f), free(d), free(w), free(ln), free(hl);
	free(g), free(h), free(gw), free(gd), free(gl);
}
