"""Integration harness: real orch daemons on 127.0.0.1, real sockets, real disks.

A Cluster starts nodes with `orch init/join --detach` on free ports and temporary data
directories, drives them through the CLI (and, for what the CLI cannot do, through the
node's own wire protocol), and on teardown kills every daemon it started BY PID and removes
its directories, also when the test failed. Daemons are recorded in TEST_TMP/pids so the
runner can still kill them if the test process itself was killed on timeout."""
import ctypes
import json as jsonlib
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import mpack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ORCH_BIN", os.path.join(ROOT, "zig-out", "bin", "orch"))

# Error codes of src/util/err.h that tests look at.
E_NOLEADER_NAMES = ("no leader", "retry")


class Fail(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def become_subreaper():
    """Orphaned daemons (orch --detach double-forks away from us) are re-parented to this
    process, so it can reap them after kill -9 and see their real exit."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass


EXITS = {}  # pid -> how a reaped child ended ("exit 1", "signal 6"), for diagnostics


def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        EXITS[pid] = ("signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status)
                      else "exit %d" % os.WEXITSTATUS(status))


def runtime_children():
    """PIDs of runc/crun commands (not a container's init) re-parented to this process: a
    node killed with SIGKILL leaves the runtime command it was running going on."""
    me, found = os.getpid(), []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and os.path.basename(argv[0]) in (b"runc", b"crun") and argv[1:2] != [b"init"]:
            found.append(int(d))
    return found


def wait_runtime_children(timeout=15.0):
    """Lets the runtime commands a killed node left behind finish (a `runc create` that
    completes after the clean-up looked would leave its container behind), then reaps."""
    deadline = time.time() + timeout
    while runtime_children() and time.time() < deadline:
        reap()
        time.sleep(0.05)
    reap()


def release_net_tag(data_dir):
    """Drops the machine-wide claim (/run/orch/net-tags/TAG, src/agent/nettag.c) of the
    network tag a node's data dir keeps, if the claim is that dir's: every node claims one
    when it gets its subnet, tasks or not."""
    try:
        with open(os.path.join(data_dir, "net-tag")) as f:
            tag = f.read().split()[0]
        claim = os.path.join("/run/orch/net-tags", tag)
        with open(claim) as f:
            holder = f.read()
        if holder == data_dir:
            os.unlink(claim)
    except (OSError, IndexError):
        pass


def pid_alive(pid):
    reap()
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    if st[st.rindex(")") + 2] not in "ZX":
        return True
    # A killed multithreaded process shows its leader as a zombie while its other threads
    # (libuv workers in a blocking call) still exit, with its sockets still open: it is
    # gone only when no thread is left.
    try:
        return len(os.listdir("/proc/%d/task" % pid)) > 1
    except OSError:
        return False


def cmdline(pid):
    """The arguments of process pid (bytes), [] if it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def pid_is_orch(pid, data_dir):
    """Guards against PID reuse: only a process running our binary on our data dir is ours."""
    args = cmdline(pid)
    return bool(args) and os.path.basename(args[0]) == b"orch" and data_dir.encode() in b" ".join(args)


def kill_pid(pid, data_dir, sig=signal.SIGKILL, wait=5.0):
    if not pid_is_orch(pid, data_dir):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.time() + wait
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.01)
    return not pid_alive(pid)


def free_port(ip="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def wait_until(fn, timeout, what, interval=0.05):
    """Polls fn until it returns something truthy and returns it. On timeout fails with
    what was awaited and the last value (or exception) seen."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - the last error is the failure reason
            last = "%s: %s" % (type(e).__name__, e)
        if time.time() >= deadline:
            raise Fail("timed out after %.1fs waiting for %s (last: %s)" % (timeout, what, str(last)[:400]))
        time.sleep(interval)


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return f.readlines()[-n:]
    except OSError:
        return []


def pty_read(fd, until=None, timeout=10):
    """Reads a pty master until `until` (bytes) has come, or its other side has closed
    (until=None), or timeout seconds; returns what was read."""
    import select
    out = b""
    deadline = time.time() + timeout
    while (until is None or until not in out) and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: every slave descriptor has closed
                break
            if not chunk:
                break
            out += chunk
    return out


class CliError(Fail):
    def __init__(self, args, proc):
        self.proc = proc
        super().__init__("orch %s exited %d: %s" % (" ".join(map(str, args)), proc.returncode,
                                                    (proc.stderr or proc.stdout).strip()[:400]))


class Node:
    def __init__(self, cluster, name, port, ip="127.0.0.1"):
        self.cluster = cluster
        self.name = name
        self.port = port
        self.ip = ip
        self.addr = "%s:%d" % (ip, port)
        self.dir = os.path.join(cluster.tmp, name)
        self.metrics = None  # IP:PORT of its plain /metrics listener (Cluster(metrics=True))
        self.pid = None
        self.id = None

    def __repr__(self):
        return "<node %s %s pid %s>" % (self.name, self.addr, self.pid)

    @property
    def log(self):
        return os.path.join(self.dir, "orch.log")

    @property
    def sock(self):
        return os.path.join(self.dir, "orch.sock")

    def read_pid(self):
        with open(os.path.join(self.dir, "orch.pid")) as f:
            return int(f.read().strip())

    def alive(self):
        return self.pid is not None and pid_alive(self.pid)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Cluster:
    """with Cluster(3) as c: ... — nodes n1..nN, n1 created the cluster."""

    def __init__(self, n=0, env=None, failure_timeout=None, timeout=30, metrics=False):
        become_subreaper()
        base = os.environ.get("TEST_TMP") or tempfile.gettempdir()
        self.tmp = tempfile.mkdtemp(prefix="c", dir=base)
        self.env = dict(os.environ)
        self.env.pop("ORCH_TRACE", None)
        self.env.update(env or {})
        self.failure_timeout = failure_timeout
        # each node also serves /metrics and /healthz in plain HTTP on node.metrics
        # (--metrics-listen): the node port serves them only to clients with a certificate
        self.metrics = metrics
        self.nodes = []
        self.token = None  # the manager join token
        self.worker_token = None
        self.timeout = timeout
        self._count = 0
        if n:
            try:
                self.start(n)
            except BaseException:
                self.teardown()
                raise

    def __enter__(self):
        return self

    def __exit__(self, etype, *exc):
        if etype is not None and not issubclass(etype, KeyboardInterrupt):
            print(self.diagnostics(), flush=True)
        self.teardown()
        return False

    # ---- processes -----------------------------------------------------------------------

    def argv(self, args):
        """The command line that runs orch with args (a lab cluster runs it on the node's host)."""
        return [BIN] + [str(a) for a in args]

    def run(self, *args, timeout=None, env=None):
        """Runs the orch binary; returns the CompletedProcess."""
        return subprocess.run(self.argv(args), capture_output=True, text=True,
                              timeout=timeout or self.timeout, env=env or self.env, stdin=subprocess.DEVNULL)

    def _record(self, node):
        node.pid = node.read_pid()
        with open(os.path.join(os.environ.get("TEST_TMP") or self.tmp, "pids"), "a") as f:
            f.write("%d %s\n" % (node.pid, node.dir))

    def _new_node(self, name=None, ip=None):
        self._count += 1
        ip = ip or "127.0.0.1"
        n = Node(self, name or "n%d" % self._count, free_port(ip), ip)
        if self.metrics:
            n.metrics = "%s:%d" % (ip, free_port(ip))
        return n

    def _start_args(self, n):
        return ["--metrics-listen", n.metrics] if n.metrics else []

    def init(self, name=None, extra=(), ip=None):
        n = self._new_node(name, ip)
        args = ["init", "--listen", n.addr, "--data-dir", n.dir, "--name", n.name, "--detach"] + self._start_args(n)
        if self.failure_timeout:
            args += ["--failure-timeout", self.failure_timeout]
        p = self.run(*(args + list(extra)))
        if p.returncode:
            raise CliError(args, p)
        joins = [line.strip() for line in p.stdout.splitlines() if line.strip().startswith("ORCH_TOKEN=")]
        check(len(joins) == 2, "orch init printed no manager and worker join lines: %r" % p.stdout)
        self.token, self.worker_token = [j.split()[0].split("=", 1)[1] for j in joins]
        check(self.token.startswith("ORCH2-") and self.worker_token.startswith("ORCH2-"),
              "orch init printed no join tokens: %r" % p.stdout)
        self._record(n)
        self.nodes.append(n)
        return n

    def token_env(self, token=None):
        """The environment a join gets its token from (never the command line)."""
        return dict(self.env, ORCH_TOKEN=token or self.token)

    def join(self, name=None, via=None, token=None, extra=(), ip=None):
        n = self._new_node(name, ip)
        target = (via or self.nodes[0]).addr
        args = ["join", target, "--listen", n.addr, "--data-dir", n.dir,
                "--name", n.name, "--detach"] + self._start_args(n) + list(extra)
        p = self.run(*args, env=self.token_env(token))
        if p.returncode:
            raise CliError(args, p)
        self._record(n)
        self.nodes.append(n)
        return n

    def join_many(self, ips, via=None):
        """Joins one node per address in `ips`, all at once (parallel `orch join --detach`).
        Returns [(node, seconds its join took, its stdout)] in the order the joins returned;
        fails if any join failed."""
        target = (via or self.nodes[0]).addr
        procs = []
        for ip in ips:
            n = self._new_node(None, ip)
            self.nodes.append(n)  # also when its join fails: teardown kills what it started
            args = ["join", target, "--listen", n.addr, "--data-dir", n.dir,
                    "--name", n.name, "--detach"] + self._start_args(n)
            procs.append((n, args, time.time(), subprocess.Popen(
                self.argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.token_env(),
                stdin=subprocess.DEVNULL)))
        done, failed = [], []
        pending = list(procs)
        deadline = time.time() + 120
        while pending and time.time() < deadline:
            for item in list(pending):
                n, args, t0, p = item
                if p.poll() is None:
                    continue
                pending.remove(item)
                out, errout = p.communicate()
                if p.returncode:
                    failed.append("%s: exit %d: %s" % (n.name, p.returncode, (errout or out).strip()[:300]))
                    continue
                self._record(n)
                done.append((n, time.time() - t0, out + errout))
            time.sleep(0.005)
        for n, _, _, p in pending:
            p.kill()
            p.communicate()
            failed.append("%s: join did not return" % n.name)
        check(not failed, "%d of %d joins failed: %s" % (len(failed), len(procs), "; ".join(failed[:5])))
        return done

    def start(self, n):
        self.init()
        for _ in range(n - 1):
            self.join()
        self.wait_members(self.nodes)
        return self.nodes

    def kill9(self, node):
        node = self.node(node)
        check(node.alive(), "kill9: %s is not running" % node.name)
        check(kill_pid(node.pid, node.dir), "kill9: %s (pid %s) did not die" % (node.name, node.pid))

    def stop(self, node):
        """SIGTERM: a clean stop."""
        node = self.node(node)
        kill_pid(node.pid, node.dir, signal.SIGTERM, wait=10)
        check(not node.alive(), "%s did not stop on SIGTERM" % node.name)

    def restart(self, node):
        """orch init on an existing data dir resumes the node (no re-join)."""
        node = self.node(node)
        check(not node.alive(), "restart: %s is still running" % node.name)
        args = ["init", "--listen", node.addr, "--data-dir", node.dir, "--name", node.name, "--detach"]
        p = self.run(*args)
        if p.returncode:
            raise CliError(args, p)
        check("resuming node" in p.stdout + p.stderr, "restart of %s did not resume: %r" % (node.name, p.stdout))
        self._record(node)
        return node

    def teardown(self):
        for n in self.nodes:
            pids = {n.pid} if n.pid else set()
            try:
                pids.add(n.read_pid())
            except (OSError, ValueError):
                pass
            for pid in pids:
                kill_pid(pid, n.dir)
        reap()
        for n in self.nodes:
            release_net_tag(n.dir)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def diagnostics(self):
        out = []
        for n in self.nodes:
            state = "up" if n.alive() else "down" + (", ended by %s" % EXITS[n.pid] if n.pid in EXITS else "")
            out.append("--- %s (%s, pid %s, %s) log tail:" % (n.name, n.addr, n.pid, state))
            out += ["    " + l.rstrip() for l in tail(n.log)]
        return "\n".join(out)

    # ---- CLI -----------------------------------------------------------------------------

    def node(self, ref):
        if isinstance(ref, Node):
            return ref
        if isinstance(ref, int):
            return self.nodes[ref]
        for n in self.nodes:
            if n.name == ref:
                return n
        raise Fail("no node %r" % ref)

    def cli(self, node, *args, json=True, check=True, timeout=None):
        """orch -D DIR ARGS... [-o json]: parsed JSON (json=True) or the CompletedProcess."""
        node = self.node(node)
        argv = ["-D", node.dir] + list(args) + (["-o", "json"] if json else [])
        p = self.run(*argv, timeout=timeout)
        if check and p.returncode:
            raise CliError(argv, p)
        if not json:
            return p
        try:
            return jsonlib.loads(p.stdout)
        except ValueError:
            raise Fail("orch %s: output is not JSON: %r" % (" ".join(argv), p.stdout[:300]))

    def status(self, node):
        return self.cli(node, "status")

    def node_list(self, node):
        return self.cli(node, "nodes")

    def up(self):
        return [n for n in self.nodes if n.alive()]

    def leader(self, among=None, timeout=10):
        """The node all of `among` (default: running nodes) agree leads; waits for it."""
        among = [self.node(n) for n in (among or self.up())]

        def agreed():
            sts = [self.status(n) for n in among]
            lids = {s["leader_id"] for s in sts}
            if len(lids) != 1 or "" in lids:
                return None
            lid = lids.pop()
            for n, s in zip(among, sts):
                if s["node_id"] == lid and s["raft_state"] == "leader":
                    return n
            return None
        return wait_until(agreed, timeout, "nodes %s to agree on a leader" % [n.name for n in among])

    def wait_members(self, members, timeout=15):
        """Every member sees all of them in `orch nodes` and agrees on the leader."""
        names = sorted(n.name for n in members)

        def seen():
            for n in members:
                got = sorted(x["name"] for x in self.node_list(n))
                if got != names:
                    return None
            return True
        wait_until(seen, timeout, "every node to list %s" % names)
        return self.leader(members)

    def converged(self, among=None, timeout=15):
        """Waits until the nodes agree on applied index and state hash; returns a status."""
        among = [self.node(n) for n in (among or self.up())]
        state = {}

        def same():
            sts = [self.status(n) for n in among]
            state["last"] = [(n.name, s["applied_index"], s["revision"], s["state_hash"][:12]) for n, s in zip(among, sts)]
            if len({(s["applied_index"], s["state_hash"]) for s in sts}) == 1:
                return sts[0]
            return None
        try:
            return wait_until(same, timeout, "nodes %s to converge" % [n.name for n in among])
        except Fail as e:
            raise Fail("%s; per node (applied, revision, hash): %s" % (e, state.get("last")))

    def roles(self, node):
        return {x["name"]: x["role"] for x in self.node_list(node)}

    def write_bench(self, node, count, inflight=1):
        """orch debug write-bench: replicated kv.set writes through `node`; returns its
        figures (writes, failed, ops_per_sec, p50_us, ...) as a dict of numbers."""
        p = self.cli(node, "debug", "write-bench", "--count", str(count), "--inflight", str(inflight), json=False, timeout=120)
        fig = dict(kv.split("=", 1) for kv in p.stdout.split() if "=" in kv)
        check(int(fig.get("writes", -1)) == count and int(fig.get("failed", -1)) == 0,
              "write-bench on %s: %r" % (self.node(node).name, p.stdout.strip()))
        return {k: float(v) for k, v in fig.items()}


# ---- the node's wire protocol, spoken directly ---------------------------------------------

class Conn:
    """A framed connection: Unix socket (local CLI path) or authenticated TCP (node port)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""
        self.next_id = 0

    @classmethod
    def local(cls, node, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(node.sock)
        return cls(s)

    @classmethod
    def raw_tcp(cls, node, timeout=10):
        s = socket.create_connection((node.ip, node.port), timeout=timeout)
        return cls(s)

    @classmethod
    def tls_raw(cls, node, creds=None, timeout=10, ca=None):
        """A TLS 1.3 connection to node's port: the client certificate of creds (a Node, or a
        directory holding node.crt and node.key; None: none, an anonymous joiner), the
        server verified against ca (default: the CA bundle of creds, else of node)."""
        d = creds if isinstance(creds, str) or creds is None else tls_dir(creds)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.load_verify_locations(ca or os.path.join(d or tls_dir(node), "ca.crt"))
        if d:
            ctx.load_cert_chain(os.path.join(d, "node.crt"), os.path.join(d, "node.key"))
        s = socket.create_connection((node.ip, node.port), timeout=timeout)
        try:
            return cls(ctx.wrap_socket(s))
        except BaseException:
            s.close()
            raise

    @classmethod
    def tcp(cls, node, creds, timeout=10, extra=b"", kind=2):
        """An RPC (kind 2) or raft (kind 1) connection like a peer node's (src/net/auth.h):
        TLS with creds' certificate, then the preamble; extra is what it carries (a node's
        own links send their 8-byte id, which must be its certificate's)."""
        c = cls.tls_raw(node, creds, timeout)
        c.s.sendall(b"ORCH" + bytes([2, kind]) + struct.pack(">H", len(extra)) + extra)
        check(c.recv_exact(1) == b"K", "preamble not acknowledged")
        return c

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def recv_exact(self, n):
        while len(self.buf) < n:
            b = self.s.recv(65536)
            if not b:
                raise EOFError("connection closed after %d of %d bytes" % (len(self.buf), n))
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_raw(self, data):
        self.s.sendall(data)

    def send_garbage(self, data):
        """send_raw for bytes the node may refuse before it has read them all: a node that
        closes mid-way (as it should) is not an error here; outcome() then says 'closed'."""
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            pass

    def send(self, req):
        if "id" not in req:
            self.next_id += 1
            req = dict(req, id=self.next_id)
        self.s.sendall(mpack.frame(mpack.packb(req)))
        return req["id"]

    def read(self):
        n = struct.unpack(">I", self.recv_exact(4))[0]
        return mpack.unpackb(self.recv_exact(n))

    def call(self, op, **fields):
        rid = self.send(dict(op=op, **fields))
        while True:
            r = self.read()
            if r.get("id") in (rid, 0, None):
                return r

    def outcome(self, timeout=5):
        """After sending garbage: 'closed', or the error reply the node sent (then it must close)."""
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return "closed"
        except socket.timeout:
            return "open"
        if not data:
            return "closed"
        return data


def parse_token(token):
    """ORCH2-<cluster id>-<CA fingerprint>-<secret> -> (cluster id, fingerprint, secret), hex."""
    parts = token.split("-")
    check(len(parts) == 4 and parts[0] == "ORCH2", "not a token: %r" % token)
    return parts[1], parts[2], parts[3]


def tls_dir(node):
    return os.path.join(node.dir, "tls")


def tls_context(creds):
    """An ssl context for https://node/... (metrics, health) with creds' node certificate:
    the node port serves HTTP only inside TLS, to holders of a certificate of the cluster."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(os.path.join(tls_dir(creds), "ca.crt"))
    ctx.load_cert_chain(os.path.join(tls_dir(creds), "node.crt"), os.path.join(tls_dir(creds), "node.key"))
    return ctx
