/* A task's host port on the node's loopback addresses. Published ports are DNAT rules
 * (runtime/nat.h), but a connection with a loopback source cannot be routed onto a bridge
 * without route_localnet, which would also let tasks reach the host's 127.0.0.1. So the
 * socket that holds the host port (agent/ports.h) listens, and what it accepts (only
 * loopback clients get that far: everything else was DNAT'ed before) is copied to and
 * from the task's address. A client whose task does not answer gets a reset, as a DNAT'ed
 * connection to a closed port would. */
#ifndef ORCH_RELAY_H
#define ORCH_RELAY_H
#include <stdint.h>
#include <uv.h>

struct relay;

/* Listens on fd (a bound TCP socket, owned by the relay from now on, also on failure) and
 * relays every connection to ip:port. NULL with err on failure. */
struct relay *relay_listen(uv_loop_t *loop, int fd, const char *ip, uint16_t port, char *err);
/* Stops listening and resets the open connections; freed once libuv closed them all. */
void relay_close(struct relay *r);

#endif
