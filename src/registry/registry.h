/* Pulling images from registries over the OCI distribution API (v2): the blocking client
 * that nodes run on worker threads, never on the loop. Everything it stores goes through
 * the blob store (image/blobstore.h), so a blob appears only once its digest matched.
 *
 * What a registry needs from the node is a struct reg_config (its options and how to get
 * credentials); what the node gets back is the same struct image_info that `orch image
 * load` produces (image/image_load.h), so a pulled image is recorded and run exactly as a
 * loaded one. */
#ifndef ORCH_REGISTRY_H
#define ORCH_REGISTRY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "image/blobstore.h"
#include "image/image_load.h"
#include "image/ref.h"

#define REG_HOSTS_MAX 16

/* Credentials for a registry host ("ghcr.io", "127.0.0.1:5000"; docker.io for Docker
 * Hub): 0 and user/pass filled, E_NOTFOUND when none are stored (pull anonymously), or
 * another E_* with err. Called on the pulling thread: it must be thread-safe. */
typedef int (*reg_creds_fn)(void *ctx, const char *host, char *user, size_t usize, char *pass,
			    size_t psize, char *err);

struct reg_config {
	/* host[:port] spoken to over plain HTTP (`--insecure-registry`). */
	char *insecure[REG_HOSTS_MAX];
	size_t ninsecure;
	/* host[:port] (or http(s)://host[:port]) tried first for docker.io (`--registry-mirror`);
	 * NULL: none. On failure of the mirror the pull falls back to Docker Hub. */
	char *mirror;
	/* Directory of per-registry CA files, "<dir>/<host[:port]>/ca.crt" (NULL: none); the
	 * system CAs are always trusted too. */
	char *ca_dir;
	/* One more CA file trusted for every registry (NULL: none): `orch debug pull --ca-file`. */
	char *ca_file;
	/* Platform to pick from an image index: "linux/amd64" (NULL: the node's own). */
	const char *platform;
	reg_creds_fn creds;
	void *creds_ctx;
	/* Layers downloaded at once (0: 3); attempts per request on transient errors (0: 4). */
	unsigned parallel, attempts;
};

struct reg_progress {
	uint64_t bytes_done, bytes_total; /* of the blobs still to download */
	unsigned layers_done, layers_total;
	const char *phase; /* "resolving", "downloading", "verifying", "done" */
};
typedef void (*reg_progress_fn)(void *ctx, const struct reg_progress *p);

/* Resolves ref (a tag or a digest) to the digest of what the registry serves for it: the
 * image index when there is one, else the manifest; *media_type (may be NULL) names which.
 * A reference with a digest is checked to exist. The leader calls this once per deploy so
 * every replica runs the same bytes. */
int registry_resolve(const struct reg_config *cfg, const struct image_ref *ref, char digest[DIGEST_LEN],
		     char *media_type, size_t mtsize, char *err);

/* Pulls ref (a digest from registry_resolve, or a tag) into the blob store: the manifest for
 * cfg->platform, the config and every layer (gzip, zstd or plain), each checked against its
 * digest; blobs already in the store are not downloaded again, partial downloads resume.
 * out is filled as image_load fills it (name and names[0] = the canonical form of ref, as
 * image_name_key gives it; digest = the image manifest's, for the platform). progress may be
 * NULL. Errors name what failed: unauthorised, not found, no matching platform, rate
 * limited, digest mismatch, the network. */
int registry_pull(const struct reg_config *cfg, const struct blobstore *bs, const struct image_ref *ref,
		  struct image_info *out, reg_progress_fn progress, void *pctx, char *err);

#endif
