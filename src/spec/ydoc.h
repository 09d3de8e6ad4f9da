/* One YAML document assembled from nodes of several loaded ones (Compose's multi-file
 * merge, extends and include): nodes are copied across with their marks (which carry the
 * file index, see spec_table.h) and aliases stay shared; mappings and sequences merge by the
 * rules of the Compose specification's merge section. Nodes are named by id because adding
 * a node moves the others. */
#ifndef ORCH_SPEC_YDOC_H
#define ORCH_SPEC_YDOC_H
#include "spec/spec_table.h"

#define YDOC_MAX 64 /* loaded documents: -f files, included and extended files */
#define YDOC_SELF (-1) /* a "document index" naming the assembled document itself */

struct ydoc {
	yaml_document_t out;
	yaml_document_t *docs[YDOC_MAX];
	int *memo[YDOC_MAX]; /* per loaded document: its node id -> the copy's id, 0 = not copied */
	size_t ndocs;
	int depth; /* of ydoc_merge's recursion: aliases can make a mapping contain itself */
	const struct spec_src *src;
	char *err;
};

void ydoc_init(struct ydoc *y, const struct spec_src *src, char *err);
void ydoc_free(struct ydoc *y); /* deletes out and every loaded document */
/* Takes ownership of a loaded document; its index, or -1 when YDOC_MAX are held. */
int ydoc_add(struct ydoc *y, yaml_document_t *doc);
yaml_node_t *ydoc_node(struct ydoc *y, int k, int id);
/* id of node id of document k copied into out (k = YDOC_SELF: id itself). */
int ydoc_copy(struct ydoc *y, int k, int id);
/* over (document k) merged onto base (an id in out): *res is the merged node's id, or 0 when
 * over is tagged !reset. path ("services.web.ports") picks the sequence rule. */
int ydoc_merge(struct ydoc *y, int base, int k, int over, const char *path, int *res);
/* The pairs of a mapping of out (merge keys resolved); E_INVAL if it is not a mapping. */
int ydoc_pairs(struct ydoc *y, int id, const char *path, struct spec_pairs *p);
/* New nodes in out, marked where like is. text NULL gives a null. */
int ydoc_scalar(struct ydoc *y, const char *text, int like);
int ydoc_mapping(struct ydoc *y, const int *kv, size_t npairs, int like);

#endif
