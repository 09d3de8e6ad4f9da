"""Issue 11 (remote API and access control): roles checked per op on the node that serves a
request and again on the leader for what a follower forwards (src/net/access.h), the local
socket root's only, users in the replicated state (orch user), contexts of the CLI
(orch context) and where a command goes (--host, --data-dir, ORCH_HOST, the context file)."""
import json
import os
import re
import stat
import subprocess
import time

from harness import BIN, Cluster, Conn, Fail, check, wait_until

TIMEOUTS = {"test_leader_checks_the_origin_a_node_forwards": 30, "test_local_socket_is_root_only_and_local_ops_work": 30,
            "test_contexts_pick_where_commands_go": 30, "test_roles_over_tls": 60, "test_no_certificate_no_access": 30,
            "test_users_through_a_worker": 30}


def node_id(c, n):
    return int(c.status(n)["node_id"], 16)


def as_node(c, target, node):
    """A connection to target proved as node (its certificate)."""
    return Conn.tcp(target, node)


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


def test_worker_cannot_claim_a_role():
    """A worker-only node is trusted with its own machine, not with the cluster: whatever origin
    it forwards, the leader gives it no more than viewer, except a user known by certificate,
    whose role is the cluster's record of them (not the one the worker names)."""
    with Cluster(1) as c:
        lead = c.nodes[0]
        w = c.join(extra=("--worker",))
        wait_until(lambda: any(x["name"] == w.name and x["state"] == "ready" for x in c.node_list(lead)), 15,
                   "the worker ready")
        out = c.cli(lead, "user", "add", "vera", "--role", "viewer", "-o", os.path.join(c.tmp, "vera.pem"),
                    json=False).stdout
        serial = re.search(r"certificate serial ([0-9a-fA-F]+)", out).group(1)
        claims = {
            "a user with no certificate": {"op": "kv.set", "kind": "user", "role": "admin", "user": "root-token"},
            "a viewer claimed admin": {"op": "kv.set", "kind": "user", "role": "admin", "user": "vera", "serial": serial},
            "the worker's local socket": {"op": "kv.set", "kind": "local"},
        }
        with as_node(c, lead, w) as k:
            for what, origin in claims.items():
                r = k.call("kv.set", key="kw", value="v", origin=origin)
                check(r.get("rc") != 0 and "needs role admin; you are viewer" in r.get("err", ""),
                      "%s, forwarded by a worker: %r" % (what, r))
            # nor on its own behalf: a worker node asks as itself only what nodes ask
            for op, args in (("kv.set", {"key": "kw", "value": "v"}), ("token.show", {}),
                             ("service.scale", {"name": "x", "replicas": 2})):
                r = k.call(op, **args)
                check(r.get("rc") != 0 and "; you are viewer" in r.get("err", ""), "%s by a worker itself: %r" % (op, r))
        check(kv_get(lead, "kw") is None, "a worker's claim changed the state")
        # the same no-certificate admin origin from a manager still passes (managers hold the
        # data key: they are the cluster)
        with as_node(c, lead, lead) as k:
            check(k.call("kv.set", key="km", value="v", origin=claims["a user with no certificate"]).get("rc") == 0,
                  "a manager's forwarded admin origin refused")


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
        check(p.returncode != 0 and bundle in p.stderr and "not a user bundle" in p.stderr,
              "status through the prod context: %d %r" % (p.returncode, p.stderr))
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


# ---- over TLS, with user certificates ---------------------------------------------------------

def add_user(c, name, role, node=0):
    path = os.path.join(c.tmp, "%s.pem" % name)
    p = c.cli(node, "user", "add", name, "--role", role, "-o", path, json=False)
    check("user %s (%s) added" % (name, role) in p.stdout, "user add output: %r" % p.stdout)
    st = os.stat(path)
    check(stat.S_IMODE(st.st_mode) == 0o600, "bundle mode %o" % st.st_mode)
    with open(path) as f:
        text = f.read()
    check(text.count("PRIVATE KEY-----") == 2 and text.count("BEGIN CERTIFICATE") >= 2, "bundle content")
    return path


def split_bundle(bundle, d):
    """A user's bundle as the files the harness's TLS connections take (node.key, node.crt,
    ca.crt in directory d)."""
    os.makedirs(d, exist_ok=True)
    text = open(bundle).read()
    key_end = text.index("-----END PRIVATE KEY-----") + len("-----END PRIVATE KEY-----\n")
    cert_end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----\n")
    for name, part in (("node.key", text[:key_end]), ("node.crt", text[key_end:cert_end]), ("ca.crt", text[cert_end:])):
        with open(os.path.join(d, name), "w") as f:
            f.write(part)


def remote_env(c):
    env = dict(c.env, ORCH_CONFIG=os.path.join(c.tmp, "no-contexts"))
    for k in ("ORCH_HOST", "ORCH_CERT", "ORCH_CONTEXT", "ORCH_DATA_DIR"):
        env.pop(k, None)
    return env


def remote(c, node, bundle, *args):
    """orch --host NODE --cert-bundle BUNDLE ARGS..., as on another machine."""
    return c.run("--host", c.node(node).addr, "--cert-bundle", bundle, *args, env=remote_env(c))


def refused(p, op, need, who):
    want = "permission denied: op %s needs role %s; you are %s" % (op, need, who)
    return p.returncode != 0 and want in p.stderr


def test_roles_over_tls():
    """A viewer lists but cannot deploy; an operator deploys, scales and reads logs through a
    follower (the leader checks it again) but cannot add users or drain nodes; an admin can;
    a removed user is refused at once."""
    from test_identity import WEB  # one replica of the demo image
    from workload import DEMO, WorkCluster, wait_running
    with WorkCluster(2) as c:
        lead = c.leader()
        fol = next(n for n in c.nodes if n is not lead)
        c.load_demo(c.nodes.index(lead))
        vera, olga, ada = add_user(c, "vera", "viewer"), add_user(c, "olga", "operator"), add_user(c, "ada", "admin")
        users = {u["name"]: u["role"] for u in c.cli(0, "user", "ls")}
        check(users == {"vera": "viewer", "olga": "operator", "ada": "admin"}, "user ls: %r" % users)
        spec = c.write("web.yml", WEB % DEMO)

        # viewer: reads, nothing else
        p = remote(c, fol, vera, "services", "-o", "json")
        check(p.returncode == 0 and json.loads(p.stdout) == [], "viewer services: %r" % p.stderr)
        p = remote(c, fol, vera, "deploy", "-f", spec)
        check(refused(p, "service.put", "operator", "viewer (user vera)"), "viewer deploy: %d %r" % (p.returncode, p.stderr))
        check(c.services() == [], "a refused deploy changed the services")
        p = remote(c, lead, vera, "user", "ls")
        check(refused(p, "users", "admin", "viewer (user vera)"), "viewer user ls: %r" % p.stderr)

        # a user's claim of an origin is no node's: it is checked as the user it is
        creds = os.path.join(c.tmp, "vera-creds")
        split_bundle(vera, creds)
        with Conn.tcp(lead, creds) as k:
            r = k.call("kv.set", key="spoof", value="x", origin={"op": "kv.set", "kind": "local", "role": "admin"})
            check(r.get("rc") != 0 and "you are viewer (user vera)" in r.get("err", ""), "viewer claiming an origin: %r" % r)
            r = k.call("hb", node_id=node_id(c, fol))
            check(r.get("rc") != 0 and "only between the nodes" in r.get("err", ""), "viewer heartbeat: %r" % r)

        # operator: deploy and scale through the follower, logs; no users, no nodes
        p = remote(c, fol, olga, "deploy", "-f", spec)
        check(p.returncode == 0, "operator deploy: %r" % p.stderr)
        wait_running(c, "web", 1)
        p = remote(c, fol, olga, "scale", "web=2")
        check(p.returncode == 0, "operator scale: %r" % p.stderr)
        wait_running(c, "web", 2)
        p = remote(c, fol, olga, "logs", "--tail", "1", "web")
        check(p.returncode == 0, "operator logs: %r" % p.stderr)
        p = remote(c, fol, olga, "user", "add", "eve", "--role", "admin", "-o", os.path.join(c.tmp, "eve.pem"))
        check(refused(p, "user.add", "admin", "operator (user olga)"), "operator user add: %r" % p.stderr)
        check(not os.path.exists(os.path.join(c.tmp, "eve.pem")), "a refused user add wrote a bundle")
        p = remote(c, lead, olga, "node", "drain", fol.name)
        check(refused(p, "node.update", "admin", "operator (user olga)"), "operator drain: %r" % p.stderr)

        # admin: users, from afar
        p = remote(c, fol, ada, "user", "add", "eve", "--role", "viewer", "-o", os.path.join(c.tmp, "eve.pem"))
        check(p.returncode == 0, "admin user add: %r" % p.stderr)
        p = remote(c, lead, ada, "user", "ls", "-o", "json")
        check(p.returncode == 0 and "eve" in [u["name"] for u in json.loads(p.stdout)], "admin user ls: %r" % p.stderr)
        # the follower knows eve once it has applied her record
        eve = os.path.join(c.tmp, "eve.pem")
        p = wait_until(lambda: (lambda q: q if q.returncode == 0 else None)(remote(c, fol, eve, "services", "-o", "json")),
                       10, "the follower to know the new user")
        check([s["name"] for s in json.loads(p.stdout)] == ["web"], "new user's services: %r" % p.stdout)

        # removal: the leader refuses at once, the follower once it has applied it, and a
        # stream the user has open ends
        follow = subprocess.Popen([BIN, "--host", fol.addr, "--cert-bundle", olga, "logs", "-f", "web"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=remote_env(c))
        try:
            time.sleep(0.5)
            if follow.poll() is not None:
                raise Fail("logs -f ended by itself: %r" % follow.communicate()[1])
            p = remote(c, lead, ada, "user", "rm", "olga")
            follow.wait(timeout=10)
            check("connection closed" in follow.stderr.read(), "how the removed user's stream ended")
        finally:
            if follow.poll() is None:
                follow.kill()
                follow.wait()
        check(p.returncode == 0, "user rm: %r" % p.stderr)
        p = remote(c, lead, olga, "services")
        check(p.returncode != 0 and "certificate of user olga was revoked" in p.stderr, "removed user: %r" % p.stderr)
        wait_until(lambda: "was revoked" in remote(c, fol, olga, "scale", "web=1").stderr, 10,
                   "the follower to refuse the removed user")
        check(c.services()[0]["replicas"] == 2, "a removed user's scale changed the service")


def test_no_certificate_no_access():
    """Without a client certificate only a join is possible; a certificate the cluster CA did
    not issue is refused by TLS, whatever it claims."""
    with Cluster(1) as c:
        n = c.nodes[0]
        with Conn.tcp(n, None) as k:
            for op in ("status", "services", "users"):
                r = k.call(op)
                check(r.get("rc") != 0 and "needs a certificate of this cluster" in r.get("err", ""),
                      "%s without a certificate: %r" % (op, r))
        # HTTP inside TLS without a certificate: nothing of the node's figures either
        with Conn.tls_raw(n, None) as k:
            k.send_raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            try:
                while True:
                    b = k.s.recv(4096)
                    if not b:
                        break
                    data += b
            except OSError:
                pass
        check(not data.startswith(b"HTTP/1.1 200") and b"orch_" not in data, "anonymous /metrics: %r" % data[:200])
        cid = c.status(0)["cluster"]
        key, crt = os.path.join(c.tmp, "m.key"), os.path.join(c.tmp, "m.crt")
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                       "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=mallory/OU=user:admin/O=%s" % cid],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 0, "openssl: %r" % p.stderr)
        forged = os.path.join(c.tmp, "mallory.pem")
        with open(forged, "w") as f:
            for part in (key, crt, os.path.join(n.dir, "tls", "ca.crt")):
                with open(part) as g:
                    f.write(g.read())
        p = remote(c, n, forged, "status")
        check(p.returncode != 0 and ("TLS" in p.stderr or "certificate" in p.stderr), "forged certificate: %d %r %r" % (p.returncode, p.stdout, p.stderr))


def test_users_through_a_worker():
    """A worker holds no replica of the users: it checks the role a certificate names and
    forwards to the leader with the caller, and the leader checks the user again (so a
    removed user is refused through a worker too)."""
    with Cluster(1) as c:
        w = c.join(extra=("--worker",))
        wait_until(lambda: c.status(w)["leader_addr"], 10, "the worker to name the leader")
        vera, olga = add_user(c, "vera", "viewer"), add_user(c, "olga", "operator")
        value = os.path.join(c.tmp, "value")
        with open(value, "w") as f:
            f.write("s3cret")
        p = remote(c, w, vera, "secret", "ls", "-o", "json")
        check(p.returncode == 0 and json.loads(p.stdout) == [], "viewer through a worker: %r" % p.stderr)
        p = remote(c, w, vera, "secret", "create", "db", value)
        check(refused(p, "secret.create", "operator", "viewer (user vera)"), "viewer secret create: %r" % p.stderr)
        p = remote(c, w, olga, "secret", "create", "db", value)
        check(p.returncode == 0, "operator secret create through a worker: %r" % p.stderr)
        check([s["name"] for s in c.cli(0, "secret", "ls")] == ["db"], "the secret is not in the cluster")
        c.cli(0, "user", "rm", "olga", json=False)
        p = remote(c, w, olga, "secret", "ls")
        check(p.returncode != 0 and "certificate of user olga was revoked" in p.stderr,
              "removed user through a worker: %r" % p.stderr)
