/* Linux capabilities by name: the set a task gets (Docker's default set, changed by
 * Compose's cap_add and cap_drop, or every one for a privileged task). */
#ifndef ORCH_CAPS_H
#define ORCH_CAPS_H
#include <stdbool.h>
#include <stddef.h>

#define CAPS_NAME_MAX 32

/* "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" -> "CAP_NET_ADMIN" in out (CAPS_NAME_MAX);
 * "all" in any case -> "ALL". -1 for a name the kernel does not have. */
int caps_name(const char *in, char *out);
/* The task's set, NULL-terminated, pointing into a static table (free the array only):
 * Docker's default set plus add minus drop ("ALL" in add starts from every capability,
 * "ALL" in drop from none); privileged: every capability. Names as caps_name gives them. */
const char **caps_resolve(char *const *add, size_t nadd, char *const *drop, size_t ndrop, bool privileged);
/* Drops from caps (in place) those this process's own bounding set lacks: a task
 * cannot get them, and asking makes the runtime fail (privileged: "every capability"
 * is every one the node holds). */
void caps_held_only(const char **caps);
/* Docker's default set, NULL-terminated. */
extern const char *const caps_default[];

#endif
