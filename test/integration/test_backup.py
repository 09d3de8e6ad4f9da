"""Issue 13 (backups): `orch snapshot save` writes a checksummed backup of the state from
any manager, refusing to carry sealed values without a way to open them; `orch init
--restore` makes a NEW cluster from it (its own id, CA, tokens and nodes) holding the same
services, secrets and settings, whose tasks read the restored secret and sealed
environment; bad, truncated or wrongly unlocked files are refused with a clear message
and leave nothing behind."""
import hashlib
import os
import stat
import uuid

from harness import Fail, check, wait_until
from workload import DEMO, WorkCluster, running

TIMEOUTS = {"test_snapshot_restore": 90}

STACK = """name: app
services:
  app:
    image: %s
    command: ["sh", "-c", "echo pw=$(sha256sum </run/secrets/db_password) env=$$APP_TOKEN; exec sleep 3600"]
    stop_grace_period: 1s
    environment:
      APP_TOKEN: %s
    secrets: [db_password]
    deploy:
      replicas: 2
  idle:
    image: %s
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 1
secrets:
  db_password:
    external: true
"""


def sha(v):
    return hashlib.sha256(v.encode()).hexdigest() + " -"


def summary(c):
    """What orch services says, without what differs by nature between two clusters."""
    return sorted((s["name"], s.get("image"), s.get("desired", s.get("replicas"))) for s in c.services())


def refused(c, path, extra, needle):
    d = os.path.join(c.tmp, "bad-" + uuid.uuid4().hex[:6])
    p = c.run("init", "--listen", "127.0.0.1:1", "--data-dir", d, "--restore", path, *extra)
    check(p.returncode != 0 and needle in p.stderr, "init --restore %s: rc %d, %r" % (os.path.basename(path), p.returncode, p.stderr))
    check(not os.path.exists(os.path.join(d, "identity")) and not os.path.exists(os.path.join(d, "datakey")),
          "a refused restore left files in %s: %r" % (d, os.listdir(d) if os.path.isdir(d) else None))


def test_snapshot_restore():
    pw = "pw-" + uuid.uuid4().hex
    tok = "tok-" + uuid.uuid4().hex
    with WorkCluster(2) as a:
        a.load_demo()
        a.cli(0, "secret", "create", "db_password", a.write("pw", pw), json=False)
        a.deploy(0, a.write("stack.yml", STACK % (DEMO, tok, DEMO)))
        a.cli(0, "scale", "idle=2", json=False)
        wait_until(lambda: len(running(a.ps(0))) == 4, 40, "4 replicas running in the first cluster")
        wait_until(lambda: ("env=" + tok) in a.cli(0, "logs", "app", json=False).stdout, 20, "the first cluster's tasks read the environment")

        snap = os.path.join(a.tmp, "backup.snap")
        p = a.cli(1, "snapshot", "save", snap, json=False, check=False)  # a follower: any manager
        check(p.returncode != 0 and "--passphrase-file" in p.stderr and not os.path.exists(snap),
              "save without a key mode while secrets exist: %r" % p.stderr)
        passfile = a.write("passphrase", "correct horse %s\n" % uuid.uuid4().hex)
        out = a.cli(1, "snapshot", "save", snap, "--passphrase-file", passfile, json=False).stdout
        check("2 services, 1 secrets" in out and "data key: passphrase" in out, "snapshot save: %r" % out)
        check(stat.S_IMODE(os.stat(snap).st_mode) == 0o600, "snapshot file mode %o" % os.stat(snap).st_mode)
        with open(snap, "rb") as f:
            data = f.read()
        check(pw.encode() not in data and tok.encode() not in data, "a sealed value is in the backup in clear")
        ins = a.run("snapshot", "inspect", snap)
        cid = a.status(0)["cluster"]
        check(ins.returncode == 0 and "services:  2" in ins.stdout and "checksum:  ok" in ins.stdout and
              "sealed under a passphrase" in ins.stdout, "snapshot inspect: %r %r" % (ins.stdout, ins.stderr))
        check(cid in ins.stdout, "inspect does not name cluster %s: %r" % (cid, ins.stdout))
        before = summary(a)

        # bad files: a clear error each, nothing written
        def variant(name, blob):
            path = os.path.join(a.tmp, name)
            with open(path, "wb") as f:
                f.write(blob)
            return path
        refused(a, variant("trunc.snap", data[:len(data) // 2]), ["--passphrase-file", passfile], "truncated or damaged")
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0xff
        refused(a, variant("flip.snap", bytes(flipped)), ["--passphrase-file", passfile], "checksum mismatch")
        refused(a, variant("junk.snap", b"PK\x03\x04 not a snapshot at all"), [], "not an orch snapshot")
        refused(a, snap, ["--passphrase-file", a.write("wrong", "wrong\n")], "wrong passphrase")
        refused(a, snap, [], "--passphrase-file")

        with WorkCluster(0) as b:
            out = b.init(extra=["--restore", snap, "--passphrase-file", passfile])
            check(b.status(0)["cluster"] != cid, "the restored cluster kept the old cluster id")
            check(b.token != a.token, "the restored cluster kept the old join token")
            # the state arrived before init returned
            check(summary(b) == before, "services differ after restore: %r vs %r" % (summary(b), before))
            sl = b.cli(0, "secret", "ls")
            check([(x["name"], x["version"]) for x in sl] == [("db_password", 1)], "secret ls after restore: %r" % sl)
            check([n["name"] for n in b.cli(0, "nodes")] == [b.nodes[0].name], "nodes carried over: %r" % b.cli(0, "nodes"))
            # the image layers are not in a backup: loaded again, as orch(8) BACKUPS says
            b.load_demo()
            b.join()

            def restored_running():
                r = running(b.ps(0))
                return len(r) == 4 and r
            wait_until(restored_running, 40, "4 replicas running in the restored cluster")

            seen = []

            def read_secret():
                seen[:] = [b.cli(0, "logs", "app", json=False).stdout]
                return ("pw=" + sha(pw)) in seen[0] and ("env=" + tok) in seen[0]
            try:
                wait_until(read_secret, 20, "the restored secret and environment read by the tasks")
            except Fail:
                raise Fail("the tasks of the restored cluster printed %r (expected pw=%s env=%s)" % (seen, sha(pw), tok))
            # a restore is for a new cluster only: a second load is refused by the state
            p = b.run("-D", b.nodes[0].dir, "init", "--restore", snap, "--passphrase-file", passfile)
            check(p.returncode != 0 and "already holds a node" in p.stderr, "restore over a running node: %r" % p.stderr)
            # the old cluster is untouched by all this
            check(summary(a) == before, "the first cluster changed: %r" % summary(a))
