"""Checks the SDK against the server's OpenAPI document: every operation is
reached by some method of Client, and no method calls a route the document
does not have. Runs offline against a recording HTTP server.

The document is TESTBEDOS_OPENAPI, else the repository's
internal/server/httpapi/openapi.json."""

import inspect
import json
import os
import re
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import testbedos  # noqa: E402

DOC = os.environ.get("TESTBEDOS_OPENAPI") or os.path.join(HERE, "..", "..", "..", "internal", "server", "httpapi", "openapi.json")

# One call per method, with arguments of the right shape.
CALLS = {
    "health": lambda c: c.health(),
    "status": lambda c: c.status(),
    "metrics": lambda c: c.metrics(),
    "openapi": lambda c: c.openapi(),
    "validate_yaml": lambda c: c.validate_yaml("machines: []\n"),
    "deployments": lambda c: c.deployments(),
    "deployment": lambda c: c.deployment("lab"),
    "create_deployment": lambda c: c.create_deployment("lab", "/srv/lab"),
    "update_deployment": lambda c: c.update_deployment("lab", "/srv/lab"),
    "delete_deployment": lambda c: c.delete_deployment("lab"),
    "action": lambda c: c.action("lab", "up"),
    "run": lambda c: c.run("lab", "up"),
    "cancel": lambda c: c.cancel("lab"),
    "state": lambda c: c.state("lab"),
    "plan": lambda c: c.plan("lab"),
    "logs": lambda c: c.logs("lab"),
    "actions": lambda c: c.actions("lab", limit=10),
    "files": lambda c: c.files("lab"),
    "images": lambda c: c.images(),
    "import_image": lambda c: c.import_image("debian12", b"qcow2"),
    "delete_image": lambda c: c.delete_image("debian12"),
    "power": lambda c: c.power("lab", "web", "stopped"),
    "exec_all": lambda c: c.exec_all("lab", ["true"], guests=["web"]),
    "read_file": lambda c: c.read_file("lab", "scripts/setup.sh"),
    "write_file": lambda c: c.write_file("lab", "setup.sh", "#!/bin/sh\n"),
    "delete_file": lambda c: c.delete_file("lab", "old.sh"),
    "log_entry": lambda c: c.log_entry("u1"),
    "log_text": lambda c: c.log_text("u1"),
    "follow": lambda c: c.follow("u1"),
    "events": lambda c: c.events(lambda e: False),
    "guests": lambda c: c.guests("lab"),
    "exec": lambda c: c.exec("lab", "web", ["true"]),
    "impairment": lambda c: c.impairment("lab", "web", "eth0"),
    "set_impairment": lambda c: c.set_impairment("lab", "web", "eth0", delay_ms=10),
    "capture": lambda c: c.capture("lab", "web", "eth0", seconds=0.2),
    "console": lambda c: c.console("lab", "web"),
    "snapshots": lambda c: c.snapshots("lab", "vm"),
    "snapshot": lambda c: c.snapshot("lab", "vm", "s1"),
    "monitor_host": lambda c: c.monitor_host(),
    "monitor_guest": lambda c: c.monitor_guest("lab", "web"),
    "graph": lambda c: c.graph("lab", "dot"),
    "inventory": lambda c: c.inventory("lab", "ansible"),
    "export": lambda c: c.export("lab"),
    "import_bundle": lambda c: c.import_bundle(b"bundle", "copy"),
    "host_config": lambda c: c.host_config(),
    "set_host_config": lambda c: c.set_host_config({}),
    "cluster_config": lambda c: c.cluster_config(),
    "set_cluster_config": lambda c: c.set_cluster_config({"hosts": []}),
    "members": lambda c: c.members(),
    "member": lambda c: c.member("h2"),
    "join": lambda c: c.join({"name": "h2"}),
    "issue_join_token": lambda c: c.issue_join_token(),
    "remove_member": lambda c: c.remove_member("h2"),
}


def operations():
    with open(DOC) as f:
        doc = json.load(f)
    ops = []
    for path, item in doc["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "delete", "patch"):
                ops.append((method.upper(), path))
    return ops


def matcher(ops):
    """Maps a request (method, path) to its operation, the most literal
    template first."""
    compiled = []
    for method, path in ops:
        # {path...} takes the rest of the path, slashes too.
        rest = re.sub(r"\{[^}]+\.\.\.\}", "\x00", path)
        rx = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(rest))
        rx = "^" + rx.replace("\x00", ".+") + "$"
        compiled.append((path.count("{"), method, path, re.compile(rx)))
    compiled.sort()

    def match(method, path):
        for _, m, p, rx in compiled:
            if m == method and rx.match(path):
                return (m, p)
        return None
    return match


class Recorder(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.server.seen.append((self.command, self.path.split("?")[0]))
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer


class TestOpenAPI(unittest.TestCase):
    def test_every_operation_has_a_method(self):
        ops = operations()
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        srv.seen = []
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            c = testbedos.Client("http://127.0.0.1:%d" % srv.server_address[1], token="t", timeout=5)
            for name, call in CALLS.items():
                try:
                    call(c)
                except Exception:
                    pass  # the recorder's answers fit no method; the request is what counts
        finally:
            srv.shutdown()
            srv.server_close()
        match = matcher(ops)
        hit = set()
        strays = []
        for method, path in srv.seen:
            op = match(method, path)
            if op:
                hit.add(op)
            else:
                strays.append("%s %s" % (method, path))
        missing = ["%s %s" % op for op in ops if op not in hit]
        self.assertEqual(missing, [], "operations of the OpenAPI document that no method of the Python SDK calls")
        self.assertEqual(strays, [], "methods called routes the OpenAPI document does not have")

    def test_every_method_is_called(self):
        public = [n for n, _ in inspect.getmembers(testbedos.Client, inspect.isfunction) if not n.startswith("_")]
        self.assertEqual(sorted(set(public) - set(CALLS)), [], "methods missing from CALLS")

    def test_pcap_packets(self):
        import struct
        data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
        data += struct.pack("<IIII", 1, 500000, 3, 3) + b"abc"
        self.assertEqual(testbedos.pcap_packets(data), [(1.5, b"abc")])


if __name__ == "__main__":
    unittest.main()
