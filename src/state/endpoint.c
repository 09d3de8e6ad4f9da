#include "state/endpoint.h"
#include "util/mem.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void endpoints_add(struct endpoints *e, const struct endpoint *one)
{
	e->v = xrealloc(e->v, (e->n + 1) * sizeof *e->v);
	e->v[e->n++] = *one;
}

void endpoints_free(struct endpoints *e)
{
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

void endpoints_copy(struct endpoints *dst, const struct endpoints *src)
{
	dst->n = src->n;
	dst->v = src->n ? xmalloc(src->n * sizeof *src->v) : NULL;
	if (src->n)
		memcpy(dst->v, src->v, src->n * sizeof *src->v);
}

const struct endpoint *endpoints_find(const struct endpoints *e, uint16_t port, uint8_t proto)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].port == port && e->v[i].proto == proto)
			return &e->v[i];
	return NULL;
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_UDP ? "udp" : "tcp";
}

/* IPPROTO_TCP or IPPROTO_UDP for the name s[0..n), 0 for anything else. */
static uint8_t proto_of(const char *s, size_t n)
{
	if (n == 3 && !memcmp(s, "tcp", 3))
		return IPPROTO_TCP;
	if (n == 3 && !memcmp(s, "udp", 3))
		return IPPROTO_UDP;
	return 0;
}

void endpoints_encode(const struct endpoints *e, struct mpw *w)
{
	mpw_arr(w, (uint32_t)e->n);
	for (size_t i = 0; i < e->n; i++) {
		mpw_map_begin(w);
		mpw_ku64(w, "host", e->v[i].host);
		mpw_ku64(w, "host_port", e->v[i].host_port);
		mpw_ku64(w, "port", e->v[i].port);
		mpw_kstr(w, "proto", proto_name(e->v[i].proto));
		mpw_map_end(w);
	}
}

void endpoints_encode_display(const struct endpoints *e, struct mpw *w)
{
	mpw_arr(w, (uint32_t)e->n);
	for (size_t i = 0; i < e->n; i++) {
		char ip[INET_ADDRSTRLEN];
		struct in_addr a = {htonl(e->v[i].host)};
		inet_ntop(AF_INET, &a, ip, sizeof ip);
		mpw_map_begin(w);
		mpw_kstr(w, "host", ip);
		mpw_ku64(w, "host_port", e->v[i].host_port);
		mpw_ku64(w, "port", e->v[i].port);
		mpw_kstr(w, "protocol", proto_name(e->v[i].proto));
		mpw_map_end(w);
	}
}

static int decode_one(const msgpack_object *o, struct endpoint *ep)
{
	uint64_t host, hp, cp;
	const msgpack_object *pr = mp_get(o, "proto");
	if (mp_get_u64(o, "host", &host) || mp_get_u64(o, "host_port", &hp) || mp_get_u64(o, "port", &cp) ||
	    !mp_is_str(pr) || host > UINT32_MAX || !hp || hp > 65535 || !cp || cp > 65535)
		return -1;
	ep->proto = proto_of(pr->via.str.ptr, pr->via.str.size);
	ep->host = (uint32_t)host;
	ep->host_port = (uint16_t)hp;
	ep->port = (uint16_t)cp;
	return ep->proto ? 0 : -1;
}

/* A port number: 1-65535 in decimal, the whole of s[0..n). */
static int port_of(const char *s, size_t n, uint16_t *out)
{
	uint32_t v = 0;
	if (!n || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (!v || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* One entry of the old text form, "a.b.c.d:HP->CP/PROTO", from s[0..n). */
static int legacy_one(const char *s, size_t n, struct endpoint *ep)
{
	const char *arrow = NULL, *slash = NULL, *colon = NULL;
	for (size_t i = 0; i + 1 < n && !arrow; i++)
		if (s[i] == '-' && s[i + 1] == '>')
			arrow = s + i;
	if (!arrow)
		return -1;
	for (const char *p = s; p < arrow; p++)
		if (*p == ':')
			colon = p;
	slash = memchr(arrow + 2, '/', (size_t)(s + n - (arrow + 2)));
	if (!colon || !slash || colon - s >= INET_ADDRSTRLEN)
		return -1;
	char ip[INET_ADDRSTRLEN];
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, ip, &a) != 1 || port_of(colon + 1, (size_t)(arrow - colon - 1), &ep->host_port) ||
	    port_of(arrow + 2, (size_t)(slash - arrow - 2), &ep->port))
		return -1;
	ep->host = ntohl(a.s_addr);
	ep->proto = proto_of(slash + 1, (size_t)(s + n - slash - 1));
	return ep->proto ? 0 : -1;
}

int endpoints_decode(const msgpack_object *o, struct endpoints *e)
{
	struct endpoint ep;
	if (!o || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (o->type == MSGPACK_OBJECT_STR) {
		/* entries and snapshots of the text form: an entry that does not read is left
		 * out, as the routing mesh used to skip it */
		const char *s = o->via.str.ptr, *end = s + o->via.str.size;
		while (s < end) {
			const char *comma = memchr(s, ',', (size_t)(end - s));
			const char *stop = comma ? comma : end;
			if (!legacy_one(s, (size_t)(stop - s), &ep))
				endpoints_add(e, &ep);
			s = stop + 1;
		}
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		if (decode_one(&o->via.array.ptr[i], &ep)) {
			endpoints_free(e);
			return -1;
		}
		endpoints_add(e, &ep);
	}
	return 0;
}

void endpoint_addr(const struct endpoint *ep, char out[ENDPOINT_ADDR_LEN])
{
	snprintf(out, ENDPOINT_ADDR_LEN, "%u.%u.%u.%u:%u", ep->host >> 24, ep->host >> 16 & 0xff, ep->host >> 8 & 0xff,
		 ep->host & 0xff, ep->host_port);
}

void endpoints_format(const struct endpoints *e, char *out, size_t n)
{
	size_t len = 0;
	if (n)
		out[0] = 0;
	for (size_t i = 0; i < e->n && len < n; i++) {
		char a[ENDPOINT_ADDR_LEN];
		endpoint_addr(&e->v[i], a);
		int k = snprintf(out + len, n - len, "%s%s->%u/%s", i ? "," : "", a, e->v[i].port, proto_name(e->v[i].proto));
		if (k < 0)
			break;
		len += (size_t)k;
	}
}
