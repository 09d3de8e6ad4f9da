/* Internal to the Compose front end (compose.c reads, interpolates and merges files;
 * compose_svc.c resolves extends: and rewrites each service): the state of one load and
 * the helpers both halves use. Nodes are ids in the assembled document (spec/ydoc.h). */
#ifndef ORCH_SPEC_COMPOSE_CTX_H
#define ORCH_SPEC_COMPOSE_CTX_H
#include "spec/compose.h"
#include "spec/ydoc.h"

#define CHAIN_MAX 16 /* extends: and include: levels */

struct compose_ctx {
	const struct compose_opts *o;
	char *err;
	struct labels env;    /* what ${VAR} reads */
	struct labels warned; /* variables already warned about */
	char *names[YDOC_MAX];
	bool override[YDOC_MAX]; /* a second or later -f file */
	struct spec_note *notes;
	size_t nnotes;
	struct spec_src src;
	struct ydoc y;
	char project[64];
};

/* A warning located at node id. */
void compose_warn_at(struct compose_ctx *c, int id, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* p relative to the directory of file (standard input: the working directory); malloc'd. */
char *compose_rel_path(const char *file, const char *p);
/* The file the relative paths of node id are relative to. */
const char *compose_file_of(struct compose_ctx *c, int id);
/* The text of a scalar node, NULL for other nodes. */
const char *compose_text_of(struct compose_ctx *c, int id);
/* A string or a list of strings: the strings' node ids (malloc'd). */
int compose_str_list(struct compose_ctx *c, int id, const char *path, int **out, size_t *n);
/* A new mapping: map without the keys drop, with the pairs add (ids, key then value). */
int compose_map_edit(struct compose_ctx *c, int map, const char *path, const char *const *drop, size_t ndrop, const int *add,
		     size_t nadd, int *res);
/* A file loaded into the assembled document, its include: entries folded in. */
int compose_root_of(struct compose_ctx *c, const char *name, int depth, int *root);
/* The services: mapping of a root (0 if none). */
int compose_services_of(struct compose_ctx *c, int root, int *svcs);
/* Every service resolved and rewritten; *res the new root. */
int compose_services(struct compose_ctx *c, int root, int *res);

#endif
