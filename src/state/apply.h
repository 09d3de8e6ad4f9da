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

/* apply_volumes.c: the "volumes" of a task.batch: checked (0 or E_INVAL with msg), then
 * added where no record of that name exists; returns how many were added. */
int volumes_check(const struct store *s, const msgpack_object *vols, char *msg);
unsigned volumes_add(struct store *s, const msgpack_object *vols, uint64_t at);
/* apply_work.c: a new object id; the service's spec becomes the one packed in w (taken)
 * as a new generation, the current one kept as the previous (a rolling update follows). */
uint64_t apply_next_id(struct store *s);
void service_next_generation(struct service *v, struct mpw *w, uint64_t at);
/* apply_secret.c: sets the version of every secret and config sp names to the newest one
 * (E_NOTFOUND naming the first that does not exist). */
struct svc_spec;
int secret_pin(const struct store *s, struct svc_spec *sp, char *msg);

#endif
