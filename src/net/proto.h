/* The RPC protocol, written once: every operation a node serves, with its request fields
 * (typed, required or not), where it is served and by which handler. From this list come
 * the enum that names an op everywhere (OP_KV_SET, never "kv.set"), one request struct per
 * op (struct req_kv_set), the decoder the node's dispatch runs before any handler (a
 * missing field or one of the wrong type is refused with a message naming it) and the
 * encoder every client uses (the CLI, the link to the leader, the log fan-out, the blob
 * fetch, the forwarding of entries).
 *
 * A request is a map {op, id, <fields>}; a reply is a map {id, rc, err?, ...} (see
 * net/rpc_reply.h). Unknown fields are ignored, so a newer client may add some.
 *
 *   X(ID, low, "name", via, run, need, handler)
 *     via: ANY (local socket or node port), LOCAL (the local socket: this machine's
 *          operator; what reads or acts on the node's own machine, e.g. a path there),
 *          PEER (the node port: other nodes and remote clients)
 *     run: HERE, LEADER (a follower forwards it to the leader and relays the reply),
 *          LEADER_ONLY (a follower refuses it, naming the leader: the caller goes there)
 *     need: who may call it (net/access.h): VIEWER (reads), OPERATOR (deploy, scale,
 *          rollout, logs, removal of services, secrets and images), ADMIN (nodes, users,
 *          tokens, CA, registry credentials, volumes), NODE (only between nodes, never a
 *          user), ANY (no certificate needed: join, which proves a token)
 *   REQ_<low>(F, S): the request's fields, a field list of codec/fields.h. */
#ifndef ORCH_PROTO_H
#define ORCH_PROTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/fields.h"

#define PROTO_OPS(X) \
	X(PING, ping, "ping", ANY, HERE, VIEWER, rpc_ping) \
	X(STATUS, status, "status", ANY, HERE, VIEWER, rpc_status) \
	X(NODES, nodes, "nodes", ANY, HERE, VIEWER, rpc_nodes) \
	X(KV_GET, kv_get, "kv.get", ANY, HERE, VIEWER, rpc_kv_get) \
	X(KV_SET, kv_set, "kv.set", ANY, HERE, ADMIN, rpc_kv_set) \
	X(NODE_UPDATE, node_update, "node.update", ANY, HERE, ADMIN, rpc_node_update) \
	X(NODE_RM, node_rm, "node.rm", ANY, LEADER, ADMIN, rpc_node_rm) \
	X(NODE_LEAVE, node_leave, "node.leave", ANY, LEADER, NODE, rpc_node_leave) \
	X(LEAVE, leave, "leave", LOCAL, HERE, ADMIN, rpc_leave) \
	X(JOIN, join, "join", PEER, LEADER_ONLY, ANY, rpc_join) \
	X(HB, hb, "hb", PEER, LEADER_ONLY, NODE, rpc_hb) \
	X(WATCH, watch, "watch", PEER, LEADER_ONLY, NODE, rpc_watch) \
	X(WHOIS, whois, "whois", PEER, HERE, NODE, rpc_whois) \
	X(APPLY, apply, "apply", PEER, LEADER_ONLY, NODE, rpc_apply) \
	X(EVENTS, events, "events", ANY, HERE, VIEWER, rpc_events) \
	X(TOP, top, "top", ANY, LEADER, VIEWER, rpc_top) \
	X(SERVICE_PUT, service_put, "service.put", ANY, LEADER, OPERATOR, rpc_service_put) \
	X(SERVICE_SCALE, service_scale, "service.scale", ANY, HERE, OPERATOR, rpc_service_scale) \
	X(SERVICE_UPDATE, service_update, "service.update", ANY, HERE, OPERATOR, rpc_service_update) \
	X(SERVICE_RM, service_rm, "service.rm", ANY, HERE, OPERATOR, rpc_service_rm) \
	X(SERVICES, services, "services", ANY, HERE, VIEWER, rpc_services) \
	X(SERVICE_GET, service_get, "service.get", ANY, HERE, VIEWER, rpc_service_get) \
	X(TASKS, tasks, "tasks", ANY, HERE, VIEWER, rpc_tasks) \
	X(IMAGES, images, "images", ANY, HERE, VIEWER, rpc_images) \
	X(IMAGE_RM, image_rm, "image.rm", ANY, HERE, OPERATOR, rpc_image_rm) \
	X(IMAGE_LOAD, image_load, "image.load", LOCAL, HERE, OPERATOR, ingest_start) \
	X(LOGS_CLUSTER, logs_cluster, "logs.cluster", ANY, HERE, OPERATOR, logfan_start) \
	X(LOGS, logs, "logs", ANY, HERE, OPERATOR, rpc_logs) \
	X(EXEC, exec, "exec", ANY, HERE, OPERATOR, execfan_start) \
	X(EXEC_TASK, exec_task, "exec.task", PEER, HERE, NODE, rpc_exec_task) \
	X(EXEC_INPUT, exec_input, "exec.input", ANY, HERE, OPERATOR, execfan_input) \
	X(BLOB_GET, blob_get, "blob.get", ANY, HERE, NODE, rpc_blob_get) \
	X(IMAGE_PULL, image_pull, "image.pull", ANY, HERE, OPERATOR, imagefan_pull) \
	X(IMAGE_PRUNE, image_prune, "image.prune", ANY, HERE, OPERATOR, imagefan_prune) \
	X(IMAGE_DISK, image_disk, "image.disk", ANY, HERE, VIEWER, imagefan_disk) \
	X(IMAGE_NODE, image_node, "image.node", PEER, HERE, NODE, imagework_start) \
	X(IMAGE_RESOLVE, image_resolve, "image.resolve", ANY, LEADER, VIEWER, resolve_check) \
	X(VOLUMES, volumes, "volumes", ANY, HERE, VIEWER, rpc_volumes) \
	X(VOLUME_GET, volume_get, "volume.get", ANY, HERE, VIEWER, rpc_volume_get) \
	X(VOLUME_RM, volume_rm, "volume.rm", ANY, LEADER, ADMIN, rpc_volume_rm) \
	X(VOLUME_DROP, volume_drop, "volume.drop", PEER, HERE, NODE, rpc_volume_drop) \
	X(SECRET_CREATE, secret_create, "secret.create", ANY, HERE, OPERATOR, rpc_secret_create) \
	X(SECRETS, secrets, "secrets", ANY, HERE, VIEWER, rpc_secrets) \
	X(SECRET_GET, secret_get, "secret.get", ANY, HERE, VIEWER, rpc_secret_get) \
	X(SECRET_RM, secret_rm, "secret.rm", ANY, HERE, OPERATOR, rpc_secret_rm) \
	X(USER_ADD, user_add, "user.add", ANY, LEADER, ADMIN, rpc_user_add) \
	X(USERS, users, "users", ANY, HERE, ADMIN, rpc_users) \
	X(USER_RM, user_rm, "user.rm", ANY, LEADER, ADMIN, rpc_user_rm) \
	X(UNLOCK, unlock, "unlock", LOCAL, HERE, ADMIN, rpc_unlock) \
	X(UNLOCK_KEY, unlock_key, "unlock.key", LOCAL, HERE, ADMIN, rpc_unlock_key) \
	X(AUTOLOCK, autolock, "cluster.autolock", LOCAL, HERE, ADMIN, rpc_autolock) \
	X(TOKEN_SHOW, token_show, "token.show", ANY, HERE, ADMIN, rpc_token_show) \
	X(TOKEN_ROTATE, token_rotate, "token.rotate", ANY, HERE, ADMIN, rpc_token_rotate) \
	X(CERT_RENEW, cert_renew, "cert.renew", PEER, LEADER_ONLY, NODE, rpc_cert_renew) \
	X(CA_ROTATE, ca_rotate, "ca.rotate", ANY, HERE, ADMIN, rpc_ca_rotate) \
	X(SNAPSHOT_SAVE, snapshot_save, "snapshot.save", LOCAL, HERE, ADMIN, rpc_snapshot_save)

#define PROTO_NAME_MAX 63 /* service, project and node names */
#define PROTO_EXEC_ARGS_MAX 1024        /* arguments of an orch exec command */
#define PROTO_EXEC_ARGS_BYTES (32u << 10) /* and their bytes in all */

/* The version of what nodes say to each other: the ops and their fields here, the raft
 * commands (state/cmd.h) and their payload versions, the stored objects' fields. A
 * joiner sends it (join.proto; orch 0.15.0 and older sent none: 1) and a leader admits
 * only a joiner at least as new as itself: the log it hands over may hold what an older
 * binary cannot apply. A cluster upgrades in place (orch(8) UPGRADES). Bump it with any
 * new op, command type, payload version or field whose absence an older node would
 * misread. */
#define PROTO_VERSION 2

#define REQ_ping(F, S)
#define REQ_status(F, S)
/* self: the node asking for itself (a worker forwarding orch nodes): marked "self" */
#define REQ_nodes(F, S) F(S, U64, self, OPT, 0)
#define REQ_kv_get(F, S) F(S, STR, key, REQ, 256)
#define REQ_kv_set(F, S) F(S, STR, key, REQ, 256) F(S, STR, value, REQ, 0)
/* node: a name, an id in hex or a unique id prefix; labels: {key: value or nil (remove)} */
#define REQ_node_update(F, S) \
	F(S, STR, node, REQ, 127) F(S, STR, availability, OPT, 15) F(S, MAP, labels, OPT, 0)
#define REQ_node_rm(F, S) F(S, STR, node, REQ, 127) F(S, BOOL, force, OPT, 0)
#define REQ_node_leave(F, S) F(S, U64, node_id, REQ, 0)
#define REQ_leave(F, S)
/* node: the joiner's record (state/store.h node schema); secret: the join token's secret
 * (64 hex, net/token.h), which says manager or worker; csr: the joiner's CSR (PEM), signed
 * into its certificate; worker: a manager-token joiner asks to be a worker-only node (orch
 * join --worker; the worker token makes one whatever this says). The reply: cert, ca (the
 * bundle), and for a manager the data key wrapped under the secret (secret/datakey.h). */
#define REQ_join(F, S) \
	F(S, MAP, node, REQ, 0) F(S, STR, secret, REQ, 0) F(S, STR, csr, REQ, 0) F(S, BOOL, worker, OPT, 0) \
	F(S, U64, proto, OPT, 1)
/* stats: the sender's figures (metrics/node_stats.h); applied: its applied raft index */
#define REQ_hb(F, S) F(S, U64, node_id, REQ, 0) F(S, MAP, stats, OPT, 0) F(S, U64, applied, OPT, 0)
#define REQ_watch(F, S) F(S, U64, node_id, REQ, 0)
#define REQ_whois(F, S) F(S, U64, node_id, OPT, 0)
/* entry: a log entry built by the sending node (state/store.h cmd_build) */
#define REQ_apply(F, S) F(S, BIN, entry, REQ, 0)
/* limit 0: as many as are kept */
#define REQ_events(F, S) F(S, U64, since, OPT, 0) F(S, U64, limit, OPT, 0)
#define REQ_top(F, S)
/* spec: a service spec (spec/spec.h encoding) */
#define REQ_service_put(F, S) F(S, MAP, spec, REQ, 0) F(S, STR, project, OPT, PROTO_NAME_MAX)
#define REQ_service_scale(F, S) F(S, STR, name, REQ, PROTO_NAME_MAX) F(S, U64, replicas, REQ, 0)
/* action: pause, resume or undo */
#define REQ_service_update(F, S) F(S, STR, name, REQ, PROTO_NAME_MAX) F(S, STR, action, REQ, 15)
#define REQ_service_rm(F, S) F(S, STR, name, REQ, PROTO_NAME_MAX)
#define REQ_services(F, S)
#define REQ_service_get(F, S) F(S, STR, name, REQ, PROTO_NAME_MAX)
/* all: terminal tasks too */
#define REQ_tasks(F, S) F(S, STR, service, OPT, PROTO_NAME_MAX) F(S, BOOL, all, OPT, 0)
#define REQ_images(F, S)
#define REQ_image_rm(F, S) F(S, STR, name, REQ, 299)
/* path: an archive on the node's machine (absolute) */
#define REQ_image_load(F, S) F(S, STR, path, REQ, 4095)
/* a task (task_id not 0) or a service's tasks; tail -1: all lines */
#define REQ_logs_cluster(F, S) \
	F(S, U64, task_id, OPT, 0) F(S, STR, service, OPT, PROTO_NAME_MAX) F(S, I64, tail, OPT, -1) \
	F(S, BOOL, follow, OPT, 0)
#define REQ_logs(F, S) F(S, U64, task_id, REQ, 0) F(S, I64, tail, OPT, -1) F(S, BOOL, follow, OPT, 0)
/* orch exec (node/execfan.h): target "SERVICE[.SLOT]" or a task id; cmd: the command's
 * arguments (strings); stdin: input follows in exec.input frames; tty: on a terminal of
 * rows x cols. exec.task: the same for one task, asked of the node that runs it. */
#define REQ_exec(F, S) \
	F(S, STR, target, REQ, 200) F(S, ARR, cmd, REQ, 0) F(S, BOOL, tty, OPT, 0) F(S, BOOL, stdin, OPT, 0) \
	F(S, U64, rows, OPT, 0) F(S, U64, cols, OPT, 0)
#define REQ_exec_task(F, S) \
	F(S, U64, task_id, REQ, 0) F(S, ARR, cmd, REQ, 0) F(S, BOOL, tty, OPT, 0) F(S, BOOL, stdin, OPT, 0) \
	F(S, U64, rows, OPT, 0) F(S, U64, cols, OPT, 0)
/* to the exec the request session (its id) started on this connection: input bytes, the
 * end of input, a new terminal size (rows and cols, both or neither). Answered only when
 * there is no such session (an error with the input's own id). */
#define REQ_exec_input(F, S) \
	F(S, U64, session, REQ, 0) F(S, BIN, data, OPT, 0) F(S, BOOL, eof, OPT, 0) F(S, U64, rows, OPT, 0) \
	F(S, U64, cols, OPT, 0)
/* len 0: 1 MiB */
#define REQ_blob_get(F, S) F(S, STR, digest, REQ, 79) F(S, U64, offset, OPT, 0) F(S, U64, len, OPT, 0)
/* ref: an image reference (node/imagefan.h: pulled on every ready node, progress streamed) */
#define REQ_image_pull(F, S) F(S, STR, ref, REQ, 600)
/* ref: what a deploy would run for it (node/resolve.h), resolved by the leader */
#define REQ_image_resolve(F, S) F(S, STR, ref, REQ, 600)
#define REQ_image_prune(F, S)
#define REQ_image_disk(F, S)
/* one node's share (node/imagework.h): action pull (ref pinned), gc (grace_s; drop: image
 * names no longer kept) or disk */
/* creds: to a worker, the registry credentials for ref opened (node/feed.h feed_registry_creds) */
#define REQ_image_node(F, S) \
	F(S, STR, action, REQ, 15) F(S, STR, ref, OPT, 600) F(S, U64, grace_s, OPT, 0) F(S, ARR, drop, OPT, 0) \
	F(S, ARR, creds, OPT, 0)

/* kind: "manager", "worker", or absent for both */
#define REQ_token_show(F, S) F(S, STR, kind, OPT, 16)
#define REQ_token_rotate(F, S) F(S, STR, kind, OPT, 16)
#define REQ_volumes(F, S)
#define REQ_volume_get(F, S) F(S, STR, name, REQ, 127)
/* force: forget the volume although its node is down (its directory stays there) */
#define REQ_volume_rm(F, S) F(S, STR, name, REQ, 127) F(S, BOOL, force, OPT, 0)
/* the leader asks the node that holds a volume to delete its directory */
#define REQ_volume_drop(F, S) F(S, STR, name, REQ, 127) \
/* kind: secret (default), config or registry; value: in clear, sealed by the node that
 * receives it (secret/secrets.h) before it goes anywhere; the same value again changes
 * nothing */
#define REQ_secret_create(F, S) F(S, STR, kind, OPT, 15) F(S, STR, name, REQ, 255) F(S, BIN, value, REQ, 0)
#define REQ_secrets(F, S) F(S, STR, kind, OPT, 15)
#define REQ_secret_get(F, S) F(S, STR, kind, OPT, 15) F(S, STR, name, REQ, 255)
#define REQ_secret_rm(F, S) F(S, STR, kind, OPT, 15) F(S, STR, name, REQ, 255)
/* autolock (node/autolock.h): key: the unlock key as the operator holds it; rotate: a
 * new one for the cluster; enable: autolock on or off */
#define REQ_unlock(F, S) F(S, STR, key, REQ, 127)
#define REQ_unlock_key(F, S) F(S, BOOL, rotate, OPT, 0)
#define REQ_autolock(F, S) F(S, BOOL, enable, REQ, 0)
/* a node's CSR for a new certificate (node/renew.h): the node and its role are those of
 * the connection's certificate and the state, never the request's. The reply: cert, ca */
#define REQ_cert_renew(F, S) F(S, STR, csr, REQ, 0)
/* cert, key: the new CA (PEM) the operator gives; none: one made by the node
 * (node/carot.h) */
/* path: where the node writes the backup file (absolute, on its machine; mode 0600);
 * kek, salt: seal the data key under kek, which the CLI derived from the operator's
 * passphrase with salt; with_key: carry the data key in clear (state/snapfile.h) */
#define REQ_snapshot_save(F, S) \
	F(S, STR, path, REQ, 4095) F(S, BIN, kek, OPT, 0) F(S, BIN, salt, OPT, 0) F(S, BOOL, with_key, OPT, 0)
#define REQ_ca_rotate(F, S) F(S, STR, cert, OPT, 0) F(S, STR, key, OPT, 0)

/* csr: a certificate signing request (PEM) for the key the client made and keeps; the
 * leader has the cluster CA sign it for name and role (node/rpc_user.c) */
#define REQ_user_add(F, S) F(S, STR, name, REQ, 63) F(S, STR, role, REQ, 15) F(S, STR, csr, REQ, 16384)
#define REQ_users(F, S)
#define REQ_user_rm(F, S) F(S, STR, name, REQ, 63)

/* The largest request frame each op may arrive in on the node port, in bytes (net/frame.h):
 * most requests are a few names and numbers; the ops listed carry documents. An op not
 * listed gets PROTO_FRAME_SMALL. A peer that is not a proved node of the cluster (a remote
 * client) gets at most PROTO_FRAME_CLIENT whatever the op. The local socket and replies
 * (read by the side that dialled) are held only to FRAME_MAX. */
#define PROTO_FRAME_SMALL (64u << 10)
#define PROTO_FRAME_CLIENT (4u << 20)
#define PROTO_FRAME_SIZES(X) \
	X(APPLY, 32u << 20)        /* a log entry a node built: a spec, an image record */ \
	X(JOIN, 1u << 20)          /* the joiner's node record */ \
	X(HB, 1u << 20)            /* a node's figures */ \
	X(IMAGE_NODE, 4u << 20)    /* the image names a gc drops */ \
	X(NODE_UPDATE, 1u << 20)   /* labels */ \
	X(KV_SET, 4u << 20)        \
	X(SERVICE_PUT, 4u << 20)   /* a service spec */ \
	X(SECRET_CREATE, 4u << 20) /* a secret's value */

enum op {
#define PROTO_ENUM_(ID, low, name, via, run, need, handler) OP_##ID,
	PROTO_OPS(PROTO_ENUM_)
#undef PROTO_ENUM_
	OP__COUNT
};

/* The request structs: the request id first (every struct starts with it), then the
 * fields in table order. */
#define PROTO_STRUCT_(ID, low, name, via, run, need, handler) \
	struct req_##low { \
		uint64_t id; \
		REQ_##low(FL_MEMBER_, low) \
	};
PROTO_OPS(PROTO_STRUCT_)
#undef PROTO_STRUCT_

enum proto_via { VIA_ANY, VIA_LOCAL, VIA_PEER };
enum proto_run { RUN_HERE, RUN_LEADER, RUN_LEADER_ONLY };
enum proto_need { NEED_ANY, NEED_VIEWER, NEED_OPERATOR, NEED_ADMIN, NEED_NODE };

struct proto_op {
	const char *name;
	enum proto_via via;
	enum proto_run run;
	enum proto_need need;
	const struct fl_field *fields;
	size_t nfields;
	size_t size; /* of its request struct */
};

extern const struct proto_op proto_ops[OP__COUNT];

static inline const char *proto_name(enum op op)
{
	return proto_ops[op].name;
}

/* The op a request names; -1 when it names none. */
int proto_lookup(const msgpack_object *name, enum op *op);
/* Checks a request map against the op's fields and decodes it into a new request struct
 * (*args, one allocation: free() it; its strings and documents live as long as it and the
 * request). E_INVAL with a message naming the field when one is missing or wrong. */
int proto_decode(enum op op, const msgpack_object *req, void **args, char *err);
/* The largest request frame for op (-1: a request whose op is not known yet) from a peer
 * that is a proved node (node) or not. */
size_t proto_frame_max(int op, bool node);
/* Packs the request {op, id, fields...} of args (a struct req_<op>; its id is not used). */
void proto_encode(struct mpw *w, enum op op, uint64_t id, const void *args);

#endif
