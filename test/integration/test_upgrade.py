"""Issue 13 (upgrades): two builds side by side, the previous release (git tag v0.15.0,
built once by scripts/build-release.sh into vendor/releases/) and this one. A 3-node
cluster of the old release runs a service; a node of the new build joins it (N+1 joins
N); then every old node is replaced in turn as orch(8) UPGRADES says (drain, stop, swap
the binary, start on the same data directory, activate; the leader last) while the
service keeps running replicas; at the end every node runs the new build, the replicas
agree on the state, the state is the one the old cluster had (a redeploy of the same file
is "unchanged"), and the new leader refuses a joiner of the old release with a clear
message."""
import os
import subprocess
import threading

from harness import BIN, ROOT, check, free_port, wait_until
from workload import DEMO, WorkCluster, running

TAG = "v0.15.0"
OLD = os.path.join(ROOT, "vendor", "releases", TAG, "orch")
TIMEOUTS = {"test_rolling_upgrade": 240}
# v0.15.0 draws its cluster's address byte without looking at this machine's (the check
# came after it): beside other tests' clusters it could take one of theirs, so alone
SERIAL = True

STACK = """name: up
services:
  web:
    image: %s
    command: ["sh", "-c", "exec sleep 3600"]
    stop_grace_period: 1s
    environment: {GREETING: hello}
    deploy:
      replicas: 3
"""


def old_binary():
    """The previous release, built once (about 25 s) and kept; fails loudly when the tag
    or the history is missing from the clone."""
    if not os.access(OLD, os.X_OK):
        p = subprocess.run([os.path.join(ROOT, "scripts", "build-release.sh"), TAG], capture_output=True, text=True,
                           timeout=600)
        check(p.returncode == 0, "cannot build the previous release %s for the upgrade test: %s" % (TAG, p.stderr.strip()[-600:]))
    v = subprocess.run([OLD, "version"], capture_output=True, text=True, timeout=10).stdout.strip()
    check(v == "orch " + TAG[1:], "%s says %r" % (OLD, v))
    return OLD


class MixedCluster(WorkCluster):
    """Nodes of two builds: each node remembers its binary; the CLI run against a node is
    that node's own (as an operator on that machine would run it)."""

    def __init__(self, **kw):
        self.bin = BIN
        super().__init__(0, **kw)

    def run(self, *args, timeout=None, env=None):
        return subprocess.run([self.bin] + [str(a) for a in args], capture_output=True, text=True,
                              timeout=timeout or self.timeout, env=env or self.env, stdin=subprocess.DEVNULL)

    def using(self, binary, fn, *a, **kw):
        saved, self.bin = self.bin, binary
        try:
            return fn(*a, **kw)
        finally:
            self.bin = saved

    def cli(self, node, *args, **kw):
        n = self.node(node)
        return self.using(getattr(n, "bin", BIN), super().cli, n, *args, **kw)


def version_of(c, n):
    return c.status(n)["version"]


def test_rolling_upgrade():
    old = old_binary()
    new_version = subprocess.run([BIN, "version"], capture_output=True, text=True, timeout=10).stdout.split()[-1]
    check(new_version != TAG[1:], "the current build calls itself %s too: nothing to upgrade to" % new_version)
    with MixedCluster() as c:
        for i in range(3):
            n = c.using(old, c.init if i == 0 else c.join)
            n.bin = old
        c.wait_members(c.nodes)
        for n in c.nodes:
            check(version_of(c, n) == TAG[1:], "%s runs %s" % (n.name, version_of(c, n)))
        c.using(old, c.load_demo)
        spec = c.write("up.yml", STACK % DEMO)
        c.deploy(0, spec)
        wait_until(lambda: len(running(c.ps(0, "web"))) == 3, 40, "3 replicas under the old release")

        # N+1 joins N: the old leader admits a node of the new build, which applies its log
        n4 = c.using(BIN, c.join)
        n4.bin = BIN
        c.wait_members(c.nodes)
        check(version_of(c, n4) == new_version, "n4 runs %s" % version_of(c, n4))
        st = c.status(n4)
        check(not st.get("halted"), "the new node stopped applying the old log: %r" % st.get("halted"))
        check(len(running(c.ps(n4, "web"))) == 3, "the new node does not see the replicas: %r" % c.ps(n4, "web"))

        # the service runs throughout: sampled from a node that stays up
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append(len(running(c.cli(n4, "ps", "web", timeout=10))))
                except Exception:  # a node changing hands mid-call: the next sample counts
                    pass
                stop.wait(0.3)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        try:
            leader = c.leader()
            order = [n for n in c.nodes[:3] if n is not leader] + [leader]
            for n in order:
                via = n4
                c.cli(via, "node", "drain", n.name, json=False)
                wait_until(lambda: not [t for t in running(c.ps(via, "web")) if t["node"] == n.name] and
                           len(running(c.ps(via, "web"))) == 3, 40, "web's replicas to leave drained %s" % n.name)
                c.stop(n)
                n.bin = BIN
                c.using(BIN, c.restart, n)
                wait_until(lambda: version_of(c, n) == new_version and
                           c.status(n)["applied_index"] >= c.status(via)["commit_index"] - 2, 30,
                           "%s back on the new build and caught up" % n.name)
                check(not c.status(n).get("halted"), "%s stopped applying: %r" % (n.name, c.status(n).get("halted")))
                c.cli(via, "node", "activate", n.name, json=False)
        finally:
            stop.set()
            th.join(15)
        print("upgrade: %d samples, min %d; order %s" % (len(samples), min(samples), [n.name for n in order]), flush=True)
        check(samples and min(samples) >= 2, "replicas running during the upgrade dipped to %d (samples %r)" %
              (min(samples) if samples else -1, samples[:60]))

        # all on the new build: one state everywhere, the old cluster's
        for n in c.nodes:
            check(version_of(c, n) == new_version, "%s runs %s" % (n.name, version_of(c, n)))
        c.converged(timeout=20)
        out = c.deploy(0, spec).stdout
        check("web" in out and "unchanged" in out, "a redeploy of the same file after the upgrade: %r" % out)
        c.cli(0, "scale", "web=4", json=False)
        wait_until(lambda: len(running(c.ps(0, "web"))) == 4, 40, "4 replicas after the upgrade")
        c.converged(timeout=20)

        # the new leader refuses a joiner of the old release, saying why
        p = c.using(old, c.run, "join", c.nodes[0].addr, "--listen", "127.0.0.1:%d" % free_port(),
                    "--data-dir", os.path.join(c.tmp, "oldjoiner"), "--name", "oldjoiner", env=c.token_env())
        check(p.returncode != 0 and "at least as new" in p.stderr, "an old joiner: rc %d %r" % (p.returncode, p.stderr))
        check("oldjoiner" not in [x["name"] for x in c.node_list(0)], "the refused joiner is listed")
