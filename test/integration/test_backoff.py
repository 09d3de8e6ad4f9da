"""Issue 9 (restarts that back off): real daemons on 127.0.0.1, real containers through runc.
A crash-looping service -- a command that does not exist (the task is `rejected`) and one
that exits 1 after it started (`failed`) -- runs for a minute: each slot's restart delay
doubles from restart_policy.delay, each replacement waits until its recorded start time
before it is even placed, max_attempts stops a slot whose tasks are rejected, and the
number of tasks and of raft entries over the minute stays within what the back-off
schedule allows (a formula, not a timing)."""
import math
import re
import time

from harness import check
from workload import DEMO, WorkCluster

TIMEOUTS = {"test_crash_loop_backs_off": 180}

WINDOW = 60.0  # seconds the crash loop is watched
DELAY = 5.0  # restart_policy.delay (the default) of nocmd and exit1
SLOTS = 2  # replicas of nocmd and of exit1
# Raft entries one task can cost at most: the batch that creates it (which also shuts down
# its predecessor and trims the slot's history), its placement, and the agent's reports
# (preparing, starting, running, and the final state).
ENTRIES_PER_TASK = 6
# Entries a crash loop cannot be blamed for: a node.update, a role change, a late report.
SLACK = 10

SPEC = """services:
  nocmd:
    image: %(img)s
    command: ["/no/such/command"]
    deploy:
      replicas: %(slots)d
  exit1:
    image: %(img)s
    command: ["sh", "-c", "sleep 1; exit 1"]
    stop_grace_period: 1s
    deploy:
      replicas: %(slots)d
  limited:
    image: %(img)s
    command: ["/no/such/command"]
    deploy:
      restart_policy: {delay: 1s, max_attempts: 2}
""" % {"img": DEMO, "slots": SLOTS}


def attempts_within(window, delay):
    """How many tasks of one slot can have started within `window` seconds of the first:
    attempt k starts no earlier than delay * (2^k - 1) (delays d, 2d, 4d, ... summed), so
    k <= log2(window / delay + 1)."""
    return int(math.floor(math.log2(window / delay + 1))) + 1


def test_crash_loop_backs_off():
    with WorkCluster(3) as c:
        c.load_demo()
        leader = c.leader()
        idx0 = c.status(leader)["commit_index"]
        c.deploy(0, c.write("loop.yml", SPEC))
        t0 = time.time()
        seen = {}  # task id -> its newest view: tasks of a slot's history are trimmed later
        unplaced_early = []
        while time.time() < t0 + WINDOW:
            now_ms = time.time() * 1000
            for t in c.ps(0, all_tasks=True):
                seen[t["id"]] = t
                # a replacement waiting for its start time is not even placed
                if t["start_after"] > now_ms + 200 and t["node"]:
                    unplaced_early.append((t["id"], t["service"], t["node"], t["start_after"] - now_ms))
            time.sleep(0.5)
        idx1 = c.status(leader)["commit_index"]
        table = c.cli(0, "ps", json=False).stdout
        for t in c.ps(0, all_tasks=True):
            seen[t["id"]] = t
        evs = c.cli(0, "events")

    by_slot = {}
    for t in seen.values():
        by_slot.setdefault((t["service"], t["slot"]), []).append(t)
    for k in by_slot:
        by_slot[k].sort(key=lambda t: t["id"])
    counts = {svc: sum(len(v) for (s, _), v in by_slot.items() if s == svc) for svc in ("nocmd", "exit1", "limited")}
    entries = idx1 - idx0
    print("over %.0f s: tasks created %r, raft entries %d (index %d -> %d)" % (WINDOW, counts, entries, idx0, idx1))
    print(table)
    for k, ts in sorted(by_slot.items()):
        print("  %s slot %d: %s" % (k[0], k[1], ", ".join("%d:%s f=%s" % (t["id"], t["state"], t.get("failures"))
                                                         for t in ts)))

    check(not unplaced_early, "tasks placed before their start time: %r" % unplaced_early[:5])
    # every task of nocmd was rejected (it cannot start), every ended one of exit1 failed
    for (svc, slot), ts in by_slot.items():
        ended = [t for t in ts if t["state"] not in ("pending", "assigned", "preparing", "starting", "running")]
        want = {"nocmd": "rejected", "limited": "rejected", "exit1": "failed"}[svc]
        check(ended and all(t["state"] == want for t in ended), "%s slot %d ended as %r" %
              (svc, slot, [t["state"] for t in ended]))

    # few tasks: at most the attempts the schedule allows in the window, plus the pending one
    per_slot = attempts_within(WINDOW, DELAY) + 1
    for svc in ("nocmd", "exit1"):
        check(counts[svc] <= SLOTS * per_slot, "%s made %d tasks in %.0f s; the back-off allows %d per slot" %
              (svc, counts[svc], WINDOW, per_slot))
        check(counts[svc] >= SLOTS * 3, "%s made only %d tasks: was it restarted at all?" % (svc, counts[svc]))
    # max_attempts 2: the first task and two restarts, all rejected, then no more
    lim = by_slot[("limited", 1)]
    check(len(lim) == 3 and all(t["state"] == "rejected" for t in lim),
          "limited (max_attempts 2): %r" % [(t["id"], t["state"]) for t in lim])
    check([t["failures"] for t in lim] == [0, 1, 2] and [t["restarts"] for t in lim] == [0, 1, 2],
          "limited failures/restarts: %r" % [(t["failures"], t["restarts"]) for t in lim])

    # the delay grows: each replacement's recorded start time is delay * 2^(k-1) after its
    # predecessor ended, the rejected ones included
    for (svc, slot), ts in sorted(by_slot.items()):
        d = 1000 if svc == "limited" else DELAY * 1000
        gaps = []
        for k, (prev, nxt) in enumerate(zip(ts, ts[1:]), 1):
            check(nxt["failures"] == prev["failures"] + 1, "%s slot %d: failures %r" %
                  (svc, slot, [t["failures"] for t in ts]))
            gap = nxt["start_after"] - prev["state_at"]
            want = min(d * 2 ** (k - 1), 300000)
            check(want - 50 <= gap <= want + 2000, "%s slot %d restart %d: start %d ms after the end, want %d" %
                  (svc, slot, k, gap, want))
            gaps.append(gap)
        check(all(b > a for a, b in zip(gaps, gaps[1:])), "%s slot %d: delays do not grow: %r" % (svc, slot, gaps))
        if svc != "limited":
            check(len(gaps) >= 3, "%s slot %d: only %d restarts seen" % (svc, slot, len(gaps)))

    # and no replacement was placed before its start time (the scheduler's own record)
    sched = {}
    for e in evs:
        if e["kind"] == "scheduled":
            sched[e["task"]] = e["at"]
    for t in seen.values():
        if t["id"] in sched and t["start_after"]:
            check(sched[t["id"]] >= t["start_after"], "task %d (%s) placed %d ms before its start time" %
                  (t["id"], t["service"], t["start_after"] - sched[t["id"]]))

    # orch ps says what is going on
    check(re.search(r"restarting in \d+[sm]", table), "ps shows no 'restarting in': %s" % table)
    check(re.search(r"\d+ failures", table), "ps shows no failure count: %s" % table)

    # raft entries: bounded by the tasks made, not by the time spent
    bound = sum(counts.values()) * ENTRIES_PER_TASK + 3 + SLACK
    check(entries <= bound, "%d raft entries for %d tasks in %.0f s (bound %d)" % (entries, sum(counts.values()),
                                                                                  WINDOW, bound))
