"""Self-test of the integration harness: needs the test broker only (no
warren binaries)."""
import os
import signal
import tempfile
import shutil
import unittest

import pika

import harness


class TestBroker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_broker()

    def test_reachable(self):
        self.assertTrue(harness.broker_reachable())
        print("broker at %s" % harness.TEST_URL)

    def test_publish_get_round_trip(self):
        ns = harness.new_namespace()
        q = ns + ".roundtrip"
        ch = harness.channel()
        try:
            ch.queue_declare(q, durable=True)
        finally:
            harness.close(ch)
        try:
            mid = harness.publish_raw(ns, "diag.echo", {"hello": "world"}, exchange="",
                                      routing_key=q, headers={"x-warren-attempt": 1})
            self.assertEqual(harness.queue_count(q), 1)
            msgs = harness.get_all(q)
            self.assertEqual(len(msgs), 1)
            method, props, body = msgs[0]
            self.assertEqual(props.message_id, mid)
            self.assertEqual(props.type, "diag.echo")
            self.assertEqual(props.delivery_mode, 2)
            self.assertEqual(props.content_type, "application/json")
            self.assertEqual(harness.header(props, "x-warren-attempt"), 1)
            self.assertEqual(body, b'{"hello": "world"}')
            self.assertEqual(harness.queue_count(q), 0)
        finally:
            harness.delete_namespace(ns, queues=[q])
        self.assertIsNone(harness.queue_count(q))

    def test_get_without_ack_requeues(self):
        ns = harness.new_namespace()
        q = ns + ".requeue"
        ch = harness.channel()
        ch.queue_declare(q, durable=True)
        harness.close(ch)
        try:
            for i in range(3):
                harness.publish_raw(ns, "w", {"i": i}, exchange="", routing_key=q,
                                    properties={"type": None, "message_id": None})
            self.assertEqual(len(harness.get_all(q, ack=False)), 3)
            again = harness.wait_messages(q, 3, timeout=5)
            self.assertTrue(all(m.redelivered for m, _, _ in again))
            self.assertIsNone(again[0][1].type)
            self.assertIsNone(again[0][1].message_id)
        finally:
            harness.delete_namespace(ns, queues=[q])

    def test_declare_entry_and_delete_namespace(self):
        ns = harness.new_namespace()
        harness.declare_entry(ns)
        ch = harness.channel()
        ch.queue_declare(ns + ".unroutable", durable=True)
        ch.queue_bind(ns + ".unroutable", ns + ".unroutable")
        harness.close(ch)
        # No queue is bound for this worker: the alternate exchange keeps it.
        harness.publish_raw(ns, "nobody.serves.this", {})
        harness.wait_for(lambda: harness.queue_count(ns + ".unroutable") == 1, 5)
        if harness.ctl_command():
            self.assertIn(ns + ".unroutable", harness.list_queues())
            harness.delete_namespace(ns)
            self.assertNotIn(ns, harness.list_exchanges())
        else:
            harness.delete_namespace(ns, queues=[ns + ".unroutable"],
                                     exchanges=[ns, ns + ".unroutable"])
        self.assertIsNone(harness.queue_count(ns + ".unroutable"))

    def test_unknown_exchange_raises(self):
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker):
            harness.publish_raw(harness.new_namespace(), "diag.echo", {})


class TestHelpers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="warren-harness-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_namespaces_differ(self):
        names = {harness.new_namespace() for _ in range(100)}
        self.assertEqual(len(names), 100)
        self.assertTrue(all(n[0] == "t" and len(n) == 9 for n in names))

    def test_write_config(self):
        path = harness.write_config(
            self.tmp, "tabc", host={"concurrency": 3}, retry={"max_attempts": 2,
                                                             "multiplier": 2.0},
            workers=[{"name": "diag.fail", "max_attempts": 2, "time_limit": "1s"}],
            extra='events = { enabled = true; };')
        with open(path) as f:
            text = f.read()
        self.assertIn('namespace = "tabc";', text)
        self.assertIn('urls = ["%s"];' % harness.TEST_URL, text)
        self.assertIn("concurrency = 3;", text)
        self.assertIn('metrics_listen = "";', text)
        self.assertIn('log_level = "debug";', text)
        self.assertIn('record_file = "%s"' % os.path.join(self.tmp, "records.jsonl"), text)
        self.assertIn("multiplier = 2.0;", text)
        self.assertIn('workers = (\n  { name = "diag.fail"; max_attempts = 2; time_limit = "1s"; }\n);',
                      text)
        self.assertTrue(text.rstrip().endswith("events = { enabled = true; };"))

    def test_read_records(self):
        p = os.path.join(self.tmp, "r.jsonl")
        self.assertEqual(harness.read_records(p), [])
        with open(p, "w") as f:
            f.write('{"id": "a", "attempt": 1}\n\n{"id": "b", "attempt": 2}\n')
        self.assertEqual([r["id"] for r in harness.read_records(p)], ["a", "b"])

    def test_wait_for(self):
        n = []
        self.assertEqual(harness.wait_for(lambda: n.append(1) or len(n) >= 3 and len(n), 2), 3)
        with self.assertRaises(AssertionError):
            harness.wait_for(lambda: False, 0.2)

    def test_host_process_helpers(self):
        # A stand-in "host": /bin/sh -c SCRIPT with two children.
        script = 'echo "supervisor up"; sleep 60 & sleep 60 & echo "workers up"; wait'
        h = harness.Host(script, self.tmp, name="fake", binary="/bin/sh")
        h.start()
        try:
            h.wait_log(r"^workers up$", timeout=5)
            pids = h.wait_workers(2, timeout=5)
            self.assertEqual(len(pids), 2)
            killed = h.kill_worker(signal.SIGKILL)
            harness.wait_for(lambda: not harness.pid_alive(killed), 5)
            mark = h.mark()
            with self.assertRaises(AssertionError):
                h.wait_log(r"never printed", timeout=0.3, since=mark)
        finally:
            rc = h.stop(signal.SIGTERM, timeout=10)
        self.assertEqual(rc, -signal.SIGTERM)
        self.assertFalse(h.alive())
        harness.wait_for(lambda: all(not harness.pid_alive(p) for p in pids), 5)


if __name__ == "__main__":
    harness.main()
