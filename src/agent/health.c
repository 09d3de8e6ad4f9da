#include "agent/health.h"
#include "util/err.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void first_line(const char *s, size_t n, char *out, size_t cap)
{
	size_t i = 0;
	while (i < n && (s[i] == '\n' || s[i] == '\r' || s[i] == ' '))
		i++;
	size_t j = i;
	while (j < n && s[j] != '\n' && s[j] != '\r')
		j++;
	snprintf(out, cap, "%.*s", (int)(j - i), s + i);
}

/* Connects with a deadline; returns the fd or -1 with a message. */
static int dial(const char *host, uint16_t port, uint64_t deadline, char *msg, size_t cap)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		snprintf(msg, cap, "bad address %s", host);
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(msg, cap, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) && errno != EINPROGRESS) {
		snprintf(msg, cap, "connect %s:%u: %s", host, port, strerror(errno));
		close(fd);
		return -1;
	}
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	uint64_t now = now_ms();
	if (poll(&p, 1, deadline > now ? (int)(deadline - now) : 0) <= 0) {
		snprintf(msg, cap, "connect %s:%u: timed out", host, port);
		close(fd);
		return -1;
	}
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr) {
		snprintf(msg, cap, "connect %s:%u: %s", host, port, strerror(soerr));
		close(fd);
		return -1;
	}
	return fd;
}

static void http_check(struct check_req *c)
{
	uint64_t deadline = now_ms() + (uint64_t)c->timeout_ms;
	int fd = dial(c->host, c->port, deadline, c->output, sizeof c->output);
	if (fd < 0)
		return;
	char req[512];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s:%u\r\nUser-Agent: orch-health\r\nConnection: close\r\n\r\n",
			 c->path[0] ? c->path : "/", c->host, c->port);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		snprintf(c->output, sizeof c->output, "http: send failed");
		close(fd);
		return;
	}
	char buf[512];
	size_t got = 0;
	while (got < sizeof buf - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = now_ms();
		if (poll(&p, 1, deadline > now ? (int)(deadline - now) : 0) <= 0) {
			snprintf(c->output, sizeof c->output, "http: no response within %d ms", c->timeout_ms);
			close(fd);
			return;
		}
		ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (memchr(buf, '\n', got))
			break;
	}
	close(fd);
	buf[got] = 0;
	int code = 0;
	if (sscanf(buf, "HTTP/%*d.%*d %d", &code) != 1) {
		snprintf(c->output, sizeof c->output, "http: not an HTTP response");
		return;
	}
	first_line(buf, got, c->output, sizeof c->output);
	c->ok = code >= 200 && code < 400;
}

void health_run(struct check_req *c)
{
	c->ok = false;
	c->output[0] = 0;
	if (c->kind == CHECK_TCP) {
		int fd = dial(c->host, c->port, now_ms() + (uint64_t)c->timeout_ms, c->output, sizeof c->output);
		if (fd >= 0) {
			close(fd);
			c->ok = true;
			snprintf(c->output, sizeof c->output, "tcp %s:%u: connected", c->host, c->port);
		}
		return;
	}
	if (c->kind == CHECK_HTTP) {
		http_check(c);
		return;
	}
	struct buf out = {0};
	char err[ERR_LEN];
	int code = -1;
	int rc = rt_exec(c->rt, c->cid, (const char *const *)c->argv, c->timeout_ms, &code, &out, err);
	if (rc == E_TIMEOUT)
		snprintf(c->output, sizeof c->output, "timed out after %d ms (killed)", c->timeout_ms);
	else if (rc)
		snprintf(c->output, sizeof c->output, "%s", err);
	else {
		c->ok = code == 0;
		if (out.len)
			first_line((const char *)out.data, out.len, c->output, sizeof c->output);
		if (!c->ok && !c->output[0])
			snprintf(c->output, sizeof c->output, "exit code %d", code);
	}
	buf_free(&out);
}
