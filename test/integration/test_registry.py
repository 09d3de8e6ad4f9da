"""Issue 10, images from registries, the cluster's side: a real docker-registry on
127.0.0.1 (test/integration/registry.py), three nodes started with --insecure-registry and
--registry-mirror pointing at it. A tag is resolved once by the leader and every replica
runs that digest (orch ps shows it); the tag moved in the registry and deployed again
rolls the service; a Docker Hub style name comes through the mirror; an image the registry
does not have is refused at deploy; orch image pull on every node; orch image prune frees
what no service uses; orch images shows disk use."""
import gzip
import json
import os
import re
import shutil
import subprocess

from harness import BIN, check, wait_until
from registry import MT_OCI_MANIFEST, Registry, demo_plus_layer, oci_index, sha, small_layers
from workload import WorkCluster, demo_image, tar_bytes, wait_running

TIMEOUTS = {"test_registry_deploy_pull_prune": 150, "test_registry_login": 90, "test_registry_pull_failure": 60,
            "test_registry_tls_ca_dir": 60, "test_registry_index_picks_platform": 60}

SVC = """services:
  %s:
    image: %s
    stop_grace_period: 1s
    deploy:
      replicas: %d
"""


def demo_variant(reg, repo, tag, note):
    """Pushes the demo image plus one small layer of its own (/www/note) as repo:tag; returns
    the manifest digest: other bytes, same program."""
    extra = tar_bytes([("www/", "dir", None), ("www/note", "file", note.encode())])
    mb, blobs = demo_plus_layer(WorkCluster.tmp_base(), extra)
    return reg.push_raw(repo, tag, mb, MT_OCI_MANIFEST, blobs), sha(blobs[-2])


def images_of(c, service):
    return sorted({t["image"] for t in c.ps(0, service) if t["state"] == "running"})


def test_registry_deploy_pull_prune():
    with Registry(WorkCluster.tmp_base()) as reg, WorkCluster() as c:
        h = reg.host
        opts = ["--insecure-registry", h, "--registry-mirror", h]
        c.init(extra=opts)
        c.join(extra=opts)
        c.join(extra=opts)
        # the options are kept with the node (a restart on the data dir keeps them)
        with open(os.path.join(c.nodes[1].dir, "registry")) as f:
            kept = f.read()
        check("insecure-registry %s\n" % h in kept and "registry-mirror %s\n" % h in kept, "kept options: %r" % kept)

        d1, _ = demo_variant(reg, "app", "v1", "one")
        # a tag resolved once by the leader: three replicas, one digest, shown by orch ps
        out = c.deploy(1, c.write("app.yml", SVC % ("app", h + "/app:v1", 3))).stdout
        check(re.search(r"^app\s+created", out, re.M), "deploy: %r" % out)
        ts = wait_running(c, "app", 3, timeout=60)
        check({t["image"] for t in ts} == {"%s/app:v1@%s" % (h, d1)}, "replicas' images: %r" % [t["image"] for t in ts])
        check(len({t["node"] for t in ts}) == 3, "not one replica per node: %r" % [t["node"] for t in ts])
        table = c.cli(0, "ps", "app", json=False).stdout
        check(("%s/app:v1@%s" % (h, d1[:19])) in table, "orch ps shows no digest: %r" % table)
        insp = c.cli(0, "inspect", "app", json=False).stdout
        check(d1 in insp, "orch inspect shows no digest: %r" % insp[:600])
        # the same file again: the tag still names the same bytes, nothing changes
        out = c.deploy(0, c.write("app.yml", SVC % ("app", h + "/app:v1", 3))).stdout
        check(re.search(r"^app\s+unchanged", out, re.M), "redeploy of an unmoved tag: %r" % out)

        # the tag moved: deploying again rolls the service to the new digest
        d2, _ = demo_variant(reg, "app", "v1", "two")
        check(d2 != d1, "the variant did not change the digest")
        out = c.deploy(2, c.write("app.yml", SVC % ("app", h + "/app:v1", 3))).stdout
        check(re.search(r"^app\s+updated", out, re.M), "deploy after the tag moved: %r" % out)
        wait_until(lambda: images_of(c, "app") == ["%s/app:v1@%s" % (h, d2)] and len(wait_running(c, "app", 3, 5)) == 3,
                   60, "app rolled to %s" % d2, interval=0.3)

        # a Docker Hub name through the mirror
        dh, hub_layer = demo_variant(reg, "library/busybox", "latest", "hub")
        c.deploy(0, c.write("hub.yml", SVC % ("hub", "busybox", 1)))
        ts = wait_running(c, "hub", 1, timeout=60)
        check(ts[0]["image"] == "docker.io/library/busybox:latest@" + dh, "hub image: %r" % ts[0]["image"])

        # not in the registry: refused at deploy, with the registry's answer, and the file's
        # other service (a good image) is not deployed either
        p = c.deploy(0, c.write("nope.yml", SVC % ("fine", h + "/app:v1", 1) + (SVC % ("nope", h + "/nope:v1", 1))
                                .replace("services:\n", "")), check_rc=False)
        check(p.returncode != 0, "deploy of a missing image succeeded: %r" % p.stdout)
        check("service nope: image %s/nope:v1" % h in p.stderr and re.search(r"not found|unknown", p.stderr, re.I)
              and "nothing was deployed" in p.stderr, "error: %r" % p.stderr)
        check(all(s["name"] not in ("nope", "fine") for s in c.services(0)), "a service of the refused file was created")

        # pre-pull on every node, with a line per node
        d3, _ = demo_variant(reg, "app", "v3", "three")
        p = c.cli(0, "image", "pull", h + "/app:v3", json=False)
        for n in c.nodes:
            check(re.search(r"^%s: pulled %s" % (n.name, re.escape(d3)), p.stdout, re.M),
                  "no pulled line for %s: %r" % (n.name, p.stdout))
        p = c.cli(0, "image", "pull", h + "/missing:v9", json=False, check=False)
        check(p.returncode != 0 and "missing" in p.stderr, "pull of a missing image: rc %d %r" % (p.returncode, p.stderr))

        # disk use per image and per node
        out = c.cli(0, "images", json=False).stdout
        check("ON DISK" in out and re.search(r"^NODE\s+BLOBS\s+LAYERS\s+TOTAL", out, re.M), "orch images: %r" % out)
        v3 = [i for i in c.images(0) if i["ref"] == "%s/app:v3@%s" % (h, d3)]
        check(len(v3) == 1 and v3[0]["disk_nodes"] == 3 and v3[0]["disk_bytes"] > 1000000, "v3 on disk: %r" % v3)

        # prune: the hub service gone, its image's own layer is freed where it ran
        hub_node = [n for n in c.nodes if n.name == ts[0]["node"]][0]
        blob = os.path.join(hub_node.dir, "blobs", "sha256", hub_layer[7:])
        check(os.path.exists(blob), "the hub image's layer is not on %s" % hub_node.name)
        c.cli(0, "rm", "hub", json=False)
        wait_until(lambda: not [t for t in c.ps(0, all_tasks=True) if t["service"] == "hub" and t["state"] not in
                                ("complete", "failed", "shutdown", "rejected", "orphaned")], 30, "hub tasks ended")
        p = wait_until(lambda: (lambda q: q if q.returncode == 0 else None)(c.cli(0, "image", "prune", json=False,
                                                                                   check=False)),
                       30, "a prune no pull holds back")
        check("removed image docker.io/library/busybox:latest@" + dh in p.stdout, "prune output: %r" % p.stdout)
        check(re.search(r"^%s: freed [1-9]" % hub_node.name, p.stdout, re.M), "nothing freed on %s: %r" % (hub_node.name, p.stdout))
        check(not os.path.exists(blob), "the hub layer is still on %s after prune" % hub_node.name)
        names = [i["ref"] for i in c.images(0)]
        check(not any("busybox" in n for n in names), "the hub image is still recorded: %r" % names)
        # what services use stays
        check(any(n == "%s/app:v1@%s" % (h, d2) for n in names), "the running image went: %r" % names)
        check(len(wait_running(c, "app", 3, 10)) == 3, "app no longer runs")


def login(c, host, user, pw):
    r = subprocess.run([BIN, "-D", c.nodes[0].dir, "registry", "login", host, "-u", user, "--password-stdin"],
                       input=pw + "\n", capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "registry login: %r %r" % (r.stdout, r.stderr))


def test_registry_login():
    """A registry that wants basic auth: no credentials, then wrong ones, are refused at
    deploy with the registry's reason; after orch registry login with the right ones every
    node pulls (credentials sealed in the cluster, looked up by each node)."""
    with Registry(WorkCluster.tmp_base(), auth="basic", users={"alice": "wonderland"}) as reg, WorkCluster() as c:
        h = reg.host
        opts = ["--insecure-registry", h]
        c.init(extra=opts)
        c.join(extra=opts)
        d1, _ = demo_variant(reg, "private/app", "v1", "secret sauce")
        spec = c.write("app.yml", SVC % ("app", h + "/private/app:v1", 2))
        p = c.deploy(0, spec, check_rc=False)
        check(p.returncode != 0 and re.search(r"unauthori[sz]ed.*none are stored", p.stderr), "anonymous: %r" % p.stderr)
        login(c, h, "alice", "not-the-password")
        p = c.deploy(1, spec, check_rc=False)
        check(p.returncode != 0 and re.search(r"unauthori[sz]ed.*refused.*alice", p.stderr),
              "wrong password: %r" % p.stderr)
        check("not-the-password" not in p.stderr, "the password is in the error")
        check(all(s["name"] != "app" for s in c.services(0)), "a service was created with wrong credentials")
        login(c, h, "alice", "wonderland")
        c.deploy(1, spec)
        ts = wait_running(c, "app", 2, timeout=60)
        check({t["image"] for t in ts} == {"%s/private/app:v1@%s" % (h, d1)}, "images: %r" % [t["image"] for t in ts])
        check(len({t["node"] for t in ts}) == 2, "not one replica per node: %r" % [t["node"] for t in ts])
        for n in c.nodes:
            check("wonderland" not in n.log_text(), "the password is in the log of %s" % n.name)


def test_registry_pull_failure():
    """The tag resolves but a layer is gone from the registry: the node's pull fails, the task
    is rejected with the registry's reason, and the slot backs off as for any failed start."""
    with Registry(WorkCluster.tmp_base()) as reg, WorkCluster() as c:
        h = reg.host
        c.init(extra=["--insecure-registry", h])
        d, layer = demo_variant(reg, "broken", "v1", "gone")
        reg._request("DELETE", "/v2/broken/blobs/%s" % layer, "broken")
        c.deploy(0, c.write("b.yml", SVC % ("broken", h + "/broken:v1", 1)))

        def rejected():
            ts = [t for t in c.ps(0, all_tasks=True) if t["service"] == "broken" and t["state"] == "rejected"]
            return ts if len(ts) >= 2 else None
        ts = wait_until(rejected, 40, "two rejected pulls of broken", interval=0.3)
        for t in ts:
            check(t["image"] == "%s/broken:v1@%s" % (h, d), "image of the task: %r" % t["image"])
            check(re.search(r"pull %s/broken:v1@%s: .*(not found|unknown)" % (re.escape(h), re.escape(d)), t["err"], re.I),
                  "rejection reason: %r" % t["err"])
        # the restart back-off applies: the slot waits before its next try
        live = [t for t in c.ps(0, "broken")]
        check(live and (live[0].get("failures", 0) >= 1 or live[0]["start_after"] > 0),
              "no back-off after failed pulls: %r" % live)
        table = c.cli(0, "ps", "broken", json=False).stdout
        check(re.search(r"restarting in|pulling|preparing|rejected", table), "ps: %r" % table)


def test_registry_tls_ca_dir():
    """A registry over TLS with a certificate of a private CA: trusted by a node through its
    --registry-ca-dir (DIR/HOST:PORT/ca.crt), kept with the node; without the CA the deploy
    is refused naming the certificate problem."""
    with Registry(WorkCluster.tmp_base(), tls=True) as reg, WorkCluster() as c:
        h = reg.host
        cas = os.path.join(c.tmp, "certs.d")
        os.makedirs(os.path.join(cas, h))
        c.init(extra=["--registry-ca-dir", cas])
        d, _ = demo_variant(reg, "tls/app", "v1", "over tls")
        spec = c.write("t.yml", SVC % ("tlsapp", h + "/tls/app:v1", 1))
        p = c.deploy(0, spec, check_rc=False)
        check(p.returncode != 0 and re.search(r"certificate|tls|ssl", p.stderr, re.I), "untrusted CA: %r" % p.stderr)
        shutil.copy(reg.ca_file, os.path.join(cas, h, "ca.crt"))
        c.deploy(0, spec)
        ts = wait_running(c, "tlsapp", 1, timeout=40)
        check(ts[0]["image"] == "%s/tls/app:v1@%s" % (h, d), "image: %r" % ts[0]["image"])
        with open(os.path.join(c.nodes[0].dir, "registry")) as f:
            check("registry-ca-dir %s\n" % cas in f.read(), "the CA dir is not kept with the node")


def demo_tars():
    """The demo image's layers as plain tars."""
    lay = os.path.join(demo_image(WorkCluster.tmp_base()), "demo-oci")
    with open(os.path.join(lay, "index.json")) as f:
        top = json.load(f)["manifests"][0]["digest"]
    with open(os.path.join(lay, "blobs", "sha256", top[7:]), "rb") as f:
        man = json.load(f)
    out = []
    for x in man["layers"]:
        with open(os.path.join(lay, "blobs", "sha256", x["digest"][7:]), "rb") as f:
            out.append(gzip.decompress(f.read()))
    return out


def test_registry_index_picks_platform():
    """A multi-platform index: the service is pinned to the index's digest and the node runs
    the image of its own platform (linux/amd64 here; the arm64 one could not run)."""
    with Registry(WorkCluster.tmp_base()) as reg, WorkCluster() as c:
        h = reg.host
        c.init(extra=["--insecure-registry", h])
        path, idx, mans = oci_index(os.path.join(c.tmp, "idx"), "1", [("linux/arm64", small_layers("arm", 1)),
                                                                      ("linux/amd64", demo_tars())])
        reg.push("oci:%s:1" % path, "multi:1", "--all")
        c.deploy(0, c.write("m.yml", """services:
  multi:
    image: %s/multi:1
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    stop_grace_period: 1s
""" % h))
        ts = wait_running(c, "multi", 1, timeout=40)
        check(ts[0]["image"] == "%s/multi:1@%s" % (h, idx), "pinned to %r, index %s" % (ts[0]["image"], idx))
        rec = [i for i in c.images(0) if i["ref"].startswith(h + "/multi:1@")]
        check(len(rec) == 1 and rec[0]["digest"] == mans["linux/amd64"], "record: %r (amd64 manifest %s)" %
              (rec, mans["linux/amd64"]))
