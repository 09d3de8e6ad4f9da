"""The lab itself (lab.py): hosts are separate machines, and the faults it injects are
real: a cut drops traffic and heal restores it, a one-way cut is one-way, isolation cuts a
host from everyone, loss and a rate cap and a delay measurably apply, and nothing of the
lab is left on the machine afterwards. Probes are plain sockets made inside the hosts."""
import socket
import subprocess
import threading
import time

from harness import check, wait_until
from lab import Lab
from traffic import http_once
from workload import DEMO, WorkCluster, per_node, wait_running

TIMEOUTS = {"test_cuts_isolation_heal": 60, "test_hosts_are_machines": 90, "test_loss_rate_delay_measured": 60}

PORT = 9100


def tcp_listener(lab, i, port=PORT):
    def make():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((lab.ip(i), port))
        s.listen(64)
        return s
    s = lab.in_host(i, make)

    def serve():
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    def drain(conn):
        with conn:
            while True:
                try:
                    b = conn.recv(1 << 16)
                except OSError:
                    return
                if not b:
                    return
                if b == b"ping":
                    conn.sendall(b"pong")
    threading.Thread(target=serve, daemon=True).start()
    return s


def reach(lab, src, dst, timeout=0.4):
    """True if a TCP connection from host src (None: the client) to host dst gets a pong."""
    def go():
        try:
            with socket.create_connection((lab.ip(dst), PORT), timeout=timeout) as s:
                s.sendall(b"ping")
                return s.recv(4) == b"pong"
        except OSError:
            return False
    return go() if src is None else lab.in_host(src, go)


def udp_delivered(lab, src, dst, count=50, port=PORT + 1):
    """How many of count datagrams sent from host src reach host dst."""
    def rx():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE: all of them fit unread
        s.bind((lab.ip(dst), port))
        s.settimeout(0.3)
        return s
    r = lab.in_host(dst, rx)

    def tx():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"w", (lab.ip(dst), port))  # resolves the neighbour first: the kernel
            time.sleep(0.05)  # queues only a few packets for an unresolved one
            for k in range(count):
                s.sendto(b"%d" % k, (lab.ip(dst), port))
                if k % 20 == 19:
                    time.sleep(0.002)  # no drops for a full socket buffer: only the lab's
    lab.in_host(src, tx)
    got = set()
    try:
        while True:
            got.add(r.recv(64))
            got.discard(b"w")
    except socket.timeout:
        pass
    finally:
        r.close()
    return len(got)


def matrix(lab, n):
    return {(a, b): reach(lab, a, b) for a in range(n) for b in range(n) if a != b}


def test_cuts_isolation_heal():
    with Lab(3) as lab:
        name = lab.name
        ls = [tcp_listener(lab, i) for i in range(3)]
        full = matrix(lab, 3)
        check(all(full.values()), "hosts do not reach each other before any cut: %r" % full)
        check(reach(lab, None, 0), "the client does not reach host 0")

        lab.cut(0, 1)
        m = matrix(lab, 3)
        check(not m[(0, 1)] and not m[(1, 0)], "cut 0-1 still lets 0<->1 through: %r" % m)
        check(m[(0, 2)] and m[(2, 0)] and m[(1, 2)] and m[(2, 1)], "cut 0-1 cut more than 0-1: %r" % m)
        lab.heal()
        check(all(matrix(lab, 3).values()), "heal did not restore 0<->1")

        lab.cut_oneway(0, 1)
        fwd, back = udp_delivered(lab, 0, 1), udp_delivered(lab, 1, 0)
        print("one-way cut 0->1: 0->1 delivered %d/50, 1->0 delivered %d/50" % (fwd, back))
        check(fwd == 0, "one-way cut 0->1 still delivered %d datagrams 0->1" % fwd)
        check(back == 50, "one-way cut 0->1 also dropped 1->0 (%d/50 delivered)" % back)
        lab.heal(1)
        check(udp_delivered(lab, 0, 1) == 50, "heal(1) did not remove the cut 0->1")

        lab.isolate(2)
        m = matrix(lab, 3)
        check(not any(v for (a, b), v in m.items() if 2 in (a, b)), "isolated host 2 still talks: %r" % m)
        check(m[(0, 1)] and m[(1, 0)], "isolating 2 cut 0<->1: %r" % m)
        check(not reach(lab, None, 2) and reach(lab, None, 0), "isolation of 2 and the client")
        lab.heal(2)
        check(all(matrix(lab, 3).values()), "heal(2) did not end the isolation")
        for s in ls:
            s.close()
    left = Lab.leftovers(name)
    check(not left, "the lab left %s" % left)
    p = subprocess.run(["ip", "netns"], capture_output=True, text=True)
    check("olab-%s-" % name not in p.stdout, "netns left: %s" % p.stdout)


def test_hosts_are_machines():
    """Two nodes each run a task: each host has its own task bridge and orch nft table and
    nothing of the other's; the machine's own namespace has neither. The test process is
    the client machine: its requests reach both tasks across the switch."""
    with Lab(2) as lab:
        c = lab.cluster(2, kind=WorkCluster)
        c.load_demo()
        c.deploy(0, c.write("web.yml", "services:\n  web:\n    image: %s\n    ports: [\"80\"]\n"
                            "    stop_grace_period: 1s\n    deploy:\n      replicas: 2\n" % DEMO))
        ts = wait_running(c, "web", 2, timeout=60)
        check(per_node(ts) == {"n1": 1, "n2": 1}, "one task per host: %r" % per_node(ts))
        tags = [c._net_tag(n) for n in c.nodes]
        check(all(tags), "a node without a network tag: %r" % tags)
        machine = ["nsenter", "--net=/proc/1/ns/net", "--"]  # the machine's own network
        host_tables = subprocess.run(machine + ["nft", "list", "tables"], capture_output=True, text=True).stdout
        host_links = subprocess.run(machine + ["ip", "-o", "link"], capture_output=True, text=True).stdout
        for i, n in enumerate(c.nodes):
            links = c._links(n)
            tables = c._nft_tables(n)
            mine = [l for l in links if l.startswith("orch")]
            print("%s: links %s; nft %s" % (n.name, mine, tables.split()))
            check(mine == ["orch" + tags[i]], "%s: task bridges %r, want only its own orch%s" % (n.name, mine, tags[i]))
            check("orch_%s" % tags[i] in tables, "%s has no nft table orch_%s" % (n.name, tags[i]))
            for other in tags[:i] + tags[i + 1:]:
                check(other == tags[i] or "orch_%s" % other not in tables, "%s sees the other host's table" % n.name)
            check("orch_%s" % tags[i] not in host_tables, "orch_%s is in the machine's own ruleset" % tags[i])
            check(" orch%s:" % tags[i] not in host_links, "the task bridge orch%s is in the machine's own netns" % tags[i])
            t = [t for t in ts if t["node"] == n.name][0]
            check(t["endpoint"].startswith(n.ip + ":"), "task %s endpoint %r not on its host's address %s" % (
                t["id"], t["endpoint"], n.ip))
            hostport = t["endpoint"].split("->")[0].split(":")
            got = wait_until(lambda: http_once(hostport[0], int(hostport[1])), 10, "task on %s answering" % n.name)
            check(got == "web-%d-%d" % (t["slot"], t["id"]), "%s answered %r" % (n.name, got))
        # the task's netns lives in its node's mount namespace only
        ns0 = c._netns_names(c.nodes[0])
        check(any(x.startswith("orch-%s-" % tags[0]) for x in ns0), "n1's task netns not on n1: %r" % ns0)
        check(not any(x.startswith("orch-%s-" % tags[0]) for x in c._netns_names(c.nodes[1])),
              "n1's task netns visible on n2")


def connect_ms(lab, dst, n=10):
    """Times of n TCP handshakes from the client to host dst, in ms."""
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        with socket.create_connection((lab.ip(dst), PORT), timeout=3):
            out.append((time.monotonic() - t0) * 1000)
    return sorted(out)


def send_kbit(lab, src, dst, nbytes):
    """kbit/s of a TCP transfer of nbytes from host src to host dst (until dst has it all)."""
    done = threading.Event()

    def srv():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((lab.ip(dst), PORT + 2))
        s.listen(1)
        return s
    ls = lab.in_host(dst, srv)

    def rx():
        conn, _ = ls.accept()
        got = 0
        while got < nbytes:
            b = conn.recv(1 << 16)
            if not b:
                break
            got += len(b)
        conn.close()
        done.set()
    t = threading.Thread(target=rx, daemon=True)
    t.start()
    c = lab.in_host(src, lambda: socket.create_connection((lab.ip(dst), PORT + 2), timeout=10))
    t0 = time.monotonic()
    c.sendall(b"x" * nbytes)
    check(done.wait(20), "transfer of %d bytes did not finish" % nbytes)
    secs = time.monotonic() - t0
    c.close()
    ls.close()
    return nbytes * 8 / 1000 / secs


def test_loss_rate_delay_measured():
    with Lab(2) as lab:
        name = lab.name
        ls = tcp_listener(lab, 0)
        base = udp_delivered(lab, 1, 0, count=400)
        check(base == 400, "without loss %d/400 datagrams arrived" % base)
        lab.loss(1, 30)
        lossy = udp_delivered(lab, 1, 0, count=400)
        back = udp_delivered(lab, 0, 1, count=400, port=PORT + 3)
        lab.loss(1, 0)
        print("loss 30%% on host 1: %d/400 of its datagrams arrived, %d/400 of host 0's" % (lossy, back))
        # binomial(400, 0.7): mean 280, sd 9.2; 220..340 is beyond 6 sd either way
        check(220 <= lossy <= 340, "loss 30%%: %d/400 arrived (want ~280)" % lossy)
        check(back == 400, "loss on host 1's sending also dropped what host 0 sent (%d/400)" % back)

        free = send_kbit(lab, 1, 0, 2_000_000)
        lab.rate(1, 4000)
        capped = send_kbit(lab, 1, 0, 1_000_000)
        lab.rate(1, 0)
        print("host 1 sends at %.0f kbit/s; capped at 4000: %.0f kbit/s" % (free, capped))
        check(free > 20000, "uncapped transfer only %.0f kbit/s: the cap below tells nothing" % free)
        check(2500 <= capped <= 4600, "rate 4000 kbit: measured %.0f kbit/s" % capped)

        before = connect_ms(lab, 0)
        lab.delay(0, 80)
        delayed = connect_ms(lab, 0)
        lab.delay(0, 60, 40)
        jittered = connect_ms(lab, 0, n=20)
        lab.delay(0, 0)
        after = connect_ms(lab, 0)
        print("handshake ms to host 0: before %.1f, delay 80: %.1f..%.1f, delay 60+-40: %.1f..%.1f, after %.1f" % (
            before[len(before) // 2], delayed[0], delayed[-1], jittered[0], jittered[-1], after[len(after) // 2]))
        check(before[len(before) // 2] < 40, "handshakes already slow before the delay: %r" % before)
        check(all(78 <= d < 400 for d in delayed), "delay 80 ms: handshakes took %r ms" % delayed)
        check(jittered[0] < 70 and jittered[-1] > 70 and jittered[0] >= 18, "delay 60+-40 ms: %r" % jittered)
        check(after[len(after) // 2] < 40, "delay 0 did not remove the delay: %r" % after)
        ls.close()
    check(not Lab.leftovers(name), "the lab left %s" % Lab.leftovers(name))
