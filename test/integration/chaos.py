"""Fault cycles on a lab cluster (lab.py) under the history checker (history.py): each cycle
injects one fault — a node killed -9 and restarted, a host isolated, a link cut both ways
or one way, or a link flapping (cut and healed 3-5 times) — holds it a moment while clients write and read through every node, and
heals it. Every `rounds` cycles the faults stop, the clients stop, and the round is
verified: every acknowledged write present, the reads linearizable, every node at the same
applied index and state hash. Then a new round starts with new keys.

Used by test_partitions.test_fault_cycles (100 cycles in the suite) and by
scripts/chaos.sh for many more:

    python3 test/integration/chaos.py [--cycles N] [--seed S] [--nodes K] [--round R]"""
import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from harness import Fail, wait_until  # noqa: E402
from history import Workload, verify  # noqa: E402

KINDS = ("kill", "isolate", "cut", "oneway", "flap")



class Chaos:
    """Runs cycles on cluster c of lab; counts what it did in .faults, .acked, .rounds."""

    def __init__(self, lab, c, rng, log=print, hold=(0.1, 0.7), gap=(0.1, 0.4), kinds=KINDS):
        self.lab, self.c, self.rng, self.log = lab, c, rng, log
        self.kinds = kinds
        self.hold, self.gap = hold, gap
        self.faults = {k: 0 for k in KINDS}
        self.cycles = 0
        self.acked = 0       # acknowledged writes and adds verified
        self.ops = 0         # operations recorded
        self.rounds = 0
        self.divergences = 0
        self.summaries = []

    def one(self):
        """One cycle: a fault, held, healed."""
        c, lab, rng = self.c, self.lab, self.rng
        n = len(c.nodes)
        kind = rng.choice(self.kinds)
        i = rng.randrange(n)
        j = rng.choice([k for k in range(n) if k != i])
        hold = rng.uniform(*self.hold)
        if kind == "kill":
            desc = "kill -9 %s, down %.2fs" % (c.nodes[i].name, hold)
            c.kill9(c.nodes[i])
            time.sleep(hold)
            c.restart(c.nodes[i])
        else:
            if kind == "isolate":
                desc = "isolate %s %.2fs" % (c.nodes[i].name, hold)
                lab.isolate(i)
            elif kind == "flap":
                flaps = rng.randint(2, 4)
                desc = "flap %s-%s %d+1 times, %.2fs each" % (c.nodes[i].name, c.nodes[j].name, flaps, hold)
                for _ in range(flaps):
                    lab.cut(i, j)
                    time.sleep(hold)
                    lab.heal()
                    time.sleep(hold)
                lab.cut(i, j)
            elif kind == "cut":
                desc = "cut %s-%s %.2fs" % (c.nodes[i].name, c.nodes[j].name, hold)
                lab.cut(i, j)
            else:
                desc = "cut %s->%s %.2fs" % (c.nodes[i].name, c.nodes[j].name, hold)
                lab.cut_oneway(i, j)
            time.sleep(hold)
            lab.heal()
        self.faults[kind] += 1
        self.cycles += 1
        self.log("cycle %d: %s" % (self.cycles, desc))
        time.sleep(rng.uniform(*self.gap))

    def round(self, cycles, tag):
        """cycles cycles under a fresh workload, then the verification of the round."""
        c = self.c
        w = Workload(c.nodes, tag=tag, seed=self.rng.random()).start()
        try:
            for _ in range(cycles):
                self.one()
        finally:
            self.lab.heal()
            w.stop()
        c.leader(timeout=20)
        self.check_converged()
        s = verify(w, c.nodes, "round %s" % tag)
        self.rounds += 1
        self.ops += len(w.history.ops)
        cnt = w.history.counts()
        self.acked += cnt.get("write_ok", 0) + cnt.get("add_ok", 0)
        self.summaries.append(s)
        self.log(s)
        return w

    def check_converged(self, timeout=30):
        """Every node at the same applied index and state hash; a divergence (same index,
        different hashes) is counted and fails at once, a lagging node is waited for."""
        c = self.c
        last = {}

        def same():
            sts = [c.status(n) for n in c.nodes]
            last["v"] = [(n.name, s["applied_index"], s["state_hash"][:12]) for n, s in zip(c.nodes, sts)]
            by_index = {}
            for s in sts:
                by_index.setdefault(s["applied_index"], set()).add(s["state_hash"])
            for idx, hashes in by_index.items():
                if len(hashes) > 1:
                    self.divergences += 1
                    raise Fail("divergence: nodes at applied index %d hold %d state hashes: %s" % (
                        idx, len(hashes), last["v"]))
            return len(by_index) == 1
        try:
            wait_until(same, timeout, "every node at one applied index and state hash", interval=0.1)
        except Fail as e:
            raise Fail("%s (per node: %s)" % (e, last.get("v")))

    def report(self):
        return ("%d cycles (%s), %d rounds verified, %d operations, %d acknowledged writes verified, "
                "%d divergences" % (self.cycles, ", ".join("%s %d" % kv for kv in sorted(self.faults.items())),
                                    self.rounds, self.ops, self.acked, self.divergences))


def main(argv):
    ap = argparse.ArgumentParser(description="fault cycles on a lab cluster, checked by the history checker")
    ap.add_argument("--cycles", type=int, default=300)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--round", type=int, default=50, help="cycles between verifications")
    ap.add_argument("--quiet", action="store_true", help="no line per cycle")
    a = ap.parse_args(argv)
    if a.cycles < 1 or a.nodes < 3 or a.round < 1:
        ap.error("--cycles >= 1, --nodes >= 3, --round >= 1")
    from lab import Lab
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    print("chaos: seed %d, %d nodes, %d cycles, verified every %d" % (seed, a.nodes, a.cycles, a.round), flush=True)

    def log(line):
        if not a.quiet or not line.startswith("cycle "):
            print(line, flush=True)
    t0 = time.time()
    with Lab(a.nodes) as lab:
        c = lab.cluster(a.nodes)
        ch = Chaos(lab, c, random.Random(seed), log)
        left, r = a.cycles, 0
        try:
            while left > 0:
                r += 1
                k = min(left, a.round)
                ch.round(k, "c%d" % r)
                left -= k
        except (Fail, AssertionError) as e:
            print("chaos: FAILED after %s: %s" % (ch.report(), e), flush=True)
            print(c.diagnostics(), flush=True)
            return 1
    print("chaos: %s in %.0fs (seed %d)" % (ch.report(), time.time() - t0, seed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
