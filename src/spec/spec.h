/* Service specs: the Compose-compatible subset orch deploys, parsed from YAML with exact
 * file:line:column errors, and a canonical msgpack form (fixed key order, defaults
 * filled) so equal specs encode to identical bytes. Supported keys, defaults and the
 * orch extensions (x-orch-healthcheck, deploy.x-orch-autoscale) are listed in
 * spec_table.c, the single field list that drives parsing, encoding and decoding. */
#ifndef ORCH_SPEC_H
#define ORCH_SPEC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec/mp.h"
#include "state/schema.h" /* struct labels */
#include "util/mem.h"       /* struct buf */

#define SPEC_NAME_MAX 63
#define SPEC_ENCODING_VERSION 1

struct strv {
	size_t n;
	char **v;
};

enum { PROTO_TCP, PROTO_UDP };
enum { PORT_MODE_INGRESS, PORT_MODE_HOST };
struct port_spec {
	uint64_t target;    /* container port, 1..65535 */
	uint64_t published; /* 0 = not published */
	int protocol;       /* PROTO_* */
	int mode;           /* PORT_MODE_* */
};
struct port_list {
	size_t n;
	struct port_spec *v;
};

/* node.role: "manager" is a raft voter, "worker" any other node (orch has no fixed
 * roles: the leader keeps 3 or 5 voters, orchestrator/roles.h). node.platform.os is
 * always "linux"; node.platform.arch the architecture orch was built for. */
enum { CON_NODE_NAME, CON_NODE_HOSTNAME, CON_NODE_LABEL, CON_NODE_ID, CON_NODE_ROLE, CON_NODE_OS, CON_NODE_ARCH };
struct constraint {
	int what;     /* CON_* */
	char *label;  /* CON_NODE_LABEL only */
	bool eq;      /* == (true) or != */
	char *value;
};
struct constraint_list {
	size_t n;
	struct constraint *v;
};

/* volumes: a service's mounts (orch-compose(5)). A named volume's source is its cluster
 * name once spec_file_qualify ran (<project>_<key> unless the top-level entry gives a
 * name: or is external); it may hold the per-slot template "{slot}" (Swarm's
 * "{{.Task.Slot}}" is normalised to it). A volume mount without a source is anonymous:
 * an empty directory that lives and dies with its task. */
enum { MOUNT_VOLUME, MOUNT_BIND, MOUNT_TMPFS };
#define SPEC_SLOT_TEMPLATE "{slot}"
struct mount_spec {
	int type;           /* MOUNT_* */
	char *source;       /* volume name or absolute host path; NULL for tmpfs, anonymous */
	char *target;       /* absolute path in the container */
	bool read_only;
	bool nocopy;        /* volume.nocopy: do not fill a new volume from the image */
	bool create_host_path; /* bind.create_host_path */
	uint64_t tmpfs_size;   /* bytes; 0: the kernel's default (half of RAM) */
	uint64_t tmpfs_mode;   /* permission bits, 0: 01777 */
	bool external;      /* the volume must exist already (top-level external: true) */
	struct labels labels; /* the top-level entry's labels, given to the volume record */
};
struct mount_list {
	size_t n;
	struct mount_spec *v;
};

enum { NET_BRIDGE, NET_HOST };
enum { DEPLOY_REPLICATED, DEPLOY_GLOBAL }; /* global: one task per eligible node */
enum { RESTART_NONE, RESTART_ON_FAILURE, RESTART_ANY };
enum { FAIL_PAUSE, FAIL_ROLLBACK, FAIL_CONTINUE };
enum { ORDER_STOP_FIRST, ORDER_START_FIRST };
/* HC_INHERIT: no test given (the image's own check, if any). */
enum { HC_INHERIT, HC_NONE, HC_CMD, HC_CMD_SHELL };
enum { PROBE_HTTP, PROBE_TCP };
/* readiness: decides whether the task takes traffic; liveness: a failing task is restarted */
enum { PROBE_READINESS, PROBE_LIVENESS };

struct healthcheck {
	int kind;          /* HC_* */
	struct strv test;  /* arguments after the CMD / CMD-SHELL word */
	uint64_t interval_ms, timeout_ms, retries, start_period_ms;
	bool disable;      /* normalised: true iff kind == HC_NONE */
};

/* x-orch-healthcheck: a check orch runs from outside the container. */
struct probe {
	bool enabled;
	int type; /* PROBE_* */
	uint64_t port;
	char *path; /* http: defaults to "/" */
	uint64_t interval_ms, timeout_ms, retries, start_period_ms;
	int role; /* PROBE_READINESS (default) or PROBE_LIVENESS */
};

struct resources {
	uint64_t cpus_milli, memory_bytes, pids; /* 0 = unlimited / none */
};

struct restart_policy {
	int condition; /* RESTART_* */
	uint64_t delay_ms, max_attempts, window_ms; /* max_attempts 0 = unlimited */
	bool given; /* parse only: written in the file (then it wins over the service's restart:) */
};

struct update_config {
	uint64_t parallelism; /* 0 = all at once */
	uint64_t delay_ms;
	int failure_action; /* FAIL_* */
	uint64_t monitor_ms;
	double max_failure_ratio;
	int order; /* ORDER_* */
};

/* Where an entry was written (line 0: not from a file), for errors found later: file is
 * the index of its file among those loaded (spec/compose.h). */
struct spec_pos {
	unsigned file, line, col;
};

/* preferences: - spread: node.labels.KEY (the whole text is kept) */
struct pref {
	char *spread;
};
struct pref_list {
	size_t n;
	struct pref *v;
};

/* depends_on: the first start of a service waits for each dependency's condition
 * (orchestrator/depends.h). Sorted by service name. */
enum { DEP_STARTED, DEP_HEALTHY, DEP_COMPLETED };
struct dep {
	char *service;
	int condition; /* DEP_* */
	bool required, restart;
	/* restart: a digest of the dependency's spec (spec_refs.c), so that a change of the
	 * dependency is a change of this service too: both roll out */
	char *digest;
	struct spec_pos pos; /* not encoded */
};
struct dep_list {
	size_t n;
	struct dep *v;
};

/* networks of a service, sorted by name: each is an isolation group (service names
 * resolve only between services that share one). ref is the network's cluster-wide
 * name when the file gives one (name:, external), NULL for "<project>_<name>". */
struct svc_net {
	char *name;
	struct strv aliases;
	char *ref;
	struct spec_pos pos; /* not encoded */
};
struct svc_net_list {
	size_t n;
	struct svc_net *v;
};

struct placement {
	struct constraint_list constraints;
	struct pref_list preferences;
	uint64_t max_replicas_per_node; /* 0 = no limit */
};

struct autoscale {
	bool enabled;
	uint64_t min, max, target_rps, target_cpu; /* target_cpu in percent */
	uint64_t scale_up_cooldown_ms, scale_down_cooldown_ms;
};

struct deploy {
	int mode; /* DEPLOY_REPLICATED */
	uint64_t replicas;
	struct resources limits, reservations;
	struct restart_policy restart;
	struct placement placement;
	struct update_config update, rollback;
	struct labels labels;
	struct autoscale autoscale;
	/* x-orch-rebalance: the service's tasks move to spread again when nodes join or
	 * return (orchestrator/rebalance.h); false pins them where they run */
	bool rebalance;
};

/* A secret or config a service's tasks get as a file (secrets:, configs:). source: the
 * cluster secret's or config's name (orch deploy maps a file's top-level key to it);
 * target: absolute path in the container (default /run/secrets/<key> for a secret, /<key>
 * for a config); mode in octal as Compose writes it (default 0444). version: which
 * version of the value, pinned by the state machine when the spec is stored
 * (state/apply_secret.c), 0 in a file. */
struct file_ref {
	char *source, *target;
	uint64_t uid, gid, mode, version;
};
struct file_ref_list {
	size_t n;
	struct file_ref *v;
};

struct svc_spec {
	char *name;
	char *image;
	struct strv command, entrypoint; /* empty: the image's default */
	struct labels env, labels;       /* sorted by key */
	/* The environment as the raft log holds it: sealed under the data key (secret/envseal.h),
	 * env then empty. Encoded in the place of "environment" (a bin instead of a map), so an
	 * entry written before sealing existed still decodes, into env. */
	struct buf env_sealed;
	struct port_list ports;
	uint64_t stop_grace_ms;
	char *stop_signal, *working_dir, *user, *hostname; /* NULL: unset */
	int network_mode; /* NET_* */
	struct healthcheck healthcheck;
	struct probe probe;
	struct deploy deploy;
	struct mount_list mounts; /* the service's volumes: key */
	struct dep_list depends_on;
	struct svc_net_list networks; /* empty: the project's "default" network */
	struct file_ref_list secrets, configs;
	/* Compose keys beside deploy: (spec_table.c says which are encoded) */
	char *restart;                /* parse only: folded into deploy.restart */
	struct strv expose;           /* parse only: checked, informative (tasks reach any port) */
	struct labels extra_hosts;    /* host -> address, added to the task's /etc/hosts */
	struct strv dns, dns_search;  /* more nameservers after the node's, search domains */
	char *platform;               /* "os/arch[/variant]", NULL: any; checked at parse */
	bool init;                    /* run the command under orch's init (runtime/pid1.h) */
	/* hardening (spec_security.c, orch-compose(5)) */
	struct strv cap_add, cap_drop; /* "CAP_*" or "ALL", normalised */
	bool privileged;               /* placed only on nodes started with --allow-privileged */
	bool read_only;                /* the root filesystem */
	struct strv tmpfs;             /* parse only: folded into mounts */
	uint64_t pids_limit;           /* parse only: folded into deploy.resources.limits.pids */
	struct labels ulimits;         /* name ("nofile") -> "soft:hard" */
	struct labels sysctls;         /* namespaced ones only */
	struct strv security_opt;      /* parse only: folded into seccomp and new_privileges */
	char *seccomp;                 /* NULL: the default profile; "unconfined"; else a profile's
	                                  JSON text, read by the CLI from seccomp=FILE */
	bool new_privileges;           /* no-new-privileges:false (default: no_new_privs set) */
};

/* A top-level networks: entry (only its name matters once resolved). */
enum { NETDRV_BRIDGE, NETDRV_OVERLAY };
struct spec_network {
	char *key;  /* as written under networks: */
	int driver; /* NETDRV_* */
	bool external, attachable;
	char *name; /* name: (cluster-wide), NULL when absent */
	struct labels labels;
	struct spec_pos pos; /* of its key */
};

/* A top-level volumes: entry. */
struct volume_decl {
	char *key;      /* as services refer to it */
	char *name;     /* name: (used as is), NULL: <project>_<key> */
	bool external;
	struct labels labels;
};

/* A top-level secrets: or configs: entry: where its value comes from at deploy. file:
 * read by the CLI (relative to the spec file's directory), or external: true (it must
 * exist in the cluster already). name: the cluster's name for it (default: for a file,
 * <project>_<key>, as docker stack deploy names them; for an external one, the key). */
struct file_def {
	char *key, *file, *name;
	bool external;
};
struct file_def_list {
	size_t n;
	struct file_def *v;
};

struct spec_file {
	struct file_def_list secrets, configs; /* top-level secrets:, configs: */
	char *name; /* top-level name:, NULL when absent */
	size_t nvol;
	struct volume_decl *vol;
	size_t nsvc;
	struct svc_spec *svc; /* in file order */
	size_t nnet;
	struct spec_network *net;
};

/* Parse a spec file. On error nothing is returned and err reads
 * "file:line:column: key.path: what is wrong". */
int spec_parse_file(const char *path, struct spec_file **out, char *err);
int spec_parse_buf(const char *name, const char *data, size_t len, struct spec_file **out, char *err);
void spec_file_free(struct spec_file *f);
/* Cross-service rules of a parsed file (spec_refs.c): networks resolved against the
 * top-level networks:, depends_on naming known services without cycles. */
int spec_check_refs(struct spec_file *f, const char *const *files, size_t nfiles, char *err);
const struct svc_spec *spec_file_find(const struct spec_file *f, const char *svc);
/* Gives every named volume mount its cluster name (<project>_<key>, or the declared
 * name: / external name as is), as Compose names them. Once, before encoding. */
void spec_file_qualify(struct spec_file *f, const char *project);

/* "data-{slot}" for slot 3 -> "data-3" into out; false when it does not fit or the
 * result is not a valid volume name. */
bool spec_volume_name(const char *source, uint64_t slot, char *out, size_t size);
/* Volume names: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 127 characters (the template counts
 * as written). */
bool spec_volume_name_valid(const char *s);
/* Short syntax "SRC:DST[:MODE]" or "DST"; dir resolves "./rel" (NULL: the current
 * directory). Named sources are left as written (the caller checks them). */
int spec_parse_mount(const char *s, const char *dir, struct mount_spec *m, char *msg);
void mount_spec_free(struct mount_spec *m);
/* path (absolute, clean) equals one of the prefixes or lies below one; prefixes is a list
 * of absolute paths separated by newlines (a node's --allow-bind, state/store.h). */
bool spec_path_allowed(const char *prefixes, const char *path);
/* The source of the first bind mount of sp that no node allows, NULL when every one is
 * allowed somewhere; node_binds(ctx, i) gives node i's prefixes (NULL: no more nodes). */
const char *spec_bind_nowhere(const struct svc_spec *sp, const char *(*node_binds)(void *ctx, size_t i), void *ctx);

/* stop_signal: "SIGTERM", "TERM" or a number 1-31 -> the signal number, 0 if unknown. */
int spec_signal(const char *name);

/* A spec holding only the defaults (replicas 1, restart any/5s, ...). */
void svc_spec_init(struct svc_spec *s);
void svc_spec_free(struct svc_spec *s);
/* Canonical encoding: a map with "v" first, then every field in table order. */
void svc_spec_encode(const struct svc_spec *s, struct mpw *w);
/* Fills s (need not be initialised); absent keys keep defaults, unknown keys are
 * ignored (newer writers), wrong types or out-of-range values are errors. On error s is
 * left freeable. */
int svc_spec_decode(const msgpack_object *o, struct svc_spec *s, char *err);
int svc_spec_equal(const struct svc_spec *a, const struct svc_spec *b);
/* Deep copy through the encoding. */
void svc_spec_copy(struct svc_spec *dst, const struct svc_spec *src);

/* Service and project names: [a-z0-9][a-z0-9_-]*, at most SPEC_NAME_MAX chars. */
bool spec_name_valid(const char *s);

/* Small value syntaxes (pure, reusable by the CLI). Each fills msg (ERR_LEN) on error. */
int spec_split_words(const char *s, struct strv *out, char *msg); /* shell-like quoting */
int spec_parse_port(const char *s, struct port_spec *p, char *msg); /* "8080:80/tcp" */
int spec_parse_constraint(const char *s, struct constraint *c, char *msg);
/* "node.labels.zone == east"; out must hold 512 bytes. */
void spec_format_constraint(const struct constraint *c, char *out, size_t size);
/* The cluster-wide identity of a service's network: its ref, else "<project>_<name>". */
void spec_network_id(const char *project, const struct svc_net *n, char *out, size_t size);
/* Whether two services (of projects pa, pb) share a network. */
bool spec_share_network(const char *pa, const struct svc_spec *a, const char *pb, const struct svc_spec *b);
/* Whether a service's platform: ("linux/arm64/v8") can run on a node whose kernel says
 * machine ("aarch64"); here (n bytes) gets the node's platform for messages. */
bool spec_platform_matches(const char *platform, const char *machine, char *here, size_t n);
void strv_free(struct strv *v);
/* The top-level entry of key, NULL when the file declares none. */
const struct file_def *spec_file_def(const struct file_def_list *l, const char *key);
void strv_push(struct strv *v, const char *s);

/* Sysctls a task may set: those of its own namespaces (net.*, kernel.shm*, kernel.msg*,
 * kernel.sem, fs.mqueue.*); host_net: net.* would be the host's. */
bool spec_sysctl_namespaced(const char *key, bool host_net);
/* A ulimits entry ("nofile", "1024:2048") -> "RLIMIT_NOFILE" (out, 32 bytes), soft, hard;
 * false when either is invalid. */
bool spec_ulimit(const char *name, const char *value, char *out, uint64_t *soft, uint64_t *hard);
/* The profile of a security_opt seccomp=FILE, read (relative to dir, NULL: the current
 * directory) and checked into s->seccomp; 0, or -1 with msg naming the file. */
int spec_seccomp_load(struct svc_spec *s, const char *dir, char *msg);

#endif
