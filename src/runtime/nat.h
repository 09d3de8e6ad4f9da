/* nftables text for a node's NAT table (pure: no I/O), and the names of every network
 * object of a node or task. Each node on a machine has a short tag that appears in every
 * name, so several nodes can share one host without touching each other's objects. */
#ifndef ORCH_NAT_H
#define ORCH_NAT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/mem.h"

#define NAT_TAG_MAX 6      /* bridge "orch<tag>" must fit IFNAMSIZ */
#define NAT_TASK_TAG_MAX 7 /* veth "v<tag>-<task>" must fit IFNAMSIZ */
#define NAT_NAME_LEN 64
#define NAT_NETNS_DIR "/var/run/netns"
#define NAT_PATH_LEN (NAT_NAME_LEN + sizeof NAT_NETNS_DIR)

struct port_map {
	uint16_t host_port, container_port;
	int proto; /* IPPROTO_TCP or IPPROTO_UDP */
};

/* A private IPv4 subnet; addresses in host byte order. */
struct nat_subnet {
	uint32_t net, mask, gw;
	int prefix;
	char cidr[24], gw_str[16];
};

struct nat_names {
	char bridge[NAT_NAME_LEN]; /* orch<tag> */
	char table[NAT_NAME_LEN];  /* orch_<tag> */
	char netns[NAT_NAME_LEN];  /* orch-<tag>-<task> */
	char netns_path[NAT_PATH_LEN];
	char veth[NAT_NAME_LEN];   /* v<tag>-<task>, host side; eth0 inside */
};

/* Tags are 1..max chars of [a-z0-9]. */
bool nat_tag_valid(const char *tag, size_t max);
/* Parses "a.b.c.d/len" (len 8..30) inside 10/8, 172.16/12 or 192.168/16; the gateway is
 * the first address. Anything else is refused: orch never routes public addresses. */
int nat_subnet_parse(const char *cidr, struct nat_subnet *out, char *err);
/* Checks ip is a usable host address of s (not network, gateway or broadcast). */
int nat_ip_check(const struct nat_subnet *s, const char *ip, char *err);
/* task_tag may be NULL (node-level names only). */
void nat_names(const char *tag, const char *task_tag, struct nat_names *out);

/* The node's table: DNAT of published ports (prerouting, and output from non-loopback
 * sources: nothing with a loopback source is routed onto the bridge), masquerade of the
 * subnet's outbound and hairpin traffic, a guard dropping what the bridge sends to
 * 127.0.0.0/8, and a forward filter: into the bridge only replies, published ports and
 * the node's own tasks (minus the pairs of the set "isolated", as in the bridge table).
 * Re-applying it keeps the port map's and the set's elements. */
void nat_ruleset(const char *tag, const struct nat_subnet *s, struct buf *out);
/* The node's bridge table (family bridge, same name): tasks of the bridge that share no
 * Compose network do not reach each other directly; the pairs (source . destination)
 * are the set "isolated", filled by nat_isolated. No IPv6 from a task's port, to other
 * tasks or the host. Re-applying it keeps the set. */
void nat_bridge_ruleset(const char *tag, struct buf *out);
/* Replaces the elements of both sets "isolated" (bridge and ip tables) with `pairs`, "a.b.c.d . e.f.g.h" items joined by ", "
 * (an empty string empties the set). */
void nat_isolated(const char *tag, const char *pairs, struct buf *out);
/* "add element" / "delete element" commands for the given ports (nothing if n == 0). */
void nat_elements(const char *tag, const char *ip, const struct port_map *ports, size_t n, bool add,
		  struct buf *out);

#endif
