/* TCP-like connections between the processes of the simulated hosts, for the node-to-node
 * traffic (joins, heartbeats, forwarded writes, assignment documents, whois):
 *   - a connection is opened by a client end; the server's host accepts it (or refuses it
 *     when no process runs there) a one-way delay later, the client is ready a round trip
 *     after it opened, or closes when that takes longer than the handshake timeout;
 *   - messages keep their order on a connection (each direction is a queue); different
 *     connections are independent, so messages of two connections may arrive in another
 *     order than they were sent;
 *   - a partition is silent, as a dropped packet is: what crosses it waits (retransmitted)
 *     and arrives after the heal, in order; nothing tells either end;
 *   - a close by one end (or the death of its process) reaches the other end after what
 *     was sent before it, as a FIN does; a message sent to an end that is gone is lost;
 *   - a machine that loses power says nothing: its peers' messages and connection attempts
 *     go unanswered while it is down (their handshakes time out), and are answered with a
 *     reset once it is up again;
 *   - with reset_pm, a message resets its connection at random (what TCP cannot hide: a
 *     lost path, a middlebox): it and everything still in flight on it are lost and both
 *     ends close. Requests retried after that may then reach their server twice, which is
 *     the duplicated delivery a TCP stream does not prevent across reconnections.
 * An end's callbacks run on the event queue (never inside the sender's call), except the
 * close of an end by its own owner, which calls its closed callback at once, as
 * net/conn.h's conn_close does. */
#ifndef SIM_SIMCONN_H
#define SIM_SIMCONN_H
#include <stdbool.h>
#include <stdint.h>
#include "simnet.h"

#define SCONN_CLIENT 0
#define SCONN_SERVER 1

struct sconn;

struct sconn_ops {
	void (*ready)(struct sconn *c, void *data);                    /* client end: connected */
	void (*frame)(struct sconn *c, void *data, const void *msg);    /* a message (freed after) */
	void (*closed)(struct sconn *c, void *data, const char *why);   /* this end is closed */
};

/* Accepts a connection arriving at a host (sconn_accept, then true), or refuses it. */
typedef bool (*sconn_accept_fn)(void *data, struct sconn *c);

struct sframe;

struct sconn {
	struct sconns *set;
	uint64_t id;
	unsigned host[2];
	const uint32_t *life[2];  /* each end's process incarnation ... */
	uint32_t life_at[2];      /* ... when the end was made */
	bool open[2];             /* the end exists and has not closed */
	bool vanished[2];         /* the end went with its machine, unannounced */
	bool made[2];             /* the end was made (the server's once accepted) */
	bool ready;
	const struct sconn_ops *ops[2];
	void *data[2];
	struct sframe *q[2], *tail[2]; /* in flight toward end i, in order */
	uint64_t due_last[2];
	bool pumping[2];
	bool timer;               /* the handshake timeout is queued */
	unsigned refs;            /* holders besides the ends (sconn_hold) */
	struct sconn *prev, *next;
};

/* Every connection of a world. */
struct sconns {
	struct simnet *net;
	unsigned reset_pm;        /* messages that reset their connection, per mille */
	unsigned handshake_ms;    /* a client not ready by then closes */
	unsigned retransmit_ms;   /* a stalled queue tries again after this */
	bool down[SIMNET_MAX];    /* the machine is off: nothing answers there */
	sconn_accept_fn accept[SIMNET_MAX];
	void *accept_data[SIMNET_MAX];
	struct sconn *all;
	uint64_t ids;
	uint64_t opened, resets, sent, delivered, stalled;
};

void sconns_init(struct sconns *s, struct simnet *net);
/* Frees every connection left (after the world's events are gone). */
void sconns_free(struct sconns *s);
/* Who accepts connections at host h (NULL: nobody, they are refused). */
void sconns_listen(struct sconns *s, unsigned h, sconn_accept_fn fn, void *data);
/* The process at host h died: its ends close without callbacks; their peers are told
 * (as the kernel does for a process that exits), unless `silent` (the machine lost power:
 * sconns.down[h] is set until sconns_host_up). */
void sconns_host_died(struct sconns *s, unsigned h, bool silent);
void sconns_host_up(struct sconns *s, unsigned h);

/* A connection from host `from` (its process of incarnation *life) to host `to`. */
struct sconn *sconn_open(struct sconns *s, unsigned from, const uint32_t *life, unsigned to, const struct sconn_ops *ops,
			 void *data);
/* In an accept function: the server end's callbacks. */
void sconn_accept(struct sconn *c, const struct sconn_ops *ops, void *data);
/* Sends msg from end `side` (msg is released with release() once delivered or lost);
 * -1 (msg released) when that end is closed. Before the client is ready, messages wait
 * behind the handshake. */
int sconn_send(struct sconn *c, int side, void *msg, void (*release)(void *));
/* Closes end `side` (its closed callback runs now); the other end learns later. */
void sconn_close(struct sconn *c, int side, const char *why);
bool sconn_is_open(const struct sconn *c, int side);
/* Keeps c's memory past the close of its ends (a reply to send later), until put. */
void sconn_hold(struct sconn *c);
void sconn_put(struct sconn *c);

#endif
