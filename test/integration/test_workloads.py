"""Issue 3 (workloads): real containers through runc on a 3-node cluster, each node its own
machine (lab.py; single-node tests on 127.0.0.1).
Deploy/spread/HTTP, scale and idempotent redeploy, restart policies, OOM kill, pending
with a reason, spec errors, crafted image tars, image fetch from a peer, logs from all
replicas, agent restart adopting its containers. Every cluster is torn down with
`orch debug cleanup` per node and checked for leaks (workload.WorkCluster)."""
import os
import queue
import re
import socket
import subprocess
import threading
import time

from harness import BIN, Fail, check, wait_until
from lab import LabCluster
from workload import (DEMO, WorkCluster, blob_files, demo_image, docker_archive, http_get, live, net_diag, oci_layout,
                      per_node, runc_ids, running, tar_bytes, wait_running)

TIMEOUTS = {"test_deploy_spread_http": 90, "test_scale_and_redeploy_idempotent": 120, "test_restart_policy": 90,
            "test_agent_restart_adopts_containers": 120}

WEB = """services:
  web:
    image: %s
    ports: ["80"]
    stop_grace_period: 1s
    deploy:
      replicas: %d
"""


def cluster(n):
    return LabCluster(n, kind=WorkCluster)


def web_spec(c, replicas, name="web.yml"):
    return c.write(name, WEB % (DEMO, replicas))


def distinct_hostnames(c, tasks):
    """GETs /cgi-bin/id through every task's endpoint; each must answer its own hostname."""
    names = {}
    for t in tasks:
        ip = c.node(t["node"]).ip  # published on its node's address
        check(re.fullmatch(re.escape(ip) + r":\d+->80/tcp", t["endpoint"]), "task %s endpoint %r" % (t["id"], t["endpoint"]))
        try:
            got = wait_until(lambda: http_get(t["endpoint"]), 10, "HTTP answer from task %s at %s" % (t["id"], t["endpoint"]))
        except Fail as e:
            raise Fail("%s\n%s" % (e, net_diag(c, t)))
        check(got == "web-%d-%d" % (t["slot"], t["id"]), "task %s (slot %s) answered hostname %r" % (t["id"], t["slot"], got))
        names[got] = t["id"]
    check(len(names) == len(tasks), "hostnames not distinct: %r" % names)
    return names


def test_deploy_spread_http():
    with cluster(3) as c:
        c.load_demo()
        out = c.deploy(0, web_spec(c, 6)).stdout
        check(re.search(r"^web\s+created", out, re.M), "deploy did not report web created: %r" % out)
        ts = wait_running(c, "web", 6)
        check(per_node(ts) == {"n1": 2, "n2": 2, "n3": 2}, "6 replicas not spread 2 per node: %r" % per_node(ts))
        distinct_hostnames(c, ts)
        # every node's containers are in its own runc root, one per task
        for n in c.nodes:
            ids = runc_ids(n.dir)
            mine = sorted(str(t["id"]) for t in ts if t["node"] == n.name)
            check(sorted(i.split("-")[-1] for i in ids) == mine, "%s runc list %r, tasks %r" % (n.name, ids, mine))
        svc = [s for s in c.services() if s["name"] == "web"]
        check(len(svc) == 1, "orch services: %r" % c.services())
        # host ports are held by their node, so nothing else on its machine (another
        # cluster's node, say) can hand the same port out again
        def held(port):
            with socket.socket() as s:
                try:
                    s.bind(("0.0.0.0", port))
                    return False
                except OSError:
                    return True
        for t in ts:
            port = int(t["endpoint"].split("->")[0].split(":")[1])
            check(c.lab.in_host(c.node(t["node"]).host, held, port),
                  "host port %d of task %s is not held by its node" % (port, t["id"]))


def test_scale_and_redeploy_idempotent():
    with cluster(3) as c:
        c.load_demo()
        spec = web_spec(c, 6)
        c.deploy(0, spec)
        first = wait_running(c, "web", 6)
        c.cli(0, "scale", "web=9", json=False)
        ts = wait_running(c, "web", 9)
        check(per_node(ts) == {"n1": 3, "n2": 3, "n3": 3}, "9 replicas not 3 per node: %r" % per_node(ts))
        check({t["id"] for t in first} <= {t["id"] for t in ts}, "scale up replaced running tasks")
        distinct_hostnames(c, ts)
        c.cli(0, "scale", "web=3", json=False)
        ts = wait_running(c, "web", 3)
        check(len(live(c.ps())) == 3, "after scale to 3: %r" % [(t["id"], t["state"]) for t in live(c.ps())])
        check(sorted(t["slot"] for t in ts) == [1, 2, 3], "slots kept after scale down: %r" % [t["slot"] for t in ts])
        # scaled-down containers are gone from the runtime too
        total = sum(len(runc_ids(n.dir)) for n in c.nodes)
        check(total == 3, "runc containers after scale to 3: %d" % total)
        # the original file again: only the replica count differs from the cluster, so the
        # service is scaled back to 6 without touching the 3 running tasks
        three = {t["id"]: t["state_at"] for t in ts}
        out = c.deploy(0, spec).stdout
        check(re.search(r"^web\s+scaled", out, re.M), "redeploy after a scale did not say scaled: %r" % out)
        ts = wait_running(c, "web", 6)
        check(all(three.get(t["id"], t["state_at"]) == t["state_at"] for t in ts) and set(three) <= {t["id"] for t in ts},
              "redeploy after a scale restarted tasks: %r -> %r" % (three, [(t["id"], t["state_at"]) for t in ts]))
        # the same file once more: unchanged, and no running task restarted
        before = {t["id"]: t["state_at"] for t in ts}
        dry = c.cli(0, "deploy", "-f", spec, "--dry-run", json=False).stdout
        check(re.search(r"^web\s+unchanged", dry, re.M), "dry-run of the same file: %r" % dry)
        out = c.deploy(1, spec).stdout
        check(re.search(r"^web\s+unchanged", out, re.M), "redeploy of the same file did not say unchanged: %r" % out)
        time.sleep(1.5)  # several reconcile ticks
        after = {t["id"]: t["state_at"] for t in running(c.ps())}
        check(after == before, "redeploy restarted tasks: before %r after %r" % (before, after))
        svc = [s for s in c.services() if s["name"] == "web"][0]
        check(svc["generation"] == 1, "a redeploy of an unchanged spec bumped the generation: %r" % svc["generation"])
        # a file that changes only the replica count scales: no new generation, no restarts
        four = web_spec(c, 4, "web4.yml")
        dry = c.cli(0, "deploy", "-f", four, "--dry-run", json=False).stdout
        check(re.search(r"^web\s+scale\b", dry, re.M), "dry-run of a replicas-only change: %r" % dry)
        out = c.deploy(0, four).stdout
        check(re.search(r"^web\s+scaled", out, re.M), "a replicas-only change did not say scaled: %r" % out)
        ts = wait_running(c, "web", 4)
        kept = {t["id"]: t["state_at"] for t in ts}
        check(all(before.get(i) == at for i, at in kept.items()), "a replicas-only change restarted tasks: %r -> %r" %
              (before, kept))
        svc = [s for s in c.services() if s["name"] == "web"][0]
        check(svc["generation"] == 1, "a replicas-only change bumped the generation: %r" % svc["generation"])


FAIL = """services:
  boom:
    image: %s
    command: ["sh", "-c", "echo boom; exit 3"]
    deploy:
      restart_policy:
        condition: on-failure
        delay: 1s
        max_attempts: 2
  once:
    image: %s
    command: ["sh", "-c", "echo boom; exit 3"]
    deploy:
      restart_policy:
        condition: none
""" % (DEMO, DEMO)


def test_restart_policy():
    with cluster(3) as c:
        c.load_demo()
        c.deploy(0, c.write("fail.yml", FAIL))

        def boom_done():
            ts = c.ps(0, "boom", all_tasks=True)
            if any(t["state"] not in ("failed",) for t in ts) or len(ts) < 3:
                return None
            return ts
        ts = wait_until(boom_done, 30, "boom: 3 failed tasks (first run + max_attempts 2 restarts)", interval=0.2)
        check(sorted(t["restarts"] for t in ts) == [0, 1, 2], "boom restarts counters: %r" % [t["restarts"] for t in ts])
        for t in ts:
            check(t["exit_code"] == 3 and "exit code 3" in t["err"], "boom task %s: exit %r err %r" % (t["id"], t["exit_code"], t["err"]))
        check(len({t["slot"] for t in ts}) == 1, "restarts are new tasks in the same slot: %r" % ts)
        # the delay is honoured: each restart started at least 1 s after the previous failure
        byr = sorted(ts, key=lambda t: t["restarts"])
        for prev, nxt in zip(byr, byr[1:]):
            check(nxt["start_after"] >= prev["state_at"] + 900, "restart %d start_after %d vs failure at %d" %
                  (nxt["restarts"], nxt["start_after"], prev["state_at"]))
            check(nxt["state_at"] >= nxt["start_after"], "restart %d ran before its start_after" % nxt["restarts"])
        # max_attempts reached: no more tasks for a while
        time.sleep(2.5)
        again = c.ps(0, "boom", all_tasks=True)
        check(len(again) == 3 and not live(again), "boom restarted past max_attempts: %r" %
              [(t["id"], t["state"], t["restarts"]) for t in again])
        # condition none: one failed task, exit code 3 shown, never restarted
        once = c.ps(0, "once", all_tasks=True)
        check(len(once) == 1 and once[0]["state"] == "failed" and once[0]["exit_code"] == 3 and once[0]["restarts"] == 0,
              "once (condition none): %r" % once)
        table = c.cli(0, "ps", "-a", "once", json=False).stdout
        check(re.search(r"failed \(3\)", table) and "exit code 3" in table, "ps table does not show exit code 3: %r" % table)


HOG = """services:
  hog:
    image: %s
    command: ["sh", "-c", "x=$(head -c 64m /dev/zero | tr '\\\\0' x); echo survived; sleep 100"]
    deploy:
      resources:
        limits:
          memory: 16M
      restart_policy:
        condition: none
  big:
    image: %s
    deploy:
      resources:
        reservations:
          memory: 10000g
""" % (DEMO, DEMO)


def test_oom_and_unschedulable():
    with cluster(3) as c:
        c.load_demo()
        c.deploy(0, c.write("hog.yml", HOG))

        def hog_failed():
            ts = c.ps(0, "hog", all_tasks=True)
            return ts if ts and ts[0]["state"] == "failed" else None
        t = wait_until(hog_failed, 30, "the hog task to fail", interval=0.2)[0]
        check(t["oom"] is True, "oom flag not set: %r" % t)
        check("OOM-killed" in t["err"], "err does not say OOM-killed: %r" % t["err"])
        check(t["exit_code"] == 137, "exit code of an OOM kill: %r" % t["exit_code"])
        table = c.cli(0, "ps", "-a", "hog", json=False).stdout
        check("OOM-killed" in table, "ps table does not say OOM-killed: %r" % table)
        logs = c.cli(0, "logs", "hog", json=False).stdout
        check("survived" not in logs, "the hog survived its limit: %r" % logs)
        # an unschedulable reservation stays pending, with its reason
        big = c.ps(0, "big")
        check(len(big) == 1, "big: %r" % big)
        check(big[0]["state"] == "pending" and big[0]["node"] in ("", "-"), "big: %r" % big)
        check(re.search(r"no node with .*free: 3 nodes checked", big[0]["err"]), "pending reason: %r" % big[0]["err"])
        time.sleep(1)
        big = c.ps(0, "big")
        check(len(big) == 1 and big[0]["state"] == "pending", "big left pending: %r" % big)
        table = c.cli(0, "ps", "big", json=False).stdout
        check("3 nodes checked" in table, "ps table does not show the reason: %r" % table)


def test_spec_errors_change_nothing():
    with cluster(3) as c:
        c.load_demo()
        c.deploy(0, web_spec(c, 1))
        wait_running(c, "web", 1)
        before = c.services()
        ids = [t["id"] for t in c.ps(0, all_tasks=True)]
        typo = c.write("typo.yml", "services:\n  web:\n    image: %s\n    deploy:\n      replicas: 3\n"
                                   "  api:\n    image: %s\n    deploy:\n      replcas: 2\n" % (DEMO, DEMO))
        p = c.deploy(0, typo, check_rc=False)
        check(p.returncode != 0, "a typo'd key was accepted: %r" % p.stdout)
        check(re.search(r"typo\.yml:9:7\b", p.stderr), "typo error does not name typo.yml:9:7: %r" % p.stderr)
        check("replcas" in p.stderr, "typo error does not name the key: %r" % p.stderr)
        wrong = c.write("wrong.yml", "services:\n  web:\n    image: %s\n    deploy:\n      replicas: three\n" % DEMO)
        p = c.deploy(0, wrong, check_rc=False)
        check(p.returncode != 0, "a wrong type was accepted: %r" % p.stdout)
        check(re.search(r"wrong\.yml:5:17\b", p.stderr), "type error does not name wrong.yml:5:17: %r" % p.stderr)
        check("replicas" in p.stderr, "type error does not name the key: %r" % p.stderr)
        p = c.cli(0, "deploy", "-f", typo, "--dry-run", json=False, check=False)
        check(p.returncode != 0, "dry-run accepted the typo")
        c.converged()
        for n in c.nodes:
            check(c.services(n) == before, "services changed on %s: %r vs %r" % (n.name, c.services(n), before))
        check([t["id"] for t in c.ps(0, all_tasks=True)] == ids, "tasks changed after rejected deploys")


def test_crafted_image_tars_rejected():
    with cluster(3) as c:
        base = [("bin/", "dir", None), ("bin/hello", "file", "hello\n"), ("etc/", "dir", None)]
        # the builders make loadable images: a benign one loads in both formats
        ok_docker = docker_archive(os.path.join(c.tmp, "ok-docker.tar"), "ok:docker", [tar_bytes(base)])
        ok_oci = oci_layout(os.path.join(c.tmp, "ok-oci.tar"), "ok:oci", [tar_bytes(base)])
        c.cli(0, "image", "load", ok_docker, json=False)
        c.cli(0, "image", "load", ok_oci, json=False)
        before = c.images()
        check(sorted(i["name"] for i in before) == ["ok:docker", "ok:oci"], "images: %r" % before)
        evil = {
            "dotdot-docker": docker_archive(os.path.join(c.tmp, "dd.tar"), "evil:dd",
                                            [tar_bytes(base + [("../escaped", "file", "x")])]),
            "dotdot-oci": oci_layout(os.path.join(c.tmp, "dd-oci.tar"), "evil:ddoci",
                                     [tar_bytes(base + [("etc/../../escaped", "file", "x")])]),
            "symlink-docker": docker_archive(os.path.join(c.tmp, "sl.tar"), "evil:sl",
                                             [tar_bytes(base + [("lnk", "symlink", "/tmp"), ("lnk/escaped", "file", "x")])]),
            "symlink-oci": oci_layout(os.path.join(c.tmp, "sl-oci.tar"), "evil:sloci",
                                      [tar_bytes(base + [("etc/up", "symlink", "../../.."), ("etc/up/escaped", "file", "x")])]),
        }
        for what, path in evil.items():
            p = c.cli(0, "image", "load", path, json=False, check=False)
            check(p.returncode != 0, "%s: crafted image accepted: %r" % (what, p.stdout))
            want = "symlink" if what.startswith("symlink") else '".."'
            check(want in p.stderr and "rejected" in p.stderr, "%s: error %r" % (what, p.stderr))
        check(not os.path.exists("/tmp/escaped") and not os.path.exists(os.path.join(c.nodes[0].dir, "escaped")),
              "a crafted entry escaped")
        c.converged()
        for n in c.nodes:
            check(c.images(n) == before, "images changed on %s: %r" % (n.name, c.images(n)))


def test_image_fetched_from_peer():
    with cluster(3) as c:
        c.load_demo(0)  # n1 only
        im = [i for i in c.images() if i["name"] == DEMO][0]
        n1, n2, n3 = c.nodes
        check(blob_files(n2.dir) == [] and blob_files(n3.dir) == [], "n2/n3 had blobs before any task ran")
        spec = c.write("peer.yml", """services:
  web:
    image: %s
    ports: ["80"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement:
        constraints: ["node.name != n1"]
""" % DEMO)
        c.deploy(0, spec)
        ts = wait_running(c, "web", 2)
        check(sorted(t["node"] for t in ts) == ["n2", "n3"], "placement: %r" % [t["node"] for t in ts])
        distinct_hostnames(c, ts)
        want = sorted(blob_files(n1.dir))
        check(im["digest"].split(":")[1] in want, "n1 does not hold the config blob")
        for n in (n2, n3):
            got = blob_files(n.dir)
            check(got == want, "%s blobs %r, n1 has %r" % (n.name, got, want))
            check("fetched blob" in n.log_text(), "%s log does not mention fetching" % n.name)


LOGGER = """services:
  talk:
    image: %s
    command: ["sh", "-c", "echo hello-from-$(hostname); exec sleep 1000"]
    stop_grace_period: 1s
    deploy:
      replicas: 4
""" % DEMO


def test_logs_from_all_replicas():
    with cluster(3) as c:
        c.load_demo()
        c.deploy(0, c.write("talk.yml", LOGGER))
        ts = wait_running(c, "talk", 4)
        check(len(per_node(ts)) == 3, "4 replicas not on all 3 nodes: %r" % per_node(ts))

        def all_lines():
            out = c.cli(2, "logs", "talk", json=False).stdout
            return out if all(("hello-from-talk-%d-%d" % (t["slot"], t["id"])) in out for t in ts) else None
        out = wait_until(all_lines, 10, "a line from every replica in orch logs talk")
        for t in ts:
            prefix = "talk.%d.%d | hello-from-talk-%d-%d" % (t["slot"], t["id"], t["slot"], t["id"])
            check(prefix in out.splitlines(), "no line %r in %r" % (prefix, out))
        # --tail and a single task
        one = c.cli(0, "logs", "--tail", "1", str(ts[0]["id"]), json=False).stdout
        check(one.strip().endswith("hello-from-talk-%d-%d" % (ts[0]["slot"], ts[0]["id"])) and len(one.strip().splitlines()) == 1,
              "logs of one task: %r" % one)


TICKER = """services:
  tick:
    image: %s
    command: ["sh", "-c", "i=0; while true; do i=$$((i+1)); echo tick-$$(hostname)-$$i; sleep 0.2; done"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
""" % DEMO


def _line_reader(stream):
    """Lines of a pipe, through a queue (a thread reads, so the test can wait with a deadline)."""
    q = queue.Queue()

    def pump():
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


def test_logs_follow_through_the_node():
    """orch logs -f: the CLI asks only its own node, which reads every replica's output on
    the node that runs it and streams the lines back merged; new lines keep coming, and the
    stream ends by itself once the tasks have stopped."""
    with cluster(3) as c:
        c.load_demo()
        c.deploy(0, c.write("tick.yml", TICKER))
        ts = wait_running(c, "tick", 3)
        check(len(per_node(ts)) == 3, "3 replicas not on 3 nodes: %r" % per_node(ts))
        argv = c.argv(["-D", c.nodes[1].dir, "logs", "-f", "--tail", "1", "tick"])
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=c.env)
        try:
            lines = _line_reader(p.stdout)
            counts = {t["id"]: set() for t in ts}
            pat = re.compile(r"^tick\.(\d+)\.(\d+) \| tick-tick-(\d+)-(\d+)-(\d+)$")
            deadline = time.time() + 20
            while any(len(v) < 4 for v in counts.values()):
                check(time.time() < deadline, "followed lines per task after 20 s: %r" % {k: sorted(v) for k, v in counts.items()})
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.time()))
                except queue.Empty:
                    continue
                if line is None:
                    raise Fail("orch logs -f ended while the tasks run: %s" % p.stderr.read())
                m = pat.match(line)
                check(m and m.group(1) == m.group(3) and m.group(2) == m.group(4) and int(m.group(2)) in counts,
                      "line %r does not belong to its prefix" % line)
                counts[int(m.group(2))].add(int(m.group(5)))
            # once the tasks stop, every node ends its stream and so does the command
            c.cli(0, "scale", "tick=0", json=False)
            rest = []
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline + 20 - time.time()))
                except queue.Empty:
                    raise Fail("orch logs -f still running 20 s after the tasks were scaled to 0")
                if line is None:
                    break
                rest.append(line)
            code, err = p.wait(timeout=10), p.stderr.read()
            check(code == 0 and err == "", "orch logs -f exited %s: %r" % (code, err))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        # a follower that goes away (interrupted) leaves every node serving
        c.deploy(0, c.write("tick.yml", TICKER))
        ts = wait_running(c, "tick", 3)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=c.env)
        lines = _line_reader(p.stdout)
        check(lines.get(timeout=15), "no line from orch logs -f")
        p.kill()
        p.wait()

        seen = []

        def two_each():
            p = c.cli(2, "logs", "--tail", "2", "tick", json=False, check=False)
            out = p.stdout.splitlines()
            n = [sum(l.startswith("tick.%d.%d | " % (t["slot"], t["id"])) for l in out) for t in ts]
            seen[:] = [n, p.returncode, p.stderr[-300:], out[-6:]]
            return out if n == [2, 2, 2] else None
        try:
            wait_until(two_each, 10, "orch logs --tail 2 after a follower left: two lines of each running task")
        except Fail as e:
            raise Fail("%s; last: lines per task %r, rc %r, stderr %r, tail %r" % (e, *seen))
        check(all(n.alive() for n in c.nodes), "a node died: %r" % c.nodes)


def test_image_load_errors_change_nothing():
    """The node ingests the archive the CLI names: a missing file, a file that is no image
    and a truncated archive get a clear error and record nothing; a relative path works."""
    with WorkCluster(1) as c:
        n1 = c.nodes[0]
        img = demo_image(c.tmp_base())
        good = os.path.join(img, "demo-docker.tar")
        junk = c.write("junk.tar", "this is not an image archive\n" * 100)
        cut = os.path.join(c.tmp, "cut.tar")
        with open(good, "rb") as f, open(cut, "wb") as g:
            g.write(f.read()[:len(open(good, "rb").read()) // 2])
        for path, want in ((os.path.join(c.tmp, "nope.tar"), "No such file"), (junk, "image load"),
                           (cut, "image load")):
            p = c.cli(n1, "image", "load", path, json=False, check=False)
            check(p.returncode == 1 and want in p.stderr, "image load %s: exit %d, %r" % (path, p.returncode, p.stderr))
            check(p.stderr.startswith("orch: ") and len(p.stderr.strip().splitlines()) == 1, "unclear error %r" % p.stderr)
        check(c.images(n1) == [], "a refused archive was recorded: %r" % c.images(n1))
        check(all(not f.startswith(".") for f in blob_files(n1.dir)),
              "temporary blob files left: %r" % blob_files(n1.dir))
        # the node needs the path from the CLI's point of view
        p = subprocess.run([BIN, "-D", n1.dir, "image", "load", "demo-docker.tar"], cwd=img, capture_output=True,
                           text=True, timeout=60, env=c.env)
        check(p.returncode == 0 and re.search(r"^demo:latest sha256:\w+ \(.*, 2 layers\): loaded$", p.stdout, re.M),
              "relative image load: %r %r" % (p.stdout, p.stderr))
        again = c.cli(n1, "image", "load", os.path.join(img, "demo-oci.tar"), json=False).stdout
        check("already loaded" in again or "loaded" in again, "OCI load: %r" % again)
        check([i["name"] for i in c.images(n1)] == [DEMO], "images: %r" % c.images(n1))


def test_agent_restart_adopts_containers():
    with cluster(3) as c:
        c.load_demo()
        c.deploy(0, web_spec(c, 6))
        ts = wait_running(c, "web", 6)
        n3 = c.nodes[2]
        before_ids = runc_ids(n3.dir)
        mine = sorted(t["id"] for t in ts if t["node"] == "n3")
        check(len(before_ids) == 2 and len(mine) == 2, "n3 containers %r tasks %r" % (before_ids, mine))
        c.kill9(n3)
        check(runc_ids(n3.dir) == before_ids, "containers died with their agent")
        c.restart(n3)
        c.wait_members(c.nodes)
        time.sleep(2)  # several reconcile ticks and agent reports
        now = wait_running(c, "web", 6)
        check(sorted(t["id"] for t in now) == sorted(t["id"] for t in ts), "tasks changed across the agent restart: %r -> %r" %
              ([t["id"] for t in ts], [t["id"] for t in now]))
        check(runc_ids(n3.dir) == before_ids, "n3 runc list after restart: %r, before %r" % (runc_ids(n3.dir), before_ids))
        distinct_hostnames(c, [t for t in now if t["node"] == "n3"])
        # the adopted containers are still managed: scaling down stops them
        c.cli(0, "scale", "web=0", json=False)
        wait_running(c, "web", 0)
        wait_until(lambda: runc_ids(n3.dir) == [], 15, "n3's adopted containers to be removed")
        check(sum(len(runc_ids(n.dir)) for n in c.nodes) == 0, "containers left after scale to 0")


HOSTNET = """\
services:
  h:
    image: demo:latest
    network_mode: host
    command: ["sh", "-c", "echo port=$$PORT first=$$PORT_0; exec httpd -f -p 127.0.0.1:$$PORT -h /www"]
    stop_grace_period: 1s
    ports: ["80"]
    deploy:
      replicas: 2
"""


def test_host_network_mode_gets_ports_in_env():
    """network_mode: host — the task shares the host's network and gets its allocated
    port in PORT / PORT_0; it listens there itself and that is its endpoint."""
    with WorkCluster(1) as c:
        c.load_demo()
        c.deploy(0, c.write("h.yml", HOSTNET))
        ts = wait_running(c, "h", 2)
        for t in ts:
            ep = t["endpoint"].split("->")[0]
            host, port = ep.rsplit(":", 1)
            body = wait_until(lambda: _try_get(t["endpoint"]), 10, "task %d answering on %s" % (t["id"], ep))
            check(body == "h-%d-%d" % (t["slot"], t["id"]), "endpoint %s answered %r" % (ep, body))
            check(t["ip"] == "", "a host-network task has no address of its own: %r" % t["ip"])
        out = c.cli(0, "logs", "h", json=False).stdout
        for t in ts:
            port = t["endpoint"].split("->")[0].rsplit(":", 1)[1]
            check("port=%s first=%s" % (port, port) in out, "PORT not given to task %d: %r" % (t["id"], out))


def _try_get(endpoint):
    try:
        return http_get(endpoint)
    except Exception:
        return None


def test_crun_runtime_remembered():
    """--runtime crun (with the hybrid-cgroup workaround of src/runtime/runc.h): tasks run under crun, and a
    node resumed without the flag keeps using crun and finds its containers again."""
    import shutil
    import subprocess
    check(shutil.which("crun") is not None, "crun is not installed (vendor/manifest lists it)")
    with WorkCluster(0) as c:
        c.init(extra=("--runtime", "crun"))
        n1 = c.nodes[0]
        c.load_demo()
        c.deploy(0, web_spec(c, 2))
        ts = wait_running(c, "web", 2)
        for t in ts:
            body = http_get(t["endpoint"])
            check(body == "web-%d-%d" % (t["slot"], t["id"]), "task %d answered %r" % (t["id"], body))

        def crun_ids():
            p = subprocess.run(["crun", "--root", os.path.join(n1.dir, "runc"), "list", "-q"], capture_output=True, text=True)
            return sorted(p.stdout.split())
        before = crun_ids()
        check(len(before) == 2, "crun does not list the 2 containers: %r" % before)
        with open(os.path.join(n1.dir, "runtime")) as f:
            check(f.read().strip() == "crun", "the runtime is not remembered in the data dir")
        c.kill9(n1)
        c.restart(n1)  # no --runtime: the remembered one
        wait_until(lambda: "found container" in n1.log_text(), 10, "the resumed node finding its crun containers")
        after = wait_running(c, "web", 2)
        check(sorted(t["id"] for t in after) == sorted(t["id"] for t in ts), "tasks replaced instead of adopted")
        check(crun_ids() == before, "containers changed: %r -> %r" % (before, crun_ids()))


def _demo_with_healthcheck(c, test, tag):
    """The demo docker-archive with a HEALTHCHECK added to its config (digests redone)."""
    import hashlib
    import io
    import json as js
    import tarfile
    from workload import demo_image
    src = os.path.join(demo_image(c.tmp_base()), "demo-docker.tar")
    members = {}
    with tarfile.open(src) as tf:
        for m in tf.getmembers():
            if m.isfile():
                members[os.path.normpath(m.name)] = tf.extractfile(m).read()
    manifest = js.loads(members["manifest.json"])
    cfg = js.loads(members[os.path.normpath(manifest[0]["Config"])])
    cfg["config"]["Healthcheck"] = {"Test": test, "Interval": 1000000000, "Timeout": 2000000000, "Retries": 2}
    raw = js.dumps(cfg).encode()
    name = hashlib.sha256(raw).hexdigest() + ".json"
    del members[os.path.normpath(manifest[0]["Config"])]
    members[name] = raw
    manifest[0]["Config"] = name
    manifest[0]["RepoTags"] = [tag]
    members["manifest.json"] = js.dumps(manifest).encode()
    out = os.path.join(c.tmp_base(), "hc-%s.tar" % hashlib.sha256(tag.encode()).hexdigest()[:8])
    with tarfile.open(out, "w") as tf:
        for n, b in sorted(members.items()):
            ti = tarfile.TarInfo(n)
            ti.size = len(b)
            tf.addfile(ti, io.BytesIO(b))
    return out


def test_image_healthcheck_used_when_service_has_none():
    """An image's HEALTHCHECK is the task's liveness check when the service gives none:
    a passing one makes the task healthy, a failing one gets it restarted."""
    with WorkCluster(1) as c:
        c.cli(0, "image", "load", _demo_with_healthcheck(c, ["CMD-SHELL", "test -f /www/index.html"], "hcok:1"), json=False)
        c.cli(0, "image", "load", _demo_with_healthcheck(c, ["CMD", "false"], "hcbad:1"), json=False)
        c.deploy(0, c.write("hc.yml", """\
services:
  ok:
    image: hcok:1
    stop_grace_period: 1s
  bad:
    image: hcbad:1
    stop_grace_period: 1s
    deploy:
      restart_policy: {condition: any, delay: 1s}
"""))

        def health(svc):
            ts = [t for t in c.cli(0, "ps", "-a", svc) if t["service"] == svc]
            return ts
        wait_until(lambda: any(t["health"] == "healthy" for t in health("ok")), 15, "the ok task healthy by the image's check")
        failed = wait_until(lambda: [t for t in health("bad") if t["state"] == "failed" and "unhealthy" in t["err"]] or None,
                            20, "the bad task failed as unhealthy by the image's check")
        check("exit code 1" in failed[0]["err"] or "failed checks" in failed[0]["err"], "err: %r" % failed[0]["err"])
