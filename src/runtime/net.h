/* Container networking for one node: a bridge with the node's subnet gateway, an
 * nftables NAT table, and per task a named netns joined to the bridge by a veth pair,
 * with published ports DNAT'ed from the host. Uses the ip and nft programs; every call
 * is synchronous and safe from worker threads. Teardowns are idempotent: half-created
 * or already removed objects are fine.
 * Addresses: only the given private subnet and 127.0.0.0/8 are ever configured. */
#ifndef ORCH_NET_H
#define ORCH_NET_H
#include <stddef.h>
#include <stdint.h>
#include "runtime/nat.h"

struct net_node {
	const char *tag;    /* 1..6 of [a-z0-9], unique per node on this machine */
	const char *subnet; /* e.g. "10.88.3.0/24" (the caller allocates); gateway .1 */
};

/* Bridge orch<tag> with the gateway address, ip_forward on and route_localnet off, the
 * nft tables orch_<tag> (ip and bridge). Safe to repeat (agent restart): published ports survive. */
int net_node_setup(const struct net_node *nn, char *err);
/* The pairs of task addresses (source . destination, nat_isolated) that do not reach
 * each other on the bridge: the whole set is replaced. */
int net_isolate(const struct net_node *nn, const char *pairs, char *err);
/* Removes the tables, the bridge, and every leftover netns/veth carrying the tag. */
int net_node_teardown(const struct net_node *nn, char *err);

/* Netns orch-<tag>-<task_tag> (task_tag: 1..7 of [a-z0-9]) with eth0 = ip/prefix,
 * default route via the gateway, lo up; its veth on the bridge with hairpin; DNAT of
 * the ports to ip. netns_path_out (NAT_PATH_LEN bytes) gets the path for
 * config.json. On failure everything created is removed again. */
int net_task_setup(const struct net_node *nn, const char *task_tag, const char *ip,
		   const struct port_map *ports, size_t n, char *netns_path_out, char *err);
/* Removes the port elements, the veth and the netns. */
int net_task_teardown(const struct net_node *nn, const char *task_tag, const struct port_map *ports, size_t n,
		      char *err);

/* A port in [lo, hi] that nothing on this host has bound for proto right now (bind
 * test, random start). Ports DNAT'ed by orch are not bound: callers track those. */
int net_pick_port(uint16_t lo, uint16_t hi, int proto, uint16_t *out, char *err);

#endif
