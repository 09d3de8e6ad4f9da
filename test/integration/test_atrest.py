"""Issue 11 (secrets at rest): a service's environment is sealed under the cluster data key
in the raft log and snapshots (secret/envseal.h): no value under any node's data dir, while
the task's process has it and `orch inspect` shows it; the same file again is unchanged, a
changed value rolls the service."""
import os
import re
import uuid

from harness import check, wait_until
from test_secrets import assert_nowhere_on_disk
from workload import DEMO, WorkCluster, running

TIMEOUTS = {"test_env_sealed_at_rest": 60}

STACK = """name: app
services:
  app:
    image: %s
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    environment:
      MARK: %s
      PLAIN: visible
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
        wait_until(lambda: running(c.ps(0, "app")), 40, "app running")
        pids = wait_until(lambda: procs_with("MARK=" + v1), 10, "a process with the service's environment")
        check(len(pids) == 1, "processes with MARK: %r" % pids)
        # orch inspect and services -o json show it opened, from any node
        for i in (0, 1):
            ins = c.cli(i, "inspect", "app")
            check(ins["spec"]["environment"] == {"MARK": v1, "PLAIN": "visible"}, "inspect on n%d: %r" % (i + 1, ins["spec"]["environment"]))
        svcs = c.cli(1, "services")
        check(svcs[0]["spec"]["environment"]["MARK"] == v1, "services -o json: %r" % svcs[0]["spec"])
        gen = c.cli(0, "inspect", "app")["generation"]
        # the same file again: unchanged (the sealed form is fixed)
        out = c.deploy(0, spec).stdout
        check(re.search(r"^app\s+unchanged", out, re.M), "same deploy: %r" % out)
        check(c.cli(0, "inspect", "app")["generation"] == gen, "an unchanged deploy made a new generation")
        # a new value: a new generation, the task replaced, the new process has it
        c.write("stack.yml", STACK % (DEMO, v2))
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
