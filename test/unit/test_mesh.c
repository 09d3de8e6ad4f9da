/* The routing mesh on its own host (traffic/mesh.h): a loop, a clock, a store, no daemon,
 * no root. Listeners on 127.0.0.1 only. */
#include "unit.h"
#include "entry.h"
#include "spec/spec.h"
#include "traffic/mesh.h"
#include "traffic/stats.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
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
 * are both unreachable: each connection tries one, then the other. */
static uint16_t setup(struct mh *x)
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
		struct endpoint ep = {INADDR_LOOPBACK, closed_port(), 80, IPPROTO_TCP};
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
	uint16_t pub = setup(&x);
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
