"""The SDK against a live server: deploy a small netns lab, exec, impair,
capture a few packets, destroy. Runs when TESTBEDOS_LIVE_PROJECT names a
project folder (two netns guests a, 10.0.0.10, and b, 10.0.0.11, on one
switch) and TESTBEDOS_LIVE_NAME the deployment to make of it; the server is
found as connect() finds it (TESTBEDOS_SOCKET). The Go test
test/e2e/pysdk_test.go starts a server and runs this."""

import os
import re
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import testbedos  # noqa: E402

PROJECT = os.environ.get("TESTBEDOS_LIVE_PROJECT")
NAME = os.environ.get("TESTBEDOS_LIVE_NAME", "pysdk")


@unittest.skipUnless(PROJECT, "TESTBEDOS_LIVE_PROJECT names no project folder")
class TestLiveLab(unittest.TestCase):
    def test_lab(self):
        c = testbedos.connect()
        self.assertEqual(c.health(), {"status": "ok"})
        with open(os.path.join(PROJECT, "kvm-compose.yaml")) as f:
            self.assertEqual(c.validate_yaml(f.read()), [])
        c.create_deployment(NAME, PROJECT)
        self.addCleanup(self.destroy, c)
        with self.assertRaises(testbedos.APIError) as e:
            c.create_deployment(NAME, PROJECT)
        self.assertEqual(e.exception.status, 409)

        for cmd in ("generate-artefacts", "up"):
            lines = []
            outcome = c.run(NAME, cmd, on_line=lines.append)
            self.assertEqual(outcome["error_code"], 0, "%s failed:\n%s" % (cmd, "\n".join(lines)))
            self.assertTrue(any(cmd + " succeeded" in l for l in lines), lines[-3:])
        self.assertEqual(c.deployment(NAME)["state"], "up")
        guests = {g["name"]: g for g in c.guests(NAME)}
        self.assertEqual(sorted(guests), ["a", "b"])
        self.assertEqual(guests["a"]["status"], "running")

        res = c.exec(NAME, "a", ["ping", "-c", "1", "-W", "2", "10.0.0.11"])
        self.assertEqual(res["exit_code"], 0, res)
        res = c.exec_all(NAME, ["cat"], stdin=b"x")
        self.assertEqual([(r["guest"], r["stdout"]) for r in res["results"]], [("a", "x"), ("b", "x")], res)

        # Impair a's link: the round trip takes the delay.
        imp = c.set_impairment(NAME, "a", "eth0", delay_ms=100)
        self.assertEqual(imp["delay_ms"], 100)
        self.assertEqual(c.impairment(NAME, "a", "eth0")["delay_ms"], 100)
        res = c.exec(NAME, "a", ["ping", "-c", "1", "-W", "3", "10.0.0.11"])
        self.assertEqual(res["exit_code"], 0, res)
        rtt = float(re.search(r"time=([\d.]+) ms", res["stdout"]).group(1))
        self.assertGreaterEqual(rtt, 100, res["stdout"])
        c.set_impairment(NAME, "a", "eth0")

        # Capture b's side while a pings it.
        got = {}
        th = threading.Thread(target=lambda: got.update(pcap=c.capture(NAME, "b", "eth0", seconds=3, filter="icmp")))
        th.start()
        testbedos.wait_for(lambda: False, timeout=0.7)
        c.exec(NAME, "a", ["ping", "-c", "3", "-i", "0.2", "10.0.0.11"])
        th.join(10)
        packets = testbedos.pcap_packets(got.get("pcap", b""))
        self.assertGreaterEqual(len(packets), 6, "want 3 echo requests and 3 replies")

        g = c.graph(NAME)
        self.assertEqual(sorted(n["name"] for n in g["nodes"] if n["kind"] == "guest"), ["a", "b"])
        self.assertIn("10.0.0.10", c.inventory(NAME, "hosts"))

        # A bundle, saved and imported under another name.
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = c.export(NAME, os.path.join(tmp, "lab.tar.gz"))
            res = c.import_bundle(path, NAME + "-copy")
        self.assertEqual(res["from"], NAME)
        self.assertEqual(res["deployment"]["state"], "down")
        c.delete_deployment(NAME + "-copy")

        outcome = c.run(NAME, "down")
        self.assertEqual(outcome["error_code"], 0)
        self.assertEqual(c.deployment(NAME)["state"], "down")
        self.assertEqual({g["status"] for g in c.guests(NAME)}, {"absent"})
        c.delete_deployment(NAME)
        with self.assertRaises(testbedos.APIError) as e:
            c.deployment(NAME)
        self.assertEqual(e.exception.status, 404)

    @unittest.skipUnless(os.environ.get("TESTBEDOS_LIVE_URL"), "TESTBEDOS_LIVE_URL names no TCP address")
    def test_tcp_token(self):
        url, token = os.environ["TESTBEDOS_LIVE_URL"], os.environ.get("TESTBEDOS_LIVE_TOKEN")
        self.assertIn("mode", testbedos.Client(url, token=token).status())
        with self.assertRaises(testbedos.APIError) as e:
            testbedos.Client(url, token="wrong").status()
        self.assertEqual(e.exception.status, 401)

    def destroy(self, c):
        try:
            if c.deployment(NAME)["state"] != "down":
                c.run(NAME, "down")
            c.delete_deployment(NAME, force=True)
        except testbedos.APIError:
            pass


if __name__ == "__main__":
    unittest.main()
