"""Issue 4 (self-healing): real daemons, each its own machine (lab.py), running real
containers through runc.
A node killed with -9 has its replicas rescheduled and, back, keeps none of its old
containers and gets its share again by rebalancing; a leader killed mid-rollout leaves a rollout that the next leader completes; a
version failing its health check is rolled back while a polling client always gets an
answer; a hanging exec check is timed out without leaving its process in the container;
drain and activate; force-new-cluster after the other voters were all killed. Every cluster
is torn down by pid + `orch debug cleanup` and checked for leaks (workload.WorkCluster)."""
import os
import time

from harness import check, wait_until
from healing import Poller, container_cmdlines, container_of, inspect, on_node, spec, wait_placed
from lab import LabCluster
from workload import WorkCluster, live, per_node, runc_ids, running, wait_gone, wait_running

FT = 2.0  # --failure-timeout of every cluster here, seconds
SCHED = 6.0  # allowance for marking the node down, scheduling and starting the containers

TIMEOUTS = {"test_node_kill_rescheduled_and_return_converges": 120, "test_leader_kill_mid_rollout_completes": 150,
            "test_failing_version_rolled_back_while_available": 150, "test_hanging_exec_check_times_out": 90,
            "test_drain_and_activate": 120, "test_force_new_cluster_after_losing_quorum": 120}


def cluster(n=3):
    return LabCluster(n, kind=WorkCluster, failure_timeout="%ds" % FT)


def deploy(c, node, text, name="app.yml"):
    return c.deploy(node, c.write(name, text))


def test_node_kill_rescheduled_and_return_converges():
    with cluster() as c:
        c.load_demo()
        deploy(c, 0, spec(6, update="monitor: 1s"))
        ts = wait_running(c, "web", 6)
        check(len(on_node(ts, "n3")) == 2, "n3 should run 2 of 6 tasks: %r" % per_node(ts))
        c.kill9("n3")
        t0 = time.time()
        ts = wait_placed(c, 0, "web", 6, avoid=("n3",), timeout=FT + SCHED)
        took = time.time() - t0
        check(per_node(ts) == {"n1": 3, "n2": 3}, "after n3 died: %r" % per_node(ts))
        states = {x["name"]: x["state"] for x in c.node_list(0)}
        check(states.get("n3") == "down", "n3 not marked down: %r" % states)
        print("replicas running again %.2fs after kill -9 of n3" % took)
        old = runc_ids(c.node("n3").dir)
        check(len(old) == 2, "the dead node's containers should outlive it: %r" % old)

        c.restart("n3")
        wait_until(lambda: {x["name"]: x["state"] for x in c.node_list(0)}.get("n3") == "ready", 15, "n3 ready again")
        wait_until(lambda: not runc_ids(c.node("n3").dir), 20, "n3's replaced containers %r to be stopped" % old)
        # converged: n3 gets its share back through rebalancing (orchestrator/rebalance.h), one
        # start-first move at a time: never fewer than 6 running, never more than one extra
        def balanced():
            alive = live(c.ps(0, "web", all_tasks=True))
            check(len(running(alive)) >= 6 and len(alive) <= 7,
                  "after n3 returned: %r" % [(t["id"], t["node"], t["state"]) for t in alive])
            return len(alive) == 6 and per_node(running(alive)) == {"n1": 2, "n2": 2, "n3": 2}
        back = time.time()
        wait_until(balanced, 40, "web back to 2 tasks per node after n3 returned", interval=0.3)
        print("figure: n3 runs its 2 of 6 tasks again %.1f s after it was ready (2 moves, monitor 1s)" % (
            time.time() - back))
        # and it stays so
        deadline = time.time() + 3
        while time.time() < deadline:
            alive = live(c.ps(0, "web", all_tasks=True))
            check(len(alive) == 6 and per_node(running(alive)) == {"n1": 2, "n2": 2, "n3": 2},
                  "after the rebalancing: %r" % [(t["id"], t["node"], t["state"]) for t in alive])
            time.sleep(0.3)
        check(sorted(t["slot"] for t in running(c.ps(0, "web"))) == list(range(1, 7)), "slots not 1..6 once each")


def test_leader_kill_mid_rollout_completes():
    with cluster() as c:
        c.load_demo()
        leader = c.leader()
        upd = "parallelism: 1, monitor: 1s, failure_action: pause"
        deploy(c, leader, spec(6, env="1", update=upd))
        wait_running(c, "web", 6, node=leader)
        g1 = inspect(c, leader)["generation"]
        deploy(c, leader, spec(6, env="2", update=upd), "v2.yml")
        g2 = inspect(c, leader)["generation"]
        check(g2 > g1, "v2 did not make a new generation (%s -> %s)" % (g1, g2))

        def midway():
            r = running(c.ps(leader, "web"))
            new = [t for t in r if t["generation"] == g2]
            return 1 <= len(new) <= 3 and len(r) - len(new) >= 2
        wait_until(midway, 40, "the rollout to be under way (1-3 of 6 tasks updated)", interval=0.1)
        c.kill9(leader)
        rest = [n for n in c.nodes if n is not leader]
        new_leader = c.leader(rest, timeout=15)
        p = c.cli(new_leader, "rollout", "status", "web", "--wait", json=False, check=False, timeout=120)
        check(p.returncode == 0, "rollout under the new leader ended %d: %s" % (p.returncode, (p.stdout + p.stderr).strip()))
        ts = wait_placed(c, new_leader, "web", 6, avoid=(leader.name,), generation=g2, timeout=30)
        check(sorted(t["slot"] for t in ts) == list(range(1, 7)), "slots after the rollout: %r" % [t["slot"] for t in ts])
        v = inspect(c, new_leader)
        check(v["update_state"] == "completed" and v["generation"] == g2, "service after the rollout: %s %s" %
              (v["update_state"], v["generation"]))


def test_failing_version_rolled_back_while_available():
    with cluster() as c:
        c.load_demo()
        upd = "parallelism: 1, monitor: 2s, failure_action: rollback"
        deploy(c, 0, spec(4, env="1", health='["CMD", "true"]', update=upd))
        wait_until(lambda: [t for t in running(c.ps(0, "web")) if t["health"] == "healthy"].__len__() == 4, 30,
                   "4 healthy tasks of v1")
        g1 = inspect(c, 0)["generation"]
        with Poller(c, 0) as poll:
            time.sleep(1)
            deploy(c, 0, spec(4, env="2", health='["CMD-SHELL", "exit 1"]', update=upd), "v2.yml")
            g2 = inspect(c, 0)["generation"]
            check(g2 > g1, "v2 did not make a new generation")
            wait_until(lambda: inspect(c, 0)["update_state"] == "rolled_back", 90, "automatic rollback of v2",
                       interval=0.2)
            ts = wait_until(lambda: [r for r in [running(c.ps(0, "web"))] if len(r) == 4 and len(live(c.ps(0, "web", all_tasks=True))) == 4
                                     and all(t["health"] == "healthy" and t["generation"] != g2 for t in r)],
                            30, "4 healthy tasks of the previous spec after the rollback")[0]
            time.sleep(1)
        v = inspect(c, 0)
        print("rollback: %s; poller rounds %d, failures %d, hosts answering %d" %
              (v.get("update_msg"), poll.rounds, len(poll.failures), len(poll.answers)))
        check(poll.rounds >= 30, "the poller ran only %d rounds" % poll.rounds)
        check(not poll.failures, "the service was unavailable %d times, first: %r" % (len(poll.failures), poll.failures[:3]))
        check(all(t["generation"] != g2 for t in ts), "tasks of the failed generation remain")


def test_hanging_exec_check_times_out():
    with cluster(1) as c:
        c.load_demo()
        text = spec(1).replace("    deploy:\n", "    healthcheck:\n      test: [\"CMD\", \"sleep\", \"60\"]\n"
                               "      interval: 1s\n      timeout: 1s\n      retries: 3\n    deploy:\n")
        deploy(c, 0, text)
        t = wait_running(c, "web", 1)[0]
        cid = container_of(c, 0, t)
        most, samples, seen = 0, 0, 0
        deadline = time.time() + 4.5
        while time.time() < deadline:
            if t["id"] not in [x["id"] for x in running(c.ps(0, "web"))]:
                break
            try:
                cmds = container_cmdlines(c.node(0).dir, cid)
            except AssertionError:
                break  # the container was stopped meanwhile
            n = sum(1 for x in cmds if x == "sleep 60")
            most, samples, seen = max(most, n), samples + 1, seen + (n > 0)
            time.sleep(0.2)
        check(samples >= 8 and seen >= 1, "did not watch the checks run (%d samples, %d saw a check)" % (samples, seen))
        check(most <= 1, "timed-out checks linger in the container: %d 'sleep 60' at once" % most)

        def failed():
            x = [x for x in c.ps(0, "web", all_tasks=True) if x["id"] == t["id"]]
            return x and x[0]["state"] == "failed" and x[0]
        f = wait_until(failed, 20, "task %s to fail its hanging check" % t["id"])
        check("unhealthy" in f["err"], "task failed with %r, not unhealthy" % f["err"])
        check("time" in (f["err"] + f["check_output"]).lower(), "no timeout in %r / %r" % (f["err"], f["check_output"]))
        wait_until(lambda: cid not in runc_ids(c.node(0).dir), 15, "container %s of the failed task removed" % cid)
        # and no "sleep 60" left anywhere under this node's cgroups
        nid = c.node_ids["n1"]
        stray = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ").strip()
                cg = open("/proc/%s/cgroup" % pid).read()
            except OSError:
                continue
            if cmd == b"sleep 60" and ("/orch/%s/" % nid) in cg and ("%s\n" % cid) not in cg:
                stray.append(pid)
        check(not stray, "check processes outlived their container: pids %s" % stray)


def test_drain_and_activate():
    with cluster() as c:
        c.load_demo()
        deploy(c, 0, spec(6))
        wait_running(c, "web", 6)
        c.cli(0, "node", "drain", "n2", json=False)
        ts = wait_placed(c, 0, "web", 6, avoid=("n2",), timeout=40)
        check(per_node(ts) == {"n1": 3, "n3": 3}, "after draining n2: %r" % per_node(ts))
        wait_until(lambda: not runc_ids(c.node("n2").dir), 15, "n2's containers to be gone")
        avail = {x["name"]: x["availability"] for x in c.node_list(0)}
        check(avail.get("n2") == "drain", "n2 availability %r" % avail)
        # a drained node takes no new work
        c.cli(0, "scale", "web=7", json=False)
        ts = wait_placed(c, 0, "web", 7, avoid=("n2",), timeout=30)
        c.cli(0, "node", "activate", "n2", json=False)
        avail = {x["name"]: x["availability"] for x in c.node_list(0)}
        check(avail.get("n2") == "active", "n2 availability after activate %r" % avail)
        c.cli(0, "scale", "web=9", json=False)
        ts = wait_running(c, "web", 9)
        check(len(on_node(ts, "n2")) >= 2, "new tasks did not land on the activated n2: %r" % per_node(ts))
        check(len(runc_ids(c.node("n2").dir)) == len(on_node(ts, "n2")), "n2 runc containers vs tasks")


def test_force_new_cluster_after_losing_quorum():
    with cluster() as c:
        c.load_demo()
        deploy(c, 0, spec(3))
        wait_running(c, "web", 3)
        n1 = c.node("n1")
        for n in ("n2", "n3"):
            c.kill9(n)
        # without a quorum nothing can be written
        p = c.cli(n1, "scale", "web=4", json=False, check=False, timeout=60)
        check(p.returncode != 0, "a write succeeded without a quorum: %r" % p.stdout)
        c.kill9(n1)
        wait_gone(n1.pid)
        p = c.run("init", "--data-dir", n1.dir, "--force-new-cluster", "--detach")
        check(p.returncode == 0, "force-new-cluster exited %d: %s" % (p.returncode, (p.stderr or p.stdout).strip()))
        c._record(n1)
        st = wait_until(lambda: (lambda s: s["raft_state"] == "leader" and s)(c.status(n1)), 15, "n1 to lead alone")
        check(st["node_id"] == c.node_ids["n1"], "n1 changed identity")
        roles = c.roles(n1)
        check(roles.get("n1", "").startswith("voter") and not any(r.startswith("voter") for k, r in roles.items() if k != "n1"),
              "voters after recovery: %r" % roles)
        check([s["name"] for s in c.services(n1)] == ["web"], "services after recovery: %r" % c.services(n1))
        c.cli(n1, "scale", "web=4", json=False)
        ts = wait_placed(c, n1, "web", 4, avoid=("n2", "n3"), timeout=FT + 20)
        check(per_node(ts) == {"n1": 4}, "after recovery: %r" % per_node(ts))
