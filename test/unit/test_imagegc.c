/* A node's image garbage (image/imagegc.h): blobs and unpacked layers no kept image uses go
 * once older than the grace period, kept ones and young ones stay, measuring removes
 * nothing; and the node's registry options (node/regopts.h): checked, kept in the data dir
 * and replaced kind by kind by options given again. */
#include "unit.h"
#include "image/imagegc.h"
#include "node/regopts.h"
#include "util/err.h"
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

static const char *const HEX[3] = {
	"1111111111111111111111111111111111111111111111111111111111111111",
	"2222222222222222222222222222222222222222222222222222222222222222",
	"3333333333333333333333333333333333333333333333333333333333333333",
};

static void put_file(const char *path, size_t n, time_t mtime)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	for (size_t i = 0; i < n; i++)
		fputc('x', f);
	fclose(f);
	struct utimbuf t = {mtime, mtime};
	CHECK_EQ_INT(utime(path, &t), 0);
}

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

UNIT(imagegc_removes_only_unused_and_old)
{
	char dir[] = "/tmp/orch-gc-XXXXXX", p[600], q[600];
	CHECK(mkdtemp(dir) != NULL);
	time_t now = time(NULL), old = now - 7200;
	snprintf(p, sizeof p, "%s/blobs", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/blobs/sha256", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/layers", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/layers/sha256", dir);
	mkdir(p, 0700);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/blobs/sha256/%s", dir, HEX[i]);
		put_file(p, 5000, i == 2 ? now : old); /* blob 3 was just written: in its grace */
	}
	snprintf(p, sizeof p, "%s/blobs/sha256/.tmp-abc", dir); /* a write that never finished */
	put_file(p, 10, old);
	snprintf(p, sizeof p, "%s/blobs/sha256/README", dir); /* not ours to judge */
	put_file(p, 10, old);
	snprintf(p, sizeof p, "%s/layers/sha256/%s", dir, HEX[1]);
	mkdir(p, 0700);
	snprintf(q, sizeof q, "%s/f", p);
	put_file(q, 3000, old);
	struct utimbuf t = {old, old};
	utime(p, &t);

	char k0[80];
	snprintf(k0, sizeof k0, "sha256:%s", HEX[0]);
	char *keep[] = {k0};
	struct imagegc_res r;
	char err[ERR_LEN];
	/* measuring removes nothing */
	CHECK_EQ_INT(imagegc_run(dir, keep, 1, false, 0, (uint64_t)now, &r, err), 0);
	CHECK_EQ_INT(r.freed_blobs + r.freed_layers, 0);
	CHECK(r.blob_bytes >= 3 * 5000 && r.layer_bytes >= 3000);
	/* an hour of grace: blob 2 and its layer (two hours old) go, blob 3 (new) stays */
	CHECK_EQ_INT(imagegc_run(dir, keep, 1, true, 3600, (uint64_t)now, &r, err), 0);
	CHECK_EQ_INT(r.freed_blobs, 2); /* blob 2 and the stale temp file */
	CHECK_EQ_INT(r.freed_layers, 1);
	CHECK(r.freed_bytes >= 5000 + 3000);
	snprintf(p, sizeof p, "%s/blobs/sha256/%s", dir, HEX[0]);
	CHECK(exists(p));
	snprintf(p, sizeof p, "%s/blobs/sha256/%s", dir, HEX[1]);
	CHECK(!exists(p));
	snprintf(p, sizeof p, "%s/blobs/sha256/%s", dir, HEX[2]);
	CHECK(exists(p));
	snprintf(p, sizeof p, "%s/layers/sha256/%s", dir, HEX[1]);
	CHECK(!exists(p));
	snprintf(p, sizeof p, "%s/blobs/sha256/README", dir);
	CHECK(exists(p));
	/* no grace (orch image prune): the new unused blob goes too, the kept one stays */
	CHECK_EQ_INT(imagegc_run(dir, keep, 1, true, 0, (uint64_t)now, &r, err), 0);
	CHECK_EQ_INT(r.freed_blobs, 1);
	snprintf(p, sizeof p, "%s/blobs/sha256/%s", dir, HEX[0]);
	CHECK(exists(p));
	CHECK(imagegc_blob_bytes(dir, k0) >= 5000);
	snprintf(q, sizeof q, "rm -rf %s", dir);
	CHECK_EQ_INT(system(q), 0);
}

/* The shifted copies of a --userns-remap node (agent/userns.h) go with their layer. */
UNIT(imagegc_userns_copies)
{
	char dir[] = "/tmp/orch-gc-XXXXXX", p[600], q[600];
	CHECK(mkdtemp(dir) != NULL);
	time_t now = time(NULL), old = now - 7200;
	const char *const sub[] = {"layers", "layers/sha256", "layers/userns-100000", "layers/userns-100000/sha256",
				   "layers/userns-x", "layers/userns-x/sha256"};
	for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, sub[i]);
		CHECK_EQ_INT(mkdir(p, 0700), 0);
	}
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s/layers/userns-100000/sha256/%s", dir, HEX[i]);
		mkdir(p, 0700);
		snprintf(q, sizeof q, "%s/f", p);
		put_file(q, 2000, old);
		struct utimbuf t = {old, old};
		utime(p, &t);
	}
	snprintf(p, sizeof p, "%s/layers/userns-x/sha256/%s", dir, HEX[1]); /* not a copy orch makes */
	mkdir(p, 0700);
	struct utimbuf t = {old, old};
	utime(p, &t);
	char k0[80], err[ERR_LEN];
	snprintf(k0, sizeof k0, "sha256:%s", HEX[0]);
	char *keep[] = {k0};
	struct imagegc_res r;
	CHECK_EQ_INT(imagegc_run(dir, keep, 1, false, 0, (uint64_t)now, &r, err), 0);
	CHECK(r.layer_bytes >= 2 * 2000);
	CHECK_EQ_INT(imagegc_run(dir, keep, 1, true, 3600, (uint64_t)now, &r, err), 0);
	CHECK_EQ_INT(r.freed_layers, 1);
	snprintf(p, sizeof p, "%s/layers/userns-100000/sha256/%s", dir, HEX[0]);
	CHECK(exists(p));
	snprintf(p, sizeof p, "%s/layers/userns-100000/sha256/%s", dir, HEX[1]);
	CHECK(!exists(p));
	snprintf(p, sizeof p, "%s/layers/userns-x/sha256/%s", dir, HEX[1]);
	CHECK(exists(p));
	snprintf(q, sizeof q, "rm -rf %s", dir);
	CHECK_EQ_INT(system(q), 0);
}

UNIT(regopts_checked_kept_and_replaced)
{
	char dir[] = "/tmp/orch-regopts-XXXXXX", err[ERR_LEN];
	CHECK(mkdtemp(dir) != NULL);
	struct regopts given, kept;
	regopts_init(&given);
	CHECK_EQ_INT(regopts_set(&given, RO_INSECURE, "10.0.0.5:5000", err), 0);
	CHECK_EQ_INT(regopts_set(&given, RO_INSECURE, "localhost:5000", err), 0);
	CHECK_EQ_INT(regopts_set(&given, RO_MIRROR, "http://127.0.0.1:5001", err), 0);
	CHECK_EQ_INT(regopts_set(&given, RO_GC_GRACE, "30m", err), 0);
	CHECK_EQ_INT(regopts_set(&given, RO_INSECURE, "not a host", err), E_INVAL);
	CHECK(strstr(err, "--insecure-registry") != NULL);
	CHECK_EQ_INT(regopts_set(&given, RO_MIRROR, "ftp://x", err), E_INVAL);
	CHECK_EQ_INT(regopts_set(&given, RO_CA_DIR, "relative/dir", err), E_INVAL);
	CHECK_EQ_INT(regopts_set(&given, RO_GC_GRACE, "soon", err), E_INVAL);
	CHECK_EQ_INT(regopts_save(&given, dir, err), 0);
	/* started again with no options: all kept */
	regopts_init(&kept);
	CHECK_EQ_INT(regopts_load(&kept, dir, err), 0);
	CHECK_EQ_INT(kept.cfg.ninsecure, 2);
	CHECK_STR(kept.cfg.insecure[1], "localhost:5000");
	CHECK_STR(kept.cfg.mirror, "http://127.0.0.1:5001");
	CHECK_STR(kept.cfg.ca_dir, REGOPTS_CA_DIR);
	CHECK_EQ_INT(kept.gc_grace_ms, 30 * 60 * 1000);
	/* given again: the insecure list is replaced, the mirror and grace stay */
	struct regopts again;
	regopts_init(&again);
	CHECK_EQ_INT(regopts_set(&again, RO_INSECURE, "reg.local:443", err), 0);
	regopts_merge(&kept, &again);
	CHECK_EQ_INT(kept.cfg.ninsecure, 1);
	CHECK_STR(kept.cfg.insecure[0], "reg.local:443");
	CHECK_STR(kept.cfg.mirror, "http://127.0.0.1:5001");
	CHECK_EQ_INT(kept.gc_grace_ms, 30 * 60 * 1000);
	regopts_free(&given);
	regopts_free(&kept);
	regopts_free(&again);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}
