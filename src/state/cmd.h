/* The raft commands, written once: each type's name (as stored in the log: never rename
 * one; a command changes meaning only under a new name or a new payload version), the
 * fields of its body (checked, by name, before anything applies it) and the function of
 * the state machine that applies it (state/apply.h). Senders name a type by its enum
 * (CMD_TASK_BATCH, never "task.batch"); store_apply looks the name up here.
 *
 *   X(ID, low, "name", apply function)
 *   CMDB_<low>(F, S): the body's fields (codec/fields.h)
 *
 * Any body may carry "at" (the wall-clock time the sender stamped, ms) and "events" (what
 * the change means for orch events, state/store.h): store_apply reads them for every type;
 * the lists name them where the senders set them. */
#ifndef ORCH_CMD_H
#define ORCH_CMD_H
#include "codec/fields.h"

#define CMD_TYPES(X) \
	X(CLUSTER_INIT, cluster_init, "cluster.init", apply_cluster_init) \
	X(CLUSTER_TOKENS, cluster_tokens, "cluster.tokens", apply_cluster_tokens) \
	X(CLUSTER_CA, cluster_ca, "cluster.ca", apply_cluster_ca) \
	X(NODE_ADD, node_add, "node.add", apply_node_add) \
	X(NODE_UPDATE, node_update, "node.update", apply_node_update) \
	X(NODE_STATES, node_states, "node.states", apply_node_states) \
	X(NODE_RM, node_rm, "node.rm", apply_node_rm) \
	X(KV_SET, kv_set, "kv.set", apply_kv_set) \
	X(SERVICE_PUT, service_put, "service.put", apply_service_put) \
	X(SERVICE_SCALE, service_scale, "service.scale", apply_service_scale) \
	X(SERVICE_RM, service_rm, "service.rm", apply_service_rm) \
	X(SERVICE_UPDATE, service_update, "service.update", apply_service_update) \
	X(SERVICE_PORT_ERROR, service_port_error, "service.port_error", apply_service_port_error) \
	X(TASK_BATCH, task_batch, "task.batch", apply_task_batch) \
	X(IMAGE_PUT, image_put, "image.put", apply_image_put) \
	X(IMAGE_RM, image_rm, "image.rm", apply_image_rm) \
	X(VOLUME_RM, volume_rm, "volume.rm", apply_volume_rm) \
	X(SECRET_PUT, secret_put, "secret.put", apply_secret_put) \
	X(SECRET_RM, secret_rm, "secret.rm", apply_secret_rm) \
	X(USER_PUT, user_put, "user.put", apply_user_put) \
	X(USER_RM, user_rm, "user.rm", apply_user_rm) \
	X(STATE_LOAD, state_load, "state.load", apply_state_load)

/* the cluster record (state/store.h) */
#define CMDB_cluster_init(F, S) \
	F(S, STR, id, REQ, 0) F(S, STR, secret_hash, REQ, 0) F(S, U64, created_at, OPT, 0) F(S, U64, next_id, OPT, 0) \
	F(S, U64, failure_timeout_ms, OPT, 0) F(S, STR, worker_hash, OPT, 0) F(S, STR, manager_token, OPT, 0) \
	F(S, STR, worker_token, OPT, 0) F(S, STR, ca_certs, OPT, 0) F(S, STR, ca_key, OPT, 0) F(S, U64, cert_days, OPT, 0) \
	F(S, U64, cert_secs, OPT, 0)
/* a token rotation: the new hash and sealed secret of the manager token, the worker
 * token, or both */
#define CMDB_cluster_tokens(F, S) \
	F(S, STR, secret_hash, OPT, 0) F(S, STR, manager_token, OPT, 0) F(S, STR, worker_hash, OPT, 0) \
	F(S, STR, worker_token, OPT, 0)
/* a CA rotation's steps (state/store.h): its start (all five fields) and its end
 * (ca_certs: the new CA alone, ca_cross and ca_old empty) */
#define CMDB_cluster_ca(F, S) \
	F(S, STR, ca_certs, REQ, 0) F(S, STR, ca_key, OPT, 0) F(S, STR, ca_cross, REQ, 0) F(S, STR, ca_old, REQ, 0) \
	F(S, U64, ca_gen, OPT, 0)
/* the joining node's record (state/store.h), whose other fields ride along */
#define CMDB_node_add(F, S) F(S, U64, id, REQ, 0) F(S, STR, name, REQ, 0) F(S, STR, addr, REQ, 0)
/* labels: {key: value, or nil to remove}; binds: the node's --allow-bind prefixes, a
 * line each; security: its container options; cert_expires, cert_ca: the certificate the
 * leader just issued to it (state/store.h); disk_dir present: the node's disk report
 * (node/diskwatch.h), disk_alarm_at 0 clearing its alarm (without disk_dir the disk
 * figures are ignored) */
#define CMDB_node_update(F, S) \
	F(S, U64, id, REQ, 0) F(S, STR, state, OPT, 0) F(S, STR, availability, OPT, 0) F(S, MAP, labels, OPT, 0) \
	F(S, U64, at, OPT, 0) F(S, ARR, events, OPT, 0) F(S, STR, binds, OPT, 0) \
	F(S, STR, security, OPT, 0) F(S, U64, cert_expires, OPT, 0) F(S, STR, cert_ca, OPT, 0) \
	F(S, U64, disk_alarm_at, OPT, 0) F(S, U64, disk_free, OPT, 0) F(S, U64, disk_floor, OPT, 0) \
	F(S, STR, disk_dir, OPT, 0)
/* the failure detector's verdicts of one tick: nodes [{id, state}], one event per node */
#define CMDB_node_states(F, S) F(S, U64, at, OPT, 0) F(S, ARR, nodes, REQ, 0) F(S, ARR, events, OPT, 0)
#define CMDB_node_rm(F, S) F(S, U64, id, REQ, 0)
#define CMDB_kv_set(F, S) F(S, STR, key, REQ, 0) F(S, STR, value, REQ, 0)
/* spec: the service spec (spec/spec.h encoding) */
#define CMDB_service_put(F, S) \
	F(S, STR, name, REQ, 0) F(S, STR, project, OPT, 0) F(S, MAP, spec, REQ, 0) F(S, U64, at, OPT, 0)
/* reason: why the autoscaler chose the count */
#define CMDB_service_scale(F, S) \
	F(S, STR, name, REQ, 0) F(S, U64, replicas, REQ, 0) F(S, STR, reason, OPT, 0) F(S, U64, at, OPT, 0) \
	F(S, ARR, events, OPT, 0)
#define CMDB_service_rm(F, S) F(S, STR, name, REQ, 0) F(S, U64, at, OPT, 0)
#define CMDB_service_update(F, S) \
	F(S, STR, name, REQ, 0) F(S, STR, update_state, OPT, 0) F(S, STR, update_msg, OPT, 0) \
	F(S, BOOL, rollback, OPT, 0) F(S, U64, at, OPT, 0)
/* msg: why the node could not publish a port of the service ("" clears it) */
#define CMDB_service_port_error(F, S) F(S, STR, name, REQ, 0) F(S, U64, node_id, REQ, 0) F(S, STR, msg, OPT, 0)
/* services: rollout states [{id, update_state, update_msg, rollback}]; create: new tasks
 * [{service_id, slot, ...}]; update: [{id, <task fields>}]; delete: [task id];
 * volumes: volume records made by this batch's placements [{name, node_id, service,
 * labels}] (kept when one of that name exists) */
#define CMDB_task_batch(F, S) \
	F(S, ARR, services, OPT, 0) F(S, ARR, create, OPT, 0) F(S, ARR, update, OPT, 0) F(S, ARR, delete, OPT, 0) \
	F(S, U64, at, OPT, 0) F(S, ARR, events, OPT, 0) F(S, ARR, volumes, OPT, 0)
/* the image record (state/store.h): info is image_info_encode() (image/image_load.h) */
#define CMDB_image_put(F, S) \
	F(S, STR, name, REQ, 0) F(S, STR, digest, REQ, 0) F(S, MAP, info, REQ, 0) F(S, U64, size, OPT, 0) \
	F(S, U64, loaded_at, OPT, 0) F(S, U64, node_id, OPT, 0)
#define CMDB_image_rm(F, S) F(S, STR, name, REQ, 0)
/* forgets a volume record (its directory was removed on its node, or the node is gone) */
#define CMDB_volume_rm(F, S) F(S, STR, name, REQ, 0) F(S, U64, at, OPT, 0)

/* a new version of a secret, config or registry credentials (state/store.h): data sealed
 * by the node that built the command (secret/seal.h); the services that use it roll
 * (events: "secret_updated" or "config_updated", one per such service) */
#define CMDB_secret_put(F, S) \
	F(S, STR, kind, REQ, 0) F(S, STR, name, REQ, 0) F(S, BIN, data, REQ, 0) F(S, U64, size, REQ, 0) \
	F(S, U64, at, OPT, 0) F(S, ARR, events, OPT, 0)
/* every version; refused while a service's spec uses it */
#define CMDB_secret_rm(F, S) F(S, STR, kind, REQ, 0) F(S, STR, name, REQ, 0)

/* a new user (state/store.h), refused when the name is taken: a new certificate for a
 * user is orch user rm, then add */
#define CMDB_user_put(F, S) \
	F(S, STR, name, REQ, 0) F(S, STR, role, REQ, 0) F(S, STR, serial, REQ, 0) F(S, U64, at, OPT, 0)
#define CMDB_user_rm(F, S) F(S, STR, name, REQ, 0)

/* orch init --restore (state/snapfile.h): the objects of a backup, as their tables encode
 * them, loaded once into a new cluster that holds no services nor secrets yet; from: the
 * id of the cluster they were saved from */
#define CMDB_state_load(F, S) \
	F(S, ARR, services, OPT, 0) F(S, ARR, secrets, OPT, 0) F(S, ARR, images, OPT, 0) F(S, ARR, kv, OPT, 0) \
	F(S, STR, from, OPT, 0) F(S, U64, at, OPT, 0)

enum cmd {
#define CMD_ENUM_(ID, low, name, fn) CMD_##ID,
	CMD_TYPES(CMD_ENUM_)
#undef CMD_ENUM_
	CMD__COUNT
};

/* The bodies as structs (struct cmd_<low>), for senders that fill one (cmd_body). */
#define CMD_STRUCT_(ID, low, name, fn) \
	struct cmd_##low { \
		CMDB_##low(FL_MEMBER_, low) \
	};
CMD_TYPES(CMD_STRUCT_)
#undef CMD_STRUCT_

struct cmd_type {
	const char *name;
	const struct fl_field *fields;
	size_t nfields;
};
extern const struct cmd_type cmd_types[CMD__COUNT];

static inline const char *cmd_name(enum cmd t)
{
	return cmd_types[t].name;
}

/* The type an entry names; -1 when it names none. */
int cmd_lookup(const msgpack_object *name, enum cmd *t);
/* Checks a body against its type's fields: 0, or E_INVAL naming the field. */
int cmd_check(enum cmd t, const msgpack_object *body, char *err);
/* Packs the body of a struct cmd_<type> (a map, fields in table order). */
void cmd_body(struct mpw *w, enum cmd t, const void *body);

#endif
