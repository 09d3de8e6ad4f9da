"""Issue 12, torn writes: a node killed (SIGKILL) while it appends, again and again
(some of those times with the tail of its open segment torn by hand, as a power cut
would leave it), restarts from what its disk holds (libraft drops a torn tail), catches
up, and ends with the same state as the others; no acknowledged write is lost."""
import glob
import os
import random
import time

from harness import Cluster, Conn, check, wait_until
from test_cluster import KvWriter

TIMEOUTS = {"test_follower_killed_mid_append_20_times": 90}

KILLS = 20


def tear_tail(node, rnd):
    """Overwrites the last 64 written bytes of the node's newest open segment with
    garbage, as a write cut short by power loss would leave them. Returns whether one
    was torn (segments are preallocated: the written part ends at the last non-zero byte)."""
    segs = glob.glob(os.path.join(node.dir, "raft", "open-*"))
    segs = [s for s in segs if os.path.getsize(s) > 0]
    if not segs:
        return False
    seg = max(segs, key=os.path.getmtime)
    with open(seg, "r+b") as f:
        data = f.read()
        end = len(data.rstrip(b"\0"))
        if end <= 8 + 64:  # only the format header: nothing to tear
            return False
        f.seek(end - 64)
        f.write(bytes(rnd.randrange(256) for _ in range(64)))
    return True


def test_follower_killed_mid_append_20_times():
    rnd = random.Random(12)
    with Cluster(3) as c:
        lead = c.leader()
        followers = [n for n in c.nodes if n is not lead]
        w = KvWriter(lead, inflight=32)
        w.start()
        wait_until(lambda: len(w.acked) >= 200 or w.errors, 20, "writes flowing before the first kill")
        restarts, torn = [], 0
        for k in range(KILLS):
            victim = followers[k % 2]
            # killed at a random point of the burst: mid-write of its open segment often
            time.sleep(rnd.uniform(0.02, 0.3))
            before = len(w.acked)
            c.kill9(victim)
            t0 = time.time()
            if k % 4 == 0:
                torn += tear_tail(victim, rnd)
            c.restart(victim)
            # every other round it is killed again while it is still catching up
            if k % 2:
                time.sleep(rnd.uniform(0.0, 0.2))
                c.kill9(victim)
                c.restart(victim)
            wait_until(lambda: c.status(victim)["applied_index"] > 0, 10, "%s to serve after restart %d" % (victim.name, k))
            restarts.append(time.time() - t0)
            check(not w.errors, "writer failed: %s" % w.errors)
            check(len(w.acked) >= before, "acknowledged count went back")
        wait_until(lambda: len(w.acked) >= 1000 or w.errors, 20, "writes acknowledged during the kills")
        w.finish()
        st = c.converged(timeout=20)
        missing = []
        for n in c.nodes:
            check(n.alive(), "%s died" % n.name)
            with Conn.local(n) as k:
                for i in w.acked:
                    r = k.call("kv.get", key="w/%d" % i)
                    if r.get("rc") != 0 or r.get("value") != "v%d" % i:
                        missing.append((n.name, i, r.get("rc")))
        check(torn >= KILLS // 8, "only %d tails torn by hand" % torn)
        check(not missing, "%d acknowledged writes missing, e.g. %r" % (len(missing), missing[:5]))
        for n in c.nodes:
            log = n.log_text()
            for bad in ("Segmentation fault", "double free", "corrupt", "Aborted"):
                check(bad not in log, "%s's log says %r" % (n.name, bad))
        print("%d kills (%d during catch-up, %d tails torn by hand), %d writes acknowledged and verified on 3 nodes, applied %d, "
              "restart to serving median %.2fs" % (KILLS + KILLS // 2, KILLS // 2, torn, len(w.acked), st["applied_index"],
                                                  sorted(restarts)[len(restarts) // 2]))
