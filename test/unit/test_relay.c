/* The loopback relay of a host port (traffic/relay.h) on 127.0.0.1 only: its loop runs in a
 * thread while this one plays client and task with blocking sockets. */
#include "unit.h"
#include "traffic/relay.h"
#include "util/err.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct rl {
	uv_loop_t loop;
	uv_async_t stop;
	struct relay *r[2];
};

static void rl_stop(uv_async_t *a)
{
	struct rl *x = a->data;
	relay_close(x->r[0]);
	relay_close(x->r[1]);
	uv_close((uv_handle_t *)a, NULL);
}

static void *rl_run(void *arg)
{
	uv_run(&((struct rl *)arg)->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* A TCP socket bound to 127.0.0.1 (port chosen by the kernel); listening if asked. */
static int bound(bool listening, uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof sa;
	CHECK(fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof sa) && !getsockname(fd, (struct sockaddr *)&sa, &n));
	CHECK(!listening || !listen(fd, 8));
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* A client with a small receive buffer (see the relay's send buffer below). */
static int dial(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof sa));
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* Reads until EOF; the byte count, or -errno. */
static long drain(int fd, char *first, size_t cap)
{
	char buf[65536];
	long total = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n < 0)
			return -errno;
		if (n == 0)
			return total;
		if (first && (size_t)total < cap)
			memcpy(first + total, buf, (size_t)n < cap - (size_t)total ? (size_t)n : cap - (size_t)total);
		total += n;
	}
}

UNIT(relay_half_close_keeps_the_answer_and_refusal_resets)
{
	struct rl x = {0};
	char err[ERR_LEN];
	uint16_t task_port, closed_port, lp[2];
	int task = bound(true, &task_port);
	close(bound(false, &closed_port)); /* nothing listens there */
	CHECK_EQ_INT(uv_loop_init(&x.loop), 0);
	/* small buffers towards the client (accepted sockets inherit the listener's): what the
	 * relay sends it waits in the relay's own queue */
	int lfd = bound(false, &lp[0]), small = 4096;
	setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	x.r[0] = relay_listen(&x.loop, lfd, "127.0.0.1", task_port, err);
	x.r[1] = relay_listen(&x.loop, bound(false, &lp[1]), "127.0.0.1", closed_port, err);
	CHECK(x.r[0] && x.r[1]);
	CHECK(!relay_listen(&x.loop, bound(false, &(uint16_t){0}), "not-an-address", 80, err));
	uv_async_init(&x.loop, &x.stop, rl_stop);
	x.stop.data = &x;
	pthread_t th;
	CHECK_EQ_INT(pthread_create(&th, NULL, rl_run, &x), 0);

	/* the client sends its request and half-closes; the task answers after it read the
	 * end, and closes: every byte reaches the client before its EOF */
	int cl = dial(lp[0]);
	CHECK_EQ_INT(send(cl, "ping", 4, 0), 4);
	CHECK_EQ_INT(shutdown(cl, SHUT_WR), 0);
	int tc = accept(task, NULL, NULL);
	CHECK(tc >= 0);
	struct timeval tv = {5, 0};
	setsockopt(tc, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char got[8] = "";
	CHECK_EQ_INT(drain(tc, got, sizeof got - 1), 4);
	CHECK_STR(got, "ping");
	static char big[512 << 10]; /* less than the relay queues, more than the client's buffer */
	memset(big, 'x', sizeof big);
	for (size_t off = 0; off < sizeof big;) {
		ssize_t n = send(tc, big + off, sizeof big - off, MSG_NOSIGNAL);
		CHECK(n > 0);
		off += (size_t)n;
	}
	close(tc);
	usleep(300 * 1000); /* the relay has read it all and the task's end: most is still queued */
	CHECK_EQ_INT(drain(cl, NULL, 0), (long)sizeof big);
	close(cl);

	/* nothing listens behind the other relay: the client is reset, not left hanging */
	cl = dial(lp[1]);
	CHECK_EQ_INT(drain(cl, NULL, 0), -ECONNRESET);
	close(cl);

	uv_async_send(&x.stop);
	CHECK_EQ_INT(pthread_join(th, NULL), 0);
	CHECK_EQ_INT(uv_loop_close(&x.loop), 0); /* every handle closed, the relays freed */
	close(task);
}
