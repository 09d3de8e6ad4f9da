"""A history checker for acknowledged writes, as Jepsen's set and register checks do.

Clients write through different nodes while faults are injected and record every
operation: when it was invoked, when it completed, and how (ok, fail: it certainly did not
happen, or unknown: a timeout or a lost connection, it may have happened at any time after
its invocation, even much later). Afterwards:

- the set check: every element whose add was acknowledged is in the final read, and no
  element is there that nobody tried to add;
- the register check: the reads and writes of each key can be ordered as one sequential
  history of a register that keeps each operation between its invocation and completion
  (linearizability), searched as Wing & Gong with Lowe's memo of (linearized, value) states.
  Values are unique per write, so a write nobody read can be left out (its effect would be
  hidden from every read anyway), which keeps unknown writes cheap.

Keys are independent registers (linearizability is compositional), so each key is checked
on its own and histories stay small. The checker is tested on hand-made histories in
test/integration/test_history.py (no daemons): it must fail on a lost write, a stale read, a reordering.

The workload half (Workload) drives the node's wire protocol (harness.Conn over the local
socket of each node): kv.set writes, kv.read reads through the log (a barrier of the
leader's term first, so a deposed leader answers nothing stale)."""
import os
import random
import threading
import time

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
NOT_SENT = {"rc": "not sent"}
INF = float("inf")


class Op:
    __slots__ = ("id", "proc", "kind", "key", "value", "t0", "t1", "outcome", "node")

    def __init__(self, oid, proc, kind, key, value, t0, node=None):
        self.id = oid
        self.proc = proc
        self.kind = kind      # "write", "read" (register) or "add" (set)
        self.key = key
        self.value = value    # written, read (None: absent) or added
        self.t0 = t0
        self.t1 = None        # completion; None until completed
        self.outcome = None
        self.node = node      # the node it went through (for reports)

    def __repr__(self):
        return "<%s %s %s=%r %s [%.3f, %s] via %s>" % (
            self.proc, self.kind, self.key, self.value, self.outcome, self.t0,
            "inf" if self.t1 in (None, INF) else "%.3f" % self.t1, self.node)


class History:
    """Thread-safe record of operations. invoke() before sending, complete() after."""

    def __init__(self, clock=time.monotonic):
        self.ops = []
        self.clock = clock
        self.lock = threading.Lock()

    def invoke(self, proc, kind, key, value=None, node=None, t=None):
        with self.lock:
            op = Op(len(self.ops), proc, kind, key, value, self.clock() if t is None else t, node)
            self.ops.append(op)
            return op

    def complete(self, op, outcome, value=None, t=None):
        assert outcome in (OK, FAIL, UNKNOWN)
        op.t1 = self.clock() if t is None else t
        op.outcome = outcome
        if op.kind == "read" and outcome == OK:
            op.value = value

    def counts(self):
        c = {}
        for op in self.ops:
            k = "%s_%s" % (op.kind, op.outcome)
            c[k] = c.get(k, 0) + 1
        return c


class Result:
    def __init__(self):
        self.errors = []
        self.checked = 0      # operations the checks covered
        self.acked = 0        # acknowledged writes (writes + adds) verified

    @property
    def ok(self):
        return not self.errors

    def __repr__(self):
        return "<history %s: %d ops checked, %d acked writes verified%s>" % (
            "ok" if self.ok else "FAILED", self.checked, self.acked,
            "" if self.ok else ": " + "; ".join(self.errors[:5]))


# ---- set -----------------------------------------------------------------------------------

def check_set(ops, final):
    """ops: the "add" operations; final: the set read at the end (after the faults healed).
    Fails on an acknowledged add missing (a lost write) and on an element present that no
    add attempted (a phantom). Unknown adds may be present or not; failed ones must not be."""
    r = Result()
    final = set(final)
    attempted = {}
    for op in ops:
        if op.kind != "add":
            continue
        attempted[op.value] = op
        r.checked += 1
        if op.outcome == OK:
            r.acked += 1
            if op.value not in final:
                r.errors.append("lost: acknowledged add %r is not in the final set" % (op,))
        elif op.outcome == FAIL and op.value in final:
            r.errors.append("failed add %r is in the final set" % (op,))
    for v in sorted(final - set(attempted), key=repr):
        r.errors.append("phantom: %r is in the final set but no add attempted it" % (v,))
    return r


# ---- register --------------------------------------------------------------------------------

class Unchecked(Exception):
    """The search went past its bound: the history is too large to decide (never a pass)."""


def _linearizable(ops, initial, bound):
    """One key's ops (reads and writes; failed ones already dropped). Returns None when
    linearizable, else a description of where every order got stuck."""
    ops = sorted(ops, key=lambda o: o.t0)
    n = len(ops)
    done = [o.t1 if o.outcome == OK else INF for o in ops]
    must = 0
    for i, o in enumerate(ops):
        if o.outcome == OK:
            must |= 1 << i
    seen = set()
    best = [0, None]  # most ops linearized on any path, and the state there
    # Depth-first over (set of linearized ops, register value): the next op may be any not
    # yet linearized whose invocation precedes every pending ok op's completion.
    stack = [(0, initial)]
    steps = 0
    while stack:
        lin, val = stack.pop()
        if (lin & must) == must:
            return None
        if (lin, val) in seen:
            continue
        seen.add((lin, val))
        steps += 1
        if steps > bound:
            raise Unchecked("register %r: more than %d states searched over %d ops" % (ops[0].key, bound, n))
        cnt = bin(lin & must).count("1")
        if cnt > best[0]:
            best[:] = [cnt, (lin, val)]
        # ops are sorted by invocation and complete after it, so the scans stop at the
        # first op invoked after the horizon; the linearized ones form mostly a prefix
        lo = (~lin & (lin + 1)).bit_length() - 1
        horizon = INF
        for i in range(lo, n):
            if ops[i].t0 > horizon:
                break
            if not lin >> i & 1 and must >> i & 1 and done[i] < horizon:
                horizon = done[i]
        for i in range(lo, n):
            if lin >> i & 1:
                continue
            o = ops[i]
            if o.t0 > horizon:
                break  # none after this one may go next either
            if o.kind == "write":
                stack.append((lin | 1 << i, o.value))
            elif o.value == val:
                stack.append((lin | 1 << i, val))
    lin, val = best[1] if best[1] else (0, initial)
    pending = [o for i, o in enumerate(ops) if not lin >> i & 1 and o.outcome == OK]
    pending.sort(key=lambda o: o.t1)
    return "register %r not linearizable: after %d of %d ok ops (value then %r) none of %s can go next" % (
        ops[0].key, best[0], bin(must).count("1"), val, pending[:4])


def check_register(ops, initial=None, bound=200000):
    """ops: "read" and "write" operations on any keys (each key a register starting at
    initial). Each write's value must be unique. Reads that did not complete ok say nothing
    and are dropped, as are failed writes; unknown writes may take effect at any time after
    their invocation or never; ok reads and writes must fit between invocation and
    completion."""
    r = Result()
    by_key = {}
    for op in ops:
        if op.kind not in ("read", "write"):
            continue
        by_key.setdefault(op.key, []).append(op)
    for key, kops in sorted(by_key.items(), key=lambda kv: repr(kv[0])):
        written = {}
        for o in kops:
            if o.kind == "write":
                if o.value in written or o.value == initial:
                    raise ValueError("register %r: value %r written twice; values must be unique" % (key, o.value))
                written[o.value] = o
        read_vals = {o.value for o in kops if o.kind == "read" and o.outcome == OK}
        keep = []
        for o in kops:
            if o.kind == "read" and o.outcome != OK:
                continue
            if o.kind == "write" and (o.outcome == FAIL or (o.outcome == UNKNOWN and o.value not in read_vals)):
                continue
            keep.append(o)
        bad = False
        for o in keep:
            if o.kind == "read" and o.value != initial and o.value not in written:
                r.errors.append("register %r: read %r of a value nobody wrote" % (key, o))
                bad = True
            elif o.kind == "read" and o.value in written and written[o.value].outcome == FAIL:
                r.errors.append("register %r: read %r of a write that failed" % (key, o))
                bad = True
        r.checked += len(keep)
        r.acked += sum(1 for o in keep if o.kind == "write" and o.outcome == OK)
        if bad:
            continue
        why = _linearizable(keep, initial, bound)
        if why:
            r.errors.append(why)
    return r


# ---- the workload -------------------------------------------------------------------------------

def local_conn(node, timeout):
    """A connection to node's local socket (what Workload's clients use by default)."""
    from harness import Conn
    return Conn.local(node, timeout)


def chaos_seed(default):
    """The seed of a fault test: ORCH_CHAOS_SEED, else the test's own; printed."""
    s = int(os.environ.get("ORCH_CHAOS_SEED", default))
    print("seed %d" % s)
    return s


class Workload:
    """Client threads, each writing through its own node: register writes and reads (kv.set,
    kv.read) on a few keys, and set adds (kv.set of a key per element under a prefix).
    connect(node) returns a fresh harness.Conn to that node (reconnected after any error).
    Every error or timeout of a write is an unknown outcome: a write the node could not
    confirm may still commit (a follower's forwarded entry, a leader cut off mid-commit)."""

    def __init__(self, nodes, connect=local_conn, tag="h", keys=4, op_timeout=2.0, seed=None, pause=0.0):
        self.nodes = list(nodes)
        self.connect = connect
        self.tag = tag
        self.keys = ["%s/r%d" % (tag, i) for i in range(keys)]
        self.set_prefix = "%s/s/" % tag
        self.op_timeout = op_timeout
        self.pause = pause
        self.rng = random.Random(seed)
        self.history = History()
        self.stop_ev = threading.Event()
        self.threads = []
        self.seq = 0
        self.lock = threading.Lock()
        self.errors = []

    def _next(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def _call(self, conn_box, node, op, **fields):
        """One request: its reply, None when there was no answer (timeout, closed), or
        NOT_SENT when no connection could be made (the request certainly went nowhere)."""
        if conn_box[0] is None:
            try:
                conn_box[0] = self.connect(node, self.op_timeout)
            except Exception:  # noqa: BLE001 - node down or unreachable
                return NOT_SENT
        try:
            conn_box[0].s.settimeout(self.op_timeout)
            return conn_box[0].call(op, **fields)
        except Exception:  # noqa: BLE001 - any failure to get an answer is "no answer"
            if conn_box[0] is not None:
                try:
                    conn_box[0].close()
                except OSError:
                    pass
            conn_box[0] = None
            return None

    @staticmethod
    def _write_outcome(r):
        if r is NOT_SENT:
            return FAIL
        return OK if r is not None and r.get("rc") == 0 else UNKNOWN

    def one(self, proc, node, conn_box, rng, kind=None):
        """Runs one operation of the mix through node and records it."""
        kind = kind or rng.choice(("write", "read", "add"))
        h = self.history
        if kind == "add":
            v = "%s-%d" % (proc, self._next())
            op = h.invoke(proc, "add", self.set_prefix, v, node.name)
            r = self._call(conn_box, node, "kv.set", key=self.set_prefix + v, value="1")
            h.complete(op, self._write_outcome(r))
        elif kind == "write":
            key = rng.choice(self.keys)
            v = "%s-%d" % (proc, self._next())
            op = h.invoke(proc, "write", key, v, node.name)
            r = self._call(conn_box, node, "kv.set", key=key, value=v)
            h.complete(op, self._write_outcome(r))
        else:
            key = rng.choice(self.keys)
            op = h.invoke(proc, "read", key, None, node.name)
            r = self._call(conn_box, node, "kv.read", key=key)
            if r is not None and r.get("rc") == 0:
                h.complete(op, OK, r.get("value"))
            elif r is not None and r.get("rc") == -3:  # E_NOTFOUND: the register is still empty
                h.complete(op, OK, None)
            else:
                h.complete(op, FAIL)  # a read that did not answer says nothing
        return op

    def _loop(self, proc, node, seed):
        rng = random.Random(seed)
        box = [None]
        while not self.stop_ev.is_set():
            op = self.one(proc, node, box, rng)
            if op.outcome != OK:
                time.sleep(0.05)  # no leader here now: do not pile up unknown writes
            elif self.pause:
                time.sleep(self.pause)
        if box[0] is not None:
            box[0].close()

    def start(self, per_node=1):
        for node in self.nodes:
            for k in range(per_node):
                proc = "%s.%s.%d" % (self.tag, node.name, k)
                t = threading.Thread(target=self._loop, args=(proc, node, self.rng.random()), daemon=True)
                t.start()
                self.threads.append(t)
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(self.op_timeout + 5)
        self.threads = []

    def final_set(self, node, timeout=20):
        """The set as a read through the log on node (retried until a leader answers)."""
        box = [None]
        deadline = time.time() + timeout
        while True:
            r = self._call(box, node, "kv.read", key=self.set_prefix, prefix=True)
            if r is not None and r.get("rc") == 0:
                if box[0]:
                    box[0].close()
                return [k[len(self.set_prefix):] for k in r.get("items", {})]
            if time.time() > deadline:
                raise AssertionError("final set read on %s: no answer for %ds (last %r)" % (node.name, timeout, r))
            time.sleep(0.1)

    def final_reads(self, nodes):
        """One read of every register through each node (recorded in the history), after
        the faults: the last word on what each key holds."""
        for node in nodes:
            box = [None]
            for key in self.keys:
                for _ in range(100):
                    op = self.history.invoke("final.%s" % node.name, "read", key, None, node.name)
                    r = self._call(box, node, "kv.read", key=key)
                    if r is not None and r.get("rc") in (0, -3):
                        self.history.complete(op, OK, r.get("value") if r.get("rc") == 0 else None)
                        break
                    self.history.complete(op, FAIL)
                    time.sleep(0.1)
            if box[0]:
                box[0].close()

    def check(self, nodes):
        """Final reads through every node, then both checks; returns (set, register) Results."""
        self.final_reads(nodes)
        rs = check_set(self.history.ops, self.final_set(nodes[0]))
        rr = check_register(self.history.ops)
        return rs, rr


def verify(workload, nodes, what=""):
    """Runs the checks and raises AssertionError with the findings when either fails;
    returns a one-line summary (figures for the test output)."""
    rs, rr = workload.check(nodes)
    c = workload.history.counts()
    summary = "%sset: %d adds (%d acked) verified; register: %d ops checked, %d acked writes; ops %s" % (
        what + ": " if what else "", rs.checked, rs.acked, rr.checked, rr.acked,
        " ".join("%s=%d" % kv for kv in sorted(c.items())))
    if not rs.ok or not rr.ok:
        raise AssertionError("history check failed (%s): %s" % (summary, "; ".join((rs.errors + rr.errors)[:6])))
    return summary
