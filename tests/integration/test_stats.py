"""`warren stats` with the management API: unacked counts and rates beside
what AMQP tells; without it the same command still works (unacked unknown).
Needs WARREN_TEST_MANAGEMENT_URL (scripts/test starts its node with the
management plugin)."""

import json
import os
import subprocess
import time
import unittest

import harness
from test_doctor import password_file_user

MGMT = os.environ.get("WARREN_TEST_MANAGEMENT_URL")


@unittest.skipUnless(MGMT, "WARREN_TEST_MANAGEMENT_URL is not set (broker without management)")
class TestStatsWithManagement(harness.WarrenTestCase):
    def test_unacked_and_rates(self):
        broker = {"management_url": MGMT}
        host = self.start_host(broker=broker, host={"concurrency": 1, "prefetch": 5})
        host.wait_log(r"worker\.ready", 20)
        ch = harness.channel()
        for _ in range(5):
            harness.publish_raw(self.ns, "diag.sleep", {"ms": 15000}, ch=ch)
        harness.close(ch)
        conf = self.write_config(name="cli.conf", broker=broker)

        def unacked():
            rc, out, err = harness.cli("stats", "--json", "-c", conf)
            self.assertEqual(rc, 0, err)
            q = json.loads(out)["queues"][0]
            return q if q["unacked"] == 5 else None

        # the management API refreshes its figures every few seconds
        q = harness.wait_for(unacked, 20)
        self.assertEqual(q["ready"], 0)
        self.assertEqual(q["consumers"], 1)
        self.assertIn("publish_rate", q)
        rc, out, err = harness.cli("stats", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"default\s+0\s+5\s+1\s+0")

    def test_management_logs_in_with_password_file(self):
        """broker.password_file is the management API's password too: with
        a URL that holds none, unacked counts still come."""
        url, pwfile, password = password_file_user(self, self.ns + "-stats")
        conf = self.write_config(name="pwfile.conf", url=url,
                                 broker={"management_url": MGMT, "password_file": pwfile})
        rc, _, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)
        rc, out, err = harness.cli("stats", "--json", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("management API", err)
        self.assertEqual(json.loads(out)["queues"][0]["unacked"], 0)
        self.assertNotIn(password, out + err)

    def test_watch_refreshes(self):
        conf = self.write_config(name="cli.conf", broker={"management_url": MGMT})
        rc, _, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)
        p = subprocess.Popen([harness.WARREN, "stats", "--watch", "1", "-c", conf],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=harness.base_env())
        time.sleep(2.5)
        p.terminate()
        out, err = p.communicate(timeout=10)
        self.assertGreaterEqual(out.count("unroutable:"), 2, err)


class TestStatsWithoutManagement(harness.WarrenTestCase):
    def test_unacked_unknown_without_management(self):
        conf = self.write_config(name="cli.conf")
        harness.cli("topology", "-c", conf)
        rc, out, err = harness.cli("stats", "--json", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertIsNone(json.loads(out)["queues"][0]["unacked"])

    def test_unreachable_management_is_reported_not_fatal(self):
        conf = self.write_config(name="cli.conf",
                                 broker={"management_url": "http://127.0.0.1:1/"})
        harness.cli("topology", "-c", conf)
        rc, out, err = harness.cli("stats", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertIn("management API", err)


if __name__ == "__main__":
    harness.main()
