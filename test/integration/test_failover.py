"""Issue 12 (faster failover) on real nodes: a killed leader's followers campaign at once
(its streams end without TLS's close_notify and its port refuses), a leader that is only
silent (SIGSTOP: nothing closes, as in a partition) is replaced by the election timeout,
and a leader stopped with SIGTERM hands leadership over before it exits; a follower whose
connections to a live leader are reset probes its port and does not campaign. The checks are on
the order of events in the node logs and on the term (one election each), not on times."""
import os
import subprocess
import re
import signal
import time

from harness import Cluster, check, wait_until

TIMEOUTS = {"test_reset_stream_to_live_leader_is_no_death": 60}
# elections counted per fault: a loaded machine could add one
SERIAL = True

GONE = re.compile(r"raft: the leader ([0-9a-f]{16}) is gone")


def three_voters(c):
    wait_until(lambda: all(sorted(c.roles(n).values()) == ["voter"] * 3 for n in c.up()), 15, "3 voters on every node")
    # every node applied the raft configuration that makes it a voter (a node that does
    # not know itself a voter yet neither campaigns nor votes)
    c.write_bench(c.nodes[0], 10, 1)
    c.converged()


def term(c, node):
    return int(c.status(node)["term"])


def before(c):
    """The leader, the others, the term and where each node's log ends now."""
    old = c.leader()
    rest = [n for n in c.nodes if n is not old]
    return old, rest, term(c, rest[0]), {n.name: len(n.log_text()) for n in c.nodes}


def lines_after(node, mark):
    return node.log_text()[mark:]


def kill_and_check(c, restart):
    """kill -9 of the leader; every survivor takes it for gone, and one election follows."""
    old, rest, t, marks = before(c)
    old_id = c.status(old)["node_id"]
    c.kill9(old)
    new = c.leader(rest, timeout=10)
    check(new is not old, "old leader still reported")
    new_id = c.status(new)["node_id"]
    for n in rest:
        text = lines_after(n, marks[n.name])
        m = GONE.search(text)
        check(m, "%s did not take the killed leader for gone:\n%s" % (n.name, text))
        check(m.group(1) == old_id, "%s took %s for gone, killed %s" % (n.name, m.group(1), old_id))
        # the early campaign comes before this node hears of a new leader
        for lead in ("raft: follower, leader %s" % new_id, "raft: leader, leader"):
            k = text.find(lead)
            check(k < 0 or m.start() < k, "%s: the early campaign logged after the new leader" % n.name)
    # one election, no split vote (two rounds would make the term grow by 2)
    check(term(c, new) == t + 1, "term %d -> %d after the kill: not one election" % (t, term(c, new)))
    c.write_bench(rest[0], 50, 8)
    c.converged(rest)
    if restart:
        c.restart(old)
        three_voters(c)
        c.converged()


def test_kill9_leader_followers_campaign_at_once():
    with Cluster(3) as c:
        three_voters(c)
        kill_and_check(c, True)  # the killed node comes back: its streams are watched too
        # a node starts at most one early election per election timeout (500 ms here)
        time.sleep(0.6)
        kill_and_check(c, False)


def test_sigstop_leader_waits_for_the_timeout():
    with Cluster(3) as c:
        three_voters(c)
        old, rest, t, marks = before(c)
        os.kill(old.pid, signal.SIGSTOP)  # its connections stay open: nobody is told
        try:
            new = c.leader(rest, timeout=10)
            check(new is not old, "old leader still reported")
            for n in rest:
                text = lines_after(n, marks[n.name])
                check(not GONE.search(text), "%s campaigned early with nothing closed: %s" % (n.name, text))
            check(term(c, new) >= t + 1, "no election")
        finally:
            c.kill9(old)  # a stopped process dies on SIGKILL
        c.write_bench(rest[0], 50, 8)


def test_sigterm_leader_hands_over_before_exit():
    with Cluster(3) as c:
        three_voters(c)
        old, rest, t, rmarks = before(c)
        mark = rmarks[old.name]
        c.stop(old)
        text = lines_after(old, mark)
        h = text.find("raft: handing leadership over before stopping")
        check(h >= 0, "the stopping leader did not hand over:\n" + text)
        # before it exited, the old leader stepped down for the transfer's election (term + 1)
        m = re.search(r"raft: follower, leader [0-9a-f]{16} \(\S+\), term %d\n" % (t + 1), text[h:])
        check(m, "the old leader stopped without stepping down for its successor's election:\n" + text)
        new = c.leader(rest, timeout=10)
        # one election (the transfer's), and nobody took the clean stop for a death
        check(term(c, new) == t + 1, "term %d -> %d: not one election" % (t, term(c, new)))
        for n in rest:
            check(not GONE.search(lines_after(n, rmarks[n.name])), "%s took a clean stop for a death" % n.name)
        c.write_bench(rest[0], 50, 8)


def tcp_between(a, b):
    """The TCP connections (local, peer) that process a opened to b's node port."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", "dport", "= :%d" % b.port],
                         capture_output=True, text=True, check=True).stdout
    return [l.split()[2:4] for l in out.splitlines() if "pid=%d," % a.pid in l]


def reset_links(a, b):
    """Aborts every TCP connection between the processes of a and b, both ways (ss -K: the
    kernel resets them, as a broken path would): nothing closes cleanly, both stay alive."""
    conns = tcp_between(a, b) + tcp_between(b, a)
    for local, peer in conns:
        lip, lport = local.rsplit(":", 1)
        pip, pport = peer.rsplit(":", 1)
        subprocess.run(["ss", "-K", "-tn", "src", "%s:%s" % (lip, lport), "dst", "%s:%s" % (pip, pport)],
                       capture_output=True, check=True)
    return len(conns)


def test_reset_stream_to_live_leader_is_no_death():
    """A follower whose connections to the leader are reset (no close_notify: the stream
    ended as if the leader had died) probes the leader's port; the port answers and stays
    open, so it must not campaign early: no "is gone", the term and the leader unchanged,
    writes through that follower acknowledged. With a probe that takes every ended stream
    for a death, the follower logs "is gone" and this fails."""
    with Cluster(3, env={"ORCH_TRACE": "raft"}) as c:
        three_voters(c)
        lead, rest, t, marks = before(c)
        lid = c.status(lead)["node_id"]
        for f in rest:
            n = reset_links(f, lead)
            check(n >= 2, "%d connections between %s and the leader %s to reset" % (n, f.name, lead.name))
            # the probe (PROBE_MS 200) and more than an election timeout (500 ms)
            time.sleep(1.0)
            c.write_bench(f, 20, 4)
            text = lines_after(f, marks[f.name])
            check(not GONE.search(text), "%s took the live leader for gone:\n%s" % (f.name, text))
            check("stream with %s ended without a clean close: probing" % lid in text,
                  "%s did not see its stream to the leader end uncleanly (nothing probed):\n%s" % (f.name, text))
            check("probe of %s: alive or silent" % lid in text, "%s: no live probe answer:\n%s" % (f.name, text))
        for n in c.nodes:
            text = lines_after(n, marks[n.name])
            check(not GONE.search(text), "%s took the live leader for gone:\n%s" % (n.name, text))
            check("raft: candidate, " not in text, "%s became a candidate" % n.name)
        check(c.leader() is lead, "the leader changed")
        terms = [term(c, n) for n in c.nodes]
        check(terms == [t] * 3, "term %d -> %s after resets of live links" % (t, terms))
