"""Issue 10: the Compose corpus (test/compose/corpus, files of the kinds public example
repositories hold, each stating its outcome) deployed for real on three nodes. Every file
that says "# expect: ok" deploys and all its services run; every other file is refused
with its stated, located error and changes nothing.

Images: this test may talk to no registry but its own, so every image a corpus file names is
a stand-in pushed into a real docker-registry on 127.0.0.1 (test/integration/registry.py),
which the nodes use as their --registry-mirror for docker.io names. Names of other
registries (ghcr.io, quay.io, registry.example.com) are loaded with `orch image load` under
their full names instead. The stand-in is the demo image (busybox httpd) with an entrypoint
that runs a command given to it and serves HTTP otherwise, and stand-ins for the programs
the files' commands and health checks call (/shim is first on PATH): servers sleep, probes
succeed. What is under test is orch: reading the files, pulling, volumes, secrets,
networks, ordering and placement; not the programs inside the images."""
import io
import json
import os
import re
import shutil
import tarfile
import time

from harness import check, wait_until
from registry import MT_OCI_MANIFEST, Registry, demo_plus_layer, sha
from workload import WorkCluster

TIMEOUTS = {"test_corpus_deploys_as_stated": 600}

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "compose", "corpus")

SERVERS = ["celery", "gunicorn", "npm", "node", "serve", "work", "redis-server", "postgres", "mysqld"]
PROBES = ["pg_isready", "redis-cli", "mysqladmin", "curl", "wget", "mongosh"]
ENTRY = """#!/bin/sh
# The stand-in's entrypoint: an argument that names a program runs it; options (as real
# images' entrypoints take them) or nothing serve HTTP on port 80. PID 1 ignores a signal
# it has no handler for, so this one stops its program on TERM, as real servers stop.
trap 'kill $pid 2>/dev/null; wait $pid; exit 0' TERM INT
case "$1" in ""|-*) httpd -f -p 80 -h /www & ;; *) "$@" & ;; esac
pid=$!
wait $pid
"""
SERVER = "#!/bin/sh\nexec sleep 2147483647\n"
PROBE = "#!/bin/sh\nexit 0\n"


def case_meta(path):
    """The file's '# expect:', '# deploy:' (overrides expect here), '# pending:', '# env:',
    '# profile:' and '# also:' lines."""
    meta = {"expect": None, "deploy": None, "env": {}, "profile": [], "also": [], "pending": {}}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("# expect: ") and not meta["deploy"]:
                meta["expect"] = line[10:]
            elif line.startswith("# deploy: "):  # the outcome of the deploy, when parsing alone differs
                meta["expect"] = meta["deploy"] = line[10:]
            elif line.startswith("# env: "):
                k, _, v = line[7:].partition("=")
                meta["env"][k] = v
            elif line.startswith("# profile: "):
                meta["profile"].append(line[11:])
            elif line.startswith("# pending: "):  # a service that deploys but cannot run here, and why
                svc, _, why = line[11:].partition(" ")
                meta["pending"][svc] = why
            elif line.startswith("# also: "):
                meta["also"].append(line[8:])
    return meta


def cases(root):
    """(name, main file) for every corpus case: a file, or a directory's compose.yaml."""
    out = []
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name)
        if os.path.isdir(p):
            for cand in ("compose.yaml", "compose.yml", "docker-compose.yml"):
                if os.path.exists(os.path.join(p, cand)):
                    out.append((name, os.path.join(p, cand)))
                    break
        elif name.endswith((".yml", ".yaml")) and ".part." not in name:
            out.append((name, p))
    return out


def image_refs(root):
    """Every image: value in the corpus, interpolation left to the test's environment."""
    refs = set()
    for dirpath, _, files in os.walk(root):
        for fn in files:
            if not fn.endswith((".yml", ".yaml")):
                continue
            with open(os.path.join(dirpath, fn)) as f:
                for line in f:
                    m = re.match(r"\s+image:\s*[\"']?([^\"'#\s]+)", line)
                    if m:
                        refs.add(m.group(1))
    return refs


def expand(ref):
    """A reference with each ${VAR:-default} as its default (the variables' values the
    corpus sets are tried too, by the caller)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", ref)


def standin(tmp):
    """(manifest bytes, blobs) of the stand-in image."""
    entries = [("shim/", "dir", None), ("shim/entry", "file", ENTRY.encode())]
    entries += [("shim/%s" % n, "file", SERVER.encode()) for n in SERVERS]
    entries += [("shim/%s" % n, "file", PROBE.encode()) for n in PROBES]
    entries += [("app/", "dir", None), ("app/serve", "file", SERVER.encode()), ("app/work", "file", SERVER.encode())]

    def edit(cfg):
        cfg["config"]["Entrypoint"] = ["/shim/entry"]
        cfg["config"]["Cmd"] = []
        cfg["config"]["Env"] = ["PATH=/shim:/app:/bin"]
    return demo_plus_layer(tmp, exec_tar(entries), edit)


def exec_tar(entries):
    """A layer tar of (name, "dir"|"file", data) with executable files."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.mode = 1704067200, 0, 0, 0o755
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def oci_layout(path, refs, mb, blobs):
    """An OCI layout holding the stand-in once per full reference (ref.name annotations)."""
    os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    for b in blobs + [mb]:
        with open(os.path.join(path, "blobs", "sha256", sha(b)[7:]), "wb") as f:
            f.write(b)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    idx = {"schemaVersion": 2, "manifests": [
        {"mediaType": MT_OCI_MANIFEST, "digest": sha(mb), "size": len(mb),
         "annotations": {"org.opencontainers.image.ref.name": r}} for r in sorted(refs)]}
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump(idx, f)


def split_ref(ref):
    """(registry or None for docker.io, repository, tag)."""
    name, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
    first = name.split("/")[0]
    if "." in first or ":" in first or first == "localhost":
        return first, name[len(first) + 1:], tag
    return None, (name if "/" in name else "library/" + name), tag


def service_names(c):
    return {s["name"] for s in c.services(0)}


def test_corpus_deploys_as_stated():
    tmp_base = WorkCluster.tmp_base()
    with Registry(tmp_base) as reg, WorkCluster() as c:
        corpus = os.path.join(c.tmp, "corpus")
        shutil.copytree(CORPUS, corpus)
        h = reg.host
        opts = ["--insecure-registry", h, "--registry-mirror", h, "--allow-bind", corpus]
        # one loopback address per node, so that each can publish the files' ports
        c.init(extra=opts, ip="127.0.0.11")
        c.join(extra=opts, ip="127.0.0.12")
        c.join(extra=opts, ip="127.0.0.13")

        # the labels the placement cases ask for: two nodes in zone eu, one of them on hdd
        for node, labels in (("n1", ["zone=eu", "disk=ssd"]), ("n2", ["zone=eu", "disk=ssd"]), ("n3", ["zone=us"])):
            c.cli(0, "node", "label", node, *labels, json=False)

        # the stand-in, under every name the corpus uses
        mb, blobs = standin(tmp_base)
        env_tags = set()
        all_cases = cases(corpus)
        for _, path in all_cases:
            env_tags.update(v for k, v in case_meta(path)["env"].items() if k.endswith("_TAG"))
            dotenv = os.path.join(os.path.dirname(path), ".env")
            if os.path.exists(dotenv):
                with open(dotenv) as f:
                    env_tags.update(l.split("=", 1)[1].strip() for l in f if re.match(r"[A-Z_]+_TAG=", l))
        local = set()
        pushed = 0
        # 08-build-only: the names Compose gives the images it would build (<project>-<service>)
        for ref in sorted(image_refs(corpus) | {"corpus-app", "corpus-worker"}):
            variants = [expand(ref)] + [re.sub(r"\$\{[A-Z_]+(:-[^}]*)?\}", t, ref) for t in env_tags if "${" in ref]
            for r in variants:
                if "${" in r or "windows" in r:
                    continue
                registry, repo, tag = split_ref(r)
                if registry is None:
                    reg.push_raw(repo, tag, mb, MT_OCI_MANIFEST, blobs)
                    pushed += 1
                else:
                    local.add(r if ":" in r.split("/")[-1] else r + ":latest")
        lay = os.path.join(c.tmp, "others-oci")
        oci_layout(lay, local, mb, blobs)
        c.cli(0, "image", "load", lay, json=False)

        results = []
        for name, path in all_cases:
            t0 = time.time()
            meta = case_meta(path)
            check(meta["expect"], "%s: no '# expect:' line" % name)
            args = ["deploy", "-f", path]
            for a in meta["also"]:
                args += ["-f", os.path.join(os.path.dirname(path), a)]
            for p in meta["profile"]:
                args += ["--profile", p]
            env = dict(c.env or os.environ)
            env.update(meta["env"])
            before = service_names(c)
            p = c.run("-D", c.nodes[0].dir, *args, env=env, timeout=120)
            if meta["expect"] == "ok":
                check(p.returncode == 0, "%s: deploy failed: %s" % (name, (p.stderr + p.stdout).strip()[-1500:].replace("\n", " | ")))
                new = sorted(service_names(c) - before)
                check(new, "%s: deployed, but no service appeared" % name)

                pending = meta["pending"]

                def all_running():
                    svcs = [s for s in c.services(0) if s["name"] in new and s["name"] not in pending]
                    return True if all(s.get("desired") and s.get("running") == s.get("desired") for s in svcs) else None
                try:
                    wait_until(all_running, 90, "%s: every service of the file running" % name, interval=0.3)
                except AssertionError:
                    ps = c.cli(0, "ps", "-a", json=False, check=False).stdout
                    raise AssertionError("%s: not all running: %r\n%s" % (name, c.services(0), ps[-3000:]))
                for svc, why in pending.items():
                    wait_until(lambda: any(why in json.dumps(t) for t in c.ps(0, svc)) or None,
                               30, "%s: %s pending with %r" % (name, svc, why), interval=0.3)
                c.cli(0, "rm", *new, json=False)
                wait_until(lambda: not (service_names(c) & set(new)) and not [t for t in c.ps(0, all_tasks=True)
                                                                              if t.get("service") in new] or None,
                           60, "%s: services removed" % name, interval=0.3)
                results.append("%s ok (%d services, %.1f s)" % (name, len(new), time.time() - t0))
            else:
                want = meta["expect"][len("error "):]
                err = (p.stderr or "") + (p.stdout or "")
                check(p.returncode != 0, "%s: deploy succeeded but should fail with %r" % (name, want))
                check(want in err, "%s: error %r lacks %r" % (name, err.strip()[-600:], want))
                check(service_names(c) == before, "%s: a refused deploy changed the services" % name)
                results.append("%s refused as stated" % name)
        print("\n".join(results), flush=True)
        print("corpus: %d files, %d stand-in images pushed, %d loaded" % (len(all_cases), pushed, len(local)))
