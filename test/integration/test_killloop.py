"""Issue 12 (kill -9 loops): random nodes killed with SIGKILL (by PID) and restarted while
clients write through every node, and during a rolling update. Afterwards the history
checker (history.py) finds every acknowledged write, reads that fit one linearizable
history, every node at the same applied index and state hash; the rollout finishes and the
service converges. Seeds are fixed (ORCH_CHAOS_SEED overrides) and printed."""
import random
import subprocess
import time

from harness import Cluster, Fail, check
from healing import inspect, spec, wait_placed
from history import Workload, chaos_seed, verify
from workload import WorkCluster, wait_running

TIMEOUTS = {"test_kill9_loop_writes": 90, "test_kill9_loop_during_rollout": 150}




def kill_restart(c, node, down):
    c.kill9(node)
    time.sleep(down)
    c.restart(node)


def test_kill9_loop_writes():
    """20 cycles: a random node (the leader as often as any) killed -9, down 0.1-0.6 s,
    restarted, with writes and reads through all three nodes the whole time."""
    rng = random.Random(chaos_seed(12))
    with Cluster(3) as c:
        w = Workload(c.nodes, tag="k9", seed=rng.random()).start()
        t0 = time.time()
        killed = {}
        for _ in range(20):
            n = rng.choice(c.nodes)
            killed[n.name] = killed.get(n.name, 0) + 1
            kill_restart(c, n, rng.uniform(0.1, 0.6))
            time.sleep(rng.uniform(0.1, 0.4))
        took = time.time() - t0
        w.stop()
        t1 = time.time()
        st = c.converged(timeout=20)
        conv = time.time() - t1
        summary = verify(w, c.nodes, "20 kill -9 cycles")
        print("%s; killed %s in %.1fs; converged %.2fs after, applied %d, hash %s" %
              (summary, killed, took, conv, st["applied_index"], st["state_hash"][:12]))
        check(w.history.counts().get("write_ok", 0) >= 100, "too few writes acknowledged: %r" % w.history.counts())


def test_kill9_loop_during_rollout():
    """A rollout of 6 replicas (one at a time) while random nodes are killed -9 and
    restarted (some down past the failure timeout, so their tasks move) and clients
    write: the rollout finishes, 6 replicas of the new generation run, nothing acked is
    lost and the nodes converge."""
    rng = random.Random(chaos_seed(7))
    ft = 2.0
    with WorkCluster(3, failure_timeout="%ds" % ft) as c:
        c.load_demo()
        upd = "parallelism: 1, monitor: 1s, failure_action: pause"
        c.deploy(0, c.write("v1.yml", spec(6, env="1", update=upd)))
        wait_running(c, "web", 6)
        g1 = inspect(c, 0)["generation"]
        w = Workload(c.nodes, tag="ro", seed=rng.random(), pause=0.01).start()
        c.deploy(0, c.write("v2.yml", spec(6, env="2", update=upd)))
        kills = []
        t0 = time.time()
        for _ in range(4):
            n = rng.choice(c.nodes)
            down = rng.choice((0.3, 0.8, ft + 1.5))
            kills.append("%s %.1fs" % (n.name, down))
            kill_restart(c, n, down)
            time.sleep(rng.uniform(0.5, 1.5))
        lead = c.leader()
        try:
            p = c.cli(lead, "rollout", "status", "web", "--wait", json=False, check=False, timeout=100)
        except subprocess.TimeoutExpired:
            st = c.cli(lead, "rollout", "status", "web", json=False, check=False).stdout.strip()
            ts = [(t["id"], t["slot"], t["node"], t.get("generation"), t["state"], t.get("desired"), t.get("error", ""))
                  for t in c.ps(lead, "web", all_tasks=True)]
            raise Fail("the rollout did not end in 100 s after the kills %s: %s; tasks (id, slot, node, gen, state, "
                       "desired, error): %s" % (kills, st, ts))
        check(p.returncode == 0, "rollout after the kills ended %d: %s" % (p.returncode, (p.stdout + p.stderr).strip()[-400:]))
        v = inspect(c, lead)
        check(v["generation"] > g1 and v["update_state"] == "completed",
              "service after the rollout: generation %s (was %s), %s" % (v["generation"], g1, v["update_state"]))
        ts = wait_placed(c, lead, "web", 6, generation=v["generation"], timeout=40)
        check(sorted(t["slot"] for t in ts) == list(range(1, 7)), "slots after the rollout: %r" % [t["slot"] for t in ts])
        took = time.time() - t0
        w.stop()
        st = c.converged(timeout=20)
        summary = verify(w, c.nodes, "rollout under kill -9")
        print("%s; kills %s; rollout done %.1fs after it began; hash %s" % (summary, kills, took, st["state_hash"][:12]))
