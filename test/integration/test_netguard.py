"""Tasks walled off on the network (issue 11, "Containers hardened by default"): no route_localnet
on a node's bridge, a task cannot reach a service on the node's 127.0.0.1 even with packets it
crafts for the gateway, a host that routes the bridge subnet via the node reaches a task only
through a published port, and tasks of two projects reach each other only through a network they
share — directly on the bridge or routed through the gateway (also one-way UDP, which no bridged
reply could cut). Controls show each probe works where it is allowed (the mesh answers the same
crafted packet; the same connection goes through once the node's forward filter is out of the
way; a project on the shared network gets through). The task's own outbound traffic still
passes, and a restarted node relays its loopback clients again."""
import os
import socket
import subprocess
import sys

from harness import check, wait_until
from traffic import MeshCluster, container, free_published_port, http_once, runc_exec
from workload import DEMO, running, wait_running

TIMEOUTS = {"test_task_walled_off_from_host_loopback_and_routed_subnet": 120,
            "test_projects_isolated_unless_networks_shared": 120}

# httpd on 80 (published) and on 81 (never published)
TWO_PORTS = '["sh", "-c", "trap \'exit 0\' TERM; httpd -p 81 -h /www; exec httpd -f -p 80 -h /www"]'

# Sends a TCP SYN as an Ethernet frame from eth0 of the netns it runs in, to the given MAC
# and IPv4 address, whatever the netns' routes say, and prints "synack" when an answer
# comes back, else "none". argv: dst_mac dst_ip dport
SYN_PROBE = r'''
import random, socket, struct, sys, time
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
mac, dst, dport = bytes.fromhex(sys.argv[1].replace(":", "")), sys.argv[2], int(sys.argv[3])
src = sys.argv[4]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind(("eth0", 0x0800))
me = s.getsockname()[4]
sport, seq = random.randint(40000, 60000), random.getrandbits(32)
sa, da = socket.inet_aton(src), socket.inet_aton(dst)
tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack("!H", csum(sa + da + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0x4000, 64, 6, 0, sa, da)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s.settimeout(0.2)
end = time.time() + 2.0
sent = 0
while time.time() < end:
    if sent < 3 and time.time() > end - 2.0 + sent * 0.5:
        s.send(mac + me + b"\x08\x00" + ip + tcp)
        sent += 1
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    if len(f) < 54 or f[12:14] != b"\x08\x00" or f[23] != 6:
        continue
    h = (f[14] & 15) * 4
    t = f[14 + h:]
    fsport, fdport = struct.unpack("!HH", t[:4])
    if fsport == dport and fdport == sport and (t[13] & 0x12) == 0x12:
        print("synack")
        sys.exit(0)
print("none")
'''


def node_tag(node):
    with open(os.path.join(node.dir, "net-tag")) as f:
        return f.read().split()[0]


def task_netns(node, ip):
    """The netns (path) of the task at ip on node: orch-<tag>-*, eth0 holding ip."""
    pre = "orch-%s-" % node_tag(node)
    for name in sorted(os.listdir("/var/run/netns")):
        if name.startswith(pre):
            p = subprocess.run(["ip", "-n", name, "-4", "-o", "addr", "show", "dev", "eth0"],
                               capture_output=True, text=True)
            if (" %s/" % ip) in p.stdout:
                return "/var/run/netns/" + name
    check(False, "no netns of node %s holds %s" % (node.name, ip))


def in_netns(path, code, *args, timeout=20):
    p = subprocess.run(["nsenter", "--net=" + path, sys.executable, "-c", code] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    check(p.returncode == 0, "probe in %s failed: %s" % (path, p.stderr.strip()[-400:]))
    return p.stdout.strip()


CONNECT = r'''
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        print("open " + s.recv(64).decode(errors="replace").split("\r\n")[0])
except OSError as e:
    print("closed %s" % type(e).__name__)
'''


SERVE_ONCE = r'''
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(10)
print("ready", flush=True)
c, peer = s.accept()
c.sendall(b"hello from the lab\n")
c.close()
print("from " + peer[0], flush=True)
'''

UDP_RECV = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
s.settimeout(3)
try:
    print("from " + s.recvfrom(64)[1][0])
except socket.timeout:
    print("none")
'''

UDP_SEND = r'''
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5):
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.1)
'''


def udp_reaches(src_ns, dst_ns, dst_ip, port=9999):
    """One-way: datagrams sent from src_ns to dst_ip:port arrive in dst_ns (no reply to cut)."""
    p = subprocess.Popen(["nsenter", "--net=" + dst_ns, sys.executable, "-c", UDP_RECV, str(port)],
                         stdout=subprocess.PIPE, text=True)
    try:
        check(p.stdout.readline().strip() == "ready", "udp receiver did not start")
        in_netns(src_ns, UDP_SEND, dst_ip, port)
        return p.stdout.readline().strip()
    finally:
        p.kill()
        p.wait()


CONNECT6 = r'''
import socket, sys
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect((sys.argv[1], int(sys.argv[2]), 0, socket.if_nametoindex(sys.argv[3])))
    s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    print("open " + s.recv(64).decode(errors="replace").split("\r\n")[0])
except OSError as e:
    print("closed %s" % type(e).__name__)
'''


def link_local(ns):
    """The fe80:: address of eth0 in netns ns (without the prefix length), or "" if none."""
    out = subprocess.run(["ip", "-n", os.path.basename(ns), "-6", "-o", "addr", "show", "dev", "eth0", "scope",
                          "link"], capture_output=True, text=True).stdout.split()
    return out[out.index("inet6") + 1].split("/")[0] if "inet6" in out else ""


def gateway(ip):
    return ip.rsplit(".", 1)[0] + ".1"


def test_task_walled_off_from_host_loopback_and_routed_subnet():
    pid = os.getpid()
    lab_ns, veth_host, veth_lab = "onh%d" % pid, "onh%da" % pid, "onh%db" % pid
    lab_net = "10.99.%d" % (pid % 250)
    secret = socket.socket()
    try:
        with MeshCluster(1) as c:
            c.load_demo()
            port = free_published_port(c.ips())
            c.deploy(0, c.write("guard.yml", (
                "name: guard\nservices:\n  web:\n    image: %s\n    command: %s\n    ports: [\"%d:80\"]\n"
                "    stop_grace_period: 1s\n") % (DEMO, TWO_PORTS, port)))
            t = wait_running(c, "web", 1, timeout=40)[0]
            node = c.nodes[0]
            tag = node_tag(node)
            with open("/proc/sys/net/ipv4/conf/orch%s/route_localnet" % tag) as f:
                check(f.read().strip() == "0", "route_localnet on orch%s is not 0" % tag)
            hostport = int(t["endpoint"].split("->")[0].rsplit(":", 1)[1])
            # on the node, published port (mesh) and host port (relay) answer on loopback
            want = "web-%d-%d" % (t["slot"], t["id"])
            wait_until(lambda: http_once("127.0.0.1", port) == want, 20, "mesh on 127.0.0.1:%d" % port)
            check(http_once("127.0.0.1", hostport) == want, "host port %d on 127.0.0.1" % hostport)
            # the relayed connections leave the host port in TIME_WAIT (the task closed
            # first): a node restarting now still takes its port back and relays again
            c.kill9(node)
            c.restart(node)
            c.wait_members(c.nodes)
            wait_until(lambda: http_once("127.0.0.1", hostport) == want, 20,
                       "host port %d on 127.0.0.1 after the node restarted" % hostport)

            # a service of the node's own, on 127.0.0.1 only
            secret.bind(("127.0.0.1", 0))
            secret.listen(8)
            sport = secret.getsockname()[1]
            ns = task_netns(node, t["ip"])
            with open("/sys/class/net/orch%s/address" % tag) as f:
                gw_mac = f.read().strip()
            vip = c.inspect("web")["virtual_ip"]
            wait_until(lambda: in_netns(ns, SYN_PROBE, gw_mac, vip, 80, t["ip"]) == "synack", 15,
                       "control: the mesh at %s:80 answers a SYN crafted in the task's netns" % vip)
            got = in_netns(ns, SYN_PROBE, gw_mac, "127.0.0.1", sport, t["ip"])
            print("SYN to the node's 127.0.0.1:%d through the gateway: %s" % (sport, got))
            check(got == "none", "a task reached the node's 127.0.0.1:%d (%s)" % (sport, got))

            # another machine that routes the bridge subnet via the node
            subprocess.run(["ip", "netns", "add", lab_ns], check=True)
            subprocess.run(["ip", "link", "add", veth_host, "type", "veth", "peer", "name", veth_lab,
                            "netns", lab_ns], check=True)
            subprocess.run(["ip", "addr", "add", lab_net + ".1/30", "dev", veth_host], check=True)
            subprocess.run(["ip", "link", "set", veth_host, "up"], check=True)
            for cmd in (["addr", "add", lab_net + ".2/30", "dev", veth_lab], ["link", "set", veth_lab, "up"],
                        ["link", "set", "lo", "up"],
                        ["route", "add", gateway(t["ip"]).rsplit(".", 1)[0] + ".0/24", "via", lab_net + ".1"]):
                subprocess.run(["ip", "-n", lab_ns] + cmd, check=True)
            lab = "/var/run/netns/" + lab_ns
            published = in_netns(lab, CONNECT, lab_net + ".1", hostport)
            direct80 = in_netns(lab, CONNECT, t["ip"], 80)
            direct81 = in_netns(lab, CONNECT, t["ip"], 81)
            print("from %s: host port %d %r, %s:80 %r, %s:81 %r" % (lab_ns, hostport, published, t["ip"], direct80,
                                                                 t["ip"], direct81))
            check(published.startswith("open HTTP/1"), "published port through the node: %r" % published)
            check(direct80.startswith("closed"), "task port 80 reached without the published port: %r" % direct80)
            check(direct81.startswith("closed"), "unpublished task port 81 reached: %r" % direct81)
            # the task's own outbound connections and their replies still pass
            srv = subprocess.Popen(["nsenter", "--net=" + lab, sys.executable, "-c", SERVE_ONCE, lab_net + ".2",
                                    "7777"], stdout=subprocess.PIPE, text=True)
            try:
                check(srv.stdout.readline().strip() == "ready", "server in %s did not start" % lab_ns)
                out = runc_exec(c, "n1", container(c, "n1", t["id"]), "sh", "-c",
                                "nc -w 2 %s.2 7777 </dev/null; true" % lab_net)
                seen = srv.stdout.readline().strip()
            finally:
                srv.kill()
                srv.wait()
            print("task -> %s.2:7777: %r, the server saw %s" % (lab_net, out.strip(), seen))
            check("hello from the lab" in out, "the task's own connection out: %r" % out)
            check(seen == "from " + lab_net + ".1", "outbound traffic masqueraded to the node: %r" % seen)
            # control: without the node's forward filter the same connection goes through
            chain = subprocess.run(["nft", "list", "chain", "ip", "orch_" + tag, "forward"], capture_output=True,
                                   text=True, check=True).stdout
            subprocess.run(["nft", "flush", "chain", "ip", "orch_" + tag, "forward"], check=True)
            try:
                unfiltered = in_netns(lab, CONNECT, t["ip"], 81)
            finally:
                subprocess.run(["nft", "-f", "-"], input=chain, text=True, check=True)
            print("without the forward filter: %s:81 %r" % (t["ip"], unfiltered))
            check(unfiltered.startswith("open HTTP/1"), "control: %s:81 without the filter: %r" % (t["ip"], unfiltered))
            check(in_netns(lab, CONNECT, t["ip"], 81).startswith("closed"), "the filter is back")
    finally:
        secret.close()
        subprocess.run(["ip", "link", "del", veth_host], capture_output=True)
        subprocess.run(["ip", "netns", "del", lab_ns], capture_output=True)


def test_projects_isolated_unless_networks_shared():
    svc = "  %s:\n    image: " + DEMO + "\n    stop_grace_period: 1s\n"
    with MeshCluster(1) as c:
        c.load_demo()
        c.deploy(0, c.write("pa.yml", "name: pa\nservices:\n" + svc % "a" +
                            "    networks: [back]\nnetworks:\n  back:\n"))
        c.deploy(0, c.write("pb.yml", "name: pb\nservices:\n" + svc % "b"))
        c.deploy(0, c.write("pc.yml", "name: pc\nservices:\n" + svc % "c" +
                            "    networks: [shared]\nnetworks:\n  shared:\n    external: true\n    name: pa_back\n"))
        tasks = {s: wait_running(c, s, 1, timeout=40)[0] for s in "abc"}
        a_ip = tasks["a"]["ip"]
        req = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 1 %s 80; true" % a_ip

        def bridged(s):
            return "200 OK" in runc_exec(c, "n1", container(c, "n1", tasks[s]["id"]), "sh", "-c", req)

        # a serves (asked by the node itself) before anyone's failure to reach it means a thing
        wait_until(lambda: http_once(a_ip, 80, "/index.html") is not None, 15, "a serving at %s:80" % a_ip,
                   interval=0.2)
        wait_until(lambda: not bridged("b"), 15, "b (project pb) cut off from a (project pa) at %s" % a_ip,
                   interval=0.5)
        check(bridged("c"), "c (project pc, on pa's network back) should reach a at %s" % a_ip)
        check(not bridged("b"), "b reached a at %s on the bridge" % a_ip)
        # the same through the gateway (a route a task with CAP_NET_ADMIN could add): routed,
        # not bridged, and still cut off
        routed = {}
        a_ll6 = link_local(task_netns(c.nodes[0], a_ip))
        check(a_ll6, "a has no IPv6 link-local address: the IPv6 probe would prove nothing")
        for s in "bc":
            ns = task_netns(c.nodes[0], tasks[s]["ip"])
            subprocess.run(["nsenter", "--net=" + ns, "ip", "route", "replace", a_ip + "/32", "via", gateway(a_ip)],
                           check=True)
            routed[s] = in_netns(ns, CONNECT, a_ip, 80)
            # one-way: the bridge cuts a TCP reply (a answers on the bridge), not datagrams
            routed[s + "/udp"] = udp_reaches(ns, task_netns(c.nodes[0], a_ip), a_ip)
            # IPv6 link-local on the bridge: orch gives tasks IPv4 only, but the kernel gives
            # every interface an fe80:: address; the set above knows IPv4 addresses only
            routed[s + "/ll6"] = in_netns(ns, CONNECT6, a_ll6, 80, "eth0")
        print("through the gateway: %s" % routed)
        check(routed["c/udp"] == "from " + tasks["c"]["ip"], "c's datagrams through the gateway: %r" % routed["c/udp"])
        check(routed["b/udp"] == "none", "b's datagrams reached a through the gateway: %r" % routed["b/udp"])
        check(all(routed[s + "/ll6"].startswith("closed") for s in "bc"),
              "IPv6 link-local between tasks (isolated or not, orch gives tasks IPv4 only): %r" % routed)
        # control: without the node's bridge chains, b reaches a at that address
        table = "orch_" + node_tag(c.nodes[0])
        saved = [subprocess.run(["nft", "list", "chain", "bridge", table, ch], capture_output=True, text=True,
                                check=True).stdout for ch in ("forward", "input")]
        b_ns = task_netns(c.nodes[0], tasks["b"]["ip"])
        try:
            for ch in ("forward", "input"):
                subprocess.run(["nft", "flush", "chain", "bridge", table, ch], check=True)
            unfiltered = in_netns(b_ns, CONNECT6, a_ll6, 80, "eth0")
        finally:
            for text in saved:
                subprocess.run(["nft", "-f", "-"], input=text, text=True, check=True)
        print("without the bridge chains, b to a at %s: %r" % (a_ll6, unfiltered))
        check(unfiltered.startswith("open HTTP/1"), "control: b to a at %s unfiltered: %r" % (a_ll6, unfiltered))
        check(in_netns(b_ns, CONNECT6, a_ll6, 80, "eth0").startswith("closed"), "the bridge chains are back")
        check(routed["c"].startswith("open HTTP/1"), "c through the gateway: %r" % routed["c"])
        check(routed["b"].startswith("closed"), "b reached a through the gateway: %r" % routed["b"])
