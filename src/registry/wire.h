/* The pure parts of the distribution protocol, kept apart from the sockets so unit tests
 * can reach them: WWW-Authenticate challenges, the media types a pull accepts, platform
 * choice in an image index, and the mapping of a registry's answer to an error. */
#ifndef ORCH_REGWIRE_H
#define ORCH_REGWIRE_H
#include <stdbool.h>
#include <stddef.h>
#include "codec/json.h"

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
/* The Accept header of a manifest request: what this client understands, nothing else. */
#define REGWIRE_ACCEPT "Accept: " MT_OCI_INDEX ", " MT_DOCKER_LIST ", " MT_OCI_MANIFEST ", " MT_DOCKER_MANIFEST

/* One challenge from WWW-Authenticate, the Bearer one preferred when several are offered. */
struct regwire_challenge {
	char scheme[16]; /* "Bearer", "Basic" */
	char realm[1024], service[256], scope[512];
};
int regwire_challenge_parse(const char *header, struct regwire_challenge *ch, char *err);

bool regwire_is_index(const char *media_type);
bool regwire_is_manifest(const char *media_type);
/* The media type of a manifest: its Content-Type (parameters dropped) when that is one we
 * know, else the document's own mediaType field; "" when neither says. */
void regwire_media_type(const char *content_type, const struct json *doc, char *out, size_t n);

/* os/architecture[/variant], normalised as Docker does (x86_64 → amd64, aarch64 → arm64,
 * arm64 variant v8 → none, arm without variant → v7). */
struct regwire_platform {
	char os[32], arch[32], variant[16];
};
int regwire_platform_parse(const char *s, struct regwire_platform *p, char *err);
/* The platform of this machine (linux/<arch of uname>). */
void regwire_platform_host(struct regwire_platform *p);
void regwire_platform_format(const struct regwire_platform *p, char *out, size_t n);
/* Picks the manifest of index (its "manifests" array) that runs on want: the same os and
 * architecture, the same variant preferred, else for arm the highest variant not above
 * want's. 0 and *idx, or E_NOTFOUND with err listing the platforms the index offers. */
int regwire_pick(const struct json *index, const struct regwire_platform *want, size_t *idx, char *err);

/* An error message and code for a registry answer that is not a success: 401/403
 * unauthorised (E_AUTH), 404 or MANIFEST_UNKNOWN/NAME_UNKNOWN/BLOB_UNKNOWN not found
 * (E_NOTFOUND), 429 rate limited (E_BUSY, with Retry-After when given), 5xx (E_IO),
 * naming what was asked for and the registry's own code and message. */
int regwire_status_error(int status, const char *body, size_t blen, const char *retry_after, const char *what,
			 char *err);
/* Whether an answer is worth another attempt: 5xx, 408 and 429. */
bool regwire_transient(int status);

#endif
