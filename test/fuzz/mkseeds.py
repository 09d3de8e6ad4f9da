#!/usr/bin/env python3
"""Writes the seed corpora of test/fuzz/corpus/<target> (committed; rerun after changing
this file): small valid inputs of each format, the starting points libFuzzer mutates."""
import gzip
import hashlib
import io
import json
import os
import struct
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import mpack  # noqa: E402

OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def frame(obj):
    return mpack.frame(mpack.packb(obj))


def frames():
    spec = {"name": "web", "image": "nginx:1.27", "replicas": 2, "env": ["A=1"],
            "ports": [{"published": 8080, "target": 80, "protocol": "tcp"}]}
    node = {"id": 1234, "name": "n1", "addr": "127.0.0.1:7420", "labels": {"zone": "a"}}
    reqs = [
        {"op": "status", "id": 1},
        {"op": "kv.set", "id": 2, "key": "k", "value": "v" * 40},
        {"op": "service.put", "id": 3, "spec": spec, "project": "p"},
        {"op": "join", "id": 4, "node": node},
        {"op": "apply", "id": 5, "entry": b"\0" * 24},
        {"op": "hb", "id": 6, "node_id": 9, "stats": {"cpu": 1, "mem": 2}, "applied": 3},
        {"op": "image.node", "id": 7, "action": "gc", "grace_s": 5, "drop": ["a", "b"]},
        {"op": "node.update", "id": 8, "node": "n1", "labels": {"a": "b", "c": None}},
        {"op": "secret.create", "id": 9, "name": "s", "value": b"x" * 10},
    ]
    for policy in (0, 1, 3):
        put("frame", "all-%d" % policy, bytes([policy]) + b"".join(frame(r) for r in reqs))
    for i, r in enumerate(reqs):
        put("frame", "one-%d" % i, bytes([3]) + frame(r))
    put("frame", "id-first", bytes([1]) + frame({"id": 1, "op": "ping"}))
    put("frame", "nils", bytes([3]) + mpack.frame(b"\x82\xa2op\xa5apply\xa5entry\xdc\x01\x00" + b"\xc0" * 256))


def specs():
    put("spec", "orch.yml", """services:
  web:
    image: nginx:${TAG}
    replicas: 3
    ports: ["${PORT}:80/tcp"]
    env: {A: "1", B: two}
    healthcheck: {test: ["CMD", "true"], interval: 5s, retries: 3}
    deploy:
      resources: {limits: {memory: 64M, cpus: "0.5"}}
      placement: {constraints: ["node.labels.zone == a"]}
      update_config: {parallelism: 1, delay: 2s}
  db:
    image: redis
    volumes: ["data:/data"]
    depends_on: [web]
volumes:
  data: {}
""")
    put("spec", "anchors.yml", """x-base: &base
  image: busybox
  command: ["sh", "-c", "sleep 1000"]
services:
  a:
    <<: *base
    environment:
      - X=${EMPTY:-def}
      - Y=$${NAME}
  b:
    extends: {service: a}
    secrets: [s]
    configs: [{source: c, target: /etc/c}]
secrets: {s: {file: ./s.txt}}
configs: {c: {file: ./c.txt}}
""")
    src = os.path.join(HERE, "..", "compose", "corpus")
    for n in sorted(os.listdir(src)):
        p = os.path.join(src, n)
        if os.path.isfile(p) and n.endswith((".yml", ".yaml")) and os.path.getsize(p) < 8192:
            put("spec", "corpus-" + n, open(p, "rb").read())


def dns():
    def q(name, qtype=1, flags=0x0100):
        out = struct.pack(">HHHHHH", 0x1234, flags, 1, 0, 0, 0)
        for label in name.split("."):
            out += bytes([len(label)]) + label.encode()
        return out + b"\0" + struct.pack(">HH", qtype, 1)
    put("dns", "a", b"\x80" + q("web"))
    put("dns", "aaaa", b"\x80" + q("web.p.orch", 28))
    put("dns", "ptr", b"\x80" + q("1.0.0.10.in-addr.arpa", 12))
    put("dns", "small-cap", b"\x02" + q("db"))
    put("dns", "edns", b"\x80" + q("x")[:4] + b"\0\x01\0\0\0\0\0\x01" + q("x")[12:] + b"\0\0\x29\x10\0\0\0\0\0\0\0")


def image_json():
    cfg = {"architecture": "amd64", "os": "linux",
           "config": {"Entrypoint": ["/bin/sh"], "Cmd": ["-c", "x"], "Env": ["PATH=/bin"], "WorkingDir": "/",
                      "User": "1000", "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1000000000,
                                                      "Retries": 3}},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}}
    put("image_json", "config.json", json.dumps(cfg))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "b" * 64, "size": 10,
         "platform": {"os": "linux", "architecture": a, **({"variant": v} if v else {})}}
        for a, v in (("amd64", None), ("arm64", "v8"), ("arm", "v7"), ("arm", "v6"))]}
    put("image_json", "index.json", json.dumps(index))
    man = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:" + "c" * 64,
                      "size": 5}, "layers": [{"digest": "sha256:" + "d" * 64, "size": 7}]}
    put("image_json", "manifest.json", json.dumps(man))
    put("image_json", "escapes.json", '{"a":"\\u00e9\\ud83d\\ude00\\n","b":[1,-2.5e3,true,false,null,{}]}')


def tar_bytes(files, fmt=tarfile.USTAR_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            elif isinstance(data, tuple):
                ti.type, ti.linkname = data
                t.addfile(ti)
            else:
                ti.size = len(data)
                ti.mtime = 1700000000
                t.addfile(ti, io.BytesIO(data))
    return b.getvalue()


def tars():
    files = [("etc/", None), ("etc/hosts", b"127.0.0.1 localhost\n"), ("bin/sh", b"\x7fELF" + b"\0" * 100),
             ("bin/ls", (tarfile.SYMTYPE, "sh")), ("bin/ln", (tarfile.LNKTYPE, "bin/sh")),
             ("etc/.wh.old", b"")]
    put("tar", "ustar.tar", tar_bytes(files))
    put("tar", "gnu-long.tar", tar_bytes([("d/" + "x" * 150, b"long"), ("l", (tarfile.SYMTYPE, "y" * 120))],
                                         tarfile.GNU_FORMAT))
    put("tar", "pax.tar", tar_bytes([("p/" + "\u00e9" * 60, b"pax"), ("q", b"q" * 600)], tarfile.PAX_FORMAT))
    put("tar", "gz.tar.gz", gzip.compress(tar_bytes(files), mtime=0))


def archives():
    layer = tar_bytes([("hello", b"hello\n")])
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                      "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    cdig = hashlib.sha256(cfg).hexdigest()
    manifest = json.dumps([{"Config": cdig + ".json", "RepoTags": ["demo:1"], "Layers": ["l/layer.tar"]}]).encode()
    put("image_load", "docker-archive.tar", tar_bytes([(cdig + ".json", cfg), ("l/layer.tar", layer),
                                                        ("manifest.json", manifest)]))
    gl = gzip.compress(layer, mtime=0)
    ldig = hashlib.sha256(gl).hexdigest()
    oman = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + cdig, "size": len(cfg)},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                   "digest": "sha256:" + ldig, "size": len(gl)}]}).encode()
    mdig = hashlib.sha256(oman).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + mdig, "size": len(oman),
         "annotations": {"org.opencontainers.image.ref.name": "1"}}]}).encode()
    put("image_load", "oci-layout.tar", tar_bytes([
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
        ("blobs/sha256/" + mdig, oman), ("blobs/sha256/" + cdig, cfg), ("blobs/sha256/" + ldig, gl)]))


def registry():
    def resp(status, headers, body, head=0):
        h = "".join("%s: %s\r\n" % kv for kv in headers)
        return bytes([head]) + ("HTTP/1.1 %s\r\n%s\r\n" % (status, h)).encode() + body
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"digest": "sha256:" + "b" * 64, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    put("registry", "index", resp("200 OK", [("Content-Type", "application/vnd.oci.image.index.v1+json"),
                                             ("Content-Length", len(index))], index))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(index[i:i + 50]), index[i:i + 50]) for i in range(0, len(index), 50))
    put("registry", "chunked", resp("200 OK", [("Transfer-Encoding", "chunked"),
                                               ("Content-Type", "application/json")], chunks + b"0\r\n\r\n"))
    err = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
    put("registry", "401", resp("401 Unauthorized", [
        ("WWW-Authenticate", 'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"'),
        ("Content-Length", len(err))], err))
    put("registry", "basic", resp("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="x"'),
                                                       ("Content-Length", 0)], b""))
    put("registry", "404", resp("404 Not Found", [("Content-Length", 60)],
                                b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}'))
    put("registry", "429", resp("429 Too Many Requests", [("Retry-After", "30"), ("Connection", "close")], b"slow"))
    put("registry", "head", resp("200 OK", [("Docker-Content-Digest", "sha256:" + "e" * 64),
                                            ("Content-Length", 1234)], b"", head=1))


def mesh():
    get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    post = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    put("mesh", "pipelined", b"\x05" + get + post + get)
    put("mesh", "chunked", b"\x11" + b"PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get)
    put("mesh", "not-http", b"\x01" + b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 40)
    put("mesh", "case", b"\x30" + b"DELETE /a HTTP/1.0\r\ncontent-length:  3\r\nX: chunked\r\n\r\nabc" + get)


def applies():
    seq = [0]

    def cmd(t, body):
        seq[0] += 1
        b = mpack.packb({"t": t, "v": 3, "o": 1, "n": 7, "s": seq[0], "b": body})
        return struct.pack(">H", len(b)) + b
    init = cmd("cluster.init", {"id": "c1", "secret_hash": "h", "created_at": 1, "next_id": 1,
                                "failure_timeout_ms": 5000})
    nodes = cmd("node.add", {"id": 1, "name": "n1", "addr": "127.0.0.1:7420"}) + \
        cmd("node.add", {"id": 2, "name": "n2", "addr": "127.0.0.2:7420", "labels": {"zone": "a"}})
    put("apply", "init-nodes", init + nodes)
    put("apply", "kv", init + cmd("kv.set", {"key": "k", "value": "v"}) + cmd("kv.set", {"key": "k", "value": "w"}))
    spec = {"v": 1, "name": "web", "image": "nginx:1.27", "replicas": 2}
    put("apply", "service", init + nodes + cmd("service.put", {"name": "web", "project": "p", "spec": spec, "at": 5}) +
        cmd("service.scale", {"name": "web", "replicas": 3, "reason": "x", "at": 6}) +
        cmd("service.update", {"name": "web", "update_state": "paused", "at": 7}) +
        cmd("task.batch", {"create": [{"service": "web", "slot": 1, "node_id": 1}], "at": 8}) +
        cmd("service.rm", {"name": "web", "at": 9}))
    put("apply", "nodes-states", init + nodes + cmd("node.states", {"at": 3, "nodes": [{"id": 2, "state": "down"}]}) +
        cmd("node.update", {"id": 1, "availability": "drain", "labels": {"a": "b", "zone": None}}) +
        cmd("node.rm", {"id": 2}))
    put("apply", "image-secret", init + cmd("image.put", {"name": "demo", "digest": "sha256:" + "a" * 64,
                                                          "info": {"v": 1, "name": "demo", "layers": []}, "size": 3}) +
        cmd("secret.put", {"kind": "secret", "name": "s", "data": b"sealed", "size": 6, "at": 4}) +
        cmd("secret.rm", {"kind": "secret", "name": "s"}) + cmd("image.rm", {"name": "demo"}))


frames()
applies()
specs()
dns()
image_json()
tars()
archives()
registry()
mesh()
