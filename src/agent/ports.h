/* What a task holds on its node while it has it: its address in the node's subnet and its
 * published host ports, held bound so that no other node sharing the machine picks them. */
#ifndef ORCH_AGENT_PORTS_H
#define ORCH_AGENT_PORTS_H
#include "agent/agent_state.h"
#include "net/ipam.h"
#include "spec/spec.h"

int ports_hold(uint16_t port, int proto);
/* Once the task's address answers (its network is set up): its held TCP host ports listen
 * and relay loopback clients to it (traffic/relay.h). */
void ports_relay(struct agent *a, struct atask *t);
/* Closes the held ports and relays. */
void ports_release(struct atask *t);
void ports_release_all(struct agent *a, struct atask *t);
int ports_alloc_ip(struct agent *a, char out[IPAM_ADDR_LEN]);
int ports_alloc(struct agent *a, struct atask *t, const struct svc_spec *sp, char *err);

#endif
