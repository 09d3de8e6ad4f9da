#include "traffic/dns.h"
#include "net/ipam.h"
#include "spec/spec.h"
#include "traffic/scope.h"
#include "util/log.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t dns_answer(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap, uint32_t (*lookup)(const char *name, void *arg),
		  void *arg)
{
	if (qlen < 12 || qlen > 512 || cap < qlen + 16)
		return 0;
	uint16_t flags = (uint16_t)(q[2] << 8 | q[3]);
	uint16_t qd = (uint16_t)(q[4] << 8 | q[5]);
	if ((flags & 0x8000) || qd != 1) /* a response, or not exactly one question */
		return 0;
	/* the question name */
	char name[256];
	size_t pos = 12, nl = 0;
	for (;;) {
		if (pos >= qlen)
			return 0;
		uint8_t len = q[pos++];
		if (!len)
			break;
		if (len & 0xc0 || pos + len > qlen || nl + len + 1 >= sizeof name)
			return 0;
		if (nl)
			name[nl++] = '.';
		for (uint8_t i = 0; i < len; i++)
			name[nl++] = (char)tolower(q[pos + i]);
		pos += len;
	}
	name[nl] = 0;
	if (pos + 4 > qlen)
		return 0;
	uint16_t qtype = (uint16_t)(q[pos] << 8 | q[pos + 1]), qclass = (uint16_t)(q[pos + 2] << 8 | q[pos + 3]);
	size_t qend = pos + 4;
	memcpy(out, q, qend);
	out[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR, AA, keep RD */
	out[3] = 0x00;
	out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;
	uint32_t ip = qclass == 1 ? lookup(name, arg) : 0;
	if (!ip) {
		out[3] = strchr(name, '.') ? 0x05 : 0x03; /* REFUSED for names we do not own, NXDOMAIN for short ones */
		return qend;
	}
	if (qtype != 1 && qtype != 255) /* AAAA and others: the name exists, no such record */
		return qend;
	uint8_t *a = out + qend;
	a[0] = 0xc0;
	a[1] = 12; /* pointer to the question name */
	a[2] = 0;
	a[3] = 1;  /* A */
	a[4] = 0;
	a[5] = 1;  /* IN */
	a[6] = a[7] = a[8] = 0;
	a[9] = 5;  /* TTL 5 s */
	a[10] = 0;
	a[11] = 4;
	memcpy(a + 12, &ip, 4);
	out[7] = 1;
	return qend + 16;
}

struct dns {
	const struct host *h;
	uv_udp_t udp;
	bool open, closing;
	void (*closed_cb)(void *data); /* dns_stop's */
	void *closed_data;
	uint64_t retry_at;
	char gw[16];
	char asker[16]; /* the source address of the query being answered */
	scope_task_at_fn task_at;
	void *task_at_arg;
	char rbuf[600]; /* one query at a time: libuv reads into it and recv_cb answers at once */
};

/* name is an alias of b on a network that a shares. */
static bool alias_of(const char *pa, const struct svc_spec *a, const char *pb, const struct svc_spec *b, const char *name)
{
	for (size_t k = 0; k < b->networks.n; k++) {
		const struct svc_net *bn = &b->networks.v[k];
		bool named = false;
		for (size_t j = 0; j < bn->aliases.n && !named; j++)
			named = !strcmp(bn->aliases.v[j], name);
		if (!named)
			continue;
		struct svc_spec one = {.network_mode = NET_BRIDGE, .networks = {1, (struct svc_net *)(uintptr_t)bn}};
		if (spec_share_network(pa, a, pb, &one))
			return true;
	}
	return false;
}

const struct service *dns_resolve(const struct store *s, uint64_t node, uint64_t task, const char *src_ip, const char *name)
{
	const struct service *av = scope_service(s, scope_asker(s, node, task, src_ip));
	const struct svc_spec *asp = av ? service_spec(av) : NULL;
	TABLE_FOREACH(&s->services, const struct service, v) {
		char full[200];
		snprintf(full, sizeof full, "%s.%s", v->name, v->project ? v->project : "");
		bool by_name = !strcmp(name, v->name) || (v->project && v->project[0] && !strcmp(name, full));
		const struct svc_spec *vsp = service_spec(v);
		if (!asp || !vsp) { /* not asked from a task (or no spec): names only, unscoped */
			if (by_name)
				return v;
			continue;
		}
		if (by_name && scope_allowed(av, v))
			return v;
		if (!by_name && alias_of(av->project, asp, v->project, vsp, name))
			return v;
	}
	return NULL;
}

static uint32_t lookup(const char *name, void *arg)
{
	const struct dns *dn = arg;
	const struct host *h = dn->h;
	uint64_t task = dn->task_at ? dn->task_at(dn->task_at_arg, dn->asker) : 0;
	const struct service *v = dns_resolve(h->store, h->ident->id, task, dn->asker, name);
	if (!v)
		return 0;
	char vip[16];
	ipam_service_vip(ipam_cluster_byte(h->ident->cluster_id), v->id, vip);
	struct in_addr a;
	return inet_pton(AF_INET, vip, &a) == 1 ? a.s_addr : 0;
}

static void alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	struct dns *dn = h->data;
	(void)s;
	b->base = dn->rbuf;
	b->len = sizeof dn->rbuf;
}

struct dsend {
	uv_udp_send_t req;
	uint8_t data[600];
};

static void sent(uv_udp_send_t *req, int status)
{
	(void)status;
	free(req);
}

static void recv_cb(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *from, unsigned flags)
{
	struct dns *dn = u->data;
	(void)flags;
	if (n <= 0 || !from)
		return;
	struct dsend *s = xmalloc(sizeof *s);
	dn->asker[0] = 0;
	if (from->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)from)->sin_addr, dn->asker, sizeof dn->asker);
	size_t len = dns_answer((const uint8_t *)b->base, (size_t)n, s->data, sizeof s->data, lookup, dn);
	if (!len) {
		free(s);
		return;
	}
	uv_buf_t ob = uv_buf_init((char *)s->data, (unsigned)len);
	if (uv_udp_send(&s->req, u, &ob, 1, from, sent))
		free(s);
}

static void udp_closed(uv_handle_t *h)
{
	struct dns *dn = h->data;
	dn->closing = false;
	if (dn->closed_cb)
		dn->closed_cb(dn->closed_data);
}

struct dns *dns_new(const struct host *h)
{
	struct dns *dn = xcalloc(1, sizeof *dn);
	dn->h = h;
	return dn;
}

void dns_set_tasks(struct dns *dn, scope_task_at_fn task_at, void *arg)
{
	dn->task_at = task_at;
	dn->task_at_arg = arg;
}

void dns_sync(struct dns *dn, const char *gw)
{
	const struct host *h = dn->h;
	if (dn->open || dn->closing || host_stopping(h) || clock_now(h->clock) < dn->retry_at || !gw)
		return;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	if (inet_pton(AF_INET, gw, &sa.sin_addr) != 1)
		return;
	uv_udp_init(h->loop, &dn->udp);
	dn->udp.data = dn;
	int rc = uv_udp_bind(&dn->udp, (struct sockaddr *)&sa, 0);
	if (!rc)
		rc = uv_udp_recv_start(&dn->udp, alloc_cb, recv_cb);
	dn->open = true;
	if (rc) {
		log_warn(h->ident->name, h->clock, "service names: cannot serve DNS on %s:53: %s (retrying)", gw, uv_strerror(rc));
		dn->open = false;
		dn->closing = true;
		uv_close((uv_handle_t *)&dn->udp, udp_closed);
		dn->retry_at = clock_now(h->clock) + 5000;
		return;
	}
	snprintf(dn->gw, sizeof dn->gw, "%s", gw);
	log_info(h->ident->name, h->clock, "serving service names on %s:53", gw);
}

void dns_stop(struct dns *dn, void (*closed)(void *data), void *data)
{
	dn->closed_cb = closed;
	dn->closed_data = data;
	if (dn->open) {
		dn->open = false;
		dn->closing = true;
		uv_close((uv_handle_t *)&dn->udp, udp_closed);
	} else if (!dn->closing && closed)
		closed(data);
}

void dns_free(struct dns *dn)
{
	free(dn);
}
