/* The blocking steps of running one task, executed on libuv worker threads: prepare
 * (image, layers, rootfs, network, bundle, create, start), stop and cleanup. Everything
 * a step needs is copied into struct run_job, so a worker never touches loop state. */
#ifndef ORCH_TASK_RUN_H
#define ORCH_TASK_RUN_H
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include "runtime/nat.h"
#include "runtime/net.h"
#include "runtime/runc.h"
#include "net/ipam.h"
#include "net/tls.h"
#include "node/regopts.h"
#include "util/err.h"

#define RUN_MAX_PORTS 16
/* a task's pids limit when its spec gives none (pids_limit, deploy.resources.limits.pids) */
#define RUN_PIDS_DEFAULT 4096

struct run_env {
	char data_dir[512];
	char state_dir[600];   /* runc --root */
	const char *runtime;   /* runc | crun */
	char tag[IPAM_TAG_LEN];     /* network tag of this node (net/ipam.h writes both) */
	char subnet[IPAM_CIDR_LEN];
	char node_hex[17];
	const struct tlsctx *tls;         /* for fetching blobs from peers */
	const struct regopts *reg;  /* for pulling from registries (node/regopts.h) */
	uint64_t port_lo, port_hi;
	bool allow_privileged;      /* --allow-privileged (node/nodesec.h) */
	uint32_t userns_base, userns_count; /* --userns-remap; count 0: none */
};

/* A prepare's pull progress: written by the worker thread, read by the agent's tick, which
 * reports it as the task's message while it prepares (orch ps). */
struct run_progress {
	pthread_mutex_t mu;
	char msg[200];
	bool fresh;
};

struct run_peer {
	uint64_t id;
	char addr[64];
};

struct run_job {
	/* in */
	const struct run_env *env;
	uint64_t task_id;
	char cid[64], task_tag[8], dir[600];
	char service[64], project[64];
	uint64_t slot;
	uint8_t *spec;  size_t spec_len;   /* svc_spec encoding */
	uint8_t *image; size_t image_len;  /* image_info encoding */
	struct reg_login login; /* for a pull: looked up on the loop (or, on a worker, given
				 * with the task), wiped once prepared */
	struct run_progress *progress; /* prepare: where a pull says how far it is (or NULL) */
	const char *pulling;    /* while pull_image runs: the image */
	uint8_t *files; size_t files_len;  /* secrets and configs, sealed (node/feed.c "files") */
	struct run_peer *peers; size_t npeers; uint64_t image_node;
	char ip[16];
	struct port_map ports[RUN_MAX_PORTS];
	size_t nports;
	bool host_net;
	int stop_signal, grace_ms;
	/* out */
	int rc;
	char err[ERR_LEN];
	int pid;
	bool oom;
	/* prepare pulled the image from its registry: image_info_encode() of it, named as the
	 * spec names it (the node records it: node/imgrec.h); the step's owner frees it */
	uint8_t *pulled;
	size_t pulled_len;
};

/* Image, layers, rootfs, network, bundle: everything but the container itself. */
void run_prepare(struct run_job *j);
/* runc create + start: fills job->pid or job->err. */
void run_start(struct run_job *j);
/* Stops the container (signal, grace, kill) and deletes it. */
void run_stop(struct run_job *j);
/* Reads the OOM counter, deletes the container, tears the network down, unmounts the
 * rootfs, removes the cgroup. Idempotent. */
void run_cleanup(struct run_job *j);
/* Persists / loads what a restarted agent needs to find a task's resources again. */
int run_save_state(const struct run_job *j);
/* A deep copy of a NULL-terminated string array (NULL gives an empty one). */
char **argv_dup(char **v);
int run_load_state(struct run_job *j);

#endif
