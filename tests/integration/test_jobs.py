"""The whole job path on a real broker: jobs published by the CLI and by a
third-party client (pika) are handled once each; failures retry, then park
with the spec's reason headers."""

import json
import re

import harness
from harness import header


class TestJobs(harness.WarrenTestCase):
    def start(self, **kw):
        host = self.start_host(**kw)
        host.wait_log(r"worker\.ready", timeout=20)
        return host

    def test_cli_publish_is_handled_once(self):
        self.start()
        conf = self.write_config(name="cli.conf")
        rc, out, err = harness.cli("publish", "diag.record", '{"hello":"world"}', "-c", conf)
        self.assertEqual(rc, 0, err)
        job_id = out.strip()
        self.assertRegex(job_id, r"^[0-9a-f-]{36}$")
        recs = harness.wait_for(lambda: harness.read_records(self.records), 15)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["id"], job_id)
        self.assertEqual(recs[0]["args"], {"hello": "world"})
        self.assertEqual(recs[0]["attempt"], 1)

    def test_third_party_client_by_routing_key_only(self):
        """amqp-publish -e warren -r WORKER style: no type property, no
        message id, no content type, not persistent."""
        self.start()
        harness.publish_raw(self.ns, "diag.record", {"from": "pika"},
                            properties={"type": None, "message_id": None,
                                        "content_type": None, "delivery_mode": 1})
        recs = harness.wait_for(lambda: harness.read_records(self.records), 15)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["args"], {"from": "pika"})
        # the host gave it an id the handler saw
        self.assertRegex(recs[0]["id"], r"^[0-9a-f-]{36}$")

    def test_many_jobs_each_handled_once(self):
        self.start(host={"concurrency": 2, "prefetch": 10})
        conf = self.write_config(name="cli.conf")
        lines = "".join(json.dumps({"n": i}) + "\n" for i in range(200))
        rc, out, err = harness.cli("publish", "diag.record", "-", "-c", conf, input=lines)
        self.assertEqual(rc, 0, err)
        ids = out.split()
        self.assertEqual(len(ids), 200)
        recs = harness.wait_for(
            lambda: (lambda r: r if len(r) >= 200 else None)(harness.read_records(self.records)),
            60)
        self.assertEqual(sorted(r["id"] for r in recs), sorted(ids))
        self.assertEqual(sorted(r["args"]["n"] for r in recs), list(range(200)))

    def test_transient_failures_retry_then_succeed(self):
        host = self.start()
        job_id = harness.publish_raw(self.ns, "diag.fail", {"times": 2})
        host.wait_log(r"job\.succeeded: diag\.fail %s succeeded \(attempt 3" % job_id, 20)
        self.assertEqual(len(re.findall(r"job\.failed: diag\.fail %s" % job_id,
                                        host.log_text())), 2)
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 0)

    def test_exhausted_job_parked_with_max_attempts(self):
        self.start(retry={"max_attempts": 3})
        job_id = harness.publish_raw(self.ns, "diag.fail", {"always": True},
                                     headers={"custom": "kept"})
        [(method, props, body)] = harness.wait_messages(self.ns + ".default.dead", 1, 20)
        self.assertEqual(props.message_id, job_id)
        self.assertEqual(json.loads(body), {"always": True})
        self.assertEqual(header(props, "x-warren-dead-reason"), "max_attempts")
        self.assertEqual(header(props, "x-warren-attempts"), 3)
        self.assertIn("attempt 3 of 3", header(props, "x-warren-error"))
        self.assertEqual(header(props, "x-warren-queue"), "default")
        self.assertEqual(header(props, "x-warren-host"), self.ns + "-host1")
        self.assertEqual(header(props, "x-warren-original-exchange"), self.ns)
        self.assertEqual(header(props, "x-warren-original-routing-key"), "diag.fail")
        self.assertRegex(header(props, "x-warren-failed-at"),
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual(header(props, "custom"), "kept")
        self.assertEqual(props.delivery_mode, 2)

    def test_max_attempts_header_overrides_worker(self):
        self.start()
        harness.publish_raw(self.ns, "diag.fail", {"always": True},
                            headers={"x-warren-max-attempts": 2})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 20)
        self.assertEqual(header(props, "x-warren-attempts"), 2)

    def test_permanent_failure_parked_at_once(self):
        host = self.start()
        job_id = harness.publish_raw(self.ns, "diag.fail", {"permanent": True})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 20)
        self.assertEqual(props.message_id, job_id)
        self.assertEqual(header(props, "x-warren-dead-reason"), "permanent_failure")
        self.assertEqual(header(props, "x-warren-attempts"), 1)
        self.assertIn("permanent failure", header(props, "x-warren-error"))
        self.assertEqual(len(re.findall(r"job\.failed: diag\.fail %s" % job_id,
                                        host.log_text())), 1)

    def test_priority_and_properties_survive_retry(self):
        self.start(retry={"max_attempts": 2})
        job_id = harness.publish_raw(self.ns, "diag.fail", {"always": True},
                                     properties={"priority": 7})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 20)
        self.assertEqual(props.message_id, job_id)
        self.assertEqual(props.priority, 7)
        self.assertEqual(header(props, "x-warren-attempts"), 2)
        self.assertNotIn("x-death", props.headers)


if __name__ == "__main__":
    harness.main()
