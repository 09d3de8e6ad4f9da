/* Service discovery inside containers: a small DNS server on the node's bridge gateway
 * (the nameserver of every task's resolv.conf) that answers A queries for `service` and
 * `service.project` with the service's virtual address. Other names get REFUSED: orch
 * does not forward queries. */
#ifndef ORCH_DNS_H
#define ORCH_DNS_H
#include <stddef.h>
#include <stdint.h>

#include "node/host.h"

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

#endif
