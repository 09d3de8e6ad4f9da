/* The assignment documents a leader feeds to the nodes that watch theirs, as a value: each
 * node's agent holds a watch on the leader (over its link; the leader's own agent gets its
 * document directly). A new watch (after a reconnect too) gets its full document at once;
 * after that, when the state changed, each watched node gets what changed in what its agent
 * acts on: {node_id, subnet, peers, members, changed: [tasks new or changed], removed: [ids]}, a task
 * counting as changed when its desired state, generation (so spec), start time or image
 * holder did. A task's progress alone (assigned -> running, reported by the node itself)
 * sends nothing. The documents are all a node needs to run its tasks, so agents work
 * whatever their raft role.
 *
 * Scale: one pass over the tasks per push sorts them by watched node; per-task
 * fingerprints, kept per watch, decide what to send; the spec and image of each service
 * are looked up once per pass. A node given one more task receives that task, not its
 * whole set again.
 *
 * Secrets and configs: each task carries the values its spec names ("files": kind, name,
 * pinned version, target, uid, gid, mode and the value), so a value goes only to the node
 * that runs a task using it. A manager-capable node holds the data key: it gets the value
 * sealed as the log holds it ("data") and opens it itself (secret/secfs.h). A worker-only
 * node (node/worker.h) holds no key: the leader opens the value for it (feed_out.open)
 * and sends it as "value" on the watch's connection, inside the node port's TLS. Every
 * sealed kind a worker needs goes through the one function of feed.c that does this
 * (put_sealed): secrets and configs in "files", and in "registry" the credentials for
 * pulling a task's image the cluster does not hold ([{host, value}], for workers only: a
 * manager reads its own replica).
 *
 * No I/O: node/watch.c sends the documents on real connections and the simulation
 * (test/sim) on simulated ones, so both run the same rules. */
#ifndef ORCH_FEED_H
#define ORCH_FEED_H
#include <stdbool.h>
#include <stdint.h>
#include "codec/mp.h"
#include "state/store.h"

/* The full assignment document of node_id, a function of the state alone:
 * {node_id, subnet, peers: [{id, addr}], members: [id], tasks: [...]}: its tasks that have
 * not ended, the ready nodes that can hold image blobs (hollow ones cannot), and every
 * member's id (a worker admits no other node's certificate: node/daemon.c). */
void feed_doc(const struct store *s, uint64_t node_id, struct mpw *w);
/* Every document also carries "ca_tag": feed_ca_tag of the cluster's CA bundle, which a
 * node compares with its tls/ca.crt's to know a CA rotation moved on (node/carot.h). Not
 * a security check: what a node installs comes from the leader's reply. */
uint64_t feed_ca_tag(const char *bundle);

/* What a watch was last sent, per task. */
struct feed_sent {
	uint64_t id, fp;
};

struct feed_watcher {
	void *conn; /* the caller's handle of the connection the watch came on */
	uint64_t req_id, node_id;
	/* what it was last sent: subnet and peers, and each task, by id */
	uint64_t fp;
	struct feed_sent *sent_tasks;
	size_t nsent;
	bool sent;
	struct feed_watcher *next;
};

struct feed {
	struct feed_watcher *watchers;
	size_t nwatchers;
	uint64_t self_fp;      /* this node's own document, as last given to its agent */
	bool self_sent;
	bool built;            /* documents built at least once, at last_revision */
	uint64_t last_revision;
};

/* Where the documents go: a watcher's (doc: its msgpack bytes), and this node's own
 * (decoded, always whole). */
#define FEED_SPEC_KIND "spec"

struct feed_out {
	void (*send)(void *arg, const struct feed_watcher *x, const void *doc, size_t len);
	void (*self)(void *arg, const msgpack_object *doc);
	void *arg;
	/* Opens a sealed value (kind, name) with the leader's data key into out, for a worker;
	 * NULL where there is no key (a worker then gets "open_err" instead of the value).
	 * Kind FEED_SPEC_KIND: blob is a service's encoded spec, out the same spec with its
	 * environment opened (secret/envseal.h). */
	int (*open)(void *arg, const char *kind, const char *name, const void *blob, size_t n, struct buf *out, char *err);
};

/* One sealed value (kind, name; sealed: the msgpack bin the log holds, NULL when gone) as
 * the node it goes to gets it, as keys of the map being written: a manager "data" (sealed),
 * a worker "value" (opened with out->open) or "open_err" (why not). Every sealed kind sent
 * to a node goes through here. */
void feed_put_sealed(const struct feed_out *out, bool worker, const char *kind, const char *name,
		     const struct rawmp *sealed, struct mpw *w);
/* The registry credentials a worker needs to pull from registry host `domain` (an array:
 * [{host, value}], empty for a manager, which reads its own replica, or when none are
 * stored). Also used by orch image pull's fan-out (node/imagefan.c). */
void feed_registry_creds(const struct store *s, const struct feed_out *out, bool worker, const char *domain,
			 struct mpw *w);

/* A watch of node_id's assignments on conn (again on the same conn: a re-subscription);
 * its full document goes out now. True for a new watch. */
bool feed_add(struct feed *f, void *conn, uint64_t req_id, uint64_t node_id, const struct store *s,
	      const struct feed_out *out);
/* The watches made on conn end with it. */
void feed_conn_gone(struct feed *f, const void *conn);
/* This node just became leader: its own agent gets its document again. */
void feed_reset_self(struct feed *f);
/* The changes due now, to out: nothing when the state did not change since the last push. */
void feed_push(struct feed *f, const struct store *s, uint64_t self_id, const struct feed_out *out);
void feed_free(struct feed *f);

#endif
