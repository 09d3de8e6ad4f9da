"""Headless Chromium driven over the DevTools protocol, with a websocket client written on
Python's standard library (no third-party package): open a page, evaluate JavaScript in
it, collect its console errors and uncaught exceptions, take screenshots. The browser is a
child process killed by PID at close; its profile lives in a temporary directory."""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

from harness import Fail, check


def chromium_path():
    p = shutil.which("chromium")
    check(p is not None, "chromium is not installed (vendor/manifest lists it; run scripts/setup.sh)")
    return p


class WebSocket:
    """A client websocket (RFC 6455): text frames out (masked), frames in, pings answered."""

    def __init__(self, url, timeout=30):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            check(chunk, "devtools websocket closed during the handshake")
            head += chunk
        check(head.startswith(b"HTTP/1.1 101"), "devtools websocket handshake refused: %r" % head[:200])
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise Fail("devtools websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text, opcode=1):
        data = text.encode() if isinstance(text, str) else text
        head = bytes([0x80 | opcode])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        """The next whole text message (fragments joined; pings answered)."""
        msg = b""
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if op == 9:
                self.send(data, opcode=10)
                continue
            if op == 8:
                raise Fail("devtools websocket closed by the browser")
            msg += data
            if b0 & 0x80 and op in (0, 1, 2):
                return msg.decode()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Browser:
    """with Browser() as b: page = b.open(url); page.eval("1+1")"""

    def __init__(self, width=1280, height=900):
        self.profile = tempfile.mkdtemp(prefix="chromium")
        self.proc = subprocess.Popen(
            [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             "--window-size=%d,%d" % (width, height), "--user-data-dir=" + self.profile, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise Fail("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        self.port = int(open(port_file).read().split()[0])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self, url):
        req = urllib.request.Request("http://127.0.0.1:%d/json/new?%s" % (self.port, url), method="PUT")
        target = json.load(urllib.request.urlopen(req, timeout=10))
        return Page(target["webSocketDebuggerUrl"])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next = 0
        self.errors = []  # console errors and uncaught exceptions, as text
        self.net_changes = 0
        self.call("Runtime.enable")
        self.call("Log.enable")
        self.call("Page.enable")

    def _event(self, m):
        meth, p = m.get("method"), m.get("params", {})
        if meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console.%s: %s" % (p["type"], " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))))
        elif meth == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append("exception: %s %s" % (d.get("text", ""), d.get("exception", {}).get("description", "")))
        elif meth == "Log.entryAdded" and "ERR_NETWORK_CHANGED" in p.get("entry", {}).get("text", ""):
            # the machine's interfaces changed (other tests make veths and namespaces):
            # Chromium aborts the requests in flight; the page retries them
            self.net_changes += 1
        elif meth == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            self.errors.append("log: %s (%s)" % (p["entry"].get("text"), p["entry"].get("url", "")))

    def call(self, method, **params):
        self.next += 1
        mid = self.next
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == mid:
                if "error" in m:
                    raise Fail("devtools %s: %s" % (method, m["error"]))
                return m.get("result", {})
            self._event(m)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise Fail("page script %r failed: %s" % (expr[:80], r["exceptionDetails"]))
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout, what):
        """Polls expr in the page until it is truthy; returns its value."""
        deadline = time.time() + timeout
        guarded = ("(() => { try { const v = (%s); return v instanceof Node ? true : v; } catch (e) { return false; } })()"
                   % expr)  # mid-navigation
        while True:
            v = self.eval(guarded)
            if v:
                return v
            if time.time() > deadline:
                seen = self.eval("location.href + ' ' + (document.body ? document.body.innerText.slice(0, 400) : '')")
                raise Fail("timed out after %.0fs waiting for %s (errors: %s; the page: %r)" % (timeout, what, self.errors, seen))
            time.sleep(0.1)

    def goto(self, url):
        self.call("Page.navigate", url=url)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        self.ws.close()
