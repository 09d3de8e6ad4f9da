"""Workload test helpers (issue 3): a Cluster that runs real containers and proves on
teardown that nothing leaked, spec/image builders, and `orch ps`/HTTP helpers.

WorkCluster extends harness.Cluster: teardown kills the daemons (by pid), runs
`orch -D DIR debug cleanup` for every node, then checks that no runc container, mount,
cgroup, netns, veth, bridge or nft table of those nodes is left. A leak fails the test
(unless it already failed: then the leak is printed and the first failure stands)."""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.request

from harness import BIN, ROOT, Cluster, Fail, check, kill_pid, reap, wait_runtime_children, wait_until

DEMO = "demo:latest"
_demo_dir = None


def require_root_and_runc():
    check(os.geteuid() == 0, "workload tests need root (containers through runc)")
    check(shutil.which("runc"), "workload tests need runc in PATH")
    check(os.path.exists(BIN), "no orch binary at %s: build it first" % BIN)


def demo_image(tmp):
    """Builds the demo image once per process with scripts/build-demo-image.sh."""
    global _demo_dir
    if _demo_dir is None:
        out = os.path.join(tmp, "img")
        p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "build-demo-image.sh"), out], capture_output=True,
                           text=True, timeout=120)
        check(p.returncode == 0, "build-demo-image.sh failed: %s" % p.stderr.strip()[-400:])
        _demo_dir = out
    return _demo_dir


def wait_gone(pid, timeout=10):
    """harness.kill_pid returns once the process is a zombie; `orch debug cleanup` refuses
    to run while the pid exists, so wait until it is reaped (its threads take a moment)."""
    deadline = time.time() + timeout
    while os.path.exists("/proc/%d" % pid) and time.time() < deadline:
        reap()
        time.sleep(0.01)


def runc_ids(node_dir):
    root = os.path.join(node_dir, "runc")
    if not os.path.isdir(root):
        return []
    p = subprocess.run(["runc", "--root", root, "list", "-q"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, "runc --root %s list: %s" % (root, p.stderr.strip()))
    return sorted(l for l in p.stdout.split() if l)


def mounts_under(path):
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


def node_cgroups(node_id):
    """The cgroup directories of a node's tasks: one per controller on a cgroup v1 host,
    one in the unified hierarchy on a v2 host (runtime/cgroup_stats.h)."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return ["/sys/fs/cgroup/orch/%s" % node_id]
    return ["/sys/fs/cgroup/%s/orch/%s" % (ctl, node_id) for ctl in ("memory", "pids", "cpu,cpuacct")]


class WorkCluster(Cluster):
    """A Cluster whose nodes run containers; teardown cleans up and checks for leaks."""

    def __init__(self, n=0, **kw):
        require_root_and_runc()
        self.leaks = []
        self.node_ids = {}
        self._failed = False
        super().__init__(n, **kw)
        for node in self.nodes:
            self.node_ids[node.name] = self.status(node)["node_id"]

    def __exit__(self, etype, *exc):
        self._failed = etype is not None
        return super().__exit__(etype, *exc)

    def load_demo(self, node=0):
        img = demo_image(self.tmp_base())
        return self.cli(node, "image", "load", os.path.join(img, "demo-docker.tar"), json=False)

    @staticmethod
    def tmp_base():
        return os.environ.get("TEST_TMP") or "/tmp"

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def deploy(self, node, path, check_rc=True):
        return self.cli(node, "deploy", "-f", path, json=False, check=check_rc)

    def ps(self, node=0, service=None, all_tasks=False):
        args = ["ps"] + (["-a"] if all_tasks else []) + ([service] if service else [])
        return self.cli(node, *args)

    def services(self, node=0):
        return self.cli(node, "services")

    def images(self, node=0):
        return self.cli(node, "images")

    # ---- teardown ---------------------------------------------------------------------------

    def _net_tag(self, node):
        try:
            with open(os.path.join(node.dir, "net-tag")) as f:
                return f.read().split()[0]
        except (OSError, IndexError):
            return None

    # What the leak check sees of a node's machine; a lab cluster (lab.OnLab) looks inside
    # the node's own host instead.
    def _links(self, node):
        return os.listdir("/sys/class/net")

    def _netns_names(self, node):
        try:
            return os.listdir("/var/run/netns")
        except OSError:
            return []

    def _nft_tables(self, node):
        return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout

    def _mounts(self, node):
        return mounts_under(node.dir)

    def _umount(self, node, mp):
        subprocess.run(["umount", "-l", mp], capture_output=True)

    def _find_leaks(self):
        leaks = []
        for n in self.nodes:
            ids = runc_ids(n.dir)
            if ids:
                leaks.append("%s: runc containers left: %s" % (n.name, ids))
            m = self._mounts(n)
            if m:
                leaks.append("%s: mounts left: %s" % (n.name, m[:5]))
            nid = self.node_ids.get(n.name)
            if nid:
                for cg in node_cgroups(nid):
                    if os.path.exists(cg):
                        leaks.append("%s: cgroup %s left" % (n.name, cg))
            tag = self._net_tag(n)
            if tag:
                links = [l for l in self._links(n) if l == "orch" + tag or l.startswith("v%s-" % tag)]
                if links:
                    leaks.append("%s: interfaces left: %s" % (n.name, links))
                ns = [x for x in self._netns_names(n) if x.startswith("orch-%s-" % tag)]
                if ns:
                    leaks.append("%s: network namespaces left: %s" % (n.name, ns))
                tables = self._nft_tables(n)
                if ("table ip orch_%s\n" % tag) in tables + "\n":
                    leaks.append("%s: nft table orch_%s left" % (n.name, tag))
                if ("table bridge orch_%s\n" % tag) in tables + "\n":
                    leaks.append("%s: nft bridge table orch_%s left" % (n.name, tag))
        return leaks

    def teardown(self):
        for n in self.nodes:
            pids = {n.pid} if n.pid else set()
            try:
                pids.add(n.read_pid())
            except (OSError, ValueError):
                pass
            for pid in pids:
                kill_pid(pid, n.dir)
                wait_gone(pid)
        wait_runtime_children()
        cleanup_errors = []
        for n in self.nodes:
            if not os.path.isdir(n.dir):
                continue
            p = self.run("-D", n.dir, "debug", "cleanup", timeout=60)
            if p.returncode:
                cleanup_errors.append("%s: orch debug cleanup exited %d: %s" % (n.name, p.returncode, p.stderr.strip()[:300]))
        self.leaks = cleanup_errors + self._find_leaks()
        for n in self.nodes:  # never rmtree through a mount
            for mp in reversed(self._mounts(n)):
                self._umount(n, mp)
        super().teardown()
        if self.leaks:
            msg = "teardown found leaks: " + "; ".join(self.leaks)
            if self._failed:
                print(msg, flush=True)
            else:
                raise Fail(msg)


# ---- waiting on tasks ---------------------------------------------------------------------

def live(tasks):
    """Tasks meant to run and not finished."""
    return [t for t in tasks if t["desired"] == "running" and t["state"] not in ("complete", "failed", "shutdown",
                                                                                 "rejected", "orphaned")]


def running(tasks):
    return [t for t in tasks if t["state"] == "running" and t["desired"] == "running"]


def per_node(tasks):
    out = {}
    for t in tasks:
        out[t["node"]] = out.get(t["node"], 0) + 1
    return out


def wait_running(c, service, n, timeout=30, node=0):
    """Waits until exactly n tasks of service are running (desired running) and no other
    task of it is still alive in any state; returns the running tasks."""
    def ok():
        ts = c.ps(node, service, all_tasks=True)
        r = running(ts)
        others = [t for t in ts if t not in r and t["state"] not in ("complete", "failed", "shutdown", "rejected",
                                                                      "orphaned")]
        return [r] if len(r) == n and not others else None
    return wait_until(ok, timeout, "%d running tasks of %s and nothing else alive" % (n, service), interval=0.2)[0]


def net_diag(c, task):
    """What the host sees of a task's network, for a failure message."""
    node = c.node(task["node"])
    tag = c._net_tag(node)
    port = task["endpoint"].split("->")[0].split(":")[1] if task.get("endpoint") else ""
    cmds = [["ip", "-br", "addr", "show", "to", task["ip"] + "/24"], ["ip", "route", "get", task["ip"]],
            ["nft", "list", "table", "ip", "orch_%s" % tag]]
    out = ["task %s on %s (tag %s, ip %s, host port %s), runc: %s" % (task["id"], node.name, tag, task["ip"], port,
                                                                      runc_ids(node.dir))]
    for cmd in cmds:
        p = subprocess.run(cmd, capture_output=True, text=True)
        out.append("$ %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    p = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True)
    out.append("host port %s appears in %d nft lines" % (port, sum(1 for l in p.stdout.splitlines() if port and port in l)))
    return "\n".join(out)


def http_get(endpoint, path="/cgi-bin/id", timeout=3):
    """GET through a task endpoint "127.0.0.1:PORT->80/tcp" (the first one)."""
    hostport = endpoint.split(",")[0].split("->")[0]
    with urllib.request.urlopen("http://%s%s" % (hostport, path), timeout=timeout) as r:
        check(r.status == 200, "GET %s%s: status %d" % (hostport, path, r.status))
        return r.read().decode().strip()


# ---- crafted images -------------------------------------------------------------------------

def _sha(b):
    return hashlib.sha256(b).hexdigest()


def tar_bytes(entries):
    """entries: (name, kind, data_or_target) with kind file|dir|symlink|hardlink."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, val in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1704067200
            ti.uid = ti.gid = 0
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, val, 0o777
                tf.addfile(ti)
            elif kind == "hardlink":
                ti.type, ti.linkname, ti.mode = tarfile.LNKTYPE, val, 0o644
                tf.addfile(ti)
            else:
                data = val.encode() if isinstance(val, str) else val
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def _config(diff_ids):
    return json.dumps({"architecture": "amd64", "os": "linux",
                       "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
                       "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]}},
                      sort_keys=True).encode()


def docker_archive(path, tag, layers):
    """A docker-archive (`docker save` layout) with valid digests: config named by its
    sha256, diff_ids the sha256 of each (uncompressed) layer tar."""
    cfg = _config([_sha(l) for l in layers])
    cfg_name = _sha(cfg) + ".json"
    names = ["%s/layer.tar" % _sha(l) for l in layers]
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": names}]).encode()
    files = [("manifest.json", manifest), (cfg_name, cfg)] + list(zip(names, layers))
    with open(path, "wb") as f:
        f.write(tar_bytes([(n, "file", b) for n, b in files]))
    return path


def oci_layout(path, tag, layers):
    """An OCI image layout tar with gzip'd layers and valid descriptors (digest + size)."""
    blobs = {}

    def add(b):
        blobs[_sha(b)] = b
        return _sha(b)
    gz = [gzip.compress(l, mtime=0) for l in layers]
    cfg = _config([_sha(l) for l in layers])
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + add(cfg), "size": len(cfg)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": "sha256:" + add(g), "size": len(g)} for g in gz]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + add(manifest),
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}).encode()
    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
    files += [("blobs/sha256/" + d, b) for d, b in sorted(blobs.items())]
    with open(path, "wb") as f:
        f.write(tar_bytes([("blobs/", "dir", None), ("blobs/sha256/", "dir", None)] +
                          [(n, "file", b) for n, b in files]))
    return path


def blob_files(node_dir):
    d = os.path.join(node_dir, "blobs", "sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def settle(seconds):
    time.sleep(seconds)
