"""The README's main job, scripts/demo.sh, run as a user would (DEMO_WAIT=0: it tears down
instead of waiting for Ctrl-C): three nodes on 127.0.0.1-3, the demo app behind the mesh,
a node killed and its replica replaced. It broke once without any test noticing (the join
token's format changed under it)."""
import os
import re
import socket
import subprocess

from harness import ROOT, check, pty_read

TIMEOUTS = {"test_demo_script_runs_to_the_end": 300, "test_headings_colour_only_on_a_terminal": 30}
# scripts/demo.sh uses fixed ports (7420, 8080): nothing else may hold them
SERIAL = True


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_demo_script_runs_to_the_end():
    env = dict(os.environ, DEMO_WAIT="0", DEMO_PORT=str(free_port()))
    env.pop("NO_COLOR", None)
    p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "demo.sh")], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=280, stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    tail = out[-3000:]
    check(p.returncode == 0, "demo.sh exited %d:\n%s" % (p.returncode, tail))
    # its output is no terminal: no colour, no escape code of any kind
    check("\x1b" not in out, "escape codes in demo.sh output to a pipe: %r" % out[max(0, out.find("\x1b") - 80):][:200])
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


def run_on_pty(argv, env):
    """Runs argv with a pty as its stdout; returns what it wrote."""
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    out = pty_read(fd)
    os.waitpid(pid, 0)
    os.close(fd)
    return out


def test_headings_colour_only_on_a_terminal():
    """scripts/say.sh (the demo's headings): bold on a terminal, plain with NO_COLOR or
    into a pipe."""
    cmd = ["sh", "-c", ". %s; say hello" % os.path.join(ROOT, "scripts", "say.sh")]
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    out = run_on_pty(cmd, env)
    check(b"\x1b[1m== hello" in out, "no bold heading on a terminal: %r" % out)
    out = run_on_pty(cmd, dict(env, NO_COLOR="1"))
    check(b"== hello" in out and b"\x1b" not in out, "NO_COLOR=1 on a terminal: %r" % out)
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=10)
    check(p.stdout == b"\n== hello\n", "into a pipe: %r" % p.stdout)
