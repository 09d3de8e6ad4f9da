/* The conversation with one registry for the length of a pull or a resolve: its endpoint
 * (plain HTTP only for cfg->insecure hosts), TLS trust (system CAs, the per-registry CA
 * file, cfg->ca_file), credentials and the Authorization header in force, requests that
 * authenticate on a 401 and follow redirects, errors that name what failed, and retries
 * with exponential backoff. Shared by the threads of one pull. */
#ifndef ORCH_REGSESS_H
#define ORCH_REGSESS_H
#include <pthread.h>
#include <stdbool.h>
#include "registry/http.h"
#include "registry/registry.h"

#define REG_HUB_ENDPOINT "registry-1.docker.io" /* what docker.io means on the wire */
#define REGSESS_BACKOFF_FIRST_MS 250

/* One registry endpoint and repository for the length of a pull: the TLS context, the
 * credentials (looked up once) and the Authorization header in force, which pulling
 * threads share; gen counts its renewals so that threads that all saw one 401 renew once. */
struct regsess {
	const struct reg_config *cfg;
	char what[REF_STR_MAX + 8]; /* "pull nginx:1.27": the prefix of messages */
	char domain[REF_DOMAIN_MAX + 1]; /* whose credentials ("docker.io") */
	char repo[REF_PATH_MAX + 1];
	struct http_url base;
	struct http_tls *tls;
	pthread_mutex_t mu;
	char *authz;
	unsigned gen;
	bool creds_looked, have_creds, basic_sent;
	char user[256], pass[512];
};

/* spec: "host[:port]" or "http(s)://host[:port]", the endpoint to talk to for ref. */
int regsess_init(struct regsess *s, const struct reg_config *cfg, const struct image_ref *ref, const char *spec,
		 char *err);
void regsess_fini(struct regsess *s);

/* One request to the registry (target relative to it) on c (connected or reconnected as
 * needed): authenticates on a 401 and follows redirects, sending credentials only to the
 * registry itself. Returns with the final response's head read, whatever its status; the
 * caller reads the body and ends it with regsess_finish. */
int regsess_request(struct regsess *s, struct http_conn *c, const char *method, const char *target,
		    const char *const *extra, struct http_resp *r, char *err);
/* Ends a response: c stays open for the next request only when the body was read to its
 * end and the server keeps the connection alive. */
void regsess_finish(struct http_conn *c, struct http_resp *r);
/* A failed answer as an error (registry/wire.h), ending the response; *transient when
 * another attempt may succeed, *wait_ms what the registry asked to wait (429). */
int regsess_answer_error(struct regsess *s, struct http_conn *c, struct http_resp *r, const char *what,
			 bool *transient, unsigned *wait_ms, char *err);

typedef int (*regsess_attempt_fn)(struct regsess *s, struct http_conn *c, void *arg, bool *transient,
				  unsigned *wait_ms, char *err);
/* Runs fn until it succeeds, fails for good, or has had cfg->attempts tries (network
 * faults and transient answers are retried), sleeping an exponential backoff between. */
int regsess_retry(struct regsess *s, struct http_conn *c, regsess_attempt_fn fn, void *arg, char *err);
void regsess_sleep_ms(unsigned ms);

#endif
