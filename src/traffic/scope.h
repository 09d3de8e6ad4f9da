/* Which services a task may reach by name or service address: those that share a Compose
 * network with its own (spec/spec.h spec_share_network). Pure: reads the store. */
#ifndef ORCH_SCOPE_H
#define ORCH_SCOPE_H
#include <stdbool.h>
#include <stdint.h>
#include "state/store.h"

/* The node's own map from a task address to the task it runs there (the agent knows it
 * before the state does); 0 when none. */
typedef uint64_t (*scope_task_at_fn)(void *arg, const char *ip);

/* The live task behind source address ip on node `node`: task when it names one in the
 * state, else the task the state records at that address; NULL for any other address. */
const struct task *scope_asker(const struct store *s, uint64_t node, uint64_t task, const char *ip);
/* The service of asker, with its spec (NULL if it has none decoded). */
const struct service *scope_service(const struct store *s, const struct task *asker);
/* May the task of service `from` reach service `to`? Yes when they share a network, or
 * either runs on the host's network (it is on none), or either has no spec. */
bool scope_allowed(const struct service *from, const struct service *to);

#endif
