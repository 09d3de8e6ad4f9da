"""Rebalancing (issue 13) with real containers through runc: two nodes run a service of 4
replicas and a pinned one (deploy.x-orch-rebalance: false); a third node joins. A replica
moves to it, started there before the old one stops: `orch ps` never shows fewer than 4
running, `orch events` shows the move, the pinned service stays where it was. Prints the
time the move took (a figure, not an assertion)."""
import time

from harness import check, wait_until
from workload import DEMO, WorkCluster, per_node, running, wait_running

TIMEOUTS = {"test_a_joining_node_gets_a_replica": 90}

SPEC = """name: rb
services:
  web:
    image: %s
    stop_grace_period: 1s
    deploy:
      replicas: 4
      update_config: {monitor: 1s}
  pinned:
    image: %s
    stop_grace_period: 1s
    deploy:
      replicas: 2
      x-orch-rebalance: false
""" % (DEMO, DEMO)


def test_a_joining_node_gets_a_replica():
    with WorkCluster(2) as c:
        c.load_demo()
        c.deploy(0, c.write("rb.yml", SPEC))
        before = wait_running(c, "web", 4, timeout=40)
        pinned = wait_running(c, "pinned", 2, timeout=40)
        check(per_node(before) == {"n1": 2, "n2": 2}, "web before the join: %s" % per_node(before))
        pinned_ids = sorted(t["id"] for t in pinned)

        n3 = c.join()
        c.node_ids[n3.name] = c.status(n3)["node_id"]
        joined = time.time()
        lowest, seen = 4, []

        def spread():
            nonlocal lowest
            ts = c.ps(0, "web")
            r = running(ts)
            lowest = min(lowest, len(r))
            seen.append(len(r))
            on = per_node(r)
            return on if len(r) == 4 and on.get("n3") == 1 and len(ts) == 4 else None
        on = wait_until(spread, 45, "a web replica running on n3 and 4 in all", interval=0.2)
        took = time.time() - joined
        print("web after the join: %s; running counts seen while it moved: %s" % (on, sorted(set(seen))))
        print("figure: a web replica moved to the joined node %.1f s after orch join returned" % took)
        check(lowest >= 4, "orch ps showed %d running web tasks during the move (never fewer than 4)" % lowest)
        check(sorted(on.values()) == [1, 1, 2], "web spread over 3 nodes as 2/1/1: %s" % on)

        ev = c.cli(0, "events")
        moves = [e for e in ev if e["kind"] == "rebalancing"]
        done = [e for e in ev if e["kind"] == "rebalanced"]
        print("\n".join("%s %s %s" % (e["kind"], e["service"], e["message"]) for e in moves + done))
        check(len(moves) == 1 and moves[0]["service"] == "web" and "to node n3" in moves[0]["message"],
              "one rebalancing event, web to n3: %r" % moves)
        check(len(done) == 1 and done[0]["service"] == "web", "one rebalanced event for web: %r" % done)
        check(not [e for e in ev if e["kind"].startswith("rebalanc") and e["service"] == "pinned"],
              "no move of the pinned service")

        # the pinned service stays where it ran, and nothing moves again
        time.sleep(3)
        after = running(c.ps(0, "pinned"))
        check(sorted(t["id"] for t in after) == pinned_ids and "n3" not in per_node(after),
              "pinned kept its tasks %s: now %s" % (pinned_ids, [(t["id"], t["node"]) for t in after]))
        check(len([e for e in c.cli(0, "events") if e["kind"] == "rebalancing"]) == 1, "a second move after the spread")
