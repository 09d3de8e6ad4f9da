"""Issue 11, limits of the node port: oversized frames, a frame of a million nils and a flood
of requests whose replies are never read leave the node's memory bounded; the abusive
connection is closed and the node keeps serving. Caps on connections in handshake.

The transport is `connect` below (harness.Conn.tcp: TLS 1.3, then the preamble of
src/net/auth.h): as a node, with the node's own certificate, or anonymously (no client
certificate: a peer that is not a proved node, held to the client limits)."""
import socket
import struct
import time

import mpack
from harness import Cluster, Conn, check, wait_until

TIMEOUTS = {"test_abuse_leaves_memory_bounded": 90, "test_handshake_cap": 60}

MiB = 1 << 20
# What the abuse below may add to the node's peak RSS. Each abusive frame is refused from
# its first bytes or decoded under the element budget (src/net/frame.h: 8 MiB of objects);
# the largest frame a client may send is 4 MiB (PROTO_FRAME_CLIENT; its read buffer grows
# to 8 MiB); unread replies stop at 16 MiB queued plus one reply (CONN_WRITE_QUEUE_MAX);
# the 1 MiB value the flood reads is stored in the state and the raft log. That is under
# 40 MiB together; 64 leaves room for the allocator. Without the limits the frame of nils
# alone cost ~100 MB and the flood ~200 MB.
RSS_BUDGET = 64 * MiB


def connect(node, as_node=False):
    """A connection to the node port: as a node of the cluster (the node's own certificate),
    or as a peer that has not proved it is one (no client certificate)."""
    return Conn.tcp(node, node if as_node else None)


def status_field(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def reset_peak(pid):
    """Resets VmHWM (the peak RSS) to the current RSS (proc(5), clear_refs 5)."""
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def refused(conn, what):
    """The node answered an error and closed, or just closed."""
    conn.s.settimeout(10)
    data = b""
    try:
        while True:
            b = conn.s.recv(65536)
            if not b:
                break
            data += b
    except ConnectionResetError:
        pass
    if data:
        n = struct.unpack(">I", data[:4])[0]
        r = mpack.unpackb(data[4:4 + n])
        check(r.get("rc", 0) != 0 and r.get("err"), "%s: reply %r" % (what, r))
        return r["err"]
    return "closed"


def send_partial(conn, data):
    """Sends what the node may read before it closes (it may close while we write)."""
    try:
        conn.s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def nils_frame(op, n, key="entry"):
    body = b"\x83\xa2op" + mpack.packb(op) + b"\xa2id\x01" + mpack.packb(key) + b"\xdd" + struct.pack(">I", n)
    body += b"\xc0" * n
    return struct.pack(">I", len(body)) + body


def test_abuse_leaves_memory_bounded():
    with Cluster(1) as c:
        n = c.nodes[0]
        pid = n.pid
        with Conn.local(n) as k:
            check(k.call("kv.set", key="big", value="x" * MiB).get("rc") == 0, "kv.set of 1 MiB failed")
        time.sleep(0.5)
        base = status_field(pid, "VmRSS")
        reset_peak(pid)
        errors = []

        # 1. frames larger than their op allows, refused from the header and the op's name:
        # the body is never sent.
        for op, size, as_node in (("status", 1 * MiB, False), ("kv.set", 8 * MiB, False), ("apply", 60 * MiB, False),
                                  ("apply", 5 * MiB, False), ("status", 1 * MiB, True), ("apply", 63 * MiB, True)):
            with connect(n, as_node) as k:
                head = b"\x82\xa2op" + mpack.packb(op) + b"\xa2id\x01"
                send_partial(k, struct.pack(">I", size) + head)
                err = refused(k, "%d bytes of %s" % (size, op))
                check("over the limit" in err, "%s of %d bytes: %r" % (op, size, err))
                errors.append(err)
        # a request that does not name its op first is held to the small default
        with connect(n) as k:
            body = b"\x82\xa2id\x01\xa2op" + mpack.packb("status")
            send_partial(k, struct.pack(">I", 200 * 1024) + body)
            err = refused(k, "op not first")
            check("does not name its op first" in err, "op not first: %r" % err)
        # the length field itself past FRAME_MAX
        with connect(n) as k:
            send_partial(k, struct.pack(">I", 0xFFFFFFF0) + b"\x80")
            refused(k, "4 GiB frame")

        # 2. frames of one-byte nils: 4 MiB of them from a node (apply may be large), just
        # under 4 MiB from a client; refused by the element budget before decoding.
        for as_node, count in ((True, 4 * MiB), (False, 4 * MiB - 64)):
            with connect(n, as_node) as k:
                send_partial(k, nils_frame("apply" if as_node else "kv.set", count, "entry" if as_node else "value"))
                err = refused(k, "frame of %d nils" % count)
                check("elements" in err, "frame of nils: %r" % err)

        # 3. a flood of requests whose replies (1 MiB each) are never read: the node cuts
        # the connection once its queue is over the limit, even a node's.
        with connect(n, True) as k:
            flood = b"".join(mpack.frame(mpack.packb({"op": "kv.get", "id": i + 1, "key": "big"}))
                             for i in range(300))
            k.s.settimeout(20)
            send_partial(k, flood)
            time.sleep(1)
            # now read: what the node queued before it cut us, then the end
            got = 0
            k.s.settimeout(10)
            data = b""
            try:
                while True:
                    b = k.s.recv(1 << 20)
                    if not b:
                        break
                    data += b
            except ConnectionResetError:
                pass
            while len(data) >= 4:
                m = struct.unpack(">I", data[:4])[0]
                if len(data) < 4 + m:
                    break
                got += 1
                data = data[4 + m:]
            check(got < 300, "the node sent all %d replies to a reader that did not read" % got)
            print("flood: %d of 300 replies of 1 MiB before the node closed" % got)

        peak = status_field(pid, "VmHWM")
        print("rss before %.1f MiB, peak during the abuse %.1f MiB (budget +%d MiB)"
              % (base / MiB, peak / MiB, RSS_BUDGET // MiB))
        check(peak - base < RSS_BUDGET, "peak RSS grew by %.1f MiB (budget %d MiB)"
              % ((peak - base) / MiB, RSS_BUDGET // MiB))
        # the node still serves, on both sockets
        check(n.alive(), "the node died")
        check(c.status(n)["raft_state"], "orch status failed after the abuse")
        with connect(n, True) as k:
            r = k.call("kv.get", key="big")
            check(r.get("rc") == 0 and len(r.get("value", "")) == MiB, "kv.get after the abuse: rc %r" % r.get("rc"))


def test_handshake_cap():
    """Connections that never finish their handshake are capped (HANDSHAKES_MAX, 256, in
    src/node/daemon.c): past the cap a new one is closed at once; once they go, clients
    connect again."""
    with Cluster(1) as c:
        n = c.nodes[0]
        idle = []
        try:
            for _ in range(256):
                idle.append(socket.create_connection((n.ip, n.port), timeout=5))
            time.sleep(0.3)

            def extra_closed():
                s = socket.create_connection((n.ip, n.port), timeout=5)
                try:
                    s.settimeout(2)
                    try:
                        return s.recv(1) == b""
                    except socket.timeout:
                        return False
                    except ConnectionResetError:
                        return True
                finally:
                    s.close()
            wait_until(extra_closed, 5, "a connection past the handshake cap to be closed")
            check("too many handshakes" in n.log_text(), "no warning about the cap in the log")
            check(c.status(n)["raft_state"], "status over the local socket failed")
        finally:
            for s in idle:
                s.close()
        def serves():
            try:
                with connect(n, True) as k:
                    return k.call("ping").get("rc") == 0
            except (OSError, EOFError, AssertionError):
                return False
        wait_until(serves, 10, "a client to be served again once the idle connections closed")
