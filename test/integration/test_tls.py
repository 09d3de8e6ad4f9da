"""Issue 11 (trust): the node port speaks only TLS 1.3, both sides holding certificates of
the cluster CA; join tokens pin that CA, come as a manager and a worker token, and rotate;
orch node rm revokes a node at once; no token on any process's command line or in a data
directory; a deploy's environment values never cross the wire in clear."""
import calendar
import os
import random
import re
import shutil
import signal
import subprocess
import time

from harness import Cluster, Conn, Fail, check, parse_token, tls_dir, wait_until
from workload import DEMO, WorkCluster, wait_running

TIMEOUTS = {"test_deploy_trace_holds_no_environment": 120, "test_tokens_rotate_and_worker_token": 90,
            "test_removed_node_refused_at_once": 60, "test_init_with_a_given_ca_and_expiry": 60}


def s_client(node, creds, *extra):
    d = tls_dir(creds)
    return subprocess.run(["openssl", "s_client", "-connect", node.addr, "-CAfile", os.path.join(d, "ca.crt"),
                           "-cert", os.path.join(d, "node.crt"), "-key", os.path.join(d, "node.key"), "-showcerts",
                           "-verify_return_error"] + list(extra),
                          capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)


def subject(node):
    p = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", os.path.join(tls_dir(node), "node.crt")],
                       capture_output=True, text=True, check=True)
    return p.stdout


def refused(node, creds):
    """Whether a connection to node with creds' certificate is refused (no preamble ack)."""
    try:
        with Conn.tcp(node, creds, timeout=5) as k:
            k.call("ping")
        return False
    except (EOFError, OSError):
        return True


def test_node_port_speaks_only_tls13():
    with Cluster(1) as c:
        n = c.nodes[0]
        st = c.status(n)
        p = s_client(n, n, "-tls1_3")
        check(p.returncode == 0 and "Verify return code: 0 (ok)" in p.stdout, "s_client -tls1_3: %s" % p.stdout[-800:])
        check("TLSv1.3" in p.stdout, "not TLS 1.3: %s" % p.stdout[-800:])
        check(re.search(r"CN\s*=\s*%s" % st["node_id"], p.stdout) and re.search(r"OU\s*=\s*manager", p.stdout)
              and re.search(r"O\s*=\s*%s" % st["cluster"], p.stdout), "the node's certificate subject: %s" % p.stdout[:1500])
        check("orch cluster CA" in p.stdout, "the chain does not show the CA: %s" % p.stdout[:1500])
        p = s_client(n, n, "-tls1_2")
        check(p.returncode != 0 or "Cipher is (NONE)" in p.stdout, "TLS 1.2 was accepted: %s" % p.stdout[-800:])
        # a plain client gets nothing and is closed
        for data in (b"GET / HTTP/1.0\r\n\r\n", b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                     bytes(random.Random(1).getrandbits(8) for _ in range(300))):
            with Conn.raw_tcp(n) as k:
                k.send_raw(data)
                check(k.outcome() == "closed", "a plain client got an answer to %r" % data[:20])
        # no certificate: TLS is up, but only a join may be asked
        with Conn.tls_raw(n, None, ca=os.path.join(tls_dir(n), "ca.crt")) as k:
            k.send_raw(b"ORCH\x02\x02\0\0")
            check(k.recv_exact(1) == b"K", "anonymous preamble not acknowledged")
            r = k.call("status")
            check(r.get("rc") != 0 and "needs a certificate" in r.get("err", ""), "anonymous status answered %r" % r)
            r = k.call("join", node={"id": 5, "name": "x", "addr": "127.0.0.1:1"}, secret="00" * 32, csr="x")
            check(r.get("rc") != 0 and "token refused" in r.get("err", ""), "a join with a wrong secret: %r" % r)
            # the right secret does not buy a certificate for a member's id, nor one from a broken CSR
            key, csr = os.path.join(c.tmp, "k.pem"), os.path.join(c.tmp, "csr.pem")
            subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-keyout", key, "-subj", "/CN=intruder", "-out", csr], check=True, capture_output=True)
            with open(csr) as f:
                pem = f.read()
            secret = parse_token(c.token)[2]
            r = k.call("join", node={"id": int(st["node_id"], 16), "name": "intruder", "addr": "127.0.0.1:2"},
                       secret=secret, csr=pem)
            check(r.get("rc") != 0 and "already a member" in r.get("err", ""), "a join taking the leader's id: %r" % r)
            r = k.call("join", node={"id": 77, "name": "intruder", "addr": "127.0.0.1:2"}, secret=secret,
                       csr=pem.replace("A", "B", 3))
            check(r.get("rc") != 0 and "CSR" in r.get("err", ""), "a join with a broken CSR: %r" % r)
            check(len(c.node_list(n)) == 1, "a refused join added a node: %r" % c.node_list(n))
        with Conn.tls_raw(n, None, ca=os.path.join(tls_dir(n), "ca.crt")) as k:
            k.send_raw(b"GET /metrics HTTP/1.0\r\n\r\n")
            check(k.outcome() == "closed", "metrics served to a client with no certificate")
        # with a certificate, curl gets the health answer and a clean TLS end
        d = tls_dir(n)
        p = subprocess.run(["curl", "-sS", "--tlsv1.3", "--cacert", os.path.join(d, "ca.crt"), "--cert",
                            os.path.join(d, "node.crt"), "--key", os.path.join(d, "node.key"), "-k",
                            "https://%s/healthz" % n.addr], capture_output=True, text=True, timeout=15)
        check(p.returncode == 0 and p.stdout.startswith("ok leader"), "curl healthz: rc %d %r %r" % (p.returncode, p.stdout, p.stderr))
        check(c.status(n)["raft_state"] == "leader", "node not serving after the probes")


def test_certificate_of_another_cluster_refused():
    with Cluster(1) as a, Cluster(1) as b:
        na, nb = a.nodes[0], b.nodes[0]
        # b's node, trusting a's CA (so the client side is satisfied): a refuses b's certificate
        p = subprocess.run(["openssl", "s_client", "-connect", na.addr, "-CAfile", os.path.join(tls_dir(na), "ca.crt"),
                            "-cert", os.path.join(tls_dir(nb), "node.crt"), "-key", os.path.join(tls_dir(nb), "node.key"),
                            "-tls1_3"], input="ORCH\x02\x02\0\0", capture_output=True, text=True, timeout=15)
        check("K" not in p.stdout.split("---")[-1], "a node of another cluster got the preamble ack: %s" % p.stdout[-500:])
        check(refused(na, nb), "a's node accepted b's node certificate")
        wait_until(lambda: "refused a connection" in na.log_text(), 5, "a to log the refused certificate")
        # and a node of a does not accept b's node as a server
        try:
            with Conn.tls_raw(nb, na, timeout=5) as k:
                raise Fail("a's node trusted b's node: %r" % k)
        except OSError:
            pass
        check(a.status(na)["raft_state"] == "leader" and b.status(nb)["raft_state"] == "leader", "a node is down")


def _join_fails(c, token, expect):
    d = os.path.join(c.tmp, "refused-%d" % random.getrandbits(32))
    port = c._new_node().port
    p = c.run("join", c.nodes[0].addr, "--listen", "127.0.0.1:%d" % port, "--data-dir", d, "--name", "refused",
              "--detach", env=c.token_env(token))
    check(p.returncode != 0 and re.search(expect, p.stderr), "join: rc %d, %r (expected %r)" % (p.returncode, p.stderr, expect))
    check(not os.path.exists(os.path.join(d, "identity")), "a refused join wrote an identity")


def test_tokens_rotate_and_worker_token():
    with Cluster(2) as c:
        old_m, old_w = c.token, c.worker_token
        check(parse_token(old_m)[1] == parse_token(old_w)[1] and old_m != old_w, "tokens %r %r" % (old_m, old_w))
        shown = c.cli(0, "token", "show", json=False).stdout
        check(old_m in shown and old_w in shown, "orch token show: %r" % shown)
        check(c.cli(0, "token", "show", "worker", json=False).stdout.strip() == old_w, "orch token show worker")
        w = c.join(token=old_w)
        check("OU = worker" in subject(w), "a worker-token node's certificate: %s" % subject(w))
        p = c.cli(w, "token", "show", json=False, check=False)
        check(p.returncode != 0 and "on a manager" in p.stderr, "orch token show on a worker: %r" % p.stderr)
        check("OU = manager" in subject(c.nodes[1]), "a manager-token node's certificate: %s" % subject(c.nodes[1]))
        new_m = c.cli(0, "token", "rotate", "manager", json=False).stdout.strip()
        check(new_m.startswith("ORCH2-") and new_m != old_m and parse_token(new_m)[:2] == parse_token(old_m)[:2],
              "rotated token %r (old %r)" % (new_m, old_m))
        _join_fails(c, old_m, r"token refused")
        # the follower manager sees the rotation in its state
        wait_until(lambda: c.cli(1, "token", "show", "manager", json=False).stdout.strip() == new_m, 10,
                   "the follower to show the rotated token")
        new_w = c.cli(1, "token", "rotate", "worker", json=False).stdout.strip()
        check(new_w != old_w, "worker token not rotated")
        _join_fails(c, old_w, r"token refused")
        m = c.join(token=new_m)
        check("OU = manager" in subject(m), "a node joined with the new token: %s" % subject(m))
        # the nodes joined before keep working: writes through each manager, one state; the
        # worker-token node is a worker (node/worker.h) and answers through the leader
        managers = [n for n in c.nodes if n is not w]
        for n in managers:
            c.write_bench(n, 20, 4)
        c.converged(among=managers)
        kinds = {n["name"]: n.get("kind") for n in c.node_list(0)}
        check(kinds.get(w.name) == "worker" and kinds.get(m.name) == "manager", "node kinds %r" % kinds)
        check(not os.path.exists(os.path.join(w.dir, "datakey")), "the worker-token node got the data key")
        log = "".join(n.log_text() for n in c.nodes)
        check(old_m not in log and new_m not in log and parse_token(new_w)[2] not in log, "a token in a node's log")


def test_removed_node_refused_at_once():
    with Cluster(3) as c:
        lead = c.leader()
        victim = next(n for n in c.nodes if n is not lead)
        k = Conn.tcp(lead, victim)
        check(k.call("ping").get("rc") == 0, "ping as the victim before its removal")
        c.cli(lead, "node", "rm", "--force", victim.name, json=False)
        k.s.settimeout(5)
        try:
            data = k.s.recv(100)
            check(not data, "the removed node's connection got %r" % data)
        except OSError:
            pass
        k.close()
        check(refused(lead, victim), "the leader accepted the removed node's certificate")
        other = next(n for n in c.nodes if n is not lead and n is not victim)
        wait_until(lambda: refused(other, victim), 5, "the follower to refuse the removed node")
        check("not a member" in lead.log_text(), "the leader did not log the refusal")
        # its own attempts (a join with its certificate is no join: it needs a token)
        with Conn.tls_raw(lead, victim) as k2:
            k2.send_raw(b"ORCH\x02\x02\0\0")
            check(k2.outcome() == "closed", "the removed node got past the preamble")
        check(victim.name not in [n["name"] for n in c.node_list(lead)], "the removed node is still listed")
        c.write_bench(other, 20, 4)


def _cmdlines():
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    out[int(pid)] = f.read()
            except OSError:
                pass
    return out


def test_token_in_no_command_line_or_file():
    with Cluster(1) as c:
        secret = parse_token(c.token)[2].encode()
        f = os.path.join(c.tmp, "token")
        with open(f, "w") as fh:
            fh.write(c.token + "\n")
        os.chmod(f, 0o600)
        a = c.join(extra=["--token", c.token])          # visible while orch join starts, then wiped
        b = c.join(extra=["--token-file", f])
        d = c.join()                                      # ORCH_TOKEN
        c.wait_members(c.nodes)
        leaks = [pid for pid, cl in _cmdlines().items() if secret in cl]
        check(not leaks, "the token is in the command line of %r" % leaks)
        for n in (a, b, d):
            with open("/proc/%d/cmdline" % n.pid, "rb") as fh:
                cl = fh.read()
            check(b"join" in cl, "%s: pid %d is not the node: %r" % (n.name, n.pid, cl))
            with open("/proc/%d/environ" % n.pid, "rb") as fh:
                check(secret not in fh.read(), "%s keeps the token in its environment" % n.name)
        for n in c.nodes:
            for root, _, files in os.walk(n.dir):
                for name in files:
                    p = os.path.join(root, name)
                    if os.path.isfile(p) and os.path.getsize(p) < (8 << 20):
                        with open(p, "rb") as fh:
                            check(secret not in fh.read(), "the token's secret is in %s" % p)


def test_deploy_trace_holds_no_environment():
    if not shutil.which("tcpdump"):
        raise Fail("tcpdump is missing (vendor/manifest lists it; run scripts/setup.sh)")
    with WorkCluster(2) as c:
        c.load_demo()
        value = "envsecret%016x" % random.getrandbits(64)
        pcap = os.path.join(c.tmp, "deploy.pcap")
        ports = " or ".join("tcp port %d" % n.port for n in c.nodes)
        td = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", pcap, ports],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: os.path.exists(pcap), 10, "tcpdump to start")
            time.sleep(0.5)
            spec = c.write("env.yml", """services:
  web:
    image: %s
    stop_grace_period: 1s
    environment:
      TOKEN_OF_TEST: %s
    deploy:
      replicas: 4
""" % (DEMO, value))
            c.deploy(0, spec)
            ts = wait_running(c, "web", 4)
            check(len({t["node"] for t in ts}) == 2, "tasks not on both nodes: %r" % ts)
            time.sleep(0.5)
        finally:
            td.send_signal(signal.SIGTERM)
            td.wait(10)
        with open(pcap, "rb") as f:
            data = f.read()
        check(len(data) > 4096 and b"\x17\x03\x03" in data, "the capture holds no TLS traffic (%d bytes)" % len(data))
        check(value.encode() not in data, "the environment value crossed the wire in clear")
        # the value did reach the second node (over the captured port): its tasks' bundles
        found = []
        for root, _, files in os.walk(os.path.join(c.nodes[1].dir, "tasks")):
            if "config.json" in files:
                with open(os.path.join(root, "config.json")) as f:
                    found.append(value in f.read())
        check(found and all(found), "the second node's task bundles lack the value: %r" % found)


def test_init_with_a_given_ca_and_expiry():
    """orch init --ca-cert/--ca-key: the cluster uses that CA (the token pins it, orch ca show
    prints it); a key that is not the certificate's is refused; --cert-expiry sets how long
    node certificates are valid."""
    with Cluster(0) as c:
        key, crt, other = (os.path.join(c.tmp, x) for x in ("ca.key", "ca.crt", "other.key"))
        for k in (key, other):
            subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k],
                           check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", "/CN=my test CA", "-days", "30",
                        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
                        "-out", crt], check=True, capture_output=True)
        fp = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-fingerprint", "-sha256"], check=True,
                            capture_output=True, text=True).stdout.strip().split("=", 1)[1].replace(":", "").lower()
        bad = os.path.join(c.tmp, "bad")
        p = c.run("init", "--data-dir", bad, "--listen", "127.0.0.1:%d" % c._new_node().port, "--ca-cert", crt,
                  "--ca-key", other)
        check(p.returncode != 0 and "is not the key of" in p.stderr, "init with a foreign key: %r" % p.stderr)
        check(not os.path.exists(os.path.join(bad, "identity")), "a refused init left an identity")
        p = c.run("init", "--data-dir", bad, "--ca-cert", crt)
        check(p.returncode == 2 and "go together" in p.stderr, "init with --ca-cert alone: %r" % p.stderr)
        n1 = c.init(extra=["--ca-cert", crt, "--ca-key", key, "--cert-expiry", "10d"])
        check(parse_token(c.token)[1] == fp and parse_token(c.worker_token)[1] == fp,
              "the tokens pin %s, not the given CA %s" % (parse_token(c.token)[1], fp))
        shown = c.cli(n1, "ca", "show", json=False).stdout
        check("fingerprint: " + fp in shown and "BEGIN CERTIFICATE" in shown, "orch ca show: %r" % shown)
        n2 = c.join()
        c.wait_members(c.nodes)
        for n in (n1, n2):
            p = subprocess.run(["openssl", "verify", "-CAfile", crt, os.path.join(tls_dir(n), "node.crt")],
                               capture_output=True, text=True)
            check(p.returncode == 0, "%s's certificate is not from the given CA: %s" % (n.name, p.stdout + p.stderr))
            end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", os.path.join(tls_dir(n), "node.crt")],
                                 capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
            days = (calendar.timegm(time.strptime(end, "%b %d %H:%M:%S %Y %Z")) - time.time()) / 86400
            check(9.9 < days < 10.1, "%s's certificate ends in %.2f days, not 10" % (n.name, days))
        c.write_bench(n2, 20, 4)
