/* orch deploy of a service whose image comes from a registry: the leader resolves the tag
 * to a digest once (registry_resolve, on a worker thread: the loop never waits on the
 * network) and records the spec with the image pinned, "HOST/REPO:TAG@sha256:...", as
 * Swarm does, so every replica of the generation runs the same bytes and `orch ps` and
 * `orch inspect` show which. Deploying the same file again resolves again: a tag that now
 * names other bytes is a new generation (a rolling update), the same digest changes
 * nothing.
 *
 * An image loaded into the cluster (orch image load) under the same normalised name wins
 * and no registry is asked: a cluster that loads its images keeps working offline. */
#ifndef ORCH_RESOLVE_H
#define ORCH_RESOLVE_H
#include <stdbool.h>
#include <stddef.h>
#include "net/proto.h"
#include "state/store.h"

struct daemon;
struct conn;
struct svc_spec;

/* Whether a deploy of sp must ask the registry: no image of the cluster has its name
 * (normalised: state/store.h store_image_by_name). */
bool resolve_needed(const struct store *s, const struct svc_spec *sp);
/* Resolves sp's image on a worker thread, then submits the service with the image pinned
 * and answers the request on c as service.put does. The spec is copied. */
void resolve_start(struct daemon *d, struct conn *c, uint64_t req_id, const struct svc_spec *sp, const char *project);
/* op image.resolve: what a deploy of ref would run, asked before the deploy changes
 * anything: {ref, digest, loaded} (ref: the name of the loaded image, or ref pinned to the
 * digest its registry serves now), or the registry's refusal. */
void resolve_check(struct daemon *d, struct conn *c, const struct req_image_resolve *a);

#endif
