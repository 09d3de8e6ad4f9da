/* The files of a task's secrets and configs on the node that runs it: a tmpfs mounted at
 * <task dir>/secrets (util/layout.h) for the task's life, so an opened value is in memory
 * only, never on the node's disk; one file per reference, owned and moded as the spec
 * says, each bind-mounted read-only at its target in the container (runtime/bundle.h).
 * Runs on a worker thread (agent/task_run.c). */
#ifndef ORCH_SECFS_H
#define ORCH_SECFS_H
#include <stddef.h>
#include <stdint.h>
#include "runtime/bundle.h"

/* files: the task's "files" array of its assignment (node/feed.c), values sealed (opened
 * by the leader for a worker: "value"). Opens each with the node's data key into the
 * tmpfs; *binds (free with secfs_binds_free) says what to mount where. extra: room for
 * other files of the task that must stay off the disk (its runtime config, which holds its
 * opened environment). Nothing is mounted when there are no files and no extra. On error
 * the tmpfs is gone again. */
int secfs_setup(const char *data_dir, const char *task_dir, const uint8_t *files, size_t len, size_t extra,
		struct bundle_bind **binds, size_t *nbinds, char *err);
void secfs_binds_free(struct bundle_bind *b, size_t n);
/* Unmounts and removes the tmpfs (idempotent: nothing there is fine). */
void secfs_teardown(const char *task_dir);

#endif
