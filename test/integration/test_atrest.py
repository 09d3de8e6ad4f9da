"""Issue 11 (secrets at rest): a service's environment is sealed under the cluster data key
in the raft log and snapshots (secret/envseal.h): no value under any node's data dir, while
the task's process has it and `orch inspect` shows it; the same file again is unchanged, a
changed value rolls the service. Autolock (node/autolock.h): a restarted node stays locked
(no raft port, no containers started, status says so) until `orch unlock` gets the right
key from standard input; rotation re-seals every node's file; the key is never on a
command line, in a log or on disk."""
import glob
import os
import re
import socket
import subprocess
import uuid

from harness import BIN, check, wait_until
from test_secrets import assert_nowhere_on_disk
from workload import DEMO, WorkCluster, running, runc_ids

TIMEOUTS = {"test_env_sealed_at_rest": 60, "test_autolock_restart_stays_locked": 90}

STACK = """name: app
services:
  app:
    image: %s
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    environment:
      MARK: %s
      PLAIN: visible
    healthcheck:  # an exec in the task sees the environment too (runc reads config.json again)
      test: ["CMD-SHELL", 'test "$$PLAIN" = visible']
      interval: 1s
      timeout: 5s
"""


def procs_with(value):
    """PIDs whose environment holds value (the task's process, seen from the host)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if value.encode() in env.split(b"\0"):
            found.append(int(d))
    return found


def test_env_sealed_at_rest():
    v1 = "env-" + uuid.uuid4().hex
    v2 = "env-" + uuid.uuid4().hex
    # snapshots every few entries, so the snapshots are searched as well as the log
    with WorkCluster(2, env={"ORCH_SNAPSHOT_THRESHOLD": "16", "ORCH_SNAPSHOT_TRAILING": "8"}) as c:
        c.load_demo()
        spec = c.write("stack.yml", STACK % (DEMO, v1))
        c.deploy(0, spec)
        wait_until(lambda: [t for t in running(c.ps(0, "app")) if t["health"] == "healthy"], 40, "app running and healthy")
        # the runtime's config.json holds the opened environment: on the task's tmpfs only
        cfgs = [os.path.join(d, "config.json") for n in c.nodes for d in glob.glob(os.path.join(n.dir, "tasks", "*", "bundle"))]
        check(cfgs and all(os.path.islink(p) and "/secrets/" in os.readlink(p) for p in cfgs), "bundle configs: %r" % cfgs)
        pids = wait_until(lambda: procs_with("MARK=" + v1), 10, "a process with the service's environment")
        check(len(pids) == 1, "processes with MARK: %r" % pids)
        # orch inspect and services -o json show it opened, from any node
        for i in (0, 1):
            ins = c.cli(i, "inspect", "app")
            check(ins["spec"]["environment"] == {"MARK": v1, "PLAIN": "visible"}, "inspect on n%d: %r" % (i + 1, ins["spec"]["environment"]))
        svcs = c.cli(1, "services")
        check(svcs[0]["spec"]["environment"]["MARK"] == v1, "services -o json: %r" % svcs[0]["spec"])
        gen = c.cli(0, "inspect", "app")["generation"]
        # the same file again: unchanged (the sealed form is fixed), in the plan too
        out = c.cli(1, "deploy", "-f", spec, "--dry-run", json=False).stdout
        check(re.search(r"^app\s+unchanged", out, re.M), "dry run of the same file: %r" % out)
        out = c.deploy(0, spec).stdout
        check(re.search(r"^app\s+unchanged", out, re.M), "same deploy: %r" % out)
        check(c.cli(0, "inspect", "app")["generation"] == gen, "an unchanged deploy made a new generation")
        # a new value: a new generation, the task replaced, the new process has it
        c.write("stack.yml", STACK % (DEMO, v2))
        out = c.cli(0, "deploy", "-f", spec, "--dry-run", json=False).stdout
        check(re.search(r"^app\s+update", out, re.M), "dry run of a changed value: %r" % out)
        out = c.deploy(0, spec).stdout
        check(re.search(r"^app\s+updated", out, re.M), "changed deploy: %r" % out)
        wait_until(lambda: procs_with("MARK=" + v2) and not procs_with("MARK=" + v1), 40, "the service rolled to the new value")
        check(c.cli(0, "inspect", "app")["generation"] == gen + 1, "no new generation after the new value")
        ins = c.cli(0, "inspect", "app")
        check(ins["previous_spec"]["environment"]["MARK"] == v1, "previous spec: %r" % ins["previous_spec"])
        c.converged()
        for n in c.nodes:
            snaps = [f for d, _, fs in os.walk(n.dir) for f in fs if f.startswith("snapshot-")]
            check(snaps, "%s: no snapshot written (ORCH_SNAPSHOT_THRESHOLD)" % n.name)
            for v in (v1, v2):
                check(v not in n.log_text(), "value in the log of %s" % n.name)
        assert_nowhere_on_disk(c, [v1, v2])
        c.cli(0, "rm", "app", json=False)


GLOBAL = """name: g
services:
  g:
    image: %s
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      mode: global
    environment:
      MARK: %s
"""


def cmdlines_with(text):
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if text.encode() in f.read():
                    found.append(int(d))
        except OSError:
            continue
    return found


def unlock(node, key):
    return subprocess.run([BIN, "-D", node.dir, "unlock"], input=key + "\n", capture_output=True, text=True, timeout=30)


def port_open(node):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((node.ip, node.port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_autolock_restart_stays_locked():
    mark = "env-" + uuid.uuid4().hex
    with WorkCluster(0, failure_timeout="1s") as c:
        n1 = c.init(extra=("--autolock",))
        key = c.cli(0, "unlock-key", "-q", json=False).stdout.strip()
        check(key.startswith("ORCHKEY-1-") and len(key) == 74, "unlock-key: %r" % key)
        n2 = c.join()
        c.wait_members(c.nodes)
        c.node_ids[n2.name] = c.status(n2)["node_id"]
        for n in c.nodes:  # the joiner's file is sealed from the start, like the first node's
            with open(os.path.join(n.dir, "datakey")) as f:
                check(f.read().startswith("locked1 "), "%s: data key file not sealed" % n.name)
        c.load_demo()
        c.deploy(0, c.write("g.yml", GLOBAL % (DEMO, mark)))
        wait_until(lambda: len(running(c.ps(0, "g"))) == 2, 40, "a task of g on each node")

        c.stop(n2)
        c.restart(n2)
        check(c.status(n2).get("locked") is True, "status of the restarted node: %r" % c.status(n2))
        out = c.cli(n2, "status", json=False).stdout
        check("locked" in out and "orch unlock" in out, "status text: %r" % out)
        p = c.cli(n2, "ps", json=False, check=False)
        check(p.returncode != 0 and "locked" in p.stderr, "ps on a locked node: %r" % p.stderr)
        check(not port_open(n2), "a locked node opened its node port (raft)")
        before = runc_ids(n2.dir)
        # a wrong key is refused and changes nothing
        wrong = unlock(n2, "ORCHKEY-1-" + "0" * 64)
        check(wrong.returncode != 0 and "wrong unlock key" in wrong.stderr, "wrong key: %r %r" % (wrong.stdout, wrong.stderr))
        check(c.status(n2).get("locked") is True and not port_open(n2), "a wrong key unlocked the node")
        check(runc_ids(n2.dir) == before, "a locked node started containers: %r -> %r" % (before, runc_ids(n2.dir)))
        # the leader sees it down meanwhile
        wait_until(lambda: [x for x in c.node_list(n1) if x["name"] == n2.name][0]["state"] == "down", 15, "n2 down while locked")
        # the right key: it starts, rejoins and runs its task again
        ok = unlock(n2, key)
        check(ok.returncode == 0 and "unlocked" in ok.stdout, "unlock: %r %r" % (ok.stdout, ok.stderr))
        wait_until(lambda: [x for x in c.node_list(n1) if x["name"] == n2.name][0]["state"] == "ready", 20, "n2 ready again")
        wait_until(lambda: [t for t in running(c.ps(0, "g")) if t["node"] in (n2.name, c.node_ids[n2.name])], 40, "a task on n2 again")
        check(port_open(n2), "the unlocked node does not serve its port")
        check("locked" not in c.status(n2), "status after unlock: %r" % c.status(n2))

        # rotation: every node re-seals under the new key; the old one no longer opens
        def sealed_for():
            ids = set()
            for n in c.nodes:
                with open(os.path.join(n.dir, "datakey")) as f:
                    text = f.read()
                check(text.startswith("locked1 "), "%s: data key file not sealed" % n.name)
                ids.add(text.split()[1])
            return ids
        old_ids = sealed_for()
        check(len(old_ids) == 1 and old_ids != {"0" * 16}, "files sealed for unlock records %r" % old_ids)
        new = c.cli(1, "unlock-key", "--rotate", "-q", json=False).stdout.strip()
        check(new.startswith("ORCHKEY-1-") and new != key, "rotated key: %r" % new)
        wait_until(lambda: c.cli(0, "unlock-key", "-q", json=False).stdout.strip() == new, 10, "the other node showing the new key")

        wait_until(lambda: len(sealed_for()) == 1 and sealed_for() != old_ids, 10, "both nodes re-sealed for the new record")
        c.stop(n1)
        c.restart(n1)
        check(unlock(n1, key).returncode != 0, "the old key opened n1 after a rotation")
        check(unlock(n1, new).returncode == 0, "the new key did not open n1")
        c.wait_members(c.nodes)
        # autolock off: the files in clear; a restart is not locked
        out = c.cli(0, "cluster", "update", "--autolock=false", json=False).stdout
        check("autolock off" in out, "autolock off: %r" % out)
        wait_until(lambda: all(not open(os.path.join(n.dir, "datakey")).read().startswith("locked1") for n in c.nodes),
                   10, "files in clear after autolock off")

        for k in (key, new):
            check(not cmdlines_with(k), "the unlock key in a command line")
            for n in c.nodes:
                check(k not in n.log_text(), "the unlock key in the log of %s" % n.name)
        assert_nowhere_on_disk(c, [key, new, mark])
        c.cli(0, "rm", "g", json=False)
