/* Image references as Docker reads them: "nginx", "nginx:1.27", "ghcr.io/org/app:tag",
 * "host:5000/app@sha256:…". Parsing normalises the way `docker pull` does, so that every
 * spelling of one image compares equal: no registry means docker.io, a one-part path on
 * docker.io gets "library/", index.docker.io is docker.io, and a reference with neither tag
 * nor digest means tag "latest". The registry is the first path part only when it looks
 * like a host (has a '.' or a ':', or is "localhost"). */
#ifndef ORCH_IMAGE_REF_H
#define ORCH_IMAGE_REF_H
#include <stdbool.h>
#include <stddef.h>

#define REF_DOMAIN_MAX 255
#define REF_PATH_MAX 255
#define REF_TAG_MAX 128
#define REF_DIGEST_MAX 71 /* "sha256:" + 64 hex */
#define REF_STR_MAX (REF_DOMAIN_MAX + REF_PATH_MAX + REF_TAG_MAX + REF_DIGEST_MAX + 4)
#define REF_DEFAULT_DOMAIN "docker.io"

struct image_ref {
	char domain[REF_DOMAIN_MAX + 1]; /* "docker.io", "ghcr.io", "127.0.0.1:5000" */
	char path[REF_PATH_MAX + 1];     /* "library/nginx", "org/app" */
	char tag[REF_TAG_MAX + 1];       /* "" when the reference names a digest only */
	char digest[REF_DIGEST_MAX + 1]; /* "" or "sha256:<64 hex>" */
};

/* 0, or E_INVAL with err naming what is wrong ("image reference \"X\": ..."). */
int image_ref_parse(const char *s, struct image_ref *r, char *err);

/* Canonical full form: "docker.io/library/nginx:latest", "ghcr.io/o/a:t@sha256:…".
 * Equal images give equal strings. Returns the length (truncated to n-1 if too small). */
size_t image_ref_canonical(const struct image_ref *r, char *out, size_t n);
/* The short form Docker shows: "nginx:latest", "org/app:1", "ghcr.io/o/a:t". */
size_t image_ref_familiar(const struct image_ref *r, char *out, size_t n);
/* "docker.io/library/nginx": the repository, without tag or digest. */
size_t image_ref_repo(const struct image_ref *r, char *out, size_t n);

/* Normalises s into out (canonical form); 0 or E_INVAL. A convenience for lookups. */
int image_ref_normalise(const char *s, char *out, size_t n, char *err);

/* True when s is a well-formed "sha256:<64 lowercase hex>". */
bool image_digest_valid(const char *s);

#endif
