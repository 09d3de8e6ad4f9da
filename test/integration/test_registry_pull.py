"""Pulls from Debian's real docker-registry (test/integration/registry.py) with `orch debug
pull`, which runs the node's registry client (src/registry/) into a blob store: plain HTTP,
basic auth, bearer tokens, TLS with the fixture's CA, a multi-platform index, zstd and
uncompressed layers, digest references, errors that say what failed (tampered manifests and
layers refused as digest mismatches), blob redirects to another host, and a download
cut halfway that resumes with a Range request."""
import hashlib
import http.client
import http.server
import os
import shutil
import subprocess
import tempfile
import threading

from harness import BIN, check
from registry import MT_OCI_MANIFEST, Registry, image_parts, oci_image, oci_index, sha, small_layers

TIMEOUTS = {
    "test_pull_plain_http": 60,
    "test_pull_basic_auth_and_tls": 60,
    "test_pull_bearer_token": 60,
    "test_pull_resumes_and_retries_through_faults": 60,
    "test_pull_follows_blob_redirects_without_credentials": 60,
    "test_pull_refuses_tampered_content": 60,
}


def _tmp():
    return tempfile.mkdtemp(prefix="regpull-", dir=os.environ.get("TEST_TMP") or "/tmp")


def pull(store, ref, *opts, password=None, expect_ok=True):
    args = [BIN, "debug", "pull", "--dir", store] + list(opts)
    if password is not None:
        args += ["--password-stdin"]
    p = subprocess.run(args + [ref], capture_output=True, text=True, timeout=60,
                       input=(password + "\n") if password is not None else None)
    if expect_ok:
        check(p.returncode == 0, "orch debug pull %s failed (%d): %s" % (ref, p.returncode, p.stderr.strip()))
    else:
        check(p.returncode != 0, "orch debug pull %s succeeded but should have failed:\n%s" % (ref, p.stdout))
    out = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition("\t")
        out.setdefault(k, []).append(v)
    return p, out


def check_store(store, layers):
    """Every blob the pull reports is in the store and hashes to its name."""
    for d in layers:
        path = os.path.join(store, "blobs", "sha256", d[7:])
        check(os.path.isfile(path), "blob %s missing from the store" % d)
        with open(path, "rb") as f:
            check(sha(f.read()) == d, "blob %s in the store does not hash to its name" % d)


def manifest_layers(man):
    import json
    return [l["digest"] for l in json.loads(man)["layers"]]


def test_pull_plain_http():
    tmp = _tmp()
    try:
        with Registry(tmp) as reg:
            h = reg.host
            ins = ("--insecure-registry", h)
            # a single-platform image, pushed by skopeo
            path, mdig = oci_image(os.path.join(tmp, "one"), "v1", small_layers("one", 3, 200000),
                                   extra={"Entrypoint": ["/bin/echo"], "WorkingDir": "/srv"})
            reg.push("oci:%s:v1" % path, "team/one:v1")
            store = os.path.join(tmp, "store")
            p, out = pull(store, h + "/team/one:v1", "--progress", *ins)
            prog = out.get("progress", [])
            check(prog and prog[0].startswith("resolving") and prog[-1].startswith("done 3/3 layers")
                  and any(l.startswith("downloading") for l in prog), "progress: %s" % prog)
            check(out["digest"] == [mdig], "pulled digest %s, pushed %s" % (out.get("digest"), mdig))
            check(out["layers"] == ["3"] and len(out["layer"]) == 3, "expected 3 layers: %s" % p.stdout)
            check(out["entrypoint"] == ["/bin/echo"] and out["cmd"] == ["/bin/sh"] and out["env"] == ["PATH=/bin"],
                  "image config not read: %s" % p.stdout)
            check(out["name"] == [h + "/team/one:v1"], "name: %s" % out.get("name"))
            check_store(store, out["layer"] + out["config"] + out["digest"][:0])
            first = {d: os.stat(os.path.join(store, "blobs", "sha256", d[7:])).st_mtime_ns for d in out["layer"]}

            # by digest; blobs already held are not fetched again
            p, out2 = pull(store, "%s/team/one@%s" % (h, mdig), *ins)
            check(out2["digest"] == [mdig] and out2["layer"] == out["layer"], "digest pull differs: %s" % p.stdout)
            again = {d: os.stat(os.path.join(store, "blobs", "sha256", d[7:])).st_mtime_ns for d in out["layer"]}
            check(first == again, "layers already in the store were written again")

            # a multi-platform index: amd64 chosen by default, arm64 on request, none for s390x
            ipath, idig, plats = oci_index(os.path.join(tmp, "multi"), "v1", [
                ("linux/amd64", small_layers("amd", 2)), ("linux/arm64/v8", small_layers("arm", 2))])
            reg.push("oci:%s:v1" % ipath, "team/multi:v1", "--all")
            p, out = pull(store, h + "/team/multi:v1", *ins)
            check(out["digest"] == [plats["linux/amd64"]], "index resolved to %s, not the amd64 manifest %s"
                  % (out.get("digest"), plats["linux/amd64"]))
            check_store(store, out["layer"])
            p, out = pull(store, h + "/team/multi:v1", "--platform", "linux/arm64", *ins)
            check(out["digest"] == [plats["linux/arm64/v8"]], "arm64 resolved to %s" % out.get("digest"))
            p, _ = pull(store, h + "/team/multi:v1", "--platform", "linux/s390x", *ins, expect_ok=False)
            check("no image for platform linux/s390x" in p.stderr and "linux/amd64, linux/arm64" in p.stderr,
                  "no-platform error should list the offered ones: %s" % p.stderr.strip())
            p, out = pull(store, "%s/team/multi@%s" % (h, idig), *ins)
            check(out["digest"] == [plats["linux/amd64"]], "index digest ref resolved to %s" % out.get("digest"))
            # what the leader pins at deploy: the index's digest, and a single manifest's
            p, out = pull(store, h + "/team/multi:v1", "--resolve", *ins)
            check(out["digest"] == [idig] and out["media_type"] == ["application/vnd.oci.image.index.v1+json"],
                  "resolve of an index: %s" % p.stdout)
            p, out = pull(store, h + "/team/one:v1", "--resolve", *ins)
            check(out["digest"] == [mdig] and out["media_type"] == [MT_OCI_MANIFEST], "resolve: %s" % p.stdout)

            # zstd layers: skopeo compresses uncompressed sources with the format asked for
            zpath, _ = oci_image(os.path.join(tmp, "zsrc"), "v1", small_layers("zst", 2, 100000), compress=False)
            reg.push("oci:%s:v1" % zpath, "team/zstd:v1", "--dest-compress-format", "zstd")
            p, out = pull(store, h + "/team/zstd:v1", *ins)
            check_store(store, out["layer"])
            for d in out["layer"]:
                with open(os.path.join(store, "blobs", "sha256", d[7:]), "rb") as f:
                    check(f.read(4) == b"\x28\xb5\x2f\xfd", "layer %s is not stored as pushed (zstd)" % d)

            # uncompressed layers, put with the registry API (skopeo compresses for docker://)
            man, cfg, blobs = image_parts(small_layers("raw", 2), compress=False)
            udig = reg.push_raw("team/raw", "v1", man, MT_OCI_MANIFEST, [cfg] + blobs)
            p, out = pull(store, h + "/team/raw:v1", *ins)
            check(out["digest"] == [udig] and out["layer"] == manifest_layers(man), "raw image: %s" % p.stdout)
            check_store(store, out["layer"])

            # a layer whose content does not match the config's diff_id is refused
            lay = small_layers("bad", 1)
            man, cfg, blobs = image_parts(lay, compress=False)
            import json
            c = json.loads(cfg)
            c["rootfs"]["diff_ids"] = [sha(b"something else")]
            cfg2 = json.dumps(c).encode()
            m = json.loads(man)
            m["config"] = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg2),
                           "size": len(cfg2)}
            man2 = json.dumps(m).encode()
            reg.push_raw("team/bad", "v1", man2, MT_OCI_MANIFEST, [cfg2] + blobs)
            p, _ = pull(os.path.join(tmp, "store-bad"), h + "/team/bad:v1", *ins, expect_ok=False)
            check("diff_id" in p.stderr or "config says" in p.stderr, "diff_id mismatch not named: %s" % p.stderr)

            # not found: a tag and a repository that do not exist
            p, _ = pull(store, h + "/team/one:nope", *ins, expect_ok=False)
            check(p.returncode == 4 and "not found" in p.stderr and "MANIFEST_UNKNOWN" in p.stderr,
                  "missing tag: %d %s" % (p.returncode, p.stderr.strip()))
            p, _ = pull(store, h + "/team/nobody:v1", *ins, expect_ok=False)
            check("not found" in p.stderr, "missing repository: %s" % p.stderr.strip())

            # the registry mirror answers for docker.io names
            reg.push("oci:%s:v1" % path, "library/mirrored:v1")
            p, out = pull(os.path.join(tmp, "store-m"), "mirrored:v1", "--registry-mirror", "http://" + h, *ins)
            check(out["digest"] == [mdig] and out["name"] == ["docker.io/library/mirrored:v1"], "mirror pull: %s" % p.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_pull_basic_auth_and_tls():
    tmp = _tmp()
    try:
        with Registry(tmp, auth="basic", tls=True, users={"alice": "wonderland"}) as reg:
            path, mdig = oci_image(os.path.join(tmp, "img"), "v1", small_layers("sec", 2, 50000))
            reg.push("oci:%s:v1" % path, "team/sec:v1")
            ref = reg.host + "/team/sec:v1"
            store = os.path.join(tmp, "store")
            ca = ("--ca-file", reg.ca_file)
            p, _ = pull(store, ref, *ca, expect_ok=False)
            check("unauthorised" in p.stderr and "none are stored" in p.stderr,
                  "no credentials: %s" % p.stderr.strip())
            p, _ = pull(store, ref, *ca, "--user", "alice", password="xyzzy-not-it", expect_ok=False)
            check("unauthorised" in p.stderr and "alice" in p.stderr and "xyzzy" not in p.stderr,
                  "wrong password: %s" % p.stderr.strip())
            p, _ = pull(store, ref, "--user", "alice", password="wonderland", expect_ok=False)
            check("certificate not trusted" in p.stderr, "without the CA: %s" % p.stderr.strip())
            p, _ = pull(store, ref, "--insecure-registry", reg.host, expect_ok=False)  # plain HTTP to a TLS port
            # the certificate names 127.0.0.1 only: the same server reached as localhost is refused
            p, _ = pull(store, "localhost:%d/team/sec:v1" % reg.port, *ca, "--user", "alice", password="wonderland",
                        expect_ok=False)
            check("certificate not trusted" in p.stderr and "mismatch" in p.stderr,
                  "host name check: %s" % p.stderr.strip())
            p, out = pull(store, ref, *ca, "--user", "alice", password="wonderland")
            check(out["digest"] == [mdig], "TLS + basic pull: %s" % p.stdout)
            # the per-registry CA file, as a node finds it: DIR/HOST:PORT/ca.crt
            cadir = os.path.join(tmp, "certs.d")
            os.makedirs(os.path.join(cadir, reg.host))
            shutil.copy(reg.ca_file, os.path.join(cadir, reg.host, "ca.crt"))
            p, out = pull(os.path.join(tmp, "store2"), ref, "--ca-dir", cadir, "--user", "alice", password="wonderland")
            check(out["digest"] == [mdig], "TLS with --ca-dir: %s" % p.stdout)
            check_store(store, out["layer"] + out["config"])
            check(not [f for f in os.listdir(os.path.join(store, "blobs", "sha256")) if not f[0].isalnum()],
                  "temp files left in the store")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_pull_bearer_token():
    tmp = _tmp()
    try:
        with Registry(tmp, auth="token", users={"bob": "builder"}, anonymous=False) as reg:
            path, mdig = oci_image(os.path.join(tmp, "img"), "v1", small_layers("tok", 2))
            reg.push("oci:%s:v1" % path, "team/tok:v1")
            ref = reg.host + "/team/tok:v1"
            ins = ("--insecure-registry", reg.host)
            store = os.path.join(tmp, "store")
            p, _ = pull(store, ref, *ins, expect_ok=False)
            check("unauthorised" in p.stderr, "anonymous pull of a private repository: %s" % p.stderr.strip())
            p, _ = pull(store, ref, *ins, "--user", "bob", password="nope", expect_ok=False)
            check("refused" in p.stderr and "bob" in p.stderr, "wrong password: %s" % p.stderr.strip())
            reg.tokens.requests.clear()
            p, out = pull(store, ref, *ins, "--user", "bob", password="builder")
            check(out["digest"] == [mdig], "bearer pull: %s" % p.stdout)
            issued = [r for r in reg.tokens.requests if r[2] == "issued"]
            check(issued and all(r[0] == "bob" and r[1] == ["repository:team/tok:pull"] for r in issued),
                  "token requests: %s" % reg.tokens.requests)
            # one token serves the whole pull (config and layers in parallel)
            check(len(issued) <= 2, "a token per request instead of per pull: %d" % len(issued))
        with Registry(tmp, auth="token", anonymous=True) as reg:
            path, mdig = oci_image(os.path.join(tmp, "img2"), "v1", small_layers("anon", 1))
            reg.push("oci:%s:v1" % path, "pub/anon:v1")
            p, out = pull(os.path.join(tmp, "store2"), reg.host + "/pub/anon:v1", "--insecure-registry", reg.host)
            check(out["digest"] == [mdig], "anonymous bearer pull: %s" % p.stdout)
            check(any(r[0] is None and r[2] == "issued" for r in reg.tokens.requests), "no anonymous token asked")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def serve(handle):
    """A threaded HTTP/1.1 server on 127.0.0.1 calling handle(request_handler) for each GET."""
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            handle(self)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, "127.0.0.1:%d" % httpd.server_address[1]


def forward(upstream, path, headers, auth=None):
    """GET path from the registry at upstream; (status, [(header, value)], body)."""
    c = http.client.HTTPConnection(upstream, timeout=20)
    hdrs = {k: v for k, v in headers.items() if k.lower() in ("accept", "range", "authorization")}
    if auth:
        hdrs["Authorization"] = auth
    c.request("GET", path, headers=hdrs)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, [(k, v) for k, v in r.getheaders()
                      if k.lower() not in ("connection", "transfer-encoding", "content-length", "date")], body


def send(h, status, headers, body, body_now=True):
    h.send_response(status)
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if body_now:
        h.wfile.write(body)


class FaultProxy:
    """An HTTP proxy in front of the registry that answers the first manifest request with
    503, the first request for the config blob with 429 (Retry-After: 1), every request
    under a repository named "limited" with 429 (Retry-After: 120), and cuts the first
    response for one blob after half its body, recording the requests (path, Range)."""

    def __init__(self, upstream, cut_digest, config_digest):
        self.upstream, self.cut_digest, self.config_digest = upstream, cut_digest, config_digest
        self.seen, self.failed_manifest, self.cut_done, self.limited_config = [], False, False, False
        self.httpd, self.host = serve(self.handle)

    def handle(self, h):
        self.seen.append((h.path, h.headers.get("Range")))
        if "/manifests/" in h.path and not self.failed_manifest:
            self.failed_manifest = True
            return self.refuse(h, 503)
        if self.config_digest in h.path and not self.limited_config:
            self.limited_config = True
            return self.refuse(h, 429, "1")
        if "/limited/" in h.path:
            return self.refuse(h, 429, "120")
        status, headers, body = forward(self.upstream, h.path, h.headers)
        send(h, status, headers, body, body_now=False)
        if self.cut_digest in h.path and not self.cut_done and status == 200:
            self.cut_done = True
            h.wfile.write(body[:len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return
        h.wfile.write(body)

    @staticmethod
    def refuse(h, status, retry_after=None):
        body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' if status == 429 else b""
        send(h, status, [("Retry-After", retry_after)] if retry_after else [], body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_pull_resumes_and_retries_through_faults():
    tmp = _tmp()
    proxy = None
    try:
        with Registry(tmp) as reg:
            layers = small_layers("big", 2, 1000000)
            path, mdig = oci_image(os.path.join(tmp, "img"), "v1", layers)
            reg.push("oci:%s:v1" % path, "team/big:v1")
            man = open(os.path.join(path, "blobs", "sha256", mdig[7:]), "rb").read()
            cut = manifest_layers(man)[0]
            import json
            proxy = FaultProxy(reg.host, cut, json.loads(man)["config"]["digest"])
            store = os.path.join(tmp, "store")
            p, out = pull(store, proxy.host + "/team/big:v1", "--insecure-registry", proxy.host)
            check(out["digest"] == [mdig], "pull through faults: %s" % p.stdout)
            check_store(store, out["layer"])
            check(proxy.failed_manifest, "the 503 was never served")
            manifests = [s for s in proxy.seen if "/manifests/" in s[0]]
            check(len(manifests) >= 2, "the manifest was not asked again after a 503: %s" % proxy.seen)
            blob = [s for s in proxy.seen if cut in s[0]]
            check(proxy.cut_done and len(blob) == 2, "the cut blob was fetched %d times: %s" % (len(blob), proxy.seen))
            size = len(open(os.path.join(store, "blobs", "sha256", cut[7:]), "rb").read())
            check(blob[1][1] == "bytes=%d-" % (size // 2),
                  "the second request should resume at byte %d: Range %s" % (size // 2, blob[1][1]))
            cfg = [s for s in proxy.seen if json.loads(man)["config"]["digest"] in s[0]]
            check(proxy.limited_config and len(cfg) == 2, "the config was not asked again after a 429: %s" % cfg)
            # a long Retry-After is reported, not slept through
            reg.push("oci:%s:v1" % path, "limited/big:v1")
            p, _ = pull(os.path.join(tmp, "store2"), proxy.host + "/limited/big:v1", "--insecure-registry", proxy.host,
                        expect_ok=False)
            check("rate limited" in p.stderr and "retry after 120 s" in p.stderr and "TOOMANYREQUESTS" in p.stderr,
                  "rate limit error: %s" % p.stderr.strip())
    finally:
        if proxy:
            proxy.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_pull_follows_blob_redirects_without_credentials():
    """Registries send blob GETs to storage elsewhere: a front for a basic-auth registry
    answers each authorised blob GET with 307 to a storage server on another port (another
    origin), which records whether credentials came along."""
    tmp = _tmp()
    fronts = []
    try:
        with Registry(tmp, auth="basic", users={"carol": "tr0ub4dor"}) as reg:
            path, mdig = oci_image(os.path.join(tmp, "img"), "v1", small_layers("redir", 2, 30000))
            reg.push("oci:%s:v1" % path, "team/redir:v1")
            import base64
            auth = "Basic " + base64.b64encode(b"carol:tr0ub4dor").decode()
            storage_seen = []

            def storage(h):
                storage_seen.append((h.path, h.headers.get("Authorization")))
                repo_digest = h.path.split("?")[0][len("/store/"):]
                send(h, *forward(reg.host, "/v2/%s" % repo_digest.replace("@", "/blobs/"), {}, auth))

            st_httpd, st_host = serve(storage)
            fronts.append(st_httpd)

            def front(h):
                status, headers, body = forward(reg.host, h.path, h.headers)
                if "/blobs/" in h.path and status == 200:
                    repo, digest = h.path[len("/v2/"):].split("/blobs/")
                    headers = [("Location", "http://%s/store/%s@%s?sig=abc" % (st_host, repo, digest))]
                    status, body = 307, b""
                send(h, status, headers, body)

            fr_httpd, fr_host = serve(front)
            fronts.append(fr_httpd)
            store = os.path.join(tmp, "store")
            p, out = pull(store, fr_host + "/team/redir:v1", "--insecure-registry", fr_host, "--insecure-registry",
                          st_host, "--user", "carol", password="tr0ub4dor")
            check(out["digest"] == [mdig], "pull through redirects: %s" % p.stdout)
            check_store(store, out["layer"] + out["config"])
            check(len(storage_seen) == 3, "config and 2 layers should come from storage: %s" % storage_seen)
            check(all(a is None for _, a in storage_seen),
                  "credentials were sent to the storage host: %s" % storage_seen)
    finally:
        for f in fronts:
            f.shutdown()
            f.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_pull_refuses_tampered_content():
    """A front that alters what the registry sends: a manifest whose bytes no longer match
    the Docker-Content-Digest the registry vouches for (or the digest the reference names),
    and a layer whose bytes no longer match its digest. Each is refused as a digest
    mismatch and nothing unverified lands in the store."""
    tmp = _tmp()
    front = None
    try:
        with Registry(tmp) as reg:
            path, mdig = oci_image(os.path.join(tmp, "img"), "v1", small_layers("tamper", 2, 20000))
            reg.push("oci:%s:v1" % path, "man/img:v1")
            reg.push("oci:%s:v1" % path, "blob/img:v1")

            def handle(h):
                status, headers, body = forward(reg.host, h.path, h.headers)
                if status == 200 and h.path.startswith("/v2/man/") and "/manifests/" in h.path:
                    body = body + b" "  # still valid JSON, other bytes
                if status == 200 and h.path.startswith("/v2/blob/") and "/blobs/" in h.path and len(body) > 1000:
                    body = body[:500] + bytes([body[500] ^ 1]) + body[501:]
                send(h, status, headers, body)

            front, host = serve(handle)
            ins = ("--insecure-registry", host)
            store = os.path.join(tmp, "store")
            p, _ = pull(store, host + "/man/img:v1", *ins, expect_ok=False)
            check("digest mismatch" in p.stderr, "altered manifest (tag): %s" % p.stderr.strip())
            p, _ = pull(store, "%s/man/img@%s" % (host, mdig), *ins, expect_ok=False)
            check("digest mismatch" in p.stderr, "altered manifest (digest ref): %s" % p.stderr.strip())
            p, _ = pull(store, host + "/blob/img:v1", *ins, expect_ok=False)
            check("digest mismatch" in p.stderr, "altered layer: %s" % p.stderr.strip())
            held = os.listdir(os.path.join(store, "blobs", "sha256")) if os.path.isdir(store) else []
            for name in held:
                with open(os.path.join(store, "blobs", "sha256", name), "rb") as f:
                    check(sha(f.read()) == "sha256:" + name, "an unverified blob %s is in the store" % name)
    finally:
        if front:
            front.shutdown()
            front.server_close()
        shutil.rmtree(tmp, ignore_errors=True)
