#!/usr/bin/env python3
"""The browser half of bench/console.sh: with a cluster running (ORCH, DATA: the binary and the
node's data dir; URL: its console), the load time of each console page in headless Chromium
and the time from a scale confirmed in the page to `orch services -o json` showing it. The
peer is the CLI reading the same data. Prints a table; medians of RUNS."""
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "integration"))
from browser import Browser  # noqa: E402

ORCH, DATA, URL = os.environ["ORCH"], os.environ["DATA"], os.environ["URL"]
RUNS = int(os.environ.get("RUNS", "5"))
PAGES = [("cluster", "cluster", "status+nodes+services+tasks+top"), ("services", "services", "services"),
         ("service/s001", "service", "service.get s001"), ("tasks", "tasks", "tasks"),
         ("events", "events", "events"), ("plots", "plots", "top"), ("logs/s001", "logs", "logs s001")]
# what the CLI runs for the same data (the cluster page reads nodes, services, tasks and the
# figures; the plots page reads the node's own hour of samples, the CLI has only top's now)
PEER = {"cluster": [["nodes"], ["services"], ["ps"], ["top"]], "services": [["services"]],
        "service/s001": [["inspect", "s001"]], "tasks": [["ps"]], "events": [["events"]], "plots": [["top"]],
        "logs/s001": [["logs", "--tail", "2000", "s001"]]}


def cli(*args):
    t0 = time.perf_counter()
    p = subprocess.run([ORCH, "-D", DATA] + list(args), capture_output=True, text=True, timeout=60)
    if p.returncode:
        raise SystemExit("orch %s: %s" % (" ".join(args), p.stderr))
    return time.perf_counter() - t0, p.stdout


def main():
    rows = []
    with Browser() as b:
        page = b.open("about:blank")
        for path, done, what in PAGES:
            took, inpage = [], []
            for _ in range(RUNS):
                page.goto("about:blank")
                page.wait("location.href === 'about:blank'", 10, "a blank page")
                t0 = time.perf_counter()
                page.goto(URL + "#/" + path)
                page.wait("document.body && document.body.dataset.loaded === %s" % json.dumps(done), 60, "page " + path)
                took.append(time.perf_counter() - t0)
                inpage.append(float(page.eval("document.body.dataset.loadMs || 0")))
            if page.errors:
                raise SystemExit("page %s: errors %s" % (path, page.errors))
            peer = statistics.median(sum(cli(*(a + (["-o", "json"] if a[0] != "logs" else [])))[0] for a in PEER[path])
                                     for _ in range(RUNS))
            rows.append((path, statistics.median(took) * 1000, statistics.median(inpage), peer * 1000))
        # a scale done in the page until the CLI shows it
        scale = []
        for i in range(RUNS):
            page.goto(URL + "#/services")
            page.wait("document.querySelector('input[data-scale=s001]')", 60, "the services page")
            cur = {s["name"]: s for s in json.loads(cli("services", "-o", "json")[1])}["s001"]["replicas"]
            want = cur + 1 if i % 2 == 0 else cur - 1
            page.eval("document.querySelector('input[data-scale=s001]').value = '%d';"
                      "document.querySelector('button[data-scale-go=s001]').click()" % want)
            page.wait("!document.getElementById('modal').classList.contains('hidden')", 10, "the dialog")
            t0 = time.perf_counter()
            page.eval("document.getElementById('modal-ok').click()")
            deadline = t0 + 60
            while {s["name"]: s for s in json.loads(cli("services", "-o", "json")[1])}["s001"]["replicas"] != want:
                if time.perf_counter() > deadline:
                    raise SystemExit("the scale to %d did not show in orch services in 60 s" % want)
            scale.append(time.perf_counter() - t0)
        cli_scale = []
        for i in range(RUNS):
            cur = {s["name"]: s for s in json.loads(cli("services", "-o", "json")[1])}["s001"]["replicas"]
            t0 = time.perf_counter()
            cli("scale", "s001=%d" % (cur + (1 if i % 2 == 0 else -1)))
            cli_scale.append(time.perf_counter() - t0)
    print("console with %s nodes and %s tasks (medians of %d runs)" % (os.environ.get("NODES"), os.environ.get("TASKS"), RUNS))
    print("%-14s | %9s %10s | %-32s %7s | %6s" % ("page", "load ms", "in-page ms", "peer: orch ... (-o json)", "ms", "ratio"))
    print("-" * 15 + "+" + "-" * 22 + "+" + "-" * 42 + "+" + "-" * 7)
    for path, load, inpage, peer in rows:
        what = " + ".join(" ".join(a) for a in PEER[path])
        print("%-14s | %9.0f %10.0f | %-32s %7.0f | %6.2f" % (path, load, inpage, what, peer, load / peer))
    print("load: from navigating to the page until it is drawn with its data (static files included);")
    print("in-page: the page's own fetch and draw; ratio: load / peer")
    s, c = statistics.median(scale) * 1000, statistics.median(cli_scale) * 1000
    print("scale in the page -> seen by orch services: %.0f ms (peer: orch scale returning, %.0f ms; ratio %.2f)" % (s, c, s / c))


main()
