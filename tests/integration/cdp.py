"""A small Chrome DevTools Protocol client for the dashboard test: starts a
headless Chromium on 127.0.0.1, speaks the protocol over a WebSocket
(RFC 6455, written here on the standard library: client frames masked,
server frames read whole, fragments joined, pings answered), and offers
the few commands the test needs. Every wait is bounded."""

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request


class CDPError(Exception):
    pass


class WebSocket:
    def __init__(self, url, timeout):
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        if not m:
            raise CDPError("bad websocket url " + url)
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise CDPError("websocket handshake: connection closed")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise CDPError("websocket handshake refused: " + head.split(b"\r\n")[0].decode())

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise CDPError("websocket closed by the browser")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self, opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send(self, text):
        self._frame(0x1, text.encode())

    def recv(self):
        parts = []
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            if b1 & 0x80:
                mask = self._read(4)
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(n)))
            else:
                data = self._read(n)
            if op == 0x9:
                self._frame(0xA, data)
                continue
            if op == 0x8:
                raise CDPError("websocket closed by the browser")
            if op in (0x1, 0x2, 0x0):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self):
        try:
            self._frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    raise CDPError("no chromium on PATH (make deps installs Debian's chromium)")


class Browser:
    """One headless Chromium and one page in it."""

    def __init__(self, start_timeout=90, width=1280, height=900, pid_file=None):
        self.dir = tempfile.mkdtemp(prefix="omni-chromium.")
        args = [
            find_chromium(),
            "--headless=new",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--user-data-dir=" + self.dir,
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # root: Chromium refuses its sandbox
        self.log = open(os.path.join(self.dir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        self.pid = self.proc.pid
        if pid_file:  # the test's shell stops it by this PID if we die first
            with open(pid_file, "w") as f:
                f.write("%d\n" % self.pid)
        # the port it chose: DevToolsActivePort in the profile directory
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        deadline = time.time() + start_timeout
        port = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise CDPError("chromium exited with %s: %s" % (self.proc.returncode, self.tail()))
            try:
                with open(port_file) as f:
                    port = int(f.readline().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.2)
        if not port:
            raise CDPError("chromium did not open its DevTools port in %ds: %s" % (start_timeout, self.tail()))
        ws = None
        while time.time() < deadline and not ws:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    for t in json.load(r):
                        if t.get("type") == "page":
                            ws = t["webSocketDebuggerUrl"]
                            break
            except OSError:
                pass
            if not ws:
                time.sleep(0.2)
        if not ws:
            raise CDPError("no page target in chromium")
        self.ws = WebSocket(ws, timeout=60)
        self.next_id = 0
        self.events = []
        self.problems = []  # console errors, exceptions, CSP violations
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Log.enable")

    def tail(self):
        try:
            with open(os.path.join(self.dir, "chromium.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def _note(self, msg):
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.problems.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.problems.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            if e.get("level") == "error":
                self.problems.append("log: %s %s" % (e.get("text"), e.get("url", "")))
        self.events.append(msg)
        del self.events[:-200]

    def call(self, method, timeout=60, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CDPError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self._note(msg)
        raise CDPError(method + ": no answer in %ds" % timeout)

    def eval(self, expr, timeout=60):
        r = self.call("Runtime.evaluate", timeout=timeout, expression=expr, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise CDPError("evaluate %r: %s" % (expr[:80], r["exceptionDetails"].get("exception", {}).get("description")))
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout=120, what=None):
        """Until expr (JavaScript) is truthy; its value."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                v = self.eval(expr)
            except CDPError as e:
                v, last = None, e
            if v:
                return v
            time.sleep(0.2)
        raise CDPError("timed out after %ds waiting for %s%s" % (timeout, what or expr, " (%s)" % last if last else ""))

    def goto(self, url):
        self.call("Page.navigate", url=url)

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def viewport(self, width, height, mobile=False, dark=False):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
        self.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}])

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
