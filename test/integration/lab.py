"""The lab: every node its own machine, on one real machine.

A Lab of N hosts is made of network namespaces the lab creates and nothing else:

    olab-NAME-sw    the switch: a bridge `labbr` with one port per host (n1, n2, ..., cl)
    olab-NAME-nK    host K: interface lab0 = 10.77.0.K/24 on the switch, its own lo, routes,
                    nftables ruleset and task bridge; a node runs here with its own mount
                    namespace (ns/nK.mnt) and /run, so its task netns and mounts are its own
    olab-NAME-cl    the client: 10.77.0.250; the test process moves into it (Lab(client=True)),
                    so its sockets reach the hosts as another machine on the network would

10.77.0.0/24 lies outside what orch hands out (10.128.0.0/9, src/net/ipam.h) and exists only
inside these namespaces, so labs of concurrent tests use the same addresses without meeting.
Nodes are started with `nsenter --net --mount` (not `ip netns exec`: it remounts /sys and
runc then finds no cgroup mount). The CLI reaches a node through its Unix socket in its data
dir; commands that start a node or clean up after it run on its host (OnLab.argv).

Faults live on the switch, so no host's own ruleset is touched: a cut is a drop in the
switch's `bridge olab` table between two ports (silent, like a pulled cable: no RST, no ICMP),
loss is `numgen random mod 100 < N drop` on what a host sends, and delay sends a host's
IPv4 packets through an NFQUEUE that a small relay process (this file, `_delay`) releases
after the delay (the kernel has no netem). A rate cap is a tbf qdisc on the host's lab0.
Loss, rate and delay apply, like netem on a host's interface, to what that host SENDS:
delay(i, 100) makes every round trip with host i 100 ms longer (jitter keeps packet order).

Python: indexes are 0-based like Cluster.nodes (host 0 runs nodes[0]).

    with Lab(3) as lab:
        c = lab.cluster(3)             # or lab.cluster(3, kind=WorkCluster, failure_timeout="2s")
        lab.isolate(0); ...; lab.heal()

or, for a test that needs no faults, LabCluster(3, kind=MeshCluster) owns its lab.
Command line (scripts/lab.sh wraps it; hosts are 1-based there): see usage()."""
import ctypes
import heapq
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import BIN, Cluster, Fail, Node, check  # noqa: E402

NET = "10.77.0"
CLIENT = 250
MAX_HOSTS = 200
NODE_PORT = 7400
RUN = "/run/orchlab"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_seq = [0]


def _run(argv, input=None, check_rc=True, timeout=30):
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, stdin=None if input
                       else subprocess.DEVNULL)
    if check_rc and p.returncode:
        raise Fail("%s exited %d: %s" % (" ".join(argv), p.returncode, (p.stderr or p.stdout).strip()[:400]))
    return p


def _setns(path_or_fd):
    fd = os.open(path_or_fd, os.O_RDONLY | os.O_CLOEXEC) if isinstance(path_or_fd, str) else path_or_fd
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns: %s" % os.strerror(e))
    finally:
        if isinstance(path_or_fd, str):
            os.close(fd)


CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE = 4096, 16384, 1 << 18, 1 << 19
MNT_DETACH = 2


def _mount(src, target, fstype, flags, data=None):
    enc = lambda x: x.encode() if x is not None else None  # noqa: E731
    if _libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s on %s: %s" % (src, target, os.strerror(e)))


def _umount(target, missing_ok=False):
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        if not (missing_ok and e in (22, 2)):  # EINVAL: not a mount point; ENOENT
            raise OSError(e, "umount %s: %s" % (target, os.strerror(e)))


def _ns_inode(path):
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _locked(method):
    def call(self, *a, **kw):
        with self._lock:
            return method(self, *a, **kw)
    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


class Lab:
    """A switch and n hosts (more on demand with add_host). Removes everything it made on
    teardown, also after a failed test; a killed test's lab is removed by test/run.py
    through the name it recorded in TEST_TMP/labs (Lab.destroy)."""

    def __init__(self, n=0, name=None, client=True, attach=False):
        if name is None:
            _seq[0] += 1
            name = "t%d%s" % (os.getpid(), "" if _seq[0] == 1 else "-%d" % _seq[0])
        self.name = name
        self.dir = os.path.join(RUN, name)
        self.nsdir = os.path.join(self.dir, "ns")
        self.clusters = []
        self.made_clusters = 0
        self._home = None  # the test process's own netns while it is in the client's
        self._lock = threading.RLock()  # faults may be set from several threads
        if attach:
            self._load()
            return
        check(os.geteuid() == 0, "the lab needs root (network and mount namespaces)")
        check(not os.path.exists(self.dir), "lab %s exists already (%s): scripts/lab.sh down %s" % (
            name, self.dir, name))
        self.state = {"hosts": 0, "client": client, "cuts": [], "loss": {}, "rate": {}, "delay": {}, "pids": {}}
        tt = os.environ.get("TEST_TMP")
        if tt:
            with open(os.path.join(tt, "labs"), "a") as f:
                f.write(name + "\n")
        try:
            self._create(n, client)
        except BaseException:
            self.teardown()
            raise

    # ---- names ------------------------------------------------------------------------------

    def ns(self, who):
        return "olab-%s-%s" % (self.name, who)

    def netns_path(self, who):
        return "/run/netns/" + self.ns(who)

    @staticmethod
    def port(i):
        return "n%d" % (i + 1)

    def ip(self, i):
        return "%s.%d" % (NET, i + 1)

    @property
    def client_ip(self):
        return "%s.%d" % (NET, CLIENT)

    @property
    def hosts(self):
        return self.state["hosts"]

    def enter(self, i):
        """The argv prefix that runs a command on host i (its netns and mount namespace)."""
        return ["nsenter", "--net=" + self.netns_path(self.port(i)), "--mount=" + self.mnt_path(i), "--"]

    def mnt_path(self, i):
        return os.path.join(self.nsdir, "%s.mnt" % self.port(i))

    def host_run(self, i, argv, input=None, check_rc=True, timeout=30):
        """Runs argv on host i; returns the CompletedProcess (Fail on a non-zero exit)."""
        return _run(self.enter(self._idx(i)) + list(argv), input=input, check_rc=check_rc, timeout=timeout)

    def _sw(self, argv, input=None, check_rc=True):
        return _run(["nsenter", "--net=" + self.netns_path("sw"), "--"] + argv, input=input, check_rc=check_rc)

    def _idx(self, ref):
        """A host index from an index or a Node of a lab cluster."""
        i = getattr(ref, "host", ref)
        check(isinstance(i, int) and 0 <= i < self.hosts, "no host %r in lab %s (%d hosts)" % (ref, self.name,
                                                                                              self.hosts))
        return i

    # ---- state --------------------------------------------------------------------------------

    def _save(self):
        tmp = os.path.join(self.dir, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.state, f)
        os.replace(tmp, os.path.join(self.dir, "state.json"))

    def _load(self):
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                self.state = json.load(f)
        except (OSError, ValueError):
            raise Fail("no lab %s (%s)" % (self.name, self.dir))

    # ---- creation -----------------------------------------------------------------------------

    def _create(self, n, client):
        os.makedirs(self.nsdir)
        self._save()
        # Mount namespace files must sit on a private mount (else the kernel could make a
        # namespace hold itself through propagation).
        _mount(self.nsdir, self.nsdir, None, MS_BIND)
        _mount(None, self.nsdir, None, MS_PRIVATE)
        self._wire(["sw"] + (["cl"] if client else []), switch=True)
        if client:
            self.join_client()
        self.add_hosts(n)

    def _wire(self, whos, switch=False):
        """Makes the netns of whos (and the switch), each plugged into the switch with its
        address. A handful of ip processes for any number of hosts: labs are made per test."""
        sw = self.ns("sw")
        ends = [w for w in whos if w != "sw"]
        root = ["netns add " + self.ns(w) for w in whos]
        root += ["link add %s netns %s type veth peer name lab0 netns %s" % (w, sw, self.ns(w)) for w in ends]
        _run(["ip", "-batch", "-"], input="\n".join(root) + "\n")
        sw_cmds = (["link set lo up", "link add labbr type bridge", "link set labbr up"] if switch else [])
        sw_cmds += ["link set %s master labbr up" % w for w in ends]
        jobs = [(["ip", "-n", sw, "-batch", "-"], "\n".join(sw_cmds) + "\n")]
        for w in ends:
            ip = self.client_ip if w == "cl" else self.ip(int(w[1:]) - 1)
            jobs.append((["ip", "-n", self.ns(w), "-batch", "-"],
                         "link set lo up\naddr add %s/24 dev lab0\nlink set lab0 up\n" % ip))
        procs = [(argv, subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)) for argv, _ in jobs]
        errs = []
        for (argv, text), (_, p) in zip(jobs, procs):
            out, err = p.communicate(text, timeout=30)
            if p.returncode:
                errs.append("%s: %s" % (" ".join(argv), err.strip()[:200]))
        check(not errs, "wiring the lab failed: %s" % "; ".join(errs))

    def add_host(self):
        """Adds host number `hosts` (its index); returns the index."""
        return self.add_hosts(1)

    def add_hosts(self, k):
        """Adds k hosts (indexes hosts .. hosts+k-1); returns the last index."""
        first = self.hosts
        check(first + k <= MAX_HOSTS, "a lab has at most %d hosts" % MAX_HOSTS)
        if k <= 0:
            return first - 1
        self.state["hosts"] = first + k
        self._save()
        self._wire([self.port(i) for i in range(first, first + k)])
        for i in range(first, first + k):
            self._mount_ns(i)
        return first + k - 1

    def _mount_ns(self, i):
        """Host i's own mount namespace, kept by a bind mount on ns/nK.mnt. Slave: the host
        sees unmounts the machine makes later, while what it mounts stays its own. Its /run
        is a tmpfs of its own, as a machine's is: netns names (/run/netns) and orch's claims
        of network tags (/run/orch) are files, which on the machine's disk every host would
        share. The machine's mounts under /run are dropped from the host's copy first, so no
        host holds the namespaces of another host or lab."""
        path = self.mnt_path(i)
        open(path, "w").close()
        made, bound, out = threading.Event(), threading.Event(), {}

        def body():
            try:
                if _libc.unshare(CLONE_NEWNS) != 0:
                    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
                _mount(None, "/", None, MS_REC | MS_SLAVE)
                with open("/proc/thread-self/mountinfo") as f:
                    under = [l.split()[4] for l in f if l.split()[4].startswith("/run/")]
                for mp in sorted(under, key=lambda m: -m.count("/")):
                    _umount(mp.replace("\\040", " "), missing_ok=True)
                _mount("olab", "/run", "tmpfs", 0, "mode=755")
                os.mkdir("/run/netns")
                out["tid"] = threading.get_native_id()
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                out["e"] = e
            made.set()
            bound.wait(10)  # the thread's namespace must live until it is bound
        t = threading.Thread(target=body)
        t.start()
        made.wait(10)
        try:
            if "e" in out:
                raise Fail("host %d mount namespace: %s" % (i, out["e"]))
            _mount("/proc/%d/task/%d/ns/mnt" % (os.getpid(), out["tid"]), path, None, MS_BIND)
        finally:
            bound.set()
            t.join()

    def host(self, i):
        """Makes sure host i exists (adding hosts up to it); returns its address."""
        if self.hosts <= i:
            self.add_hosts(i + 1 - self.hosts)
        return self.ip(i)

    def join_client(self):
        """Moves the calling thread (and what it starts later: threads, subprocesses) into the
        client namespace; teardown moves it back."""
        if self._home is None:
            self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        _setns(self.netns_path("cl"))

    def leave_client(self):
        if self._home is not None:
            _setns(self._home)
            os.close(self._home)
            self._home = None

    def in_host(self, i, fn, *args):
        """fn(*args) called on a thread inside host i's network namespace (a socket made there
        stays there); returns its result or raises its exception."""
        out = {}
        path = self.netns_path(self.port(self._idx(i)))

        def body():
            try:
                _setns(path)
                out["v"] = fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                out["e"] = e
        t = threading.Thread(target=body)
        t.start()
        t.join()
        if "e" in out:
            raise out["e"]
        return out.get("v")

    # ---- clusters -----------------------------------------------------------------------------

    def cluster(self, n=0, kind=Cluster, **kw):
        """A cluster of `kind` (harness.Cluster or a subclass: workload.WorkCluster,
        traffic.MeshCluster) whose node i runs on host i; same interface as kind."""
        c = _lab_class(kind)(n, lab=self, **kw)
        self.clusters.append(c)
        return c

    # ---- faults -------------------------------------------------------------------------------

    def _ports(self, i):
        return [self.port(j) for j in range(self.hosts) if j != i] + (["cl"] if self.state["client"] else [])

    @_locked
    def cut(self, i, j):
        """No packet between hosts i and j, either way."""
        self.cut_oneway(i, j, apply=False)
        self.cut_oneway(j, i)

    @_locked
    def cut_oneway(self, src, dst, apply=True):
        """Packets from src to dst are dropped; dst to src still pass."""
        pair = [self.port(self._idx(src)), self.port(self._idx(dst))]
        if pair not in self.state["cuts"]:
            self.state["cuts"].append(pair)
        if apply:
            self._apply_nft()

    @_locked
    def isolate(self, i):
        """Host i cut from every other host and from the client (its Unix socket still works)."""
        p = self.port(self._idx(i))
        for q in self._ports(self._idx(i)):
            for pair in ([p, q], [q, p]):
                if pair not in self.state["cuts"]:
                    self.state["cuts"].append(pair)
        self._apply_nft()

    @_locked
    def heal(self, i=None):
        """Removes every cut involving host i (all cuts when i is None). Loss, rate and delay stay."""
        if i is None:
            self.state["cuts"] = []
        else:
            p = self.port(self._idx(i))
            self.state["cuts"] = [c for c in self.state["cuts"] if p not in c]
        self._apply_nft()

    @_locked
    def loss(self, i, pct):
        """Drops pct % of the packets host i sends (0 removes it)."""
        check(0 <= int(pct) <= 100, "loss is a percentage: %r" % pct)
        p = self.port(self._idx(i))
        if int(pct):
            self.state["loss"][p] = int(pct)
        else:
            self.state["loss"].pop(p, None)
        self._apply_nft()

    def _apply_nft(self):
        rules = []
        for a, b in self.state["cuts"]:
            rules.append('iifname "%s" oifname "%s" drop' % (a, b))
        for p, pct in sorted(self.state["loss"].items()):
            rules.append('iifname "%s" numgen random mod 100 < %d drop' % (p, pct))
        # one transaction: the table is replaced whole, so no packet sees half a change
        text = ("table bridge olab\ndelete table bridge olab\ntable bridge olab {\n chain links {\n"
                "  type filter hook forward priority -200; policy accept;\n%s }\n}\n" % "".join(
                    "  %s\n" % r for r in rules))
        self._sw(["nft", "-f", "-"], input=text)
        self._save()

    @_locked
    def rate(self, i, kbit):
        """Caps what host i sends at kbit kbit/s (tbf on its lab0; 0 or None removes it)."""
        i = self._idx(i)
        p = self.port(i)
        if kbit:
            kbit = int(kbit)
            check(kbit > 0, "rate: kbit/s > 0: %r" % kbit)
            burst = max(1600, kbit * 1000 // 8 // 100)  # 10 ms at the rate, at least a packet
            self.host_run(i, ["tc", "qdisc", "replace", "dev", "lab0", "root", "tbf", "rate", "%dkbit" % kbit,
                              "burst", str(burst), "latency", "400ms"])
            self.state["rate"][p] = kbit
        else:
            self.host_run(i, ["tc", "qdisc", "del", "dev", "lab0", "root"], check_rc=False)
            self.state["rate"].pop(p, None)
        self._save()

    @_locked
    def delay(self, i, ms, jitter_ms=0):
        """Every IPv4 packet host i sends waits ms (+- jitter_ms, uniformly; packets keep their
        order) before the switch forwards it. 0 removes it. Implemented by a relay process on
        the switch that holds the packets an NFQUEUE rule hands it."""
        i = self._idx(i)
        p = self.port(i)
        ms, jitter_ms = float(ms), float(jitter_ms)
        check(ms >= 0 and 0 <= jitter_ms <= ms, "delay: 0 <= jitter (%s) <= ms (%s)" % (jitter_ms, ms))
        self._stop_delay(p)
        if ms:
            self._sw(["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"])
            cmd = ["nsenter", "--net=" + self.netns_path("sw"), "--", sys.executable, os.path.abspath(__file__),
                   "_delay", str(i + 1), str(ms), str(jitter_ms), self.name]
            log = open(os.path.join(self.dir, "delay-%s.log" % p), "w")
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            log.close()
            self.state["pids"][p] = proc.pid
            self.state["delay"][p] = [ms, jitter_ms]
            self._save()
            # the rule only once the relay listens: before, --queue-bypass lets packets through
            deadline = time.time() + 5
            while time.time() < deadline:
                if proc.poll() is not None:
                    raise Fail("delay relay for %s exited: %s" % (p, open(os.path.join(self.dir, "delay-%s.log" % p)).read()))
                if os.path.exists(os.path.join(self.dir, "delay-%s.ready" % p)):
                    break
                time.sleep(0.01)
            else:
                raise Fail("delay relay for %s did not start" % p)
            self._sw(["iptables", "-w", "-A", "FORWARD", "-m", "physdev", "--physdev-in", p, "-j", "NFQUEUE",
                      "--queue-num", str(i + 1), "--queue-bypass"])
        self._save()

    def _stop_delay(self, p):
        if p in self.state["delay"]:
            i = int(p[1:]) - 1
            self._sw(["iptables", "-w", "-D", "FORWARD", "-m", "physdev", "--physdev-in", p, "-j", "NFQUEUE",
                      "--queue-num", str(i + 1), "--queue-bypass"], check_rc=False)
            del self.state["delay"][p]
        pid = self.state["pids"].pop(p, None)
        if pid:
            _kill_lab_pid(pid, self.name)
        for suffix in ("ready", "log"):
            try:
                os.unlink(os.path.join(self.dir, "delay-%s.%s" % (p, suffix)))
            except OSError:
                pass
        self._save()

    # ---- teardown -----------------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, etype, *exc):
        self.teardown()
        return False

    def teardown(self):
        errors = []
        for c in reversed(self.clusters):
            try:
                c.teardown()
            except Exception as e:  # noqa: BLE001 - the lab goes away all the same
                errors.append(e)
        self.clusters = []
        self.leave_client()
        Lab.destroy(self.name)
        if errors:
            raise errors[0]

    @staticmethod
    def destroy(name):
        """Removes lab `name` and everything in it: processes by PID (the recorded relays,
        then any process still in one of its namespaces), mount namespaces, netns, state.
        Idempotent: also cleans up after a lab that was half made or half removed."""
        d = os.path.join(RUN, name)
        try:
            with open(os.path.join(d, "state.json")) as f:
                pids = json.load(f).get("pids", {}).values()
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            _kill_lab_pid(pid, name)
        prefix = "olab-%s-" % name
        try:
            names = [x for x in os.listdir("/run/netns") if x.startswith(prefix)]
        except OSError:
            names = []
        nsdir = os.path.join(d, "ns")
        mnts = sorted(os.path.join(nsdir, f) for f in os.listdir(nsdir)) if os.path.isdir(nsdir) else []
        inodes = {_ns_inode("/run/netns/" + x) for x in names} | {_ns_inode(m) for m in mnts}
        inodes.discard(None)
        own = os.getpid()
        for _ in range(3):
            victims = []
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == own:
                    continue
                for kind in ("net", "mnt"):
                    if _ns_inode("/proc/%s/ns/%s" % (pid, kind)) in inodes:
                        victims.append(int(pid))
                        break
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not victims:
                break
            time.sleep(0.05)
            harness.reap()
        for m in mnts + [nsdir]:
            try:
                _umount(m, missing_ok=True)
            except OSError:
                pass
        if names:
            subprocess.run(["ip", "-force", "-batch", "-"], input="".join("netns del %s\n" % x for x in names),
                           capture_output=True, text=True)
        shutil.rmtree(d, ignore_errors=True)

    @staticmethod
    def leftovers(name):
        """What of lab `name` is still on the machine (for tests of the lab itself)."""
        out = []
        if os.path.exists(os.path.join(RUN, name)):
            out.append(os.path.join(RUN, name))
        try:
            out += [x for x in os.listdir("/run/netns") if x.startswith("olab-%s-" % name)]
        except OSError:
            pass
        with open("/proc/self/mountinfo") as f:
            out += [l.split()[4] for l in f if os.path.join(RUN, name) in l.split()[4]]
        return out


def _kill_lab_pid(pid, name):
    """Kills a relay of lab `name` by pid, only if that pid still runs this file for it."""
    args = harness.cmdline(pid)
    if not (b"_delay" in args and name.encode() in args and any(a.endswith(b"lab.py") for a in args)):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(200):
        harness.reap()
        if not os.path.exists("/proc/%d" % pid):
            break
        time.sleep(0.005)


# ---- clusters on the lab ------------------------------------------------------------------------

class OnLab:
    """Mixed in before a Cluster class: node i listens on host i's address, every command
    naming a node's data dir runs on that node's host, and the leak checks of
    workload.WorkCluster look inside the host (its links, netns, nft tables and mounts)."""

    def __init__(self, n=0, lab=None, **kw):
        self.lab = lab
        self._hosts = {}  # data dir -> host index
        # a second cluster on the same lab listens on other ports of the same hosts
        self._port = NODE_PORT + 10 * lab.made_clusters
        lab.made_clusters += 1
        super().__init__(n, **kw)

    def _new_node(self, name=None, ip=None):
        self._count += 1
        i = len(self._hosts)
        n = Node(self, name or "n%d" % self._count, self._port, self.lab.host(i))
        n.host = i
        if self.metrics:
            n.metrics = "%s:%d" % (n.ip, self._port + 1)
        self._hosts[n.dir] = i
        return n

    def _host_of(self, args):
        for k, a in enumerate(args[:-1]):
            if a in ("-D", "--data-dir") and str(args[k + 1]) in self._hosts:
                return self._hosts[str(args[k + 1])]
        return None

    def argv(self, args):
        """Commands that start a node (they name its --data-dir) and `debug` commands (cleanup
        takes down the node's networks and mounts) run on the node's host; the others reach
        the node through its Unix socket from wherever the test runs, like a CLI on the
        node's machine would."""
        i = self._host_of(args)
        args = [str(a) for a in args]
        on_host = i is not None and ("--data-dir" in args or "debug" in args[2:3])
        return (self.lab.enter(i) if on_host else []) + super().argv(args)

    def ips(self):
        return [n.ip for n in self.nodes]

    def host_run(self, node, argv, **kw):
        return self.lab.host_run(self.node(node).host, argv, **kw)

    # views of workload.WorkCluster's leak check, from inside the node's host
    _VIEW = "ip -o link show; echo @@; ls /run/netns; echo @@; nft list tables; echo @@; cat /proc/self/mountinfo"

    def _view(self, node, k):
        """Part k (links, netns, nft tables, mounts) of what the node's host shows; during
        teardown one process for all four, read once the node is gone and cleaned up."""
        cache = getattr(self, "_views", None)
        if cache is None or node.name not in cache:
            out = self.host_run(node, ["sh", "-c", self._VIEW]).stdout.split("@@\n")
            if cache is None:
                return out[k]
            cache[node.name] = out
        return cache[node.name][k]

    def _links(self, node):
        return [l.split(":")[1].strip().split("@")[0] for l in self._view(node, 0).splitlines() if ":" in l]

    def _netns_names(self, node):
        return self._view(node, 1).split()

    def _nft_tables(self, node):
        return self._view(node, 2)

    def _mounts(self, node):
        path = os.path.realpath(node.dir)
        mps = [l.split()[4].replace("\\040", " ") for l in self._view(node, 3).splitlines()]
        return [m for m in mps if m == path or m.startswith(path + "/")]

    def _umount(self, node, mp):
        self.host_run(node, ["umount", "-l", mp], check_rc=False)

    def teardown(self):
        self._views = {}
        try:
            super().teardown()
        finally:
            self._views = None
            if self in self.lab.clusters:
                self.lab.clusters.remove(self)
            if getattr(self, "own_lab", False):
                self.lab.teardown()


_classes = {}


def _lab_class(kind):
    if kind not in _classes:
        _classes[kind] = type("Lab" + kind.__name__, (OnLab, kind), {})
    return _classes[kind]


def LabCluster(n=0, kind=Cluster, hosts=None, **kw):
    """A cluster of `kind` on a lab of its own (hosts: how many, default n); tearing the
    cluster down removes the lab. Drop-in for kind(n, **kw)."""
    lab = Lab(hosts if hosts is not None else n)
    try:
        c = _lab_class(kind)(n, lab=lab, **kw)
    except BaseException:
        lab.teardown()
        raise
    c.own_lab = True
    return c


# ---- the delaying relay ------------------------------------------------------------------------

NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4


def _nlattr(t, data):
    a = struct.pack("=HH", 4 + len(data), t) + data
    return a + b"\0" * (-len(a) % 4)


def _nfmsg(kind, queue, attrs, flags=NLM_F_REQUEST):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, 0, 0) + body


def relay(queue, ms, jitter_ms, ready_path):
    """Holds each packet of NFQUEUE `queue` for ms (+- jitter) and then accepts it, never
    before a packet queued earlier (no reordering). Copies no payload: it only needs ids."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((0, 0))
    s.send(_nfmsg(NFQNL_MSG_CONFIG, queue, [_nlattr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0))]))
    s.send(_nfmsg(NFQNL_MSG_CONFIG, queue, [_nlattr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)),
                                           _nlattr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 20000))]))
    open(ready_path, "w").close()
    held = []  # (release time, seq, packet id)
    last = 0.0
    seq = 0
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        s.settimeout(timeout)
        try:
            data = s.recv(1 << 16)
        except (socket.timeout, BlockingIOError):  # a timeout of 0 (a packet due now) is non-blocking
            data = b""
        now = time.monotonic()
        off = 0
        while off + 16 <= len(data):
            ln, typ = struct.unpack_from("=IH", data, off)
            if ln < 16:
                break
            if typ == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                a = off + 20
                while a + 4 <= off + ln:
                    alen, atyp = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if atyp & 0x7fff == NFQA_PACKET_HDR:
                        pid = struct.unpack_from("!I", data, a + 4)[0]
                        d = (ms + random.uniform(-jitter_ms, jitter_ms)) / 1000.0
                        last = max(last, now + d)
                        seq += 1
                        heapq.heappush(held, (last, seq, pid))
                    a += (alen + 3) & ~3
            off += (ln + 3) & ~3
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, pid = heapq.heappop(held)
            s.send(_nfmsg(NFQNL_MSG_VERDICT, queue, [_nlattr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))]))


# ---- command line ----------------------------------------------------------------------------------

def usage():
    return """usage: lab.sh [-n NAME] COMMAND [ARGS]
  up N              a lab of N hosts n1..nN, each running an orch node; n1 creates the
                    cluster, the others join it (data in /var/tmp/orchlab-NAME/nK)
  down              stops the nodes and removes the lab (processes, namespaces, mounts)
  status | ps       hosts, addresses, node pids and the faults in force
  cut A B           no packets between hosts A and B
  oneway A B        packets from A to B dropped, B to A still pass
  isolate A         A cut from every other host (and from a test's client)
  heal [A]          removes the cuts of A (all cuts without A)
  loss A PCT        A loses PCT % of what it sends (0: none)
  rate A KBIT       A sends at most KBIT kbit/s (0: no cap)
  delay A MS [JIT]  what A sends waits MS ms (+- JIT ms) (0: none)
  exec A [CMD...]   runs CMD (default: a shell) on host A, where `orch` talks to A's node
Hosts are 1-based (n1 is host 1). NAME defaults to "lab"."""


def _colour(code, text):
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return text
    return "\033[%sm%s\033[0m" % (code, text)


def _data_dir(name, i):
    return os.path.join("/var/tmp", "orchlab-" + name, "n%d" % (i + 1))


def _node_pid(name, i):
    try:
        with open(os.path.join(_data_dir(name, i), "orch.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if harness.pid_is_orch(pid, _data_dir(name, i)) and harness.pid_alive(pid) else None


def _host_arg(lab, s):
    try:
        k = int(s.lstrip("n"))
    except ValueError:
        raise Fail("not a host: %r (1..%d or n1..n%d)" % (s, lab.hosts, lab.hosts))
    check(1 <= k <= lab.hosts, "no host %s in lab %s (hosts 1..%d)" % (s, lab.name, lab.hosts))
    return k - 1


def cli_up(name, n):
    check(1 <= n <= MAX_HOSTS, "up: 1..%d hosts" % MAX_HOSTS)
    base = os.path.dirname(_data_dir(name, 0))
    check(not os.path.exists(base), "%s exists: lab.sh -n %s down first" % (base, name))
    lab = Lab(n, name=name, client=False)
    try:
        os.makedirs(base)
        env = dict(os.environ)
        token = None
        for i in range(n):
            d = _data_dir(name, i)
            addr = "%s:%d" % (lab.ip(i), NODE_PORT)
            if i == 0:
                args = ["init", "--listen", addr, "--data-dir", d, "--name", "n1", "--detach"]
            else:
                args = ["join", "%s:%d" % (lab.ip(0), NODE_PORT), "--listen", addr, "--data-dir", d, "--name",
                        "n%d" % (i + 1), "--detach"]
            p = subprocess.run(lab.enter(i) + [BIN] + args, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL, env=dict(env, ORCH_TOKEN=token) if token else env)
            if p.returncode:
                raise Fail("n%d: orch %s: %s" % (i + 1, args[0], (p.stderr or p.stdout).strip()[:400]))
            if i == 0:
                lines = [l.strip() for l in p.stdout.splitlines() if l.strip().startswith("ORCH_TOKEN=")]
                check(lines, "orch init printed no join token: %r" % p.stdout)
                token = lines[0].split()[0].split("=", 1)[1]
            print("%s n%d %s:%d pid %s" % (_colour("32", "up"), i + 1, lab.ip(i), NODE_PORT, _node_pid(name, i)))
    except BaseException:
        cli_down(name, quiet=True)
        raise
    print("lab %s: %d hosts; try: scripts/lab.sh%s exec 1 orch nodes" % (name, n, "" if name == "lab" else " -n " + name))


def cli_down(name, quiet=False):
    lab = None
    try:
        lab = Lab(name=name, attach=True)
    except Fail:
        pass
    base = os.path.dirname(_data_dir(name, 0))
    for i in range(lab.hosts if lab else 0):
        pid = _node_pid(name, i)
        if pid:
            harness.kill_pid(pid, _data_dir(name, i), wait=10)
        d = _data_dir(name, i)
        if os.path.isdir(d):
            # containers, cgroups and task networks of the node, from inside its host
            subprocess.run(lab.enter(i) + [BIN, "-D", d, "debug", "cleanup"], capture_output=True, timeout=120)
    Lab.destroy(name)
    shutil.rmtree(base, ignore_errors=True)
    if not quiet:
        print("%s lab %s" % (_colour("33", "down"), name))


def cli_status(lab):
    print("lab %s: switch %s, %d hosts" % (lab.name, lab.ns("sw"), lab.hosts))
    st = lab.state
    for i in range(lab.hosts):
        p = lab.port(i)
        pid = _node_pid(lab.name, i)
        faults = []
        cuts = [b for a, b in st["cuts"] if a == p]
        if cuts:
            faults.append("drops to " + ",".join(cuts))
        if p in st["loss"]:
            faults.append("loss %d%%" % st["loss"][p])
        if p in st["rate"]:
            faults.append("rate %dkbit" % st["rate"][p])
        if p in st["delay"]:
            faults.append("delay %gms+-%g" % tuple(st["delay"][p]))
        print("%-4s %-12s %-14s %s" % (p, lab.ip(i), ("pid %d" % pid) if pid else _colour("31", "no node"),
                                        _colour("31", "; ".join(faults)) if faults else "-"))


def main(argv):
    name = "lab"
    if argv[:1] == ["_delay"]:
        q, ms, jit = int(argv[1]), float(argv[2]), float(argv[3])
        relay(q, ms, jit, os.path.join(RUN, argv[4], "delay-n%d.ready" % q))
        return 0
    if argv[:1] == ["-n"] and len(argv) > 1:
        name, argv = argv[1], argv[2:]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    if cmd not in ("up", "down", "status", "ps", "cut", "oneway", "isolate", "heal", "loss", "rate", "delay", "exec"):
        print("lab.sh: unknown command %r\n%s" % (cmd, usage()), file=sys.stderr)
        return 2
    try:
        if cmd == "up":
            check(len(args) == 1 and args[0].isdigit(), "usage: lab.sh up N")
            cli_up(name, int(args[0]))
            return 0
        if cmd == "down":
            cli_down(name)
            return 0
        lab = Lab(name=name, attach=True)
        if cmd in ("status", "ps"):
            cli_status(lab)
        elif cmd == "cut" and len(args) == 2:
            lab.cut(_host_arg(lab, args[0]), _host_arg(lab, args[1]))
        elif cmd == "oneway" and len(args) == 2:
            lab.cut_oneway(_host_arg(lab, args[0]), _host_arg(lab, args[1]))
        elif cmd == "isolate" and len(args) == 1:
            lab.isolate(_host_arg(lab, args[0]))
        elif cmd == "heal" and len(args) <= 1:
            lab.heal(_host_arg(lab, args[0]) if args else None)
        elif cmd == "loss" and len(args) == 2 and args[1].isdigit():
            lab.loss(_host_arg(lab, args[0]), int(args[1]))
        elif cmd == "rate" and len(args) == 2 and args[1].isdigit():
            lab.rate(_host_arg(lab, args[0]), int(args[1]))
        elif cmd == "delay" and len(args) in (2, 3):
            lab.delay(_host_arg(lab, args[0]), float(args[1]), float(args[2]) if len(args) == 3 else 0)
        elif cmd == "exec" and args:
            i = _host_arg(lab, args[0])
            rest = args[1:] or [os.environ.get("SHELL", "/bin/sh")]
            # on the host, `orch` is this lab's binary and talks to the host's node
            env = dict(os.environ, ORCH_DATA_DIR=_data_dir(name, i),
                       PATH=os.path.dirname(os.path.abspath(BIN)) + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
            os.execvpe("nsenter", lab.enter(i) + rest, env)
        else:
            print(usage(), file=sys.stderr)
            return 2
    except (Fail, ValueError) as e:
        print("lab.sh: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
