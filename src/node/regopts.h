/* A node's registry options (`orch init|join --insecure-registry ... --registry-mirror ...
 * --registry-ca-dir ... --image-gc-grace ...`): what its pulls use (registry/registry.h
 * struct reg_config) and how long an unused image stays on it. They are the node's, not
 * the cluster's: kept in <data-dir>/registry (util/layout.h) so a node started again on
 * its data directory keeps them; options of a kind given again replace the kept ones. */
#ifndef ORCH_REGOPTS_H
#define ORCH_REGOPTS_H
#include <stdbool.h>
#include <stdint.h>
#include "codec/mp.h"
#include "registry/registry.h"

#define REGOPTS_CA_DIR "/etc/orch/certs.d"
#define REGOPTS_GC_GRACE_MS (3600ull * 1000)

enum regopt { RO_INSECURE, RO_MIRROR, RO_CA_DIR, RO_GC_GRACE, RO__COUNT };

struct regopts {
	struct reg_config cfg; /* its strings are the struct's own */
	uint64_t gc_grace_ms;
	bool given[RO__COUNT]; /* which kinds were set (regopts_set) */
};

void regopts_init(struct regopts *o);
void regopts_free(struct regopts *o);
/* One option as the command line gives it; E_INVAL with err naming it when malformed. */
int regopts_set(struct regopts *o, enum regopt k, const char *val, char *err);
/* Loads the kept options into o (regopts_init'd); none kept is not an error. */
int regopts_load(struct regopts *o, const char *data_dir, char *err);
int regopts_save(const struct regopts *o, const char *data_dir, char *err);
/* Kinds given in `given` replace those of o. */
void regopts_merge(struct regopts *o, const struct regopts *given);

/* The credentials one pull may use (`orch registry login`, secret/secrets.h): looked up on
 * the loop thread, which alone may read the node's replica and data key, and carried to
 * the pulling thread with its job. At most two hosts: the image's registry and, for a
 * Docker Hub image, the mirror. Wipe it once the pull is done. */
struct reg_cred {
	char host[REF_DOMAIN_MAX + 1], user[256], pass[512];
};
struct reg_login {
	struct reg_cred who[2];
	size_t n;
};
struct host;
/* Fills login for pulling ref with the node's options o. */
void regopts_login(const struct host *h, const struct regopts *o, const struct image_ref *ref, struct reg_login *login);
/* cfg: a copy of the node's options whose credentials are login's (cfg points into it). */
void regopts_bind(struct reg_config *cfg, const struct regopts *o, struct reg_login *login);
void regopts_wipe(struct reg_login *login);
/* Adds to login the credentials a worker was given opened by the leader (node/feed.h:
 * [{host, value: user NUL password}]), it having no state or key to look them up in;
 * malformed entries are skipped. */
void regopts_given(struct reg_login *login, const msgpack_object *arr);

#endif
