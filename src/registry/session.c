#include "registry/session.h"
#include "codec/json.h"
#include "registry/wire.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 30000
#define REDIRECTS_MAX 5
#define ERRBODY_MAX (64u << 10)
#define BACKOFF_MAX_MS 8000
#define RETRY_AFTER_MAX_S 30 /* a longer wait is reported, not slept through */

void regsess_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ==== endpoints ==== */

static bool is_insecure(const struct reg_config *cfg, const char *hostport)
{
	size_t hl = strcspn(hostport, ":");
	for (size_t i = 0; i < cfg->ninsecure; i++) {
		const char *h = cfg->insecure[i];
		if (!strcasecmp(h, hostport) || (!strchr(h, ':') && strlen(h) == hl && !strncasecmp(h, hostport, hl)))
			return true;
	}
	return false;
}

/* "host[:port]" or "http(s)://host[:port]" → the registry's base URL. */
static int endpoint(const struct reg_config *cfg, const char *spec, struct http_url *u, char *err)
{
	char url[REF_DOMAIN_MAX + 16];
	if (strstr(spec, "://"))
		snprintf(url, sizeof url, "%s", spec);
	else
		snprintf(url, sizeof url, "%s://%s", is_insecure(cfg, spec) ? "http" : "https", spec);
	int rc = http_url_parse(url, NULL, u, err);
	if (rc)
		return errwrap(err, rc, "registry %.100s", spec);
	snprintf(u->target, sizeof u->target, "/");
	return 0;
}

static void ca_path_for(const struct reg_config *cfg, const char *hostport, char *out, size_t n)
{
	out[0] = 0;
	if (!cfg->ca_dir)
		return;
	snprintf(out, n, "%s/%s/ca.crt", cfg->ca_dir, hostport);
	if (access(out, R_OK))
		out[0] = 0;
}

int regsess_init(struct regsess *s, const struct reg_config *cfg, const struct image_ref *ref, const char *spec,
		     char *err)
{
	memset(s, 0, sizeof *s);
	s->cfg = cfg;
	char fam[REF_STR_MAX];
	image_ref_familiar(ref, fam, sizeof fam);
	snprintf(s->what, sizeof s->what, "pull %s", fam);
	snprintf(s->domain, sizeof s->domain, "%s", ref->domain);
	snprintf(s->repo, sizeof s->repo, "%s", ref->path);
	int rc = endpoint(cfg, spec, &s->base, err);
	if (rc)
		return rc;
	char hp[HTTP_HOST_MAX + 16], ca[PATH_MAX];
	http_url_hostport(&s->base, hp, sizeof hp);
	if (strcmp(spec, REG_HUB_ENDPOINT) && strcmp(spec, ref->domain)) /* a mirror has its own credentials */
		snprintf(s->domain, sizeof s->domain, "%s", hp);
	ca_path_for(cfg, hp, ca, sizeof ca);
	const char *files[3] = {0};
	size_t nf = 0;
	if (ca[0])
		files[nf++] = ca;
	if (cfg->ca_file)
		files[nf++] = cfg->ca_file;
	if ((rc = http_tls_new(&s->tls, files, err)))
		return rc;
	pthread_mutex_init(&s->mu, NULL);
	return 0;
}

void regsess_fini(struct regsess *s)
{
	http_tls_free(s->tls);
	free(s->authz);
	explicit_bzero(s->pass, sizeof s->pass);
	if (s->tls)
		pthread_mutex_destroy(&s->mu);
	s->tls = NULL;
}

/* ==== requests ==== */

/* Connects (or reuses c when it already talks to u's host), sends and reads the head. A
 * kept-alive connection the server has meanwhile closed gets one fresh try. */
static int exchange(struct regsess *s, struct http_conn *c, const char *method, const struct http_url *u,
		    const char *const *hdrs, struct http_resp *r, char *err)
{
	for (int tries = 0;; tries++) {
		bool reused = http_conn_matches(c, u);
		int rc = 0;
		if (!reused) {
			http_close(c);
			rc = http_connect(c, u, u->tls ? s->tls : NULL, TIMEOUT_MS, err);
		}
		if (!rc)
			rc = http_send(c, method, u, hdrs, err);
		if (!rc)
			rc = http_read_head(c, r, !strcmp(method, "HEAD"), err);
		if (!rc)
			return 0;
		http_close(c);
		if (!reused || tries > 0)
			return rc;
	}
}

/* Ends a response: the connection stays for the next request only when the body was read
 * to its end and the server keeps it alive. */
void regsess_finish(struct http_conn *c, struct http_resp *r)
{
	if (!r->done || !r->keep_alive)
		http_close(c);
	http_resp_free(r);
}

/* Reads a small body (an error document, a redirect's page) and ends the response. */
static void slurp(struct http_conn *c, struct http_resp *r, struct buf *out)
{
	char err[ERR_LEN];
	struct buf tmp = {0};
	if (r->length < 0 || r->length <= (int64_t)ERRBODY_MAX)
		if (http_read_all(c, r, ERRBODY_MAX, out ? out : &tmp, err))
			http_close(c);
	buf_free(&tmp);
	regsess_finish(c, r);
}

static void url_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch))
			buf_append(b, s, 1);
		else
			buf_printf(b, "%%%02X", ch);
	}
}

static char *basic_header(const char *user, const char *pass)
{
	char *plain = xasprintf("%s:%s", user, pass);
	size_t n = strlen(plain);
	char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)n);
	explicit_bzero(plain, n);
	free(plain);
	char *h = xasprintf("Authorization: Basic %s", b64);
	free(b64);
	return h;
}

static void lookup_creds(struct regsess *s)
{
	if (s->creds_looked)
		return;
	s->creds_looked = true;
	char err[ERR_LEN];
	if (s->cfg->creds &&
	    s->cfg->creds(s->cfg->creds_ctx, s->domain, s->user, sizeof s->user, s->pass, sizeof s->pass, err) == 0)
		s->have_creds = true;
	else if (s->cfg->creds)
		explicit_bzero(s->pass, sizeof s->pass);
}

/* Asks the challenge's token server for a token of scope (with the credentials when there
 * are any). Called with s->mu held. */
static int fetch_token(struct regsess *s, const struct regwire_challenge *ch, char **token, char *err)
{
	struct buf q = {0};
	buf_printf(&q, "%s%c", ch->realm, strchr(ch->realm, '?') ? '&' : '?');
	if (ch->service[0]) {
		buf_printf(&q, "service=");
		url_escape(&q, ch->service);
		buf_printf(&q, "&");
	}
	buf_printf(&q, "scope=");
	if (ch->scope[0])
		url_escape(&q, ch->scope);
	else {
		char *sc = xasprintf("repository:%s:pull", s->repo);
		url_escape(&q, sc);
		free(sc);
	}
	buf_append(&q, "", 1);
	struct http_url u;
	int rc = http_url_parse((const char *)q.data, NULL, &u, err);
	buf_free(&q);
	if (rc)
		return errwrap(err, rc, "%s: token realm", s->what);
	char *auth = s->have_creds ? basic_header(s->user, s->pass) : NULL;
	const char *hdrs[] = {auth, NULL};
	struct http_conn c;
	memset(&c, 0, sizeof c);
	c.fd = -1;
	struct http_resp r;
	struct buf body = {0};
	rc = exchange(s, &c, "GET", &u, hdrs, &r, err);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (rc) {
		http_close(&c);
		return errwrap(err, rc, "%s: token server", s->what);
	}
	int status = r.status;
	if (status == 200)
		rc = http_read_all(&c, &r, ERRBODY_MAX, &body, err);
	else
		slurp(&c, &r, &body);
	if (status == 200)
		http_resp_free(&r);
	http_close(&c);
	if (rc) {
		buf_free(&body);
		return errwrap(err, rc, "%s: token server", s->what);
	}
	if (status == 401 || status == 403) {
		buf_free(&body);
		if (s->have_creds)
			return errf(err, E_AUTH, "%s: unauthorised: the registry refused the credentials of user %.60s", s->what,
				    s->user);
		return errf(err, E_AUTH, "%s: unauthorised: the registry requires credentials and none are stored for %s",
			    s->what, s->domain);
	}
	if (status != 200) {
		rc = regwire_status_error(status, (const char *)body.data, body.len, NULL, "token server", err);
		buf_free(&body);
		return errwrap(err, rc, "%s", s->what);
	}
	struct json *doc = NULL;
	rc = json_parse((const char *)body.data, body.len, &doc, err);
	buf_free(&body);
	if (rc)
		return errwrap(err, rc, "%s: token server answer", s->what);
	const char *t = json_get_str(doc, "token");
	if (!t || !t[0])
		t = json_get_str(doc, "access_token");
	if (!t || !t[0] || strpbrk(t, "\r\n")) {
		json_free(doc);
		return errf(err, E_INVAL, "%s: the token server's answer holds no token", s->what);
	}
	*token = xstrdup(t);
	json_free(doc);
	return 0;
}

/* Answers a 401: a Bearer challenge gets a token, a Basic one the stored credentials. gen
 * is the renewal the failed request used: when another thread renewed since, its header
 * is tried instead. */
static int authenticate(struct regsess *s, const char *challenge, unsigned gen, char *err)
{
	pthread_mutex_lock(&s->mu);
	int rc = 0;
	if (s->gen != gen)
		goto out;
	struct regwire_challenge ch;
	if ((rc = regwire_challenge_parse(challenge, &ch, err))) {
		rc = errwrap(err, E_AUTH, "%s: unauthorised", s->what);
		goto out;
	}
	lookup_creds(s);
	char *h = NULL;
	if (!strcasecmp(ch.scheme, "basic")) {
		if (!s->have_creds) {
			rc = errf(err, E_AUTH, "%s: unauthorised: the registry requires credentials and none are stored for %s",
				  s->what, s->domain);
			goto out;
		}
		if (s->basic_sent) {
			rc = errf(err, E_AUTH, "%s: unauthorised: the registry refused the credentials of user %.60s", s->what,
				  s->user);
			goto out;
		}
		s->basic_sent = true;
		h = basic_header(s->user, s->pass);
	} else if (!strcasecmp(ch.scheme, "bearer")) {
		char *tok = NULL;
		if ((rc = fetch_token(s, &ch, &tok, err)))
			goto out;
		h = xasprintf("Authorization: Bearer %s", tok);
		free(tok);
	} else {
		rc = errf(err, E_UNSUPP, "%s: the registry asks for %.20s authentication, which orch does not speak", s->what,
			  ch.scheme);
		goto out;
	}
	free(s->authz);
	s->authz = h;
	s->gen++;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static bool same_origin(const struct http_url *a, const struct http_url *b)
{
	return a->tls == b->tls && a->port == b->port && !strcasecmp(a->host, b->host);
}

/* One request to the registry (target relative to it): authenticates on a 401 and follows
 * redirects, sending credentials only to the registry itself, never to the storage host a
 * blob is redirected to. Returns with the final response's head read (any status). */
int regsess_request(struct regsess *s, struct http_conn *c, const char *method, const char *target,
		   const char *const *extra, struct http_resp *r, char *err)
{
	struct http_url u = s->base;
	snprintf(u.target, sizeof u.target, "%s", target);
	bool authed = false;
	for (int hops = 0;;) {
		const char *hdrs[8];
		size_t nh = 0;
		for (size_t i = 0; extra && extra[i] && nh < 6; i++)
			hdrs[nh++] = extra[i];
		char *authz = NULL;
		unsigned gen = 0;
		bool mine = same_origin(&u, &s->base);
		if (mine) {
			pthread_mutex_lock(&s->mu);
			authz = s->authz ? xstrdup(s->authz) : NULL;
			gen = s->gen;
			pthread_mutex_unlock(&s->mu);
			if (authz)
				hdrs[nh++] = authz;
		}
		hdrs[nh] = NULL;
		int rc = exchange(s, c, method, &u, hdrs, r, err);
		free(authz);
		if (rc)
			return errwrap(err, rc, "%s", s->what);
		if (r->status == 401 && mine && !authed) {
			const char *wa = http_header(r, "WWW-Authenticate");
			char *ch = wa ? xstrdup(wa) : NULL;
			slurp(c, r, NULL);
			authed = true;
			rc = ch ? authenticate(s, ch, gen, err)
				: errf(err, E_AUTH, "%s: unauthorised, and the registry names no way to authenticate", s->what);
			free(ch);
			if (rc)
				return rc;
			continue;
		}
		int st = r->status;
		const char *loc = http_header(r, "Location");
		if ((st == 301 || st == 302 || st == 303 || st == 307 || st == 308) && loc) {
			char *l = xstrdup(loc);
			slurp(c, r, NULL);
			struct http_url nu;
			rc = http_url_parse(l, &u, &nu, err);
			free(l);
			if (rc)
				return errwrap(err, rc, "%s: redirect", s->what);
			if (u.tls && !nu.tls)
				return errf(err, E_AUTH, "%s: redirect from https to plain http refused", s->what);
			if (++hops > REDIRECTS_MAX)
				return errf(err, E_IO, "%s: more than %d redirects", s->what, REDIRECTS_MAX);
			u = nu;
			continue;
		}
		return 0;
	}
}

/* A failed answer as an error; *transient when another attempt may succeed and *wait_ms
 * what the registry asked to wait. Ends the response. */
int regsess_answer_error(struct regsess *s, struct http_conn *c, struct http_resp *r, const char *what, bool *transient,
			unsigned *wait_ms, char *err)
{
	struct buf body = {0};
	int st = r->status;
	char ra[24] = "";
	const char *h = http_header(r, "Retry-After");
	if (h)
		snprintf(ra, sizeof ra, "%s", h);
	slurp(c, r, &body);
	char full[ERR_LEN];
	snprintf(full, sizeof full, "%s: %s", s->what, what);
	int rc = regwire_status_error(st, (const char *)body.data, body.len, ra[0] ? ra : NULL, full, err);
	buf_free(&body);
	if ((st == 401 || st == 403) && s->have_creds)
		rc = errf(err, E_AUTH, "%s: unauthorised: the registry refused user %.60s (wrong password, or no access)",
			  full, s->user);
	*transient = regwire_transient(st);
	if (st == 429) {
		char *e;
		long secs = ra[0] ? strtol(ra, &e, 10) : 1;
		if (ra[0] && (*e || secs < 0))
			secs = 1; /* an HTTP date: wait the usual backoff */
		if (secs > RETRY_AFTER_MAX_S)
			*transient = false;
		else
			*wait_ms = (unsigned)secs * 1000;
	}
	return rc;
}

/* Runs fn until it succeeds, fails for good, or has had cfg->attempts tries, sleeping an
 * exponential backoff (or what the registry asked) between tries. */
int regsess_retry(struct regsess *s, struct http_conn *c, regsess_attempt_fn fn, void *arg, char *err)
{
	unsigned n = s->cfg->attempts ? s->cfg->attempts : 4, delay = REGSESS_BACKOFF_FIRST_MS;
	for (unsigned i = 0;; i++) {
		bool transient = false;
		unsigned wait = 0;
		int rc = fn(s, c, arg, &transient, &wait, err);
		if (!rc)
			return 0;
		if (rc == E_IO || rc == E_TIMEOUT) /* a network fault (an untrusted peer is E_AUTH) */
			transient = true;
		if (!transient || i + 1 >= n)
			return rc;
		TRACE("registry", s->repo, "attempt %u failed, retrying in %u ms: %s", i + 1, wait > delay ? wait : delay, err);
		http_close(c);
		regsess_sleep_ms(wait > delay ? wait : delay);
		delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
	}
}
