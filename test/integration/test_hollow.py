"""Issue 9 (hollow nodes): `orch debug hollow` runs many complete nodes in one process, joined
over real TCP to a real 3-node cluster. They heartbeat, watch their assignments and run an
agent whose runtime runs nothing: `orch nodes` shows them as hollow raft spares, a service
placed on them becomes running with synthetic figures, and when the hollow process is
killed its nodes go down and their tasks move to the hollow nodes of another process.
No container, bridge or nft table is made for them (the real nodes' teardown checks for
leaks, and the hollow data directories hold no network or runtime state)."""
import collections
import os
import signal
import subprocess
import time

from harness import BIN, check, free_port, kill_pid, pid_alive, wait_until
from workload import WorkCluster, per_node, running

TIMEOUTS = {"test_hollow_nodes_run_and_reschedule": 240}
# dozens of nodes at once: the load would slow the tests running beside it
SERIAL = True

SPEC = """services:
  web:
    image: demo:latest
    deploy:
      replicas: 40
      placement:
        constraints: ["node.labels.pool == hollow"]
"""


class Hollow:
    """One `orch debug hollow` process, recorded (pid and data dir) for the runner's
    clean-up, killed by pid."""

    def __init__(self, c, prefix, nodes, block):
        self.dir = os.path.join(c.tmp, "hollow-" + prefix)
        self.prefix = prefix
        self.log = self.dir + ".log"
        port = free_port("127.0.%d.1" % block)
        args = [BIN, "-D", self.dir, "debug", "hollow", "--join", c.nodes[0].addr,
                "--nodes", str(nodes), "--listen-base", "127.0.%d.1" % block, "--port", str(port),
                "--run-delay", "300", "--name-prefix", prefix, "--label", "pool=hollow"]
        self.out = open(self.log, "w")
        self.p = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=c.token_env())
        with open(os.path.join(os.environ.get("TEST_TMP") or c.tmp, "pids"), "a") as f:
            f.write("%d %s\n" % (self.p.pid, self.dir))

    def names(self, nodes):
        return [n["name"] for n in nodes if n["name"].startswith(self.prefix + "-")]

    def stop(self, sig):
        kill_pid(self.p.pid, self.dir, sig, wait=20)
        try:
            return self.p.wait(10)
        except subprocess.TimeoutExpired:
            return None

    def tail(self):
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-15:])


def test_hollow_nodes_run_and_reschedule():
    with WorkCluster(3, failure_timeout="2s") as c:
        c.load_demo()
        fleets = []
        try:
            a = Hollow(c, "ha", 12, 97)
            fleets.append(a)
            b = Hollow(c, "hb", 8, 98)
            fleets.append(b)

            def all_ready():
                ns = c.node_list(0)
                hollow = [n for n in ns if n["runtime"] == "hollow"]
                return ns if len(ns) == 23 and len(hollow) == 20 and all(n["state"] == "ready" for n in ns) else None
            t0 = time.time()
            ns = wait_until(all_ready, 60, "3 real and 20 hollow nodes, all ready")
            print("20 hollow nodes in 2 processes joined and ready in %.1fs" % (time.time() - t0), flush=True)
            census = collections.Counter((n["runtime"], n["role"]) for n in ns)
            check(census == collections.Counter({("hollow", "spare"): 20, ("runc", "voter"): 3}),
                  "hollow nodes are raft spares, the real ones voters: %r" % dict(census))
            check(all(n["labels"].get("pool") == "hollow" for n in ns if n["runtime"] == "hollow"), "labels: %r" % ns)
            check(sorted(a.names(ns)) == ["ha-%04d" % i for i in range(1, 13)], "names: %r" % a.names(ns))
            table = c.cli(0, "nodes", json=False).stdout
            check("RUNTIME" in table.splitlines()[0] and table.count(" hollow ") == 20,
                  "orch nodes does not show the hollow runtime:\n%s" % table)

            c.deploy(0, c.write("web.yaml", SPEC))
            t0 = time.time()
            tasks = wait_until(lambda: (lambda r: r if len(r) == 40 else None)(running(c.ps(0, "web"))), 60,
                               "40 tasks of web running on hollow nodes")
            print("40 replicas running on hollow nodes %.1fs after the deploy" % (time.time() - t0), flush=True)
            spread = per_node(tasks)
            check(len(spread) == 20 and set(spread.values()) == {2}, "replicas spread 2 per hollow node: %r" % spread)

            # synthetic figures come with the heartbeats (orch top on the leader)
            lead = c.leader()

            def figures():
                top = c.cli(lead, "top")
                got = [t for t in top.get("tasks", []) if t.get("service") == "web" and t.get("memory", 0) > 0]
                return got if len(got) == 40 else None
            wait_until(figures, 20, "orch top to show memory figures for the 40 hollow tasks")

            # the first process dies: its 12 nodes go down, their 24 tasks move to the other's 8
            os.kill(a.p.pid, signal.SIGKILL)
            a.p.wait(10)
            t0 = time.time()

            def moved():
                ns = c.node_list(lead)
                down = [n["name"] for n in ns if n["state"] == "down"]
                r = running(c.ps(lead, "web"))
                on_b = [t for t in r if t["node"].startswith("hb-")]
                return (down, r) if sorted(down) == sorted(a.names(ns)) and len(on_b) == 40 else None
            down, r = wait_until(moved, 60, "the 12 nodes of the killed process down and all 40 tasks on the other's 8")
            print("killed hollow process: 12 nodes down, 40 tasks running on the other 8 after %.1fs" % (time.time() - t0),
                  flush=True)
            check(set(per_node(r).values()) == {5}, "40 tasks over 8 nodes: %r" % per_node(r))
            events = c.cli(lead, "events")
            check(sum(1 for e in events if e["kind"] == "rescheduled" and e["service"] == "web") >= 24,
                  "rescheduled events: %r" % [e["kind"] for e in events][-30:])

            # no network or runtime state for hollow nodes; a clean stop on SIGTERM
            for f in fleets:
                for d in os.listdir(f.dir):
                    for leftover in ("net-tag", "runc", "tasks"):
                        check(not os.path.exists(os.path.join(f.dir, d, leftover)),
                              "hollow node %s has %s" % (d, leftover))
            rc = b.stop(signal.SIGTERM)
            check(rc == 0, "the hollow process exited %r on SIGTERM: %s" % (rc, b.tail()))
        except BaseException:
            for f in fleets:
                print("--- hollow %s log tail:\n%s" % (f.prefix, f.tail()), flush=True)
            raise
        finally:
            for f in fleets:
                if pid_alive(f.p.pid):
                    f.stop(signal.SIGKILL)
                f.out.close()
