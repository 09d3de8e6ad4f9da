"""Issue 13 (machines that reboot): orch init --install writes and enables a service that
starts the node from its data directory, into a temporary root (ORCH_INSTALL_ROOT), never
the machine's /etc.

- under systemd: the unit passes `systemd-analyze verify` (Debian package systemd), holds
  no token, is enabled by its link in multi-user.target.wants, and its ExecStart, run as
  systemd would after the node was killed (a reboot), brings the same node back in its
  cluster with the options it was given that the node does not keep;
- where only OpenRC is: an openrc-run script in the default runlevel, valid sh (a joiner's
  too, without its token or the cluster's address);
- orch start refuses a data directory without a node (a lost directory must not become a
  new cluster) and creates nothing; orch uninstall removes exactly what was written."""
import os
import shlex
import shutil
import subprocess
import tempfile

from harness import BIN, Cluster, check, kill_pid, wait_until

TIMEOUTS = {"test_install_systemd_unit_restarts_the_node": 60, "test_install_openrc_and_start_refusals": 60}


def run(args, env, **kw):
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=30, env=env,
                          stdin=subprocess.DEVNULL, **kw)


def test_install_systemd_unit_restarts_the_node():
    analyze = shutil.which("systemd-analyze")
    check(analyze, "systemd-analyze is not installed (Debian package systemd)")
    with Cluster(0) as c, tempfile.TemporaryDirectory() as root:
        # systemd installed in the root: the unit is systemd's
        os.makedirs(os.path.join(root, "lib", "systemd"))
        open(os.path.join(root, "lib", "systemd", "systemd"), "w").close()
        c.env["ORCH_INSTALL_ROOT"] = root
        n1 = c.init(extra=("--install", "--cpus", "1.5", "--label", "zone=a"))
        unit = os.path.join(root, "etc", "systemd", "system", "orch-n1.service")
        link = os.path.join(root, "etc", "systemd", "system", "multi-user.target.wants", "orch-n1.service")
        check(os.path.isfile(unit), "no unit at %s: %r" % (unit, os.listdir(root)))
        check(os.path.islink(link) and os.readlink(link) == "/etc/systemd/system/orch-n1.service",
              "the unit is not enabled: %s" % link)
        text = open(unit).read()
        check("ORCH2-" not in text and c.token not in text and c.worker_token not in text, "a token in the unit:\n" + text)
        p = subprocess.run([analyze, "verify", "--man=no", unit], capture_output=True, text=True, timeout=60)
        check(p.returncode == 0 and not (p.stdout + p.stderr).strip(),
              "systemd-analyze verify: %d\n%s%s\n%s" % (p.returncode, p.stdout, p.stderr, text))
        execs = [l.split("=", 1)[1] for l in text.splitlines() if l.startswith("ExecStart=")]
        check(len(execs) == 1, "ExecStart lines: %r" % execs)
        argv = shlex.split(execs[0])
        want = [os.path.realpath(BIN), "start", "--data-dir", os.path.realpath(n1.dir), "--cpus", "1.5", "--label",
                "zone=a"]
        check(argv == want, "ExecStart %r, want %r" % (argv, want))
        node_id = c.status(n1)["node_id"]

        # a reboot: the node dies, the service manager runs ExecStart (in the foreground)
        check(kill_pid(n1.pid, n1.dir), "n1 did not die")
        boot = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=c.env,
                                stdin=subprocess.DEVNULL)
        try:
            st = wait_until(lambda: (lambda p: p.returncode == 0 and p)(c.run("-D", n1.dir, "status", "-o", "json")),
                            20, "the node started by the unit's ExecStart to serve")
            import json
            st = json.loads(st.stdout)
            check(st["node_id"] == node_id and st["raft_state"] == "leader",
                  "after the restart: node %s %s, want %s leader" % (st["node_id"], st["raft_state"], node_id))
            nodes = c.cli(n1, "nodes")
            check(len(nodes) == 1 and nodes[0].get("labels", {}).get("zone") == "a",
                  "the restarted node lost its cluster or its --label: %r" % nodes)
        finally:
            boot.terminate()
            try:
                boot.wait(15)
            except subprocess.TimeoutExpired:
                boot.kill()
                boot.wait()
        check(boot.returncode == 0, "the node of the unit did not stop cleanly on SIGTERM: %r %s" %
              (boot.returncode, boot.stderr.read()[-500:]))

        # orch uninstall removes exactly what was written, once
        p = run(["-D", n1.dir, "uninstall"], c.env)
        check(p.returncode == 0 and "removed %s" % unit in p.stdout and "removed %s" % link in p.stdout,
              "orch uninstall: %d %r %r" % (p.returncode, p.stdout, p.stderr))
        check(not os.path.exists(unit) and not os.path.lexists(link), "uninstall left the unit or its link")
        check(os.path.isdir(os.path.join(root, "etc", "systemd", "system")), "uninstall removed a directory")
        p = run(["-D", n1.dir, "uninstall"], c.env)
        check(p.returncode == 4 and "nothing installed" in p.stderr, "a second uninstall: %d %r" % (p.returncode, p.stderr))


def test_install_openrc_and_start_refusals():
    with Cluster(0) as c, tempfile.TemporaryDirectory() as root:
        # OpenRC and no systemd in the root
        os.makedirs(os.path.join(root, "sbin"))
        open(os.path.join(root, "sbin", "openrc-run"), "w").close()
        c.env["ORCH_INSTALL_ROOT"] = root
        n1 = c.init(extra=("--install",))
        script = os.path.join(root, "etc", "init.d", "orch-n1")
        link = os.path.join(root, "etc", "runlevels", "default", "orch-n1")
        check(os.path.isfile(script) and os.access(script, os.X_OK), "no executable OpenRC script at %s" % script)
        check(os.path.islink(link) and os.readlink(link) == "/etc/init.d/orch-n1", "the script is not in the default runlevel")
        text = open(script).read()
        check(text.startswith("#!/sbin/openrc-run\n") and "ORCH2-" not in text, "the script:\n" + text)
        check('command_args="start --data-dir %s"' % os.path.realpath(n1.dir) in text, "the script's command:\n" + text)
        check(not os.path.exists(os.path.join(root, "etc", "systemd")), "a systemd unit was written without systemd")
        p = subprocess.run(["sh", "-n", script], capture_output=True, text=True)
        check(p.returncode == 0, "the OpenRC script is not valid sh: %s" % p.stderr)

        # a joiner's: its token and the cluster's address stay out, --memory goes in
        n2 = c.join(extra=("--install", "--memory", "1g"))
        text2 = open(os.path.join(root, "etc", "init.d", "orch-n2")).read()
        check('command_args="start --data-dir %s --memory 1g"' % os.path.realpath(n2.dir) in text2
              and "ORCH2-" not in text2 and c.nodes[0].addr not in text2, "the joiner's script:\n" + text2)

        # orch start: never a new cluster from a directory without a node
        empty = os.path.join(c.tmp, "empty")
        p = run(["-D", empty, "start", "--detach"], c.env)
        check(p.returncode == 4 and "no node in" in p.stderr, "orch start on no node: %d %r" % (p.returncode, p.stderr))
        check(not os.path.exists(empty), "orch start created %s" % empty)
        p = run(["-D", n1.dir, "start", "--token", "x"], c.env)
        check(p.returncode == 2 and "--token" in p.stderr, "orch start --token: %d %r" % (p.returncode, p.stderr))
        p = run(["-D", n1.dir, "uninstall"], c.env)
        check(p.returncode == 0 and not os.path.exists(script) and not os.path.lexists(link),
              "orch uninstall (OpenRC): %d %r" % (p.returncode, p.stderr))
