"""Issue 2 (foundation): cluster formation, failover, roles, catch-up, join security,
leave / node rm, and robustness of the node port and the local socket against garbage.
Clusters of several nodes run on the lab (lab.py: each node its own machine); single-node
and input tests stay on 127.0.0.1."""
import os
import random
import re
import socket
import struct
import threading
import time

import mpack
from harness import Cluster, Conn, Fail, check, parse_token, wait_until
from lab import LabCluster

TIMEOUTS = {"test_restart_catches_up_via_snapshot": 150, "test_fuzz_local_socket_ops": 150}

SNAP_ENV = {"ORCH_SNAPSHOT_THRESHOLD": "64", "ORCH_SNAPSHOT_TRAILING": "32"}


def voters(c, node):
    return sorted(n for n, r in c.roles(node).items() if r == "voter")


def role_counts(c, node):
    roles = sorted(c.roles(node).values())
    return {r: roles.count(r) for r in roles}


def settled(c, want, timeout=10):
    """Waits until every running node reports the role counts `want` ({"voter": 3, ...})."""
    wait_until(lambda: all(role_counts(c, n) == want for n in c.up()), timeout,
               "roles %r on every node" % want)


def kv_get(node, key):
    with Conn.local(node) as k:
        return k.call("kv.get", key=key)


class KvWriter(threading.Thread):
    """Writes distinct keys (w/<i> = v<i>) through one node's local socket with up to
    `inflight` requests outstanding, and records which ones were acknowledged (rc 0)."""

    def __init__(self, node, inflight=8, prefix="w"):
        super().__init__(daemon=True)
        self.node, self.inflight, self.prefix = node, inflight, prefix
        self.acked, self.refused, self.errors = [], 0, []
        self.stop_flag = False
        self.sent = 0

    def run(self):
        try:
            with Conn.local(self.node, timeout=30) as k:
                pending = {}
                while not (self.stop_flag and not pending):
                    while not self.stop_flag and len(pending) < self.inflight:
                        i = self.sent
                        self.sent += 1
                        rid = k.send({"op": "kv.set", "id": i + 1, "key": "%s/%d" % (self.prefix, i), "value": "v%d" % i})
                        pending[rid] = i
                    r = k.read()
                    i = pending.pop(r.get("id"), None)
                    if i is None:
                        continue
                    if r.get("rc") == 0:
                        self.acked.append(i)
                    else:
                        self.refused += 1
                        time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            self.errors.append("%s: %s" % (type(e).__name__, e))

    def finish(self):
        self.stop_flag = True
        self.join(40)
        check(not self.is_alive(), "writer did not finish: replies missing")
        check(not self.errors, "writer failed: %s" % self.errors)


# ---- formation ----------------------------------------------------------------------------

def test_form_1_node():
    with Cluster(1) as c:
        s = c.status(0)
        check(s["raft_state"] == "leader" and s["role"] == "voter", "single node: %s/%s" % (s["raft_state"], s["role"]))
        check(s["nodes"] == 1 and s["leader_name"] == "n1", "status: %r" % s)
        check(s["cluster"] == c.token.split("-")[1], "cluster id %s does not match the token" % s["cluster"])
        ns = c.node_list(0)
        check(len(ns) == 1 and ns[0]["leader"] and ns[0]["self"] and ns[0]["state"] == "ready", "nodes: %r" % ns)
        rev = s["revision"]
        c.write_bench(0, 50, 4)
        s2 = c.status(0)
        check(s2["revision"] == rev + 50, "revision %d -> %d after 50 writes" % (rev, s2["revision"]))
        check(s2["state_hash"] != s["state_hash"], "state hash unchanged by writes")
        p = c.cli(0, "status", json=False)
        check("leader:" in p.stdout and "n1" in p.stdout, "status table: %r" % p.stdout)


def test_form_3_nodes():
    with LabCluster(3) as c:
        lead = c.leader()
        settled(c, {"voter": 3})
        for n in c.nodes:
            ns = c.node_list(n)
            check([x["name"] for x in ns if x["leader"]] == [lead.name], "%s marks the wrong leader: %r" % (n.name, ns))
        c.write_bench(c.nodes[2], 100, 8)
        s = c.converged()
        check(s["nodes"] == 3, "nodes: %r" % s["nodes"])


def test_form_4_nodes_standby():
    with LabCluster(4) as c:
        settled(c, {"voter": 3, "standby": 1})
        c.converged()


def test_form_5_nodes():
    with LabCluster(5) as c:
        settled(c, {"voter": 5})
        c.write_bench(c.nodes[4], 100, 8)
        c.converged()


def http_get_raw(addr, path):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        data = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        except ConnectionResetError:
            pass
    return data


def test_healthz():
    """/healthz and /metrics: inside TLS on the node port to a holder of a certificate of the
    cluster, in plain HTTP on the --metrics-listen address; the node port gives a plain
    client none of it."""
    with Cluster(1, metrics=True) as c:
        n = c.nodes[0]
        for path, code in (("/healthz", 200), ("/nope", 404)):
            with Conn.tls_raw(n, n) as k:
                k.send_raw(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
                data = b""
                while True:
                    b = k.s.recv(4096)
                    if not b:
                        break
                    data += b
            status = data.split(b"\r\n", 1)[0]
            check(status.startswith(b"HTTP/1.1 %d" % code), "GET %s over TLS: %r" % (path, data[:200]))
        for path, code in (("/healthz", 200), ("/metrics", 200), ("/nope", 404)):
            data = http_get_raw(n.metrics, path)
            status = data.split(b"\r\n", 1)[0]
            check(status.startswith(b"HTTP/1.1 %d" % code), "GET %s: %r" % (path, data[:200]))
        check(b"orch_raft_term" in http_get_raw(n.metrics, "/metrics"), "no raft figures in /metrics")
        for path in ("/healthz", "/metrics"):
            data = http_get_raw(n.addr, path)
            check(not data.startswith(b"HTTP/1.1 200") and b"orch_" not in data and b"ok " not in data,
                  "the node port answered a plain GET %s: %r" % (path, data[:200]))
        check(c.status(0)["raft_state"] == "leader", "node not serving after HTTP")


# ---- failover and roles ----------------------------------------------------------------------

def test_kill9_leader_failover_no_write_lost():
    with LabCluster(3) as c:
        old = c.leader()
        rest = [n for n in c.nodes if n is not old]
        base = c.converged()
        # Acknowledged writes are counted exactly while the cluster is calm.
        c.write_bench(rest[0], 300, 16)
        s = c.converged()
        check(s["revision"] == base["revision"] + 300,
              "revision grew by %d for 300 acknowledged writes" % (s["revision"] - base["revision"]))
        # Distinct keys written through a follower while the leader is killed.
        w = KvWriter(rest[0], inflight=8)
        w.start()
        wait_until(lambda: len(w.acked) >= 200 or w.errors, 20, "200 acknowledged writes before the kill")
        c.kill9(old)
        t0 = time.time()
        new = c.leader(rest, timeout=10)
        elapsed = time.time() - t0
        print("failover: new leader %s after %.3fs" % (new.name, elapsed))
        check(new is not old, "old leader still reported")
        check(elapsed < 2.0, "new leader took %.2fs (goal: well under 1.5s)" % elapsed)
        n_at_kill = len(w.acked)
        wait_until(lambda: len(w.acked) >= n_at_kill + 200 or w.errors, 20, "writes acknowledged after the failover")
        w.finish()
        c.write_bench(rest[1], 100, 8)
        c.converged(rest)
        missing = []
        for n in rest:
            with Conn.local(n) as k:
                for i in w.acked:
                    r = k.call("kv.get", key="w/%d" % i)
                    if r.get("rc") != 0 or r.get("value") != "v%d" % i:
                        missing.append((n.name, i, r.get("rc")))
        check(not missing, "%d acknowledged writes lost, e.g. %r" % (len(missing), missing[:5]))
        print("writer: %d acked, %d refused during failover" % (len(w.acked), w.refused))


def test_standby_promoted_when_voter_killed():
    with LabCluster(4, failure_timeout="2s") as c:
        settled(c, {"voter": 3, "standby": 1})
        lead = c.leader()
        roles = c.roles(lead)
        standby = next(n for n in c.nodes if roles[n.name] == "standby")
        victim = next(n for n in c.nodes if n is not lead and roles[n.name] == "voter")
        c.kill9(victim)
        t0 = time.time()
        wait_until(lambda: c.roles(lead)[standby.name] == "voter", 10, "the standby %s to be promoted" % standby.name)
        print("standby promoted %.2fs after the kill (failure timeout 2s)" % (time.time() - t0))
        alive = [n for n in c.nodes if n is not victim]
        wait_until(lambda: voters(c, lead) == sorted(n.name for n in alive), 10, "the voters to be the 3 live nodes")
        ns = {x["name"]: x for x in c.node_list(lead)}
        check(ns[victim.name]["state"] == "down", "killed node state: %r" % ns[victim.name])
        c.write_bench(alive[0], 50, 8)
        # The killed node comes back: it catches up and is kept as a standby.
        c.restart(victim)
        c.converged(c.nodes, timeout=20)
        wait_until(lambda: c.roles(lead)[victim.name] == "standby", 10, "the restarted node to become a standby")
        wait_until(lambda: {x["name"]: x["state"] for x in c.node_list(lead)}[victim.name] == "ready", 10,
                   "the restarted node to be ready")


def test_restart_catches_up():
    with LabCluster(3) as c:
        lead = c.leader()
        f = next(n for n in c.nodes if n is not lead)
        c.kill9(f)
        c.write_bench(lead, 200, 16)
        c.restart(f)
        s = c.converged(c.nodes, timeout=20)
        got = kv_get(f, "bench/199")
        check(got.get("rc") == 0, "restarted follower lacks a key written while it was down: %r" % got)
        check(s["nodes"] == 3, "nodes: %r" % s["nodes"])


def test_restart_catches_up_via_snapshot():
    with LabCluster(3, env=SNAP_ENV) as c:
        lead = c.leader()
        f = next(n for n in c.nodes if n is not lead)
        rev_before = c.status(f)["revision"]
        c.kill9(f)
        c.write_bench(lead, 1000, 64)
        other = next(n for n in c.nodes if n is not lead and n is not f)
        c.converged([lead, other])
        log_mark = len(f.log_text())
        c.restart(f)
        s = c.converged(c.nodes, timeout=30)
        restored = re.findall(r"restored state from snapshot \(\d+ bytes, revision (\d+)\)", f.log_text()[log_mark:])
        check(restored, "the restarted node did not restore a snapshot; its log says:\n%s" % f.log_text()[log_mark:][-2000:])
        check(max(int(r) for r in restored) > rev_before + 500,
              "restored snapshots (revisions %s) are not the leader's (node was at %d)" % (restored, rev_before))
        check(s["revision"] >= rev_before + 1000, "revision %d" % s["revision"])


# ---- joining: tokens -----------------------------------------------------------------------

def _members(c):
    return sorted((x["id"], x["name"]) for x in c.node_list(0))


def _settled(c):
    """The state once the cluster stops changing on its own (a new node's promotion and first
    reports come in after the join returns): a status whose revision holds for half a second."""
    def still():
        a = c.status(0)
        time.sleep(0.5)
        b = c.status(0)
        return b if (a["revision"], a["state_hash"]) == (b["revision"], b["state_hash"]) else None
    return wait_until(still, 15, "the cluster's state to settle")


def _refused_join(c, token, expect):
    before = _settled(c)
    nodes_before = _members(c)
    d = os.path.join(c.tmp, "intruder")
    port = c._new_node().port
    p = c.run("join", c.nodes[0].addr, "--token", token, "--listen", "127.0.0.1:%d" % port, "--data-dir", d,
              "--name", "intruder", "--detach")
    check(p.returncode != 0, "join with token %r succeeded: %r" % (token, p.stdout))
    check(re.search(expect, p.stderr), "join refusal message %r does not match %r" % (p.stderr.strip(), expect))
    check(not os.path.exists(os.path.join(d, "identity")), "refused join wrote an identity")
    check(not os.path.exists(os.path.join(d, "orch.pid")), "refused join started a node")
    after = c.status(0)
    check(_members(c) == nodes_before, "node list changed by a refused join: %s, was %s" % (_members(c), nodes_before))
    check((after["revision"], after["state_hash"]) == (before["revision"], before["state_hash"]),
          "state changed by a refused join")


def test_wrong_token_refused():
    with Cluster(2) as c:
        cid, fp, secret = parse_token(c.token)
        wrong_secret = "ORCH2-%s-%s-%064x" % (cid, fp, int(secret, 16) ^ 1)
        _refused_join(c, wrong_secret, r"token refused")
        wrong_pin = "ORCH2-%s-%064x-%s" % (cid, int(fp, 16) ^ 1, secret)
        _refused_join(c, wrong_pin, r"CA is not the one the token pins")
        log = c.nodes[0].log_text()
        check("refused a join" in log, "the node did not log the refused join")
        c.write_bench(1, 20, 4)
        c.converged()


def test_malformed_token_refused():
    with Cluster(1) as c:
        good = c.token
        for bad in ("garbage", good[:-1], good + "0", good.replace("ORCH2", "ORCH3"), good[:30] + "zz" + good[32:]):
            _refused_join(c, bad, r"malformed token")
        _refused_join(c, "ORCH1-" + "0" * 16 + "-" + "0" * 64, r"older orch")
        _refused_join(c, "", r"malformed token: empty")


def test_join_with_busy_listen_address_changes_nothing():
    with Cluster(1) as c:
        before = c.status(0)
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        d = os.path.join(c.tmp, "late")
        with busy:
            p = c.run("join", c.nodes[0].addr, "--token", c.token, "--listen", "127.0.0.1:%d" % busy.getsockname()[1],
                      "--data-dir", d, "--name", "late", "--detach")
        check(p.returncode != 0 and "listen" in p.stderr, "join on a busy port: rc %d %r" % (p.returncode, p.stderr))
        check(not os.path.exists(os.path.join(d, "identity")), "a failed join wrote an identity")
        after = c.status(0)
        check(after["nodes"] == 1 and after["revision"] == before["revision"],
              "the cluster added a node that cannot listen: %r" % c.node_list(0))


# ---- leave and node rm -------------------------------------------------------------------------

def test_leave_follower():
    with LabCluster(3) as c:
        lead = c.leader()
        f = next(n for n in c.nodes if n is not lead)
        p = c.cli(f, "leave", json=False)
        check("left the cluster" in p.stdout, "leave: %r" % p.stdout)
        # The CLI says the identity was removed: it must be true when it says so.
        check(not os.path.exists(os.path.join(f.dir, "identity")), "leave kept the identity")
        check(not os.path.exists(os.path.join(f.dir, "raft")) or not os.listdir(os.path.join(f.dir, "raft")),
              "leave kept the raft data")
        wait_until(lambda: not f.alive(), 10, "the leaving node to stop")
        rest = [n for n in c.nodes if n is not f]
        wait_until(lambda: all(sorted(x["name"] for x in c.node_list(n)) == sorted(m.name for m in rest) for n in rest),
                   10, "the others to drop the node")
        c.write_bench(rest[0], 50, 8)
        c.converged(rest)


def test_leave_leader():
    with LabCluster(4) as c:
        settled(c, {"voter": 3, "standby": 1})
        old = c.leader()
        p = c.cli(old, "leave", json=False)
        check("left the cluster" in p.stdout, "leave: %r" % p.stdout)
        wait_until(lambda: not old.alive(), 10, "the old leader to stop")
        rest = [n for n in c.nodes if n is not old]
        new = c.leader(rest)
        check(new is not old, "leadership not handed over")
        names = sorted(n.name for n in rest)
        wait_until(lambda: all(sorted(x["name"] for x in c.node_list(n)) == names for n in rest), 10,
                   "the others to drop the old leader")
        wait_until(lambda: voters(c, new) == names, 10, "the 3 remaining nodes to be voters")
        c.write_bench(rest[0], 50, 8)
        c.converged(rest)


def test_node_rm_dead_node():
    with LabCluster(3, failure_timeout="2s") as c:
        lead = c.leader()
        victim = next(n for n in c.nodes if n is not lead)
        ask = next(n for n in c.nodes if n is not victim and n is not lead)  # goes through forwarding
        t0 = time.time()
        p = c.cli(ask, "node", "rm", victim.name, json=False, check=False)
        check(p.returncode != 0 and "is up" in p.stderr, "node rm of a live node: rc %d %r" % (p.returncode, p.stderr))
        print("node rm of a live node refused after %.1fs" % (time.time() - t0))
        p = c.cli(ask, "node", "rm", "no-such-node", json=False, check=False)
        check(p.returncode != 0 and "no such node" in p.stderr, "node rm of an unknown node: %r" % p.stderr)
        check(len(c.node_list(lead)) == 3, "refused node rm changed the node list")
        c.kill9(victim)
        wait_until(lambda: {x["name"]: x["state"] for x in c.node_list(lead)}[victim.name] == "down", 10,
                   "the killed node to be marked down")
        p = c.cli(ask, "node", "rm", victim.name, json=False)
        rest = [lead, ask]
        wait_until(lambda: all(sorted(x["name"] for x in c.node_list(n)) == sorted(m.name for m in rest) for n in rest),
                   10, "the removed node to disappear")
        c.write_bench(ask, 50, 8)
        c.converged(rest)
        # A removed node that comes back (it still believes it is a voter) must not disturb
        # the cluster: pre-vote keeps the term, the leader stays, the list stays at 2.
        term = c.status(lead)["term"]
        c.restart(victim)
        time.sleep(3)
        for n in rest:
            s = c.status(n)
            check(s["term"] == term and s["leader_id"] == c.status(lead)["node_id"],
                  "%s: term %d -> %d, leader %s after the removed node came back" % (n.name, term, s["term"], s["leader_name"]))
        check(len(c.node_list(lead)) == 2, "the removed node came back into the list")


# ---- garbage on the node port and the local socket ----------------------------------------------

def _state(c):
    s = c.converged()
    return s["revision"], s["state_hash"], s["nodes"]


def _expect_closed_or_error(conn, what):
    out = conn.outcome()
    if out == "closed":
        return
    check(out != "open", "%s: the node neither answered nor closed" % what)
    # An error reply: a frame holding a map with a non-zero rc, then the node closes.
    n = struct.unpack(">I", out[:4])[0]
    body = out[4:4 + n]
    try:
        r = mpack.unpackb(body)
    except mpack.DecodeError as e:
        raise Fail("%s: reply is not msgpack (%s): %r" % (what, e, out[:80]))
    check(isinstance(r, dict) and r.get("rc", 0) != 0 and r.get("err"), "%s: reply %r" % (what, r))
    check(conn.outcome() == "closed", "%s: the node did not close after the error" % what)


def test_garbage_node_port():
    """The node port speaks only TLS: garbage before or instead of a handshake, and broken
    preambles and frames inside TLS, close the connection and change nothing."""
    rnd = random.Random(2)
    with LabCluster(3) as c:
        before = _state(c)
        target = next(n for n in c.nodes if n is not c.leader())
        me = c.nodes[0]
        cases = [
            ("random bytes", bytes(rnd.getrandbits(8) for _ in range(4096))),
            ("the old plain hello", b"ORCH" + bytes([1, 2, 0, 0]) + bytes(40)),
            ("plain http", b"GET /metrics HTTP/1.0\r\n\r\n"),
            ("endless http", b"GET /" + b"a" * 20000),
            ("a TLS record header then junk", b"\x16\x03\x01\x02\x00" + bytes(rnd.getrandbits(8) for _ in range(600))),
        ]
        for what, data in cases:
            with Conn.raw_tcp(target) as k:
                k.send_garbage(data)
                check(k.outcome() == "closed", "%s: the node answered a plain client" % what)
            check(c.status(target)["raft_state"], "node down after %s" % what)
        # Truncated handshakes: the peer goes away in the middle.
        for cut in (3, 50, 200):
            with Conn.raw_tcp(target) as k:
                k.send_raw(b"\x16\x03\x01\x01\x00" + bytes(cut))
        # Inside TLS, broken preambles.
        for what, pre in (("bad version", b"ORCH\x09\x02\0\0"), ("bad kind", b"ORCH\x02\x07\0\0"),
                          ("oversized extra", b"ORCH\x02\x02\xff\xff"), ("not a preamble", b"HELLO123"),
                          ("bytes after the preamble", b"ORCH\x02\x02\0\0extra")):
            with Conn.tls_raw(target, me) as k:
                k.send_raw(pre)
                check(k.outcome() == "closed", "%s: not closed" % what)
        # Inside TLS, broken frames.
        frames = [
            ("zero length", struct.pack(">I", 0)),
            ("oversized length", struct.pack(">I", 0xFFFFFFFF) + b"x" * 100),
            ("not msgpack", mpack.frame(b"\xc1\xc1\xc1")),
            ("not a map", mpack.frame(mpack.packb([1, 2, 3]))),
            ("truncated map", mpack.frame(mpack.packb({"op": "status", "x": "y" * 50})[:-10])),
            ("map claiming 4G entries", mpack.frame(b"\xdf\xff\xff\xff\xff\xa1a")),
            ("deep nesting", mpack.frame(b"\x91" * 100000 + b"\xc0")),
        ]
        for what, data in frames:
            with Conn.tcp(target, me) as k:
                k.send_garbage(data)
                _expect_closed_or_error(k, what)
        for what, cut in (("frame header", 2), ("frame body", 30)):
            with Conn.tcp(target, me) as k:
                k.send_raw(mpack.frame(mpack.packb({"op": "status", "id": 1, "pad": "z" * 100}))[:cut])
        # Well-formed frames with bad requests get an error and the connection stays usable.
        with Conn.tcp(target, me) as k:
            for req in ({}, {"op": 5}, {"op": "no.such.op"}, {"op": "kv.set", "key": 1}, {"op": "node.rm"},
                        {"op": "join", "node": "x"}, {"op": "join", "node": {"id": "x", "name": 5}},
                        {"op": "hb"}, {"op": "apply", "entry": "not bin"}, {"op": "apply", "entry": b"123"}):
                r = k.call(**req) if "op" in req and isinstance(req["op"], str) else None
                if r is None:
                    k.send(dict(req))
                    r = k.read()
                check(r.get("rc", 0) != 0 and r.get("err"), "request %r: reply %r" % (req, r))
            check(k.call("ping").get("rc") == 0, "ping after bad requests failed")
        # A raft connection that carries garbage after the preamble.
        with Conn.tcp(target, me, kind=1, extra=struct.pack(">Q", int(c.status(me)["node_id"], 16)) + b"127.0.0.1:1") as k:
            k.send_raw(struct.pack("<Q", 1) + struct.pack("<Q", 1 << 62) + os.urandom(512))
            k.outcome(timeout=2)
        after = _state(c)
        check(after == before, "state changed by garbage: %r -> %r" % (before, after))
        check(all(n.alive() for n in c.nodes), "a node died: %r" % c.nodes)
        c.write_bench(target, 50, 8)
        c.converged()


def test_garbage_local_socket():
    rnd = random.Random(3)
    with Cluster(1) as c:
        n = c.nodes[0]
        before = _state(c)
        cases = [
            ("random bytes", bytes(rnd.getrandbits(8) for _ in range(4096))),
            ("zero length", struct.pack(">I", 0)),
            ("oversized length", struct.pack(">I", 0x7FFFFFFF) + b"x" * 100),
            ("not msgpack", mpack.frame(b"\xc1")),
            ("not a map", mpack.frame(mpack.packb("status"))),
            ("trailing garbage in frame", mpack.frame(mpack.packb({"op": "status"}) + b"\xc1\xc1")),
            ("str claiming 1 GB", mpack.frame(b"\x81\xa2op\xdb\x40\x00\x00\x00abc")),
            ("deep nesting", mpack.frame(b"\x81\xa1x" + b"\x91" * 200000 + b"\xc0")),
        ]
        for what, data in cases:
            with Conn.local(n) as k:
                k.send_raw(data)
                _expect_closed_or_error(k, what)
            check(c.status(n)["raft_state"] == "leader", "node not serving after %s" % what)
        for cut in (1, 3, 4, 20):
            with Conn.local(n) as k:
                k.send_raw(mpack.frame(mpack.packb({"op": "status", "id": 9, "pad": "q" * 40}))[:cut])
        # Many connections that open and vanish.
        socks = []
        for _ in range(200):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(n.sock)
            s.send(b"\0\0")
            socks.append(s)
        for s in socks:
            s.close()
        after = _state(c)
        check(after == before, "state changed by garbage: %r -> %r" % (before, after))
        # Bad requests in good frames: an error each, the connection stays usable. Those
        # rejected by the state machine itself still consume a request sequence (part of
        # the replicated state), so only the revision must stay.
        with Conn.local(n) as k:
            for req in ({}, {"op": None}, {"op": "join"}, {"op": "kv.get"}, {"op": "kv.get", "key": "x" * 1000},
                        {"op": "apply", "entry": b""}, {"op": "apply", "entry": b"1234567"},
                        {"op": "node.update", "node": "n1", "availability": "sideways"},
                        {"op": "node.update", "node": "n1", "labels": [1]}):
                k.send(dict(req))
                r = k.read()
                check(r.get("rc", 0) != 0 and r.get("err"), "request %r: reply %r" % (req, r))
            check(k.call("ping").get("rc") == 0, "ping after bad requests failed")
        check(_state(c)[0] == before[0], "revision changed by rejected requests")
        c.write_bench(n, 20, 4)


def _random_value(rnd, depth=0):
    k = rnd.randrange(10 if depth < 2 else 7)
    if k == 0:
        return None
    if k == 1:
        return rnd.choice([True, False])
    if k == 2:
        return rnd.choice([0, 1, -1, 2 ** 63, 2 ** 64 - 1, -(2 ** 63), rnd.getrandbits(64)])
    if k == 3:
        return rnd.choice(["", "n1", "n2", "x" * rnd.randrange(300), "\u00e9\u4e2d", "0" * 16, "ffffffffffffffff"])
    if k == 4:
        return bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 3, 8, 16, 64])))
    if k == 5:
        return rnd.random() * 1e9
    if k == 6:
        return rnd.choice(["active", "drain", "pause", "ready", "down"])
    if k == 7:
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    return {rnd.choice(["a", "key", "id", "", "value"]): _random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))}


def test_fuzz_local_socket_ops():
    """Random field types for every op that cannot make the node leave: each request gets a
    reply map with an rc, the node keeps serving and all nodes keep agreeing."""
    seed = int(os.environ.get("FUZZ_SEED", "7"))
    rnd = random.Random(seed)
    ops = ["ping", "status", "nodes", "kv.get", "kv.set", "node.update", "hb", "join", "apply", "node.leave", "node.rm", "bogus"]
    keys = ["key", "value", "node", "node_id", "availability", "labels", "entry", "force", "id"]
    with Cluster(3) as c:
        targets = list(c.nodes)
        for round_ in range(1500):
            n = targets[round_ % 3]
            op = rnd.choice(ops)
            req = {"op": op}
            for k in rnd.sample(keys, rnd.randrange(len(keys))):
                req[k] = _random_value(rnd)
            if op in ("node.leave", "node.rm"):
                # Never name a real node: removing members is not what this test is about.
                req["node"] = "ghost"
                req["node_id"] = 0xDEAD
                req.pop("force", None)
            if op == "apply" and isinstance(req.get("entry"), bytes) and len(req["entry"]) % 8:
                req["entry"] = req["entry"] + bytes(8 - len(req["entry"]) % 8)
            tcp = rnd.random() < 0.3
            with (Conn.tcp(n, n) if tcp else Conn.local(n)) as k:
                k.send(dict(req, id=round_ + 1) if not isinstance(req.get("id"), int) or req.get("id", 0) < 0 else req)
                try:
                    r = k.read()
                except (EOFError, OSError) as e:
                    raise Fail("seed %d round %d: no reply to %r over %s (%s)" % (seed, round_, req, "tcp" if tcp else "unix", e))
                check(isinstance(r, dict) and isinstance(r.get("rc"), int),
                      "seed %d round %d: reply %r to %r" % (seed, round_, r, req))
            if round_ % 100 == 99:
                check(all(x.alive() for x in c.nodes), "seed %d: a node died by round %d (last %r)" % (seed, round_, req))
        check(all(x.alive() for x in c.nodes), "a node died")
        c.write_bench(c.nodes[1], 50, 8)
        c.converged(timeout=20)
