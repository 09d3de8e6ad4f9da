"""The README's main job, scripts/demo.sh, run as a user would (DEMO_WAIT=0: it tears down
instead of waiting for Ctrl-C): three nodes on 127.0.0.1-3, the demo app behind the mesh,
a node killed and its replica replaced. It broke once without any test noticing (the join
token's format changed under it)."""
import os
import re
import socket
import subprocess

from harness import ROOT, check

TIMEOUTS = {"test_demo_script_runs_to_the_end": 300}
# scripts/demo.sh uses fixed ports (7420, 8080): nothing else may hold them
SERIAL = True


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_demo_script_runs_to_the_end():
    env = dict(os.environ, DEMO_WAIT="0", DEMO_PORT=str(free_port()), NO_COLOR="1")
    p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "demo.sh")], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=280, stdin=subprocess.DEVNULL)
    out = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout + p.stderr)
    tail = out[-3000:]
    check(p.returncode == 0, "demo.sh exited %d:\n%s" % (p.returncode, tail))
    check("cluster created" in out and "joining n3" in out, "demo.sh did not form its cluster:\n%s" % tail)
    check("(request failed)" not in out and "malformed" not in out, "a request or a join failed:\n%s" % tail)
    before, _, after = out.partition("kill -9 of node n3")
    check(after, "demo.sh never reached the node failure:\n%s" % tail)
    # the mesh spreads the requests over three replicas before the kill, and after it the
    # replaced replica answers too
    check(len(set(re.findall(r"^\s+\d+ (web-\d+-\d+)$", before, re.M))) == 3, "replicas answering before the kill:\n%s" % before[-1500:])
    m = re.search(r"3 replicas running again on n1 and n2 after (\d+) s", after)
    check(m and int(m.group(1)) < 30, "the replica of n3 was not replaced (the script waits 30 s at most):\n%s" % tail)
    check(len(set(re.findall(r"^\s+\d+ (web-\d+-\d+)$", after, re.M))) >= 2, "replicas answering after the kill:\n%s" % after)
    check("removed their containers" in out, "demo.sh did not tear down:\n%s" % tail)
