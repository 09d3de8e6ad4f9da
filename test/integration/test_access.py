"""Issue 11 (remote API and access control): roles checked per op on the node that serves a
request and again on the leader for what a follower forwards (src/net/access.h), the local
socket root's only, users in the replicated state (orch user), contexts of the CLI
(orch context) and where a command goes (--host, --data-dir, ORCH_HOST, the context file)."""
import json
import os
import stat
import struct
import tempfile

from harness import Cluster, Conn, check, wait_until

TIMEOUTS = {}


def node_id(c, n):
    return int(c.status(n)["node_id"], 16)


def as_node(c, target, node):
    """A connection to target proved as node (a node's own link)."""
    return Conn.tcp(target, c.token, extra=struct.pack(">Q", node_id(c, node)))


def kv_get(node, key):
    with Conn.local(node) as k:
        r = k.call("kv.get", key=key)
    return r.get("value") if r.get("rc") == 0 else None


def test_leader_checks_the_origin_a_node_forwards():
    """A request a node sends on someone's behalf is checked on the leader as that someone:
    the role it names, and for a user known by certificate, that it still is a user."""
    with Cluster(3) as c:
        lead = c.leader()
        other = next(n for n in c.nodes if n is not lead)
        viewer = {"op": "kv.set", "kind": "user", "role": "viewer", "user": "alice"}
        admin = {"op": "kv.set", "kind": "user", "role": "admin", "user": "root-token"}
        gone = {"op": "kv.set", "kind": "user", "role": "admin", "user": "bob", "serial": "0a1b2c"}
        with as_node(c, lead, other) as k:
            r = k.call("kv.set", key="k1", value="v", origin=viewer)
            check(r.get("rc") != 0 and r.get("err") ==
                  "permission denied: op kv.set needs role admin; you are viewer (user alice)", "viewer origin: %r" % r)
            r = k.call("kv.set", key="k1", value="v", origin=gone)
            check(r.get("rc") != 0 and "certificate of user bob was revoked" in r.get("err", ""),
                  "origin of a user who is none: %r" % r)
            # an entry built for a viewer's op: the entry is the node's to send, the op is not
            # the viewer's to ask
            r = k.call("apply", entry=b"\0" * 8, origin=dict(viewer, op="service.scale"))
            check(r.get("rc") != 0 and "op service.scale needs role operator; you are viewer" in r.get("err", ""),
                  "apply for a viewer's op: %r" % r)
            # the node's own request, and one for a caller whose role allows it, pass
            check(k.call("kv.set", key="k2", value="own").get("rc") == 0, "the node's own kv.set refused")
            r = k.call("kv.set", key="k3", value="v", origin=admin)
            check(r.get("rc") == 0, "admin origin refused: %r" % r)
        c.converged()
        check(kv_get(lead, "k1") is None, "a refused request changed the state")
        check(kv_get(lead, "k3") == "v" and kv_get(other, "k2") == "own", "accepted writes missing")
        # users never reach the ops between nodes, whatever they claim: the node's log says
        # who was refused
        log = lead.log_text()
        check("refused kv.set from" in log and "you are viewer (user alice)" in log, "refusals not logged")


def test_local_socket_is_root_only_and_local_ops_work():
    with Cluster(1) as c:
        n = c.nodes[0]
        st = os.stat(n.sock)
        check(stat.S_ISSOCK(st.st_mode), "%s is not a socket" % n.sock)
        check(st.st_mode & 0o077 == 0 and st.st_uid == os.getuid(), "socket mode %o owner %d" % (st.st_mode, st.st_uid))
        # the local socket is the machine's admin: users are managed here
        check(c.cli(n, "user", "ls") == [], "users of a new cluster")
        p = c.cli(n, "user", "rm", "ghost", json=False, check=False)
        check(p.returncode == 4 and "no user ghost" in p.stderr, "user rm of no user: %d %r" % (p.returncode, p.stderr))
        p = c.cli(n, "user", "add", "alice", "--role", "root", json=False, check=False)
        check(p.returncode == 2 and "bad role root" in p.stderr, "bad role: %d %r" % (p.returncode, p.stderr))
        taken = os.path.join(c.tmp, "taken.pem")
        open(taken, "w").close()
        p = c.cli(n, "user", "add", "alice", "--role", "viewer", "-o", taken, json=False, check=False)
        check(p.returncode == 1 and "choose another file" in p.stderr, "existing bundle: %d %r" % (p.returncode, p.stderr))
        check(os.path.getsize(taken) == 0 and c.cli(n, "user", "ls") == [], "a refused user add changed something")


def test_contexts_pick_where_commands_go():
    with Cluster(1) as c:
        n = c.nodes[0]
        cfg = os.path.join(c.tmp, "ctx", "config")
        env = dict(c.env, ORCH_CONFIG=cfg)
        env.pop("ORCH_HOST", None)
        env.pop("ORCH_CERT", None)
        bundle = os.path.join(c.tmp, "alice.pem")
        with open(bundle, "w") as f:
            f.write("not used before a connection\n")

        def orch(*args, e=None):
            return c.run(*args, env=e or env)

        p = orch("context", "add", "prod", "--host", n.addr, "--cert-bundle", bundle + ".nope")
        check(p.returncode == 4 and "no such file" in p.stderr, "missing bundle: %d %r" % (p.returncode, p.stderr))
        p = orch("context", "add", "local", "--host", n.addr, "--cert-bundle", bundle)
        check(p.returncode == 2, "context named local accepted: %r" % p.stderr)
        check(orch("context", "add", "prod", "--host", n.addr, "--cert-bundle", bundle).returncode == 0, "add")
        check(stat.S_IMODE(os.stat(cfg).st_mode) == 0o600, "context file mode %o" % os.stat(cfg).st_mode)
        ls = json.loads(orch("context", "ls", "-o", "json").stdout)
        check([(x["name"], x["current"]) for x in ls] == [("local", True), ("prod", False)], "context ls: %r" % ls)
        check(orch("context", "use", "prod").returncode == 0, "context use")
        ls = json.loads(orch("context", "ls", "-o", "json").stdout)
        check([x["name"] for x in ls if x["current"]] == ["prod"] and ls[1]["host"] == n.addr and
              ls[1]["cert_bundle"] == bundle, "context ls after use: %r" % ls)
        # the current context sends commands to its host with its bundle...
        p = orch("status")
        check(p.returncode != 0 and n.addr in p.stderr, "status through the prod context: %d %r" % (p.returncode, p.stderr))
        # ...unless --data-dir names this machine's node, or the local context is asked for
        for args in (("-D", n.dir, "status", "-o", "json"), ("--context", "local", "-D", n.dir, "status", "-o", "json")):
            p = orch(*args)
            check(p.returncode == 0 and json.loads(p.stdout)["raft_state"] == "leader", "%r: %r" % (args, p.stderr))
        p = orch("status", e=dict(env, ORCH_CONTEXT="local", ORCH_DATA_DIR=n.dir))
        check(p.returncode == 0, "ORCH_CONTEXT=local: %r" % p.stderr)
        p = orch("--context", "staging", "status")
        check(p.returncode == 4 and "context staging" in p.stderr, "unknown context: %d %r" % (p.returncode, p.stderr))
        # --host needs a bundle; ORCH_HOST is --host
        p = orch("--host", n.addr, "status", e=dict(env, ORCH_CONTEXT="local"))
        check(p.returncode == 2 and "--cert-bundle" in p.stderr, "--host without bundle: %d %r" % (p.returncode, p.stderr))
        p = orch("status", e=dict(env, ORCH_CONTEXT="local", ORCH_HOST=n.addr))
        check(p.returncode == 2 and "--cert-bundle" in p.stderr, "ORCH_HOST without bundle: %d %r" % (p.returncode, p.stderr))
        # rm of the current context falls back to the local node
        check(orch("context", "rm", "prod").returncode == 0, "context rm")
        ls = json.loads(orch("context", "ls", "-o", "json").stdout)
        check([x["name"] for x in ls] == ["local"] and ls[0]["current"], "after rm: %r" % ls)
        # a broken file is an error naming its line, not a silent fall back to local
        with open(cfg, "a") as f:
            f.write("hots: 1.2.3.4:5\n")
        p = orch("-D", n.dir, "context", "ls")
        check(p.returncode == 1 and "%s:" % cfg in p.stderr, "broken context file: %d %r" % (p.returncode, p.stderr))
        p = orch("status")
        check(p.returncode == 1 and "%s:" % cfg in p.stderr, "broken context file: %d %r" % (p.returncode, p.stderr))
