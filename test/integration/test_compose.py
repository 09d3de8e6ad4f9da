"""Compose as people write it, through the real CLI and a real container: .env and shell
variables, a second file from standard input, env_file, profiles, build:/container_name
warnings, an image named in another spelling than the one loaded (demo:latest); in the
running task extra_hosts in /etc/hosts, dns_search in resolv.conf and init: true putting
orch's init at PID 1; compose.yaml and its override read when no -f is given. An unset
variable behind a bad port is named and nothing is deployed."""
import os
import subprocess

from harness import BIN, check, wait_until
from workload import WorkCluster, wait_running

TIMEOUTS = {"test_compose_file_deploys_as_written": 60}

BASE = """name: shop
services:
  web:
    build: ./web
    image: ${REGISTRY:-docker.io}/library/demo
    container_name: shop_web
    command: ["sh", "-c", "echo GREETING=$$GREETING MODE=$$MODE EXTRA=$$EXTRA; cat /etc/hosts /etc/resolv.conf; echo PID1=$$(tr '\\\\0' ' ' </proc/1/cmdline); exec sleep 1000"]
    env_file: web.env
    environment:
      GREETING: ${GREETING:-nobody said hello}
    extra_hosts:
      - "db.internal:10.9.8.7"
    dns_search: [corp.example]
    init: true
    restart: on-failure:3
    stop_grace_period: 1s
  debug:
    image: demo:${TAG}
    profiles: [debug]
"""

OVERRIDE = """services:
  web:
    environment:
      EXTRA: from-stdin
"""


def deploy(c, args, stdin=None, env_extra=None, cwd=None):
    env = dict(c.env)
    env.update(env_extra or {})
    return subprocess.run([BIN, "-D", c.nodes[0].dir, "deploy"] + args, input=stdin, capture_output=True, text=True,
                          timeout=30, env=env, cwd=cwd)


def test_compose_file_deploys_as_written():
    with WorkCluster(1) as c:
        c.load_demo()
        d = os.path.join(c.tmp, "shop")
        os.makedirs(d)
        for name, text in {"compose.yaml": BASE, ".env": "TAG=latest\nGREETING=hello from dotenv\n",
                           "web.env": "MODE=production\n"}.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        # the shell's variable wins over .env; the second file comes from standard input
        p = deploy(c, ["-f", os.path.join(d, "compose.yaml"), "-f", "-"], stdin=OVERRIDE,
                   env_extra={"GREETING": "hello from the shell"})
        check(p.returncode == 0, "deploy failed: %s %s" % (p.stdout, p.stderr))
        check("compose.yaml:4:5: services.web: build is ignored; the image comes from image: docker.io/library/demo" in p.stderr,
              "no located build warning: %r" % p.stderr)
        check("container_name is ignored" in p.stderr, "no container_name warning: %r" % p.stderr)
        names = sorted(s["name"] for s in c.services())
        check(names == ["web"], "services deployed: %r (debug has an inactive profile)" % names)
        wait_running(c, "web", 1)

        def logs():
            out = c.cli(0, "logs", "web", json=False).stdout
            return out if "PID1=" in out else None
        out = wait_until(logs, 15, "the web task's first lines in orch logs")
        check("GREETING=hello from the shell MODE=production EXTRA=from-stdin" in out, "environment: %r" % out)
        check("10.9.8.7\tdb.internal" in out, "extra_hosts missing from /etc/hosts: %r" % out)
        check("search corp.example" in out, "dns_search missing from resolv.conf: %r" % out)
        check("PID1=/.orch-init -- sh -c" in out, "init: true did not put orch's init at PID 1: %r" % out)
        spec = c.cli(0, "inspect", "web")
        text = str(spec)
        check("db.internal" in text and "corp.example" in text, "inspect does not show the new keys: %r" % text[:600])

        # no -f: compose.yaml of the working directory, and its override file when there is one
        shell = {"GREETING": "hello from the shell"}
        p = deploy(c, ["--dry-run"], env_extra=shell, cwd=d)
        check(p.returncode == 0 and "web                  update" in p.stdout, "without the override: %r %r" % (p.stdout, p.stderr))
        with open(os.path.join(d, "compose.override.yaml"), "w") as f:
            f.write(OVERRIDE)
        p = deploy(c, ["--dry-run"], env_extra=shell, cwd=d)
        check(p.returncode == 0 and "web                  unchanged" in p.stdout, "with the override: %r %r" % (p.stdout, p.stderr))

        # an unset variable behind a bad port: named, located, nothing changes
        bad = os.path.join(d, "bad.yaml")
        with open(bad, "w") as f:
            f.write("services:\n  site:\n    image: demo:latest\n    ports:\n      - \"${PUBLIC_PORT}:80\"\n")
        p = deploy(c, ["-f", bad])
        check(p.returncode == 1, "bad file deployed: %s %s" % (p.stdout, p.stderr))
        check("bad.yaml:5:9: services.site.ports[0]:" in p.stderr and 'PUBLIC_PORT is not set (from "${PUBLIC_PORT}:80")' in p.stderr,
              "error does not name the variable: %r" % p.stderr)
        check(sorted(s["name"] for s in c.services()) == ["web"], "services changed after a refused deploy")
