/* etcd_put_bench: a like-for-like load generator for etcd, to compare with
 * `orch debug write-bench`. It speaks HTTP/1.1 keep-alive to etcd's JSON gateway
 * (POST /v3/kv/put, base64 key and value). The gateway answers one request at a time per
 * connection, so K requests in flight means K connections, each with one outstanding put.
 * Output uses the same fields as write-bench so bench/raft-writes.sh can parse both alike.
 *
 *   etcd_put_bench --endpoint IP:PORT [--count N] [--inflight K] [--value-size B] [--keys N]
 *       (--keys: the puts cycle over N distinct keys, default 1000; bench/scale.sh gives
 *        as many keys as puts, to hold as many objects as orch holds tasks)
 *   etcd_put_bench --until-ok IP:PORT[,IP:PORT...] --since-ns T0 [--deadline-ms D]
 *       (failover probe: starts a put every 10 ms, round robin over the endpoints, until
 *        one is acknowledged; prints the milliseconds from T0 (CLOCK_REALTIME ns) to it)
 *   --tls CA,CERT,KEY (before the others or after): HTTPS with this client certificate,
 *       the server checked against CA, as etcd runs with --client-cert-auth
 *
 * Single-threaded, poll()-driven; every wait is bounded (30 s per request, --deadline-ms
 * for the probe). */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define REQ_TIMEOUT_US (30ull * 1000000)
#define RBUF 8192

struct conn {
	int fd;
	SSL *ssl; /* with --tls */
	char req[1024];
	size_t req_len, req_off;
	char rbuf[RBUF];
	size_t rlen;
	uint64_t sent_at;
	int busy;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void b64(const unsigned char *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
}

static int parse_ep(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof host)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static SSL_CTX *tls; /* --tls: every connection is TLS with a client certificate */

static int tls_setup(char *arg)
{
	char *ca = strtok(arg, ","), *cert = strtok(NULL, ","), *key = strtok(NULL, ",");
	if (!ca || !cert || !key)
		return -1;
	tls = SSL_CTX_new(TLS_client_method());
	if (!tls || SSL_CTX_load_verify_locations(tls, ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(tls, cert) != 1 || SSL_CTX_use_PrivateKey_file(tls, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return -1;
	}
	SSL_CTX_set_verify(tls, SSL_VERIFY_PEER, NULL);
	return 0;
}

/* The handshake runs blocking (loopback: quick); then the socket is non-blocking, as a
 * readable socket may carry only TLS records that are not data (TLS 1.3 session tickets):
 * a read then answers IO_AGAIN instead of waiting for the reply. */
#define IO_AGAIN (-2)
static int dial_tls(struct conn *c, int fd)
{
	c->ssl = NULL;
	if (fd < 0 || !tls)
		return fd;
	c->ssl = SSL_new(tls);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1 || SSL_connect(c->ssl) != 1) {
		if (c->ssl)
			SSL_free(c->ssl);
		c->ssl = NULL;
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static ssize_t io_again(struct conn *c, int k)
{
	int e = SSL_get_error(c->ssl, k);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? IO_AGAIN : e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

static ssize_t io_write(struct conn *c, const void *p, size_t n)
{
	if (!c->ssl)
		return write(c->fd, p, n);
	int k = SSL_write(c->ssl, p, (int)n);
	return k > 0 ? k : io_again(c, k);
}

static ssize_t io_read(struct conn *c, void *p, size_t n)
{
	if (!c->ssl)
		return read(c->fd, p, n);
	int k = SSL_read(c->ssl, p, (int)n);
	return k > 0 ? k : io_again(c, k);
}

static void hang_up(struct conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
}

/* Blocking connect (loopback: immediate), then non-blocking I/O through poll. */
static int dial(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void build_req(struct conn *c, const char *ep, long seq, long keys, const char *val_b64)
{
	char key[64], kb64[100], body[800];
	snprintf(key, sizeof key, "bench/%ld", seq % keys);
	b64((const unsigned char *)key, strlen(key), kb64);
	int bl = snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", kb64, val_b64);
	int n = snprintf(c->req, sizeof c->req,
			 "POST /v3/kv/put HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %d\r\n\r\n%s",
			 ep, bl, body);
	c->req_len = (size_t)n;
	c->req_off = 0;
	c->rlen = 0;
}

/* Returns 0 while the response is incomplete, the HTTP status once it is complete, -1 on
 * a malformed response. Handles Content-Length and chunked bodies. */
static int resp_status(const struct conn *c, size_t *consumed)
{
	const char *b = c->rbuf;
	const char *eoh = NULL;
	for (size_t i = 0; i + 3 < c->rlen; i++)
		if (!memcmp(b + i, "\r\n\r\n", 4)) {
			eoh = b + i + 4;
			break;
		}
	if (!eoh)
		return c->rlen >= RBUF ? -1 : 0;
	if (c->rlen < 12 || memcmp(b, "HTTP/1.", 7))
		return -1;
	int status = atoi(b + 9);
	size_t hlen = (size_t)(eoh - b);
	const char *cl = NULL, *chunked = NULL;
	for (const char *p = b; p < eoh; p++) {
		if (*p != '\n')
			continue;
		if (!strncasecmp(p + 1, "content-length:", 15))
			cl = p + 16;
		else if (!strncasecmp(p + 1, "transfer-encoding: chunked", 26))
			chunked = p;
	}
	if (cl) {
		size_t need = hlen + (size_t)strtoul(cl, NULL, 10);
		if (c->rlen < need)
			return need > RBUF ? -1 : 0;
		*consumed = need;
		return status;
	}
	if (chunked) {
		size_t off = hlen;
		for (;;) {
			char *end;
			if (off >= c->rlen)
				return 0;
			unsigned long sz = strtoul(b + off, &end, 16);
			const char *crlf = memchr(b + off, '\n', c->rlen - off);
			if (!crlf)
				return 0;
			off = (size_t)(crlf - b) + 1 + sz + 2;
			if (off > c->rlen)
				return off > RBUF ? -1 : 0;
			if (sz == 0) {
				*consumed = off;
				return status;
			}
			(void)end;
		}
	}
	return -1; /* no framing: etcd's gateway always sends one */
}

static int usage(void)
{
	fprintf(stderr, "usage: etcd_put_bench [--tls CA,CERT,KEY] --endpoint IP:PORT [--count N] [--inflight K] [--value-size B] [--keys N]\n"
			"       etcd_put_bench [--tls CA,CERT,KEY] --until-ok IP:PORT[,...] --since-ns T0 [--deadline-ms D]\n");
	return 2;
}

/* Failover probe. A put sent to a follower while the leader is dead is not answered until
 * etcd's request timeout (seconds), even after a new leader is elected, so waiting for each
 * put in turn would measure that timeout. Instead a new put is started every PROBE_GAP_MS
 * on a fresh connection (round robin over the endpoints) while earlier ones stay pending;
 * the result is the time from since_ns to the first HTTP 200, whichever put it answers. */
#define PROBE_GAP_MS 10
#define PROBE_MAX 1000

static int until_ok(char *eps, uint64_t since_ns, long deadline_ms, const char *vb64)
{
	char *names[8];
	struct sockaddr_in sas[8];
	int n = 0;
	for (char *tok = strtok(eps, ","); tok && n < 8; tok = strtok(NULL, ",")) {
		if (parse_ep(tok, &sas[n]))
			return usage();
		names[n++] = tok;
	}
	if (!n)
		return usage();
	struct conn *cs = calloc(PROBE_MAX, sizeof *cs);
	struct pollfd *pf = calloc(PROBE_MAX, sizeof *pf);
	int *ep_of = calloc(PROBE_MAX, sizeof *ep_of);
	if (!cs || !pf || !ep_of)
		return fprintf(stderr, "out of memory\n"), 1;
	uint64_t end = now_us() + (uint64_t)deadline_ms * 1000, next = 0;
	int started = 0, rc = 1;
	while (now_us() < end && rc) {
		if (now_us() >= next && started < PROBE_MAX) {
			struct conn *c = &cs[started];
			ep_of[started] = started % n;
			c->fd = dial_tls(c, dial(&sas[ep_of[started]])); /* refused: stays -1, counted as an attempt */
			if (c->fd >= 0) {
				build_req(c, names[ep_of[started]], started, 1000, vb64);
				c->busy = 1;
			}
			started++;
			next = now_us() + PROBE_GAP_MS * 1000;
		}
		for (int i = 0; i < started; i++) {
			pf[i].fd = cs[i].busy ? cs[i].fd : -1;
			pf[i].events = cs[i].req_off < cs[i].req_len ? POLLOUT : POLLIN;
			pf[i].revents = 0;
		}
		if (poll(pf, (nfds_t)started, PROBE_GAP_MS) < 0 && errno != EINTR)
			return perror("poll"), 1;
		for (int i = 0; i < started && rc; i++) {
			struct conn *c = &cs[i];
			if (!c->busy || !pf[i].revents)
				continue;
			ssize_t k;
			if (c->req_off < c->req_len) {
				k = io_write(c, c->req + c->req_off, c->req_len - c->req_off);
				if (k > 0)
					c->req_off += (size_t)k;
			} else {
				k = io_read(c, c->rbuf + c->rlen, RBUF - c->rlen);
				if (k > 0) {
					c->rlen += (size_t)k;
					size_t used = 0;
					int st = resp_status(c, &used);
					if (st == 200) {
						printf("failover_ms=%.1f attempts=%d answered=%d endpoint=%s\n",
						       (double)(real_ns() - since_ns) / 1e6, started, i + 1,
						       names[ep_of[i]]);
						rc = 0;
					} else if (st)
						k = 0; /* an error answer: this put is done */
				}
			}
			if (k <= 0 && k != IO_AGAIN && rc) {
				hang_up(c);
				c->busy = 0;
			}
		}
	}
	if (rc)
		printf("failover_ms=timeout attempts=%d\n", started);
	for (int i = 0; i < started; i++)
		if (cs[i].busy)
			hang_up(&cs[i]);
	free(cs);
	free(pf);
	free(ep_of);
	return rc;
}

int main(int argc, char **argv)
{
	const char *ep = NULL;
	char *probe = NULL;
	long count = 2000, inflight = 1, vsize = 100, deadline_ms = 10000, keys = 1000;
	uint64_t since_ns = 0;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "--endpoint"))
			ep = argv[++i];
		else if (!strcmp(argv[i], "--count"))
			count = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--inflight"))
			inflight = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--value-size"))
			vsize = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--until-ok"))
			probe = argv[++i];
		else if (!strcmp(argv[i], "--since-ns"))
			since_ns = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--deadline-ms"))
			deadline_ms = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--keys"))
			keys = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--tls")) {
			if (tls_setup(argv[++i]))
				return usage();
		}
		else
			return usage();
	}
	if (count <= 0 || inflight <= 0 || inflight > 1000 || vsize < 1 || vsize > 300 || keys < 1)
		return usage();
	char val[301], vb64[410];
	memset(val, 'x', (size_t)vsize);
	b64((const unsigned char *)val, (size_t)vsize, vb64);
	if (probe)
		return until_ok(probe, since_ns ? since_ns : real_ns(), deadline_ms, vb64);
	struct sockaddr_in sa;
	if (!ep || parse_ep(ep, &sa))
		return usage();
	if (inflight > count)
		inflight = count;

	struct conn *cs = calloc((size_t)inflight, sizeof *cs);
	struct pollfd *pf = calloc((size_t)inflight, sizeof *pf);
	uint64_t *lat = calloc((size_t)count, sizeof *lat);
	if (!cs || !pf || !lat)
		return fprintf(stderr, "out of memory\n"), 1;
	for (long i = 0; i < inflight; i++) {
		if ((cs[i].fd = dial_tls(&cs[i], dial(&sa))) < 0)
			return fprintf(stderr, "connect %s: %s\n", ep, strerror(errno)), 1;
	}
	long sent = 0, done = 0, failed = 0;
	uint64_t t0 = now_us();
	while (done < count) {
		for (long i = 0; i < inflight; i++) {
			struct conn *c = &cs[i];
			if (!c->busy && sent < count) {
				build_req(c, ep, sent++, keys, vb64);
				c->busy = 1;
				c->sent_at = now_us();
			}
			pf[i].fd = c->fd;
			pf[i].events = !c->busy ? 0 : c->req_off < c->req_len ? POLLOUT : POLLIN;
		}
		int pr = poll(pf, (nfds_t)inflight, 1000);
		if (pr < 0 && errno != EINTR)
			return perror("poll"), 1;
		uint64_t now = now_us();
		for (long i = 0; i < inflight; i++) {
			struct conn *c = &cs[i];
			if (c->busy && now - c->sent_at > REQ_TIMEOUT_US)
				return fprintf(stderr, "request timed out after 30 s\n"), 1;
			if (!pf[i].revents)
				continue;
			if (c->req_off < c->req_len) {
				ssize_t n = io_write(c, c->req + c->req_off, c->req_len - c->req_off);
				if (n == IO_AGAIN)
					continue;
				if (n <= 0)
					return fprintf(stderr, "write: %s\n", strerror(errno)), 1;
				c->req_off += (size_t)n;
				continue;
			}
			ssize_t n = io_read(c, c->rbuf + c->rlen, RBUF - c->rlen);
			if (n == IO_AGAIN)
				continue;
			if (n <= 0)
				return fprintf(stderr, "connection closed by %s\n", ep), 1;
			c->rlen += (size_t)n;
			size_t used = 0;
			int st = resp_status(c, &used);
			if (st == 0)
				continue;
			if (st != 200) {
				if (failed++ < 3)
					fprintf(stderr, "put failed: %.*s\n", (int)(c->rlen < 300 ? c->rlen : 300),
						c->rbuf);
			}
			lat[done++] = now_us() - c->sent_at;
			c->busy = 0;
		}
	}
	uint64_t el = now_us() - t0;
	qsort(lat, (size_t)count, sizeof *lat, cmp_u64);
	printf("writes=%ld inflight=%ld failed=%ld seconds=%.3f ops_per_sec=%.0f p50_us=%llu p99_us=%llu "
	       "max_us=%llu\n",
	       count, inflight, failed, (double)el / 1e6, (double)count * 1e6 / (double)el,
	       (unsigned long long)lat[count / 2], (unsigned long long)lat[count * 99 / 100],
	       (unsigned long long)lat[count - 1]);
	for (long i = 0; i < inflight; i++)
		hang_up(&cs[i]);
	free(cs);
	free(pf);
	free(lat);
	return failed ? 1 : 0;
}
