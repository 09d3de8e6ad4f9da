"""The history checker (history.py) on hand-made histories: ones that must pass and ones
that must fail (a lost write, a stale read, a reordering, a phantom). A checker that cannot
fail proves nothing about the fault tests that use it. No daemons here."""
import history
from harness import check
from history import FAIL, OK, UNKNOWN, History, Unchecked, check_register, check_set

TIMEOUTS = {"test_register_passes": 10, "test_register_fails": 10, "test_set_checks": 10,
            "test_register_bounded": 20, "test_register_random": 30}


def hist(*rows):
    """rows: (proc, kind, key, value, t0, t1, outcome); t1 None: never completed."""
    h = History()
    for proc, kind, key, value, t0, t1, outcome in rows:
        op = h.invoke(proc, kind, key, value if kind != "read" else None, t=t0)
        h.complete(op, outcome, value, t=t1 if t1 is not None else float("inf"))
    return h.ops


def passes(ops, what):
    r = check_register(ops)
    check(r.ok, "%s: must be linearizable, checker said %r" % (what, r))
    return r


def fails(ops, what, word=""):
    r = check_register(ops)
    check(not r.ok, "%s: must NOT be linearizable, checker passed it" % what)
    check(word in " ".join(r.errors), "%s: reason %r lacks %r" % (what, r.errors, word))
    return r


def test_register_passes():
    passes(hist(("a", "write", "x", 1, 0, 1, OK), ("b", "read", "x", 1, 2, 3, OK)), "write then read")
    passes(hist(("b", "read", "x", None, 0, 1, OK), ("a", "write", "x", 1, 2, 3, OK)), "empty read before the write")
    # concurrent write and reads: either value is fine while they overlap
    passes(hist(("a", "write", "x", 1, 0, 1, OK), ("a", "write", "x", 2, 2, 6, OK),
                ("b", "read", "x", 2, 3, 4, OK), ("c", "read", "x", 2, 4.5, 5, OK), ("d", "read", "x", 2, 7, 8, OK)),
           "a read during a write sees it, later reads too")
    passes(hist(("a", "write", "x", 1, 0, 1, OK), ("a", "write", "x", 2, 2, 6, OK),
                ("b", "read", "x", 1, 3, 4, OK), ("c", "read", "x", 2, 4.5, 5, OK)),
           "old value then new during the write")
    # two concurrent writes: reads after both agree on one order
    passes(hist(("a", "write", "x", 1, 0, 5, OK), ("b", "write", "x", 2, 0, 5, OK),
                ("c", "read", "x", 1, 6, 7, OK), ("d", "read", "x", 1, 8, 9, OK)), "concurrent writes, 2 then 1")
    # an unknown write may take effect long after it was invoked, or never
    passes(hist(("a", "write", "x", 1, 0, 1, OK), ("b", "write", "x", 2, 2, None, UNKNOWN),
                ("c", "read", "x", 1, 3, 4, OK), ("c", "read", "x", 2, 10, 11, OK)), "an unknown write lands late")
    passes(hist(("a", "write", "x", 1, 0, 1, OK), ("b", "write", "x", 2, 2, None, UNKNOWN),
                ("c", "read", "x", 1, 10, 11, OK)), "an unknown write never lands")
    # failed reads say nothing, failed writes did not happen
    passes(hist(("a", "write", "x", 1, 0, 1, OK), ("b", "read", "x", 7, 2, 3, FAIL),
                ("c", "write", "x", 3, 4, 5, FAIL), ("d", "read", "x", 1, 6, 7, OK)), "failed ops ignored")
    # keys are independent registers
    passes(hist(("a", "write", "x", 1, 0, 1, OK), ("a", "write", "y", 2, 2, 3, OK),
                ("b", "read", "x", 1, 4, 5, OK), ("b", "read", "y", 2, 4, 5, OK)), "two keys")


def test_register_fails():
    fails(hist(("a", "write", "x", 1, 0, 1, OK), ("b", "read", "x", None, 2, 3, OK)), "lost write", "not linearizable")
    fails(hist(("a", "write", "x", 1, 0, 1, OK), ("a", "write", "x", 2, 2, 3, OK),
               ("b", "read", "x", 1, 4, 5, OK)), "stale read", "not linearizable")
    fails(hist(("a", "write", "x", 1, 0, 1, OK), ("a", "write", "x", 2, 2, 3, OK),
               ("b", "read", "x", 2, 4, 5, OK), ("c", "read", "x", 1, 6, 7, OK)), "reordered: new then old", "not linearizable")
    fails(hist(("a", "write", "x", 1, 0, 5, OK), ("b", "write", "x", 2, 0, 5, OK),
               ("c", "read", "x", 1, 6, 7, OK), ("d", "read", "x", 2, 8, 9, OK), ("e", "read", "x", 1, 10, 11, OK)),
          "concurrent writes seen in two orders", "not linearizable")
    fails(hist(("a", "read", "x", 1, 0, 1, OK), ("b", "write", "x", 1, 2, 3, OK)), "read from the future", "not linearizable")
    fails(hist(("a", "write", "x", 1, 0, 1, OK), ("b", "read", "x", 9, 2, 3, OK)), "read of a value never written",
          "nobody wrote")
    fails(hist(("a", "write", "x", 1, 0, 1, FAIL), ("b", "read", "x", 1, 2, 3, OK)), "read of a failed write",
          "failed")
    # an unknown write seen, then gone again while nothing else was written
    fails(hist(("a", "write", "x", 1, 0, 1, OK), ("b", "write", "x", 2, 2, None, UNKNOWN),
               ("c", "read", "x", 2, 3, 4, OK), ("c", "read", "x", 1, 5, 6, OK)), "unknown write undone", "not linearizable")
    # a lost write under load: many ops, one acknowledged write missing at the end
    rows = [("a", "write", "x", i, 2 * i, 2 * i + 1, OK) for i in range(1, 30)]
    rows.append(("b", "read", "x", 28, 100, 101, OK))
    fails(hist(*rows), "last acknowledged write lost", "not linearizable")


def test_set_checks():
    h = hist(("a", "add", "s", "e1", 0, 1, OK), ("b", "add", "s", "e2", 0, 1, OK),
             ("c", "add", "s", "e3", 0, None, UNKNOWN), ("d", "add", "s", "e4", 0, 1, FAIL))
    r = check_set(h, ["e1", "e2", "e3"])
    check(r.ok and r.acked == 2, "all acked present (unknown present too): %r" % r)
    check(check_set(h, ["e1", "e2"]).ok, "an unknown add may be absent")
    r = check_set(h, ["e1", "e3"])
    check(not r.ok and "lost" in r.errors[0] and "e2" in r.errors[0], "a lost add must fail: %r" % r)
    r = check_set(h, ["e1", "e2", "zz"])
    check(not r.ok and "phantom" in r.errors[0], "an element never attempted must fail: %r" % r)
    r = check_set(h, ["e1", "e2", "e4"])
    check(not r.ok and "failed add" in r.errors[0], "a failed add present must fail: %r" % r)


def test_register_bounded():
    """Too large to decide within the bound is an error, never a pass."""
    # 18 concurrent writes, then reads that disagree: not linearizable, but only a search
    # through every order of the writes can tell
    rows = [("p%d" % i, "write", "x", i, 0, 100, OK) for i in range(18)]
    rows += [("r", "read", "x", 0, 101, 102, OK), ("r", "read", "x", 1, 103, 104, OK), ("r", "read", "x", 0, 105, 106, OK)]
    try:
        r = check_register(hist(*rows), bound=500)
    except Unchecked:
        return
    check(False, "an undecidable-within-bound history was decided: %r" % r)


def test_register_random():
    """Histories generated from a real sequential register with random overlapping
    intervals must pass; the same plus a read of the previous write's value after the
    newest write completed (the two writes not overlapping) must fail."""
    import random
    rng = random.Random(12)
    checked = 0
    for trial in range(200):
        # a sequential execution: op k happens at time 10k; intervals stretch around it
        val, rows, writes = None, [], []
        for k in range(12):
            t = 10.0 * k
            t0, t1 = t - rng.uniform(0, 12), t + rng.uniform(0, 12)
            if rng.random() < 0.5:
                val = "v%d.%d" % (trial, k)
                writes.append((val, t0, t1))
                rows.append(("p%d" % k, "write", "x", val, t0, t1, OK))
            else:
                rows.append(("p%d" % k, "read", "x", val, t0, t1, OK))
        passes(hist(*rows), "random sequential history %d" % trial)
        if len(writes) >= 2 and writes[-2][2] < writes[-1][1]:
            (old, _, _), (new, _, new_done) = writes[-2], writes[-1]
            checked += 1
            bad = rows + [("late", "read", "x", old, new_done + 1, new_done + 2, OK)]
            fails(hist(*bad), "stale read after the newest write completed (trial %d)" % trial, "not linearizable")
    check(checked > 20, "too few failing variants generated: %d" % checked)


history = history  # the module under test (imported for its Workload by the fault tests)
