/* orch init --restore: the objects of a backup (state/snapfile.h) wait in the new node's
 * data directory until the cluster record and the node's own record are committed; the
 * leader then commits them as one state.load command (node/leader.c) and the file goes.
 * A node that stops in between finds the file again when it resumes and leads. */
#ifndef ORCH_RESTORE_H
#define ORCH_RESTORE_H
#include <stdbool.h>
#include <stddef.h>
#include "util/mem.h"

/* Writes the body of a state.load (mode 0600, atomically). */
int restore_stage(const char *data_dir, const void *body, size_t n, char *err);
bool restore_staged(const char *data_dir);
/* Reads it whole: 0, E_NOTFOUND when there is none, E_IO. */
int restore_load(const char *data_dir, struct buf *out, char *err);
void restore_done(const char *data_dir);

#endif
