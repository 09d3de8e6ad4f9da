/* A task on a node started with --userns-remap: its root is host uid BASE, so what it
 * must own or reach is prepared on the host side before it starts. Image layers get a
 * shifted copy per node (<layers>/userns-BASE/sha256/<hex>, made once per layer, shared by
 * every task, removed by the image GC like the plain ones); the rootfs's top directory,
 * the task's volumes and its secret files are handed to the shifted ids; the directories
 * on the way to them from the data dir become passable (data dir, tasks/ and volumes/ by
 * everyone, a task's or volume's own directory by the group BASE only). Blocking: worker
 * threads. */
#ifndef ORCH_USERNS_H
#define ORCH_USERNS_H
#include <stddef.h>
#include "agent/task_run.h"
#include "agent/volumes.h"
#include "runtime/bundle.h"

/* Every directory above the data dir lets others pass (o+x): the tasks' root, an
 * unprivileged host uid, must reach its rootfs through them. 0, or an error naming the
 * first that does not. */
int userns_reachable(const char *data_dir, char *err);
/* layers[i] (malloc'd, digests[i]'s plain layer dir) replaced by its shifted copy. */
int userns_layers(const struct run_env *env, const char *layers_root, const char **layers, char *const *digests, size_t n,
		  char *err);
/* rootfs (mounted over the shifted layers, top_layer the last), the volumes and files;
 * init_binary (init: true, or NULL) must be reachable as it is. */
int userns_task(const struct run_env *env, const char *rootfs, const char *top_layer, const struct volumes_set *vols,
		const struct bundle_bind *binds, size_t nbinds, const char *init_binary, char *err);

#endif
