"""Issue 11 (worker-only nodes): a node joined with --worker runs tasks, a secret included
(the leader opens it for the worker: the worker holds no data key), answers orch ps,
nodes, services and secret create on its own socket by asking the leader, holds no
datakey file and no raft entries on disk, and is never made a voter or standby, not even
when a manager is lost and the role manager has nobody else to promote (it reports the
shortage in orch status instead)."""
import hashlib
import os
import time
import uuid

from harness import check, wait_until
from registry import Registry
from test_registry import SVC, demo_variant, login
from workload import DEMO, WorkCluster, running, wait_running

TIMEOUTS = {"test_worker_runs_tasks_and_never_votes": 90, "test_worker_pulls_with_registry_credentials": 90}

STACK = """name: app
secrets:
  db_password:
    external: true
services:
  app:
    image: %s
    command: ["sh", "-c", "echo pw=$(sha256sum </run/secrets/db_password) env=$$GREETING; exec sleep 3600"]
    environment:
      GREETING: sealed-for-workers
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement:
        constraints: ["node.role == worker"]
    secrets:
      - source: db_password
"""


def raft_entries_on_disk(node):
    """The raft files of a node that can hold entries: closed segments and snapshots, and
    open segments with any non-zero byte past their 8-byte format header."""
    d = os.path.join(node.dir, "raft")
    found = []
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        p = os.path.join(d, f)
        if f.startswith("snapshot") or (f[0].isdigit() and "-" in f):
            found.append(f)
        elif f.startswith("open-"):
            with open(p, "rb") as fh:
                if any(fh.read()[8:]):
                    found.append(f)
    return found


def test_worker_runs_tasks_and_never_votes():
    pw = "pw-" + uuid.uuid4().hex
    with WorkCluster(3, failure_timeout="1s") as c:
        w1 = c.join(extra=("--worker",))
        w2 = c.join(extra=("--worker",))
        c.node_ids[w1.name] = c.status(w1)["node_id"]
        c.node_ids[w2.name] = c.status(w2)["node_id"]
        leader = c.leader(c.nodes[:3])

        # the worker's own view: a worker, naming the leader it is linked to
        st = c.status(w1)
        check(st["kind"] == "worker" and st["role"] == "worker", "status on a worker: %r" % st)
        wait_until(lambda: c.status(w1)["leader_addr"] == leader.addr, 10, "the worker to name the leader")
        out = c.cli(w1, "status", json=False).stdout
        check("worker" in out and leader.addr in out, "orch status on a worker: %r" % out)

        # orch nodes, from a manager and from a worker (forwarded): the same kinds and roles
        def kinds(node):
            return {x["name"]: (x["kind"], x["role"]) for x in c.node_list(node)}
        k = wait_until(lambda: (lambda k: k if k[w1.name][1] == "spare" and k[w2.name][1] == "spare" and
                                [n for n in c.nodes[:3] if k[n.name][1] == "voter"] == c.nodes[:3] else None)(kinds(leader)),
                       15, "3 voters and 2 spare workers")
        check(all(k[n.name][0] == "manager" for n in c.nodes[:3]), "kinds: %r" % k)
        check(k[w1.name][0] == "worker" and k[w2.name][0] == "worker", "kinds: %r" % k)
        check(kinds(w2) == k, "orch nodes on a worker: %r vs %r" % (kinds(w2), k))
        table = c.cli(w1, "nodes", json=False).stdout
        check("KIND" in table and "worker" in table and "manager" in table, "orch nodes table: %r" % table)
        check([x["name"] for x in c.node_list(w1) if x["self"]] == [w1.name], "self on a worker: %r" % c.node_list(w1))

        # root on a worker machine may read the cluster, not change it: a secret create and
        # a deploy through a worker's socket are refused by the leader, and change nothing
        c.load_demo()
        for node, argv in ((w1, ["secret", "create", "db_password", c.write("pw", pw)]),
                           (w2, ["deploy", "-f", c.write("plain.yml", "services:\n  x:\n    image: %s\n" % DEMO)])):
            p = c.cli(node, *argv, json=False, check=False)
            check(p.returncode != 0 and "worker's local socket may only read" in p.stderr,
                  "%s on a worker: rc %d, %r" % (argv[0], p.returncode, p.stderr))
        check(c.cli(0, "secret", "ls") == [] and c.services(0) == [], "a refused write from a worker changed the state")
        out = c.cli(0, "secret", "create", "db_password", c.write("pw", pw), json=False).stdout
        check("version 1" in out, "secret create on a manager: %r" % out)
        c.deploy(0, c.write("stack.yml", STACK % DEMO))
        # the environment is sealed in the log; a worker holds no key: the leader opens it
        want = "pw=" + hashlib.sha256(pw.encode()).hexdigest() + " - env=sealed-for-workers"

        def both_read_it():
            ts = running(c.ps(0, "app"))
            if len(ts) != 2:
                return None
            logs = c.cli(0, "logs", "app", json=False).stdout
            return ts if logs.count(want) >= 2 else None
        ts = wait_until(both_read_it, 40, "both replicas running on the workers with their secret")
        check(sorted(t["node"] for t in ts) == sorted([w1.name, w2.name]), "placed on: %r" % [t["node"] for t in ts])
        check(sorted(t["id"] for t in running(c.ps(w1, "app"))) == sorted(t["id"] for t in ts), "orch ps on a worker")
        check([s["name"] for s in c.services(w2)] == ["app"], "orch services on a worker")
        check(c.cli(w1, "inspect", "app")["name"] == "app", "orch inspect on a worker")
        check("demo" in c.cli(w1, "images", json=False).stdout, "orch images on a worker")
        p = c.cli(w1, "image", "prune", json=False, check=False)
        check(p.returncode != 0 and "is a worker" in p.stderr, "image prune on a worker: %r" % p.stderr)
        # logs need an operator: root on a worker reads only its machine's files
        p = c.cli(w2, "logs", "app", json=False, check=False)
        check(p.returncode != 0 and "may only read" in p.stderr, "orch logs on a worker: %r" % p.stderr)
        out = c.cli(0, "logs", str(ts[0]["id"]), json=False).stdout
        check(out.count(want) == 1, "orch logs TASK of a worker's task: %r" % out)

        # nothing of the log, the state or the key on a worker's disk
        for w in (w1, w2):
            check(not os.path.exists(os.path.join(w.dir, "datakey")), "%s holds a data key" % w.name)
            check(os.path.exists(os.path.join(w.dir, "worker")), "%s has no worker mark" % w.name)
            check(raft_entries_on_disk(w) == [], "%s holds raft entries: %r" % (w.name, raft_entries_on_disk(w)))
            log = w.log_text()
            check(pw not in log, "the value in %s's log" % w.name)
        check(os.path.exists(os.path.join(c.nodes[1].dir, "datakey")), "a manager has no data key")

        # a manager is lost: no manager-capable node is left to promote, so the voter set
        # stays short (reported) and the workers stay spares
        victim = next(n for n in c.nodes[:3] if n is not leader)
        c.kill9(victim)

        def short():
            s = c.status(leader)
            return s if s.get("voter_shortage") == 1 else None
        s = wait_until(short, 15, "the leader to report one voter missing")
        check(s["voters_wanted"] == 3, "status: %r" % s)
        out = c.cli(leader, "status", json=False).stdout
        check("missing" in out, "orch status does not report the shortage: %r" % out)
        deadline = time.time() + 4  # a few role-manager rounds past the failure timeout
        while time.time() < deadline:
            k = kinds(leader)
            check(k[w1.name][1] == "spare" and k[w2.name][1] == "spare", "a worker got a raft role: %r" % k)
            time.sleep(0.3)
        check("worker" in c.status(w1)["role"], "the worker's own view changed: %r" % c.status(w1))
        for w in (w1, w2):
            check(raft_entries_on_disk(w) == [], "%s holds raft entries after the loss: %r" % (w.name, raft_entries_on_disk(w)))
        check(len(running(c.ps(w1, "app"))) == 2, "the workers' tasks stopped")

        # restarted, a worker finds the leader again from the voters it kept (its raft
        # and store name nobody), and it can leave
        with open(os.path.join(w1.dir, "worker")) as f:
            kept = f.read()
        check(leader.addr in kept, "the worker did not keep the voters: %r" % kept)
        c.stop(w1)
        c.restart(w1)
        wait_until(lambda: c.status(w1)["leader_addr"] == leader.addr, 15, "the restarted worker to find the leader")
        check(c.status(w1)["kind"] == "worker", "the restarted node is no longer a worker")
        wait_until(lambda: len(running(c.ps(w1, "app"))) == 2, 20, "the tasks running after the worker's restart")
        check(raft_entries_on_disk(w1) == [] and not os.path.exists(os.path.join(w1.dir, "datakey")), "after restart")
        # a worker that never ran a task leaves (one that did keeps its node cgroup after
        # leave, worker or not: debug cleanup needs the identity leave removes)
        w3 = c.join(extra=("--worker",))
        wait_until(lambda: w3.name in kinds(leader), 10, "the third worker listed")
        c.cli(w3, "leave", json=False)
        wait_until(lambda: w3.name not in kinds(leader), 15, "the worker gone from orch nodes after leave")
        check(not os.path.exists(os.path.join(w3.dir, "worker")), "orch leave left the worker mark")


def test_worker_pulls_with_registry_credentials():
    """A worker holds no state and no data key, so it cannot read the credentials of orch
    registry login: the leader opens them for it with the task, and the pull works."""
    with Registry(WorkCluster.tmp_base(), auth="basic", users={"alice": "wonderland"}) as reg, WorkCluster() as c:
        h = reg.host
        opts = ["--insecure-registry", h]
        c.init(extra=opts)
        w = c.join(extra=opts + ["--worker", "--label", "kind=worker"])
        d1, _ = demo_variant(reg, "private/app", "v1", "for the worker")
        login(c, h, "alice", "wonderland")
        spec = c.write("app.yml", (SVC % ("app", h + "/private/app:v1", 1)) +
                       "      placement:\n        constraints: [\"node.labels.kind == worker\"]\n")
        c.deploy(0, spec)
        ts = wait_running(c, "app", 1, timeout=60)
        check(ts[0]["node"] == w.name, "not on the worker: %r" % ts)
        check(ts[0]["image"] == "%s/private/app:v1@%s" % (h, d1), "image: %r" % ts[0]["image"])
        check(not os.path.exists(os.path.join(w.dir, "datakey")), "the worker holds a data key")
        # orch image pull on a manager fans out to the worker too, credentials opened for it
        d2, _ = demo_variant(reg, "private/app", "v2", "pulled by hand")
        p = c.cli(0, "image", "pull", h + "/private/app:v2", json=False, check=False)
        check(p.returncode == 0, "image pull with a worker in the cluster: %r %r" % (p.stdout, p.stderr))
        check(w.name in p.stdout + p.stderr, "the pull does not mention the worker: %r" % (p.stdout + p.stderr))
        check("wonderland" not in w.log_text(), "the password is in the worker's log")
