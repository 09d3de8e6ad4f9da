"""Issue 11 (certificate lifecycle): every node renews its certificate well before it
expires, with a service running and writes going on, and the cluster outlives the
certificates it started with; a node that was off past its certificate's end is told how to
come back."""
import calendar
import os
import re
import signal
import shutil
import subprocess
import time

from harness import CliError, Cluster, Conn, Fail, check, parse_token, tls_dir, wait_until
from workload import DEMO, WorkCluster, wait_running

TIMEOUTS = {"test_nodes_renew_their_certificates": 150, "test_worker_refuses_a_removed_node": 60,
            "test_ca_rotation": 120, "test_node_off_during_a_rotation_is_told": 60}


def cert(node, path=None):
    """serial, notAfter (epoch seconds), issuer of node's tls/node.crt (or path)."""
    p = subprocess.run(["openssl", "x509", "-noout", "-serial", "-enddate", "-issuer", "-in",
                        path or os.path.join(tls_dir(node), "node.crt")], capture_output=True, text=True, check=True)
    f = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    end = calendar.timegm(time.strptime(f["notAfter"].strip(), "%b %d %H:%M:%S %Y %Z"))
    return f["serial"].strip(), end, f["issuer"].strip()


def test_nodes_renew_their_certificates():
    with WorkCluster(0) as c:
        n1 = c.init(extra=["--cert-expiry", "60s"])
        n2 = c.join()
        n3 = c.join(token=c.worker_token)
        late = c.join(token=c.worker_token)
        c.wait_members(c.nodes)
        for n in c.nodes:
            c.node_ids[n.name] = c.status(n)["node_id"]
        first = {n.name: cert(n) for n in c.nodes}
        for n in c.nodes:
            left = first[n.name][1] - time.time()
            check(0 < left <= 61, "%s's certificate ends in %.0f s, not 60" % (n.name, left))
        # a worker that stays off past its certificate's end
        kept = os.path.join(c.tmp, "late-tls")
        c.stop(late)
        shutil.copytree(tls_dir(late), kept)
        c.load_demo()
        spec = c.write("web.yml", "services:\n  web:\n    image: %s\n    stop_grace_period: 1s\n"
                                  "    deploy:\n      replicas: 3\n" % DEMO)
        c.deploy(0, spec)
        wait_running(c, "web", 3)
        # a connection opened to n2 with n1's certificate before n2 renews
        k = Conn.tcp(n2, n1)
        check(k.call("ping").get("rc") == 0, "ping before the renewal")
        live = [n1, n2, n3]

        def renewed():
            c.write_bench(n2, 10, 2)  # writes go on through a follower meanwhile
            return all(cert(n)[0] != first[n.name][0] for n in live)
        wait_until(renewed, 50, "every live node to renew its certificate", interval=1)
        for n in live:
            serial, end, issuer = cert(n)
            check(end > first[n.name][1], "%s: the new certificate ends at %d, the old at %d" % (n.name, end,
                                                                                               first[n.name][1]))
            check(issuer == first[n.name][2], "%s: issuer changed: %r" % (n.name, issuer))
            check(oct(os.stat(os.path.join(tls_dir(n), "node.key")).st_mode & 0o777) == "0o600",
                  "%s: node.key mode" % n.name)
            check(not os.path.exists(os.path.join(tls_dir(n), "next.crt")), "%s: next.crt left over" % n.name)
        check(k.call("ping").get("rc") == 0, "the connection opened before n2's renewal broke")
        k.close()
        # the cluster outlives the certificates it started with
        wait_until(lambda: time.time() > max(e for _, e, _ in first.values()) + 2, 70, "the first certificates to end",
                   interval=0.5)
        c.write_bench(n2, 20, 4)
        c.write_bench(n1, 20, 4)
        check(c.status(n3)["leader_id"], "the worker lost the leader")
        wait_running(c, "web", 3)
        # orch nodes says when each node's certificate ends (what the leader last issued)
        def listed():
            rec = {x["name"]: x for x in c.node_list(n1)}
            return all(abs(rec[n.name].get("cert_expires", 0) - cert(n)[1]) <= 1 and len(rec[n.name]["cert_ca"]) == 64
                       for n in live)
        wait_until(listed, 10, "orch nodes to show each node's certificate expiry and CA")
        # the worker that was off: it says its certificate expired and how to come back
        try:
            c.restart(late)
            started = True
        except CliError as e:
            started, err = False, e.proc.stderr + e.proc.stdout
        check(not started, "a worker with an expired certificate started")
        check("certificate expired" in err and "join again" in err and "orch node rm %s" % late.name in err,
              "the expired worker's error: %s" % err[-600:])
        p = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(tls_dir(n1), "ca.crt"),
                            os.path.join(kept, "node.crt")], capture_output=True, text=True)
        check(p.returncode != 0 and "expired" in p.stdout + p.stderr, "the kept certificate: %s" % p.stdout + p.stderr)


def refused(node, creds):
    """Whether node refuses an RPC connection with creds' certificate."""
    try:
        with Conn.tcp(node, creds, timeout=5) as k:
            return k.call("ping").get("rc") != 0
    except (EOFError, OSError):
        return True


def test_worker_refuses_a_removed_node():
    """A worker holds no state: its feed lists the members, and it refuses (and
    disconnects) the certificate of a node removed from the cluster."""
    with Cluster(0) as c:
        c.init()
        victim = c.join()
        w = c.join(token=c.worker_token)
        c.wait_members(c.nodes)
        k = Conn.tcp(w, victim)
        check(k.call("ping").get("rc") == 0, "ping of the worker as the victim before its removal")
        check(not refused(w, c.nodes[0]), "the worker refused a member")
        c.cli(c.nodes[0], "node", "rm", "--force", victim.name, json=False)
        k.s.settimeout(5)
        try:
            data = k.s.recv(100)
            check(not data, "the removed node's connection to the worker got %r" % data)
        except OSError:
            pass
        k.close()
        wait_until(lambda: refused(w, victim), 5, "the worker to refuse the removed node's certificate")
        check("closing the connection of removed node" in w.log_text(), "the worker did not log the closing")
        check(not refused(w, c.nodes[0]), "the worker refuses a member after the removal")
        # a node that joins later is admitted once the worker's feed names it
        late = c.join()
        c.wait_members([c.nodes[0], late, w])
        wait_until(lambda: not refused(w, late), 5, "the worker to admit a new member")


def bundle_fps(node):
    """The fingerprints of the certificates in node's tls/ca.crt, in order."""
    with open(os.path.join(tls_dir(node), "ca.crt")) as f:
        pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", f.read(), re.S)
    out = []
    for pem in pems:
        p = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem, capture_output=True,
                           text=True, check=True)
        out.append(p.stdout.strip().split("=", 1)[1].replace(":", "").lower())
    return out


def test_ca_rotation():
    """orch ca rotate with a service running: every node moves to the new CA (one held
    back meanwhile: the progress shows it), the old CA leaves the bundle, a certificate of
    the old CA is then refused, the tokens pin the new CA and a node joins with them while
    a token pinning the old CA is refused."""
    with WorkCluster(0, failure_timeout="60s") as c:
        n1 = c.init()
        n2 = c.join()
        w = c.join(token=c.worker_token)
        c.wait_members(c.nodes)
        for n in c.nodes:
            c.node_ids[n.name] = c.status(n)["node_id"]
        c.load_demo()
        spec = c.write("web.yml", "services:\n  web:\n    image: %s\n    stop_grace_period: 1s\n"
                                  "    deploy:\n      replicas: 3\n" % DEMO)
        c.deploy(0, spec)
        wait_running(c, "web", 3)
        old_fp = bundle_fps(n1)[0]
        old_token = c.token
        kept = os.path.join(c.tmp, "old-tls")
        shutil.copytree(tls_dir(n2), kept)
        os.kill(w.pid, signal.SIGSTOP)  # held back: it renews once it runs again
        try:
            out = c.cli(n1, "ca", "rotate", json=False).stdout
            m = re.search(r"new CA: ([0-9a-f]{64})", out)
            check(m, "orch ca rotate: %r" % out)
            new_fp = m.group(1)
            wait_until(lambda: all(bundle_fps(n)[:1] == [new_fp] for n in (n1, n2)), 20,
                       "the managers to renew from the new CA")
            shown = c.cli(n1, "ca", "show", json=False).stdout
            check("2 of 3 nodes on the new CA" in shown, "orch ca show during the rotation: %r" % shown)
            check(bundle_fps(n1) == [new_fp, old_fp], "the bundle during the rotation: %r" % bundle_fps(n1))
            # a peer that trusts only the old CA (and holds an old certificate) accepts the
            # leader's new one through the cross-signature, and is accepted by it
            with Conn.tls_raw(n1, kept, ca=os.path.join(kept, "ca.crt")) as k:
                k.send_raw(b"ORCH\x02\x02\0\0")
                check(k.recv_exact(1) == b"K", "an old-CA peer was refused during the rotation")
                check(k.call("ping").get("rc") == 0, "ping of an old-CA peer during the rotation")
            c.write_bench(n2, 20, 4)
        finally:
            os.kill(w.pid, signal.SIGCONT)
        wait_until(lambda: all(bundle_fps(n) == [new_fp] for n in c.nodes), 30,
                   "every node to hold the new CA alone")
        for n in c.nodes:
            p = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(tls_dir(n), "ca.crt"),
                                os.path.join(tls_dir(n), "node.crt")], capture_output=True, text=True)
            check(p.returncode == 0, "%s's certificate is not from the new CA: %s" % (n.name, p.stdout + p.stderr))
            check("#1" in cert(n)[2], "%s's issuer: %r" % (n.name, cert(n)[2]))
        check("rotation" not in c.cli(n1, "ca", "show", json=False).stdout, "orch ca show still shows a rotation")
        check("CA rotation done" in n1.log_text() or "CA rotation done" in "".join(x.log_text() for x in c.nodes),
              "no node logged the end of the rotation")
        # a certificate of the old CA is refused now, by a manager and by the worker
        for n in (n1, w):
            try:
                with Conn.tls_raw(n, kept, ca=os.path.join(tls_dir(n1), "ca.crt")) as k:
                    k.send_raw(b"ORCH\x02\x02\0\0")
                    outcome = k.outcome()
            except (OSError, EOFError):
                outcome = "closed"
            check(outcome == "closed", "%s accepted a certificate of the old CA (%s)" % (n.name, outcome))
        p = subprocess.run(["openssl", "s_client", "-connect", n1.addr, "-CAfile", os.path.join(tls_dir(n1), "ca.crt"),
                            "-cert", os.path.join(kept, "node.crt"), "-key", os.path.join(kept, "node.key"), "-ign_eof"],
                           input="", capture_output=True, text=True, timeout=15)
        o = (p.stdout + p.stderr).lower()
        check(("alert" in o or "unexpected eof" in o) and "certificate refused" in n1.log_text(),
              "openssl s_client with the old certificate: %s" % (p.stdout + p.stderr)[-600:])
        # the tokens pin the new CA; one pinning the old one is refused
        shown = c.cli(n1, "token", "show", json=False).stdout
        toks = re.findall(r"ORCH2-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+", shown)
        check(len(toks) == 2 and all(parse_token(t)[1] == new_fp for t in toks), "orch token show: %r" % shown)
        try:
            c.join(token=old_token)
            joined = True
        except CliError as e:
            joined, err = False, e.proc.stderr + e.proc.stdout
        check(not joined and "pins" in err, "a join with a token pinning the old CA: %s" % (err if not joined else "joined"))
        late = c.join(token=next(t for t in toks if t != c.worker_token and parse_token(t)[2] == parse_token(old_token)[2]))
        check(bundle_fps(late) == [new_fp], "the new node's bundle: %r" % bundle_fps(late))
        c.wait_members(c.nodes)
        c.write_bench(n2, 20, 4)
        wait_running(c, "web", 3)
        # a CA the operator gives; one rotation at a time
        key, crt = os.path.join(c.tmp, "ca2.key"), os.path.join(c.tmp, "ca2.crt")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", "/CN=operator CA", "-days", "30",
                        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
                        "-out", crt], check=True, capture_output=True)
        os.kill(w.pid, signal.SIGSTOP)  # holds the rotation open
        try:
            out = c.cli(n2, "ca", "rotate", "--ca-cert", crt, "--ca-key", key, json=False).stdout
            given = re.search(r"new CA: ([0-9a-f]{64})", out).group(1)
            p = c.cli(n1, "ca", "rotate", json=False, check=False)
            check(p.returncode != 0 and "in progress" in p.stderr, "a second rotation at once: %r" % p.stderr)
        finally:
            os.kill(w.pid, signal.SIGCONT)
        try:
            wait_until(lambda: all(bundle_fps(n) == [given] for n in c.nodes), 30, "every node to hold the given CA alone")
        except Exception:
            raise Fail("given %s; bundles %r" % (given[:12], {n.name: [f[:12] for f in bundle_fps(n)] for n in c.nodes}))
        check(all("operator CA" in cert(n)[2] for n in c.nodes), "issuers after the second rotation")
        c.write_bench(late, 20, 4)


def test_node_off_during_a_rotation_is_told():
    """A node down during a whole CA rotation does not hold it back; started again, it is
    refused and says that its peers' CA is not one it trusts, and how to come back."""
    with Cluster(0, failure_timeout="2s") as c:
        n1 = c.init()
        c.join()
        off = c.join(token=c.worker_token)
        c.wait_members(c.nodes)
        c.stop(off)
        wait_until(lambda: {x["name"]: x["state"] for x in c.node_list(n1)}[off.name] == "down", 15,
                   "the stopped worker to be marked down")
        out = c.cli(n1, "ca", "rotate", json=False).stdout
        new_fp = re.search(r"new CA: ([0-9a-f]{64})", out).group(1)
        live = [n for n in c.nodes if n is not off]
        wait_until(lambda: all(bundle_fps(n) == [new_fp] for n in live), 20, "the live nodes to end the rotation")
        check(bundle_fps(off) != [new_fp], "the stopped worker's bundle changed")
        try:
            c.restart(off)
        except CliError:
            pass  # it may not come up at all; what it logs is what matters
        wait_until(lambda: "the peer's CA is not one this node trusts" in off.log_text(), 15,
                   "the worker to say its peers' CA is not one it trusts")
        check("join again" in off.log_text(), "no way back in the worker's log")
        time.sleep(1)
        check({x["name"]: x["state"] for x in c.node_list(n1)}[off.name] == "down", "the cut-off worker is not down")
        # nor does the leader accept its certificate
        with Conn.tls_raw(n1, off, ca=os.path.join(tls_dir(n1), "ca.crt")) as k:
            k.send_raw(b"ORCH\x02\x02\0\0")
            check(k.outcome() == "closed", "the leader accepted a certificate of the old CA")
