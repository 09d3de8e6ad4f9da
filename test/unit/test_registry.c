/* The registry client's pure parts and its HTTP framing (registry/http.h, registry/wire.h):
 * response heads, chunked and length-framed bodies read over a socketpair, URLs and
 * redirects, WWW-Authenticate challenges, platform choice in an index and the mapping of
 * registry answers to errors. */
#include "unit.h"
#include "registry/http.h"
#include "registry/wire.h"
#include "util/err.h"
#include <sys/socket.h>
#include <unistd.h>

static void has(const char *s, const char *needle)
{
	if (!strstr(s, needle))
		fprintf(stderr, "  \"%s\" lacks \"%s\"\n", s, needle);
	CHECK(strstr(s, needle) != NULL);
}

#define HEAD(s, r, head) http_parse_head((s), strlen(s), (r), (head), err)

UNIT(http_head_parsing_and_framing)
{
	char err[ERR_LEN] = "";
	struct http_resp r;
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length:  12 \r\n"
			  "Docker-Content-Digest: sha256:ab\r\n\r\n", &r, false), 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(http_header(&r, "Content-Type"), "application/json");
	CHECK_STR(http_header(&r, "docker-content-digest"), "sha256:ab");
	CHECK_EQ_INT(r.length, 12);
	CHECK_EQ_INT(r.left, 12);
	CHECK(!r.chunked && !r.to_close && !r.done && r.keep_alive);
	http_resp_free(&r);
	/* chunked wins over Content-Length; Connection: close ends keep-alive */
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
			  &r, false), 0);
	CHECK(r.chunked && !r.keep_alive && r.length == -1);
	http_resp_free(&r);
	/* no framing: the body runs to the connection's end */
	CHECK_EQ_INT(HEAD("HTTP/1.0 200 OK\r\n\r\n", &r, false), 0);
	CHECK(r.to_close && !r.keep_alive);
	http_resp_free(&r);
	/* HEAD, 204 and 304 have no body whatever they announce */
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", &r, true), 0);
	CHECK(r.done);
	http_resp_free(&r);
	CHECK_EQ_INT(HEAD("HTTP/1.1 204 No Content\r\n\r\n", &r, false), 0);
	CHECK(r.done);
	http_resp_free(&r);
	/* the last of repeated headers counts; no reason phrase is fine */
	CHECK_EQ_INT(HEAD("HTTP/1.1 401\r\nX: a\r\nx: b\r\nContent-Length: 0\r\n\r\n", &r, false), 0);
	CHECK_EQ_INT(r.status, 401);
	CHECK_STR(http_header(&r, "X"), "b");
	CHECK(r.done);
	http_resp_free(&r);
	/* refused */
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &r, false), E_INVAL);
	has(err, "conflicting Content-Length");
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", &r, false), E_INVAL);
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", &r, false), E_INVAL);
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\nA: b\r\n  folded\r\n\r\n", &r, false), E_INVAL);
	has(err, "folded");
	CHECK_EQ_INT(HEAD("HTTP/2 200\r\n\r\n", &r, false), E_INVAL);
	CHECK_EQ_INT(HEAD("HTTP/1.1 2x0 OK\r\n\r\n", &r, false), E_INVAL);
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", &r, false), E_INVAL);
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", &r, false), E_INVAL);
	CHECK_EQ_INT(HEAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &r, false), E_UNSUPP);
}

/* Feeds raw bytes to a connection through a socketpair and reads one response. */
static struct http_conn feed(const char *bytes, size_t n, int *peer)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(write(sv[1], bytes, n) == (ssize_t)n);
	struct http_conn c;
	http_conn_fd(&c, sv[0], 2000);
	*peer = sv[1];
	return c;
}

static int body_of(struct http_conn *c, struct buf *out, char *err)
{
	struct http_resp r;
	int rc = http_read_head(c, &r, false, err);
	if (!rc)
		rc = http_read_all(c, &r, 1 << 20, out, err);
	http_resp_free(&r);
	return rc;
}

static void refused_body(const char *bytes, const char *needle)
{
	char err[ERR_LEN] = "";
	int peer;
	struct http_conn c = feed(bytes, strlen(bytes), &peer);
	struct buf b = {0};
	CHECK_EQ_INT(body_of(&c, &b, err), E_INVAL);
	has(err, needle);
	http_close(&c);
	close(peer);
	buf_free(&b);
}

UNIT(http_bodies_chunked_length_and_close)
{
	char err[ERR_LEN] = "";
	/* Two responses back to back on one connection: a chunked one (with an extension and
	 * a trailer) and a length-framed one; each must end exactly where it should. */
	const char *two = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "5;name=x\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-Field: y\r\n\r\n"
			  "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc";
	int peer;
	struct http_conn c = feed(two, strlen(two), &peer);
	struct buf b = {0};
	CHECK_EQ_INT(body_of(&c, &b, err), 0);
	CHECK_EQ_INT(b.len, 11);
	CHECK(!memcmp(b.data, "hello world", 11));
	b.len = 0;
	CHECK_EQ_INT(body_of(&c, &b, err), 0);
	CHECK_EQ_INT(b.len, 3);
	CHECK(!memcmp(b.data, "abc", 3));
	http_close(&c);
	close(peer);

	/* A body that runs to the end of the connection. */
	const char *eof = "HTTP/1.0 200 OK\r\n\r\nall of it";
	c = feed(eof, strlen(eof), &peer);
	close(peer);
	b.len = 0;
	CHECK_EQ_INT(body_of(&c, &b, err), 0);
	CHECK_EQ_INT(b.len, 9);
	http_close(&c);

	/* Cut short: the reader says so instead of returning a short body as complete. */
	const char *cut = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
	c = feed(cut, strlen(cut), &peer);
	close(peer);
	b.len = 0;
	CHECK_EQ_INT(body_of(&c, &b, err), E_IO);
	has(err, "7 body bytes still to come");
	http_close(&c);
	const char *cutc = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc";
	c = feed(cutc, strlen(cutc), &peer);
	close(peer);
	b.len = 0;
	CHECK(body_of(&c, &b, err) < 0);
	http_close(&c);

	/* Malformed chunks. */
	refused_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "bad chunk size");
	refused_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
		     "chunk longer than its size");

	/* A peer that sends nothing: the timeout, not a hang. */
	c = feed("", 0, &peer);
	struct http_resp r;
	c.timeout_ms = 200;
	http_conn_fd(&c, c.fd, 200);
	CHECK_EQ_INT(http_read_head(&c, &r, false, err), E_TIMEOUT);
	http_close(&c);
	close(peer);
	buf_free(&b);
}

UNIT(http_urls_and_redirect_targets)
{
	char err[ERR_LEN] = "", hp[300];
	struct http_url u, v;
	CHECK_EQ_INT(http_url_parse("https://registry-1.docker.io/v2/", NULL, &u, err), 0);
	CHECK(u.tls && u.port == 443);
	CHECK_STR(u.host, "registry-1.docker.io");
	CHECK_STR(u.target, "/v2/");
	http_url_hostport(&u, hp, sizeof hp);
	CHECK_STR(hp, "registry-1.docker.io");
	CHECK_EQ_INT(http_url_parse("http://127.0.0.1:5000", NULL, &u, err), 0);
	CHECK(!u.tls && u.port == 5000);
	CHECK_STR(u.target, "/");
	http_url_hostport(&u, hp, sizeof hp);
	CHECK_STR(hp, "127.0.0.1:5000");
	CHECK_EQ_INT(http_url_parse("https://[::1]:8443/x?y=1#frag", NULL, &u, err), 0);
	CHECK_STR(u.host, "::1");
	CHECK_STR(u.target, "/x?y=1");
	http_url_hostport(&u, hp, sizeof hp);
	CHECK_STR(hp, "[::1]:8443");
	CHECK_EQ_INT(http_url_parse("https://auth.example.com?service=a", NULL, &u, err), 0);
	CHECK_STR(u.target, "/?service=a");
	/* A relative Location keeps the origin; an absolute one moves to another host. */
	CHECK_EQ_INT(http_url_parse("http://127.0.0.1:5000/v2/a/blobs/x", NULL, &u, err), 0);
	CHECK_EQ_INT(http_url_parse("/storage/blob?sig=1", &u, &v, err), 0);
	CHECK_STR(v.host, "127.0.0.1");
	CHECK(v.port == 5000 && !v.tls);
	CHECK_STR(v.target, "/storage/blob?sig=1");
	CHECK_EQ_INT(http_url_parse("https://cdn.example.net/b", &u, &v, err), 0);
	CHECK_STR(v.host, "cdn.example.net");
	CHECK(v.tls);
	CHECK_EQ_INT(http_url_parse("//other.example:8080/b", &u, &v, err), 0);
	CHECK_STR(v.host, "other.example");
	CHECK(v.port == 8080 && !v.tls); /* the scheme of the page it came from */
	CHECK_EQ_INT(http_url_parse("ftp://x/", NULL, &u, err), E_INVAL);
	CHECK_EQ_INT(http_url_parse("http://:80/", NULL, &u, err), E_INVAL);
	CHECK_EQ_INT(http_url_parse("http://h:0/", NULL, &u, err), E_INVAL);
	CHECK_EQ_INT(http_url_parse("http://h:99999/", NULL, &u, err), E_INVAL);
	CHECK_EQ_INT(http_url_parse("http://h x/", NULL, &u, err), E_INVAL);
	CHECK_EQ_INT(http_url_parse("http://[::1/", NULL, &u, err), E_INVAL);
	/* a Location cannot smuggle a header into the next request line */
	CHECK_EQ_INT(http_url_parse("http://h/a b", NULL, &u, err), E_INVAL);
	CHECK_EQ_INT(http_url_parse("/a\r\nX-Injected: 1", &v, &u, err), E_INVAL);
	CHECK_EQ_INT(http_url_parse("https://h/a\tb", NULL, &u, err), E_INVAL);
}

UNIT(registry_challenges)
{
	char err[ERR_LEN] = "";
	struct regwire_challenge ch;
	CHECK_EQ_INT(regwire_challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
					     "scope=\"repository:library/nginx:pull,push\"", &ch, err), 0);
	CHECK_STR(ch.scheme, "Bearer");
	CHECK_STR(ch.realm, "https://auth.docker.io/token");
	CHECK_STR(ch.service, "registry.docker.io");
	CHECK_STR(ch.scope, "repository:library/nginx:pull,push");
	CHECK_EQ_INT(regwire_challenge_parse("Basic realm=\"Registry Realm\"", &ch, err), 0);
	CHECK_STR(ch.scheme, "Basic");
	CHECK_STR(ch.realm, "Registry Realm");
	/* Bearer preferred when both are offered, in either order; tokens and escapes */
	CHECK_EQ_INT(regwire_challenge_parse("Basic realm=\"x\", Bearer realm=https://t/tok, service=s", &ch, err), 0);
	CHECK_STR(ch.scheme, "Bearer");
	CHECK_STR(ch.realm, "https://t/tok");
	CHECK_STR(ch.service, "s");
	CHECK_EQ_INT(regwire_challenge_parse("bearer realm=\"https://t/\\\"q\\\"\", error=\"insufficient_scope\", Basic realm=b",
					     &ch, err), 0);
	CHECK_STR(ch.scheme, "bearer");
	CHECK_STR(ch.realm, "https://t/\"q\"");
	static const char *const bad[][2] = {
		{"", "no challenge"},
		{"Bearer service=\"s\"", "without a realm"},
		{"realm=\"x\"", "parameter before a scheme"},
		{"Bearer realm=\"unterminated", "malformed or too long"},
		{"Bearer realm=\"a\" service=\"b\"", "expected ','"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_EQ_INT(regwire_challenge_parse(bad[i][0], &ch, err), E_INVAL);
		has(err, bad[i][1]);
	}
	char big[1400];
	memset(big, 'a', sizeof big);
	memcpy(big, "Bearer realm=\"", 14);
	big[sizeof big - 2] = '"';
	big[sizeof big - 1] = 0;
	CHECK_EQ_INT(regwire_challenge_parse(big, &ch, err), E_INVAL);
}

static const char *INDEX =
	"{\"schemaVersion\":2,\"manifests\":["
	"{\"digest\":\"sha256:01\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v6\"}},"
	"{\"digest\":\"sha256:02\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
	"{\"digest\":\"sha256:03\",\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
	"{\"digest\":\"sha256:04\",\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}},"
	"{\"digest\":\"sha256:05\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
	"{\"digest\":\"sha256:06\",\"platform\":{\"os\":\"windows\",\"architecture\":\"amd64\"}}]}";

static size_t pick(const char *idx, const char *want)
{
	char err[ERR_LEN] = "";
	struct json *j;
	struct regwire_platform p;
	CHECK_EQ_INT(json_parse(idx, strlen(idx), &j, err), 0);
	CHECK_EQ_INT(regwire_platform_parse(want, &p, err), 0);
	size_t i = 99;
	int rc = regwire_pick(j, &p, &i, err);
	json_free(j);
	if (rc)
		fprintf(stderr, "  %s: %s\n", want, err);
	return rc ? 99 : i;
}

UNIT(registry_platform_choice)
{
	CHECK_EQ_INT(pick(INDEX, "linux/amd64"), 2);
	CHECK_EQ_INT(pick(INDEX, "linux/x86_64"), 2);
	/* arm64: "v8" and no variant are the same platform, as Docker normalises them */
	CHECK_EQ_INT(pick(INDEX, "linux/arm64"), 1);
	CHECK_EQ_INT(pick(INDEX, "linux/aarch64/v8"), 1);
	CHECK_EQ_INT(pick(INDEX, "linux/arm/v7"), 4);
	CHECK_EQ_INT(pick(INDEX, "linux/arm"), 4); /* arm means v7 */
	CHECK_EQ_INT(pick(INDEX, "linux/armel"), 0);
	CHECK_EQ_INT(pick(INDEX, "linux/arm/v8"), 4); /* the best older arm variant */
	CHECK_EQ_INT(pick(INDEX, "windows/amd64"), 5);
	char err[ERR_LEN] = "";
	struct json *j;
	struct regwire_platform p;
	CHECK_EQ_INT(json_parse(INDEX, strlen(INDEX), &j, err), 0);
	CHECK_EQ_INT(regwire_platform_parse("linux/s390x", &p, err), 0);
	size_t i;
	CHECK_EQ_INT(regwire_pick(j, &p, &i, err), E_NOTFOUND);
	has(err, "no image for platform linux/s390x");
	has(err, "linux/arm/v6, linux/arm64, linux/amd64, linux/arm/v7, windows/amd64");
	CHECK(!strstr(err, "unknown"));
	json_free(j);
	/* an amd64 host does not take an arm image, even as the only one */
	CHECK_EQ_INT(pick("{\"manifests\":[{\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}", "linux/amd64"), 99);
	CHECK_EQ_INT(regwire_platform_parse("linux", &p, err), E_INVAL);
	CHECK_EQ_INT(regwire_platform_parse("linux/", &p, err), E_INVAL);
	CHECK_EQ_INT(regwire_platform_parse("linux/arm/v7/x", &p, err), E_INVAL);
	CHECK_EQ_INT(regwire_platform_parse("/amd64", &p, err), E_INVAL);
	char f[80];
	regwire_platform_host(&p);
	regwire_platform_format(&p, f, sizeof f);
	CHECK(!strncmp(f, "linux/", 6));
}

UNIT(registry_media_types_and_errors)
{
	char mt[128], err[ERR_LEN] = "";
	struct json *j;
	regwire_media_type("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8", NULL, mt, sizeof mt);
	CHECK_STR(mt, MT_DOCKER_LIST);
	CHECK(regwire_is_index(mt));
	const char *oci = "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}";
	CHECK_EQ_INT(json_parse(oci, strlen(oci), &j, err), 0);
	regwire_media_type("application/octet-stream", j, mt, sizeof mt);
	CHECK_STR(mt, MT_OCI_MANIFEST);
	json_free(j);
	const char *idx = "{\"schemaVersion\":2,\"manifests\":[]}";
	CHECK_EQ_INT(json_parse(idx, strlen(idx), &j, err), 0);
	regwire_media_type(NULL, j, mt, sizeof mt);
	CHECK_STR(mt, MT_OCI_INDEX);
	json_free(j);

	const char *unk = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}";
	CHECK_EQ_INT(regwire_status_error(404, unk, strlen(unk), NULL, "manifest v1", err), E_NOTFOUND);
	has(err, "manifest v1: not found (MANIFEST_UNKNOWN: manifest unknown)");
	const char *name = "{\"errors\":[{\"code\":\"NAME_UNKNOWN\"}]}";
	CHECK_EQ_INT(regwire_status_error(400, name, strlen(name), NULL, "x", err), E_NOTFOUND);
	CHECK_EQ_INT(regwire_status_error(401, "", 0, NULL, "x", err), E_AUTH);
	has(err, "unauthorised");
	CHECK_EQ_INT(regwire_status_error(403, "not json", 8, NULL, "x", err), E_AUTH);
	CHECK_EQ_INT(regwire_status_error(429, NULL, 0, "7", "blob a", err), E_BUSY);
	has(err, "rate limited");
	has(err, "retry after 7 s");
	CHECK(regwire_transient(429) && regwire_transient(503) && regwire_transient(500));
	CHECK(!regwire_transient(404) && !regwire_transient(401));
	CHECK_EQ_INT(regwire_status_error(503, NULL, 0, NULL, "x", err), E_IO);
	has(err, "registry error 503");
	CHECK_EQ_INT(regwire_status_error(418, NULL, 0, NULL, "x", err), E_FAIL);
}
