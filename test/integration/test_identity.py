"""Issue 9 (request identity): a write is acknowledged only when it changed the state or
truly repeated an applied request. Requests are identified by (node, session drawn at each
process start, counter), bound on the leader to the connection of the node they name
(src/state/store.h, src/node/rpc.c op_apply). The old identity (node, wall-clock sequence)
made `orch scale` print success and change nothing once the state recorded a larger
sequence for the node: these tests record such sequences and scale anyway."""
import os
import random
import re
import struct
import time

import mpack
from harness import Conn, Fail, check, tls_dir, wait_until
from workload import DEMO, WorkCluster, wait_running

TIMEOUTS = {"test_scale_with_recorded_sequence_ahead": 150}

WEB = """services:
  web:
    image: %s
    stop_grace_period: 1s
    deploy:
      replicas: 1
"""


def entry(origin, seq, body, session=None, type_="kv.set"):
    """A log entry as a node builds it (src/state/store.c cmd_build); session=None gives
    the old format 1 (no session), whose sequence was wall-clock milliseconds << 10."""
    m = {"t": type_, "v": 1 if session is None else 2, "o": origin, "s": seq, "b": body}
    if session is not None:
        m["n"] = session
    p = mpack.packb(m)
    e = b"OC\0\1" + struct.pack(">I", len(p)) + p
    return e + b"\0" * (-len(e) % 8)


def node_id(c, n):
    return int(c.status(n)["node_id"], 16)


def kv_get(node, key):
    with Conn.local(node) as k:
        r = k.call("kv.get", key=key)
    return r.get("value") if r.get("rc") == 0 else None


def replicas(c, node, name="web"):
    return [s for s in c.services(node) if s["name"] == name][0]["replicas"]


def scale(c, node, n):
    p = c.cli(node, "scale", "web=%d" % n, json=False)
    check(re.search(r"web scaled to %d" % n, p.stdout), "orch scale output: %r" % p.stdout)
    # the old failure: "scaled", exit 0, and nothing changed (the node that asked may
    # apply the entry a moment after the leader answered)
    wait_until(lambda: replicas(c, node) == n, 10, "orch scale web=%d (said %r) to show in orch services: %r" %
               (n, p.stdout.strip(), replicas(c, node)))
    wait_running(c, "web", n, timeout=60, node=node)


def test_scale_with_recorded_sequence_ahead():
    with WorkCluster(3) as c:
        n1, n2, _ = c.nodes
        c.load_demo()
        c.deploy(0, c.write("web.yml", WEB % DEMO))
        wait_running(c, "web", 1)
        lead = c.leader()
        check(lead is n1, "n1 should lead a fresh cluster, %s does" % lead.name)
        me2, me1 = node_id(c, n2), node_id(c, n1)
        # Sequences far ahead recorded for n2, as the old nodes wrote them (a clock a year
        # ahead) and under a session with the largest counter. The test reads n2's key and
        # certificate from its data directory, so it can speak as n2.
        ahead = (int(time.time() * 1000) + 365 * 86400 * 1000) << 10
        with Conn.tcp(lead, n2, extra=struct.pack(">Q", me2)) as k:
            r = k.call("apply", entry=entry(me2, ahead, {"key": "ahead", "value": "old format"}))
            check(r.get("rc") == 0, "old-format entry for n2: %r" % r)
            r = k.call("apply", entry=entry(me2, 2 ** 64 - 1, {"key": "ahead", "value": "huge counter"},
                                            session=random.getrandbits(63) + 1))
            check(r.get("rc") == 0, "entry with a huge counter for n2: %r" % r)
        c.converged()
        check(kv_get(n2, "ahead") == "huge counter", "n2 did not apply the recorded entries")

        # Nobody submits as another node: not a node whose certificate names another id
        # (with or without claiming n2's id), not a connection with no certificate;
        # nothing changes.
        forged = entry(me2, 1, {"key": "forged", "value": "x"}, session=7)
        with Conn.tcp(lead, n1) as k:
            r = k.call("apply", entry=forged)
        check(r.get("rc") != 0 and "claims origin" in r.get("err", ""), "forged entry answered %r" % r)
        try:
            with Conn.tcp(lead, n1, extra=struct.pack(">Q", me2)) as k:
                r = k.call("apply", entry=forged)
            raise Fail("a connection claiming n2's id with n1's certificate was accepted: %r" % r)
        except (EOFError, OSError):
            pass
        with Conn.tls_raw(lead, None, ca=os.path.join(tls_dir(n1), "ca.crt")) as k:
            k.send_raw(b"ORCH\x02\x02\0\0")
            check(k.recv_exact(1) == b"K", "anonymous preamble not acknowledged")
            r = k.call("apply", entry=forged)
        check(r.get("rc") != 0 and "needs a certificate" in r.get("err", ""), "anonymous entry answered %r" % r)
        # a follower does not relay entries (it cannot vouch for their origin)
        with Conn.tcp(n2, n2, extra=struct.pack(">Q", me2)) as k:
            r = k.call("apply", entry=entry(me2, 1, {"key": "forged", "value": "x"}, session=7))
        check(r.get("rc") != 0 and "not the leader" in r.get("err", ""), "follower answered %r" % r)
        check(all(kv_get(n, "forged") is None for n in c.nodes), "a refused entry changed the state")

        # Through n2 (forwarded to the leader) and through the leader itself.
        scale(c, n2, 2)
        scale(c, n1, 3)

        # n2 restarts on its data dir, whose state records sequences for n2 far beyond what
        # its new run counts from (what a clock stepped back did to the old identity).
        c.stop(n2)
        with Conn.tcp(lead, n2, extra=struct.pack(">Q", me2)) as k:
            r = k.call("apply", entry=entry(me2, ahead + 1, {"key": "ahead", "value": "while down"}))
            check(r.get("rc") == 0, "old-format entry for n2 while it is down: %r" % r)
        c.restart(n2)
        wait_until(lambda: c.status(n2)["leader_id"], 20, "restarted n2 to know the leader")
        wait_until(lambda: kv_get(n2, "ahead") == "while down", 20, "restarted n2 to catch up")
        scale(c, n2, 2)
        scale(c, n2, 4)
        # and the same once more after a kill -9 (no clean shutdown of anything)
        c.kill9(n2)
        c.restart(n2)
        wait_until(lambda: c.status(n2)["leader_id"], 20, "restarted n2 to know the leader")
        scale(c, n2, 1)
        check(replicas(c, n1) == 1, "n1 sees %r replicas" % replicas(c, n1))
        c.converged()
