/* Image import: `orch image load` of a docker-archive (`docker save` output) or an OCI
 * image layout (a directory or a tar of one). Every blob is stored in the blob store only
 * after its sha256 is verified: OCI blobs against the digests in index/manifest, the
 * docker-archive config against its file name and its layers against the config's
 * rootfs.diff_ids (OCI layers are checked against diff_ids too). The result describes the
 * image and is small enough to live in the replicated state (msgpack below). */
#ifndef ORCH_IMAGE_LOAD_H
#define ORCH_IMAGE_LOAD_H
#include "codec/mp.h"
#include <stddef.h>
#include <stdint.h>

#define IMAGE_MAX_LAYERS 128
#define IMAGE_MAX_PER_ARCHIVE 64
#define IMAGE_NAME_MAX 768    /* a canonical reference (image/ref.h REF_STR_MAX) and its NUL */

struct image_info {
	char *name;           /* the name recorded: image_name_key() of the first tag, or the short
			       * digest when the archive names none */
	char **names;         /* every tag the archive gives the image, canonical, name first;
			       * NULL-terminated (image_load only; not in the encoding) */
	char digest[72];      /* OCI: manifest digest; docker-archive: config digest (image id) */
	uint64_t size;        /* bytes of manifest (OCI), config and layer blobs as stored */
	char **layers;        /* blob digests, base layer first; NULL-terminated */
	size_t nlayers;
	char *config_digest;
	/* From the config; NULL when the image does not set them. The arrays are
	 * NULL-terminated; an empty array is distinct from an absent one. */
	char **entrypoint, **cmd, **env;
	char *workdir, *user;
	/* The image's HEALTHCHECK (config.Healthcheck): Test as Docker writes it ("CMD", ...,
	 * "CMD-SHELL", "...", or "NONE"); NULL when the image has none. Durations in ms. */
	char **health_test;
	uint64_t health_interval_ms, health_timeout_ms, health_start_ms, health_retries;
};

/* blobdir: blob store root (blobs go to <blobdir>/blobs/sha256). path: a docker-archive
 * tar, an OCI layout directory, or an OCI layout tar (plain, gzip'd or zstd'd). Every
 * image of the archive: each entry of a docker-archive's manifest.json, each entry of an
 * OCI index.json (a multi-platform index gives the linux/amd64 image under the index's
 * name). On error nothing is returned and blobs this call added but did not verify are
 * removed. *out is an array of *n images (image_list_free). */
int image_load_all(const char *blobdir, const char *path, struct image_info **out, size_t *n, char *err);
/* The first image only (the others' blobs stay stored). */
int image_load(const char *blobdir, const char *path, struct image_info *out, char *err);
void image_info_free(struct image_info *im);
void image_list_free(struct image_info *v, size_t n);

/* Image names as Docker compares them (image/ref.h): the key an image is recorded and
 * looked up under is the canonical reference ("nginx" -> "docker.io/library/nginx:latest"),
 * or the name itself when it is not a reference (an unnamed image's short digest). */
void image_name_key(const char *name, char *out, size_t n);
/* What is shown for a key: Docker's short form ("nginx:latest", "ghcr.io/o/a:1"). */
void image_name_show(const char *key, char *out, size_t n);

/* Shared with registry pulls (registry/registry.c), so an image is read the same way
 * whatever brought it. label prefixes messages ("image x.tar", "pull nginx:1").
 * image_config_parse fills the runtime fields of out from an image config document and
 * points *diff_ids into it; image_layer_check checks that stored layer blob i
 * uncompresses to the content want (a diff_id) names; image_info_add_layer appends one. */
struct json;
struct blobstore;
int image_config_parse(const struct json *cfg, const char *label, struct image_info *out, const struct json **diff_ids,
		       char *err);
int image_layer_check(const struct blobstore *bs, const char *label, size_t i, const char *name, const char *blob,
		      const char *want, char *err);
void image_info_add_layer(struct image_info *out, const char *digest);

/* For the replicated state: a versioned map {v, name, digest, size, layers, config, ...}. */
void image_info_encode(const struct image_info *im, struct mpw *w);
int image_info_decode(const msgpack_object *o, struct image_info *out, char *err);

#endif
