"""Issue 13 (a shell in a task): orch exec on real containers through runc.

One cluster (a manager and a worker, a web service with a task on each) serves every
check: the command's exit code is orch's, its stdout and stderr come back byte for byte and
apart, standard input is streamed (-i, no terminal), a task on another node is reached by
id and by SERVICE.SLOT, root on the worker reaches its own task but not the manager's, a
remote operator (--host, a user certificate) may exec and a viewer may not, -t gives the
command a terminal of the client's size that follows a resize (the client runs under a pty
of Python's pty module), and bad targets or commands get clear errors."""
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

from harness import BIN, check, pty_read, wait_until
from workload import DEMO, WorkCluster, running, wait_running

TIMEOUTS = {"test_exec": 120}

WEB = """services:
  web:
    image: %s
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement:
        max_replicas_per_node: 1
""" % DEMO


def exe(c, node, *args, stdin=None, env=None):
    """orch -D NODE exec ARGS: the CompletedProcess (bytes)."""
    return subprocess.run([BIN, "-D", c.node(node).dir, "exec"] + list(args), input=stdin, capture_output=True,
                          timeout=30, env=env or c.env)


def read_until(fd, want, timeout=10):
    """Reads the pty master until `want` (bytes) shows; returns all read."""
    out = pty_read(fd, want, timeout)
    check(want in out, "no %r from orch exec -it within %ss; got %r" % (want, timeout, out[-400:]))
    return out


def tty_session(c, node, target):
    """orch exec -it TARGET -- sh under a pty: stty size at 24x80, after a resize to 50x132,
    tty names a pts device, and exit 3 is orch's exit code."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(BIN, [BIN, "-D", c.node(node).dir, "exec", "-it", target, "--", "sh"])
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.write(fd, b"stty size; echo MA''RK1\n")
        out = read_until(fd, b"MARK1\r\n")
        check(b"24 80\r\n" in out, "stty size in orch exec -it: want 24 80, got %r" % out[-300:])
        # the client gets SIGWINCH from its terminal and sends the new size
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        os.kill(pid, signal.SIGWINCH)

        def resized():
            os.write(fd, b"stty size; echo MA''RK2\n")
            got = read_until(fd, b"MARK2\r\n")
            return b"50 132\r\n" in got
        wait_until(resized, 10, "stty size to follow the resize to 50x132")
        os.write(fd, b"tty; echo MA''RK3\n")
        out = read_until(fd, b"MARK3\r\n")
        check(b"/dev/pts/" in out, "tty in orch exec -it does not name a pts: %r" % out[-300:])
        os.write(fd, b"exit 3\n")
        deadline = time.time() + 10
        while time.time() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            try:
                select.select([fd], [], [], 0.1)
                os.read(fd, 4096)
            except OSError:
                pass
        else:
            raise AssertionError("orch exec -it did not end after exit 3")
        check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3,
              "orch exec -it after exit 3: status %r" % status)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
        os.close(fd)


def test_exec():
    with WorkCluster(0) as c:
        c.init()
        c.join(extra=("--worker",))
        c.load_demo(0)
        c.deploy(0, c.write("web.yml", WEB))
        tasks = wait_running(c, "web", 2, timeout=60)
        mine = [t for t in tasks if t["node"] == "n1"]
        theirs = [t for t in tasks if t["node"] == "n2"]
        check(len(mine) == 1 and len(theirs) == 1, "one web task per node: %r" % [(t["id"], t["node"]) for t in tasks])
        mine, theirs = mine[0], theirs[0]

        # exit code, exact output, stdout and stderr apart
        p = exe(c, 0, "web", "--", "sh", "-c", "exit 7")
        check(p.returncode == 7, "exit 7 in the task: orch exited %d (%r)" % (p.returncode, p.stderr))
        p = exe(c, 0, "web", "--", "sh", "-c", r"printf 'a\nb\001c'; printf 'E\n' >&2")
        check(p.returncode == 0 and p.stdout == b"a\nb\x01c" and p.stderr == b"E\n",
              "exact output: rc %d out %r err %r" % (p.returncode, p.stdout, p.stderr))

        # standard input streamed, without a terminal (a bigger input than one frame too)
        p = exe(c, 0, "-i", "web", "--", "cat", stdin=b"hi\n")
        check(p.returncode == 0 and p.stdout == b"hi\n", "echo hi | orch exec -i web -- cat: %r %r" % (p.stdout, p.stderr))
        data = os.urandom(300000)
        p = exe(c, 0, "-i", "web", "--", "sh", "-c", "cat > /tmp/in; wc -c < /tmp/in; md5sum < /tmp/in", stdin=data)
        import hashlib
        want = b"%d\n%s  -\n" % (len(data), hashlib.md5(data).hexdigest().encode())
        check(p.returncode == 0 and p.stdout.replace(b" ", b"") == want.replace(b" ", b""),
              "300 kB through stdin: %r, want %r (%r)" % (p.stdout, want, p.stderr))
        # after --, options are the command's (--data-dir and -h too)
        p = exe(c, 0, "web", "--", "echo", "-D", "x", "--data-dir", "y", "-h")
        check(p.returncode == 0 and p.stdout == b"-D x --data-dir y -h\n", "options after --: %r %r" % (p.stdout, p.stderr))
        p = exe(c, 0, "web", "--", "cat")  # without -i the command's input is empty
        check(p.returncode == 0 and p.stdout == b"", "cat without -i: %r" % p.stdout)

        # a task of another node, by id and by SERVICE.SLOT: the same container
        p = exe(c, 0, str(theirs["id"]), "--", "sh", "-c", "echo %d > /tmp/who" % theirs["id"])
        check(p.returncode == 0, "exec in task %s on n2 from n1: %r" % (theirs["id"], p.stderr))
        p = exe(c, 0, "web.%d" % theirs["slot"], "--", "cat", "/tmp/who")
        check(p.stdout == b"%d\n" % theirs["id"], "web.%d is task %s: %r %r" % (theirs["slot"], theirs["id"], p.stdout, p.stderr))
        p = exe(c, 0, str(mine["id"]), "--", "cat", "/tmp/who")
        check(p.returncode == 1 and b"/tmp/who" in p.stderr, "task %s is another container: %r" % (mine["id"], p.stderr))

        # root on the worker: its own task, not the manager's
        p = exe(c, 1, str(theirs["id"]), "--", "cat", "/tmp/who")
        check(p.returncode == 0 and p.stdout == b"%d\n" % theirs["id"], "worker's own task: %r" % p.stderr)
        p = exe(c, 1, str(mine["id"]), "--", "true")
        check(p.returncode == 1 and b"operator" in p.stderr, "root on the worker into n1's task: %d %r" % (p.returncode, p.stderr))

        # a remote operator may, a viewer may not
        bundles = {}
        for role in ("operator", "viewer"):
            bundles[role] = os.path.join(c.tmp, role + ".pem")
            c.cli(0, "user", "add", role, "--role", role, "-o", bundles[role], json=False)
        remote = [BIN, "--host", c.nodes[0].addr, "--cert-bundle"]
        p = subprocess.run(remote + [bundles["operator"], "exec", "-i", str(theirs["id"]), "--", "cat"], input=b"op\n",
                           capture_output=True, timeout=30, env=c.env)
        check(p.returncode == 0 and p.stdout == b"op\n", "remote operator exec: %d %r" % (p.returncode, p.stderr))
        p = subprocess.run(remote + [bundles["viewer"], "exec", "web", "--", "true"], capture_output=True, timeout=30,
                           env=c.env)
        check(p.returncode == 1 and b"needs role operator" in p.stderr, "viewer exec: %d %r" % (p.returncode, p.stderr))

        # a terminal: its size, a resize, tty, the exit code (on n1, into n2's task)
        tty_session(c, 0, str(theirs["id"]))

        # bad input
        for args, rc, words in [
                (["nosuch", "--", "true"], 4, b"no service or task nosuch"),
                (["web.9", "--", "true"], 4, b"no slot 9"),
                (["999999999", "--", "true"], 4, b"no task 999999999"),
                (["web"], 2, b"no command"),
                (["web", "--", "x" * 40000], 2, b"too long"),
                (["web", "--", "/nonexistent"], 1, b"nonexistent"),
                (["-x", "web", "--", "true"], 2, b"unknown option")]:
            p = exe(c, 0, *args)
            check(p.returncode == rc and words in p.stderr, "orch exec %s: %d %r" % (args[:3], p.returncode, p.stderr))

        # a task that no longer runs
        c.cli(0, "scale", "web=1", json=False)
        # the stopped task's record may already be gone from the state (a slot scaled away
        # is not kept): then the task is no task at all; either way a clear refusal
        def stopped():
            ts = {t["id"]: t for t in c.ps(0, "web", all_tasks=True)}
            return [(i, ts.get(i)) for i in (mine["id"], theirs["id"]) if i not in ts or ts[i]["state"] != "running"]
        gone_id, gone = wait_until(stopped, 30, "a web task to stop")[0]
        p = exe(c, 0, str(gone_id), "--", "true")
        if gone is not None and p.returncode == 1:
            check(b"not running" in p.stderr, "exec in a stopped task: %d %r" % (p.returncode, p.stderr))
        else:
            check(p.returncode == 4 and b"no task %d" % gone_id in p.stderr,
                  "exec in a task scaled away: %d %r" % (p.returncode, p.stderr))
        check(running(c.ps(0, "web")), "web still runs")
