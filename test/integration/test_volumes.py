"""Issue 10 (volumes): a database-like service (a busybox sh loop) keeps its data in a
per-slot named volume across a task restart, a rolling update and a restart of its node
(while the node is down its task waits, pinned, with the reason in `orch ps`); a new
volume is filled from the image; tmpfs and read-only mounts seen from inside the
container; bind mounts allowed only under the node's --allow-bind prefixes; `orch volume
rm` refused while a task uses the volume, and removing its directory once none does."""
import os
import re
import subprocess

from harness import Fail, check, wait_until
from workload import DEMO, WorkCluster, live, running

TIMEOUTS = {"test_volumes_end_to_end": 120}

# The "database": records each start in its volume, prints what it finds there and what
# it sees of its other mounts, then idles. GEN changes with each rolling update.
DB = """name: shop
services:
  db:
    image: %(image)s
    environment:
      GEN: "%(gen)s"
    command:
      - sh
      - -c
      - |
        echo "start gen=$$GEN slot=$$ORCH_TASK_SLOT" >> /data/log
        echo "DATA[$$(tr '\\n' ',' < /data/log)]"
        if touch /conf/probe 2>/dev/null; then echo "CONF:writable"; else echo "CONF:read-only"; fi
        echo "CONF:$$(cat /conf/hello)"
        echo "TMPFS:$$(grep ' /scratch ' /proc/mounts)"
        echo "SEED:$$(cat /www/index.html | head -c 15)"
        while true; do sleep 1; done
    volumes:
      - data-{{.Task.Slot}}:/data
      - %(conf)s:/conf:ro
      - type: tmpfs
        target: /scratch
        tmpfs:
          size: 2m
      - type: volume
        source: seed
        target: /www
    stop_grace_period: 1s
    deploy:
      replicas: 2
      restart_policy:
        delay: 0s
      update_config:
        monitor: 1s
volumes:
  "data-{{.Task.Slot}}":
  seed:
"""

BAD = """services:
  peek:
    image: %s
    command: ["sh", "-c", "ls /host; sleep 1000"]
    volumes: ["%s:/host:ro"]
    deploy:
      restart_policy:
        condition: none
"""


def vol_dir(node, name):
    return os.path.join(node.dir, "volumes", name, "data")


def db_tasks(c):
    return sorted(live(c.ps(0, "db")), key=lambda t: t["slot"])


def wait_db(c, gen, timeout=40):
    """Both slots running the generation whose tasks print DATA lines with `gen`."""
    def ok():
        ts = running(c.ps(0, "db"))
        if len(ts) != 2:
            return None
        logs = c.cli(0, "logs", "db", json=False).stdout
        return ts if all(re.search(r"start gen=%s slot=%d" % (gen, s), logs) for s in (1, 2)) else None
    return wait_until(ok, timeout, "db at gen %s running on both slots" % gen)


def log_lines(node, name):
    with open(os.path.join(vol_dir(node, name), "log")) as f:
        return [l.strip() for l in f if l.strip()]


def test_volumes_end_to_end():
    with WorkCluster(failure_timeout="2s") as c:
        allowed = os.path.join(c.tmp, "allowed")
        conf = os.path.join(allowed, "conf")
        os.makedirs(conf)
        with open(os.path.join(conf, "hello"), "w") as f:
            f.write("hello-from-host\n")
        opt = ["--allow-bind", allowed]
        c.init(extra=opt)
        c.join(extra=opt)
        c.join(extra=opt)
        c.wait_members(c.nodes)
        for node in c.nodes:
            c.node_ids[node.name] = c.status(node)["node_id"]
        c.load_demo()
        # every node reports its prefixes into its record (what placement reads)
        wait_until(lambda: all(x["allow_bind"] == allowed for x in c.cli(0, "nodes")), 10, "allow_bind in every record")
        spec = lambda gen: c.write("db.yml", DB % {"image": DEMO, "gen": gen, "conf": conf})
        c.deploy(0, spec(1))
        ts = wait_db(c, 1)

        # one volume per slot, each on the node its slot runs on, named after the project
        vols = {v["name"]: v for v in c.cli(0, "volume", "ls")}
        check({"shop_data-1", "shop_data-2", "shop_seed"} <= set(vols), "volumes: %r" % sorted(vols))
        home = {}
        for t in ts:
            v = vols["shop_data-%d" % t["slot"]]
            check(v["node"] == t["node"], "slot %d runs on %s, its volume is on %s" % (t["slot"], t["node"], v["node"]))
            home[t["slot"]] = c.node(t["node"])
            check(log_lines(home[t["slot"]], "shop_data-%d" % t["slot"]) == ["start gen=1 slot=%d" % t["slot"]],
                  "slot %d volume holds %r" % (t["slot"], log_lines(home[t["slot"]], "shop_data-%d" % t["slot"])))
        # a plain named volume shared by the replicas: both on its node, filled from the image
        check(ts[0]["node"] == ts[1]["node"] == vols["shop_seed"]["node"],
              "replicas sharing volume seed are not on its node: %r" % [(t["slot"], t["node"]) for t in ts])
        check(os.path.isfile(os.path.join(vol_dir(home[1], "shop_seed"), "index.html")),
              "volume seed was not filled from the image's /www")
        logs = c.cli(0, "logs", "db", json=False).stdout
        check("CONF:read-only" in logs and "CONF:hello-from-host" in logs, "bind mount not read-only or not seen: %r" % logs)
        check(re.search(r"TMPFS:tmpfs /scratch tmpfs \S*size=2048k", logs), "no 2 MiB tmpfs at /scratch: %r" % logs)
        check("SEED:<!doctype html>" in logs, "the image's files are not in volume seed: %r" % logs)

        # rm is refused while a task uses the volume
        p = c.cli(0, "volume", "rm", "shop_data-1", json=False, check=False)
        check(p.returncode != 0 and "in use" in p.stderr, "volume rm of a used volume: exit %d %r" % (p.returncode, p.stderr))
        check(os.path.isdir(vol_dir(home[1], "shop_data-1")), "a refused rm removed the directory")

        # a task restart (its process killed): the new task of the slot finds the data
        t1 = ts[0]
        root = os.path.join(home[1].dir, "runc")
        ids = subprocess.run(["runc", "--root", root, "list", "-q"], capture_output=True, text=True).stdout.split()
        victim = [i for i in ids if i.endswith("-%d" % t1["id"])]
        check(victim, "no container of task %d among %r" % (t1["id"], ids))
        subprocess.run(["runc", "--root", root, "kill", victim[0], "KILL"], capture_output=True)
        wait_until(lambda: (lambda x: x and x["id"] != t1["id"] and x["state"] == "running" and x)(
            next((t for t in db_tasks(c) if t["slot"] == 1), None)), 30, "slot 1 restarted")
        wait_until(lambda: len(log_lines(home[1], "shop_data-1")) == 2, 10, "the restarted task's line in its volume")
        check(next(t for t in db_tasks(c) if t["slot"] == 1)["node"] == home[1].name, "restarted slot 1 left its volume's node")

        # a rolling update: each new task starts on its volume's node and reads the old data
        c.deploy(0, spec(2))
        ts = wait_db(c, 2)
        logs = c.cli(0, "logs", "db", json=False).stdout
        for t in ts:
            check(t["node"] == home[t["slot"]].name, "updated slot %d moved to %s" % (t["slot"], t["node"]))
            check(re.search(r"DATA\[start gen=1 slot=%d,(start gen=1 slot=%d,)?start gen=2 slot=%d,\]" %
                            (t["slot"], t["slot"], t["slot"]), logs),
                  "slot %d after the update did not read its earlier data: %r" % (t["slot"], logs))

        # its node restarts: while it is down slot 1 waits for it, pinned, saying why
        n = home[1]
        c.stop(n)
        ask = next(x for x in c.nodes if x is not n)

        def waiting():
            t = next((t for t in live(c.ps(ask, "db")) if t["slot"] == 1), None)
            return t if t and t["state"] == "pending" and "shop_data-1" in t["err"] and "down" in t["err"] else None
        t = wait_until(waiting, 30, "slot 1 pending, pinned to its volume's node")
        check("volume shop_data-1 is on node %s" % n.name in t["err"], "reason: %r" % t["err"])
        shown = c.cli(ask, "inspect", "db", json=False).stdout
        check("volume shop_data-1 is on node %s, which is down" % n.name in shown, "orch inspect db: %r" % shown[-800:])
        c.restart(n)  # without --allow-bind: the node keeps its list
        check(open(os.path.join(n.dir, "allow-bind")).read() == allowed + "\n", "allow-bind not kept across the restart")
        wait_until(lambda: (lambda x: x and x["state"] == "running" and x["node"] == n.name and x)(
            next((t for t in running(c.ps(ask, "db")) if t["slot"] == 1), None)), 40, "slot 1 back on %s" % n.name)
        lines = log_lines(n, "shop_data-1")
        check(lines[:2] == ["start gen=1 slot=1"] * 2 and "start gen=2 slot=1" in lines,
              "slot 1's data after the node restart: %r" % lines)

        # a bind mount outside every node's allowed prefixes: the deploy is refused
        p = c.deploy(ask, c.write("bad.yml", BAD % (DEMO, "/etc")), check_rc=False)
        check(p.returncode != 0 and "bind mount /etc: no node of the cluster allows it" in p.stderr,
              "deploy of a bind of /etc: exit %d %r" % (p.returncode, p.stderr))
        check("peek" not in [s["name"] for s in c.services(ask)], "the refused service was created")
        # one that only a symbolic link takes out of them: its task fails, saying why
        escape = os.path.join(allowed, "escape")
        os.symlink("/etc", escape)
        c.deploy(ask, c.write("bad.yml", BAD % (DEMO, escape)))
        t = wait_until(lambda: next((t for t in c.ps(ask, "peek", all_tasks=True) if "refused" in t["err"]), None), 30,
                       "the bind escaping --allow-bind refused")
        check("bind mount %s refused: not under a prefix this node allows (%s)" % (escape, allowed) in t["err"],
              "reason: %r" % t["err"])
        check(t["state"] in ("failed", "rejected"), "task state %r" % t["state"])
        c.cli(ask, "rm", "peek", json=False)

        # once no task uses it, rm removes the volume and its directory on its node
        c.cli(ask, "rm", "db", json=False)
        wait_until(lambda: not live(c.ps(ask, "db", all_tasks=True)), 30, "db's tasks gone")
        p = c.cli(ask, "volume", "rm", "shop_data-1", json=False)
        check("removed volume shop_data-1" in p.stdout, "volume rm said %r" % p.stdout)
        check(not os.path.exists(os.path.dirname(vol_dir(n, "shop_data-1"))), "volume directory left on %s" % n.name)
        # read your writes: the node asked relays the leader's reply only once it applied
        # the removal itself (node/rywait.h), so its own list no longer has the volume
        names = [v["name"] for v in c.cli(ask, "volume", "ls")]
        check("shop_data-1" not in names and "shop_data-2" in names, "volumes right after rm on %s: %r" % (ask, names))
        p = c.cli(ask, "volume", "rm", "nosuch", json=False, check=False)
        check(p.returncode != 0 and "no volume nosuch" in p.stderr, "rm of a missing volume: %r" % p.stderr)
