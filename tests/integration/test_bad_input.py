"""Every kind of bad input is parked in dead letters with its reason, is
never retried, and the host keeps running and handling good jobs."""

import json

import harness
from harness import header


class TestBadInput(harness.WarrenTestCase):
    def setUp(self):
        super().setUp()
        self.host = self.start_host(host={"max_message_bytes": 4096})
        self.host.wait_log(r"worker\.ready", timeout=20)
        self.dead = self.ns + ".default.dead"
        self.work = self.ns + ".default"

    def park(self, **publish):
        """Publishes one bad job; returns (props, body) of its dead letter."""
        worker = publish.pop("worker", "diag.record")
        job_id = harness.publish_raw(self.ns, worker, **publish)
        [(_, props, body)] = harness.wait_messages(self.dead, 1, 20)
        if job_id is not None:
            self.assertEqual(props.message_id, job_id)
        return props, body

    def assert_still_serving(self):
        harness.publish_raw(self.ns, "diag.record", {"ok": True})
        recs = harness.wait_for(lambda: harness.read_records(self.records), 15)
        self.assertEqual([r["args"] for r in recs], [{"ok": True}])
        self.assertTrue(self.host.alive())

    def assert_parked(self, reason, text=None, **publish):
        props, body = self.park(**publish)
        self.assertEqual(header(props, "x-warren-dead-reason"), reason)
        self.assertEqual(header(props, "x-warren-queue"), "default")
        if text:
            self.assertIn(text, header(props, "x-warren-error"))
        self.host.wait_log(r"job\.dead", 5)
        self.assert_still_serving()
        self.assertEqual(harness.queue_count(self.dead), 0)
        return props, body

    def test_malformed_json(self):
        _, body = self.assert_parked("malformed", body=b'{"unclosed": ')
        self.assertEqual(body, b'{"unclosed": ')  # body unchanged

    def test_body_not_an_object(self):
        self.assert_parked("malformed", "not a JSON object", body=b"[1, 2]")

    def test_bad_utf8(self):
        self.assert_parked("malformed", "UTF-8", body=b'{"a": "\xc0\xaf"}')

    def test_too_deep(self):
        body = b'{"a":' + b"[" * 70 + b"]" * 70 + b"}"
        self.assert_parked("malformed", body=body)

    def test_too_large(self):
        body = json.dumps({"pad": "x" * 5000}).encode()
        self.assert_parked("too_large", "max_message_bytes", body=body)

    def test_unknown_worker(self):
        """A job for a worker this host does not have, sent straight to the
        work queue (a binding left over from an older deployment)."""
        self.assert_parked("unknown_worker", "no.such.worker", worker="no.such.worker",
                           exchange="", routing_key=self.work)

    def test_missing_worker_name(self):
        self.assert_parked("malformed", "worker", worker="",
                           properties={"type": None}, exchange="", routing_key=self.work)

    def test_invalid_worker_name(self):
        self.assert_parked("malformed", "worker name", worker="diag.record",
                           properties={"type": "bad name!"})

    def test_invalid_args_against_schema(self):
        self.assert_parked("invalid_args", worker="diag.sleep", body={"ms": "soon"})

    def test_attempt_header_of_wrong_type(self):
        self.assert_parked("malformed", "x-warren-attempt",
                           headers={"x-warren-attempt": "three"})

    def test_attempt_below_one(self):
        self.assert_parked("malformed", "x-warren-attempt", headers={"x-warren-attempt": 0})

    def test_too_many_headers(self):
        self.assert_parked("malformed", headers={"h%d" % i: i for i in range(70)})

    def test_expiration_and_death_headers_dropped_from_dead_letter(self):
        props, _ = self.assert_parked(
            "malformed", body=b"nope",
            properties={"expiration": "600000"},
            headers={"x-death": [{"queue": "elsewhere", "count": 1}],
                     "x-first-death-queue": "elsewhere", "keep": "me"})
        self.assertIsNone(props.expiration)
        self.assertNotIn("x-death", props.headers)
        self.assertNotIn("x-first-death-queue", props.headers)
        self.assertEqual(header(props, "keep"), "me")

    def test_missing_message_id_gets_one(self):
        props, _ = self.assert_parked("malformed", body=b"nope",
                                      properties={"message_id": None})
        self.assertRegex(props.message_id, r"^[0-9a-f-]{36}$")

    def test_attempt_header_is_honoured(self):
        harness.publish_raw(self.ns, "diag.record", {"w": 1},
                            headers={"x-warren-attempt": 2, "x-warren-max-attempts": 9})
        recs = harness.wait_for(lambda: harness.read_records(self.records), 15)
        self.assertEqual(recs[0]["attempt"], 2)


if __name__ == "__main__":
    harness.main()
