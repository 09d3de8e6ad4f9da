/* Addressing: which addresses nodes, tasks and services get. Everything carries a byte of
 * the cluster id, so several nodes, even of different clusters, can share one machine:
 *
 *   node network   tag "<b % 128 hex><subnet>" (bridge orch<tag>, runtime/nat.h names the rest)
 *                  and subnet 10.<128 + b % 128>.<subnet>.0/24, where subnet is the node's
 *                  index given by the leader (1-249) and b the cluster byte, or a later byte
 *                  value when that bridge name is taken on this machine
 *   task address   .2 to .254 of its node's subnet; the bridge (gateway, DNS) is .1
 *   service VIP    10.<128 + c % 128>.<251..254>.<1..250> from the service id (c: the
 *                  cluster byte), on lo of every node: a /24 of the node range never used
 *                  by a node subnet (those stop at 249)
 *   host ports     a range of 1000 ports per node for tasks' published ports
 */
#ifndef ORCH_IPAM_H
#define ORCH_IPAM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "net/token.h"

#define IPAM_ADDR_LEN 16 /* "255.255.255.255" */
#define IPAM_CIDR_LEN 32
#define IPAM_TAG_LEN 16
#define IPAM_SUBNET_MAX 249 /* node subnet indexes are 1..249 */

/* The byte of the cluster id that addresses are derived from. */
unsigned ipam_cluster_byte(const uint8_t *cluster_id);
/* A node network: tag and subnet CIDR for byte value b (cluster byte or a later one) and the
 * node's subnet index. */
void ipam_node_net(unsigned b, uint64_t subnet, char tag[IPAM_TAG_LEN], char cidr[IPAM_CIDR_LEN]);
/* Host `host` (1: the gateway, 2..254: tasks) of a node's /24; false for a bad cidr. */
bool ipam_host(const char *cidr, unsigned host, char out[IPAM_ADDR_LEN]);
/* The host number of a task address (its last byte, 1..254); 0 for anything else. */
unsigned ipam_host_of(const char *ip);
/* The virtual address of a service. */
void ipam_service_vip(unsigned cluster_byte, uint64_t service_id, char out[IPAM_ADDR_LEN]);
/* Whether a.b.c.d is in the service address range of the cluster. */
bool ipam_is_service_vip(unsigned cluster_byte, unsigned a, unsigned b, unsigned c, unsigned d);
/* Whether byte value b's addresses are already used on this machine (network namespace):
 * an interface named after it or an address in its 10.x range, i.e. another cluster's node
 * bridge or service addresses. A new cluster draws its id until its byte is free, so two
 * clusters on one machine do not share service addresses. */
bool ipam_byte_taken(unsigned b);
/* The host port range of a node for published ports. */
void ipam_port_range(unsigned cluster_byte, uint64_t subnet, uint16_t *lo, uint16_t *hi);

#endif
