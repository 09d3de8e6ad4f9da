/* Node and task networking through ip(8) and nft(8): each step is a short batch fed on
 * stdin, and each teardown step checks existence first so that it can be repeated. */
#include "runtime/net.h"
#include "runtime/runproc.h"
#include "util/err.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NET_CMD_TIMEOUT_MS 20000

/* Runs argv with input on stdin; 0 on exit 0, else an error with stderr's first line. */
static int run(const char *const *argv, const char *input, const char *what, char *err)
{
	struct buf eb = {0};
	struct runproc rp = {.argv = argv, .input = input, .input_len = input ? strlen(input) : 0,
			     .out_fd = -1, .errout = &eb, .timeout_ms = NET_CMD_TIMEOUT_MS};
	int st = 0;
	int rc = runproc_run(&rp, &st, err);
	if (rc) {
		errwrap(err, rc, "%s", what);
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char msg[ERR_LEN / 2], how[32];
		runproc_first_line((const char *)eb.data, eb.len, msg, sizeof msg);
		runproc_describe(st, how, sizeof how);
		rc = errf(err, E_FAIL, "%s: %s", what, *msg ? msg : how);
	}
	buf_free(&eb);
	return rc;
}

static int nft(const char *script, const char *what, char *err)
{
	return run((const char *const[]){"nft", "-f", "-", NULL}, script, what, err);
}

static bool link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

static bool netns_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static bool table_exists(const char *table)
{
	char err[ERR_LEN];
	return run((const char *const[]){"nft", "list", "table", "ip", table, NULL}, NULL, "nft list", err) == 0;
}

static bool bridge_table_exists(const char *table)
{
	char err[ERR_LEN];
	return run((const char *const[]){"nft", "list", "table", "bridge", table, NULL}, NULL, "nft list", err) == 0;
}

static int write_sysctl(const char *path, const char *val, char *err)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errf(err, E_IO, "open %s: %s", path, strerror(errno));
	ssize_t n = write(fd, val, strlen(val));
	int e = errno;
	close(fd);
	if (n != (ssize_t)strlen(val))
		return errf(err, E_IO, "write %s: %s", path, strerror(e));
	return 0;
}

static int check_node(const struct net_node *nn, struct nat_subnet *s, char *err)
{
	if (!nn || !nat_tag_valid(nn->tag, NAT_TAG_MAX))
		return errf(err, E_INVAL, "network tag \"%s\" must be 1-%d characters of a-z0-9",
			    nn && nn->tag ? nn->tag : "", NAT_TAG_MAX);
	return nat_subnet_parse(nn->subnet, s, err);
}

int net_node_setup(const struct net_node *nn, char *err)
{
	struct nat_subnet s;
	struct nat_names nm;
	int rc = check_node(nn, &s, err);
	if (rc)
		return rc;
	nat_names(nn->tag, NULL, &nm);
	if (!link_exists(nm.bridge) &&
	    (rc = run((const char *const[]){"ip", "link", "add", nm.bridge, "type", "bridge", NULL}, NULL,
		      "create bridge", err)))
		return rc;
	char addr[40];
	snprintf(addr, sizeof addr, "%s/%d", s.gw_str, s.prefix);
	if ((rc = run((const char *const[]){"ip", "addr", "replace", addr, "dev", nm.bridge, NULL}, NULL,
		      "set bridge address", err)) ||
	    (rc = run((const char *const[]){"ip", "link", "set", nm.bridge, "up", NULL}, NULL, "bring bridge up", err)))
		return rc;
	char path[128];
	snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/route_localnet", nm.bridge);
	/* 0 also on a bridge an older version set up with 1: a task must not reach the
	 * host's loopback (runtime/nat.h keeps published ports working on 127.0.0.1) */
	if ((rc = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1", err)) || (rc = write_sysctl(path, "0", err)))
		return rc;
	struct buf b = {0};
	nat_ruleset(nn->tag, &s, &b);
	nat_bridge_ruleset(nn->tag, &b);
	buf_append(&b, "", 1);
	rc = nft((const char *)b.data, "install nft table", err);
	buf_free(&b);
	return rc;
}

/* Deletes every netns and veth whose name carries this node's tag. */
static void remove_tagged(const char *tag)
{
	char err[ERR_LEN];
	struct nat_names pre; /* the names of a task with an empty tag: the prefixes */
	nat_names(tag, "", &pre);
	/* the veths first: deleting one takes its peer with it at once, while deleting a netns
	 * leaves its veths to the kernel's namespace clean-up, which removes them later (a leak
	 * check right after saw them: test_traffic under load) */
	DIR *d = opendir("/sys/class/net");
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, pre.veth, strlen(pre.veth)))
			run((const char *const[]){"ip", "link", "del", e->d_name, NULL}, NULL, "delete veth", err);
	if (d)
		closedir(d);
	d = opendir(NAT_NETNS_DIR);
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, pre.netns, strlen(pre.netns)))
			run((const char *const[]){"ip", "netns", "del", e->d_name, NULL}, NULL, "delete netns", err);
	if (d)
		closedir(d);
}

int net_isolate(const struct net_node *nn, const char *pairs, char *err)
{
	if (!nn || !nat_tag_valid(nn->tag, NAT_TAG_MAX))
		return errf(err, E_INVAL, "invalid network tag");
	struct buf b = {0};
	nat_isolated(nn->tag, pairs, &b);
	buf_append(&b, "", 1);
	int rc = nft((const char *)b.data, "isolate tasks", err);
	buf_free(&b);
	return rc;
}

int net_node_teardown(const struct net_node *nn, char *err)
{
	struct nat_names nm;
	if (!nn || !nat_tag_valid(nn->tag, NAT_TAG_MAX))
		return errf(err, E_INVAL, "invalid network tag");
	nat_names(nn->tag, NULL, &nm);
	remove_tagged(nn->tag);
	int rc = 0;
	if (table_exists(nm.table))
		rc = run((const char *const[]){"nft", "delete", "table", "ip", nm.table, NULL}, NULL, "delete nft table", err);
	if (bridge_table_exists(nm.table)) {
		int r = run((const char *const[]){"nft", "delete", "table", "bridge", nm.table, NULL}, NULL,
			    "delete nft bridge table", err);
		rc = rc ? rc : r;
	}
	if (link_exists(nm.bridge)) {
		int r = run((const char *const[]){"ip", "link", "del", nm.bridge, NULL}, NULL, "delete bridge", err);
		rc = rc ? rc : r;
	}
	if (!rc && (table_exists(nm.table) || bridge_table_exists(nm.table) || link_exists(nm.bridge)))
		rc = errf(err, E_FAIL, "network of node %s still present after teardown", nn->tag);
	return rc;
}

int net_task_teardown(const struct net_node *nn, const char *task_tag, const struct port_map *ports, size_t n,
		      char *err)
{
	struct nat_names nm;
	if (!nn || !nat_tag_valid(nn->tag, NAT_TAG_MAX) || !nat_tag_valid(task_tag, NAT_TASK_TAG_MAX))
		return errf(err, E_INVAL, "invalid network or task tag");
	nat_names(nn->tag, task_tag, &nm);
	char e2[ERR_LEN];
	if (n > 0 && table_exists(nm.table)) {
		struct buf b = {0};
		nat_elements(nn->tag, NULL, ports, n, false, &b);
		buf_append(&b, "", 1);
		if (nft((const char *)b.data, "remove ports", e2)) {
			/* one of them was already gone, which fails the whole batch */
			for (size_t i = 0; i < n; i++) {
				b.len = 0;
				nat_elements(nn->tag, NULL, &ports[i], 1, false, &b);
				buf_append(&b, "", 1);
				nft((const char *)b.data, "remove port", e2);
			}
		}
		buf_free(&b);
	}
	int rc = 0;
	if (link_exists(nm.veth))
		rc = run((const char *const[]){"ip", "link", "del", nm.veth, NULL}, NULL, "delete veth", err);
	if (netns_exists(nm.netns_path)) {
		int r = run((const char *const[]){"ip", "netns", "del", nm.netns, NULL}, NULL, "delete netns", err);
		rc = rc ? rc : r;
	}
	if (!rc && (link_exists(nm.veth) || netns_exists(nm.netns_path)))
		rc = errf(err, E_FAIL, "network of task %s still present after teardown", nm.netns);
	return rc;
}

int net_task_setup(const struct net_node *nn, const char *task_tag, const char *ip, const struct port_map *ports,
		   size_t n, char *netns_path_out, char *err)
{
	struct nat_subnet s;
	struct nat_names nm;
	int rc = check_node(nn, &s, err);
	if (rc)
		return rc;
	if (!nat_tag_valid(task_tag, NAT_TASK_TAG_MAX))
		return errf(err, E_INVAL, "task network tag \"%s\" must be 1-%d characters of a-z0-9",
			    task_tag ? task_tag : "", NAT_TASK_TAG_MAX);
	if ((rc = nat_ip_check(&s, ip, err)))
		return rc;
	for (size_t i = 0; i < n; i++)
		if (!ports[i].host_port || !ports[i].container_port ||
		    (ports[i].proto != IPPROTO_TCP && ports[i].proto != IPPROTO_UDP))
			return errf(err, E_INVAL, "invalid published port %u:%u", ports[i].host_port,
				    ports[i].container_port);
	nat_names(nn->tag, task_tag, &nm);
	if (!link_exists(nm.bridge))
		return errf(err, E_NOTFOUND, "bridge %s missing: set up the node network first", nm.bridge);
	net_task_teardown(nn, task_tag, NULL, 0, err); /* leftovers of a crashed agent */

	char *host = xasprintf("link add %s type veth peer name eth0 netns %s\n"
			       "link set %s master %s\n"
			       "link set dev %s type bridge_slave hairpin on\n"
			       "link set %s up\n",
			       nm.veth, nm.netns, nm.veth, nm.bridge, nm.veth, nm.veth);
	char *inside = xasprintf("addr add %s/%d dev eth0\n"
				 "link set lo up\n"
				 "link set eth0 up\n"
				 "route add default via %s\n",
				 ip, s.prefix, s.gw_str);
	struct buf b = {0};
	nat_elements(nn->tag, ip, ports, n, true, &b);
	buf_append(&b, "", 1);
	if ((rc = run((const char *const[]){"ip", "netns", "add", nm.netns, NULL}, NULL, "create netns", err)) ||
	    (rc = run((const char *const[]){"ip", "-batch", "-", NULL}, host, "create veth", err)) ||
	    (rc = run((const char *const[]){"ip", "-n", nm.netns, "-batch", "-", NULL}, inside, "configure netns",
		      err)) ||
	    (n > 0 && (rc = nft((const char *)b.data, "publish ports", err)))) {
		char e2[ERR_LEN];
		net_task_teardown(nn, task_tag, ports, n, e2);
		errwrap(err, rc, "network of %s", nm.netns);
	} else {
		snprintf(netns_path_out, NAT_PATH_LEN, "%s", nm.netns_path);
	}
	free(host);
	free(inside);
	buf_free(&b);
	return rc;
}

static bool port_free(uint16_t port, int proto)
{
	int fd = socket(AF_INET, (proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

int net_pick_port(uint16_t lo, uint16_t hi, int proto, uint16_t *out, char *err)
{
	if (!lo || hi < lo)
		return errf(err, E_INVAL, "invalid port range %u-%u", lo, hi);
	uint32_t span = (uint32_t)(hi - lo) + 1, start;
	random_bytes(&start, sizeof start);
	for (uint32_t i = 0; i < span; i++) {
		uint16_t p = (uint16_t)(lo + (start + i) % span);
		if (port_free(p, proto)) {
			*out = p;
			return 0;
		}
	}
	return errf(err, E_BUSY, "no free port in %u-%u", lo, hi);
}
