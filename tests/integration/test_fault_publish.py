"""The producer survives a broker restart: `warren publish -` reconnects
and publishes again what was not confirmed, with the same ids; every job
is in the queue afterwards (duplicates allowed and counted), none lost.
Restarts the broker: runs alone (test_fault_*)."""

import json
import subprocess
import threading
import time

import harness


class TestPublishAcrossRestart(harness.WarrenTestCase):
    def test_batch_publish_survives_broker_restart(self):
        conf = self.write_config(name="cli.conf")
        rc, _, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)
        n = 60000 if harness.LONG else 20000
        lines = "".join(json.dumps({"n": i}) + "\n" for i in range(n))
        p = subprocess.Popen([harness.WARREN, "publish", "diag.record", "-", "-c", conf],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=harness.base_env())
        restarted = threading.Event()

        def restart():
            time.sleep(0.3)
            harness.broker_command("restart")
            restarted.set()

        t = threading.Thread(target=restart)
        t.start()
        out, err = p.communicate(lines, timeout=240)
        t.join()
        self.assertTrue(restarted.is_set())
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("producer.reconnect", err, "the restart did not hit the publish")
        ids = out.split()
        self.assertEqual(len(ids), n)
        harness.wait_for(lambda: harness.broker_reachable(), 60)
        msgs = harness.get_all(self.ns + ".default")
        got = [m[1].message_id for m in msgs]
        missing = set(ids) - set(got)
        dups = len(got) - len(set(got))
        print("published %d across a broker restart: %d in the queue, %d duplicates, "
              "%d missing" % (n, len(got), dups, len(missing)))
        self.assertEqual(missing, set())
        self.assertEqual({json.loads(m[2])["n"] for m in msgs}, set(range(n)))


if __name__ == "__main__":
    harness.main()
