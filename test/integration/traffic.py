"""Traffic test helpers (issue 5): a cluster whose nodes listen on distinct loopback
addresses (n1 on 127.0.0.1, n2 on 127.0.0.2, ...), so each node's published ports are
reachable on their own; one-request-per-connection HTTP clients that tell replicas apart by
the demo image's /cgi-bin/id (the container hostname `<service>-<slot>-<taskid>`); a
steady request stream; and runc exec into a task's container.

MeshCluster extends workload.WorkCluster (teardown kills daemons by pid, runs `orch debug
cleanup` and checks for leaks). It also removes the services' virtual addresses from `lo`
(unless something else still listens on one): the nodes add them and nothing takes them
away, neither a node that stops nor `orch debug cleanup`."""
import errno
import os
import random
import socket
import subprocess
import threading
import time

from harness import Fail, check, wait_until
from workload import WorkCluster, runc_ids


def free_published_port(ips, lo=15000, hi=19999):
    """A random port in [lo, hi] that none of ips has bound (published ports must not clash
    with other test clusters on the machine)."""
    for _ in range(200):
        port = random.randint(lo, hi)
        ok = True
        for ip in ips:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((ip, port))
            except OSError as e:
                # not an address of this machine: a lab host (lab.py), a fresh machine
                # of its own where nothing else publishes
                ok = e.errno == errno.EADDRNOTAVAIL
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return port
    raise Fail("no free port in %d-%d on %s" % (lo, hi, ips))


class MeshCluster(WorkCluster):
    """with MeshCluster(3) as c: node i listens on 127.0.0.i."""

    def __init__(self, n=0, **kw):
        self.vips = set()
        super().__init__(n, **kw)

    def _new_node(self, name=None, ip=None):
        """Each node on its own loopback address (127.0.0.N), so the mesh is reached per node."""
        return super()._new_node(name, ip or "127.0.0.%d" % (self._count + 1))

    def ips(self):
        return [n.ip for n in self.nodes]

    def inspect(self, service, node=0):
        v = self.cli(node, "inspect", service)
        v = v[0] if isinstance(v, list) else v
        if v.get("virtual_ip"):
            self.vips.add(v["virtual_ip"])
        return v

    def teardown(self):
        try:  # learn every service's virtual address while a node can still be asked
            for n in self.up()[:1]:
                for v in self.cli(n, "services", timeout=10):
                    self.inspect(v["name"], node=n)
        except Exception as e:  # noqa: BLE001 - teardown goes on; the leak is reported
            print("could not list virtual addresses to remove: %s" % e, flush=True)
        try:
            super().teardown()
        finally:
            for vip in sorted(self.vips):
                # Addresses are 10.<cluster byte>.251.<service>: another cluster on this
                # machine may hold the same one; leave it if anything still listens on it.
                ss = subprocess.run(["ss", "-Htln", "src", vip], capture_output=True, text=True)
                if ss.returncode == 0 and not ss.stdout.strip():
                    subprocess.run(["ip", "addr", "del", vip + "/32", "dev", "lo"], capture_output=True)


# ---- HTTP, one request per connection -------------------------------------------------------

def http_once(ip, port, path="/cgi-bin/id", timeout=5.0):
    """GET path on a new connection (HTTP/1.0); returns the body, stripped. Raises on any
    failure (refused, reset, timeout, non-200)."""
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, ip)).encode())
        return read_response(s)


def read_response(s):
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    head, sep, body = data.partition(b"\r\n\r\n")
    check(sep, "incomplete HTTP response: %r" % data[:200])
    status = head.split(b"\r\n", 1)[0]
    check(b" 200 " in status + b" ", "HTTP status %r" % status)
    return body.decode(errors="replace").strip()


def spread(ip, port, count, workers=8):
    """count requests (new connection each) from `workers` threads; returns
    ({hostname: n}, [errors])."""
    counts, errors = {}, []
    lock = threading.Lock()
    left = [count]

    def worker():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                h = http_once(ip, port)
                with lock:
                    counts[h] = counts.get(h, 0) + 1
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    errors.append("%s: %s" % (type(e).__name__, e))
    ts = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return counts, errors


class Stream:
    """A steady stream of `rate` requests/s, each on its own connection and thread (so a
    slow one does not delay the next). results: (start time, hostname or None, error)."""

    def __init__(self, ip, port, rate, timeout=5.0):
        self.ip, self.port, self.rate, self.timeout = ip, port, rate, timeout
        self.results = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = []
        self.runner = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.runner.start()
        return self

    def _one(self, t0):
        try:
            h, e = http_once(self.ip, self.port, timeout=self.timeout), None
        except Exception as ex:  # noqa: BLE001
            h, e = None, "%s: %s" % (type(ex).__name__, ex)
        with self.lock:
            self.results.append((t0, h, e))

    def _run(self):
        nxt = time.time()
        while not self.stop_flag.is_set():
            t = threading.Thread(target=self._one, args=(time.time(),), daemon=True)
            t.start()
            self.threads.append(t)
            nxt += 1.0 / self.rate
            time.sleep(max(0.0, nxt - time.time()))

    def stop(self):
        self.stop_flag.set()
        self.runner.join()
        for t in self.threads:
            t.join(self.timeout + 2)
        return sorted(self.results, key=lambda r: r[0])


# ---- containers -------------------------------------------------------------------------------

def container(c, node, task_id):
    node = c.node(node)
    ids = [i for i in runc_ids(node.dir) if i.endswith("-%d" % task_id)]
    check(len(ids) == 1, "%s: no single container for task %d: %r" % (node.name, task_id, runc_ids(node.dir)))
    return ids[0]


def runc_exec(c, node, cid, *argv):
    node = c.node(node)
    p = subprocess.run(["runc", "--root", os.path.join(node.dir, "runc"), "exec", cid] + list(argv),
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, "runc exec %s %s: %s" % (cid, argv, p.stderr.strip()))
    return p.stdout


def hostname_of(task):
    return "%s-%d-%d" % (task["service"], task["slot"], task["id"])


def wait_ready(c, service, n, node=0, timeout=30):
    """Waits until n tasks of service are running and ready; returns them."""
    def ok():
        ts = [t for t in c.ps(node, service) if t["desired"] == "running" and t["state"] == "running"]
        return [ts] if len(ts) == n and all(t.get("ready") == "ready" for t in ts) else None
    return wait_until(ok, timeout, "%d ready tasks of %s" % (n, service), interval=0.2)[0]
