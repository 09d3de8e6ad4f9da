"""Issue 9 (membership at scale): 50 real node processes joined at once, each on its own
loopback address 127.0.x.y. Every join is served (queued on the leader, not refused), each
`orch join` returns caught up, the leader plans roles for the whole cluster at once (5
voters, the rest standbys), every node heartbeats whatever its raft role, and the cluster
survives losing its first node right after the storm."""
import collections
import os
import subprocess
import time

from harness import BIN, Cluster, check, wait_until

TIMEOUTS = {"test_join_storm_50_holds": 240, "test_join_storm_50_first_node_killed": 180,
            "test_spare_finds_a_new_leader_by_asking": 120}

N = 50


def storm(c, block):
    """orch init on 127.0.BLOCK.1, then N-1 parallel joins on 127.0.BLOCK.2.. Returns the
    joins in the order they returned and prints the figures."""
    c.init(ip="127.0.%d.1" % block)
    t0 = time.time()
    done = c.join_many(["127.0.%d.%d" % (block, i + 2) for i in range(N - 1)])
    took = time.time() - t0
    secs = sorted(d[1] for d in done)
    print("%d joins at once: all returned after %.2fs; per join median %.2fs, max %.2fs"
          % (len(done), took, secs[len(secs) // 2], secs[-1]), flush=True)
    for n, _, out in done:
        check("caught up with the leader" in out and (", a voter," in out or ", a standby," in out),
              "join of %s did not say it caught up as a voter or standby: %r" % (n.name, out))
    return done


def census(c, node):
    """(role, state) -> count, as `orch nodes` on `node` shows it."""
    return collections.Counter((x["role"], x["state"]) for x in c.node_list(node))


def want_census(c, node, want):
    got = census(c, node)
    return got if got == collections.Counter(want) else None


def usage(pids):
    """(total RSS in MiB, total CPU seconds) of the given processes, from /proc."""
    rss, cpu = 0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return rss / 1024.0, cpu


def every_node_agrees(c, nodes, count):
    """Every node in `nodes` lists `count` nodes and names the same leader; returns it."""
    leaders = set()
    for n in nodes:
        s = c.status(n)
        if s["nodes"] != count or not s["leader_id"]:
            return None
        leaders.add(s["leader_id"])
    return leaders.pop() if len(leaders) == 1 else None


def test_join_storm_50_holds():
    with Cluster() as c:
        done = storm(c, 91)
        t_last = time.time()
        last = done[-1][0]
        ns = c.node_list(last)
        check(len(ns) == N, "orch nodes on the last joiner %s right after its join: %d nodes" % (last.name, len(ns)))
        want = {("voter", "ready"): 5, ("standby", "ready"): N - 5}
        wait_until(lambda: want_census(c, c.nodes[0], want), 15, "5 voters and %d standbys, all ready" % (N - 5))
        print("5 voters + %d standbys, all ready, %.2fs after the last join returned" % (N - 5, time.time() - t_last))
        wait_until(lambda: every_node_agrees(c, c.nodes, N), 15, "every node to list %d nodes and agree on the leader" % N)
        print("every node lists %d and names the leader %.2fs after the last join" % (N, time.time() - t_last), flush=True)
        term = c.status(c.nodes[0])["term"]
        pids = [n.pid for n in c.nodes]
        aio = open("/proc/sys/fs/aio-nr").read().strip()
        for at in (20, 60):
            time.sleep(max(0.0, t_last + at - time.time()))
            if at == 20:
                rss, cpu0 = usage(pids)
                t_cpu = time.time()
            got = census(c, c.nodes[0])
            check(got == collections.Counter(want), "%ds after the storm: %r" % (at, dict(got)))
            check(all(n.alive() for n in c.nodes), "%ds after the storm: nodes died: %r" % (at, [n.name for n in c.nodes if not n.alive()]))
            check(every_node_agrees(c, c.nodes, N), "%ds after the storm: the nodes disagree on the leader or the count" % at)
            print("%ds after the storm: %r" % (at, dict(got)), flush=True)
        rss, cpu1 = usage(pids)
        print("%d idle daemons: %.0f MiB RSS in all (%.1f MiB each), %.1f%% of one CPU in all over the last %.0fs; aio-nr %s"
              % (N, rss, rss / N, 100.0 * (cpu1 - cpu0) / (time.time() - t_cpu), time.time() - t_cpu, aio), flush=True)
        # not asserted: a machine shared with other tests can starve a leader into an election
        print("raft term %d after the storm, %d a minute later" % (term, c.status(c.nodes[0])["term"]))


def test_join_storm_50_first_node_killed():
    with Cluster() as c:
        done = storm(c, 92)
        t_last = time.time()
        first = c.nodes[0]
        time.sleep(max(0.0, t_last + 1 - time.time()))
        c.kill9(first)
        t_kill = time.time()
        rest = [n for n in c.nodes if n is not first]
        lead = c.leader(among=rest, timeout=15)
        print("new leader %s %.2fs after the kill" % (lead.name, time.time() - t_kill), flush=True)
        c.write_bench(rest[-1], 20, 4)
        p = c.cli(rest[-1], "node", "label", rest[-1].name, "storm=survived", json=False)
        check(p.returncode == 0, "orch node label after the kill: %r" % p.stderr)
        want = {("voter", "ready"): 5, ("standby", "ready"): N - 6, ("spare", "down"): 1}
        wait_until(lambda: want_census(c, lead, want), 30, "the first node down and replaced: %r" % want)
        print("first node down and replaced, 5 live voters, %.2fs after the kill" % (time.time() - t_kill), flush=True)
        wait_until(lambda: every_node_agrees(c, rest, N), 15, "every live node to list %d nodes and agree on the leader" % N)
        labels = {x["name"]: x["labels"] for x in c.node_list(rest[0])}
        check(labels[rest[-1].name].get("storm") == "survived", "label write lost: %r" % labels[rest[-1].name])


def test_spare_finds_a_new_leader_by_asking():
    """A standby that is down becomes a spare (the leader sends it nothing). The leader then
    changes: the new one never sent the spare anything, so when it comes back raft names no
    leader to it. It must find the leader by asking its peers, heartbeat, become a ready
    standby, and then the voter that replaces the dead leader."""
    with Cluster(4, failure_timeout="2s") as c:
        lead = c.leader()
        wait_until(lambda: want_census(c, lead, {("voter", "ready"): 3, ("standby", "ready"): 1}), 10, "3 voters and a standby")
        roles = c.roles(lead)
        spare = next(n for n in c.nodes if roles[n.name] == "standby")
        c.kill9(spare)
        wait_until(lambda: {x["name"]: (x["role"], x["state"]) for x in c.node_list(lead)}[spare.name] == ("spare", "down"),
                   15, "the dead standby to become a spare")
        c.kill9(lead)
        rest = [n for n in c.nodes if n not in (lead, spare)]
        lead2 = c.leader(among=rest, timeout=15)
        c.write_bench(lead2, 30, 4)
        c.restart(spare)
        t0 = time.time()
        def swapped():
            got = {x["name"]: (x["role"], x["state"]) for x in c.node_list(lead2)}
            return got[spare.name] == ("voter", "ready") and got[lead.name] == ("spare", "down")
        wait_until(swapped, 15, "the spare back, ready, and voter in place of the dead leader")
        print("restarted spare found the new leader and replaced the dead one as voter in %.2fs" % (time.time() - t0))
        check(want_census(c, lead2, {("voter", "ready"): 3, ("spare", "down"): 1}), "roles: %r" % dict(census(c, lead2)))
        c.converged(c.up(), timeout=15)


def test_parallel_joins_with_one_name():
    """Two machines join at the same moment under the same name: both wait in the leader's
    queue, one gets the name, the other is refused with a clear message and starts nothing."""
    with Cluster() as c:
        c.init(ip="127.0.93.1")
        procs = []
        for i in (2, 3):
            n = c._new_node("dup", "127.0.93.%d" % i)
            n.dir += "-%d" % i
            c.nodes.append(n)
            args = ["join", c.nodes[0].addr, "--token", c.token, "--listen", n.addr, "--data-dir", n.dir, "--name", "dup", "--detach"]
            procs.append((n, subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                              env=c.env, stdin=subprocess.DEVNULL)))
        results = [(n, p.wait(60), p.communicate()) for n, p in procs]
        ok = [n for n, rc, _ in results if rc == 0]
        refused = [(n, out + err) for n, rc, (out, err) in results if rc != 0]
        check(len(ok) == 1 and len(refused) == 1, "want one join to succeed: %r" % [(n.addr, rc, o) for n, rc, o in results])
        check("already used" in refused[0][1], "refused join says: %r" % refused[0][1])
        check(not os.path.exists(os.path.join(refused[0][0].dir, "orch.pid")), "the refused join started a node")
        c._record(ok[0])
        names = sorted(x["name"] for x in c.node_list(ok[0]))
        check(names == ["dup", "n1"], "nodes: %r" % names)
