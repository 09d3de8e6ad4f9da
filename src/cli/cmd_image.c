/* orch image pull | prune and orch images with the disk figures: each asks the local node,
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
	int rc = cli_request(&c, &cli->target, op, args, err);
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

/* ---- orch images ------------------------------------------------------------------------------ */

/* What the nodes' disk answers (cli_image_disk) say of the image recorded as key. */
static void disk_of(const msgpack_object *dl, const char *key, uint64_t *bytes, uint64_t *holders)
{
	*bytes = *holders = 0;
	for (uint32_t k = 0; dl && dl->type == MSGPACK_OBJECT_ARRAY && k < dl->via.array.size; k++) {
		const msgpack_object *ims = mp_get(&dl->via.array.ptr[k], "images");
		for (uint32_t m = 0; ims && ims->type == MSGPACK_OBJECT_ARRAY && m < ims->via.array.size; m++) {
			char n2[600];
			uint64_t b = 0;
			if (mp_get_strbuf(&ims->via.array.ptr[m], "name", n2, sizeof n2) || strcmp(n2, key))
				continue;
			mp_get_u64(&ims->via.array.ptr[m], "bytes", &b);
			*bytes += b;
			*holders += b > 0;
		}
	}
}

/* -o json|yaml: the records as the node gives them, each with disk_bytes and disk_nodes
 * when the nodes answered. */
static void images_doc(enum out_fmt fmt, const msgpack_object *il, const msgpack_object *dl)
{
	struct mpw w;
	struct mpr doc;
	mpw_init(&w);
	uint32_t n = il && il->type == MSGPACK_OBJECT_ARRAY ? il->via.array.size : 0;
	mpw_arr(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *o = &il->via.array.ptr[i];
		char name[600], key[600];
		mpw_map_begin(&w);
		for (uint32_t k = 0; o->type == MSGPACK_OBJECT_MAP && k < o->via.map.size; k++) {
			mpw_key_obj(&w, &o->via.map.ptr[k].key);
			msgpack_pack_object(&w.pk, o->via.map.ptr[k].val);
		}
		if (dl) {
			uint64_t bytes, holders;
			mp_str_or(o, "name", name, sizeof name, "-");
			disk_of(dl, mp_str_or(o, "ref", key, sizeof key, name), &bytes, &holders);
			mpw_ku64(&w, "disk_bytes", bytes);
			mpw_ku64(&w, "disk_nodes", holders);
		}
		mpw_map_end(&w);
	}
	if (!mpr_decode(&doc, w.sb.data, w.sb.size)) {
		out_doc(fmt, doc.root);
		mpr_free(&doc);
	}
	mpw_free(&w);
}

int cmd_images(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	int orc = 1;
	for (int i = 1; i < argc && orc <= 1; i++)
		if ((orc = cli_output_opt("images", argc, argv, &i, &fmt)) == 0)
			orc = cli_usage("images", "unexpected argument %s", argv[i]);
	if (orc > 1)
		return orc;
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_IMAGES, NULL, &r, 0);
	if (rc)
		return rc;
	const msgpack_object *il = mp_get(r.root, "images");
	/* what each node holds on disk, asked of every ready node */
	struct mpr disk = {0};
	bool have_disk = cli_image_disk(cli, &disk) == EXIT_OK && disk.root;
	const msgpack_object *dl = have_disk ? disk.root : NULL;
	if (fmt != OUT_TABLE) {
		images_doc(fmt, il, dl);
		if (have_disk)
			mpr_free(&disk);
		mpr_free(&r);
		return EXIT_OK;
	}
	const char *hdr[] = {"NAME", "DIGEST", "SIZE", "LOADED ON", "ON DISK", "NODES"};
	struct out_table t;
	out_table_init(&t, 6, hdr);
	for (uint32_t i = 0; il && i < il->via.array.size; i++) {
		const msgpack_object *o = &il->via.array.ptr[i];
		char name[600], key[600], dg[80], size[32], node[80], on[32] = "-", nn[16] = "-";
		uint64_t sz = 0, bytes = 0, holders = 0;
		mp_str_or(o, "name", name, sizeof name, "-");
		mp_str_or(o, "ref", key, sizeof key, name); /* what the nodes name it by */
		mp_str_or(o, "digest", dg, sizeof dg, "-");
		dg[19] = 0;
		mp_get_u64(o, "size", &sz);
		out_bytes(sz, size, sizeof size);
		mp_str_or(o, "node", node, sizeof node, "-");
		disk_of(dl, key, &bytes, &holders);
		if (dl) {
			out_bytes(bytes, on, sizeof on);
			snprintf(nn, sizeof nn, "%llu", (unsigned long long)holders);
		}
		const char *row[] = {name, dg, size, node, on, nn};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
	if (dl && dl->type == MSGPACK_OBJECT_ARRAY && dl->via.array.size) {
		const char *h2[] = {"NODE", "BLOBS", "LAYERS", "TOTAL"};
		out_table_init(&t, 4, h2);
		for (uint32_t k = 0; k < dl->via.array.size; k++) {
			const msgpack_object *o = &dl->via.array.ptr[k];
			char node[80], b1[32], b2[32], b3[32];
			uint64_t bb = 0, lb = 0;
			mp_get_u64(o, "blob_bytes", &bb);
			mp_get_u64(o, "layer_bytes", &lb);
			out_bytes(bb, b1, sizeof b1);
			out_bytes(lb, b2, sizeof b2);
			out_bytes(bb + lb, b3, sizeof b3);
			const char *row[] = {mp_str_or(o, "node", node, sizeof node, "?"), b1, b2, b3};
			out_table_row(&t, row);
		}
		printf("\n");
		out_table_print(&t);
		out_table_free(&t);
	}
	if (have_disk)
		mpr_free(&disk);
	mpr_free(&r);
	return EXIT_OK;
}
