"""HTTP and websocket transport of the TestbedOS SDK: the standard library
only (http.client over TCP, TLS or a unix socket; a small RFC 6455 client)."""

import base64
import hashlib
import http.client
import os
import socket
import ssl
import struct
import urllib.parse


class APIError(Exception):
    """An error answer of the server: its HTTP status and message."""

    def __init__(self, status, message, body=b""):
        super().__init__("server: %s (%d)" % (message, status))
        self.status = status
        self.message = message
        self.body = body


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _pinned_context(fingerprint):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the fingerprint is checked instead
    return ctx


def normalize_fingerprint(fp):
    fp = fp.strip().lower()
    if fp.startswith("sha256:"):
        fp = fp[len("sha256:"):]
    return fp.replace(":", "")


class Transport:
    """Opens connections to one server: unix:///path, /path, http://, https://."""

    def __init__(self, server, token=None, fingerprint=None, timeout=60.0):
        self.server = server
        self.token = token
        self.fingerprint = normalize_fingerprint(fingerprint) if fingerprint else None
        self.timeout = timeout
        if server.startswith("unix://") or server.startswith("/"):
            self.kind, self.path = "unix", server[len("unix://"):] if server.startswith("unix://") else server
            self.host = "localhost"
        else:
            u = urllib.parse.urlsplit(server)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ValueError("server %r: want unix:///path, http://host:port or https://host:port" % server)
            self.kind = u.scheme
            self.hostname = u.hostname
            self.port = u.port or (443 if u.scheme == "https" else 80)
            self.host = u.netloc
            if self.kind == "https" and not self.fingerprint:
                raise ValueError("https server %s: give its certificate's fingerprint (GET /api/config/status shows it)" % server)

    def connection(self, timeout=None):
        t = self.timeout if timeout is None else timeout
        if self.kind == "unix":
            return _UnixConnection(self.path, t)
        if self.kind == "http":
            return http.client.HTTPConnection(self.hostname, self.port, timeout=t)
        conn = http.client.HTTPSConnection(self.hostname, self.port, timeout=t, context=_pinned_context(self.fingerprint))
        conn.connect()
        got = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
        if got != self.fingerprint:
            conn.close()
            raise ssl.SSLError("server certificate %s is not the pinned %s" % (got, self.fingerprint))
        return conn

    def headers(self, extra=None):
        h = {"Host": self.host}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if extra:
            h.update(extra)
        return h

    def open(self, method, path, body=None, content_type=None, timeout=None):
        """Sends a request and returns (connection, response) of a successful
        one; an error answer raises APIError."""
        conn = self.connection(timeout)
        extra = {}
        if content_type:
            extra["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=self.headers(extra))
        resp = conn.getresponse()
        if resp.status >= 400:
            data = resp.read(1 << 20)
            conn.close()
            raise error_of(resp.status, data)
        return conn, resp

    def websocket(self, path, timeout=None):
        """Opens a websocket on path and returns a WebSocket."""
        conn = self.connection(timeout)
        if conn.sock is None:
            conn.connect()
        sock = conn.sock
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path]
        for k, v in self.headers({"Upgrade": "websocket", "Connection": "Upgrade",
                                  "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}).items():
            lines.append("%s: %s" % (k, v))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        f = sock.makefile("rb")
        status_line = f.readline().decode("latin-1")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers = {}
        while True:
            line = f.readline().decode("latin-1").strip()
            if not line:
                break
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if status != 101:
            n = int(headers.get("content-length", "0") or 0)
            data = f.read(min(n, 1 << 20)) if n else b""
            f.close()
            conn.close()
            raise error_of(status, data)
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            f.close()
            conn.close()
            raise APIError(502, "the server's websocket handshake is wrong")
        return WebSocket(sock, f)


def error_of(status, data):
    import json
    try:
        msg = json.loads(data)["error"]["message"]
    except Exception:
        msg = data.decode("utf-8", "replace").strip() or http.client.responses.get(status, "error")
    return APIError(status, msg, data)


class WebSocket:
    """A client websocket: recv() returns (opcode, payload) of whole
    messages, or ("close", (code, reason)) once the server closed it."""

    TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10

    def __init__(self, sock, f):
        self.sock = sock
        self.f = f

    def _read(self, n):
        data = self.f.read(n)
        if data is None or len(data) < n:
            raise ConnectionError("websocket closed mid-frame")
        return data

    def _frame(self):
        b0, b1 = self._read(2)
        fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        mask = self._read(4) if b1 & 0x80 else None
        payload = self._read(n) if n else b""
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bool(fin), opcode, payload

    def recv(self):
        message, kind = b"", None
        while True:
            fin, opcode, payload = self._frame()
            if opcode == self.PING:
                self.send(payload, self.PONG)
                continue
            if opcode == self.PONG:
                continue
            if opcode == self.CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                reason = payload[2:].decode("utf-8", "replace")
                try:
                    self.send(payload[:2], self.CLOSE)
                except OSError:
                    pass
                return "close", (code, reason)
            if opcode != 0:
                kind = opcode
            message += payload
            if fin:
                return ("text" if kind == self.TEXT else "binary"), message

    def send(self, data, opcode=BINARY):
        if isinstance(data, str):
            data = data.encode()
        header = bytes([0x80 | opcode])
        n = len(data)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def close(self):
        try:
            self.send(struct.pack("!H", 1000), self.CLOSE)
        except OSError:
            pass
        self.sock.close()
