/* What a node offers the parts it hosts (agent, routing mesh, DNS, metrics): the narrow
 * interface they use instead of reaching into the node. A part gets a `const struct host *`
 * when it is created and keeps it for its life; several nodes in one process each give
 * their parts their own host, and a test or simulation can give a part a host of its own
 * (a virtual clock, a submit that records commands). */
#ifndef ORCH_HOST_H
#define ORCH_HOST_H
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>
#include "node/identity.h"
#include "node/regopts.h"
#include "state/store.h"
#include "util/clock.h"

/* rc: 0 once applied, else the error (res->msg says why). */
typedef void (*host_submit_cb)(void *data, int rc, const struct apply_res *res);

struct host {
	void *node; /* the node's own, given back to the functions below */
	uv_loop_t *loop;
	const struct clock *clock;
	const struct identity *ident;
	const char *data_dir;
	const struct store *store; /* this node's replica of the state, read only */
	const struct regopts *registry; /* how it pulls images (node/regopts.h); read only */
	/* A command through raft: applied here when this node leads, forwarded otherwise.
	 * cb (may be NULL) gets the result. */
	int (*submit)(void *node, enum cmd type, const void *body, size_t len, host_submit_cb cb, void *data,
		      char *err);
	/* True once the node is shutting down: start nothing new. */
	bool (*stopping)(void *node);
};

static inline int host_submit(const struct host *h, enum cmd type, const void *body, size_t len, host_submit_cb cb,
			      void *data, char *err)
{
	return h->submit(h->node, type, body, len, cb, data, err);
}

static inline bool host_stopping(const struct host *h)
{
	return h->stopping(h->node);
}

#endif
