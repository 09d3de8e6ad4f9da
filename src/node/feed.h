/* The assignment documents a leader feeds to the nodes that watch theirs, as a value: the
 * document of a node (a function of the replicated state alone), which watcher gets a
 * document when (each new watch, or a watch made again after a reconnect, gets the full
 * document first; later ones only when it changed), and the leader's own node's document.
 * No I/O: node/watch.c sends the documents on real connections and the simulation
 * (test/sim) on simulated ones, so both run the same rules. */
#ifndef ORCH_FEED_H
#define ORCH_FEED_H
#include <stdbool.h>
#include <stdint.h>
#include "codec/mp.h"
#include "state/store.h"

/* The assignment document of node_id:
 * {node_id, subnet, tasks: [...], peers: [{id, addr}]} */
void feed_doc(const struct store *s, uint64_t node_id, struct mpw *w);

struct feed_watcher {
	void *conn; /* the caller's handle of the connection the watch came on */
	uint64_t req_id, node_id;
	uint8_t last[32]; /* hash of the document last sent */
	bool sent;
	struct feed_watcher *next;
};

struct feed {
	struct feed_watcher *watchers;
	uint8_t self_last[32]; /* this node's own document, as last given to its agent */
	bool self_sent;
	bool built;            /* documents built at least once, at last_revision */
	uint64_t last_revision;
};

/* Where feed_push puts the documents: a watcher's (doc: its msgpack bytes), and this
 * node's own (decoded). */
struct feed_out {
	void (*send)(void *arg, const struct feed_watcher *x, const void *doc, size_t len);
	void (*self)(void *arg, const msgpack_object *doc);
	void *arg;
};

/* A watch of node_id's assignments on conn (again on the same conn: a re-subscription). */
void feed_add(struct feed *f, void *conn, uint64_t req_id, uint64_t node_id);
/* The watches made on conn end with it. */
void feed_conn_gone(struct feed *f, const void *conn);
/* This node just became leader: its own agent gets its document again. */
void feed_reset_self(struct feed *f);
/* The documents due now, to out: nothing when the state did not change since the last
 * push and every watcher has had its first document. */
void feed_push(struct feed *f, const struct store *s, uint64_t self_id, const struct feed_out *out);
void feed_free(struct feed *f);

#endif
