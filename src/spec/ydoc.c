/* Copy and merge of YAML nodes across documents (see ydoc.h). */
#include "spec/ydoc.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ydoc_init(struct ydoc *y, const struct spec_src *src, char *err)
{
	memset(y, 0, sizeof *y);
	yaml_document_initialize(&y->out, NULL, NULL, NULL, 1, 1);
	y->src = src;
	y->err = err;
}

void ydoc_free(struct ydoc *y)
{
	yaml_document_delete(&y->out);
	for (size_t i = 0; i < y->ndocs; i++) {
		yaml_document_delete(y->docs[i]);
		free(y->docs[i]);
		free(y->memo[i]);
	}
	y->ndocs = 0;
}

int ydoc_add(struct ydoc *y, yaml_document_t *doc)
{
	if (y->ndocs == YDOC_MAX)
		return -1;
	y->docs[y->ndocs] = doc;
	y->memo[y->ndocs] = xcalloc((size_t)(doc->nodes.top - doc->nodes.start) + 1, sizeof(int));
	return (int)y->ndocs++;
}

static yaml_document_t *doc_of(struct ydoc *y, int k)
{
	return k == YDOC_SELF ? &y->out : y->docs[k];
}

yaml_node_t *ydoc_node(struct ydoc *y, int k, int id)
{
	return yaml_document_get_node(doc_of(y, k), id);
}

static void mark_like(struct ydoc *y, int id, const yaml_node_t *like)
{
	yaml_node_t *n = yaml_document_get_node(&y->out, id);
	n->start_mark = like->start_mark;
	n->end_mark = like->end_mark;
}

int ydoc_copy(struct ydoc *y, int k, int id)
{
	if (k == YDOC_SELF)
		return id;
	int *memo = &y->memo[k][id];
	if (*memo)
		return *memo;
	yaml_node_t n = *ydoc_node(y, k, id); /* a copy: adding nodes to out never moves it */
	int nid = 0;
	if (n.type == YAML_SCALAR_NODE) {
		nid = yaml_document_add_scalar(&y->out, n.tag, n.data.scalar.value, (int)n.data.scalar.length,
					       n.data.scalar.style);
	} else if (n.type == YAML_SEQUENCE_NODE) {
		nid = yaml_document_add_sequence(&y->out, n.tag, n.data.sequence.style);
		*memo = nid; /* before the children: a recursive alias ends here */
		for (yaml_node_item_t *it = n.data.sequence.items.start; it < n.data.sequence.items.top; it++)
			yaml_document_append_sequence_item(&y->out, nid, ydoc_copy(y, k, *it));
	} else {
		nid = yaml_document_add_mapping(&y->out, n.tag, n.data.mapping.style);
		*memo = nid;
		for (yaml_node_pair_t *p = n.data.mapping.pairs.start; p < n.data.mapping.pairs.top; p++) {
			int kk = ydoc_copy(y, k, p->key), vv = ydoc_copy(y, k, p->value);
			yaml_document_append_mapping_pair(&y->out, nid, kk, vv);
		}
	}
	if (!nid)
		abort(); /* libyaml fails only when out of memory */
	*memo = nid;
	mark_like(y, nid, &n);
	return nid;
}

int ydoc_scalar(struct ydoc *y, const char *text, int like)
{
	yaml_node_t l = *yaml_document_get_node(&y->out, like);
	int id = yaml_document_add_scalar(&y->out, NULL, (yaml_char_t *)(uintptr_t)(text ? text : ""), -1,
					  text ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
	if (!id)
		abort();
	mark_like(y, id, &l);
	return id;
}

int ydoc_mapping(struct ydoc *y, const int *kv, size_t npairs, int like)
{
	yaml_node_t l = *yaml_document_get_node(&y->out, like);
	int id = yaml_document_add_mapping(&y->out, NULL, YAML_BLOCK_MAPPING_STYLE);
	if (!id)
		abort();
	for (size_t i = 0; i < npairs; i++)
		yaml_document_append_mapping_pair(&y->out, id, kv[2 * i], kv[2 * i + 1]);
	mark_like(y, id, &l);
	return id;
}

int ydoc_pairs(struct ydoc *y, int id, const char *path, struct spec_pairs *p)
{
	yaml_node_t *n = yaml_document_get_node(&y->out, id);
	if (n->type != YAML_MAPPING_NODE)
		return spec_node_err(y->src, n, path, y->err, "expected a mapping");
	return spec_map_pairs(y->src, &y->out, n, path, p, y->err);
}

/* ---- merge ---- */

static bool tagged(const yaml_node_t *n, const char *tag)
{
	return n->tag && !strcmp((const char *)n->tag, tag);
}

/* path is "services.<name>.<key>" (key may hold dots: "healthcheck.test"). */
static bool svc_key(const char *path, const char *key)
{
	if (strncmp(path, "services.", 9))
		return false;
	const char *dot = strchr(path + 9, '.');
	return dot && !strcmp(dot + 1, key);
}

static const char *scalar_or(const yaml_node_t *n, const char *def)
{
	return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : def;
}

/* The value of key in a flat mapping (no merge keys: a lookup for uniqueness only). */
static const char *map_text(struct ydoc *y, int k, const yaml_node_t *m, const char *key)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = ydoc_node(y, k, p->key), *vn = ydoc_node(y, k, p->value);
		if (kn && vn && kn->type == YAML_SCALAR_NODE && !strcmp((const char *)kn->data.scalar.value, key))
			return scalar_or(vn, "");
	}
	return "";
}

/* The unique key of an entry of ports, volumes, secrets or configs, as the merge section
 * of the Compose specification defines it (volumes by target, secrets and configs by
 * target, ports by address, published, target and protocol). */
static void unique_key(struct ydoc *y, int k, int id, const char *leaf, char *out, size_t size)
{
	const yaml_node_t *n = ydoc_node(y, k, id);
	if (n->type == YAML_MAPPING_NODE) {
		if (!strcmp(leaf, "ports"))
			snprintf(out, size, "%s:%s:%s/%s", map_text(y, k, n, "host_ip"), map_text(y, k, n, "published"),
				 map_text(y, k, n, "target"), map_text(y, k, n, "protocol"));
		else if (!strcmp(leaf, "volumes") || *map_text(y, k, n, "target"))
			snprintf(out, size, "%s", map_text(y, k, n, "target"));
		else
			snprintf(out, size, "%s", map_text(y, k, n, "source"));
		return;
	}
	const char *s = scalar_or(n, "");
	if (!strcmp(leaf, "volumes")) { /* "src:target[:mode]" or "target" */
		const char *a = strchr(s, ':');
		if (a) {
			const char *b = strchr(a + 1, ':');
			snprintf(out, size, "%.*s", (int)(b ? b - a - 1 : (long)strlen(a + 1)), a + 1);
			return;
		}
	}
	snprintf(out, size, "%s", s);
}

/* Entries of a list-form environment or labels ("K=V", "K") as a mapping. */
static int kv_as_map(struct ydoc *y, int k, int id)
{
	int cid = ydoc_copy(y, k, id);
	yaml_node_t n = *ydoc_node(y, YDOC_SELF, cid);
	if (n.type != YAML_SEQUENCE_NODE)
		return cid;
	size_t cnt = (size_t)(n.data.sequence.items.top - n.data.sequence.items.start);
	int *kv = xcalloc(2 * cnt + 1, sizeof *kv);
	size_t np = 0;
	for (size_t i = 0; i < cnt; i++) {
		int item = n.data.sequence.items.start[i];
		char *s = xstrdup(scalar_or(ydoc_node(y, YDOC_SELF, item), ""));
		char *eq = strchr(s, '=');
		if (eq)
			*eq = 0;
		kv[2 * np] = ydoc_scalar(y, s, item);
		kv[2 * np + 1] = ydoc_scalar(y, eq ? eq + 1 : NULL, item);
		np++;
		free(s);
		n = *ydoc_node(y, YDOC_SELF, cid);
	}
	int m = ydoc_mapping(y, kv, np, cid);
	free(kv);
	return m;
}

static int merge_maps(struct ydoc *y, int base, int k, int over, const char *path, int *res)
{
	struct spec_pairs pb = {0}, po = {0};
	int rc = ydoc_pairs(y, base, path, &pb);
	if (!rc)
		rc = spec_map_pairs(y->src, doc_of(y, k), ydoc_node(y, k, over), path, &po, y->err);
	int *kv = xcalloc(2 * (pb.n + po.n) + 1, sizeof *kv);
	size_t np = 0;
	char sub[512];
	for (size_t i = 0; !rc && i < pb.n; i++) {
		const struct spec_pair *o = spec_pairs_find(&po, pb.v[i].key);
		int v = pb.v[i].vid;
		snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", pb.v[i].key);
		if (o && (rc = ydoc_merge(y, pb.v[i].vid, k, o->vid, sub, &v)))
			break;
		if (v) {
			kv[2 * np] = pb.v[i].kid;
			kv[2 * np + 1] = v;
			np++;
		}
	}
	for (size_t i = 0; !rc && i < po.n; i++) {
		if (spec_pairs_find(&pb, po.v[i].key) || tagged(ydoc_node(y, k, po.v[i].vid), "!reset"))
			continue;
		kv[2 * np] = ydoc_copy(y, k, po.v[i].kid);
		kv[2 * np + 1] = ydoc_copy(y, k, po.v[i].vid);
		np++;
	}
	if (!rc)
		*res = ydoc_mapping(y, kv, np, base);
	free(kv);
	spec_pairs_free(&pb);
	spec_pairs_free(&po);
	return rc;
}

static int merge_seqs(struct ydoc *y, int base, int k, int over, const char *leaf, int *res)
{
	yaml_node_t b = *ydoc_node(y, YDOC_SELF, base), o = *ydoc_node(y, k, over);
	size_t nb = (size_t)(b.data.sequence.items.top - b.data.sequence.items.start);
	size_t no = (size_t)(o.data.sequence.items.top - o.data.sequence.items.start);
	int *items = xcalloc(nb + no + 1, sizeof *items);
	size_t n = 0;
	for (size_t i = 0; i < nb; i++)
		items[n++] = b.data.sequence.items.start[i];
	bool unique = !strcmp(leaf, "ports") || !strcmp(leaf, "volumes") || !strcmp(leaf, "secrets") ||
		      !strcmp(leaf, "configs");
	for (size_t i = 0; i < no; i++) {
		int oid = o.data.sequence.items.start[i];
		size_t at = n;
		if (unique) {
			char ko[512], kb[512];
			unique_key(y, k, oid, leaf, ko, sizeof ko);
			for (size_t j = 0; j < nb && at == n; j++) {
				unique_key(y, YDOC_SELF, items[j], leaf, kb, sizeof kb);
				if (!strcmp(ko, kb))
					at = j;
			}
		}
		int cid = ydoc_copy(y, k, oid);
		if (at == n)
			items[n++] = cid;
		else
			items[at] = cid;
	}
	int id = yaml_document_add_sequence(&y->out, NULL, YAML_BLOCK_SEQUENCE_STYLE);
	if (!id)
		abort();
	for (size_t i = 0; i < n; i++)
		yaml_document_append_sequence_item(&y->out, id, items[i]);
	mark_like(y, id, &b);
	free(items);
	*res = id;
	return 0;
}

static int merge(struct ydoc *y, int base, int k, int over, const char *path, int *res);

int ydoc_merge(struct ydoc *y, int base, int k, int over, const char *path, int *res)
{
	if (y->depth >= 64)
		return spec_node_err(y->src, ydoc_node(y, k, over), path, y->err, "merged more than 64 levels deep");
	y->depth++;
	int rc = merge(y, base, k, over, path, res);
	y->depth--;
	return rc;
}

static int merge(struct ydoc *y, int base, int k, int over, const char *path, int *res)
{
	yaml_node_t *o = ydoc_node(y, k, over), *b = ydoc_node(y, YDOC_SELF, base);
	if (tagged(o, "!reset")) {
		*res = 0;
		return 0;
	}
	const char *leaf = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
	bool replace = tagged(o, "!override") || svc_key(path, "command") || svc_key(path, "entrypoint") ||
		       svc_key(path, "healthcheck.test");
	if (!replace && (svc_key(path, "environment") || svc_key(path, "labels") || svc_key(path, "deploy.labels")) &&
	    (o->type == YAML_SEQUENCE_NODE || b->type == YAML_SEQUENCE_NODE)) {
		int bm = kv_as_map(y, YDOC_SELF, base), om = kv_as_map(y, k, over);
		return merge_maps(y, bm, YDOC_SELF, om, path, res);
	}
	if (!replace && o->type == YAML_MAPPING_NODE && b->type == YAML_MAPPING_NODE)
		return merge_maps(y, base, k, over, path, res);
	if (!replace && o->type == YAML_SEQUENCE_NODE && b->type == YAML_SEQUENCE_NODE)
		return merge_seqs(y, base, k, over, leaf, res);
	*res = ydoc_copy(y, k, over);
	return 0;
}
