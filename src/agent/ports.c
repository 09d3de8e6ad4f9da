#include "agent/ports.h"
#include "agent/agent_state.h"
#include "net/ipam.h"
#include "spec/spec.h"
#include "traffic/relay.h"
#include "util/log.h"
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A published host port is only a DNAT rule, which no other process on the machine can see:
 * another node sharing the machine (another cluster's, whose port range may overlap) would
 * pick it again. Holding it bound (never listening: DNAT'd traffic never reaches the socket)
 * makes net_pick_port's bind test fail for everyone else. Returns the fd + 1, or 0. */
int ports_hold(uint16_t port, int proto)
{
	int fd = socket(AF_INET, (proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	/* A TCP host port relays loopback clients (ports_relay) and keeps their closed
	 * connections in TIME_WAIT for a minute: with SO_REUSEADDR (inherited by them) a
	 * restarted node binds it again. Others still see it taken: net_pick_port's bind test
	 * goes without the option. (For UDP the option would let two sockets share the port.) */
	int one = 1;
	if (proto != IPPROTO_UDP)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa)) {
		close(fd);
		return 0;
	}
	return fd + 1;
}

void ports_relay(struct agent *a, struct atask *t)
{
	for (size_t i = 0; i < t->job.nports && i < RUN_MAX_PORTS && !t->job.host_net; i++) {
		if (!t->port_fds[i] || t->relays[i] || t->job.ports[i].proto != IPPROTO_TCP)
			continue;
		char err[ERR_LEN];
		t->relays[i] = relay_listen(a->h->loop, t->port_fds[i] - 1, t->job.ip, t->job.ports[i].container_port, err);
		t->port_fds[i] = 0; /* the relay's now */
		if (!t->relays[i]) /* the port stays published, only not on loopback addresses */
			log_warn(a->h->ident->name, a->h->clock, "task %llu, host port %u: %s", (unsigned long long)t->id,
				 t->job.ports[i].host_port, err);
	}
}

void ports_release(struct atask *t)
{
	for (size_t i = 0; i < RUN_MAX_PORTS; i++) {
		relay_close(t->relays[i]);
		t->relays[i] = NULL;
		if (t->port_fds[i]) {
			close(t->port_fds[i] - 1);
			t->port_fds[i] = 0;
		}
	}
}

void ports_release_all(struct agent *a, struct atask *t)
{
	ports_release(t);
	if (!t->job.host_net && t->job.ip[0])
		a->ip_used[ipam_host_of(t->job.ip)] = 0;
}

int ports_alloc_ip(struct agent *a, char out[IPAM_ADDR_LEN])
{
	for (unsigned i = 2; i < 255; i++)
		if (!a->ip_used[i] && ipam_host(a->env.subnet, i, out)) {
			a->ip_used[i] = 1;
			return 0;
		}
	return -1;
}

static bool port_taken(const struct agent *a, uint16_t p)
{
	for (const struct atask *t = a->tasks; t; t = t->next)
		if (t->phase != P_DONE)
			for (size_t i = 0; i < t->job.nports; i++)
				if (t->job.ports[i].host_port == p)
					return true;
	return false;
}

int ports_alloc(struct agent *a, struct atask *t, const struct svc_spec *sp, char *err)
{
	t->job.nports = 0;
	for (size_t i = 0; i < sp->ports.n && i < RUN_MAX_PORTS; i++) {
		int proto = sp->ports.v[i].protocol == PROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP;
		uint16_t hp = 0;
		for (int tries = 0; tries < 64; tries++) {
			if (net_pick_port((uint16_t)a->env.port_lo, (uint16_t)a->env.port_hi, proto, &hp, err))
				return E_BUSY;
			if (!port_taken(a, hp) && (t->port_fds[t->job.nports] = ports_hold(hp, proto)))
				break;
			hp = 0;
		}
		if (!hp) {
			ports_release(t);
			return errf(err, E_BUSY, "no free host port in %llu-%llu", (unsigned long long)a->env.port_lo,
				    (unsigned long long)a->env.port_hi);
		}
		struct port_map *pm = &t->job.ports[t->job.nports++];
		pm->host_port = hp;
		pm->container_port = (uint16_t)sp->ports.v[i].target;
		pm->proto = proto;
	}
	return 0;
}
