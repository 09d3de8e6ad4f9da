/* Command handlers shared between apply*.c files (internal to the state machine). */
#ifndef ORCH_APPLY_H
#define ORCH_APPLY_H
#include "state/store.h"

int apply_service_put(struct store *s, const struct cmd_ctx *c, struct apply_res *res);
int apply_service_scale(struct store *s, const struct cmd_ctx *c, struct apply_res *res);
int apply_service_rm(struct store *s, const struct cmd_ctx *c, struct apply_res *res);
int apply_service_update(struct store *s, const struct cmd_ctx *c, struct apply_res *res);
int apply_service_port_error(struct store *s, const struct cmd_ctx *c, struct apply_res *res);
int apply_task_batch(struct store *s, const struct cmd_ctx *c, struct apply_res *res);
int apply_image_put(struct store *s, const struct cmd_ctx *c, struct apply_res *res);
int apply_image_rm(struct store *s, const struct cmd_ctx *c, struct apply_res *res);

#endif
