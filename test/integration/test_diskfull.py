"""Issue 12, disk full: a node whose data dir's filesystem fills up raises a cluster alarm
(orch status, orch nodes, orch events), the leader refuses growing writes with a clear
error while deletions still work, no node crashes, and once space is freed the alarm
clears, writes resume and every write acknowledged before is still there.

The small filesystem is a tmpfs the test mounts as the node's data dir (size below);
the filler is one preallocated file in it."""
import errno
import os
import subprocess

from harness import Conn, check, tail, wait_until
from workload import WorkCluster, demo_image

TIMEOUTS = {"test_follower_disk_full": 60, "test_leader_disk_full": 60, "test_lone_leader_disk_filled_under_writes": 60,
            "test_follower_disk_filled_under_writes": 60}

FS_MB = 96
FLOOR = "32m"  # the hard floor is half of it
MiB = 1 << 20

SPEC = """services:
  %s:
    image: demo:latest
    deploy:
      replicas: %d
"""


class SmallFs:
    """A tmpfs of FS_MB MiB mounted at path; on exit the node using it is killed first
    (by pid), then it is unmounted (by path)."""

    def __init__(self, path):
        self.path = path
        self.node = None

    def __enter__(self):
        os.makedirs(self.path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % FS_MB, "tmpfs", self.path], check=True)
        return self

    def __exit__(self, etype, *exc):
        if etype is not None and self.node is not None:  # its log goes with the mount
            print("--- %s log tail (on the small filesystem):\n    %s" % (
                self.node.name, "    ".join(tail(self.node.log, 25))), flush=True)
        if self.node is not None and self.node.alive():
            self.node.cluster.kill9(self.node)
        p = subprocess.run(["umount", self.path], capture_output=True)
        if p.returncode:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
        return False

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave):
        """One file taking all but `leave` bytes."""
        path = os.path.join(self.path, "filler")
        have = os.path.getsize(path) if os.path.exists(path) else 0
        size = have + self.free() - leave
        check(size > 0, "nothing to fill: %d bytes free" % self.free())
        with open(path, "ab") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, size)
            except OSError as e:  # what is left is too little to allocate: full already
                check(e.errno == errno.ENOSPC and leave == 0, "fill %s: %s" % (self.path, e))
        return path


def kv_set(c, node, key, value):
    with Conn.local(c.node(node)) as k:
        return k.call("kv.set", key=key, value=value)


def kv_get(c, node, key):
    with Conn.local(c.node(node)) as k:
        return k.call("kv.get", key=key)


def deploy(c, node, name, replicas):
    return c.cli(node, "deploy", "-f", c.spec(name, replicas), json=False, check=False)


def services(c, node):
    return {s["name"]: s.get("replicas") for s in c.cli(node, "services")}


def alarmed(c, node):
    """Names of the nodes in disk alarm, by orch nodes of `node`."""
    return sorted(n["name"] for n in c.node_list(node) if n.get("disk", {}).get("alarm"))


def no_crash(c):
    for n in c.nodes:
        check(n.alive(), "%s (pid %s) died" % (n.name, n.pid))
        log = n.log_text()
        for bad in ("Segmentation fault", "double free", "SIGSEGV", "Aborted", "core dumped"):
            check(bad not in log, "%s's log says %r" % (n.name, bad))
        check(not [f for f in os.listdir(n.dir) if f.startswith("core")], "%s left a core file" % n.name)


class DiskCluster(WorkCluster):
    """Services of 0 replicas: what is checked is the replicated state, not containers."""

    def spec(self, name, replicas):
        path = os.path.join(self.tmp, "%s-%d.yml" % (name, replicas))
        with open(path, "w") as f:
            f.write(SPEC % (name, replicas))
        return path


def scenario(small_name):
    with DiskCluster() as c:
        with SmallFs(os.path.join(c.tmp, small_name)) as fs:
            extra = ("--disk-floor", FLOOR)
            fs.node = c.init(extra=extra if small_name == "n1" else ())
            for name in ("n2", "n3"):
                c.join(extra=extra if small_name == name else ())
            c.wait_members(c.nodes)
            small = c.node(small_name)
            fs.node = small
            # writes acknowledged before the fill
            acked = {}
            for i in range(20):
                r = kv_set(c, i % 3, "before/%d" % i, "v%d" % i)
                check(r.get("rc", 0) == 0, "kv.set before the fill: %r" % r)
                acked["before/%d" % i] = "v%d" % i
            c.load_demo(0)
            for name, n in (("keep", 0), ("gone", 0)):
                p = deploy(c, 0, name, n)
                check(p.returncode == 0, "deploy %s before the fill: %s" % (name, p.stderr))
            check(alarmed(c, 0) == [], "an alarm before the fill: %r" % alarmed(c, 0))

            filler = fs.fill(20 * MiB)  # below the 32 MiB floor, above the 16 MiB hard one
            wait_until(lambda: all(alarmed(c, n) == [small_name] for n in c.nodes), 10,
                       "every node to list %s in disk alarm" % small_name)
            st = c.status(0)
            check([a["name"] for a in st["disk_alarms"]] == [small_name], "orch status disk_alarms: %r" % st)
            table = c.cli(0, "status", json=False).stdout
            check("node %s is low on disk space" % small_name in table, "orch status does not say it: %s" % table)
            evs = c.cli(0, "events")
            check(any(e["kind"] == "disk_low" and small_name in e["message"] for e in evs),
                  "no disk_low event: %r" % [e["kind"] for e in evs][-10:])

            # growing writes are refused, from every node, and change nothing
            before = c.converged()
            svcs = services(c, 0)
            for n in c.nodes:
                p = deploy(c, n, "new", 0)
                out = p.stdout + p.stderr
                check(p.returncode != 0, "deploy through %s accepted while %s is in alarm" % (n.name, small_name))
                check("node %s is low on disk space" % small_name in out and "deleting still works" in out,
                      "deploy through %s: unclear error: %s" % (n.name, out.strip()))
                r = kv_set(c, n, "during", "x")
                check(r.get("rc", 0) != 0 and "low on disk space" in str(r.get("err")), "kv.set during alarm: %r" % r)
            p = c.cli(small, "image", "load", os.path.join(demo_image(c.tmp_base()), "demo-docker.tar"), json=False,
                      check=False)
            check(p.returncode != 0 and "low on disk space" in p.stdout + p.stderr,
                  "image load on %s during the alarm: %s" % (small_name, (p.stdout + p.stderr).strip()))
            p = c.cli(0, "scale", "keep=3", json=False, check=False)
            check(p.returncode != 0 and "low on disk space" in p.stdout + p.stderr, "scale up accepted: %s" % p.stdout)
            check(services(c, 0) == svcs, "services changed by refused writes: %r -> %r" % (svcs, services(c, 0)))
            check(kv_get(c, 0, "during").get("rc", 0) != 0, "a refused kv.set is readable")
            after = c.converged()
            check(after["revision"] >= before["revision"], "revision went back")

            reader = c.nodes[0]
            if small_name == c.leader().name:
                # below the hard floor (half the floor) a leader hands leadership over:
                # its own appends are what would meet ENOSPC
                fs.fill(6 * MiB)
                others = [n for n in c.nodes if n is not small]
                wait_until(lambda: c.leader(timeout=5) is not small, 10,
                           "leadership to leave %s (%d MiB free)" % (small_name, fs.free() >> 20))
                check(c.leader(others) in others, "no leader among %r" % [n.name for n in others])
                # and, a follower now, it hears the leader no more (it could not append)
                wait_until(lambda: c.status(small).get("disk_deaf") is True, 5,
                           "%s below the hard floor to stop hearing the leader" % small_name)
                check("not hearing the leader" in c.cli(small, "status", json=False).stdout, "orch status does not say so")
                reader = others[0]

            # deletions still work
            p = c.cli(small, "rm", "gone", json=False, check=False)
            check(p.returncode == 0, "rm during the alarm: %s" % (p.stdout + p.stderr))
            wait_until(lambda: "gone" not in services(c, reader), 10, "gone to be removed")
            no_crash(c)

            # space back: the alarm clears, writes resume
            os.unlink(filler)
            wait_until(lambda: all(alarmed(c, n) == [] for n in c.nodes), 10,
                       "the alarm to clear (%d MiB free)" % (fs.free() >> 20))
            evs = c.cli(0, "events")
            check(any(e["kind"] == "disk_ok" and small_name in e["message"] for e in evs), "no disk_ok event")
            p = deploy(c, 0, "new", 0)
            check(p.returncode == 0, "deploy after the alarm cleared: %s" % (p.stdout + p.stderr))
            r = kv_set(c, 1, "after", "y")
            check(r.get("rc", 0) == 0, "kv.set after the alarm: %r" % r)
            acked["after"] = "y"

            # nothing acknowledged was lost, on any node
            c.converged()
            for n in c.nodes:
                for k, v in acked.items():
                    got = kv_get(c, n, k)
                    check(got.get("value") == v, "%s: %s = %r, acknowledged %r" % (n.name, k, got, v))
                check(set(services(c, n)) == {"keep", "new"}, "%s services: %r" % (n.name, services(c, n)))
            no_crash(c)
            return c, fs


def test_follower_disk_full():
    scenario("n2")


def test_leader_disk_full():
    scenario("n1")


def flood_removals(c, node, fs, n):
    """n removals of services that do not exist (each one a log entry: the alarm lets
    removals through) pipelined through node, the small filesystem filled again every
    1000 answers. Returns {rc: count}; every answer must be done, not found or refused
    for disk space."""
    answers = {}
    with Conn.local(c.node(node), timeout=30) as k:
        sent = got = 0
        while got < n:
            while sent < n and sent - got < 256:
                k.send({"op": "service.rm", "name": "none-%d" % sent})
                sent += 1
            r = k.read()
            got += 1
            if got % 1000 == 0:
                fs.fill(0)  # another program takes every block freed, again and again
            rc = r.get("rc", 0)
            answers[rc] = answers.get(rc, 0) + 1
            check(rc in (0, -3) or rc == -12 and "disk space" in r.get("err", ""), "removal answered %r" % r)
    return answers


def test_follower_disk_filled_under_writes():
    """A follower whose disk is full cannot append what the leader sends: libraft 0.15
    fails those appends (and its snapshots) and retries; the node must live, and catch up
    to the same state once space is back."""
    with DiskCluster() as c:
        with SmallFs(os.path.join(c.tmp, "n2")) as fs:
            c.init()
            fs.node = c.join(extra=("--disk-floor", FLOOR))
            c.join()
            c.wait_members(c.nodes)
            for i in range(100):
                check(kv_set(c, 0, "k/%d" % i, "v%d" % i).get("rc", 0) == 0, "kv.set before the fill")
            fs.fill(0)
            answers = flood_removals(c, 0, fs, 60000)
            check(answers.get(-3, 0) >= 50000, "removals through the leader were not applied: %r" % answers)
            no_crash(c)
            os.unlink(os.path.join(fs.path, "filler"))
            c.converged(timeout=20)
            for i in range(100):
                got = kv_get(c, fs.node, "k/%d" % i)
                check(got.get("value") == "v%d" % i, "n2: k/%d = %r" % (i, got))
            wait_until(lambda: all(alarmed(c, n) == [] for n in c.nodes), 10, "the alarm to clear")
            check(kv_set(c, fs.node, "after", "y").get("rc", 0) == 0, "a write after the alarm cleared")
            no_crash(c)


def test_lone_leader_disk_filled_under_writes():
    """The crash of PLATFORM.md: a single node whose disk another program fills while
    writes pour in (removals, which the alarm lets through, so raft keeps appending).
    Every one is answered, as done or as refused for disk space (never an I/O error from
    raft), the node lives, and once space is back writes resume and every write
    acknowledged before is there."""
    with DiskCluster() as c:
        with SmallFs(os.path.join(c.tmp, "n1")) as fs:
            fs.node = c.init(extra=("--disk-floor", FLOOR))
            acked = {}
            with Conn.local(c.nodes[0], timeout=30) as k:
                for i in range(300):
                    r = k.call("kv.set", key="k/%d" % i, value="v%d" % i)
                    check(r.get("rc", 0) == 0, "kv.set before the fill: %r" % r)
                    acked["k/%d" % i] = "v%d" % i
            fs.fill(0)
            answers = flood_removals(c, 0, fs, 60000)
            check(answers.get(-12), "no removal was refused below the hard floor: %r" % answers)
            no_crash(c)
            os.unlink(os.path.join(fs.path, "filler"))

            def resumed():
                return kv_set(c, 0, "after", "y").get("rc", 0) == 0
            wait_until(resumed, 10, "writes to resume (%d MiB free)" % (fs.free() >> 20), interval=0.2)
            acked["after"] = "y"
            with Conn.local(c.nodes[0], timeout=30) as k:
                for key, v in acked.items():
                    got = k.call("kv.get", key=key)
                    check(got.get("value") == v, "%s = %r, acknowledged %r" % (key, got, v))
            check(alarmed(c, 0) == [], "alarm left after space came back: %r" % alarmed(c, 0))
            no_crash(c)
