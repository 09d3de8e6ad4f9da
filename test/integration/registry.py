"""A real image registry for tests: Debian's `docker-registry` (distribution 2.8) on
127.0.0.1:<free port>, its storage in a temp dir, in one of these modes:

  Registry(tmp)                          plain HTTP, anonymous
  Registry(tmp, auth="basic")            htpasswd basic auth (users: name -> password)
  Registry(tmp, auth="token")            bearer tokens from a token server in this process
                                         (JWTs signed with a key whose certificate the registry
                                         trusts; anonymous callers get pull-only tokens unless
                                         anonymous=False)
  Registry(tmp, tls=True)                HTTPS with a server certificate for 127.0.0.1 (IP SAN)
                                         signed by a CA made here (reg.ca_file)

Images are pushed with `skopeo copy` from OCI layouts built here (oci_image, oci_index);
reg.push_raw puts a manifest and its blobs with the registry API itself, for what skopeo
will not write (uncompressed layers into a docker:// destination).

The registry runs in the test process's group, so the runner's kill of a timed-out test
takes it too; stop() kills it by PID and removes its directories."""
import base64
import gzip
import hashlib
import http.server
import json
import os
import shutil
import random
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import Fail, check, free_port, reap, wait_until
from workload import demo_image, tar_bytes

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _run(args, what, timeout=60, stdin=None):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=stdin)
    check(p.returncode == 0, "%s failed (%d): %s" % (what, p.returncode, (p.stderr or p.stdout).strip()[-600:]))
    return p.stdout


def require_tools():
    for tool in ("docker-registry", "skopeo", "openssl", "htpasswd"):
        check(shutil.which(tool), "registry tests need %s (vendor/manifest: docker-registry skopeo apache2-utils)" % tool)


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# ---- certificates ---------------------------------------------------------------------------

def make_ca(d, name="orch-test-ca"):
    key, crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
          "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"], "openssl req (CA)")
    return key, crt


def make_server_cert(d, ca_key, ca_crt, ip="127.0.0.1"):
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n" % ip)
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + ip],
         "openssl req (server)")
    _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
          "-days", "2", "-extfile", ext], "openssl x509 (server)")
    return key, crt


# ---- the token server (auth="token") --------------------------------------------------------

class _TokenServer:
    """Issues registry bearer tokens as a distribution token server does: GET
    /token?service=S&scope=repository:NAME:ACTIONS with optional basic credentials.
    The JWT carries the signing certificate in x5c; the registry trusts that certificate
    (rootcertbundle), so each token verifies."""

    def __init__(self, d, users, anonymous, service, issuer):
        self.key, self.crt = make_ca(d, "orch-test-token-signer")
        der = subprocess.run(["openssl", "x509", "-in", self.crt, "-outform", "DER"], capture_output=True,
                             timeout=30).stdout
        self.x5c = base64.b64encode(der).decode()
        self.users, self.anonymous, self.service, self.issuer = users, anonymous, service, issuer
        self.requests = []  # (user or None, scope) per token issued or refused
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv._handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self):
        return "http://127.0.0.1:%d/token" % self.port

    def _sign(self, payload):
        head = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = (_b64url(json.dumps(head).encode()) + "." + _b64url(json.dumps(payload).encode())).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input,
                             capture_output=True, timeout=30)
        if sig.returncode:
            raise Fail("openssl dgst -sign: %s" % sig.stderr.decode()[-300:])
        return signing_input.decode() + "." + _b64url(sig.stdout)

    def _handle(self, h):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(h.path).query)
        user = None
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:  # noqa: BLE001 - a malformed header is refused below
                user, pw = "", None
            if self.users.get(user) != pw:
                self.requests.append((user, q.get("scope"), "refused"))
                h.send_response(401)
                h.send_header("Content-Type", "application/json")
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
                return
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) < 3 or parts[0] != "repository":
                continue
            asked = parts[-1].split(",")
            allowed = asked if user else (["pull"] if self.anonymous and "pull" in asked else [])
            access.append({"type": "repository", "name": ":".join(parts[1:-1]), "actions": allowed})
        self.requests.append((user, q.get("scope"), "issued"))
        now = int(time.time())
        tok = self._sign({"iss": self.issuer, "sub": user or "", "aud": q.get("service", [""])[0], "exp": now + 300,
                          "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access})
        body = json.dumps({"token": tok, "access_token": tok, "expires_in": 300}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- the registry ---------------------------------------------------------------------------

class Registry:
    def __init__(self, tmp, auth=None, tls=False, users=None, anonymous=True):
        require_tools()
        check(auth in (None, "basic", "token"), "auth: None, basic or token")
        self.dir = os.path.join(tmp, "registry-%d" % os.getpid() + "-%d" % free_port())
        os.makedirs(self.dir)
        self.auth, self.tls = auth, tls
        self.users = dict(users or {"alice": "wonderland"})
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.scheme = "https" if tls else "http"
        self.proc = None
        self.tokens = None
        self.ca_file = None
        self.cert_dir = None  # skopeo's --dest-cert-dir
        try:
            self._start(anonymous)
        except BaseException:
            self.stop()
            raise

    def _start(self, anonymous):
        storage = os.path.join(self.dir, "storage")
        os.makedirs(storage)
        cfg = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
               "storage:", "  filesystem:", "    rootdirectory: %s" % storage, "  delete:", "    enabled: true",
               "http:", "  addr: %s" % self.host, "  secret: orch-test-secret"]
        if self.tls:
            certs = os.path.join(self.dir, "certs")
            os.makedirs(certs)
            ca_key, self.ca_file = make_ca(certs)
            key, crt = make_server_cert(certs, ca_key, self.ca_file)
            cfg += ["  tls:", "    certificate: %s" % crt, "    key: %s" % key]
            # skopeo wants a directory holding ca.crt (and reads *.crt as CAs).
            self.cert_dir = os.path.join(self.dir, "skopeo-certs")
            os.makedirs(self.cert_dir)
            shutil.copy(self.ca_file, os.path.join(self.cert_dir, "ca.crt"))
        if self.auth == "basic":
            pw = os.path.join(self.dir, "htpasswd")
            for i, (u, p) in enumerate(sorted(self.users.items())):
                # registry 2.8 accepts bcrypt entries only.
                _run(["htpasswd", "-B", "-b"] + (["-c"] if i == 0 else []) + [pw, u, p], "htpasswd")
            cfg += ["auth:", "  htpasswd:", "    realm: orch-test", "    path: %s" % pw]
        elif self.auth == "token":
            tdir = os.path.join(self.dir, "token")
            os.makedirs(tdir)
            self.tokens = _TokenServer(tdir, self.users, anonymous, "orch-test-registry", "orch-test-issuer")
            cfg += ["auth:", "  token:", "    realm: %s" % self.tokens.realm, "    service: orch-test-registry",
                    "    issuer: orch-test-issuer", "    rootcertbundle: %s" % self.tokens.crt]
        path = os.path.join(self.dir, "config.yml")
        with open(path, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.log = open(os.path.join(self.dir, "registry.log"), "wb")
        env = dict(os.environ, OTEL_TRACES_EXPORTER="none")
        self.proc = subprocess.Popen(["docker-registry", "serve", path], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        wait_until(self._answers, 20, "docker-registry on %s to answer /v2/" % self.host)

    def _answers(self):
        if self.proc.poll() is not None:
            raise Fail("docker-registry exited (%d): %s" % (self.proc.returncode, self.log_tail()))
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.ca_file)
        try:
            urllib.request.urlopen("%s://%s/v2/" % (self.scheme, self.host), timeout=2, context=ctx)
            return True
        except urllib.error.HTTPError as e:
            return e.code == 401  # up, and asking for credentials
        except OSError:
            return False

    def log_tail(self, n=2000):
        try:
            with open(os.path.join(self.dir, "registry.log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def url(self, ref):
        return "docker://%s/%s" % (self.host, ref)

    def _skopeo_dest(self, user=None):
        args = []
        if self.tls:
            args += ["--dest-cert-dir", self.cert_dir]
        else:
            args += ["--dest-tls-verify=false"]
        if self.auth:
            u = user or sorted(self.users)[0]
            args += ["--dest-creds", "%s:%s" % (u, self.users[u])]
        return args

    def push(self, src, ref, *extra):
        """skopeo copy SRC (e.g. "oci:DIR:tag", "docker-archive:PATH") to REPO:TAG here."""
        _run(["skopeo", "copy", "--quiet"] + self._skopeo_dest() + list(extra) + [src, self.url(ref)],
             "skopeo copy %s %s" % (src, ref), timeout=120)

    def skopeo_pull(self, ref, dest_dir):
        """skopeo copy REPO:TAG here to a local directory (the benchmark's peer)."""
        args = ["skopeo", "copy", "--quiet"]
        args += (["--src-cert-dir", self.cert_dir] if self.tls else ["--src-tls-verify=false"])
        if self.auth:
            u = sorted(self.users)[0]
            args += ["--src-creds", "%s:%s" % (u, self.users[u])]
        _run(args + [self.url(ref), "dir:" + dest_dir], "skopeo copy %s" % ref, timeout=300)

    # The registry API directly, for what skopeo will not write.
    def _request(self, method, path, repo, body=None, headers=None):
        user = sorted(self.users)[0] if self.auth else None
        hdrs = dict(headers or {})
        if self.auth == "basic":
            hdrs["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, self.users[user])).encode()).decode()
        elif self.auth == "token":
            q = urllib.parse.urlencode({"service": "orch-test-registry", "scope": "repository:%s:pull,push" % repo})
            req = urllib.request.Request(self.tokens.realm + "?" + q, headers={
                "Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, self.users[user])).encode()).decode()})
            tok = json.loads(urllib.request.urlopen(req, timeout=10).read())["token"]
            hdrs["Authorization"] = "Bearer " + tok
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.tls else None
        req = urllib.request.Request("%s://%s%s" % (self.scheme, self.host, path), data=body, method=method,
                                     headers=hdrs)
        return urllib.request.urlopen(req, timeout=30, context=ctx)

    def push_blob(self, repo, data):
        r = self._request("POST", "/v2/%s/blobs/uploads/" % repo, repo, b"")
        loc = r.headers["Location"]
        u = urllib.parse.urlparse(loc)
        path = u.path + "?" + (u.query + "&" if u.query else "") + urllib.parse.urlencode({"digest": sha(data)})
        self._request("PUT", path, repo, data, {"Content-Type": "application/octet-stream"})
        return sha(data)

    def push_raw(self, repo, tag, manifest_bytes, media_type, blobs):
        """Uploads blobs (bytes) and then the manifest under tag; returns the manifest digest."""
        for b in blobs:
            self.push_blob(repo, b)
        self._request("PUT", "/v2/%s/manifests/%s" % (repo, tag), repo, manifest_bytes, {"Content-Type": media_type})
        return sha(manifest_bytes)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
            reap()
        if self.tokens:
            self.tokens.stop()
            self.tokens = None
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- images ---------------------------------------------------------------------------------

def image_config(diff_ids, arch="amd64", variant=None, cmd=("/bin/sh",), env=("PATH=/bin",), extra=None):
    cfg = {"architecture": arch, "os": "linux", "config": {"Cmd": list(cmd), "Env": list(env)},
           "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}
    if variant:
        cfg["variant"] = variant
    cfg["config"].update(extra or {})
    return json.dumps(cfg, sort_keys=True).encode()


def image_parts(layers, compress=True, arch="amd64", variant=None, **kw):
    """(manifest bytes, config bytes, [layer blobs]) of a single-platform OCI image whose
    layers are the given tars (gzip'd unless compress=False)."""
    blobs = [gzip.compress(t, mtime=0) if compress else t for t in layers]
    cfg = image_config([sha(t) for t in layers], arch, variant, **kw)
    man = json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                      "config": {"mediaType": MT_OCI_CONFIG, "digest": sha(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": MT_LAYER_GZIP if compress else MT_LAYER_TAR, "digest": sha(b),
                                  "size": len(b)} for b in blobs]}, sort_keys=True).encode()
    return man, cfg, blobs


def _write_layout(path, top_desc, blobs):
    os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [top_desc]}, f)
    for b in blobs:
        with open(os.path.join(path, "blobs", "sha256", sha(b)[7:]), "wb") as f:
            f.write(b)
    return path


def oci_image(path, tag, layers, **kw):
    """An OCI layout directory holding one image under tag; returns (path, manifest digest)."""
    man, cfg, blobs = image_parts(layers, **kw)
    desc = {"mediaType": MT_OCI_MANIFEST, "digest": sha(man), "size": len(man),
            "annotations": {"org.opencontainers.image.ref.name": tag}}
    _write_layout(path, desc, [man, cfg] + blobs)
    return path, sha(man)


def oci_index(path, tag, platforms):
    """An OCI layout whose tag names an image index of one image per platform.
    platforms: [(os/arch[/variant], [layer tars])]. Returns (path, index digest,
    {platform: manifest digest})."""
    blobs, descs, digests = [], [], {}
    for plat, layers in platforms:
        parts = plat.split("/")
        man, cfg, lb = image_parts(layers, arch=parts[1], variant=parts[2] if len(parts) > 2 else None)
        blobs += [man, cfg] + lb
        p = {"os": parts[0], "architecture": parts[1]}
        if len(parts) > 2:
            p["variant"] = parts[2]
        descs.append({"mediaType": MT_OCI_MANIFEST, "digest": sha(man), "size": len(man), "platform": p})
        digests[plat] = sha(man)
    idx = json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": descs}, sort_keys=True).encode()
    blobs.append(idx)
    _write_layout(path, {"mediaType": MT_OCI_INDEX, "digest": sha(idx), "size": len(idx),
                         "annotations": {"org.opencontainers.image.ref.name": tag}}, blobs)
    return path, sha(idx), digests


def small_layers(name, n=2, size=0):
    """n distinct layer tars; layer i holds /<name>/f<i> (size bytes of pseudo-random data
    when size > 0, so compression does not shrink it away)."""
    out = []
    for i in range(n):
        data = ("%s layer %d\n" % (name, i)).encode()
        if size:
            data = random.Random(data).randbytes(size)
        out.append(tar_bytes([(name + "/", "dir", None), ("%s/f%d" % (name, i), "file", data)]))
    return out


def demo_plus_layer(tmp, raw, edit=None):
    """The demo image with one more layer (raw, an uncompressed tar), its config changed by
    edit(config) if given: (manifest bytes, blobs), the added layer's gzip second to last."""
    lay = os.path.join(demo_image(tmp), "demo-oci")
    with open(os.path.join(lay, "index.json")) as f:
        top = json.load(f)["manifests"][0]["digest"]

    def blob(d):
        with open(os.path.join(lay, "blobs", "sha256", d[7:]), "rb") as f:
            return f.read()
    man = json.loads(blob(top))
    cfg = json.loads(blob(man["config"]["digest"]))
    layers = [blob(x["digest"]) for x in man["layers"]]
    gz = gzip.compress(raw, mtime=0)
    cfg["rootfs"]["diff_ids"].append(sha(raw))
    if edit:
        edit(cfg)
    cfg_b = json.dumps(cfg, sort_keys=True).encode()
    m = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg_b), "size": len(cfg_b)},
         "layers": [{"mediaType": x["mediaType"], "digest": x["digest"], "size": x["size"]} for x in man["layers"]]
         + [{"mediaType": MT_LAYER_GZIP, "digest": sha(gz), "size": len(gz)}]}
    return json.dumps(m, sort_keys=True).encode(), layers + [gz, cfg_b]
