"""Issue 11 (containers hardened by default): a task runs under the default seccomp
profile with no_new_privs, cannot make a user namespace or mount, sees /proc/interrupts
masked and gets a pids limit of 4096; Compose's security_opt, cap_add/cap_drop, read_only,
tmpfs, pids_limit, ulimits and sysctls are honoured; a sysctl outside the task's own
namespaces is refused at deploy and changes nothing; privileged: true waits (pending, with
the reason) until a node started with --allow-privileged takes it."""
import glob
import json
import os
import re
import subprocess

from harness import check, free_port, wait_until
from workload import DEMO, WorkCluster, running

TIMEOUTS = {"test_confinement_and_keys": 90, "test_privileged_needs_the_node_option": 60, "test_userns_remap": 60}

PROBE = ("grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; "
         "u=$(unshare -U -r true 2>&1); echo unshare=$?; "
         "case $$u in *'Operation not permitted'*) echo unshare_errno=EPERM;; *) echo unshare_errno=other;; esac; "
         "mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?; "
         "echo interrupts=$(wc -c </proc/interrupts); "
         "touch /rootfs-write 2>/dev/null; echo rootw=$?; "
         "touch /run/x 2>/dev/null; echo runw=$?; "
         "echo nofile=$(ulimit -n):$(ulimit -Hn); "
         "echo somaxconn=$(cat /proc/sys/net/core/somaxconn); "
         "echo done; exec sleep 3600")

STACK = """name: hard
services:
  plain:
    image: %(image)s
    command: ["sh", "-c", "%(probe)s"]
    stop_grace_period: 1s
  loose:
    image: %(image)s
    command: ["sh", "-c", "%(probe)s"]
    stop_grace_period: 1s
    security_opt: [seccomp=unconfined]
    cap_add: [sys_ptrace]
    cap_drop: [CAP_NET_RAW, chown]
  tight:
    image: %(image)s
    command: ["sh", "-c", "%(probe)s"]
    stop_grace_period: 1s
    read_only: true
    tmpfs: [/run]
    pids_limit: 50
    ulimits:
      nofile: {soft: 1000, hard: 2000}
    sysctls:
      net.core.somaxconn: 1000
"""

# Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
# NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
DEFAULT_CAPS = sum(1 << b for b in (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31))


def probe_of(c, svc):
    out = c.cli(0, "logs", svc, json=False).stdout
    return out if "done" in out else None


def field(out, key):
    m = re.search(r"(?:^|\| )%s[:=]\s*(\S+)" % re.escape(key), out, re.M)
    check(m, "no %s in %r" % (key, out))
    return m.group(1)


def pids_max(c, node, task_id):
    nid = c.node_ids[node.name]
    found = [p for p in glob.glob("/sys/fs/cgroup/pids/orch/%s/*/pids.max" % nid) if p.split("/")[-2] == str(task_id)]
    check(len(found) == 1, "pids cgroup of task %s: %r" % (task_id, glob.glob("/sys/fs/cgroup/pids/orch/%s/*" % nid)))
    with open(found[0]) as f:
        return f.read().strip()


def test_confinement_and_keys():
    with WorkCluster(1) as c:
        c.load_demo()
        spec = c.write("hard.yml", STACK % {"image": DEMO, "probe": PROBE})
        c.deploy(0, spec)
        for svc in ("plain", "loose", "tight"):
            wait_until(lambda: probe_of(c, svc), 40, "%s printed its probe" % svc)
        node = c.nodes[0]
        tasks = {svc: wait_until(lambda: running(c.ps(0, svc)), 20, "%s running" % svc)[0] for svc in ("plain", "loose", "tight")}

        out = probe_of(c, "plain")
        check(field(out, "Seccomp") == "2", "plain: %r" % out)
        check(field(out, "NoNewPrivs") == "1", "plain: %r" % out)
        check(int(field(out, "CapEff"), 16) == DEFAULT_CAPS, "plain CapEff %s" % field(out, "CapEff"))
        check(field(out, "unshare") != "0", "unshare -U -r succeeded in a task: %r" % out)
        check(field(out, "unshare_errno") == "EPERM", "unshare -U -r did not fail with EPERM: %r" % out)
        check(field(out, "mount") != "0", "mount succeeded in a task: %r" % out)
        check(field(out, "interrupts") == "0", "/proc/interrupts not masked: %r" % out)
        check(field(out, "rootw") == "0", "the default rootfs is not writable: %r" % out)
        check(pids_max(c, node, tasks["plain"]["id"]) == "4096", "default pids.max")

        out = probe_of(c, "loose")
        check(field(out, "Seccomp") == "0", "seccomp=unconfined: %r" % out)
        want = DEFAULT_CAPS - (1 << 0) - (1 << 13) + (1 << 19)
        check(int(field(out, "CapEff"), 16) == want, "cap_add/cap_drop: CapEff %s, want %x" % (field(out, "CapEff"), want))
        check(field(out, "NoNewPrivs") == "1", "no_new_privs kept without seccomp: %r" % out)

        out = probe_of(c, "tight")
        check(field(out, "rootw") != "0", "read_only: the rootfs was writable: %r" % out)
        check(field(out, "runw") == "0", "tmpfs /run not writable: %r" % out)
        check(field(out, "nofile") == "1000:2000", "ulimits nofile: %r" % out)
        check(field(out, "somaxconn") == "1000", "sysctls: %r" % out)
        check(pids_max(c, node, tasks["tight"]["id"]) == "50", "pids_limit 50")

        # a sysctl of the host's own kernel: refused at deploy, naming the key; nothing changes
        gens = {s["name"]: s["generation"] for s in c.services()}
        with open("/proc/sys/vm/swappiness") as f:
            swappiness = f.read()
        bad = c.write("bad.yml", (STACK % {"image": DEMO, "probe": PROBE}) + "    privileged: false\n"
                      "  extra:\n    image: %s\n    sysctls: {vm.swappiness: '10'}\n" % DEMO)
        p = c.deploy(0, bad, check_rc=False)
        check(p.returncode != 0 and "sysctls vm.swappiness" in p.stderr and "bad.yml" in p.stderr,
              "deploy with vm.swappiness: %r" % p.stderr)
        check({s["name"]: s["generation"] for s in c.services()} == gens, "a refused deploy changed services")
        with open("/proc/sys/vm/swappiness") as f:
            check(f.read() == swappiness, "vm.swappiness changed")

        # a change of a hardening key rolls the service
        c.deploy(0, c.write("hard2.yml", (STACK % {"image": DEMO, "probe": PROBE}).replace("pids_limit: 50", "pids_limit: 60")))
        wait_until(lambda: next(s for s in c.services() if s["name"] == "tight")["generation"] == gens["tight"] + 1, 20,
                   "tight at a new generation")
        check(next(s for s in c.services() if s["name"] == "plain")["generation"] == gens["plain"], "plain rolled too")


PRIV = """name: priv
services:
  root:
    image: %s
    command: ["sh", "-c", "grep -E '^(Seccomp|CapEff):' /proc/self/status; echo done; exec sleep 3600"]
    stop_grace_period: 1s
    privileged: true
"""


def test_privileged_needs_the_node_option():
    with WorkCluster(1) as c:
        c.load_demo()
        c.deploy(0, c.write("priv.yml", PRIV % DEMO))

        def pending():
            ts = [t for t in c.ps(0, "root") if t["state"] == "pending"]
            return ts[0] if ts and "privileged" in ts[0]["err"] else None
        t = wait_until(pending, 20, "the privileged task pending with its reason")
        check("--allow-privileged" in t["err"], "reason: %r" % t["err"])
        check(not running(c.ps(0, "root")), "a privileged task runs on a node without the option")

        # a node that allows it takes the task; the option is in its record
        n2 = c.join(extra=["--allow-privileged"])
        c.node_ids[n2.name] = c.status(n2)["node_id"]
        wait_until(lambda: any(x["name"] == n2.name and "allow-privileged" in x["security"] for x in c.cli(0, "nodes")), 15,
                   "allow-privileged in the node's record")
        t = wait_until(lambda: running(c.ps(0, "root")), 40, "the privileged task running")[0]
        check(t["node"] == n2.name, "privileged task on %s" % t["node"])
        out = wait_until(lambda: probe_of(c, "root"), 20, "its output")
        check(field(out, "Seccomp") == "0", "privileged: %r" % out)
        # every capability the node itself holds
        with open("/proc/%d/status" % n2.pid) as f:
            bnd = field(f.read(), "CapBnd")
        check(int(field(out, "CapEff"), 16) == int(bnd, 16), "privileged CapEff %s, node's CapBnd %s" % (field(out, "CapEff"), bnd))
        # kept with the node across a restart
        check(open(os.path.join(n2.dir, "node-security")).read() == "allow-privileged\n", "node-security file")


USERNS = """name: un
secrets:
  token:
    external: true
volumes:
  data: {}
services:
  app:
    image: %s
    command: ["sh", "-c", "echo uid=$(id -u); echo map=$(cat /proc/self/uid_map); touch /etc/written && echo rootfs=ok; echo hi >/data/f && echo volume=ok; echo secret=$(cat /run/secrets/token); echo owner=$(stat -c %%u /bin/busybox); echo port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); echo somaxconn=$(cat /proc/sys/net/core/somaxconn); echo done; exec sleep 3600"]
    stop_grace_period: 1s
    volumes: [data:/data]
    secrets: [token]
    sysctls: {net.core.somaxconn: 777}
    init: true
"""
BASE = 300000


def test_userns_remap():
    opened = []  # (directory above the cluster, its mode): restored at the end
    try:
        _userns_remap(opened)
    finally:
        for d, mode in opened:
            os.chmod(d, mode)


def _userns_remap(opened):
    with WorkCluster() as c:
        # the tasks' root (an unprivileged host uid) must pass the directories above the
        # data dir; the test's temporary ones are 0700: the node refuses to start on them
        p = c.run("init", "--data-dir", os.path.join(c.tmp, "refused"), "--listen", "127.0.0.1:%d" % free_port(),
                  "--userns-remap", "%d:65536" % BASE, "--detach")
        check(p.returncode != 0 and "keeps other users out" in p.stderr, "init below a 0700 dir: %r" % p.stderr)
        d = c.tmp
        while d != "/":
            mode = os.stat(d).st_mode
            if not mode & 0o001:
                os.chmod(d, mode | 0o001)
                if d != c.tmp:
                    opened.append((d, mode & 0o7777))
            d = os.path.dirname(d)
        n = c.init(extra=["--userns-remap", "%d:65536" % BASE])
        c.node_ids[n.name] = c.status(n)["node_id"]
        wait_until(lambda: "userns-remap=%d:65536" % BASE in c.cli(0, "nodes")[0]["security"], 10, "userns-remap in the record")
        # a node cannot take both options
        p = c.run("join", n.addr, "--token", c.token, "--data-dir", os.path.join(c.tmp, "x"), "--listen", "127.0.0.1:1",
                  "--userns-remap", "default", "--allow-privileged")
        check(p.returncode != 0 and "exclude each other" in p.stderr, "both options: %r" % p.stderr)
        check(len(c.cli(0, "nodes")) == 1, "the refused join left a member: %r" % c.cli(0, "nodes"))
        c.load_demo()
        c.cli(0, "secret", "create", "token", c.write("tok", "s3cret"), json=False)
        c.deploy(0, c.write("un.yml", USERNS % DEMO))
        out = wait_until(lambda: probe_of(c, "app"), 40, "the remapped task's output")
        check(field(out, "uid") == "0", "uid in the task: %r" % out)
        check(re.search(r"map=\s*0 %d 65536" % BASE, out), "uid_map in the task: %r" % out)
        check(field(out, "rootfs") == "ok" and field(out, "volume") == "ok", "writes as the task's root: %r" % out)
        check(field(out, "secret") == "s3cret", "secret read by the task's root: %r" % out)
        check(field(out, "owner") == "0", "image files owned by the task's root: %r" % out)
        check(field(out, "port_start") == "0", "ip_unprivileged_port_start: %r" % out)
        check(field(out, "somaxconn") == "777", "net sysctl set from the host: %r" % out)

        # from the host: the task's processes run as BASE, its files belong to BASE
        t = wait_until(lambda: running(c.ps(0, "app")), 20, "app running")[0]  # output can come before the state
        ids = [i for i in subprocess.run(["runc", "--root", os.path.join(n.dir, "runc"), "list", "-q"], capture_output=True,
                                         text=True).stdout.split() if i.endswith("-%d" % t["id"])]
        check(ids, "no container for task %d" % t["id"])
        st = subprocess.run(["runc", "--root", os.path.join(n.dir, "runc"), "state", ids[0]], capture_output=True, text=True)
        pid = json.loads(st.stdout)["pid"]
        with open("/proc/%d/uid_map" % pid) as f:
            check(f.read().split() == ["0", str(BASE), "65536"], "host view of uid_map")
        with open("/proc/%d/status" % pid) as f:
            check(field(f.read(), "Uid") == str(BASE), "the task's root is not uid %d on the host" % BASE)
        vol = os.path.join(n.dir, "volumes", "un_data", "data", "f")
        check(os.stat(vol).st_uid == BASE, "volume file owner on the host: %d" % os.stat(vol).st_uid)
        shifted = glob.glob(os.path.join(n.dir, "layers", "userns-%d" % BASE, "sha256", "*"))
        check(len(shifted) >= 1 and all(os.stat(d).st_uid == BASE for d in shifted), "shifted layers: %r" % shifted)
