"""The TestbedOS client: one method per route of the server's REST API."""

import base64
import json
import os
import struct
import threading
import time
import urllib.parse
import uuid as _uuid

from ._transport import APIError, Transport

DEFAULT_SOCKET = "/run/testbedos/testbedos.sock"
DEFAULT_URL = "http://localhost:3355"


def _q(s, safe=""):
    return urllib.parse.quote(str(s), safe=safe)


def _dep(name):
    return "/api/deployments/" + _q(name)


def _guest(name, guest):
    return _dep(name) + "/guests/" + _q(guest)


def _iface(name, guest, iface):
    return _guest(name, guest) + "/interfaces/" + _q(iface)


def _exec_body(command, timeout_s, stdin):
    """The body of an exec request: stdin (bytes) goes as base64."""
    body = {"command": list(command)}
    if timeout_s:
        body["timeout_s"] = timeout_s
    if stdin:
        body["stdin"] = base64.b64encode(stdin).decode("ascii")
    return body


def local_token():
    """TESTBEDOS_TOKEN, else the local server's token file
    (TESTBEDOS_DATA_DIR, else /var/lib/testbedos: config/token) when this
    user may read it, else None."""
    tok = os.environ.get("TESTBEDOS_TOKEN")
    if tok:
        return tok.strip()
    path = os.path.join(os.environ.get("TESTBEDOS_DATA_DIR") or "/var/lib/testbedos", "config", "token")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def connect(token=None, **kw):
    """A client of the local server: the unix socket (TESTBEDOS_SOCKET, else
    /run/testbedos/testbedos.sock) when it exists, else http://localhost:3355
    with token, else local_token()."""
    sock = os.environ.get("TESTBEDOS_SOCKET") or DEFAULT_SOCKET
    if os.path.exists(sock):
        return Client("unix://" + sock, **kw)
    return Client(DEFAULT_URL, token=token or local_token(), **kw)


class Client:
    """A client of one testbedos-server.

    server: "unix:///path/to.sock" (no token), "http://host:port" (token) or
    "https://host:port" (token and the server's certificate fingerprint).
    Error answers raise APIError (status, message)."""

    def __init__(self, server=None, token=None, fingerprint=None, timeout=60.0):
        if server is None:
            c = connect(token=token, fingerprint=fingerprint, timeout=timeout)
            server, token = c.server, c._t.token
        self.server = server
        self._t = Transport(server, token=token, fingerprint=fingerprint, timeout=timeout)

    # -- plumbing ---------------------------------------------------------

    def _call(self, method, path, body=None, raw=False, content_type=None, timeout=None):
        data = body
        if body is not None and content_type is None:
            data, content_type = json.dumps(body).encode(), "application/json"
        conn, resp = self._t.open(method, path, data, content_type, timeout)
        try:
            out = resp.read()
        finally:
            conn.close()
        if raw:
            return out
        return json.loads(out) if out else None

    # -- server -----------------------------------------------------------

    def health(self):
        """GET /healthz: {"status": "ok"} when the server answers."""
        return self._call("GET", "/healthz")

    def status(self):
        """This server's mode, version, uptime, store and TLS fingerprint."""
        return self._call("GET", "/api/config/status")

    def metrics(self):
        """The Prometheus text of GET /metrics."""
        return self._call("GET", "/metrics", raw=True).decode()

    def openapi(self):
        """The server's OpenAPI document, as a dict."""
        return self._call("GET", "/api/openapi.json")

    def validate_yaml(self, yaml_text):
        """Every problem of a kvm-compose.yaml ([] when valid): dicts with
        file, line, field and message."""
        if isinstance(yaml_text, str):
            yaml_text = yaml_text.encode()
        try:
            return self._call("POST", "/api/validate/yaml", yaml_text, content_type="application/yaml")["problems"]
        except APIError as e:
            if e.status == 422:
                return json.loads(e.body)["problems"]
            raise

    # -- deployments ------------------------------------------------------

    def deployments(self):
        """Every deployment, by name."""
        return self._call("GET", "/api/deployments")["deployments"]

    def deployment(self, name):
        """One deployment: name, project_location, state, last_action_uuid."""
        return self._call("GET", _dep(name))

    def create_deployment(self, name, project_location):
        """Adds a deployment of a project folder (an absolute path on the
        server holding kvm-compose.yaml)."""
        return self._call("POST", "/api/deployments", {"name": name, "project_location": project_location})

    def update_deployment(self, name, project_location):
        """Moves a deployment that is down to another project folder."""
        return self._call("PUT", _dep(name), {"project_location": project_location})

    def delete_deployment(self, name, force=False):
        """Forgets a deployment (one that is not down only with force)."""
        return self._call("DELETE", _dep(name) + ("?force=true" if force else ""))

    def action(self, name, command, **options):
        """Starts an action (generate-artefacts, clear-artefacts, up, down,
        apply, snapshot) and returns its uuid at once. options go into the
        request body (provision=True, rerun_scripts=True, …)."""
        body = {"command": command}
        body.update(options)
        return self._call("POST", _dep(name) + "/action", body)["uuid"]

    def run(self, name, command, on_line=None, **options):
        """Starts an action, follows its log to the end (each line to
        on_line) and returns its outcome: {"error_code": 0 on success, 1
        failed, 2 cancelled, 3 interrupted; "end_state": …}."""
        uuid = self.action(name, command, **options)
        return self.follow(uuid, on_line)

    def cancel(self, name, uuid=None):
        """Cancels the running action (only that one, given its uuid)."""
        return self._call("POST", _dep(name) + "/cancel", {"uuid": uuid} if uuid else None)["uuid"]

    def state(self, name):
        """The resolved state (state.json) of a deployment."""
        return self._call("GET", _dep(name) + "/state")

    def plan(self, name):
        """What apply would change on a deployment that is up."""
        return self._call("GET", _dep(name) + "/plan")

    def logs(self, name):
        """The logs index of a deployment: uuid → entry."""
        return self._call("GET", _dep(name) + "/logs")

    def actions(self, name, limit=0, offset=0):
        """A page of the deployment's past actions, newest first:
        {"actions": [...], "total": n, "next": offset or None}."""
        q = "&".join(f"{k}={v}" for k, v in (("limit", limit), ("offset", offset)) if v)
        return self._call("GET", _dep(name) + "/actions" + ("?" + q if q else ""))

    def power(self, name, guest, state):
        """Stops, starts or restarts one guest ("stopped", "running",
        "restarted") as an action of its own; returns its uuid."""
        return self._call("POST", _dep(name) + "/guests/" + _q(guest) + "/power", {"state": state})["uuid"]

    def exec_all(self, name, command, guests=None, timeout_s=0, stdin=None):
        """Runs command in several guests at once (every guest when guests
        is None), each given the bytes stdin as its standard input:
        {"results": [{"guest", "exit_code", "stdout", ...}]}."""
        body = _exec_body(command, timeout_s, stdin)
        if guests is not None:
            body["guests"] = list(guests)
        return self._call("POST", _dep(name) + "/exec", body)

    def images(self):
        """The server's VM images: [{"name", "url", "sha256", "size", "used_by"}]."""
        return self._call("GET", "/api/images")

    def import_image(self, name, data, sha256=""):
        """Sends an image (bytes) to the server as name; sha256 is checked
        when given."""
        boundary = "testbedos" + os.urandom(8).hex()
        parts = [("name", name)] + ([("sha256", sha256)] if sha256 else [])
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in parts)
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                 'Content-Type: application/octet-stream\r\n\r\n').encode() + bytes(data)
        body += f"\r\n--{boundary}--\r\n".encode()
        return self._call("POST", "/api/images", body=body,
                          content_type="multipart/form-data; boundary=" + boundary)

    def delete_image(self, name):
        """Removes an image (refused while a deployment uses it)."""
        return self._call("DELETE", "/api/images/" + _q(name))

    def files(self, name):
        """The regular files of a deployment's project folder:
        {"files": [{"path", "size", "executable"}], "truncated": bool}."""
        return self._call("GET", _dep(name) + "/files")

    def read_file(self, name, path):
        """One file of a deployment's project folder, as bytes."""
        return self._call("GET", _dep(name) + "/files/" + _q(path, safe="/"), raw=True)

    def write_file(self, name, path, data):
        """Writes one file of a deployment's project folder (str or bytes);
        folders are made, a file starting with #! is made executable."""
        if isinstance(data, str):
            data = data.encode()
        return self._call("PUT", _dep(name) + "/files/" + _q(path, safe="/"), body=data,
                          content_type="application/octet-stream")

    def delete_file(self, name, path):
        """Removes one file of a deployment's project folder."""
        return self._call("DELETE", _dep(name) + "/files/" + _q(path, safe="/"))

    def log_entry(self, uuid):
        """One action's record: log_path, error_code, end_state, …"""
        return self._call("GET", "/api/logs/" + _q(uuid))

    def log_text(self, uuid):
        """One action's log as written so far."""
        return self._call("GET", "/api/logs/" + _q(uuid) + "/text", raw=True).decode("utf-8", "replace")

    def follow(self, uuid, on_line=None):
        """Streams an action's log (every line so far, then each new one) to
        on_line and returns the outcome once the action ends."""
        ws = self._t.websocket("/api/logs/" + _q(uuid) + "/stream", timeout=None)
        try:
            while True:
                kind, data = ws.recv()
                if kind == "close":
                    code, reason = data
                    if code == 1000:
                        return json.loads(reason)
                    raise APIError(404 if code == 4404 else 502, reason or "log stream closed with %d" % code)
                if on_line:
                    on_line(data.decode("utf-8", "replace"))
        finally:
            ws.close()

    def events(self, on_event, stop=None):
        """Calls on_event(dict) with every server event until on_event
        returns False or stop (a threading.Event) is set."""
        ws = self._t.websocket("/api/events", timeout=None)
        try:
            while stop is None or not stop.is_set():
                kind, data = ws.recv()
                if kind == "close":
                    return
                if on_event(json.loads(data)) is False:
                    return
        finally:
            ws.close()

    # -- guests -----------------------------------------------------------

    def guests(self, name):
        """Every guest with kind, host, interfaces (leases too), status and
        resource use."""
        return self._call("GET", _dep(name) + "/guests")

    def exec(self, name, guest, command, timeout_s=None, stdin=None):
        """Runs argv command in a guest, with the bytes stdin as its
        standard input: {exit_code, stdout, stderr}."""
        return self._call("POST", _guest(name, guest) + "/exec", _exec_body(command, timeout_s, stdin))

    def impairment(self, name, guest, iface):
        """The impairment in force on a guest's interface."""
        return self._call("GET", _iface(name, guest, iface))

    def set_impairment(self, name, guest, iface, up=True, delay_ms=0, jitter_ms=0, loss_pct=0, rate_kbit=0, corrupt_pct=0):
        """Replaces a guest interface's impairment at run time (up=False: the
        link is down)."""
        return self._call("PUT", _iface(name, guest, iface), {
            "up": up, "delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_pct": loss_pct,
            "rate_kbit": rate_kbit, "corrupt_pct": corrupt_pct})

    def capture(self, name, guest, iface, seconds=5.0, filter=None, max_bytes=64 << 20):
        """Captures a guest interface's packets for seconds and returns the
        pcap bytes (pcap_packets parses them). filter: a subset of tcpdump's
        language ("icmp and host 10.0.0.10")."""
        path = _iface(name, guest, iface) + "/capture"
        if filter:
            path += "?filter=" + _q(filter)
        conn, resp = self._t.open("GET", path, timeout=None)
        chunks, size = [], [0]

        def reader():
            try:
                while size[0] < max_bytes:
                    b = resp.read1(65536)
                    if not b:
                        return
                    chunks.append(b)
                    size[0] += len(b)
            except Exception:  # the connection shut down under it: the capture's end
                return

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        th.join(seconds)
        try:
            conn.sock.shutdown(2)
        except (OSError, AttributeError):
            pass
        th.join(5)
        conn.close()
        return b"".join(chunks)

    def console(self, name, guest):
        """Opens a guest's terminal: a WebSocket; send(bytes) types,
        recv() returns ("binary", output) or ("close", …)."""
        return self._t.websocket(_guest(name, guest) + "/console", timeout=None)

    def snapshots(self, name, guest):
        """A VM's snapshots, oldest first."""
        return self._call("GET", _guest(name, guest) + "/snapshots")["snapshots"]

    def snapshot(self, name, guest, snapshot):
        """One snapshot of a VM."""
        return self._call("GET", _guest(name, guest) + "/snapshots/" + _q(snapshot))

    def monitor_host(self):
        """The last hour of this host's CPU and memory samples."""
        return self._call("GET", "/api/monitor/host")

    def monitor_guest(self, name, guest):
        """The last hour of a guest's CPU, memory and interface counters."""
        return self._call("GET", "/api/monitor/deployments/" + _q(name) + "/guests/" + _q(guest))

    # -- sharing ----------------------------------------------------------

    def graph(self, name, format="json"):
        """The topology: a dict for "json", text for "dot", "mermaid", "svg"."""
        data = self._call("GET", _dep(name) + "/graph?format=" + _q(format), raw=True)
        return json.loads(data) if format == "json" else data.decode()

    def inventory(self, name, format="json"):
        """The guests: a dict for "json", text for "ansible", "ssh-config",
        "hosts"."""
        data = self._call("GET", _dep(name) + "/inventory?format=" + _q(format), raw=True)
        return json.loads(data) if format == "json" else data.decode()

    def export(self, name, path=None):
        """The deployment's bundle (.tar.gz): written to path when given
        (returns path), else returned as bytes."""
        if path is None:
            return self._call("GET", _dep(name) + "/export", raw=True, timeout=None)
        conn, resp = self._t.open("GET", _dep(name) + "/export", timeout=None)
        tmp = path + ".part"
        try:
            with open(tmp, "wb") as f:
                while True:
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    f.write(chunk)
            os.replace(tmp, path)  # only a whole bundle takes the name
        finally:
            conn.close()
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    def import_bundle(self, bundle, name=None):
        """Makes a new deployment from a bundle (bytes or a file path),
        named name (the bundle's when None); the answer's "missing" names
        the images this server lacks, with their digests."""
        if isinstance(bundle, str):
            with open(bundle, "rb") as f:
                bundle = f.read()
        boundary = "tbos" + _uuid.uuid4().hex
        parts = []
        if name:
            parts.append(b'--%s\r\nContent-Disposition: form-data; name="name"\r\n\r\n%s\r\n' % (boundary.encode(), name.encode()))
        parts.append(b'--%s\r\nContent-Disposition: form-data; name="bundle"; filename="bundle.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n' % boundary.encode())
        body = b"".join(parts) + bundle + b"\r\n--%s--\r\n" % boundary.encode()
        return self._call("POST", "/api/deployments/import", body, content_type="multipart/form-data; boundary=" + boundary, timeout=None)

    # -- configuration and cluster ----------------------------------------

    def host_config(self):
        """This host's host.json."""
        return self._call("GET", "/api/config/host")

    def set_host_config(self, host):
        """Replaces this host's host.json (validated)."""
        return self._call("POST", "/api/config/host", host)

    def cluster_config(self):
        """The cluster's hosts (kvm-compose-config.json)."""
        return self._call("GET", "/api/config/cluster")

    def set_cluster_config(self, config):
        """Replaces the cluster configuration (validated)."""
        return self._call("POST", "/api/config/cluster", config)

    def members(self):
        """The cluster's members with their last heartbeat."""
        return self._call("GET", "/api/cluster")["members"]

    def member(self, name):
        """One member of the cluster."""
        return self._call("GET", "/api/cluster/" + _q(name))

    def join(self, request):
        """Joins a host to the cluster (the client carries the cluster token)."""
        return self._call("POST", "/api/cluster", request)

    def issue_join_token(self, uses=1, ttl="1h"):
        """A join token for at most uses hosts, valid for ttl."""
        return self._call("POST", "/api/cluster/join-tokens", {"uses": uses, "ttl": ttl})

    def remove_member(self, name):
        """Removes a member from the cluster."""
        return self._call("DELETE", "/api/cluster/" + _q(name))


def pcap_packets(data):
    """The packets of a pcap capture: a list of (seconds, bytes)."""
    if len(data) < 24:
        return []
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            break
        out.append((sec + frac / (1e9 if nano else 1e6), data[off:off + incl]))
        off += incl
    return out


def wait_for(fn, timeout=30.0, interval=0.2):
    """Calls fn until it returns something true or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)
