/* A task's volumes on its node, prepared on a worker thread before its bundle is
 * written: named volumes are directories under the data dir (util/layout.h), created on
 * first use and then filled from the image's content at the target (as Docker does,
 * unless volume.nocopy); anonymous volumes are directories of the task, removed with it;
 * bind mounts must lie under a prefix the operator allowed on this node (orch init/join
 * --allow-bind, kept in the data dir); tmpfs mounts get their size and mode. */
#ifndef ORCH_VOLUMES_H
#define ORCH_VOLUMES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "runtime/bundle.h"
#include "spec/spec.h"

#define VOLUMES_ALLOW_MAX 64

/* The mounts of one task, ready for struct run_spec (bm, n). */
struct volumes_set {
	size_t n;
	struct bundle_mount *bm;
	char **owned; /* strings bm points to */
	size_t nowned;
};

/* The node's allowed bind prefixes (empty when none were given). */
int volumes_allow_load(const char *data_dir, struct strv *out, char *err);
/* Replaces them: each must be an absolute path. */
int volumes_allow_save(const char *data_dir, const struct strv *prefixes, char *err);
/* path (absolute, clean) equals a prefix or lies below one. Pure. */
bool volumes_bind_allowed(const struct strv *allow, const char *path);
/* The prefixes as one text, a line each, as a node's record keeps them ("" for none). */
char *volumes_allow_text(const struct strv *allow);

int volumes_prepare(const char *data_dir, const char *task_dir, const char *rootfs, const struct svc_spec *sp,
		    uint64_t slot, struct volumes_set *out, char *err);
void volumes_set_free(struct volumes_set *s);
/* The task's anonymous volumes (after its container is gone). */
void volumes_task_cleanup(const char *task_dir);
/* Removes a named volume's directory from this node (E_NOTFOUND when it has none). */
int volumes_remove(const char *data_dir, const char *name, char *err);

#endif
