#include "cli/client.h"
#include "pki/pki.h"
#include <openssl/crypto.h>
#include "util/layout.h"
#include "net/auth.h"
#include "net/conn.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static int read_full(struct client *c, void *buf, size_t n, int timeout_ms, char *err)
{
	uint8_t *p = buf;
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	while (n) {
		int left = timeout_ms < 0 ? -1 : (int)(deadline > now_ms() ? deadline - now_ms() : 0);
		int r = c->ts && tls_fd_pending(c->ts) ? 1 : wait_fd(c->fd, POLLIN, left);
		if (r == 0)
			return errf(err, E_TIMEOUT, "%s: no answer within %d ms", c->peer, timeout_ms);
		ssize_t got = c->ts ? tls_fd_read(c->ts, p, n) : read(c->fd, p, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return errf(err, E_IO, "%s: connection closed", c->peer);
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

static int write_full(struct client *c, const void *buf, size_t n, char *err)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = c->ts ? tls_fd_write(c->ts, p, n) : send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return errf(err, E_IO, "%s: %s", c->peer, strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int client_open_local(struct client *c, const char *data_dir, char *err)
{
	memset(c, 0, sizeof *c);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	bool fits = layout_path(sa.sun_path, sizeof sa.sun_path, data_dir, LAYOUT_SOCKET);
	snprintf(c->peer, sizeof c->peer, "%s", sa.sun_path);
	if (!fits)
		return errf(err, E_INVAL, "data directory path too long: %s", data_dir);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa)) {
		int e = errno;
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return errf(err, E_IO, "no node running on %s (%s): start one with orch init or orch join, or pass --data-dir",
			    data_dir, strerror(e));
	}
	return 0;
}

static int open_tls(struct client *c, const char *addr, void *ctx, const char *cluster_hex, const char *pin,
		    int timeout_ms, char *err)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	/* OpenSSL writes with write(2): a peer that closed (a refused certificate) must be an
	 * error to report, not a SIGPIPE that kills the CLI without a word */
	signal(SIGPIPE, SIG_IGN);
	snprintf(c->peer, sizeof c->peer, "%s", addr);
	struct sockaddr_in sa;
	if (parse_ipport(addr, &sa, err))
		return E_INVAL;
	if (!ctx)
		return errf(err, E_AUTH, "no TLS credentials");
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return errf(err, E_IO, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) && errno != EINPROGRESS)
		goto fail;
	if (wait_fd(c->fd, POLLOUT, timeout_ms) <= 0) {
		errno = ETIMEDOUT;
		goto fail;
	}
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr) {
		errno = soerr;
		goto fail;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* TLS on a blocking socket; the timeouts bound a peer that stops mid-record */
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	c->ts = xcalloc(1, sizeof *c->ts);
	char e2[ERR_LEN];
	if (tls_fd_connect(c->ts, ctx, c->fd, e2)) {
		free(c->ts);
		c->ts = NULL;
		errf(err, E_AUTH, "%s: %s", addr, e2);
		goto fail_msg;
	}
	struct peer p;
	if (pin ? tls_pin_check(c->ts, pin, e2) : tls_peer(c->ts, cluster_hex, &p, e2) ? -1 : p.kind != PEER_NODE ? -1 : 0) {
		if (!pin && !e2[0])
			snprintf(e2, sizeof e2, "not a node of this cluster");
		errf(err, E_AUTH, "%s: %s", addr, e2);
		goto fail_msg;
	}
	/* from now on poll() bounds the waits (client_read's timeouts, none for streams);
	 * this only bounds a peer that stops in the middle of a record */
	tv = (struct timeval){.tv_sec = 60};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	uint8_t pre[AUTH_PRE_LEN], ack;
	auth_preamble(AUTH_KIND_RPC, 0, pre);
	if (write_full(c, pre, sizeof pre, err))
		goto fail_msg;
	if (read_full(c, &ack, 1, timeout_ms, err) || ack != AUTH_ACK) {
		errf(err, E_AUTH, "%s closed the connection: it refused this node's certificate", addr);
		goto fail_msg;
	}
	return 0;
fail:
	errf(err, E_IO, "connect %s: %s", addr, strerror(errno));
fail_msg:
	client_close(c);
	return err && (strstr(err, "TLS") || strstr(err, "certificate") || strstr(err, "CA")) ? E_AUTH : E_IO;
}

int client_open_tcp(struct client *c, const char *addr, const struct tlsctx *tls, int timeout_ms, char *err)
{
	return open_tls(c, addr, tls ? tls->cli : NULL, tls ? tls->cluster_hex : NULL, NULL, timeout_ms, err);
}

int client_open_join(struct client *c, const char *addr, const char *pin, int timeout_ms, char *err)
{
	void *ctx = tls_join_ctx(err);
	int rc = ctx ? open_tls(c, addr, ctx, NULL, pin, timeout_ms, err) : E_FAIL;
	tls_ctx_free(ctx); /* the session holds its own reference */
	return rc;
}

/* A user's bundle (orch-user(1)): its key, its certificate, then the CA certificates. */
static int bundle_load(const char *path, struct tlsctx *tls, char *err)
{
	struct buf b = {0};
	int rc = pki_read_file(path, &b, err);
	if (rc) {
		buf_free(&b);
		return errwrap(err, rc, "--cert-bundle");
	}
	const char *text = (const char *)b.data, *begin = "-----BEGIN CERTIFICATE-----";
	const char *cert = strstr(text, begin), *ca = cert ? strstr(cert + 1, begin) : NULL;
	if (!strstr(text, "PRIVATE KEY-----") || !cert || !ca)
		rc = errf(err, E_INVAL, "--cert-bundle %s: not a user bundle (a key, a certificate and the cluster CA, as orch user add writes it)",
			  path);
	else {
		char *mine = xstrndup(cert, (size_t)(ca - cert));
		rc = tls_load_pem(tls, text, mine, ca, err);
		free(mine);
		if (rc)
			errwrap(err, rc, "--cert-bundle %s", path);
	}
	OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	return rc;
}

int client_open(struct client *c, const struct client_target *t, int timeout_ms, char *err)
{
	if (!t->host)
		return client_open_local(c, t->data_dir, err);
	memset(c, 0, sizeof *c);
	c->fd = -1;
	struct tlsctx tls;
	int rc = bundle_load(t->bundle, &tls, err);
	if (rc)
		return rc;
	rc = client_open_tcp(c, t->host, &tls, timeout_ms, err);
	tls_free(&tls); /* the session holds its own reference */
	return rc;
}

void client_close(struct client *c)
{
	if (c->ts) {
		tls_sess_free(c->ts);
		free(c->ts);
		c->ts = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

uint64_t client_id(struct client *c)
{
	return ++c->next_id;
}

int client_send(struct client *c, const struct mpw *req, char *err)
{
	uint8_t hdr[4];
	size_t n = req->sb.size;
	hdr[0] = (uint8_t)(n >> 24);
	hdr[1] = (uint8_t)(n >> 16);
	hdr[2] = (uint8_t)(n >> 8);
	hdr[3] = (uint8_t)n;
	if (write_full(c, hdr, 4, err) || write_full(c, req->sb.data, n, err))
		return E_IO;
	return 0;
}

int client_read(struct client *c, struct mpr *resp, int timeout_ms, char *err)
{
	uint8_t hdr[4];
	resp->root = NULL;
	int rc = read_full(c, hdr, 4, timeout_ms, err);
	if (rc)
		return rc;
	size_t n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	if (!n || n > FRAME_MAX)
		return errf(err, E_IO, "%s: bad frame length %zu", c->peer, n);
	uint8_t *p = xmalloc(n);
	if ((rc = read_full(c, p, n, timeout_ms, err))) {
		free(p);
		return rc;
	}
	rc = mpr_decode(resp, p, n);
	free(p); /* the decoded tree lives in the zone: copy made by unpacker */
	if (rc || resp->root->type != MSGPACK_OBJECT_MAP) {
		if (!rc)
			mpr_free(resp);
		return errf(err, E_IO, "%s: malformed reply", c->peer);
	}
	return 0;
}

/* Reads frames until the reply to request `want` (frames of other ids are skipped). */
static int client_reply(struct client *c, uint64_t want, struct mpr *resp, int timeout_ms, char *err)
{
	for (;;) {
		int rc = client_read(c, resp, timeout_ms, err);
		if (rc)
			return rc;
		uint64_t id = 0;
		mp_get_u64(resp->root, "id", &id);
		if (id != want && id != 0) {
			mpr_free(resp);
			continue;
		}
		int64_t code = 0;
		mp_get_i64(resp->root, "rc", &code);
		if (code) {
			if (mp_get_strbuf(resp->root, "err", err, ERR_LEN))
				snprintf(err, ERR_LEN, "%s", err_name((int)code));
		}
		return (int)code;
	}
}

int client_call(struct client *c, const struct mpw *req, struct mpr *resp, int timeout_ms, char *err)
{
	struct mpr r;
	resp->root = NULL;
	if (mpr_decode(&r, req->sb.data, req->sb.size))
		return errf(err, E_INVAL, "bad request");
	uint64_t want = 0;
	mp_get_u64(r.root, "id", &want);
	mpr_free(&r);
	int rc = client_send(c, req, err);
	if (rc)
		return rc;
	return client_reply(c, want, resp, timeout_ms, err);
}

int client_send_req(struct client *c, enum op op, const void *args, char *err)
{
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, op, client_id(c), args);
	int rc = client_send(c, &w, err);
	mpw_free(&w);
	return rc;
}

int client_call_req(struct client *c, enum op op, const void *args, struct mpr *resp, int timeout_ms, char *err)
{
	resp->root = NULL;
	int rc = client_send_req(c, op, args, err);
	return rc ? rc : client_reply(c, c->next_id, resp, timeout_ms, err);
}

int cli_request(struct client *c, const struct client_target *t, enum op op, const void *args, char *err)
{
	int rc = client_open(c, t, 10000, err);
	if (rc)
		return rc;
	rc = client_send_req(c, op, args, err);
	if (rc)
		client_close(c);
	return rc;
}

int cli_stream_next(struct client *c, struct mpr *frame, bool *more, int timeout_ms, char *err)
{
	*more = false;
	int rc = client_reply(c, c->next_id, frame, timeout_ms, err);
	if (!rc)
		mp_get_bool(frame->root, "more", more);
	return rc;
}

int cli_call(const struct client_target *t, enum op op, const void *args, struct mpr *resp, int retry_ms, int timeout_ms,
	     char *err)
{
	uint64_t deadline = now_ms() + (uint64_t)(retry_ms > 0 ? retry_ms : 0);
	/* a read asked without retries still waits a moment for a leader: a worker forwards
	 * it (node/worker.h), and its link may be coming up */
	uint64_t read_deadline = now_ms() + 5000;
	resp->root = NULL;
	for (;;) {
		struct client c;
		int rc = cli_request(&c, t, op, args, err);
		if (rc)
			return rc;
		rc = client_reply(&c, c.next_id, resp, timeout_ms, err);
		client_close(&c);
		if ((rc == E_NOLEADER || rc == E_BUSY) && (now_ms() < deadline || (!retry_ms && rc == E_NOLEADER && now_ms() < read_deadline))) {
			mpr_free(resp);
			struct timespec ts = {0, 100 * 1000000};
			nanosleep(&ts, NULL);
			continue;
		}
		return rc;
	}
}
