/* Hollow nodes (orch debug hollow): many complete nodes in one process, on one libuv loop,
 * joined to a real cluster over real TCP — each with its own identity, data directory,
 * listen address, raft instance, link and heartbeats, assignment watch and agent — whose
 * agent runs the hollow backend (agent/backend.h): tasks become running after a delay and
 * report synthetic figures; nothing is started. For scale benchmarks (bench/scale.sh), as
 * Kubernetes' kubemark hollow nodes and Nomad's node simulator do.
 *
 * Hollow nodes run no routing mesh, DNS server, bridge or nftables table, and take part in
 * raft as spares only (orchestrator/roles.h): every voter and standby costs the leader a
 * replication stream, which a thousand hollow nodes would swamp; heartbeats and the
 * assignment watch go over each node's link whatever its role. `orch nodes` shows their
 * runtime as "hollow". Run again on the same directory, the nodes resume (no new join). */
#ifndef ORCH_HOLLOW_H
#define ORCH_HOLLOW_H
#include <stddef.h>
#include <stdint.h>
#include "net/token.h"

struct hollow_opts {
	const char *join;        /* IP:PORT of a node of the cluster */
	struct token tok;
	unsigned nodes;
	const char *data_dir;    /* node i lives in DATA_DIR/NAME */
	const char *name_prefix; /* node names NAME_PREFIX-0001, ... */
	uint32_t listen_base;    /* first listen address (host order); node i: base + i */
	unsigned port;
	unsigned run_delay_ms;   /* assigned -> running */
	unsigned parallel;       /* joins in flight at once */
	uint64_t cpus_milli, memory; /* each node's capacity */
	const char *labels[32];
	size_t nlabels;
};

/* Runs the nodes until SIGINT or SIGTERM; 0, or an error (err says why) when a node could
 * not be set up or joined. */
int hollow_run(const struct hollow_opts *o, char *err);

#endif
