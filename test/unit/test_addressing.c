#include "unit.h"
#include "agent/nettag.h"
#include "net/ipam.h"
#include "util/layout.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

UNIT(ipam_node_network_task_and_service_addresses)
{
	char tag[IPAM_TAG_LEN], cidr[IPAM_CIDR_LEN], a[IPAM_ADDR_LEN];
	ipam_node_net(0x9a, 3, tag, cidr);
	CHECK_STR(tag, "1a3");
	CHECK_STR(cidr, "10.154.3.0/24");
	/* a byte differing in the top bit only: the same subnet, so the same bridge name */
	char tag2[IPAM_TAG_LEN], cidr2[IPAM_CIDR_LEN];
	ipam_node_net(0x1a, 3, tag2, cidr2);
	CHECK_STR(tag2, tag);
	CHECK_STR(cidr2, cidr);
	/* a later byte value (the bridge name was taken) wraps within one byte */
	ipam_node_net(0x9a + 0x70, 3, tag, cidr);
	CHECK_STR(tag, "0a3");
	CHECK_STR(cidr, "10.138.3.0/24");
	CHECK(ipam_host(cidr, 1, a));
	CHECK_STR(a, "10.138.3.1");
	CHECK(ipam_host(cidr, 254, a));
	CHECK_STR(a, "10.138.3.254");
	CHECK(!ipam_host(cidr, 255, a));
	CHECK(!ipam_host("nonsense", 2, a));
	CHECK_EQ_INT(ipam_host_of("10.138.3.17"), 17);
	CHECK_EQ_INT(ipam_host_of("10.138.3.255"), 0);
	CHECK_EQ_INT(ipam_host_of("10.138.3.x"), 0);
	CHECK_EQ_INT(ipam_host_of(""), 0);

	ipam_service_vip(0x9a, 1, a);
	CHECK_STR(a, "10.154.251.1");
	ipam_service_vip(0x9a, 250, a);
	CHECK_STR(a, "10.154.251.250");
	ipam_service_vip(0x9a, 251, a);
	CHECK_STR(a, "10.154.252.1");
	CHECK(ipam_is_service_vip(0x9a, 10, 154, 252, 1));
	CHECK(!ipam_is_service_vip(0x9a, 10, 154, IPAM_SUBNET_MAX, 1)); /* a node subnet, never a VIP */
	CHECK(!ipam_is_service_vip(0x9b, 10, 154, 252, 1));

	uint16_t lo, hi;
	ipam_port_range(0x9a, 3, &lo, &hi);
	CHECK(lo >= 20000 && hi == lo + 999 && hi < 60000);
}

UNIT(layout_paths_of_the_data_directory)
{
	char p[64];
	CHECK(layout_path(p, sizeof p, "/var/lib/orch", LAYOUT_SOCKET));
	CHECK_STR(p, "/var/lib/orch/orch.sock");
	CHECK(layout_path(p, sizeof p, "/d", LAYOUT_BLOBS));
	CHECK_STR(p, "/d/blobs/sha256");
	CHECK(layout_task_dir(p, sizeof p, "/d", 17));
	CHECK_STR(p, "/d/tasks/17");
	CHECK(layout_task_path(p, sizeof p, "/d/tasks/17", LAYOUT_TASK_RESOLV));
	CHECK_STR(p, "/d/tasks/17/resolv.conf");
	char q[64];
	CHECK(layout_task_file(q, sizeof q, "/d", 17, LAYOUT_TASK_LOG));
	CHECK_STR(q, "/d/tasks/17/log");
	/* a path that does not fit says so */
	char small[12];
	CHECK(!layout_path(small, sizeof small, "/var/lib/orch", LAYOUT_IDENTITY));
}

/* Two nodes of this machine picking one node-network tag: the first claim holds while its
 * data dir keeps the tag; a claim whose node keeps no such tag is taken over; release
 * drops only one's own claim. */
UNIT(nettag_claims_one_holder_per_tag)
{
	char a[] = "/tmp/orch-nettag-a-XXXXXX", b[] = "/tmp/orch-nettag-b-XXXXXX", p[700];
	CHECK(mkdtemp(a) && mkdtemp(b));
	const char *tag = "zz9";
	nettag_release(tag, a);
	CHECK(nettag_claim(tag, a));
	CHECK(nettag_claim(tag, a)); /* its own again */
	/* a's net-tag is not written yet: its claim looks stale to b, as after a crash */
	layout_path(p, sizeof p, a, LAYOUT_NET_TAG);
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	fprintf(f, "%s 10.200.3.0/24\n", tag);
	fclose(f);
	CHECK(!nettag_claim(tag, b));
	nettag_release(tag, b); /* not b's: stays */
	CHECK(!nettag_claim(tag, b));
	unlink(p); /* a left */
	CHECK(nettag_claim(tag, b));
	nettag_release(tag, b);
	CHECK(nettag_claim(tag, a));
	nettag_release(tag, a);
	rmdir(a);
	rmdir(b);
}
