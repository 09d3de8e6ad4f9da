"""Issue 5 (metrics, events, autoscaling): real daemons and containers on 127.0.0.1.

- /metrics on every node (its --metrics-listen address) parses as Prometheus text (a strict
  parser below) with the node, raft and per-task series; orch top shows every node's tasks
  (heartbeat figures);
- orch scale is an event; a manual scale outside an autoscaled service's [min, max] is
  refused naming both; the autoscaler brings replicas into range with an event;
- a node that dies is a node_down event and its tasks "rescheduled" events.
The two tests named test_mesh_* need the routing mesh to serve published ports (traffic/):
request counters and the latency histogram of /metrics against the requests sent, and a
load-driven scale up/down."""
import json
import re
import subprocess
import threading
import time
import urllib.request

from harness import BIN, Fail, check, free_port, tls_context, wait_until
from workload import DEMO, WorkCluster, running, wait_running

TIMEOUTS = {"test_metrics_and_events": 120, "test_autoscale_range": 120, "test_node_down_events": 120,
            "test_mesh_request_counters": 120, "test_mesh_load_autoscale": 240}

WEB = """services:
  web:
    image: %s
    ports: ["%s"]
    stop_grace_period: 1s
    deploy:
      replicas: %d
%s"""


def spec(c, replicas, port="80", extra="", name="web.yml"):
    return c.write(name, WEB % (DEMO, port, replicas, extra))


# ---- a strict parser of the Prometheus text format 0.0.4 ----------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"


def parse_prom(text):
    """{family: {"type", "help", "samples": [(labels dict, value)]}}; raises on anything
    outside the format: samples before their TYPE, a family split or declared twice,
    bad names, bad escapes, bad numbers, no final newline."""
    check(text.endswith("\n"), "metrics text does not end with a newline")
    fams, cur, help_of = {}, None, None
    for ln, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (ln, line)
        m = re.fullmatch(r"# HELP (%s) (.*)" % NAME, line)
        if m:
            help_of = m.group(1)
            check(re.fullmatch(r"([^\\]|\\\\|\\n)*", m.group(2)), "bad HELP escape at " + where)
            continue
        m = re.fullmatch(r"# TYPE (%s) (counter|gauge|untyped|histogram|summary)" % NAME, line)
        if m:
            check(m.group(1) == help_of, "TYPE without its HELP just before at " + where)
            check(m.group(1) not in fams, "family %s declared twice" % m.group(1))
            cur = m.group(1)
            fams[cur] = {"type": m.group(2), "samples": []}
            continue
        check(not line.startswith("#") and line, "unexpected comment or empty line at " + where)
        m = re.fullmatch(r"(%s)(\{(.*)\})? (\S+)" % NAME, line)
        check(m, "not a sample: " + where)
        # a histogram's samples are its _bucket, _sum and _count series, each also kept as a
        # family of its own name (for value())
        parts = ("_bucket", "_sum", "_count") if cur and fams[cur]["type"] == "histogram" else ()
        check(m.group(1) == cur or m.group(1) in [cur + p for p in parts],
              "sample outside its family (%s) at %s" % (cur, where))
        labels, rest = {}, m.group(3) or ""
        while rest:
            lm = re.match(r'(%s)="((?:[^"\\]|\\\\|\\"|\\n)*)"(,|$)' % LABEL, rest)
            check(lm, "bad labels at " + where)
            val = re.sub(r'\\(.)', lambda e: {"n": "\n", "\\": "\\", '"': '"'}[e.group(1)], lm.group(2))
            check(lm.group(1) not in labels, "label repeated at " + where)
            labels[lm.group(1)] = val
            rest = rest[lm.end():]
        v = m.group(4)
        check(re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|NaN|[-+]Inf", v), "bad value at " + where)
        fams[cur]["samples"].append((labels, float(v)))
        if m.group(1) != cur:
            fams.setdefault(m.group(1), {"type": "histogram part", "samples": []})["samples"].append((labels, float(v)))
    return fams


def scrape(node):
    with urllib.request.urlopen("http://%s/metrics" % node.metrics, timeout=5) as r:
        check(r.status == 200, "GET /metrics on %s: %d" % (node.name, r.status))
        ctype = r.headers.get("Content-Type", "")
        check(ctype.startswith("text/plain") and "version=0.0.4" in ctype, "content type %r" % ctype)
        return parse_prom(r.read().decode())


def value(fams, fam, **labels):
    for lb, v in fams.get(fam, {}).get("samples", []):
        if all(lb.get(k) == str(x) for k, x in labels.items()):
            return v
    return None


def events(c, node=0):
    return c.cli(node, "events")


# ---- tests ------------------------------------------------------------------------------------------

def test_metrics_and_events():
    with WorkCluster(3, metrics=True) as c:
        c.load_demo()
        c.deploy(0, spec(c, 3))
        ts = wait_running(c, "web", 3)
        leaders = 0
        for n in c.nodes:
            # the node port inside TLS, to a holder of a node certificate; the plain listener
            with urllib.request.urlopen("https://%s/healthz" % n.addr, timeout=5, context=tls_context(n)) as r:
                check(r.status == 200 and r.read().startswith(b"ok"), "healthz of %s over TLS" % n.name)
            with urllib.request.urlopen("http://%s/healthz" % n.metrics, timeout=5) as r:
                check(r.status == 200 and r.read().startswith(b"ok"), "healthz of %s" % n.name)
            mine = [t for t in ts if t["node"] == n.name]

            def ready():
                f = scrape(n)
                got = [t for t in mine if (value(f, "orch_task_memory_bytes", service="web", task=t["id"]) or 0) > 0]
                return f if len(got) == len(mine) else None
            f = wait_until(ready, 10, "memory of %s's tasks %r in its /metrics" % (n.name, [t["id"] for t in mine]))
            for fam, typ in (("orch_raft_role", "gauge"), ("orch_raft_state", "gauge"), ("orch_raft_term", "gauge"),
                             ("orch_raft_commit_index", "gauge"), ("orch_raft_applied_index", "gauge"),
                             ("orch_node_tasks", "gauge"), ("orch_task_cpu_seconds_total", "counter"),
                             ("orch_task_memory_bytes", "gauge"), ("orch_service_requests_total", "counter"),
                             ("orch_service_request_rate", "gauge"), ("orch_service_connections_total", "counter"),
                             ("orch_service_bytes_total", "counter"), ("orch_service_backend_errors_total", "counter")):
                check(f.get(fam, {}).get("type") == typ, "%s: family %s missing or not a %s" % (n.name, fam, typ))
            st = c.status(n)
            check(value(f, "orch_raft_term") >= 1, "%s: term %r" % (n.name, value(f, "orch_raft_term")))
            check(value(f, "orch_raft_applied_index") >= 1 and value(f, "orch_raft_commit_index") >= 1,
                  "%s: indexes missing" % n.name)
            check(value(f, "orch_raft_role", role=st["role"]) == 1, "%s: role %s not exposed" % (n.name, st["role"]))
            check(len(f["orch_raft_state"]["samples"]) == 1, "%s: one raft state expected" % n.name)
            if value(f, "orch_raft_state", state="leader") == 1:
                leaders += 1
            check(value(f, "orch_node_tasks") == len(mine), "%s: orch_node_tasks %r, runs %d" %
                  (n.name, value(f, "orch_node_tasks"), len(mine)))
            for t in mine:
                check(value(f, "orch_task_cpu_seconds_total", service="web", task=t["id"]) is not None,
                      "%s: no cpu series for task %s" % (n.name, t["id"]))
        check(leaders == 1, "%d nodes expose orch_raft_state{state=\"leader\"} 1" % leaders)

        # orch top sees every node's containers (figures come to the leader with heartbeats)
        def top_all():
            top = c.cli(1, "top")
            got = {t["id"]: t for t in top["tasks"] if t["memory"] > 0}
            return top if all(t["id"] in got and got[t["id"]]["node"] == t["node"] for t in ts) else None
        top = wait_until(top_all, 10, "orch top showing all 3 tasks with their node and memory")
        svc = [s for s in top["services"] if s["name"] == "web"]
        check(svc and svc[0]["replicas"] == 3 and svc[0]["running"] == 3, "orch top services: %r" % top["services"])
        check(c.cli(0, "top", json=False).stdout.startswith("SERVICE"), "orch top table")

        # events: placements so far, then the scale
        ev = events(c)
        placed = {e["task"]: e for e in ev if e["kind"] == "scheduled"}
        for t in ts:
            check(t["id"] in placed and placed[t["id"]]["node"] == t["node"], "no scheduled event for task %s on %s: %r"
                  % (t["id"], t["node"], ev))
        c.cli(0, "scale", "web=4", json=False)

        def scaled():
            return [e for e in events(c, 2) if e["kind"] == "scaled" and e["service"] == "web"]
        sc = wait_until(scaled, 10, "a scaled event on n3")
        check("from 3 to 4" in sc[-1]["message"] and "orch scale" in sc[-1]["message"], "scaled event %r" % sc[-1])
        ids = [e["id"] for e in events(c)]
        check(ids == sorted(ids) and len(set(ids)) == len(ids), "event ids not increasing: %r" % ids)
        # the table form, newest last
        out = c.cli(0, "events", json=False).stdout.strip().splitlines()
        check(out and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+\S+", out[0]), "events table: %r" % out[:3])
        check(any("scaled" in l and "from 3 to 4" in l for l in out), "events table lacks the scale: %r" % out[-3:])
        # unchanged scale: no event
        c.cli(0, "scale", "web=4", json=False)
        time.sleep(0.5)
        check(len(scaled()) == 1, "a no-op scale was recorded: %r" % scaled())
        # -f follows: a new scale shows up in a running orch events -f
        proc = subprocess.Popen([BIN, "-D", c.nodes[0].dir, "events", "-f", "-o", "json"], stdout=subprocess.PIPE,
                                text=True, env=c.env)
        try:
            time.sleep(1)
            c.cli(1, "scale", "web=2", json=False)
            seen = []
            deadline = time.time() + 10
            while time.time() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                e = json.loads(line)
                seen.append(e)
                if e["kind"] == "scaled" and "from 4 to 2" in e["message"]:
                    break
            check(seen and "from 4 to 2" in seen[-1]["message"], "orch events -f did not show the new scale: %r" % seen[-3:])
        finally:
            proc.kill()
            proc.wait()


AUTO = """      x-orch-autoscale:
        min: 2
        max: 4
        target_rps: 1000
        scale_up_cooldown: 1h
        scale_down_cooldown: 1h
"""


def test_autoscale_range():
    with WorkCluster(3) as c:
        c.load_demo()
        c.deploy(0, spec(c, 1, extra=AUTO))
        # deployed with 1 replica, below min 2: the autoscaler raises it, with its reason
        wait_running(c, "web", 2)
        sc = [e for e in events(c) if e["kind"] == "scaled"]
        check(sc and "from 1 to 2" in sc[-1]["message"] and "autoscaler" in sc[-1]["message"] and
              "[2, 4]" in sc[-1]["message"], "autoscaler event: %r" % sc)
        for bad in ("web=9", "web=1"):
            p = c.cli(1, "scale", bad, json=False, check=False)
            check(p.returncode != 0, "orch scale %s of an autoscaled service was accepted" % bad)
            check("min 2" in p.stderr and "max 4" in p.stderr, "refusal does not name min and max: %r" % p.stderr)
        c.cli(1, "scale", "web=3", json=False)
        wait_running(c, "web", 3)
        check([s for s in c.services() if s["name"] == "web"][0]["replicas"] == 3, "in-range manual scale lost")


def test_node_down_events():
    with WorkCluster(3, failure_timeout="2s") as c:
        c.load_demo()
        c.deploy(0, spec(c, 3))
        ts = wait_running(c, "web", 3)
        lead = c.leader()
        victim = [n for n in c.nodes if n is not lead][0]
        lost = [t["id"] for t in ts if t["node"] == victim.name]
        check(lost, "no task on %s: %r" % (victim.name, ts))
        c.kill9(victim)

        def down():
            ev = events(c, lead)
            nd = [e for e in ev if e["kind"] == "node_down" and e["node"] == victim.name]
            rs = {e["task"] for e in ev if e["kind"] == "rescheduled"}
            return ev if nd and set(lost) <= rs else None
        ev = wait_until(down, 20, "node_down of %s and rescheduled events for %r" % (victim.name, lost))
        nd = [e for e in ev if e["kind"] == "node_down"][-1]
        check(victim.name in nd["message"], "node_down message: %r" % nd)
        # the replacements are scheduled on the survivors, after the loss
        later = wait_until(lambda: (lambda l: l if len(l) >= len(lost) else None)(
            [e for e in events(c, lead) if e["kind"] == "scheduled" and e["id"] > nd["id"]]), 20,
            "%d replacements scheduled after the node_down event" % len(lost))
        check(all(e["node"] != victim.name for e in later), "replacements scheduled on the dead node: %r" % later)
        # the victim's containers are cleaned by teardown; bring it back for a node_ready event
        c.restart(victim)
        wait_until(lambda: [e for e in events(c, lead) if e["kind"] == "node_ready" and e["node"] == victim.name],
                   20, "node_ready of %s" % victim.name)


# ---- need the routing mesh (traffic_stats) ------------------------------------------------------------

def http_get_port(port, path="/cgi-bin/id", timeout=5):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        check(r.status == 200, "GET :%d%s -> %d" % (port, path, r.status))
        return r.read()


def test_mesh_request_counters():
    """Requests sent to one node's published port are counted exactly in its /metrics."""
    with WorkCluster(3, metrics=True) as c:
        c.load_demo()
        port = free_port()
        c.deploy(0, spec(c, 3, port="%d:80" % port))
        wait_running(c, "web", 3)
        wait_until(lambda: http_get_port(port), 20, "the mesh to answer on :%d" % port)
        # all nodes listen on 127.0.0.1 on one machine: whichever accepted a connection
        # counts it, so the counters of every node are summed
        def total(fam, **lb):
            return sum(value(scrape(n), fam, service="web", **lb) or 0 for n in c.nodes)
        before = total("orch_service_requests_total")
        conns_before = total("orch_service_connections_total")
        lat_before = total("orch_service_request_duration_seconds_count")
        N = 300
        for _ in range(N):
            http_get_port(port)
        got = []

        def counted():
            got.append(total("orch_service_requests_total") - before)
            return got[-1] == N
        try:
            wait_until(counted, 10, "request counters to grow by %d" % N)
        except Fail:
            raise Fail("requests sent %d, counted by the nodes' /metrics (last polls): %r" % (N, got[-5:]))
        check(total("orch_service_connections_total") - conns_before >= N, "connections not counted")
        # every request timed once: the latency histogram's count grew by N on the nodes,
        # its buckets cumulative up to +Inf, which is the count
        timed = total("orch_service_request_duration_seconds_count") - lat_before
        check(timed == N, "requests sent %d, timed %r" % (N, timed))
        seen = 0
        for n in c.nodes:
            f = scrape(n)
            check(f.get("orch_service_request_duration_seconds", {}).get("type") == "histogram",
                  "%s: no latency histogram" % n.name)
            b = [(float(lb["le"]), v) for lb, v in
                 f.get("orch_service_request_duration_seconds_bucket", {"samples": []})["samples"]
                 if lb.get("service") == "web"]
            if not b:  # this node's mesh accepted no connection for web
                continue
            seen += 1
            check(b[-1][0] == float("inf") and all(b[i][0] < b[i + 1][0] and b[i][1] <= b[i + 1][1]
                                                   for i in range(len(b) - 1)), "%s: buckets %r" % (n.name, b))
            check(b[-1][1] == value(f, "orch_service_request_duration_seconds_count", service="web"),
                  "%s: +Inf bucket vs count" % n.name)
        check(seen, "no node has web's latency buckets")
        # orch top sums the nodes' histograms (sent with their heartbeats, ~1 s behind)
        def top_timed():
            web = [s for s in c.cli(0, "top")["services"] if s["name"] == "web"][0]
            lat = web.get("latency") or []
            return len(lat) == 17 and sum(lat[:16]) == N + lat_before
        wait_until(top_timed, 10, "orch top's latency counts to include the %d requests" % N)
        check(total("orch_service_bytes_total", direction="out") > 0, "no bytes counted")
        rate = wait_until(lambda: sum(value(scrape(n), "orch_service_request_rate", service="web") or 0 for n in c.nodes),
                          5, "a request rate above 0")
        check(rate > 0, "rate %r" % rate)


def test_mesh_load_autoscale():
    """A steady load above target_rps scales the service up within [min, max]; once the load
    stops and the down cooldown passed, it goes back down to min."""
    extra = """      x-orch-autoscale:
        min: 1
        max: 3
        target_rps: 5
        scale_up_cooldown: 2s
        scale_down_cooldown: 8s
"""
    with WorkCluster(3) as c:
        c.load_demo()
        port = free_port()
        c.deploy(0, spec(c, 1, port="%d:80" % port, extra=extra))
        wait_running(c, "web", 1)
        wait_until(lambda: http_get_port(port), 20, "the mesh to answer on :%d" % port)
        stop = threading.Event()
        errors = []

        def load():
            while not stop.is_set():
                try:
                    http_get_port(port)
                except Exception as e:  # noqa: BLE001 - counted, the test judges them
                    errors.append(str(e))
                time.sleep(0.02)  # ~30-40 requests/s per thread
        threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            def grew():
                reps = [s for s in c.services() if s["name"] == "web"][0]["replicas"]
                return reps if reps > 1 else None
            reps = wait_until(grew, 40, "the autoscaler to scale web up under load", interval=0.5)
            check(reps <= 3, "scaled beyond max: %d" % reps)
            wait_until(lambda: [s for s in c.services() if s["name"] == "web"][0]["replicas"] == 3, 30,
                       "web at max 3 under ~60 requests/s with target 5", interval=0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        check(len(errors) < 5, "requests failed under load: %r" % errors[:5])
        ups = [e for e in events(c) if e["kind"] == "scaled" and "autoscaler" in e["message"]]
        check(ups and "requests/s per replica" in ups[0]["message"], "autoscaler events: %r" % ups)
        wait_until(lambda: [s for s in c.services() if s["name"] == "web"][0]["replicas"] == 1, 60,
                   "web back to min 1 after the load stopped", interval=0.5)
        wait_running(c, "web", 1)
        downs = [e for e in events(c) if e["kind"] == "scaled" and "< target 5" in e["message"]]
        check(downs, "no scale-down event with its reason: %r" % events(c)[-5:])
