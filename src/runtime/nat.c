/* Names and nftables text. The table uses "add" for the table, map and chains and
 * flushes only the chains before re-adding rules, so running it again after an agent
 * restart repairs the rules while the port map (the published ports of running tasks)
 * stays intact; one "nft -f" makes it one atomic transaction. */
#include "runtime/nat.h"
#include "util/err.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool nat_tag_valid(const char *tag, size_t max)
{
	size_t n = tag ? strlen(tag) : 0;
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((tag[i] >= 'a' && tag[i] <= 'z') || (tag[i] >= '0' && tag[i] <= '9')))
			return false;
	return true;
}

static bool private_net(uint32_t a, int prefix)
{
	return ((a & 0xff000000u) == 0x0a000000u && prefix >= 8) ||  /* 10/8 */
	       ((a & 0xfff00000u) == 0xac100000u && prefix >= 12) || /* 172.16/12 */
	       ((a & 0xffff0000u) == 0xc0a80000u && prefix >= 16);   /* 192.168/16 */
}

static void ip_str(uint32_t a, char *out, size_t cap)
{
	snprintf(out, cap, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

int nat_subnet_parse(const char *cidr, struct nat_subnet *out, char *err)
{
	char tmp[32];
	memset(out, 0, sizeof *out);
	const char *slash = cidr ? strchr(cidr, '/') : NULL;
	if (!slash || (size_t)(slash - cidr) >= sizeof tmp)
		return errf(err, E_INVAL, "subnet \"%s\": expected a.b.c.d/len", cidr ? cidr : "");
	memcpy(tmp, cidr, (size_t)(slash - cidr));
	tmp[slash - cidr] = 0;
	struct in_addr a;
	char *end;
	long len = strtol(slash + 1, &end, 10);
	if (inet_pton(AF_INET, tmp, &a) != 1 || *end || end == slash + 1 || len < 8 || len > 30)
		return errf(err, E_INVAL, "subnet \"%s\": expected a.b.c.d/len with len 8..30", cidr);
	out->prefix = (int)len;
	out->mask = 0xffffffffu << (32 - len);
	out->net = ntohl(a.s_addr) & out->mask;
	if (!private_net(out->net, out->prefix))
		return errf(err, E_INVAL, "subnet %s is not inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16", cidr);
	out->gw = out->net + 1;
	char net[16];
	ip_str(out->net, net, sizeof net);
	snprintf(out->cidr, sizeof out->cidr, "%s/%d", net, out->prefix);
	ip_str(out->gw, out->gw_str, sizeof out->gw_str);
	return 0;
}

int nat_ip_check(const struct nat_subnet *s, const char *ip, char *err)
{
	struct in_addr a;
	if (!ip || inet_pton(AF_INET, ip, &a) != 1)
		return errf(err, E_INVAL, "invalid task address \"%s\"", ip ? ip : "");
	uint32_t h = ntohl(a.s_addr);
	if ((h & s->mask) != s->net || h == s->net || h == s->gw || h == (s->net | ~s->mask))
		return errf(err, E_INVAL, "task address %s is not a host address of %s (gateway %s)", ip, s->cidr,
			    s->gw_str);
	return 0;
}

void nat_names(const char *tag, const char *task_tag, struct nat_names *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->bridge, sizeof out->bridge, "orch%s", tag);
	snprintf(out->table, sizeof out->table, "orch_%s", tag);
	if (task_tag) {
		snprintf(out->netns, sizeof out->netns, "orch-%s-%s", tag, task_tag);
		snprintf(out->netns_path, sizeof out->netns_path, NAT_NETNS_DIR "/%s", out->netns);
		snprintf(out->veth, sizeof out->veth, "v%s-%s", tag, task_tag);
	}
}

void nat_ruleset(const char *tag, const struct nat_subnet *s, struct buf *b)
{
	struct nat_names nm;
	nat_names(tag, NULL, &nm);
	const char *t = nm.table, *br = nm.bridge;
	buf_printf(b, "add table ip %s\n", t);
	buf_printf(b, "add map ip %s ports { type inet_proto . inet_service : ipv4_addr . inet_service; }\n", t);
	buf_printf(b, "add set ip %s isolated { type ipv4_addr . ipv4_addr; }\n", t);
	buf_printf(b, "add chain ip %s prerouting { type nat hook prerouting priority dstnat; policy accept; }\n", t);
	buf_printf(b, "add chain ip %s output { type nat hook output priority -100; policy accept; }\n", t);
	buf_printf(b, "add chain ip %s postrouting { type nat hook postrouting priority srcnat; policy accept; }\n", t);
	buf_printf(b, "add chain ip %s guard { type filter hook prerouting priority raw; policy accept; }\n", t);
	buf_printf(b, "add chain ip %s forward { type filter hook forward priority filter; policy accept; }\n", t);
	static const char *const chains[] = {"prerouting", "output", "postrouting", "guard", "forward"};
	for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++)
		buf_printf(b, "flush chain ip %s %s\n", t, chains[i]);
	/* Published ports: only traffic addressed to this host; a miss in the map leaves the
	 * packet alone. A loopback source cannot leave on the bridge (route_localnet stays 0):
	 * such connections reach the agent's relay on the held host port instead
	 * (agent/ports.h), and the mesh connects to loopback endpoints from a bridge address
	 * (traffic/mesh.c). */
	const char *dnat = "fib daddr type local dnat ip to meta l4proto . th dport map @ports";
	buf_printf(b, "add rule ip %s prerouting %s\n", t, dnat);
	buf_printf(b, "add rule ip %s output ip saddr != 127.0.0.0/8 %s\n", t, dnat);
	/* Containers reaching out through whatever interface routes it. */
	buf_printf(b, "add rule ip %s postrouting ip saddr %s oifname != \"%s\" masquerade\n", t, s->cidr, br);
	/* Hairpin: a task calling a published port that lands on itself or a neighbour
	 * must see replies come from the gateway, not straight from the peer. */
	buf_printf(b, "add rule ip %s postrouting ct status dnat ip saddr %s oifname \"%s\" masquerade\n", t, s->cidr,
		   br);
	/* The host's loopback is not the tasks' business, even if route_localnet is turned on
	 * for every interface (net.ipv4.conf.all) by someone else. */
	buf_printf(b, "add rule ip %s guard iifname \"%s\" ip daddr 127.0.0.0/8 drop\n", t, br);
	/* Routed into the bridge: replies, published ports (DNAT) and the node's own routing
	 * between two of its tasks (through the gateway, still subject to the Compose
	 * networks); a host that routes the subnet via this node reaches nothing else. The
	 * mesh and the host's own connections are output, not forward. */
	buf_printf(b, "add rule ip %s forward oifname \"%s\" ct state established,related accept\n", t, br);
	buf_printf(b, "add rule ip %s forward oifname \"%s\" ct status dnat accept\n", t, br);
	buf_printf(b, "add rule ip %s forward oifname \"%s\" iifname \"%s\" ip saddr . ip daddr @isolated drop\n", t, br,
		   br);
	buf_printf(b, "add rule ip %s forward oifname \"%s\" iifname \"%s\" accept\n", t, br, br);
	buf_printf(b, "add rule ip %s forward oifname \"%s\" drop\n", t, br);
}

void nat_bridge_ruleset(const char *tag, struct buf *b)
{
	struct nat_names nm;
	nat_names(tag, NULL, &nm);
	struct nat_names pre; /* a task with an empty tag: the prefix of this node's veths */
	nat_names(tag, "", &pre);
	/* forward: frames between two ports of the bridge, i.e. task to task on this node;
	 * the same pairs routed through the gateway meet the ip table's copy of the set.
	 * Tasks get IPv4 only, but the kernel gives each interface an IPv6 link-local address,
	 * which the set does not know: IPv6 from a task's port goes nowhere (input: to the
	 * host). The chains of a bridge table see every bridge: match this node's ports. */
	buf_printf(b,
		   "add table bridge %1$s\n"
		   "add set bridge %1$s isolated { type ipv4_addr . ipv4_addr; }\n"
		   "add chain bridge %1$s forward { type filter hook forward priority 0; policy accept; }\n"
		   "add chain bridge %1$s input { type filter hook input priority 0; policy accept; }\n"
		   "flush chain bridge %1$s forward\n"
		   "flush chain bridge %1$s input\n"
		   "add rule bridge %1$s forward ip saddr . ip daddr @isolated drop\n"
		   "add rule bridge %1$s forward iifname \"%2$s*\" ether type ip6 drop\n"
		   "add rule bridge %1$s input iifname \"%2$s*\" ether type ip6 drop\n",
		   nm.table, pre.veth);
}

void nat_isolated(const char *tag, const char *pairs, struct buf *b)
{
	struct nat_names nm;
	nat_names(tag, NULL, &nm);
	static const char *const families[] = {"bridge", "ip"};
	for (size_t i = 0; i < 2; i++) {
		buf_printf(b, "flush set %s %s isolated\n", families[i], nm.table);
		if (pairs && *pairs)
			buf_printf(b, "add element %s %s isolated { %s }\n", families[i], nm.table, pairs);
	}
}

void nat_elements(const char *tag, const char *ip, const struct port_map *ports, size_t n, bool add, struct buf *b)
{
	if (n == 0)
		return;
	struct nat_names nm;
	nat_names(tag, NULL, &nm);
	buf_printf(b, "%s element ip %s ports { ", add ? "add" : "delete", nm.table);
	for (size_t i = 0; i < n; i++) {
		const char *proto = ports[i].proto == IPPROTO_UDP ? "udp" : "tcp";
		if (add)
			buf_printf(b, "%s%s . %u : %s . %u", i ? ", " : "", proto, ports[i].host_port, ip,
				   ports[i].container_port);
		else
			buf_printf(b, "%s%s . %u", i ? ", " : "", proto, ports[i].host_port);
	}
	buf_printf(b, " }\n");
}
