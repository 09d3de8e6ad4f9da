#include "net/ipam.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NET_A 10
#define SECOND_OCTET(b) (128 + (b) % 128)
#define VIP_THIRD_FIRST 251
#define VIPS_PER_THIRD 250

unsigned ipam_cluster_byte(const uint8_t *cluster_id)
{
	return cluster_id[0];
}

void ipam_node_net(unsigned b, uint64_t subnet, char tag[IPAM_TAG_LEN], char cidr[IPAM_CIDR_LEN])
{
	/* the tag carries the same 7 bits as the subnet, so a bridge name taken on this machine
	 * is exactly a subnet taken: two clusters whose bytes differ only in the top bit would
	 * otherwise get two bridges with one subnet, and the second one's tasks no route */
	snprintf(tag, IPAM_TAG_LEN, "%02x%llu", b % 128, (unsigned long long)subnet);
	snprintf(cidr, IPAM_CIDR_LEN, "%u.%u.%llu.0/24", NET_A, SECOND_OCTET(b % 256), (unsigned long long)subnet);
}

bool ipam_host(const char *cidr, unsigned host, char out[IPAM_ADDR_LEN])
{
	const char *dot = strrchr(cidr, '.');
	if (!dot || host < 1 || host > 254)
		return false;
	snprintf(out, IPAM_ADDR_LEN, "%.*s%u", (int)(dot - cidr + 1), cidr, host);
	return true;
}

unsigned ipam_host_of(const char *ip)
{
	const char *dot = ip ? strrchr(ip, '.') : NULL;
	if (!dot)
		return 0;
	char *end;
	unsigned long h = strtoul(dot + 1, &end, 10);
	return *end || h < 1 || h > 254 ? 0 : (unsigned)h;
}

void ipam_service_vip(unsigned cluster_byte, uint64_t service_id, char out[IPAM_ADDR_LEN])
{
	uint64_t k = service_id ? service_id - 1 : 0;
	snprintf(out, IPAM_ADDR_LEN, "%u.%u.%llu.%llu", NET_A, SECOND_OCTET(cluster_byte),
		 (unsigned long long)(VIP_THIRD_FIRST + (k / VIPS_PER_THIRD) % 4), (unsigned long long)(k % VIPS_PER_THIRD + 1));
}

bool ipam_is_service_vip(unsigned cluster_byte, unsigned a, unsigned b, unsigned c, unsigned d)
{
	return a == NET_A && b == SECOND_OCTET(cluster_byte) && c >= VIP_THIRD_FIRST && c <= 254 && d >= 1 &&
	       d <= VIPS_PER_THIRD;
}

void ipam_port_range(unsigned cluster_byte, uint64_t subnet, uint16_t *lo, uint16_t *hi)
{
	*lo = (uint16_t)(20000 + ((cluster_byte * 7 + subnet) % 40) * 1000);
	*hi = (uint16_t)(*lo + 999);
}

bool ipam_byte_taken(unsigned b)
{
	struct ifaddrs *ifa;
	if (getifaddrs(&ifa))
		return false;
	char prefix[16];
	snprintf(prefix, sizeof prefix, "orch%02x", b % 128);
	bool taken = false;
	for (struct ifaddrs *i = ifa; i && !taken; i = i->ifa_next) {
		if (i->ifa_name && strncmp(i->ifa_name, prefix, strlen(prefix)) == 0)
			taken = true;
		else if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
			uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr.s_addr);
			taken = (a >> 24) == NET_A && ((a >> 16) & 0xff) == SECOND_OCTET(b);
		}
	}
	freeifaddrs(ifa);
	return taken;
}
