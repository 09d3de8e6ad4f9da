/* Where a task's published ports are reached from other nodes, as typed fields: the
 * node's IPv4 address, the host port there, the container's port and the protocol. The
 * routing mesh connects to them as they are; a text form ("127.0.0.2:56914->80/tcp") is
 * made only for display. Encoded as a msgpack array of maps {host, host_port, port,
 * proto}; entries written before the typed form carried that text, which the decoder
 * still reads (state/store.h: command format 3, snapshot version 2). */
#ifndef ORCH_ENDPOINT_H
#define ORCH_ENDPOINT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"

struct endpoint {
	uint32_t host;      /* IPv4 address, host byte order */
	uint16_t host_port; /* on that address */
	uint16_t port;      /* the container's */
	uint8_t proto;      /* IPPROTO_TCP or IPPROTO_UDP */
};

struct endpoints {
	size_t n;
	struct endpoint *v;
};

#define ENDPOINT_ADDR_LEN 22 /* "255.255.255.255:65535" */

void endpoints_add(struct endpoints *e, const struct endpoint *one);
void endpoints_free(struct endpoints *e);
void endpoints_copy(struct endpoints *dst, const struct endpoints *src); /* dst is overwritten */
/* The endpoint of a container port and protocol, or NULL. */
const struct endpoint *endpoints_find(const struct endpoints *e, uint16_t port, uint8_t proto);

void endpoints_encode(const struct endpoints *e, struct mpw *w);
/* Fills an empty e from the array form, or from the text form of older entries ("" or
 * nil: none). 0, or -1 for anything else (e is left empty). */
int endpoints_decode(const msgpack_object *o, struct endpoints *e);
/* For people and scripts: [{host: "a.b.c.d", host_port, port, protocol}]. */
void endpoints_encode_display(const struct endpoints *e, struct mpw *w);

/* "a.b.c.d:host_port" */
void endpoint_addr(const struct endpoint *ep, char out[ENDPOINT_ADDR_LEN]);
/* "a.b.c.d:56914->80/tcp,..." (display only), truncated to fit n. */
void endpoints_format(const struct endpoints *e, char *out, size_t n);

#endif
