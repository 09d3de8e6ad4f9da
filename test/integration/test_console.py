"""Issue 13 (the web console): real daemons and containers on 127.0.0.1, the pages in
headless Chromium (test/integration/browser.py, the DevTools protocol).

- every page loads with no console error or uncaught exception;
- requests through the mesh show in the latency plot (p50 and p95 lines);
- the numbers the pages show are those of orch services / orch ps -o json;
- a scale done in the page (its confirmation dialog included) shows up in the CLI;
- the live event feed shows a node going down;
- over TLS on the node port a viewer's certificate reads but cannot scale; the plain
  listener refuses actions without the console's header and names other than addresses."""
import json
import os
import ssl
import urllib.error
import urllib.request

from browser import Browser
from harness import check, free_port, wait_until
from workload import DEMO, WorkCluster, wait_running

TIMEOUTS = {"test_console_pages_and_actions": 90, "test_console_roles": 60}

WEB = """services:
  web:
    image: %s
    ports: ["%d:80"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      resources:
        reservations: {cpus: "0.25", memory: 32m}
"""

PAGES = ["cluster", "services", "service/web", "tasks", "events", "logs/web", "plots"]


def console_cluster(n):
    c = WorkCluster(failure_timeout="2s")
    try:
        port = free_port()
        c.init(extra=["--console-listen", "127.0.0.1:%d" % port])
        for _ in range(n - 1):
            c.join()
        c.load_demo()
        c.web_port = free_port()
        c.deploy(0, c.write("web.yml", WEB % (DEMO, c.web_port)))
        wait_running(c, "web", 2)
    except BaseException:
        c.teardown()
        raise
    return c, "http://127.0.0.1:%d/" % port


def get_web(c):
    with urllib.request.urlopen("http://127.0.0.1:%d/" % c.web_port, timeout=5) as r:
        return r.status == 200 and r.read()


def test_console_pages_and_actions():
    c, url = console_cluster(2)
    # ORCH_CONSOLE_SHOTS keeps them (the test's own directory is removed after it)
    shots = os.environ.get("ORCH_CONSOLE_SHOTS") or os.path.join(c.tmp, "console-shots")
    os.makedirs(shots, exist_ok=True)
    with c, Browser() as b:
        p = c.cli(0, "console", json=False)
        check(url in p.stdout and "role operator" in p.stdout, "orch console: %r" % p.stdout)
        page = b.open(url)
        for name in PAGES:
            page.goto(url + "#/" + name)
            page.wait("document.body.dataset.loaded === %s" % json.dumps(name.split("/")[0]), 15, "page " + name)
            check(not page.errors, "page %s: %s" % (name, page.errors))
        # requests through the mesh, for the latency plot (drawn at the end, samples later);
        # a sample's latency is of the requests since the sample before: one of web first
        def web_sampled():
            hs = json.loads(urllib.request.urlopen(url + "api/history", timeout=10).read())
            return any(s["name"] == "web" and s["samples"] for s in hs["services"])
        wait_until(web_sampled, 10, "a first sample of web in api/history")
        wait_until(lambda: get_web(c), 20, "the mesh to answer on :%d" % c.web_port)
        for _ in range(20):
            check(get_web(c), "GET through the mesh")
        # numbers: the services page against the CLI
        page.goto(url + "#/services")
        page.wait("document.querySelector('tr[data-service=web] .replicas')", 15, "the services table")
        svc = {s["name"]: s for s in c.cli(0, "services")}["web"]
        shown = page.eval("document.querySelector('tr[data-service=web] .replicas').textContent")
        check(shown == "%d / %d" % (svc["running"], svc["desired"]), "page says %r, orch services %r" % (shown, svc))
        page.goto(url + "#/cluster")
        page.wait("document.getElementById('c-tasks')", 15, "the cluster page")
        ps = c.cli(0, "ps")
        check(page.eval("document.getElementById('c-tasks').textContent") == str(len(ps)),
              "cluster page tasks vs orch ps: %r" % len(ps))
        nodes = c.cli(0, "nodes")
        leader = [n["name"] for n in nodes if n.get("leader")]
        check(page.eval("document.getElementById('c-leader').textContent") == leader[0], "leader %r" % leader)
        rows = page.eval("[...document.querySelectorAll('#nodes tbody tr')].map(r => r.dataset.node).sort()")
        check(rows == sorted(n["name"] for n in nodes), "node rows %r vs %r" % (rows, nodes))
        # the state hashes: every node holding the state answers, and a quiet cluster agrees
        hs = json.loads(urllib.request.urlopen(url + "api/hashes", timeout=10).read())["nodes"]
        check(sorted(x["name"] for x in hs) == sorted(n["name"] for n in nodes if n["role"] in ("voter", "standby"))
              and all(len(x.get("hash", "")) == 64 for x in hs), "api/hashes: %r" % hs)
        st = c.cli(0, "status")
        check(any(x["hash"] == st["state_hash"] for x in hs if x["applied"] == st["applied_index"]) or
              all(x["applied"] != st["applied_index"] for x in hs), "n1's hash vs orch status: %r %r" % (hs, st))
        page.wait("document.getElementById('c-hash').textContent.startsWith('agree')", 15, "the hashes to agree")
        page.screenshot(os.path.join(shots, "cluster.png"))
        # a reservation of 0.25 CPU per task: the node running both shows 0.50 reserved
        res = page.eval("[...document.querySelectorAll('#nodes tbody tr')].map(r => r.cells[6].textContent.split(' / ')[0])")
        per = {}
        for t in ps:
            per[t["node"]] = per.get(t["node"], 0) + 0.25
        check(sorted(res) == sorted("%.2f" % per.get(n["name"], 0) for n in nodes), "reserved CPU %r vs %r" % (res, per))

        # a scale in the page, confirmed in its dialog, is what the CLI then says
        page.goto(url + "#/services")
        page.wait("document.querySelector('input[data-scale=web]')", 15, "the scale input")
        page.eval("document.querySelector('input[data-scale=web]').value = '3';"
                  "document.querySelector('button[data-scale-go=web]').click()")
        text = page.wait("!document.getElementById('modal').classList.contains('hidden') && "
                         "document.getElementById('modal-text').textContent", 5, "the confirmation")
        check("from 2 to 3" in text, "confirmation text %r" % text)
        page.eval("document.getElementById('modal-ok').click()")
        wait_until(lambda: {s["name"]: s for s in c.cli(0, "services")}["web"]["replicas"] == 3, 15,
                   "the scale done in the page to show in orch services")
        wait_running(c, "web", 3)
        page.wait("document.querySelector('tr[data-service=web] .replicas').textContent === '3 / 3'", 15,
                  "the page to show 3 / 3")
        page.screenshot(os.path.join(shots, "services.png"))
        check(not page.errors, "errors after the scale: %s" % page.errors)

        # the live feed: a node going down arrives without a reload
        page.goto(url + "#/events")
        page.wait("document.querySelector('#live:not(.off)')", 10, "the event stream to open")
        c.kill9(1)
        page.wait("[...document.querySelectorAll('#feed div[data-kind=node_down]')].some(d => d.textContent.includes('n2'))",
                  20, "node_down of n2 in the live feed")
        page.screenshot(os.path.join(shots, "events.png"))
        # the requests sent above were timed: some sample has a p50 and p95, and the
        # latency plot (the fourth) draws them as two lines
        hs = json.loads(urllib.request.urlopen(url + "api/history", timeout=10).read())
        web = [s for s in hs["services"] if s["name"] == "web"][0]["samples"]
        lat = [p for p in web if p[4] is not None]
        check(lat and all(0 < p[4] <= p[5] for p in lat), "latency samples %r" % web[-5:])
        page.goto(url + "#/plots")
        page.wait("document.querySelectorAll('.plot svg').length >= 4", 15, "the plots")
        lines = page.eval("[...document.querySelectorAll('.plot')].filter(p => p.querySelector('.title')"
                          ".textContent.startsWith('latency')).map(p => p.querySelectorAll('polyline').length)")
        check(lines and max(lines) == 2, "latency plots and their lines: %r" % lines)
        page.screenshot(os.path.join(shots, "plots.png"))
        check(not page.errors, "errors: %s" % page.errors)
        print("screenshots in", shots)


def _req(url, ctx=None, body=None, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_console_roles():
    c, url = console_cluster(1)
    with c:
        n = c.nodes[0]
        bundle = os.path.join(c.tmp, "vera.pem")
        c.cli(0, "user", "add", "vera", "--role", "viewer", "-o", bundle, json=False)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(bundle)
        ctx.load_cert_chain(bundle)
        tls = "https://%s/" % n.addr
        st, who = _req(tls + "api/whoami", ctx)
        check(st == 200 and who["role"] == "viewer" and who["user"] == "vera", "whoami over TLS: %r" % who)
        st, svcs = _req(tls + "api/services", ctx)
        check(st == 200 and [s["name"] for s in svcs["services"]] == ["web"], "viewer reads services: %d %r" % (st, svcs))
        hdr = {"X-Orch-Console": "1", "Content-Type": "application/json"}
        st, r = _req(tls + "api/service.scale", ctx, json.dumps({"name": "web", "replicas": 5}).encode(), hdr)
        check(st == 403 and "needs role operator; you are viewer (user vera)" in r["err"], "viewer scale: %d %r" % (st, r))
        # drain needs admin: refused to the plain listener (operator), done for an admin's
        # certificate, as orch node drain
        st, r = _req(url + "api/node.update", None, json.dumps({"node": n.name, "availability": "drain"}).encode(), hdr)
        check(st == 403 and "needs role admin; you are operator (user console-listen)" in r["err"], "plain drain: %d %r" % (st, r))
        ada = os.path.join(c.tmp, "ada.pem")
        c.cli(0, "user", "add", "ada", "--role", "admin", "-o", ada, json=False)
        actx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        actx.check_hostname = False
        actx.load_verify_locations(ada)
        actx.load_cert_chain(ada)
        for want in ("drain", "active"):
            st, r = _req(tls + "api/node.update", actx, json.dumps({"node": n.name, "availability": want}).encode(), hdr)
            check(st == 200 and r["rc"] == 0, "admin %s: %d %r" % (want, st, r))
            got = [x["availability"] for x in c.cli(0, "nodes") if x["name"] == n.name]
            check(got == [want], "after the console's %s, orch nodes says %r" % (want, got))
        # the plain listener: actions need the console's header; names are refused; bad
        # input is an error that changes nothing
        st, r = _req(url + "api/service.scale", None, json.dumps({"name": "web", "replicas": 5}).encode(),
                     {"Content-Type": "application/json"})
        check(st == 403 and "X-Orch-Console" in r["err"], "action without the header: %d %r" % (st, r))
        st, r = _req(url.replace("127.0.0.1", "localhost") + "api/services", None, None, {"Host": "evil.example:80"})
        check(st == 403, "a request for another host name: %d %r" % (st, r))
        for body in (b"{", b"[1]", b'{"name": "web", "replicas": "many"}', b'{"op": "kv.set"}'):
            st, r = _req(url + "api/service.scale", None, body, hdr)
            check(st == 400 and r["rc"] != 0, "bad body %r: %d %r" % (body, st, r))
        st, r = _req(url + "api/kv.set", None, b"{}", hdr)
        check(st == 404, "an op the console does not offer: %d %r" % (st, r))
        # a worker's plain listener reads only, as the worker's own root does
        wport = free_port()
        c.join(token=c.worker_token, extra=["--console-listen", "127.0.0.1:%d" % wport])
        wurl = "http://127.0.0.1:%d/" % wport
        st, who = _req(wurl + "api/whoami")
        check(st == 200 and who["role"] == "viewer", "a worker's plain listener: %r" % who)
        st, r = _req(wurl + "api/service.scale", None, json.dumps({"name": "web", "replicas": 5}).encode(), hdr)
        check(st == 403 and "needs role operator; you are viewer" in r["err"], "scale through a worker's console: %d %r" % (st, r))
        # (a worker reads through its link to the leader, up a moment after the join)
        wait_until(lambda: _req(wurl + "api/services")[0] == 200, 10, "a worker's console to read")
        st, svcs = _req(wurl + "api/services")
        check(st == 200 and [s["name"] for s in svcs["services"]] == ["web"], "a worker's console reads: %d %r" % (st, svcs))
        check({s["name"]: s for s in c.cli(0, "services")}["web"]["replicas"] == 2, "a refused action changed the service")
        check(c.node(0).alive(), "the node died")
