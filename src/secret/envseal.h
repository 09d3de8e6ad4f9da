/* A service's environment sealed under the cluster data key (secret/seal.h), the form it
 * takes in every service.put command and so in the raft log, in snapshots and in the
 * replicas' memory (svc_spec.env_sealed). It is opened only where the values are used:
 * by the node that starts a task of the service (agent/task_run.c: the runtime's
 * config.json, which holds them, goes on the task's tmpfs, secret/secfs.h) and by the node
 * that answers `orch inspect` / `orch services -o json` (node/rpc_work.c).
 *
 * The seal is fixed (seal_close_fixed): the same environment of the same service seals to
 * the same bytes, so a spec compares and hashes as before (a redeploy that changes nothing
 * is "unchanged"; a changed value is a new generation and rolls the service) while the
 * log never holds a value. The associated data is the service's name: a sealed
 * environment copied into another service does not open.
 *
 * Entries written before sealing existed hold the environment in clear (a map); they
 * decode and apply as they did, and the next deploy of the service seals it. */
#ifndef ORCH_ENVSEAL_H
#define ORCH_ENVSEAL_H
#include <stdint.h>
#include "secret/seal.h"
#include "spec/spec.h"

/* Seals sp->env into sp->env_sealed (env emptied); an empty or already sealed
 * environment is left as it is. */
int envseal_close(const uint8_t key[SEAL_KEY_LEN], struct svc_spec *sp, char *err);
/* Opens sp->env_sealed into sp->env (env_sealed emptied): E_AUTH under another key or
 * altered, E_INVAL when the opened value is not an environment. Nothing sealed: 0. */
int envseal_open(const uint8_t key[SEAL_KEY_LEN], struct svc_spec *sp, char *err);
/* svc_spec_free of a spec whose environment was opened, its values wiped first. */
void envseal_spec_free(struct svc_spec *sp);

/* The same with this node's data key (secret/datakey.h). */
int envseal_close_node(const char *data_dir, struct svc_spec *sp, char *err);
int envseal_open_node(const char *data_dir, struct svc_spec *sp, char *err);
/* An encoded spec (as the log holds it) into out, encoded again with its environment
 * opened with this node's data key: what the leader sends a worker, which holds no key
 * (node/feed.c). */
int envseal_open_encoded(const char *data_dir, const void *spec, size_t n, struct buf *out, char *err);

#endif
