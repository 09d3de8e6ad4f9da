"""Issue 10: `orch rm` of a service whose tasks cannot start leaves nothing behind: no task
in `orch ps`, no runc container, no task cgroup (once a task stayed `assigned` with
desired `shutdown` for minutes)."""
import os
import time

from harness import check, wait_until
from workload import DEMO, WorkCluster, node_cgroups, runc_ids

TIMEOUTS = {"test_rm_of_service_failing_to_start": 90}

BROKEN = """services:
  broken:
    image: %s
    command: ["/no/such/program"]
    deploy:
      replicas: 4
      restart_policy:
        delay: 200ms
"""


def task_cgroups(c, node):
    out = []
    for d in node_cgroups(c.node_ids[node.name]):
        if os.path.isdir(d):
            out += [os.path.join(d, x) for x in os.listdir(d) if os.path.isdir(os.path.join(d, x))]
    return out


def test_rm_of_service_failing_to_start():
    with WorkCluster(3) as c:
        c.load_demo()
        spec = c.write("broken.yml", BROKEN % DEMO)
        # removal at several points of the tasks' lives: before any was placed, while
        # they are being assigned and prepared, and once they have failed and restart
        for round_, delay in enumerate((0, 0.05, 0.2, 0.5, 1.5)):
            c.deploy(0, spec)
            time.sleep(delay)
            c.cli(0, "rm", "broken", json=False)

            def gone():
                left = [t for t in c.ps(0) if t["service"] == "broken"]
                return True if not left else None
            try:
                wait_until(gone, 5, "round %d (rm after %.2fs): no task of broken in orch ps" % (round_, delay),
                           interval=0.1)
            except Exception:
                left = [(t["id"], t["node"], t["desired"], t["state"], t["err"]) for t in c.ps(0) if t["service"] == "broken"]
                raise AssertionError("round %d (rm after %.2fs): tasks left: %r" % (round_, delay, left))
            check(not any(s["name"] == "broken" for s in c.services()), "broken still listed by orch services")

            def clean():
                for n in c.nodes:
                    if runc_ids(n.dir) or task_cgroups(c, n):
                        return None
                return True
            try:
                wait_until(clean, 5, "round %d: no runc container or task cgroup left" % round_, interval=0.1)
            except Exception:
                raise AssertionError("round %d: left: %r" % (round_, [(n.name, runc_ids(n.dir), task_cgroups(c, n))
                                                                      for n in c.nodes]))
