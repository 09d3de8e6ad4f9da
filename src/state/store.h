/* The replicated state machine: an in-memory typed object store that changes only by
 * applying committed commands, in log order, deterministically (no clock reads, no I/O:
 * any time a command needs travels inside it). Snapshots encode the whole store; the state
 * hash (sha256 of the snapshot encoding) lets tests assert that every node agrees. */
#ifndef ORCH_STORE_H
#define ORCH_STORE_H
#include "state/cmd.h"
#include "state/table.h"
#include "util/err.h"

/* The cluster record. secret_hash / worker_hash: sha256 of the manager / worker join
 * token's secret (net/token.h); manager_token / worker_token: the secrets sealed under the
 * data key (hex of a secret/seal.h blob), for orch token show; ca_certs: the CA bundle
 * (PEM, one or more certificates: every node trusts each); ca_key: the CA's private key
 * sealed under the data key (hex), so whichever manager leads can sign; cert_days: how
 * long issued certificates are valid; cert_secs: the same in seconds when set (orch init
 * --cert-expiry under a day, for tests), which wins over cert_days. During a CA rotation
 * (node/carot.h): ca_certs holds the new CA then the old, ca_key is the new CA's, ca_cross
 * the new CA cross-signed by the old and ca_old the old CA's fingerprint; both empty once
 * every node holds a certificate of the new CA. ca_gen: how many rotations there were. */
#define CLUSTER_FIELDS(X, S) \
	X(S, STR, id) X(S, STR, secret_hash) X(S, U64, created_at) X(S, U64, next_id) \
	X(S, U64, failure_timeout_ms) X(S, STR, worker_hash) X(S, STR, manager_token) X(S, STR, worker_token) \
	X(S, STR, ca_certs) X(S, STR, ca_key) X(S, U64, cert_days) X(S, U64, cert_secs) \
	X(S, STR, ca_cross) X(S, STR, ca_old) X(S, U64, ca_gen)
SCHEMA_DECLARE(cluster, CLUSTER_FIELDS)

/* state and availability: see state/lifecycle.h; runtime: what runs its tasks, "runc" |
 * "crun" | "hollow" (orch debug hollow: nothing runs; such a node stays a raft spare and
 * takes no container subnet), NULL for records of older versions. binds: the host path
 * prefixes its tasks may bind-mount (--allow-bind), a line each, as the node itself
 * reported them (node/nodecfg.c); NULL or "": none. worker: a worker-only node (orch join
 * --worker, or the worker token): never a raft voter or standby, it holds no log, no
 * replica of this state and no data key; the leader set it at the join from what the
 * joiner was allowed to be, never from the joiner's record (false in older records).
 * security: the node's container options (orch init/join --allow-privileged,
 * --userns-remap), a line each, as it reported them. cert_expires: when the certificate
 * the leader last issued to the node stops being valid (seconds since the epoch);
 * cert_ca: the fingerprint of the CA that signed it (node/renew.h). disk_alarm_at: when
 * the node reported its data dir's filesystem below its --disk-floor (0: no alarm;
 * node/diskwatch.h), with the free bytes it measured then, its floor and the directory. */
#define NODE_FIELDS(X, S) \
	X(S, U64, id) X(S, STR, name) X(S, STR, addr) X(S, NSTATE, state) X(S, AVAIL, availability) \
	X(S, LABELS, labels) X(S, U64, cpus_milli) X(S, U64, memory) X(S, U64, joined_at) \
	X(S, U64, state_at) X(S, STR, version) X(S, U64, subnet) X(S, STR, runtime) X(S, STR, binds) \
	X(S, BOOL, worker) X(S, STR, security) X(S, U64, cert_expires) X(S, STR, cert_ca) X(S, U64, disk_alarm_at) \
	X(S, U64, disk_free) X(S, U64, disk_floor) X(S, STR, disk_dir)
SCHEMA_DECLARE(node, NODE_FIELDS)

/* Lines of a node's security text. */
#define NODE_ALLOW_PRIVILEGED "allow-privileged"
#define NODE_USERNS_REMAP "userns-remap=" /* followed by "BASE:COUNT" */
/* The line of n's security text that is opt or starts with it, NULL when none. */
const char *node_allows(const struct node *n, const char *opt);

/* update_state: "" (none yet), "updating", "paused", "rolling_back", "completed",
 * "rolled_back"; update_msg says why it paused or rolled back. */
/* A service: its canonical spec (spec/spec.h encoding), the generation that changes with
 * the spec, and the desired replica count (changed by orch scale without a new
 * generation). prev_spec keeps the previous generation for rollback. Both are kept
 * decoded too (service_spec()), rebuilt only when their bytes change: the controllers
 * read them on every tick. */
#define SERVICE_FIELDS(X, S) \
	X(S, U64, id) X(S, STR, name) X(S, STR, project) X(S, U64, generation) X(S, U64, replicas) \
	X(S, SPEC, spec) X(S, SPEC, prev_spec) X(S, U64, created_at) X(S, U64, updated_at) \
	X(S, STR, update_state) X(S, STR, update_msg) X(S, U64, update_at) X(S, LABELS, port_errors)
SCHEMA_DECLARE(service, SERVICE_FIELDS)

/* A task: one replica (slot) of one generation of a service, placed on one node.
 * desired and state: see state/lifecycle.h (the moves allowed). A restart is a new task
 * in the same slot (restarts counts them); terminal tasks are kept as history.
 * The newest task of a slot carries the slot's back-off (orchestrator/reconcile.c):
 * failures is how many tasks of the slot ended in a row before it without running for
 * restart_policy.window, start_after the wall-clock time (ms, the leader's, recorded in
 * the command that created it) before which it is not placed; started_at is when it
 * became running (its node's clock, as state_at), 0 if it never did. endpoint: where its
 * published ports are reached (state/endpoint.h). */
#define TASK_FIELDS(X, S) \
	X(S, U64, id) X(S, U64, service_id) X(S, STR, service) X(S, U64, slot) X(S, U64, generation) \
	X(S, U64, node_id) X(S, DESIRED, desired) X(S, TSTATE, state) X(S, STR, err) X(S, I64, exit_code) \
	X(S, U64, restarts) X(S, U64, created_at) X(S, U64, state_at) X(S, U64, start_after) \
	X(S, ENDPOINTS, endpoint) X(S, STR, ip) X(S, STR, health) X(S, BOOL, oom) X(S, STR, ready) \
	X(S, STR, check_output) X(S, U64, failures) X(S, U64, started_at)
SCHEMA_DECLARE(task, TASK_FIELDS)

/* An image loaded into the cluster: info is image_info_encode() (image/image_load.h);
 * node_id is the node that holds its blobs first (others fetch them from peers). */
#define IMAGE_FIELDS(X, S) \
	X(S, STR, name) X(S, STR, digest) X(S, U64, size) X(S, RAW, info) X(S, U64, loaded_at) \
	X(S, U64, node_id)
SCHEMA_DECLARE(image, IMAGE_FIELDS)

/* A named volume (orch-volume(1)): a directory on one node, created there when the
 * first task using it was placed (orchestrator/reconcile.c); every later task using it
 * is placed on that node only, as Swarm's local driver behaves. service: the service
 * whose task created it; labels: its top-level declaration's. */
#define VOLUME_FIELDS(X, S) \
	X(S, STR, name) X(S, U64, node_id) X(S, U64, created_at) X(S, STR, service) X(S, LABELS, labels)
SCHEMA_DECLARE(volume, VOLUME_FIELDS)

/* Small cluster-wide key/value settings (also what the write benchmark writes). */
#define KV_FIELDS(X, S) X(S, STR, key) X(S, STR, value) X(S, U64, rev)
SCHEMA_DECLARE(kv, KV_FIELDS)

/* A secret, a config or registry credentials (kind "secret", "config", "registry": the
 * last named by registry host, made by orch registry login), one object per version:
 * versions count from 1 per kind and name, the newest is the current one, older ones stay
 * while a service's spec or previous spec names them (state/apply_secret.c). data is the
 * value sealed under the cluster data key (secret/seal.h), a msgpack bin: the value is
 * never in the log or a snapshot in clear. size: of the value. */
#define SECRET_FIELDS(X, S) \
	X(S, U64, id) X(S, STR, kind) X(S, STR, name) X(S, U64, version) X(S, U64, size) X(S, U64, created_at) \
	X(S, RAW, data)
SCHEMA_DECLARE(secret, SECRET_FIELDS)

/* A user of the remote API (orch-user(1)): role "viewer", "operator" or "admin" (net/peer.h);
 * serial: of the client certificate the cluster CA issued it (hex); a request made with
 * any other certificate of that name is refused (net/access.h). */
#define USER_FIELDS(X, S) X(S, STR, name) X(S, STR, role) X(S, STR, serial) X(S, U64, created_at)
SCHEMA_DECLARE(user, USER_FIELDS)

/* Request identity, per origin node: the last request applied of the node's current
 * session (a random id drawn at each process start) and its result, so that the same
 * entry applied again (a retry, or a "lost" entry that committed after all) answers what
 * the first one did and changes nothing. No clock is involved: a restarted node draws a
 * new session and counts from 1 again. seq is the high-water mark of format-1 commands
 * (origin + wall-clock sequence), kept so that old logs replay as they first applied. */
#define ORIGIN_FIELDS(X, S) \
	X(S, U64, id) X(S, U64, seq) X(S, U64, session) X(S, U64, last) X(S, I64, rc) X(S, STR, msg) \
	X(S, U64, obj)
SCHEMA_DECLARE(origin, ORIGIN_FIELDS)

/* What the cluster decided and why (orch events): kind is "scheduled", "rescheduled",
 * "restarting", "restart_limit", "scaled", "paused", "rolling_back", "rolled_back",
 * "rollout_completed", "node_down" or "node_ready". Recorded from an "events"
 * list that any command body may carry (applied only when the command changed something),
 * ids increase, and only the newest EVENTS_MAX are kept (apply_events.c). */
#define EVENT_FIELDS(X, S) \
	X(S, U64, id) X(S, U64, at) X(S, STR, kind) X(S, STR, service) X(S, U64, task) X(S, U64, node) \
	X(S, STR, message)
SCHEMA_DECLARE(event, EVENT_FIELDS)
#define EVENTS_MAX 1000

struct store {
	bool has_cluster;
	struct cluster cluster;
	struct table nodes, kv, origins, services, tasks, images, events, volumes, secrets, users;
	uint64_t revision; /* bumped by every command that changed something */
};

struct apply_res {
	int rc;
	char msg[ERR_LEN];
	uint64_t id; /* id of the object created or touched, when there is one */
	/* The entry names a command type or payload version this binary does not know: a
	 * newer node wrote it. Nothing changed, and the entry must not be skipped either (the
	 * nodes that know it apply it: skipping would part this replica from theirs): the
	 * node stops applying at it until its binary is upgraded (raft/consensus.c). */
	bool too_new;
};

void store_init(struct store *s);
void store_free(struct store *s);

/* Applies one command as it came out of the log. Never fails in the Raft sense: bad or
 * unknown commands are reported in res and change nothing. */
void store_apply(struct store *s, const void *buf, size_t len, struct apply_res *res);

void store_snapshot(const struct store *s, struct mpw *w);
int store_restore(struct store *s, const void *buf, size_t len, char *err);
void store_hash(const struct store *s, char out[65]);

/* Who asked for a command: the node that built it (origin), that node's process start
 * (session, random, never 0) and a counter within the session (seq, from 1). A zero
 * origin, session or seq means "no identity": the command is never taken for a retry. */
struct req_id {
	uint64_t origin, session, seq;
};

/* Builds a log entry: an 8-byte header (magic "OC", format, payload length) followed by
 * the msgpack command {t, v, o, n, s, b}, zero-padded to a multiple of 8 bytes (libraft
 * requires it). id may be NULL (no identity). */
void *cmd_build(enum cmd type, const struct req_id *id, const void *body, size_t body_len, size_t *out_len);
/* Frames an already packed command (what cmd_build does after packing). */
void *cmd_frame(const void *payload, size_t n, size_t *out_len);
/* Decodes the header; returns 0 and the payload bounds, or -1. */
int cmd_unframe(const void *buf, size_t len, const uint8_t **payload, size_t *payload_len);
/* A leader takes an entry built by another node only from that node: 0 when the entry's
 * origin is `peer`, else E_AUTH (or E_INVAL for an undecodable entry) with a message. A
 * worker-only node (worker) may submit only what its own parts report (its tasks, its
 * images, its settings, port errors), never a command that manages the cluster. */
/* Decodes an entry into r (the caller frees it when this returns 0): its type and body. */
int cmd_peek(const void *buf, size_t len, struct mpr *r, enum cmd *type, const msgpack_object **body, char *err);
int cmd_check_origin(const void *buf, size_t len, uint64_t peer, bool worker, char *err);

/* What a command's apply function (state/cmd.h, state/apply.h) gets: its body map, checked
 * against the type's fields, and who asked. */
struct cmd_ctx {
	const msgpack_object *body;
	struct req_id req;
	/* the entry's format checks state changes against state/lifecycle.h (older entries
	 * replay under the rules they were written for) */
	bool tables;
};

/* The service's spec (or the previous generation's), decoded once when it was set; NULL
 * if it does not decode (never committed so: service.put checks it). */
struct svc_spec;
static inline const struct svc_spec *service_spec(const struct service *v)
{
	return v->spec.dec;
}
static inline const struct svc_spec *service_prev_spec(const struct service *v)
{
	return v->prev_spec.dec;
}

struct node *store_node_by_name(const struct store *s, const char *name);
struct service *store_service_by_name(const struct store *s, const char *name);
/* The image a spec's image: names, spelled as Docker allows ("nginx" finds
 * docker.io/library/nginx:latest), or recorded under that exact name by an older binary. */
struct image *store_image_by_name(const struct store *s, const char *name);
/* The task has ended (complete, failed, shutdown, rejected, orphaned). */
bool task_terminal(const struct task *t);
/* apply_events.c: records the valid entries of an "events" array (others are skipped),
 * stamped `at` unless they carry their own, then drops the oldest beyond EVENTS_MAX. */
void events_apply(struct store *s, const msgpack_object *events, uint64_t at);
/* A node of orch debug hollow (runtime "hollow"): nothing runs on it. */
bool node_hollow(const struct node *n);
/* A node that stays a raft spare whatever the role manager wants: hollow or a worker. */
bool node_spare_only(const struct node *n);
/* Resolves a node by name, full id in hex, or unique id prefix. */
struct node *store_node_find(const struct store *s, const char *ref);
/* apply_secret.c: the newest version of a secret (kind "secret", "config", "registry"),
 * or a given version; NULL when there is none. */
struct secret *store_secret_latest(const struct store *s, const char *kind, const char *name);
struct secret *store_secret_version(const struct store *s, const char *kind, const char *name, uint64_t version);
/* Does the spec name (kind, name), at version (0: any)? */
bool store_spec_uses_secret(const struct svc_spec *sp, const char *kind, const char *name, uint64_t version);

#endif
