/* The data directory of a node (--data-dir): the one place that knows where each of its
 * files lives.
 *
 *   orch.sock        the CLI's local socket (the node listens, the CLI connects)
 *   orch.pid         pid of a node started with --detach
 *   orch.log         its log
 *   identity         node id, name, addresses and cluster id (mode 0600)
 *   tls/             node.key (0600), node.crt, ca.crt: the node's TLS credentials
 *                    (net/tls.h); bootstrap: what orch init leaves for the first
 *                    cluster record (node/creds.h)
 *   datakey          the cluster data key that seals secrets in the raft log (mode 0600,
 *                    secret/datakey.h)
 *   raft/            libraft's log segments and snapshots
 *   runc/            the OCI runtime's state (its --root)
 *   runtime          which runtime the node's containers live in ("runc" or "crun")
 *   net-tag          the node network's tag and subnet, kept from its first setup
 *   tasks/<id>/      one task: bundle/, rootfs (image/rootfs.c), log, state, hosts,
 *                    resolv.conf, secrets/ (a tmpfs while the task lives: its secrets
 *                    and configs, secret/secfs.h)
 *   layers/          image layers, unpacked once per digest
 *   blobs/sha256/    image blobs by digest (image/blobstore.c)
 *   registry         the node's registry options, kept across restarts (node/regopts.h)
 *   volumes/<name>/  a named volume (agent/volumes.c): data/ is what tasks see, ready
 *                    marks it filled from the image, lock serialises its setup
 *   allow-bind       host path prefixes bind mounts may use, one a line (orch init/join
 *                    --allow-bind), kept across restarts
 *   metrics-listen   IP:PORT of the plain HTTP listener for /metrics and /healthz (orch
 *                    init/join --metrics-listen, net/httpd.h), kept across restarts
 *   worker           present on a worker-only node (node/worker.h): it holds no raft log,
 *                    no replica of the state and no data key
 *   node-security    the node's container options (orch init/join --allow-privileged,
 *                    --userns-remap), a line each (node/nodesec.h)
 *   restore          orch init --restore: the backup's objects, until the new cluster
 *                    committed them (node/restore.h; mode 0600)
 *   installed        the service files orch init/join --install wrote and the links that
 *                    enable them, a path a line (cli/install.h): orch uninstall removes them
 */
#ifndef ORCH_LAYOUT_H
#define ORCH_LAYOUT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LAYOUT_PATH_MAX 700

enum layout_item {
	LAYOUT_SOCKET,
	LAYOUT_PID,
	LAYOUT_LOG,
	LAYOUT_IDENTITY,
	LAYOUT_RAFT,
	LAYOUT_RUNTIME_STATE,
	LAYOUT_RUNTIME_NAME,
	LAYOUT_NET_TAG,
	LAYOUT_TASKS,
	LAYOUT_LAYERS,
	LAYOUT_BLOBS,
	LAYOUT_REGISTRY,
	LAYOUT_VOLUMES,
	LAYOUT_ALLOW_BIND,
	LAYOUT_DATAKEY,
	LAYOUT_METRICS_LISTEN,
	LAYOUT_CONSOLE_LISTEN,
	LAYOUT_WORKER,
	LAYOUT_NODE_SECURITY,
	LAYOUT_RESTORE,
	LAYOUT_INSTALLED,
};

enum layout_task_item {
	LAYOUT_TASK_LOG,
	LAYOUT_TASK_STATE,
	LAYOUT_TASK_BUNDLE,
	LAYOUT_TASK_HOSTS,
	LAYOUT_TASK_RESOLV,
	LAYOUT_TASK_SECRETS,
};

/* <data_dir>/<item> into out; false (out truncated) when it does not fit in cap. */
bool layout_path(char *out, size_t cap, const char *data_dir, enum layout_item item);
/* A kept option's small text file: replaced at once (write, fsync, rename), or removed
 * when text is NULL; read whole into buf ("" when there is none). 0 or E_IO. */
int layout_write_text(const char *data_dir, enum layout_item item, const char *text, char *err);
int layout_read_text(const char *data_dir, enum layout_item item, char *buf, size_t cap, char *err);
/* <data_dir>/tasks/<task> */
bool layout_task_dir(char *out, size_t cap, const char *data_dir, uint64_t task);
/* <data_dir>/tasks/<task>/<item> */
bool layout_task_file(char *out, size_t cap, const char *data_dir, uint64_t task, enum layout_task_item item);
/* <data_dir>/volumes/<name> */
bool layout_volume_dir(char *out, size_t cap, const char *data_dir, const char *name);
/* <task_dir>/<item> */
bool layout_task_path(char *out, size_t cap, const char *task_dir, enum layout_task_item item);

#endif
