"""Lifecycle events: with events.enabled, a queue bound to `<ns>.events`
with `#` receives, per job, started/succeeded, started/failed/dead,
started/failed/retrying then the next attempt, and dead alone for input
that never reached a handler, each with the spec's fields; without it no
events exchange is declared. Also the notify module's webhook on a dead
letter, end to end."""

import http.server
import json
import re
import threading
import time

import pika

import harness

FIELDS = {"id", "worker", "queue", "attempt", "event", "at", "duration_ms", "error", "host"}
WORKER = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class TestEvents(harness.WarrenTestCase):
    def bind_events(self):
        """A queue in the namespace bound to <ns>.events with '#'."""
        q = self.ns + ".watch"
        ch = harness.channel(confirm=False)
        try:
            ch.queue_declare(q, durable=False)
            ch.queue_bind(q, self.ns + ".events", "#")
        finally:
            harness.close(ch)
        return q

    def collect(self, q, ids, until, timeout=40, delivery_mode=2):
        """Events per job id (in arrival order) until until(events) holds;
        each must come with delivery_mode (2 persistent, the default)."""
        events = {i: [] for i in ids}
        other = []

        def more():
            for method, props, body in harness.get_all(q):
                ev = json.loads(body)
                self.assertEqual(props.content_type, "application/json")
                self.assertEqual(props.delivery_mode, delivery_mode, body)
                worker = ev["worker"] if WORKER.match(ev["worker"]) else ""
                self.assertEqual(method.routing_key, "%s.%s" % (worker, ev["event"]))
                (events[ev["id"]] if ev["id"] in events else other).append(ev)
            return until(events)

        harness.wait_for(more, timeout, 0.2, "events")
        self.assertEqual(other, [])
        return events

    def test_event_sequences(self):
        host = self.start_host(
            host={"concurrency": 2, "prefetch": 1}, events={"enabled": True},
            retry={"max_attempts": 2, "initial_delay": 1, "multiplier": 1.0, "jitter": 0.0})
        host.wait_log(r"worker\.ready", 20)
        q = self.bind_events()
        ok = harness.publish_raw(self.ns, "diag.noop", {})
        perm = harness.publish_raw(self.ns, "diag.fail", {"permanent": True})
        once = harness.publish_raw(self.ns, "diag.fail", {"times": 1})
        always = harness.publish_raw(self.ns, "diag.fail", {"always": True})
        unknown = harness.publish_raw(self.ns, "no.such.worker", {}, exchange="",
                                      routing_key=self.ns + ".default")
        bad = harness.publish_raw(self.ns, "no such", b"{}", exchange="",
                                  routing_key=self.ns + ".default")
        want = {
            ok: [("started", 1), ("succeeded", 1)],
            perm: [("started", 1), ("failed", 1), ("dead", 1)],
            once: [("started", 1), ("failed", 1), ("retrying", 1), ("started", 2),
                   ("succeeded", 2)],
            always: [("started", 1), ("failed", 1), ("retrying", 1), ("started", 2),
                     ("failed", 2), ("dead", 2)],
            unknown: [("dead", 1)],
            bad: [("dead", 1)],
        }
        events = self.collect(
            q, want, lambda ev: all(len(ev[i]) >= len(w) for i, w in want.items()))
        for job_id, expected in want.items():
            got = [(e["event"], e["attempt"]) for e in events[job_id]]
            self.assertEqual(got, expected, job_id)
            for e in events[job_id]:
                self.assertTrue(FIELDS <= set(e), e)
                self.assertEqual(e["id"], job_id)
                self.assertEqual(e["queue"], "default")
                self.assertEqual(e["host"], self.ns + "-host1")
                self.assertRegex(e["at"], AT)
                if e["event"] == "started":
                    self.assertIsNone(e["duration_ms"])
                    self.assertIsNone(e["error"])
                if e["event"] in ("succeeded", "failed"):
                    self.assertIsInstance(e["duration_ms"], int)
                    self.assertGreaterEqual(e["duration_ms"], 0)
                if e["event"] == "succeeded":
                    self.assertIsNone(e["error"])
                if e["event"] in ("failed", "retrying", "dead"):
                    self.assertIsInstance(e["error"], str)
                    self.assertTrue(e["error"])
                if e["event"] == "retrying":
                    self.assertEqual(e["delay_ms"], 1000)
                else:
                    self.assertNotIn("delay_ms", e)
                if e["event"] == "dead":
                    self.assertIn("reason", e)
        self.assertEqual(events[ok][0]["worker"], "diag.noop")
        self.assertEqual(events[perm][-1]["reason"], "permanent_failure")
        self.assertEqual(events[always][-1]["reason"], "max_attempts")
        self.assertIn("attempt 2 of 2", events[always][-1]["error"])
        self.assertEqual(events[unknown][0]["reason"], "unknown_worker")
        self.assertEqual(events[unknown][0]["worker"], "no.such.worker")
        self.assertIsNone(events[unknown][0]["duration_ms"])
        self.assertEqual(events[bad][0]["reason"], "malformed")
        # Nothing else came, and the jobs ended where they should.
        self.assertEqual(harness.get_all(q), [])
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 4)

    def test_progress_snoozed_and_duplicate_events(self):
        host = self.start_host(
            host={"concurrency": 4}, events={"enabled": True},
            workers=[{"name": "diag.record", "unique_by": ["k"], "unique_for": "30s"}])
        host.wait_log(r"worker\.ready", 20)
        q = self.bind_events()
        slow = harness.publish_raw(self.ns, "diag.sleep", {"ms": 2500})
        snoozy = harness.publish_raw(self.ns, "diag.snooze", {"times": 1, "ms": 1000})
        first = harness.publish_raw(self.ns, "diag.record", {"k": "x", "sleep_ms": 1500})
        time.sleep(0.5)
        dup = harness.publish_raw(self.ns, "diag.record", {"k": "x"})
        ids = [slow, snoozy, first, dup]

        def done(ev):
            names = {i: [e["event"] for e in ev[i]] for i in ids}
            return ("succeeded" in names[slow] and names[snoozy].count("succeeded") == 1
                    and "duplicate" in names[dup] and "succeeded" in names[first])

        events = self.collect(q, ids, done)
        progress = [e for e in events[slow] if e["event"] == "progress"]
        print("progress events for a 2.5 s job: %s" % [(e["done"], e["total"]) for e in progress])
        self.assertGreaterEqual(len(progress), 2)
        self.assertTrue(all(e["total"] == 2500 for e in progress))
        self.assertEqual(progress[-1]["done"], 2500)
        dones = [e["done"] for e in progress]
        self.assertEqual(dones, sorted(dones))
        snz = [e["event"] for e in events[snoozy]]
        self.assertIn("snoozed", snz)
        self.assertNotIn("failed", snz)
        snoozed = [e for e in events[snoozy] if e["event"] == "snoozed"][0]
        self.assertEqual(snoozed["delay_ms"], 1000)
        self.assertEqual(snoozed["attempt"], 1)
        self.assertEqual([e["event"] for e in events[dup]], ["duplicate"])

    def test_cli_publish_announces_queued_and_scheduled(self):
        conf = self.write_config(name="cli.conf", events={"enabled": True})
        harness.cli("topology", "-c", conf)
        ch = harness.channel(confirm=False)
        ch.exchange_declare(self.ns + ".events", "topic", durable=True)
        harness.close(ch)
        q = self.bind_events()
        rc, out, err = harness.cli("publish", "diag.echo", '{"to": "a@b", "n": [1, 2]}',
                                   "--priority", "7", "-c", conf)
        self.assertEqual(rc, 0, err)
        now_id = out.strip()
        rc, out, err = harness.cli("publish", "diag.echo", "{}", "--delay", "5s", "-c", conf)
        self.assertEqual(rc, 0, err)
        later_id = out.strip()
        big = {"blob": "\u00e9" * 5000}  # 10,000 bytes of UTF-8 in the args
        rc, out, err = harness.cli("publish", "diag.echo", json.dumps(big, ensure_ascii=False),
                                   "-c", conf)
        self.assertEqual(rc, 0, err)
        big_id = out.strip()
        events = self.collect(q, [now_id, later_id, big_id],
                              lambda ev: ev[now_id] and ev[later_id] and ev[big_id])
        self.assertEqual(events[now_id][0]["event"], "queued")
        self.assertEqual(events[later_id][0]["event"], "scheduled")
        self.assertEqual(events[later_id][0]["delay_ms"], 5000)
        self.assertEqual(events[now_id][0]["worker"], "diag.echo")
        # The history shows a job's args and priority: the producer sends them.
        self.assertEqual(events[now_id][0]["args"], {"to": "a@b", "n": [1, 2]})
        self.assertEqual(events[now_id][0]["priority"], 7)
        self.assertEqual((events[later_id][0]["args"], events[later_id][0]["priority"]), ({}, 0))
        cut = events[big_id][0]
        self.assertTrue(cut["args_truncated"])
        self.assertLessEqual(len(cut["args"].encode()), 4096)
        self.assertTrue(json.dumps(big, ensure_ascii=False, separators=(",", ":"))
                        .startswith(cut["args"]), cut["args"][:40])

    def test_transient_events(self):
        # events.persistent = false: the producer's and the host's events
        # go out as transient messages; the jobs themselves stay persistent.
        events = {"enabled": True, "persistent": False}
        conf = self.write_config(name="cli.conf", events=events)
        harness.cli("topology", "-c", conf)
        ch = harness.channel(confirm=False)
        ch.exchange_declare(self.ns + ".events", "topic", durable=True)
        harness.close(ch)
        q = self.bind_events()
        rc, out, err = harness.cli("publish", "diag.noop", "{}", "-c", conf)
        self.assertEqual(rc, 0, err)
        job_id = out.strip()
        queued = self.collect(q, [job_id], lambda ev: ev[job_id], delivery_mode=1)
        self.assertEqual([e["event"] for e in queued[job_id]], ["queued"])
        host = self.start_host(events=events)
        host.wait_log(r"worker\.ready", 20)
        ran = self.collect(q, [job_id], lambda ev: len(ev[job_id]) >= 2, delivery_mode=1)
        self.assertEqual([e["event"] for e in ran[job_id]], ["started", "succeeded"])

    def test_disabled_declares_no_exchange(self):
        host = self.start_host(events={"enabled": False})
        host.wait_log(r"worker\.ready", 20)
        harness.publish_raw(self.ns, "diag.record", {})
        harness.wait_for(lambda: harness.read_records(self.records), 15)
        ch = harness.channel(confirm=False)
        try:
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker):
                ch.exchange_declare(self.ns + ".events", "topic", passive=True)
        finally:
            harness.close(ch)


class Hook(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hook.received.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class TestNotifyModule(harness.WarrenTestCase):
    def test_webhook_on_dead_letter(self):
        server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = "http://127.0.0.1:%d/dead" % server.server_address[1]
        host = self.start_host(modules=[
            {"path": "diag", "config": {"record_file": self.records}},
            {"path": "notify", "config": {"webhook_url": url, "timeout_ms": 2000}},
        ])
        host.wait_log(r"worker\.ready", 20)
        harness.publish_raw(self.ns, "diag.noop", {})
        job_id = harness.publish_raw(self.ns, "diag.fail", {"permanent": True})
        harness.wait_for(lambda: Hook.received, 20, 0.1, "webhook POST")
        [(path, ctype, body)] = Hook.received
        self.assertEqual(path, "/dead")
        self.assertEqual(ctype, "application/json")
        ev = json.loads(body)
        self.assertEqual(ev["id"], job_id)
        self.assertEqual(ev["event"], "dead")
        self.assertEqual(ev["reason"], "permanent_failure")
        self.assertEqual(ev["worker"], "diag.fail")
        self.assertEqual(ev["queue"], "default")
        self.assertEqual(ev["host"], self.ns + "-host1")
        host.wait_log(r"notified to the webhook", 10)


if __name__ == "__main__":
    harness.main()
