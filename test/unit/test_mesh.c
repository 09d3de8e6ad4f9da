/* The routing mesh on its own host (traffic/mesh.h): a loop, a clock, a store, no daemon,
 * no root. Listeners on 127.0.0.1 only. */
#include "unit.h"
#include "entry.h"
#include "spec/spec.h"
#include "traffic/mesh.h"
#include "traffic/stats.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct mh {
	uv_loop_t loop;
	struct store store;
	struct identity ident;
	struct host host;
	struct mesh *mesh;
	uv_tcp_t client;
	uv_connect_t creq;
	uv_check_t check;
	uv_timer_t spray, deadline;
	bool dropped, client_done;
	int submits;
	void *junk[256];
	size_t njunk;
};

static uint64_t mono(void *d)
{
	return uv_now(d);
}

static uint64_t wall(void *d)
{
	(void)d;
	return 1700000000000ull;
}

static struct clock mh_clock = {mono, wall, NULL};

static int mh_submit(void *node, enum cmd type, const void *body, size_t len, host_submit_cb cb, void *data, char *err)
{
	struct mh *x = node;
	(void)type, (void)body, (void)len, (void)cb, (void)data, (void)err;
	x->submits++;
	return 0;
}

static bool mh_stopping(void *node)
{
	(void)node;
	return false;
}

/* A TCP port on 127.0.0.1 that nothing listens on (bound once, then let go). */
static uint16_t closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof sa;
	CHECK(fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof sa) && !getsockname(fd, (struct sockaddr *)&sa, &n));
	close(fd);
	return ntohs(sa.sin_port);
}

static uint64_t connections(const struct mh *x)
{
	struct svc_traffic t[4];
	size_t n = traffic_stats(x->mesh, t, 4);
	return n ? t[0].connections : 0;
}

/* Between this iteration's close callbacks (which free the dropped listener) and the
 * next iteration's I/O (the refused connect), the freed memory is taken again and
 * scribbled on, so that a connection still reading its listener reads garbage. */
static void spray(uv_timer_t *t)
{
	struct mh *x = t->data;
	for (size_t sz = 16; sz <= 1024 && x->njunk < 256; sz += 16) {
		void *p = xmalloc(sz);
		memset(p, 0xa5, sz);
		x->junk[x->njunk++] = p;
	}
}

/* Once the mesh has accepted the client, the service goes and the mesh syncs: its
 * listener is closed while the connection is still trying backends. */
static void on_check(uv_check_t *h)
{
	struct mh *x = h->data;
	if (x->dropped || !connections(x))
		return;
	x->dropped = true;
	struct mpw w;
	struct apply_res res;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", "web");
	mpw_map_end(&w);
	entry_apply(&x->store, CMD_SERVICE_RM, &w, &res);
	CHECK_EQ_INT(res.rc, 0);
	mesh_sync(x->mesh);
	uv_timer_start(&x->spray, spray, 0, 0);
}

static void client_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(s);
	b->len = s;
}

static void client_closed(uv_handle_t *h)
{
	struct mh *x = h->data;
	x->client_done = true;
	uv_close((uv_handle_t *)&x->check, NULL);
	uv_close((uv_handle_t *)&x->spray, NULL);
	uv_close((uv_handle_t *)&x->deadline, NULL);
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	free(b->base);
	if (n < 0) /* the mesh gave up on the connection: no backend answered */
		uv_close((uv_handle_t *)s, client_closed);
}

static void client_connected(uv_connect_t *req, int status)
{
	CHECK_EQ_INT(status, 0);
	uv_read_start(req->handle, client_alloc, client_read);
}

static void too_long(uv_timer_t *t)
{
	(void)t;
	fprintf(stderr, "  the mesh never closed the connection\n");
	exit(1);
}

/* A service whose port is published on 127.0.0.1 and two running tasks whose endpoints
 * are both `backend`, or when it is 0 both unreachable: each connection tries one, then
 * the other. */
static uint16_t setup(struct mh *x, uint16_t backend)
{
	memset(x, 0, sizeof *x);
	CHECK_EQ_INT(uv_loop_init(&x->loop), 0);
	mh_clock.data = &x->loop;
	store_init(&x->store);
	x->store.has_cluster = true;
	uint16_t pub = closed_port();
	char yaml[256];
	snprintf(yaml, sizeof yaml, "services:\n  web:\n    image: demo\n    ports: [\"%u:80\"]\n", pub);
	struct apply_res res;
	entry_put_service(&x->store, yaml, &res);
	CHECK_EQ_INT(res.rc, 0);
	for (unsigned i = 0; i < 2; i++) {
		struct task *t = xcalloc(1, sizeof *t);
		t->id = 50 + i;
		t->service_id = res.id;
		t->service = xstrdup("web");
		t->slot = 1 + i;
		t->desired = TD_RUNNING;
		t->state = TS_RUNNING;
		struct endpoint ep = {INADDR_LOOPBACK, backend ? backend : closed_port(), 80, IPPROTO_TCP};
		endpoints_add(&t->endpoint, &ep);
		table_put(&x->store.tasks, t);
	}
	x->ident.id = 1;
	snprintf(x->ident.name, sizeof x->ident.name, "m1");
	snprintf(x->ident.listen, sizeof x->ident.listen, "127.0.0.1:7420");
	x->host = (struct host){.node = x, .loop = &x->loop, .clock = &mh_clock, .ident = &x->ident, .data_dir = "/nonexistent",
				.store = &x->store, .submit = mh_submit, .stopping = mh_stopping};
	x->mesh = mesh_new(&x->host, false);
	mesh_sync(x->mesh);
	return pub;
}

static void teardown(struct mh *x)
{
	mesh_stop(x->mesh);
	uv_run(&x->loop, UV_RUN_DEFAULT);
	mesh_free(x->mesh);
	CHECK_EQ_INT(uv_loop_close(&x->loop), 0);
	store_free(&x->store);
	for (size_t i = 0; i < x->njunk; i++)
		free(x->junk[i]);
}

/* A connection retrying another backend after mesh_sync closed its listener: it must
 * not read the listener again (it was freed with the listener's handle). */
UNIT(mesh_retry_outlives_its_listener)
{
	static struct mh x;
	uint16_t pub = setup(&x, 0);
	uv_check_init(&x.loop, &x.check);
	x.check.data = &x;
	uv_check_start(&x.check, on_check);
	uv_timer_init(&x.loop, &x.spray);
	x.spray.data = &x;
	uv_timer_init(&x.loop, &x.deadline);
	uv_timer_start(&x.deadline, too_long, 10000, 0);
	uv_tcp_init(&x.loop, &x.client);
	x.client.data = &x;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(pub), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK_EQ_INT(uv_tcp_connect(&x.creq, &x.client, (struct sockaddr *)&sa, client_connected), 0);
	while (!x.client_done)
		uv_run(&x.loop, UV_RUN_ONCE);
	CHECK(x.dropped);
	struct svc_traffic t[4];
	CHECK_EQ_INT(traffic_stats(x.mesh, t, 4), 1);
	CHECK_EQ_INT(t[0].connections, 1);
	CHECK_EQ_INT(t[0].backend_errors, 2); /* both backends were tried */
	CHECK_EQ_INT(t[0].active, 0);
	teardown(&x);
}

static void *mh_run(void *arg)
{
	uv_run(&((struct mh *)arg)->loop, UV_RUN_DEFAULT);
	return NULL;
}

static void mh_stop(uv_async_t *a)
{
	mesh_stop(((struct mh *)a->data)->mesh);
	uv_close((uv_handle_t *)a, NULL);
}

/* Makes fd a listener on 127.0.0.1 (port chosen by the kernel) and returns its port. */
static uint16_t listening_port(int fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	CHECK(fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof sa) && !getsockname(fd, (struct sockaddr *)&sa, &sl) &&
	      !listen(fd, 8));
	return ntohs(sa.sin_port);
}

/* Runs the mesh's loop in a thread; `stop` (sent with uv_async_send) closes its listeners. */
static void mesh_thread(struct mh *x, uv_async_t *stop, pthread_t *th)
{
	uv_async_init(&x->loop, stop, mh_stop);
	stop->data = x;
	CHECK_EQ_INT(pthread_create(th, NULL, mh_run, x), 0);
}

/* Bytes read until the peer's end (or an error: negative errno). */
static long drain_all(int fd)
{
	static char buf[65536];
	long total = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n == 0)
			return total;
		if (n < 0)
			return -errno;
		total += n;
	}
}

/* The backend's side: the request and the client's end, then an answer larger than the
 * mesh's high water and the kernel's buffers together, then its end. */
struct answer {
	int listener;
	long got;
	size_t sent;
};

static void *backend_answers(void *arg)
{
	struct answer *a = arg;
	int tc = accept(a->listener, NULL, NULL);
	if (tc < 0)
		return NULL;
	struct timeval tv = {5, 0};
	setsockopt(tc, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(tc, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	a->got = drain_all(tc);
	static char big[256 << 10];
	memset(big, 'x', sizeof big);
	for (int i = 0; i < 64; i++) /* 16 MiB */
		for (size_t off = 0; off < sizeof big;) {
			ssize_t n = send(tc, big + off, sizeof big - off, MSG_NOSIGNAL);
			if (n <= 0) {
				close(tc);
				return NULL;
			}
			off += (size_t)n;
			a->sent += (size_t)n;
		}
	close(tc);
	return NULL;
}

/* The client sends its request and half-closes; the backend answers after reading that end
 * and closes. The mesh stops reading the backend while its queue to the slow client is over
 * the high water, and meets the backend's end with part of the answer still queued: every
 * byte must reach the client before its EOF (the mesh closed the connection at the second
 * end and dropped the queue). */
UNIT(mesh_half_close_keeps_the_answer)
{
	static struct mh x;
	struct answer a = {.listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
	uint16_t pub = setup(&x, listening_port(a.listener));
	uv_async_t stop;
	pthread_t th, bt;
	mesh_thread(&x, &stop, &th);
	CHECK_EQ_INT(pthread_create(&bt, NULL, backend_answers, &a), 0);

	int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096;
	setsockopt(cl, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	struct timeval tv = {5, 0};
	setsockopt(cl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in pa = {.sin_family = AF_INET, .sin_port = htons(pub), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(cl >= 0 && !connect(cl, (struct sockaddr *)&pa, sizeof pa));
	CHECK_EQ_INT(send(cl, "ping", 4, 0), 4);
	CHECK_EQ_INT(shutdown(cl, SHUT_WR), 0);
	usleep(500 * 1000); /* the mesh fills its queue to the client and stops reading the backend */
	long got = drain_all(cl);
	CHECK_EQ_INT(pthread_join(bt, NULL), 0);
	CHECK_EQ_INT(a.got, 4); /* the request, then the client's end passed on */
	CHECK_EQ_INT(a.sent, 64u << 18);
	CHECK_EQ_INT(got, (long)a.sent);
	close(cl);

	uv_async_send(&stop);
	CHECK_EQ_INT(pthread_join(th, NULL), 0);
	teardown(&x);
	close(a.listener);
}

/* The backend's side of a timed exchange: `rounds` HTTP requests on one connection, each
 * answered DELAY_US after its head arrived. */
#define DELAY_US 60000
struct slow {
	int listener, rounds, answered;
};

static void *backend_slow(void *arg)
{
	struct slow *a = arg;
	int tc = accept(a->listener, NULL, NULL);
	if (tc < 0)
		return NULL;
	struct timeval tv = {5, 0};
	setsockopt(tc, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char buf[1024];
	size_t have = 0;
	while (a->answered < a->rounds) {
		ssize_t n = recv(tc, buf + have, sizeof buf - 1 - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		char *end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		have = 0;
		usleep(DELAY_US);
		static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
		if (send(tc, ok, sizeof ok - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof ok - 1))
			break;
		a->answered++;
	}
	close(tc);
	return NULL;
}

/* Each request is timed from its first byte to the backend's first answer byte: a backend
 * that waits 60 ms lands both requests of a keep-alive connection in the (50 ms, 100 ms]
 * bucket, and only requests are timed (as many samples as requests). */
UNIT(mesh_times_requests_to_the_first_answer_byte)
{
	static struct mh x;
	struct slow a = {.listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), .rounds = 2};
	uint16_t pub = setup(&x, listening_port(a.listener));
	uv_async_t stop;
	pthread_t th, bt;
	mesh_thread(&x, &stop, &th);
	CHECK_EQ_INT(pthread_create(&bt, NULL, backend_slow, &a), 0);

	int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {5, 0};
	setsockopt(cl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in pa = {.sin_family = AF_INET, .sin_port = htons(pub), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(cl >= 0 && !connect(cl, (struct sockaddr *)&pa, sizeof pa));
	static const char req[] = "GET / HTTP/1.1\r\nHost: web\r\n\r\n";
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(send(cl, req, sizeof req - 1, 0), (long)(sizeof req - 1));
		char buf[256];
		size_t got = 0;
		while (got < 40) { /* the whole answer: head and "ok" */
			ssize_t n = recv(cl, buf + got, sizeof buf - got, 0);
			CHECK(n > 0);
			got += (size_t)n;
		}
	}
	close(cl);
	CHECK_EQ_INT(pthread_join(bt, NULL), 0);
	CHECK_EQ_INT(a.answered, 2);

	uv_async_send(&stop);
	CHECK_EQ_INT(pthread_join(th, NULL), 0);
	struct svc_traffic t[4];
	CHECK_EQ_INT(traffic_stats(x.mesh, t, 4), 1);
	CHECK_EQ_INT(t[0].requests, 2);
	CHECK_EQ_INT(lat_count(&t[0].latency), 2);
	CHECK_EQ_INT(lat_bucket(DELAY_US), 9);
	CHECK_EQ_INT(t[0].latency.n[9], 2);
	CHECK(t[0].latency.sum_us >= 2 * DELAY_US);
	teardown(&x);
	close(a.listener);
}
