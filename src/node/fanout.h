/* One CLI request answered by asking other nodes over the node port (orch logs, orch exec,
 * orch image pull | prune | disk): the node dials each source (this node included: every
 * one is asked the same way), the user sends its request when a source is ready and passes
 * its answers on as they come; a source that closes before its answer ended is reported by
 * the user. When the CLI goes (the pending's on_gone), every source is closed.
 *
 * Lifetime: the fan holds one reference per source not closed yet, plus one from
 * fanout_new until fanout_started (a source may close from within its own dial). When the
 * last one goes, ops->on_done sends the final answer (p->conn is NULL once the CLI has
 * gone) and frees the user's context; then the fan frees the pending and itself. */
#ifndef ORCH_FANOUT_H
#define ORCH_FANOUT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

struct daemon;
struct conn;
struct pending;
struct fanout;

struct fanout_src {
	struct fanout *f;
	struct conn *conn; /* NULL once closed */
	char name[64], addr[64];
	bool ended;  /* its answer is complete, or it gave up: nothing more is passed on */
	bool closed; /* the conn has closed: nothing more comes from it */
	void *ctx;   /* the user's, for this source */
};

struct fanout_ops {
	/* the source's conn is ready: send the request */
	void (*on_ready)(struct fanout_src *s, struct conn *c);
	/* one frame of a source not ended (its rc and more read already): true when it ends
	 * the source's answer (the fan then closes the source) */
	bool (*on_frame)(struct fanout_src *s, const msgpack_object *resp, int64_t rc, bool more);
	/* the source closed before its answer ended (why: NULL on a clean close) */
	void (*on_close)(struct fanout_src *s, const char *why);
	/* the fan is done: the final answer, and the user's context freed */
	void (*on_done)(struct fanout *f);
};

struct fanout {
	struct daemon *d;
	struct pending *p; /* the CLI's request; p->conn is NULL once the CLI has gone */
	struct fanout_src *src;
	size_t n, cap;
	size_t open; /* sources not closed yet, plus the holds of a start or a loop over them */
	const struct fanout_ops *ops;
	void *ctx; /* the user's */
};

/* Takes over p (its ctx and on_gone) for at most cap sources. */
struct fanout *fanout_new(struct daemon *d, struct pending *p, size_t cap, const struct fanout_ops *ops, void *ctx);
/* Dials one more source (name: how answers call it; ctx: the user's for it). */
struct fanout_src *fanout_dial(struct fanout *f, const char *name, const char *addr, void *ctx);
/* Every source is dialled: drops fanout_new's hold (the fan may be freed here). */
void fanout_started(struct fanout *f);
/* The fan of ops answering request req_id of the CLI conn c, or NULL. */
struct fanout *fanout_find(struct daemon *d, const struct conn *c, uint64_t req_id, const struct fanout_ops *ops);

#endif
