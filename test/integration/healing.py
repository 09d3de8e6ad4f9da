"""Self-healing test helpers (issue 4): specs with health checks and update_config, task
queries by node and generation, a background client that keeps asking a service through the
endpoints of its running tasks, and a look into a container's processes through /proc."""
import json
import os
import subprocess
import threading
import time
import urllib.request

from harness import Fail, check, wait_until
from workload import DEMO, live, running, runc_ids


def spec(replicas, env="1", health=None, update=None, extra=""):
    """A web service on the demo image with a published port. health: a Compose
    `healthcheck` test list (as YAML text); update: update_config keys (as YAML flow text)."""
    s = ("services:\n  web:\n    image: %s\n    ports: [\"80\"]\n    stop_grace_period: 1s\n"
         "    environment: {V: \"%s\"}\n" % (DEMO, env))
    if health:
        s += "    healthcheck:\n      test: %s\n      interval: 1s\n      timeout: 1s\n      retries: 2\n" % health
    s += "    deploy:\n      replicas: %d\n" % replicas
    if update:
        s += "      update_config: {%s}\n" % update
    return s + extra


def on_node(tasks, name):
    return [t for t in tasks if t["node"] == name]


def inspect(c, node, service="web"):
    v = c.cli(node, "inspect", service)
    return v[0] if isinstance(v, list) else v


def wait_placed(c, node, service, n, avoid=(), generation=None, timeout=30):
    """Waits until exactly n tasks of service are running, none on a node in `avoid`, all of
    `generation` if given, and no other task of it is alive; returns the running tasks."""
    def ok():
        ts = c.ps(node, service, all_tasks=True)
        r = running(ts)
        alive = live(ts)
        if len(r) != n or len(alive) != n:
            return None
        if any(t["node"] in avoid for t in alive):
            return None
        if generation is not None and any(t["generation"] != generation for t in r):
            return None
        return [r]
    what = "%d running tasks of %s (not on %s%s)" % (n, service, list(avoid),
                                                     ", generation %s" % generation if generation else "")
    return wait_until(ok, timeout, what, interval=0.1)[0]


def container_of(c, node, task):
    node = c.node(node)
    ids = [i for i in runc_ids(node.dir) if i.endswith("-%d" % task["id"])]
    check(len(ids) == 1, "%s: no single runc container for task %s: %r" % (node.name, task["id"], runc_ids(node.dir)))
    return ids[0]


def container_cmdlines(node_dir, cid):
    """Command lines of every process in the container (its pids from `runc ps`, read from
    /proc, so looking does not add a process to the container)."""
    p = subprocess.run(["runc", "--root", os.path.join(node_dir, "runc"), "ps", "--format", "json", cid],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, "runc ps %s: %s" % (cid, p.stderr.strip()))
    out = []
    for pid in json.loads(p.stdout or "[]") or []:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                out.append(f.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except OSError:
            pass  # exited between the listing and the read
    return out


class Poller:
    """A client of the service while there is no routing mesh: every `interval` it lists the
    running tasks (`orch ps -o json`) and GETs /cgi-bin/id through their endpoints until one
    answers. A round where none answers is a failure ("no healthy endpoint answered")."""

    def __init__(self, c, node, service="web", interval=0.1):
        self.c, self.node, self.service, self.interval = c, node, service, interval
        self.rounds = 0
        self.failures = []
        self.answers = set()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self._t.join(30)

    def _round(self):
        try:
            ts = running(self.c.ps(self.node, self.service))
        except Fail as e:
            return "orch ps failed: %s" % e
        for t in ts:
            hostport = t["endpoint"].split(",")[0].split("->")[0]
            if not hostport:
                continue
            try:
                with urllib.request.urlopen("http://%s/cgi-bin/id" % hostport, timeout=1) as r:
                    if r.status == 200:
                        self.answers.add(r.read().decode().strip())
                        return None
            except OSError:
                continue
        return "no healthy endpoint answered (%d running tasks listed)" % len(ts)

    def _run(self):
        while not self._stop.is_set():
            t0 = time.time()
            err = self._round()
            self.rounds += 1
            if err:
                self.failures.append((round(t0, 2), err))
            self._stop.wait(max(0.0, self.interval - (time.time() - t0)))
