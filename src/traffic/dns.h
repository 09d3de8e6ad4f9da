/* Service discovery inside containers: a small DNS server on the node's bridge gateway
 * (the nameserver of every task's resolv.conf) that answers A queries for `service` and
 * `service.project` (and a service's network aliases) with the service's virtual
 * address, to tasks of services that share a network with it (Compose's networks: each
 * one an isolation group). Other names get REFUSED: orch does not forward queries. */
#ifndef ORCH_DNS_H
#define ORCH_DNS_H
#include <stddef.h>
#include <stdint.h>

#include "node/host.h"
#include "state/store.h"
#include "traffic/scope.h"

struct dns *dns_new(const struct host *h);
/* Starts serving on the node's bridge gateway once it exists (gw NULL before). */
void dns_sync(struct dns *dn, const char *gw);
/* Closes its socket; closed(data) follows once it is closed (at once when none is open). */
void dns_stop(struct dns *dn, void (*closed)(void *data), void *data);
/* After closed. */
void dns_free(struct dns *dn);
/* Pure: builds the answer to one query packet into out; returns its length, or 0 to drop
 * the packet. lookup(name) returns the IPv4 address in network order, or 0. */
size_t dns_answer(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap, uint32_t (*lookup)(const char *name, void *arg),
		  void *arg);

/* Who asks, by source address: the node's own view of its tasks (the state learns a
 * task's address only once its report is applied, after the task may already ask). */
void dns_set_tasks(struct dns *dn, scope_task_at_fn task_at, void *arg);
/* Pure: the service that name means to the task asking (task, else the task of node
 * `node` at address src_ip in the state); NULL when the name is unknown or on no network
 * the task is on. A query from an address that is no task sees every service name (no
 * aliases). */
const struct service *dns_resolve(const struct store *s, uint64_t node, uint64_t task, const char *src_ip, const char *name);

#endif
