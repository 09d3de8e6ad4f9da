"""Issue 10 (secrets and configs): a secret reaches /run/secrets/NAME in the task with the
mode asked for, a config reaches its target, and neither value appears in `orch secret
inspect`, `orch inspect`, a node's log, or any file on disk under any node's data dir
(raw bytes searched, raft log and snapshots included; the task's tmpfs is the one place
it lives, and it is not on disk). `secret rm` is refused while a service uses it; a new
value under the same name is a new version that rolls the service; registry credentials
are stored sealed and are not listed as secrets."""
import hashlib
import json
import os
import re
import subprocess
import uuid

from harness import BIN, Fail, check, wait_until
from workload import DEMO, WorkCluster, running

TIMEOUTS = {"test_secret_and_config_in_task": 60, "test_data_key_on_every_node": 30}

STACK = """name: app
secrets:
  db_password:
    external: true
configs:
  app_conf:
    file: ./app.conf
services:
  app:
    image: %s
    command: ["sh", "-c", "stat -c 'mode=%%a uid=%%u' /run/secrets/db_password; echo pw=$(sha256sum </run/secrets/db_password); echo conf=$(sha256sum </etc/app.conf); exec sleep 3600"]
    stop_grace_period: 1s
    secrets:
      - source: db_password
        mode: 0400
    configs:
      - source: app_conf
        target: /etc/app.conf
"""


def files_on_disk(root):
    """Every regular file under root on root's own filesystem (a tmpfs or overlay mounted
    below it is memory or the task's view, not the node's disk)."""
    dev = os.lstat(root).st_dev
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if os.lstat(os.path.join(d, x)).st_dev == dev]
        for f in files:
            p = os.path.join(d, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if st.st_dev == dev and os.path.isfile(p) and not os.path.islink(p):
                yield p


def assert_nowhere_on_disk(c, values):
    scanned = 0
    for n in c.nodes:
        for p in files_on_disk(n.dir):
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            scanned += 1
            for v in values:
                check(v.encode() not in data, "value %r found in clear in %s" % (v, p))
    check(scanned > 10, "only %d files scanned under the data dirs" % scanned)


def sha(v):
    """What the task prints of a value: its hash (busybox sha256sum of stdin), so the
    task's own log does not hold the value the test then looks for on disk."""
    return hashlib.sha256(v.encode()).hexdigest() + " -"


def logs_of(c, svc):
    return c.cli(0, "logs", svc, json=False).stdout


def test_secret_and_config_in_task():
    pw1 = "pw-" + uuid.uuid4().hex
    pw2 = "pw-" + uuid.uuid4().hex
    conf = "conf-" + uuid.uuid4().hex
    regpw = "reg-" + uuid.uuid4().hex
    with WorkCluster(2, env={"ORCH_TRACE": "1"}) as c:  # traces go to the logs searched below
        c.load_demo()
        # external: must exist before the deploy
        spec = c.write("stack.yml", STACK % DEMO)
        c.write("app.conf", conf + "\n")
        p = c.deploy(0, spec, check_rc=False)
        check(p.returncode != 0 and "external but does not exist" in p.stderr, "deploy with a missing external secret: %r" % p.stderr)
        check(not c.services(), "a failed deploy created services: %r" % c.services())

        f1 = c.write("pw1", pw1)
        out = c.cli(1, "secret", "create", "db_password", f1, json=False).stdout  # from a follower
        check("version 1" in out, "secret create: %r" % out)
        again = c.cli(0, "secret", "create", "db_password", f1, json=False).stdout
        check("unchanged" in again, "the same value again made a new version: %r" % again)

        c.deploy(0, spec)
        t = wait_until(lambda: [x for x in running(c.ps(0, "app")) if "pw=" in logs_of(c, "app")], 40, "app running with its secret")[0]
        out = logs_of(c, "app")
        check("mode=400 uid=0" in out, "secret file mode/owner in the task: %r" % out)
        check("pw=" + sha(pw1) in out, "secret value not read in the task: %r" % out)
        check("conf=" + sha(conf + "\n") in out, "config not at its target: %r" % out)

        # the host side is a tmpfs under the task dir, on the node that runs the task only
        node = c.node(t["node"])
        with open("/proc/self/mountinfo") as f:
            mi = f.read()
        tdir = os.path.join(node.dir, "tasks", str(t["id"]), "secrets")
        check(re.search(r" %s .* - tmpfs " % re.escape(os.path.realpath(tdir)), mi), "no tmpfs at %s" % tdir)
        for other in c.nodes:
            if other is not node:
                check(not os.path.exists(os.path.join(other.dir, "tasks", str(t["id"]))), "task dir on %s" % other.name)

        # metadata only
        ins = c.cli(0, "secret", "inspect", "db_password")
        check(ins["version"] == 1 and ins["services"] == ["app"] and pw1 not in json.dumps(ins), "secret inspect: %r" % ins)
        cl = c.cli(0, "config", "ls")
        check([x["name"] for x in cl] == ["app_app_conf"], "config ls: %r" % cl)
        svc = c.cli(0, "inspect", "app", json=False).stdout
        check(pw1 not in svc and conf not in svc and "db_password" in svc, "orch inspect shows: %r" % svc[:400])

        # in use: refused, nothing changes
        p = c.cli(0, "secret", "rm", "db_password", json=False, check=False)
        check(p.returncode != 0 and "in use by service app" in p.stderr, "secret rm while in use: %r" % p.stderr)
        p = c.cli(0, "config", "rm", "app_app_conf", json=False, check=False)
        check(p.returncode != 0 and "in use" in p.stderr, "config rm while in use: %r" % p.stderr)

        # a new value: version 2, the service rolls and the new task reads it
        gen = c.cli(0, "inspect", "app")["generation"]
        out = c.cli(0, "secret", "create", "db_password", c.write("pw2", pw2), json=False).stdout
        check("version 2" in out, "second value: %r" % out)
        wait_until(lambda: any(x["id"] != t["id"] for x in running(c.ps(0, "app"))) and "pw=" + sha(pw2) in logs_of(c, "app"),
                   40, "the service rolled to the new secret version")
        check(c.cli(0, "inspect", "app")["generation"] == gen + 1, "no new generation after the new value")
        evs = [e for e in c.cli(0, "events") if e["kind"] == "secret_updated"]
        check(len(evs) == 1 and evs[0]["service"] == "app" and "version 2" in evs[0]["message"], "events: %r" % evs)

        # the same file again: nothing changes; a new content of a file: a new version, a roll
        out = c.cli(0, "deploy", "-f", spec, "--dry-run", json=False).stdout
        check(re.search(r"^app\s+unchanged", out, re.M), "dry run of the same file: %r" % out)
        out = c.deploy(0, spec).stdout
        check("app_app_conf version 1 unchanged" in out and re.search(r"^app\s+unchanged", out, re.M), "same deploy: %r" % out)
        conf2 = "conf-" + uuid.uuid4().hex
        c.write("app.conf", conf2 + "\n")
        out = c.deploy(0, spec).stdout
        check("config app_app_conf version 2" in out, "changed config at deploy: %r" % out)
        wait_until(lambda: "conf=" + sha(conf2 + "\n") in logs_of(c, "app") and
                   c.cli(0, "inspect", "app")["generation"] == gen + 2, 40, "the service rolled to the new config")
        # rollback: the previous generation runs again with the version it pinned (kept)
        c.cli(0, "rollout", "undo", "app", json=False)

        def back_on_conf1():
            for x in running(c.ps(0, "app")):
                own = c.cli(0, "logs", str(x["id"]), json=False).stdout
                if "conf=" + sha(conf + "\n") in own and "pw=" + sha(pw2) in own:
                    return x
            return None
        wait_until(back_on_conf1, 40, "the rollback to the previous config version")

        # registry credentials: stored sealed, not listed among secrets
        r = subprocess.run([BIN, "-D", c.nodes[0].dir, "registry", "login", "127.0.0.1:5999", "-u", "alice", "--password-stdin"],
                           input=regpw + "\n", capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and "stored" in r.stdout, "registry login: %r %r" % (r.stdout, r.stderr))
        names = [x["name"] for x in c.cli(0, "secret", "ls")]
        check(names == ["db_password"], "secret ls: %r" % names)

        c.converged()  # every replica applied the sealed values and the rolls alike
        for n in c.nodes:
            log = n.log_text()
            check(" TRACE " in log, "%s: no trace lines in its log (ORCH_TRACE=1)" % n.name)
            for v in (pw1, pw2, conf, conf2, regpw):
                check(v not in log, "value %r in the log of %s" % (v, n.name))
        assert_nowhere_on_disk(c, [pw1, pw2, conf, conf2, regpw])
        for n in c.nodes:
            st = os.stat(os.path.join(n.dir, "datakey"))
            check(st.st_mode & 0o777 == 0o600, "%s datakey mode %o" % (n.name, st.st_mode & 0o777))

        r = c.cli(0, "registry", "logout", "127.0.0.1:5999", json=False)
        check("removed" in r.stdout, "registry logout: %r" % r.stdout)
        c.cli(0, "rm", "app", json=False)
        wait_until(lambda: not os.path.exists(tdir) or not os.path.ismount(tdir), 20, "the task's tmpfs unmounted")
        wait_until(lambda: c.cli(0, "secret", "rm", "db_password", json=False, check=False).returncode == 0, 10,
                   "secret rm once no service uses it")
        check(c.cli(0, "secret", "ls") == [], "secret ls after rm: %r" % c.cli(0, "secret", "ls"))


def write_tmp(c, name, text):
    path = os.path.join(c.tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_data_key_on_every_node():
    """orch init makes the key, each join hands it over (wrapped), every node can seal and
    open, orch leave takes the key away, a new leader carries on; no containers involved."""
    from harness import Cluster
    with Cluster(4) as c:
        keys = set()
        for n in c.nodes:
            p = os.path.join(n.dir, "datakey")
            check(os.stat(p).st_mode & 0o777 == 0o600, "%s: datakey mode %o" % (n.name, os.stat(p).st_mode & 0o777))
            with open(p) as f:
                keys.add(f.read())
        check(len(keys) == 1, "the nodes hold %d different data keys" % len(keys))
        v1 = "v-" + uuid.uuid4().hex
        out = c.cli(3, "secret", "create", "k", write_tmp(c, "k1", v1), json=False).stdout
        check("version 1" in out, "secret create on n4: %r" % out)
        lead = c.leader()
        gone = next(n for n in c.nodes[:3] if n is not lead)
        c.cli(gone, "leave", json=False)
        check(not os.path.exists(os.path.join(gone.dir, "datakey")), "orch leave kept the data key")
        wait_until(lambda: not gone.alive(), 10, "the leaving node to stop")
        rest = [n for n in c.nodes if n is not gone]
        c.wait_members(rest)
        c.kill9(lead)
        rest = [n for n in rest if n is not lead]
        c.leader(among=rest, timeout=15)
        # another node opens what n4 sealed (the same value again is recognised) and seals anew
        out = c.cli(rest[0], "secret", "create", "k", write_tmp(c, "k1b", v1), json=False).stdout
        check("unchanged" in out, "the same value through %s: %r" % (rest[0].name, out))
        out = c.cli(rest[1], "secret", "create", "k", write_tmp(c, "k2", "v2-" + v1), json=False).stdout
        check("version 2" in out, "a new value after the failover: %r" % out)
        c.converged(rest)
