#include "traffic/mesh.h"
#include "traffic/reqcount.h"
#include "traffic/scope.h"
#include "traffic/stats.h"
#include "net/ipam.h"
#include "runtime/runproc.h"
#include "spec/spec.h"
#include "util/log.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_EP 256
#define HIGH_WATER (4u << 20)
#define CONNECT_TIMEOUT_MS 300 /* on a LAN a connect takes well under 1 ms: a lost SYN is retried elsewhere, not after the 1 s RTO */

enum { LB_RR, LB_LEAST };

struct mstat {
	struct svc_traffic t;
};

/* Connections open to one backend (host and host port), for least-connections. */
struct epcount {
	uint32_t host;
	uint16_t port;
	unsigned active;
};

struct mesh;

struct lsn {
	struct mesh *m;
	uv_tcp_t tcp;
	uint64_t service_id;
	char service[64];
	uint16_t target;
	char ip[16];
	uint16_t port;
	bool vip, seen, open;
	int lb, proxy;
	uint64_t rr;
	struct lsn *next;
};

struct mesh {
	const struct host *h;
	bool vips_on; /* publish virtual addresses (ip addr on lo) */
	struct lsn *lsns;
	struct mstat *stats;
	size_t nstats;
	struct epcount *eps;
	size_t neps;
	char **vips;
	size_t nvips;
	scope_task_at_fn task_at; /* who connects to a service address (mesh_set_tasks) */
	void *task_at_arg;
	char **errs; /* "service\tmessage" reported, to report changes only */
	size_t nerrs;
	struct mconn *conns; /* open, closed by mesh_stop (the loop may be shared with other nodes) */
};

static struct mstat *stat_of(struct mesh *m, const char *svc)
{
	for (size_t i = 0; i < m->nstats; i++)
		if (!strcmp(m->stats[i].t.service, svc))
			return &m->stats[i];
	m->stats = xrealloc(m->stats, (m->nstats + 1) * sizeof *m->stats);
	struct mstat *s = &m->stats[m->nstats++];
	memset(s, 0, sizeof *s);
	snprintf(s->t.service, sizeof s->t.service, "%s", svc);
	return s;
}

static struct epcount *ep_of(struct mesh *m, const struct endpoint *ep)
{
	for (size_t i = 0; i < m->neps; i++)
		if (m->eps[i].host == ep->host && m->eps[i].port == ep->host_port)
			return &m->eps[i];
	m->eps = xrealloc(m->eps, (m->neps + 1) * sizeof *m->eps);
	struct epcount *e = &m->eps[m->neps++];
	memset(e, 0, sizeof *e);
	e->host = ep->host;
	e->port = ep->host_port;
	return e;
}

size_t traffic_stats(const struct mesh *m, struct svc_traffic *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; m && i < m->nstats && n < max; i++)
		out[n++] = m->stats[i].t;
	return n;
}


/* ---- endpoints ---------------------------------------------------------------------------- */

/* The address a connection to ep leaves from, 0 for the kernel's choice. An endpoint on
 * a loopback address is a node on this machine: a loopback source could not be routed
 * onto its bridge (route_localnet stays off, runtime/nat.h), so the connection leaves
 * from the gateway of the task's bridge (.1 of its node's /24, net/ipam.h), a local
 * address its node's DNAT answers with the task's replies. */
static uint32_t endpoint_source(const struct endpoint *ep, const char *task_ip)
{
	struct in_addr a;
	if ((ep->host >> 24) != 127 || !task_ip || inet_pton(AF_INET, task_ip, &a) != 1)
		return 0;
	return (ntohl(a.s_addr) & 0xffffff00u) | 1u;
}

/* The backends of a service's container port (TCP) on the tasks that run, are ready and
 * not unhealthy, and the source address for each (endpoint_source). */
static size_t ready_endpoints(const struct store *s, uint64_t sid, uint16_t target, struct endpoint *out,
			      uint32_t *src, size_t max)
{
	size_t n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (t->service_id != sid || t->desired != TD_RUNNING || t->state != TS_RUNNING)
			continue;
		if (t->ready && t->ready[0] && strcmp(t->ready, "ready"))
			continue;
		if (t->health && !strcmp(t->health, "unhealthy"))
			continue;
		const struct endpoint *ep = endpoints_find(&t->endpoint, target, IPPROTO_TCP);
		if (n < max && ep) {
			src[n] = endpoint_source(ep, t->ip);
			out[n++] = *ep;
		}
	}
	return n;
}

/* ---- connections ------------------------------------------------------------------------------- */

/* A proxied connection. It copies what it needs of its listener at accept: mesh_sync may
 * close the listener (the service went, its port changed) while the connection lives on,
 * retrying backends. */
struct mconn {
	struct mesh *m;
	uv_loop_t *loop;
	uint16_t port; /* the listener's, for the PROXY header */
	int proxy;
	char service[64];
	uv_tcp_t client, backend;
	uv_connect_t creq;
	uv_timer_t timer;
	int handles;
	bool backend_ready, closing, client_eof, backend_eof, backend_inited;
	int shut; /* shutdowns done: both (every byte passed on both ways) ends the connection */
	struct buf pending; /* client bytes before the backend is connected */
	struct endpoint eps[MAX_EP];
	uint32_t srcs[MAX_EP]; /* endpoint_source of each */
	size_t neps, next_try, tries;
	struct endpoint cur_ep; /* the backend being connected or used */
	bool has_cur;
	struct reqcount hp;
	/* the HTTP request being timed: its first byte's time (uv_hrtime), set until the
	 * backend's first answer byte; asked once its head ended (only counted requests are
	 * timed) */
	uint64_t req_t0;
	bool awaiting, asked;
	char client_addr[64];
	uint16_t client_port;
	struct mconn *next, *prev; /* the mesh's open connections */
};

static void conn_closed(uv_handle_t *h)
{
	struct mconn *c = h->data;
	if (--c->handles == 0) {
		buf_free(&c->pending);
		free(c);
	}
}

static void mc_close(struct mconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else if (c->m->conns == c)
		c->m->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	struct mstat *s = stat_of(c->m, c->service);
	if (s->t.active)
		s->t.active--;
	if (c->has_cur) {
		struct epcount *e = ep_of(c->m, &c->cur_ep);
		if (e->active)
			e->active--;
	}
	uv_close((uv_handle_t *)&c->client, conn_closed);
	uv_close((uv_handle_t *)&c->timer, conn_closed);
	if (c->backend_inited)
		uv_close((uv_handle_t *)&c->backend, conn_closed);
}

/* Counts the requests and starts timing one when its first byte arrives: a piece that
 * finds the counter between heads begins the next request. Requests pipelined before the
 * first answer are timed as one (the answers are not parsed, so which byte answers which
 * request is unknown): HTTP/1.x clients rarely pipeline. */
static void count_http(struct mconn *c, const char *p, size_t n)
{
	if (!c->awaiting && c->hp.mode != 2 && c->hp.st == 0 && c->hp.hlen == 0) {
		c->awaiting = true;
		c->asked = false;
		c->req_t0 = uv_hrtime();
	}
	unsigned k = reqcount_feed(&c->hp, p, n);
	if (k) {
		stat_of(c->m, c->service)->t.requests += k;
		c->asked = true;
	}
	if (c->hp.mode == 2)
		c->awaiting = false;
}

/* The backend's first byte after a request: the request's latency. */
static void answer_seen(struct mconn *c)
{
	if (!c->awaiting)
		return;
	c->awaiting = false;
	if (c->asked)
		lat_record(&stat_of(c->m, c->service)->t.latency, (uv_hrtime() - c->req_t0) / 1000);
}

struct mwrite {
	uv_write_t req;
	uv_buf_t buf;
	struct mconn *c;
	bool to_backend;
};

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(suggested);
	b->len = suggested;
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void backend_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void write_cb(uv_write_t *req, int status)
{
	struct mwrite *w = (struct mwrite *)req;
	struct mconn *c = w->c;
	free(w->buf.base);
	bool to_backend = w->to_backend;
	free(w);
	if (c->closing)
		return;
	if (status) {
		mc_close(c);
		return;
	}
	/* resume the source once the destination drained */
	uv_stream_t *dst = to_backend ? (uv_stream_t *)&c->backend : (uv_stream_t *)&c->client;
	uv_stream_t *src = to_backend ? (uv_stream_t *)&c->client : (uv_stream_t *)&c->backend;
	bool src_eof = to_backend ? c->client_eof : c->backend_eof;
	if (!src_eof && uv_stream_get_write_queue_size(dst) < HIGH_WATER / 4 && !uv_is_closing((uv_handle_t *)src))
		uv_read_start(src, alloc_cb, to_backend ? client_read : backend_read);
}

/* Takes ownership of data. */
static void forward(struct mconn *c, bool to_backend, char *data, size_t n)
{
	uv_stream_t *dst = to_backend ? (uv_stream_t *)&c->backend : (uv_stream_t *)&c->client;
	struct mwrite *w = xcalloc(1, sizeof *w);
	w->buf = uv_buf_init(data, (unsigned)n);
	w->c = c;
	w->to_backend = to_backend;
	if (uv_write(&w->req, dst, &w->buf, 1, write_cb)) {
		free(data);
		free(w);
		mc_close(c);
		return;
	}
	struct mstat *s = stat_of(c->m, c->service);
	if (to_backend)
		s->t.bytes_in += n;
	else
		s->t.bytes_out += n;
	if (uv_stream_get_write_queue_size(dst) > HIGH_WATER)
		uv_read_stop(to_backend ? (uv_stream_t *)&c->client : (uv_stream_t *)&c->backend);
}

static void shut_cb(uv_shutdown_t *req, int status)
{
	struct mconn *c = req->data;
	free(req);
	if (c->closing) /* canceled by the close: c lives until its handles closed */
		return;
	if (status || ++c->shut == 2)
		mc_close(c);
}

/* Passes one side's end on to the other once the bytes queued before it are written (a
 * shutdown waits for them); the connection ends when both shutdowns are done, not at the
 * second end-of-stream, which would drop what is still queued for the side that ended first. */
static void half_close(struct mconn *c, bool backend_side)
{
	uv_shutdown_t *req = xmalloc(sizeof *req);
	req->data = c;
	if (uv_shutdown(req, backend_side ? (uv_stream_t *)&c->backend : (uv_stream_t *)&c->client, shut_cb)) {
		free(req);
		mc_close(c);
	}
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct mconn *c = s->data;
	if (n < 0) {
		free(b->base);
		if (n != UV_EOF || !c->backend_ready) {
			if (n == UV_EOF && !c->backend_ready) {
				c->client_eof = true; /* flush what we have once connected */
				uv_read_stop(s);
				return;
			}
			mc_close(c);
			return;
		}
		c->client_eof = true;
		uv_read_stop(s);
		half_close(c, true);
		return;
	}
	if (n == 0) {
		free(b->base);
		return;
	}
	count_http(c, b->base, (size_t)n);
	if (!c->backend_ready) {
		buf_append(&c->pending, b->base, (size_t)n);
		free(b->base);
		if (c->pending.len > HIGH_WATER)
			uv_read_stop(s);
		return;
	}
	forward(c, true, b->base, (size_t)n);
}

static void backend_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct mconn *c = s->data;
	if (n < 0) {
		free(b->base);
		if (n != UV_EOF) {
			mc_close(c);
			return;
		}
		c->backend_eof = true;
		uv_read_stop(s);
		half_close(c, false);
		return;
	}
	if (n == 0) {
		free(b->base);
		return;
	}
	answer_seen(c);
	forward(c, false, b->base, (size_t)n);
}

static void proxy_header(struct mconn *c)
{
	if (!c->proxy)
		return;
	struct sockaddr_storage ss;
	int len = sizeof ss;
	char dst[64] = "0.0.0.0";
	uint16_t dport = c->port;
	if (!uv_tcp_getsockname(&c->client, (struct sockaddr *)&ss, &len) && ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, dst, sizeof dst);
		dport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	if (c->proxy == 1) {
		char *h = xasprintf("PROXY TCP4 %s %s %u %u\r\n", c->client_addr, dst, c->client_port, dport);
		forward(c, true, h, strlen(h));
		return;
	}
	static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
	uint8_t *h = xmalloc(16 + 12);
	memcpy(h, sig, 12);
	h[12] = 0x21; /* v2, PROXY */
	h[13] = 0x11; /* TCP over IPv4 */
	h[14] = 0;
	h[15] = 12;
	struct in_addr a, b;
	inet_pton(AF_INET, c->client_addr, &a);
	inet_pton(AF_INET, dst, &b);
	memcpy(h + 16, &a, 4);
	memcpy(h + 20, &b, 4);
	h[24] = (uint8_t)(c->client_port >> 8);
	h[25] = (uint8_t)c->client_port;
	h[26] = (uint8_t)(dport >> 8);
	h[27] = (uint8_t)dport;
	forward(c, true, (char *)h, 28);
}

static void try_next(struct mconn *c);

static void backend_closed_for_retry(uv_handle_t *h)
{
	struct mconn *c = h->data;
	c->handles--;
	c->backend_inited = false;
	if (c->closing) {
		if (c->handles == 0) {
			buf_free(&c->pending);
			free(c);
		}
		return;
	}
	try_next(c);
}

static void connect_failed(struct mconn *c)
{
	struct mstat *s = stat_of(c->m, c->service);
	s->t.backend_errors++;
	struct epcount *e = ep_of(c->m, &c->cur_ep);
	if (e->active)
		e->active--;
	char a[ENDPOINT_ADDR_LEN];
	endpoint_addr(&c->cur_ep, a);
	TRACE("mesh", c->service, "backend %s unreachable, trying another", a);
	c->has_cur = false;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->backend, backend_closed_for_retry);
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct mconn *c = req->data;
	/* ECANCELED: we closed the backend handle ourselves (connect timeout, then
	 * connect_failed), and libuv cancels the pending connect while closing it; treating
	 * that as a second failure would close the handle twice. */
	if (c->closing || status == UV_ECANCELED)
		return;
	if (status) {
		connect_failed(c);
		return;
	}
	uv_timer_stop(&c->timer);
	c->backend_ready = true;
	uv_tcp_nodelay(&c->backend, 1);
	proxy_header(c);
	if (c->pending.len) {
		char *p = xmalloc(c->pending.len);
		memcpy(p, c->pending.data, c->pending.len);
		forward(c, true, p, c->pending.len);
		c->pending.len = 0;
	}
	uv_read_start((uv_stream_t *)&c->backend, alloc_cb, backend_read);
	if (c->client_eof)
		half_close(c, true);
	else
		uv_read_start((uv_stream_t *)&c->client, alloc_cb, client_read);
}

static void connect_timeout(uv_timer_t *t)
{
	struct mconn *c = t->data;
	if (!c->closing && !c->backend_ready && c->backend_inited)
		connect_failed(c);
}

static void try_next(struct mconn *c)
{
	if (c->tries >= c->neps) {
		TRACE("mesh", c->service, "no reachable endpoint");
		mc_close(c);
		return;
	}
	size_t k = (c->next_try + c->tries) % c->neps;
	const struct endpoint *ep = &c->eps[k];
	c->tries++;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(ep->host_port), .sin_addr.s_addr = htonl(ep->host)};
	c->cur_ep = *ep;
	c->has_cur = true;
	ep_of(c->m, ep)->active++;
	uv_tcp_init(c->loop, &c->backend);
	c->backend.data = c;
	c->backend_inited = true;
	c->handles++;
	c->creq.data = c;
	struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(c->srcs[k])};
	if ((c->srcs[k] && uv_tcp_bind(&c->backend, (struct sockaddr *)&from, 0)) ||
	    uv_tcp_connect(&c->creq, &c->backend, (struct sockaddr *)&sa, connect_cb)) {
		connect_failed(c);
		return;
	}
	uv_timer_start(&c->timer, connect_timeout, CONNECT_TIMEOUT_MS, 0);
}

/* A task reaches a service address only if their services share a network (a task
 * outside them does not even resolve the name: traffic/dns.c). */
static bool vip_allowed(const struct mesh *m, const struct lsn *l, const char *client)
{
	const struct store *s = m->h->store;
	uint64_t task = m->task_at ? m->task_at(m->task_at_arg, client) : 0;
	const struct service *from = scope_service(s, scope_asker(s, m->h->ident->id, task, client));
	return scope_allowed(from, table_get_u64(&s->services, l->service_id));
}

static void on_accept(uv_stream_t *srv, int status)
{
	struct lsn *l = srv->data;
	struct mesh *m = l->m;
	if (status)
		return;
	struct mconn *c = xcalloc(1, sizeof *c);
	c->m = m;
	c->loop = srv->loop;
	c->port = l->port;
	c->proxy = l->proxy;
	snprintf(c->service, sizeof c->service, "%s", l->service);
	uv_tcp_init(srv->loop, &c->client);
	uv_timer_init(srv->loop, &c->timer);
	c->client.data = c->timer.data = c;
	c->handles = 2;
	if (uv_accept(srv, (uv_stream_t *)&c->client)) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->client, conn_closed);
		uv_close((uv_handle_t *)&c->timer, conn_closed);
		return;
	}
	c->next = m->conns;
	if (m->conns)
		m->conns->prev = c;
	m->conns = c;
	uv_tcp_nodelay(&c->client, 1);
	struct sockaddr_storage ss;
	int len = sizeof ss;
	if (!uv_tcp_getpeername(&c->client, (struct sockaddr *)&ss, &len) && ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->client_addr, sizeof c->client_addr);
		c->client_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	struct mstat *s = stat_of(m, l->service);
	s->t.connections++;
	s->t.active++;
	if (l->vip && !vip_allowed(m, l, c->client_addr)) {
		c->closing = false;
		mc_close(c);
		return;
	}
	c->neps = ready_endpoints(m->h->store, l->service_id, l->target, c->eps, c->srcs, MAX_EP);
	if (!c->neps) {
		s->t.backend_errors++;
		c->closing = false;
		mc_close(c);
		return;
	}
	if (l->lb == LB_LEAST) {
		size_t best = 0;
		unsigned best_n = UINT32_MAX;
		size_t start = (size_t)(l->rr++ % c->neps);
		for (size_t k = 0; k < c->neps; k++) {
			size_t i = (start + k) % c->neps;
			unsigned a = ep_of(m, &c->eps[i])->active;
			if (a < best_n) {
				best_n = a;
				best = i;
			}
		}
		c->next_try = best;
	} else
		c->next_try = (size_t)(l->rr++ % c->neps);
	uv_read_start((uv_stream_t *)&c->client, alloc_cb, client_read);
	try_next(c);
}

/* ---- listeners --------------------------------------------------------------------------------- */

static void lsn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void lsn_drop(struct lsn *l)
{
	if (l->open)
		uv_close((uv_handle_t *)&l->tcp, lsn_closed);
	else
		free(l);
}

static int lsn_open(struct mesh *m, struct lsn *l, char *err)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(l->port)};
	if (inet_pton(AF_INET, l->ip, &sa.sin_addr) != 1)
		return errf(err, E_INVAL, "bad address %s", l->ip);
	uv_tcp_init(m->h->loop, &l->tcp);
	l->tcp.data = l;
	l->open = true;
	int rc = 0;
	if (l->vip) {
		/* A virtual address belongs to the cluster: several of its nodes sharing a machine
		 * all listen on it (any of them balances over the same endpoints). */
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
		if (fd < 0)
			return errf(err, E_IO, "socket: %s", strerror(errno));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
		rc = uv_tcp_open(&l->tcp, fd);
	}
	if (!rc)
		rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&sa, 0);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_accept);
	if (rc)
		return errf(err, E_IO, "port %s:%u: %s", l->ip, l->port, uv_strerror(rc));
	return 0;
}

static struct lsn *lsn_find(struct mesh *m, const char *ip, uint16_t port)
{
	for (struct lsn *l = m->lsns; l; l = l->next)
		if (l->port == port && !strcmp(l->ip, ip))
			return l;
	return NULL;
}

/* ip addr add/del of virtual addresses on lo, off the loop */
struct ipjob {
	uv_work_t req;
	char vip[16];
	bool add;
};

static void ip_work(uv_work_t *req)
{
	struct ipjob *j = req->data;
	char cidr[24], err[ERR_LEN];
	snprintf(cidr, sizeof cidr, "%s/32", j->vip);
	int st = 0;
	struct runproc rp = {.argv = (const char *const[]){"ip", "addr", j->add ? "add" : "del", cidr, "dev", "lo", NULL}, .out_fd = -1, .timeout_ms = 5000};
	runproc_run(&rp, &st, err);
}

static void ip_done(uv_work_t *req, int status)
{
	(void)status;
	free(req->data);
}

static void vip_set(struct mesh *m, const char *vip, bool add)
{
	struct ipjob *j = xcalloc(1, sizeof *j);
	j->req.data = j;
	snprintf(j->vip, sizeof j->vip, "%s", vip);
	j->add = add;
	uv_queue_work(m->h->loop, &j->req, ip_work, ip_done);
}

/* Records (or, with "", clears) this node's port problem on the service. */
static void submit_port_error(struct mesh *m, const char *service, const char *msg)
{
	struct cmd_service_port_error b = {.name = service, .node_id = m->h->ident->id, .msg = msg};
	struct mpw w;
	mpw_init(&w);
	cmd_body(&w, CMD_SERVICE_PORT_ERROR, &b);
	char err[ERR_LEN];
	host_submit(m->h, CMD_SERVICE_PORT_ERROR, w.sb.data, w.sb.size, NULL, NULL, err);
	mpw_free(&w);
}

static void note_port_error(struct mesh *m, const char *service, const char *msg)
{
	char key[512];
	snprintf(key, sizeof key, "%s\t%s", service, msg);
	for (size_t i = 0; i < m->nerrs; i++)
		if (!strcmp(m->errs[i], key))
			return;
	m->errs = xrealloc(m->errs, (m->nerrs + 1) * sizeof *m->errs);
	m->errs[m->nerrs++] = xstrdup(key);
	log_warn(m->h->ident->name, m->h->clock, "service %s: %s", service, msg);
	submit_port_error(m, service, msg);
}

static void want(struct mesh *m, const struct service *v, const char *ip, uint16_t port, uint16_t target, bool vip,
		 int lb, int proxy)
{
	struct lsn *l = lsn_find(m, ip, port);
	if (l && l->service_id != v->id) {
		char msg[ERR_LEN];
		snprintf(msg, sizeof msg, "port %u on %s is already published by service %s", port, ip, l->service);
		note_port_error(m, v->name, msg);
		return;
	}
	if (!l) {
		l = xcalloc(1, sizeof *l);
		l->m = m;
		l->service_id = v->id;
		snprintf(l->service, sizeof l->service, "%s", v->name);
		snprintf(l->ip, sizeof l->ip, "%s", ip);
		l->port = port;
		l->vip = vip;
		char err[ERR_LEN];
		if (lsn_open(m, l, err)) {
			char msg[ERR_LEN];
			snprintf(msg, sizeof msg, "cannot publish %s on node %s: %s", vip ? "the virtual address" : "the port",
				 m->h->ident->name, err);
			note_port_error(m, v->name, msg);
			lsn_drop(l);
			return;
		}
		l->next = m->lsns;
		m->lsns = l;
		TRACE("mesh", v->name, "listening on %s:%u -> port %u", ip, port, target);
		if (labels_get(&v->port_errors, m->h->ident->name)) { /* it works now: clear the report */
			for (size_t i = 0; i < m->nerrs; i++)
				if (!strncmp(m->errs[i], v->name, strlen(v->name)) && m->errs[i][strlen(v->name)] == '\t')
					m->errs[i][0] = 0;
			submit_port_error(m, v->name, "");
		}
	}
	l->target = target;
	l->lb = lb;
	l->proxy = proxy;
	l->seen = true;
}

struct mesh *mesh_new(const struct host *h, bool virtual_addresses)
{
	struct mesh *m = xcalloc(1, sizeof *m);
	m->h = h;
	m->vips_on = virtual_addresses;
	return m;
}

void mesh_set_tasks(struct mesh *m, scope_task_at_fn task_at, void *arg)
{
	m->task_at = task_at;
	m->task_at_arg = arg;
}

void mesh_sync(struct mesh *m)
{
	const struct host *h = m->h;
	if (host_stopping(h) || !h->store->has_cluster)
		return;
	char lip[64];
	snprintf(lip, sizeof lip, "%s", h->ident->listen);
	char *colon = strrchr(lip, ':');
	if (colon)
		*colon = 0;
	for (struct lsn *l = m->lsns; l; l = l->next)
		l->seen = false;
	char **vips = NULL;
	size_t nvips = 0;
	TABLE_FOREACH(&h->store->services, const struct service, v) {
		const struct svc_spec *sp = service_spec(v);
		if (!sp)
			continue;
		const char *lbv = labels_get(&sp->deploy.labels, "orch.lb");
		const char *ppv = labels_get(&sp->deploy.labels, "orch.proxy-protocol");
		int lb = lbv && (!strcmp(lbv, "least-connections") || !strcmp(lbv, "least_conn") || !strcmp(lbv, "leastconn")) ? LB_LEAST : LB_RR;
		int proxy = ppv && !strcmp(ppv, "v1") ? 1 : ppv && !strcmp(ppv, "v2") ? 2 : 0;
		char vip[16];
		ipam_service_vip(ipam_cluster_byte(h->ident->cluster_id), v->id, vip);
		bool any = false;
		for (size_t i = 0; i < sp->ports.n; i++) {
			const struct port_spec *p = &sp->ports.v[i];
			if (p->protocol != PROTO_TCP)
				continue;
			if (p->published && p->mode == PORT_MODE_INGRESS)
				want(m, v, lip, (uint16_t)p->published, (uint16_t)p->target, false, lb, proxy);
			any = true;
		}
		if (any && m->vips_on) {
			vips = xrealloc(vips, (nvips + 1) * sizeof *vips);
			vips[nvips++] = xstrdup(vip);
			bool known = false;
			for (size_t k = 0; k < m->nvips; k++)
				known |= !strcmp(m->vips[k], vip);
			if (known) /* the address exists: listen on it */
				for (size_t i = 0; i < sp->ports.n; i++)
					if (sp->ports.v[i].protocol == PROTO_TCP)
						want(m, v, vip, (uint16_t)sp->ports.v[i].target, (uint16_t)sp->ports.v[i].target, true, lb, proxy);
		}
	}
	/* virtual addresses: add new ones (listened on from the next sync), drop old ones */
	for (size_t i = 0; i < nvips; i++) {
		bool known = false;
		for (size_t k = 0; k < m->nvips; k++)
			known |= !strcmp(m->vips[k], vips[i]);
		if (!known)
			vip_set(m, vips[i], true);
	}
	for (size_t k = 0; k < m->nvips; k++) {
		bool still = false;
		for (size_t i = 0; i < nvips; i++)
			still |= !strcmp(m->vips[k], vips[i]);
		if (!still)
			vip_set(m, m->vips[k], false);
		free(m->vips[k]);
	}
	free(m->vips);
	m->vips = vips;
	m->nvips = nvips;
	for (struct lsn **pp = &m->lsns; *pp;) {
		struct lsn *l = *pp;
		if (!l->seen) {
			TRACE("mesh", l->service, "closing %s:%u", l->ip, l->port);
			*pp = l->next;
			lsn_drop(l);
		} else
			pp = &l->next;
	}
}

void mesh_stop(struct mesh *m)
{
	while (m->conns)
		mc_close(m->conns);
	while (m->lsns) {
		struct lsn *l = m->lsns;
		m->lsns = l->next;
		lsn_drop(l);
	}
}

void mesh_free(struct mesh *m)
{
	if (!m)
		return;
	mesh_stop(m);
	free(m->stats);
	free(m->eps);
	for (size_t i = 0; i < m->nvips; i++)
		free(m->vips[i]);
	free(m->vips);
	for (size_t i = 0; i < m->nerrs; i++)
		free(m->errs[i]);
	free(m->errs);
	free(m);
}
