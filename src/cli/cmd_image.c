/* orch image pull | prune and the disk figures of orch images: each asks the local node,
 * which asks every ready node and streams their answers back (node/imagefan.h). */
#include "cli/cli.h"
#include "cli/output.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads a fan-out's frames, calling each(frame, ctx) for every node frame; fills the final
 * one's failed and nodes. A stream that breaks is an error. */
static int fan_read(struct cli *cli, enum op op, const void *args, const char *what,
		    void (*each)(const msgpack_object *m, void *ctx), void *ctx, uint64_t *nodes, uint64_t *failed,
		    struct mpr *last)
{
	char err[ERR_LEN];
	struct client c;
	int rc = cli_request(&c, cli->data_dir, op, args, err);
	if (rc)
		return cli_call_fail(rc, err);
	last->root = NULL;
	for (bool more = true; more;) {
		struct mpr m;
		/* a pull's progress comes every few hundred ms; a big layer's unpack may be quiet */
		if ((rc = cli_stream_next(&c, &m, &more, 10 * 60 * 1000, err))) {
			rc = cli_fail(rc, "%s: %s", what, err);
			break;
		}
		if (more)
			each(m.root, ctx);
		if (more) {
			mpr_free(&m);
			continue;
		}
		mp_get_u64(m.root, "nodes", nodes);
		mp_get_u64(m.root, "failed", failed);
		*last = m;
	}
	client_close(&c);
	return rc;
}

/* ---- pull -------------------------------------------------------------------------------------- */

struct pull_view {
	bool tty;
	char last_phase[64][16]; /* per node, by order of first frame: what was printed */
	char names[64][64];
	size_t n;
};

static size_t node_slot(struct pull_view *v, const char *node)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->names[i], node))
			return i;
	if (v->n == 64)
		return 63;
	snprintf(v->names[v->n], sizeof v->names[v->n], "%s", node);
	v->last_phase[v->n][0] = 0;
	return v->n++;
}

static void pull_frame(const msgpack_object *m, void *ctx)
{
	struct pull_view *v = ctx;
	char node[64], phase[16], err[ERR_LEN], dg[80], res[600], done_s[32], total_s[32];
	if (!mp_get_strbuf(m, "resolved", res, sizeof res)) {
		printf("resolved %s\n", res);
		return;
	}
	mp_str_or(m, "node", node, sizeof node, "?");
	bool more = false;
	int64_t rc = 0;
	mp_get_bool(m, "node_more", &more);
	mp_get_i64(m, "node_rc", &rc);
	size_t k = node_slot(v, node);
	if (more) {
		uint64_t done = 0, total = 0, ld = 0, lt = 0;
		mp_str_or(m, "phase", phase, sizeof phase, "?");
		mp_get_u64(m, "done", &done);
		mp_get_u64(m, "total", &total);
		mp_get_u64(m, "layers_done", &ld);
		mp_get_u64(m, "layers_total", &lt);
		out_bytes(done, done_s, sizeof done_s);
		out_bytes(total, total_s, sizeof total_s);
		/* on a terminal every frame; in a log, each phase once per node */
		if (!v->tty && !strcmp(v->last_phase[k], phase))
			return;
		snprintf(v->last_phase[k], sizeof v->last_phase[k], "%s", phase);
		printf("%s: %s %llu/%llu layers, %s/%s\n", node, phase, (unsigned long long)ld, (unsigned long long)lt, done_s,
		       total_s);
	} else if (rc) {
		fprintf(stderr, "%s: pull failed: %s\n", node, mp_str_or(m, "err", err, sizeof err, "unknown error"));
	} else {
		uint64_t size = 0, layers = 0;
		mp_get_u64(m, "size", &size);
		mp_get_u64(m, "layers", &layers);
		out_bytes(size, total_s, sizeof total_s);
		printf("%s: pulled %s (%s, %llu layers)\n", node, mp_str_or(m, "digest", dg, sizeof dg, "?"), total_s,
		       (unsigned long long)layers);
	}
	fflush(stdout);
}

int cmd_image_pull(struct cli *cli, const char *ref)
{
	struct pull_view v = {.tty = isatty(1)};
	struct req_image_pull q = {.ref = ref};
	uint64_t nodes = 0, failed = 0;
	struct mpr last;
	char what[700];
	snprintf(what, sizeof what, "image pull %s", ref);
	int rc = fan_read(cli, OP_IMAGE_PULL, &q, what, pull_frame, &v, &nodes, &failed, &last);
	mpr_free(&last);
	if (rc)
		return rc;
	if (!nodes)
		return cli_fail(E_NOTFOUND, "image pull %s: no ready node to pull on", ref);
	if (failed)
		return cli_fail(E_IO, "image pull %s: %llu of %llu nodes failed", ref, (unsigned long long)failed,
				(unsigned long long)nodes);
	printf("%s pulled on %llu nodes\n", ref, (unsigned long long)nodes);
	return EXIT_OK;
}

/* ---- prune ------------------------------------------------------------------------------------- */

static void prune_frame(const msgpack_object *m, void *ctx)
{
	uint64_t *total = ctx, freed = 0, blobs = 0, layers = 0;
	char node[64], err[ERR_LEN], b[32];
	int64_t rc = 0;
	mp_str_or(m, "node", node, sizeof node, "?");
	mp_get_i64(m, "node_rc", &rc);
	if (rc) {
		fprintf(stderr, "%s: prune failed: %s\n", node, mp_str_or(m, "err", err, sizeof err, "unknown error"));
		return;
	}
	mp_get_u64(m, "freed_bytes", &freed);
	mp_get_u64(m, "freed_blobs", &blobs);
	mp_get_u64(m, "freed_layers", &layers);
	*total += freed;
	out_bytes(freed, b, sizeof b);
	printf("%s: freed %s (%llu blobs, %llu layers)\n", node, b, (unsigned long long)blobs, (unsigned long long)layers);
}

int cmd_image_prune(struct cli *cli)
{
	uint64_t nodes = 0, failed = 0, total = 0;
	struct mpr last;
	int rc = fan_read(cli, OP_IMAGE_PRUNE, NULL, "image prune", prune_frame, &total, &nodes, &failed, &last);
	if (rc)
		return rc;
	const msgpack_object *rm = mp_get(last.root, "removed");
	for (uint32_t i = 0; rm && rm->type == MSGPACK_OBJECT_ARRAY && i < rm->via.array.size; i++)
		if (mp_is_str(&rm->via.array.ptr[i]))
			printf("removed image %.*s\n", (int)rm->via.array.ptr[i].via.str.size, rm->via.array.ptr[i].via.str.ptr);
	mpr_free(&last);
	char b[32];
	out_bytes(total, b, sizeof b);
	printf("total freed: %s on %llu nodes\n", b, (unsigned long long)nodes);
	if (failed)
		return cli_fail(E_IO, "image prune: %llu of %llu nodes failed", (unsigned long long)failed,
				(unsigned long long)nodes);
	return EXIT_OK;
}

/* ---- disk (orch images) -------------------------------------------------------------------------- */

struct disk_acc {
	struct mpw w; /* the nodes' answers, packed one after another */
	uint32_t n;
};

static void disk_frame(const msgpack_object *m, void *ctx)
{
	struct disk_acc *acc = ctx;
	int64_t rc = 0;
	mp_get_i64(m, "node_rc", &rc);
	if (rc) {
		char node[64], err[ERR_LEN];
		fprintf(stderr, "orch: %s: disk use not known: %s\n", mp_str_or(m, "node", node, sizeof node, "?"),
			mp_str_or(m, "err", err, sizeof err, "unknown error"));
		return;
	}
	msgpack_pack_object(&acc->w.pk, *m);
	acc->n++;
}

int cli_image_disk(struct cli *cli, struct mpr *nodes)
{
	struct disk_acc acc = {.n = 0};
	mpw_init(&acc.w);
	uint64_t n = 0, failed = 0;
	struct mpr last;
	int rc = fan_read(cli, OP_IMAGE_DISK, NULL, "images", disk_frame, &acc, &n, &failed, &last);
	mpr_free(&last);
	struct mpw a;
	mpw_init(&a);
	mpw_arr(&a, acc.n);
	msgpack_sbuffer_write(&a.sb, acc.w.sb.data, acc.w.sb.size);
	mpw_free(&acc.w);
	size_t len;
	char *bytes = mpw_take(&a, &len);
	mpw_free(&a);
	int drc = mpr_decode(nodes, bytes, len);
	free(bytes);
	return rc ? rc : drc ? EXIT_FAIL : EXIT_OK;
}
