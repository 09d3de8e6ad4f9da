"""Issue 10: image names as Docker compares them. An archive's every tag is recorded, names
are normalised (implicit :latest, docker.io/library/), so `image: web` in a spec runs a
loaded `docker.io/library/web:latest`; `orch images` shows the short names. An OCI layout
with zstd layers runs too (the agent unpacks them)."""
import os
import re
import subprocess

from harness import check
from workload import WorkCluster, demo_image, http_get, wait_running

TIMEOUTS = {"test_tags_normalised_and_zstd_layers_run": 90}

SPEC = """services:
  plain:
    image: web
    ports: ["80"]
  full:
    image: docker.io/library/web:latest
  other:
    image: team/site:1
  zst:
    image: zsite
"""


def skopeo(*args):
    p = subprocess.run(["skopeo"] + list(args), capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "skopeo %s: %s" % (" ".join(args), p.stderr.strip()[-300:]))


def test_tags_normalised_and_zstd_layers_run():
    with WorkCluster(1) as c:
        img = demo_image(c.tmp_base())
        multi = os.path.join(c.tmp, "multi.tar")
        # skopeo writes every tag into the archive, as docker.io/... names
        skopeo("copy", "-q", "oci:%s/demo-oci:demo:latest" % img, "docker-archive:%s:web:latest" % multi,
               "--additional-tag", "team/site:1", "--additional-tag", "ghcr.io/team/site:2")
        zoci = os.path.join(c.tmp, "zoci")
        skopeo("copy", "-q", "--dest-compress-format", "zstd", "oci:%s/demo-oci:demo:latest" % img, "oci:%s:zsite:latest" % zoci)
        out = c.cli(0, "image", "load", multi, json=False).stdout
        for name in ("web:latest", "team/site:1", "ghcr.io/team/site:2"):
            check(re.search(r"^%s sha256:\S+ .*: loaded$" % re.escape(name), out, re.M), "image load output: %r" % out)
        c.cli(0, "image", "load", zoci, json=False)
        ims = {i["name"]: i for i in c.images()}
        check(set(ims) == {"web:latest", "team/site:1", "ghcr.io/team/site:2", "zsite:latest"}, "orch images: %r" % ims)
        check(ims["web:latest"]["ref"] == "docker.io/library/web:latest", "ref of web: %r" % ims["web:latest"])
        check(ims["team/site:1"]["ref"] == "docker.io/team/site:1", "ref of team/site: %r" % ims["team/site:1"])
        check(ims["web:latest"]["digest"] == ims["team/site:1"]["digest"], "tags of one image differ: %r" % ims)
        table = c.cli(0, "images", json=False).stdout
        check(re.search(r"^web:latest\s", table, re.M) and "docker.io/library" not in table, "images table: %r" % table)
        # loading again changes nothing
        again = c.cli(0, "image", "load", multi, json=False).stdout
        check(again.count("already loaded") == 3, "second load: %r" % again)
        # every spelling in a spec finds its image, and the zstd'd one runs
        c.deploy(0, c.write("app.yml", SPEC))
        for svc in ("plain", "full", "other", "zst"):
            wait_running(c, svc, 1)
        t = wait_running(c, "plain", 1)[0]
        check("orch demo" in (http_get(t["endpoint"], "/") or ""), "plain does not serve the demo page")
        # an image neither loaded nor in its registry is refused at deploy, naming it (a
        # registry on 127.0.0.1 that is not there: tests never reach Docker Hub)
        p = c.cli(0, "deploy", "-f", c.write("bad.yml", "services:\n  x:\n    image: 127.0.0.1:9/nginx\n"), json=False,
                  check=False)
        check(p.returncode != 0 and "service x: image 127.0.0.1:9/nginx:latest" in p.stderr, "deploy of nginx: %r" % p.stderr)
        # image rm by a short spelling removes the canonical record
        c.cli(0, "rm", "plain", "full", "other", "zst", json=False)
        c.cli(0, "image", "rm", "team/site:1", json=False)
        names = {i["name"] for i in c.images()}
        check("team/site:1" not in names and "web:latest" in names, "after image rm: %r" % names)
