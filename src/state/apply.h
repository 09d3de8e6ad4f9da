/* Command handlers shared between apply*.c files (internal to the state machine). */
#ifndef ORCH_APPLY_H
#define ORCH_APPLY_H
#include "state/store.h"

/* The apply function of every command type (state/cmd.h): apply.c (the cluster, nodes,
 * settings) and apply_work.c (services, tasks, images). Each validates its whole body
 * before changing anything. */
#define APPLY_DECLARE_(ID, low, name, fn) int fn(struct store *s, const struct cmd_ctx *c, struct apply_res *res);
CMD_TYPES(APPLY_DECLARE_)
#undef APPLY_DECLARE_

#endif
