"""Placement and ordering keys (issue 10) with real containers: deploy.mode global follows a
join and a drain, constraints by label and hostname, spread over two zones, depends_on
with a health condition orders the first start, and networks (also an external one of
another project) scope service names, service addresses and direct traffic on a node."""
import subprocess
import time

from harness import check, wait_until
from traffic import MeshCluster, container, runc_exec
from workload import DEMO, live, running, wait_running

TIMEOUTS = {"test_global_constraints_and_spread": 150, "test_depends_on_healthy_and_network_scoping": 120}


def on_nodes(c, service):
    return sorted(t["node"] for t in running(c.ps(0, service)))


def test_global_constraints_and_spread():
    with MeshCluster(2) as c:
        c.load_demo()
        spec = ("name: place\nservices:\n"
                "  agent:\n    image: %s\n    stop_grace_period: 1s\n    deploy:\n      mode: global\n" % DEMO)
        c.deploy(0, c.write("global.yml", spec))
        wait_until(lambda: on_nodes(c, "agent") == ["n1", "n2"], 40, "agent on n1 and n2")
        # a join gets its task
        c.join()
        wait_until(lambda: on_nodes(c, "agent") == ["n1", "n2", "n3"], 60, "agent on n1, n2 and n3 after the join")
        row = [s for s in c.services() if s["name"] == "agent"][0]
        table = c.cli(0, "services", json=False).stdout
        print(table)
        check("global 3/3" in table, "orch services should show agent as global 3/3:\n%s" % table)
        check(row["desired"] == 3 and row["running"] == 3, "services row: %r" % row)
        top = c.cli(0, "top", json=False).stdout
        check(any(l.split()[:3] == ["agent", "global", "3/3"] for l in top.splitlines()),
              "orch top should show agent as global 3/3:\n%s" % top)
        ps = c.cli(0, "ps", "agent", json=False).stdout
        check(ps.count("global") == 3, "orch ps should show the global slot of each task:\n%s" % ps)
        p = c.cli(0, "scale", "agent=5", json=False, check=False)
        check(p.returncode != 0 and "global service" in p.stderr, "scale of a global service: rc %d, %r" % (
            p.returncode, p.stderr))
        # a drain removes it, with no replacement elsewhere; activate brings it back
        c.cli(0, "node", "drain", "n2", json=False)
        wait_until(lambda: on_nodes(c, "agent") == ["n1", "n3"] and len(live(c.ps(0, "agent"))) == 2, 30,
                   "agent only on n1 and n3 after draining n2")
        c.cli(0, "node", "activate", "n2", json=False)
        wait_until(lambda: on_nodes(c, "agent") == ["n1", "n2", "n3"], 30, "agent back on n2")

        # constraints by label and hostname, spread over two zones
        for n, zone in (("n1", "a"), ("n2", "a"), ("n3", "b")):
            c.cli(0, "node", "label", n, "zone=" + zone, json=False)
        spec += ("  byhost:\n    image: %s\n    stop_grace_period: 1s\n    deploy:\n      replicas: 2\n"
                 "      placement:\n        constraints: [\"node.hostname == n2\"]\n"
                 "  bylabel:\n    image: %s\n    stop_grace_period: 1s\n    deploy:\n      replicas: 2\n"
                 "      placement:\n        constraints: [\"node.labels.zone == b\", \"node.role != boss\"]\n" % (DEMO, DEMO))
        bad = c.write("bad.yml", spec)
        p = c.deploy(0, bad, check_rc=False)
        check(p.returncode != 0 and "bad.yml:21:48: services.bylabel.deploy.placement.constraints[1]" in p.stderr and "node.role is manager or worker" in p.stderr,
              "a bad constraint is refused with its position: %r" % p.stderr)
        spec = spec.replace("node.role != boss", "node.platform.os == linux")
        spec += ("  spread:\n    image: %s\n    stop_grace_period: 1s\n    deploy:\n      replicas: 4\n"
                 "      placement:\n        preferences:\n          - spread: node.labels.zone\n" % DEMO)
        c.deploy(0, c.write("all.yml", spec))
        wait_running(c, "byhost", 2, timeout=40)
        wait_running(c, "bylabel", 2, timeout=40)
        ts = wait_running(c, "spread", 4, timeout=40)
        check(on_nodes(c, "byhost") == ["n2", "n2"], "byhost runs on %s, want n2 twice" % on_nodes(c, "byhost"))
        check(on_nodes(c, "bylabel") == ["n3", "n3"], "bylabel runs on %s, want n3 twice" % on_nodes(c, "bylabel"))
        zones = {"n1": "a", "n2": "a", "n3": "b"}
        per_zone = {z: sum(1 for t in ts if zones[t["node"]] == z) for z in "ab"}
        print("spread over zones: %s (%s)" % (per_zone, sorted(t["node"] for t in ts)))
        check(per_zone == {"a": 2, "b": 2}, "spread over zones a (2 nodes) and b (1 node): %s" % per_zone)
        # a label moved: the tasks follow it
        c.cli(0, "node", "label", "n3", "zone-", json=False)
        c.cli(0, "node", "label", "n1", "zone=b", json=False)
        wait_until(lambda: on_nodes(c, "bylabel") == ["n1", "n1"] and len(live(c.ps(0, "bylabel"))) == 2, 40,
                   "bylabel moved to n1 with the label")


DB_CMD = '["sh", "-c", "trap \'exit 0\' TERM; sleep 3; touch /tmp/ready; exec httpd -f -p 80 -h /www"]'
# Each task says which names resolve for it, every second.
# (Compose interpolates $VAR: a shell variable is written $$n)
LOOKUP_CMD = ('["sh", "-c", "trap \'exit 0\' TERM; while :; do for n in app db database front; do '
              'if nslookup $$n >/dev/null 2>&1; then echo resolve $$n yes; else echo resolve $$n no; fi; done; '
              'sleep 1; done"]')


def vip_ours(c, vip):
    """Service addresses come from the cluster's id (10.<byte>.251.<n>): a cluster of another
    test on this machine may have drawn the same byte and hold the address. Then what
    answers there is not this cluster, and the test says so rather than blame the mesh."""
    pid = c.nodes[0].read_pid()
    def owners():
        out = subprocess.run(["ss", "-Htlnp", "src", vip], capture_output=True, text=True).stdout
        return out if ":80 " in out else None
    out = wait_until(owners, 10, "a listener on %s:80" % vip, interval=0.2)
    check("pid=%d," % pid in out and out.count("pid=") == 1,
          "%s:80 is held by another process than this cluster's node (pid %d): another test's cluster "
          "drew the same address range on this machine; run again\n%s" % (vip, pid, out))


def test_depends_on_healthy_and_network_scoping():
    spec = ("name: deps\nservices:\n"
            "  app:\n    image: %s\n    command: %s\n    stop_grace_period: 1s\n"
            "    depends_on:\n      db:\n        condition: service_healthy\n    networks: [back, front]\n"
            "  db:\n    image: %s\n    command: %s\n    stop_grace_period: 1s\n    ports: [\"80\"]\n"
            "    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/tmp/ready\"]\n      interval: 1s\n"
            "      timeout: 2s\n      retries: 2\n      start_period: 10s\n"
            "    networks:\n      back:\n        aliases: [database]\n"
            "  front:\n    image: %s\n    command: %s\n    stop_grace_period: 1s\n    networks: [front]\n"
            "networks:\n  back:\n  front:\n    driver: overlay\n") % (DEMO, LOOKUP_CMD, DEMO, DB_CMD, DEMO, LOOKUP_CMD)
    with MeshCluster(1) as c:
        c.load_demo()
        bad = c.write("cycle.yml", spec.replace("networks: [front]\n", "networks: [front]\n    depends_on: [app]\n", 1)
                      .replace("        aliases: [database]\n", "        aliases: [database]\n    depends_on: [front]\n", 1))
        p = c.deploy(0, bad, check_rc=False)
        check(p.returncode != 0 and "cycle.yml:" in p.stderr and "dependency cycle" in p.stderr,
              "a depends_on cycle is refused with its position: %r" % p.stderr)
        c.deploy(0, c.write("app.yml", spec))
        waiting = set()

        def db_healthy():
            for t in c.ps(0):
                if t["service"] == "app" and t["state"] == "pending":
                    waiting.add(t["err"])
            return [t for t in running(c.ps(0, "db")) if t["health"] == "healthy"]
        wait_until(db_healthy, 40, "db healthy", interval=0.2)
        app = wait_running(c, "app", 1, timeout=30)[0]
        db = running(c.ps(0, "db"))[0]
        print("app waited with %s; db started at %d, app at %d (+%d ms)" % (
            sorted(waiting), db["started_at"], app["started_at"], app["started_at"] - db["started_at"]))
        check("waiting for db (healthy)" in waiting, "orch ps never showed app waiting for db: %s" % sorted(waiting))
        # db cannot be healthy before its file exists, 3 s after it started
        check(app["started_at"] >= db["started_at"] + 3000,
              "app started %d ms after db, before db could be healthy" % (app["started_at"] - db["started_at"]))
        wait_running(c, "front", 1, timeout=30)

        def answers(service):
            out = c.cli(0, "logs", service, json=False).stdout
            seen = {}
            for line in out.splitlines():
                parts = line.split("| ", 1)[-1].split()
                if len(parts) == 3 and parts[0] == "resolve":
                    seen[parts[1]] = parts[2]
            return seen
        # another project joins deps' back network as an external one; a name that no
        # project created is refused
        other = ("name: other\nservices:\n  peer:\n    image: %s\n    command: %s\n    stop_grace_period: 1s\n"
                 "    networks: [shared]\nnetworks:\n  shared:\n    external: true\n    name: %%s\n") % (DEMO, LOOKUP_CMD)
        p = c.deploy(0, c.write("nope.yml", other % "nope"), check_rc=False)
        check(p.returncode != 0 and "nope.yml:9:3: networks.shared: external network \"nope\" does not exist" in p.stderr,
              "an unknown external network is refused: %r" % p.stderr)
        c.deploy(0, c.write("other.yml", other % "deps_back"))
        wait_running(c, "peer", 1, timeout=30)
        want = {"app": {"app": "yes", "db": "yes", "database": "yes", "front": "yes"},
                "front": {"app": "yes", "db": "no", "database": "no", "front": "yes"},
                "peer": {"app": "yes", "db": "yes", "database": "yes", "front": "no"}}
        for svc, names in want.items():
            got = wait_until(lambda: (lambda s: s if len(s) == 4 else None)(answers(svc)), 30,
                             "lookups logged by %s" % svc, interval=0.5)
            print("%s resolves %s" % (svc, got))
            check(got == names, "names as %s sees them: %s, want %s" % (svc, got, names))
        # db's service address answers app (network back), not front (no network in common)
        vip = c.inspect("db")["virtual_ip"]
        vip_ours(c, vip)
        req = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 %s 80; true" % vip
        for k, (svc, answers_it) in enumerate((("app", True), ("front", False), ("app", True))):
            t = running(c.ps(0, svc))[0]
            cid = container(c, "n1", t["id"])
            out = runc_exec(c, "n1", cid, "sh", "-c", req)
            print("%s -> %s:80: %r" % (svc, vip, out[:40]))
            if ("200 OK" in out) != answers_it:
                top = c.cli(0, "top", json=False).stdout
                top += "\nport_errors %r\n" % c.inspect("db").get("port_errors")
                top += subprocess.run(["ss", "-Htlnp", "src", vip], capture_output=True, text=True).stdout
                again = runc_exec(c, "n1", cid, "sh", "-c", req)
                check(False, "check %d: %s (%s) reaching db at %s:80 got %r (again: %r); tasks %s\n%s\n%s" % (
                    k, svc, t["ip"], vip, out[:200], again[:60], [(x["service"], x["id"], x["ip"], x["state"], x["health"])
                                                           for x in c.ps(0, all_tasks=True)], top,
                    c.nodes[0].log_text()[-3000:]))
        # and db's own address on the bridge: app reaches it, front does not (the node's
        # nft set is applied a moment after a task starts: wait for it, app as control)
        dbip = running(c.ps(0, "db"))[0]["ip"]
        req = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 1 %s 80; true" % dbip

        def reaches(svc):
            t = running(c.ps(0, svc))[0]
            return "200 OK" in runc_exec(c, "n1", container(c, "n1", t["id"]), "sh", "-c", req)
        wait_until(lambda: not reaches("front"), 15, "front cut off from db's address %s" % dbip, interval=0.5)
        check(reaches("app"), "app should reach db at its address %s" % dbip)
        check(not reaches("front"), "front reached db at its address %s" % dbip)
