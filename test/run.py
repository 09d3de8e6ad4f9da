#!/usr/bin/env python3
"""Runs orch's tests: the unit tests (zig build test), the simulation scenarios (zig build
sim: many nodes in one process on a virtual clock, a few fixed seeds each) and every
integration test function test/integration/test_*.py:test_*, each in its own process with a
timeout.

usage: test/run.py [--no-unit] [--no-sim] [--list] [-t SECONDS] [-j JOBS] [NAME...]
NAME filters integration tests (a substring of "module.function"); "unit" selects the unit
tests, "sim" the simulation scenarios (ORCH_SIM_SEEDS=N runs seeds 1..N, ORCH_SIM_SEED=S
one seed). Integration tests run JOBS at a time (-j, or ORCH_TEST_JOBS; default 3): each test's
cluster has its own data dirs, ports and addresses, and most of a test's time is spent waiting
on daemons, not computing. A module that sets SERIAL = True (fixed ports, timing it measures,
or load it puts on the whole machine) runs its tests afterwards, one at a time, with nothing
else running. Prints "ok NAME" or "FAIL NAME (reason)" per test as each ends and ends with
"N passed, N failed"; exits 1 if anything failed."""
import ast
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INTEG = os.path.join(HERE, "integration")
DEFAULT_TIMEOUT = 120


def discover():
    """(module, function, timeout, serial) for each test, read from the source without
    importing it. A test may set its own timeout with a module-level TIMEOUTS = {"test_x":
    seconds}; a module with SERIAL = True runs alone."""
    out = []
    for path in sorted(glob.glob(os.path.join(INTEG, "test_*.py"))):
        mod = os.path.splitext(os.path.basename(path))[0]
        tree = ast.parse(open(path).read(), path)
        timeouts, serial = {}, False
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "TIMEOUTS" for t in node.targets):
                timeouts = ast.literal_eval(node.value)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SERIAL" for t in node.targets):
                serial = bool(ast.literal_eval(node.value))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out.append((mod, node.name, timeouts.get(node.name, DEFAULT_TIMEOUT), serial))
    return out


def child(mod, fn):
    """Runs one test in this process; exit 0 on success. The first line of a failure is the reason."""
    sys.path.insert(0, INTEG)
    import harness
    harness.become_subreaper()
    m = __import__(mod)
    try:
        getattr(m, fn)()
    except Exception as e:  # noqa: BLE001
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print("REASON: %s: %s" % (type(e).__name__, reason), flush=True)
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        os._exit(1)
    os._exit(0)


def kill_leftovers(tmp):
    """Kills daemons a killed test left behind: by the PIDs it recorded, checked against
    /proc so a reused PID is never hit."""
    sys.path.insert(0, INTEG)
    import harness
    try:
        lines = open(os.path.join(tmp, "pids")).read().split("\n")
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(" ", 1)
        if len(parts) == 2 and parts[0].isdigit():
            harness.kill_pid(int(parts[0]), parts[1])
    harness.reap()
    try:  # labs (test/integration/lab.py) the test made: namespaces, mounts, relays
        labs = open(os.path.join(tmp, "labs")).read().split()
    except OSError:
        labs = []
    if labs:
        import lab
        for name in labs:
            lab.Lab.destroy(name)


def run_one(mod, fn, timeout):
    tmp = tempfile.mkdtemp(prefix="orchit-", dir="/tmp")
    env = dict(os.environ, TEST_TMP=tmp, PYTHONDONTWRITEBYTECODE="1")
    t0 = time.time()
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", mod, fn], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True, cwd=ROOT)
    try:
        out, _ = p.communicate(timeout=timeout)
        reason = None
        if p.returncode:
            m = re.search(r"^REASON: (.*)$", out, re.M)
            reason = m.group(1) if m else "exit status %d" % p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        reason = "timed out after %ds" % timeout
    kill_leftovers(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    return reason, out, time.time() - t0


def run_unit():
    """zig build test prints its own 'N passed, N failed'; its counts join the total."""
    p = subprocess.run([os.path.join(ROOT, "vendor", "zig", "zig"), "build", "-Dwerror=true", "test"], cwd=ROOT,
                       capture_output=True, text=True)
    out = p.stdout + p.stderr
    for line in out.splitlines():
        if line.startswith("FAIL"):
            print("FAIL unit: %s" % line[4:].strip())
    m = re.findall(r"^(\d+) passed, (\d+) failed$", out, re.M)
    if not m:
        print("FAIL unit (the unit tests did not build or run; zig build test exited %d)" % p.returncode)
        print("\n".join("    " + l for l in out.splitlines()[-30:]))
        return 0, 1
    passed, failed = int(m[-1][0]), int(m[-1][1])
    if p.returncode and not failed:
        failed = 1
        print("FAIL unit (zig build test exited %d)" % p.returncode)
    print("unit: %d passed, %d failed" % (passed, failed))
    return passed, failed


def run_sim():
    """zig build sim prints one line per scenario and seed and its own 'N passed, N failed'."""
    p = subprocess.run([os.path.join(ROOT, "vendor", "zig", "zig"), "build", "-Dwerror=true", "sim"], cwd=ROOT,
                       capture_output=True, text=True)
    out = p.stdout + p.stderr
    for line in out.splitlines():
        if line.startswith("ok ") or line.startswith("FAIL") or line.startswith("     reproduce"):
            print("sim: %s" % line, flush=True)
    m = re.findall(r"^(\d+) passed, (\d+) failed$", out, re.M)
    if not m:
        print("FAIL sim (the simulation did not build or run; zig build sim exited %d)" % p.returncode)
        print("\n".join("    " + l for l in out.splitlines()[-30:]))
        return 0, 1
    passed, failed = int(m[-1][0]), int(m[-1][1])
    if p.returncode and not failed:
        failed = 1
        print("FAIL sim (zig build sim exited %d)" % p.returncode)
    print("sim: %d passed, %d failed" % (passed, failed))
    return passed, failed


def main(argv):
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2])
    unit, sim, listing, timeout_override, names = True, True, False, None, []
    jobs = int(os.environ.get("ORCH_TEST_JOBS", "3"))
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--no-unit":
            unit = False
        elif a == "--no-sim":
            sim = False
        elif a == "--list":
            listing = True
        elif a == "-t":
            i += 1
            timeout_override = int(argv[i])
        elif a == "-j":
            i += 1
            jobs = int(argv[i])
        elif a.startswith("-"):
            print(__doc__.strip())
            return 2
        else:
            names.append(a)
        i += 1
    tests = discover()
    if names:
        unit = unit and "unit" in names
        sim = sim and "sim" in names
        tests = [t for t in tests if any(n in "%s.%s" % (t[0], t[1]) for n in names)]
    if listing:
        for mod, fn, _, serial in tests:
            print("%s.%s%s" % (mod, fn, " (serial)" if serial else ""))
        return 0
    passed = failed = 0
    if unit:
        p, f = run_unit()
        passed += p
        failed += f
    if sim:
        p, f = run_sim()
        passed += p
        failed += f
    counts = {"passed": passed, "failed": failed}
    lock = threading.Lock()

    def one(test):
        mod, fn, timeout, _ = test
        name = "%s.%s" % (mod, fn)
        reason, out, secs = run_one(mod, fn, timeout_override or timeout)
        with lock:
            if reason is None:
                counts["passed"] += 1
                print("ok   %s (%.1fs)" % (name, secs), flush=True)
            else:
                counts["failed"] += 1
                print("FAIL %s (%s)" % (name, reason), flush=True)
                print("\n".join("    " + l for l in out.rstrip().splitlines()), flush=True)

    # the longest allowed first, so a long test does not start last and run alone at the end
    queue = sorted((t for t in tests if not t[3]), key=lambda t: -t[2])

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                test = queue.pop(0)
            one(test)

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for test in (t for t in tests if t[3]):
        one(test)
    passed, failed = counts["passed"], counts["failed"]
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
