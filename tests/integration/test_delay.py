"""Delays and retries through the delay levels: jobs delayed by D seconds
arrive no earlier than D (a hard bound) and about on time (a loose bound,
printed); a long delay never holds a short one back; retries are spaced by
the backoff; a classic queue hands a priority-9 job over before a backlog."""

import datetime
import json
import time

import harness
from harness import header


def parse_at(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class TestDelays(harness.WarrenTestCase):
    def start(self, **kw):
        host = self.start_host(**kw)
        host.wait_log(r"worker\.ready", 20)
        return host

    def wait_records(self, n, timeout):
        return harness.wait_for(
            lambda: (lambda r: r if len(r) >= n else None)(harness.read_records(self.records)),
            timeout, message="%d records" % n)

    def test_delays_published_in_reverse_order_arrive_on_time(self):
        self.start(host={"concurrency": 2})
        conf = self.write_config(name="cli.conf")
        sent = {}
        for delay in (20, 5, 1):
            t0 = time.time()
            rc, out, err = harness.cli("publish", "diag.record", json.dumps({"d": delay}),
                                       "--delay", "%ds" % delay, "-c", conf)
            self.assertEqual(rc, 0, err)
            sent[delay] = t0
        recs = self.wait_records(3, 40)
        for r in recs:
            d = r["args"]["d"]
            waited = parse_at(r["at"]) - sent[d]
            print("delay %2d s: ran after %.2f s" % (d, waited))
            self.assertGreaterEqual(waited, d - 0.05, "job delayed %d s ran early" % d)
            self.assertLess(waited, 2 * d + 2, "job delayed %d s ran far too late" % d)
        self.assertEqual([r["args"]["d"] for r in recs], [1, 5, 20])

    def test_long_delay_does_not_hold_back_short_one(self):
        self.start()
        conf = self.write_config(name="cli.conf")
        rc, _, err = harness.cli("publish", "diag.record", '{"d": 600}', "--delay", "10m",
                                 "-c", conf)
        self.assertEqual(rc, 0, err)
        t0 = time.time()
        rc, _, err = harness.cli("publish", "diag.record", '{"d": 1}', "--delay", "1s",
                                 "-c", conf)
        self.assertEqual(rc, 0, err)
        [r] = self.wait_records(1, 10)
        self.assertEqual(r["args"], {"d": 1})
        print("1 s job behind a 10 min job ran after %.2f s" % (parse_at(r["at"]) - t0))

    def test_sub_second_delay_runs_at_once(self):
        self.start()
        conf = self.write_config(name="cli.conf")
        rc, _, err = harness.cli("publish", "diag.record", "{}", "--delay", "500ms", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.wait_records(1, 5)

    def test_delayed_job_for_unserved_worker_is_kept(self):
        self.start()
        conf = self.write_config(name="cli.conf")
        rc, _, err = harness.cli("publish", "nobody.serves", "{}", "--delay", "1s", "-c", conf)
        self.assertEqual(rc, 0, err)
        [(_, props, _)] = harness.wait_messages(self.ns + ".unroutable", 1, 10)
        self.assertEqual(props.type, "nobody.serves")

    def test_delayed_publish_before_any_host(self):
        """The producer declares the delay levels itself."""
        conf = self.write_config(name="cli.conf")
        rc, _, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)
        rc, _, err = harness.cli("publish", "diag.record", '{"early": 1}', "--delay", "2s",
                                 "-c", conf)
        self.assertEqual(rc, 0, err)
        self.start()
        self.wait_records(1, 10)

    def test_retries_spaced_by_backoff(self):
        self.start()
        job_id = harness.publish_raw(self.ns, "diag.fail", {"times": 2})
        host = self.hosts[0]
        host.wait_log(r"job\.succeeded: diag\.fail %s succeeded \(attempt 3" % job_id, 20)
        stamps = []
        for line in host.log_text().splitlines():
            if job_id in line and ("job.failed" in line or "job.succeeded" in line):
                stamps.append(parse_at(line.split()[0]))
        self.assertEqual(len(stamps), 3)
        gaps = [stamps[1] - stamps[0], stamps[2] - stamps[1]]
        print("retry gaps: %.2f s, %.2f s (backoff 1 s, 2 s with 20%% jitter)" % tuple(gaps))
        self.assertGreaterEqual(gaps[0], 0.95)
        self.assertGreaterEqual(gaps[1], 1.95)
        self.assertLess(gaps[0], 4)
        self.assertLess(gaps[1], 6)
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 0)

    def test_retry_copy_has_no_x_death(self):
        """A 1 s retry followed by a 2 s one must not vanish because the
        copy remembers an earlier pass through the delay levels."""
        self.start(retry={"max_attempts": 4, "initial_delay": 1, "multiplier": 1.0,
                          "jitter": 0.0})
        job_id = harness.publish_raw(self.ns, "diag.fail", {"always": True})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 30)
        self.assertEqual(props.message_id, job_id)
        self.assertEqual(header(props, "x-warren-attempts"), 4)
        self.assertNotIn("x-death", props.headers)

    def refuse_delay_copies(self):
        """A policy that makes the 1 s delay level refuse every copy (the
        broker nacks it), as a quorum queue between leaders does; removed
        when the test ends."""
        name = self.ns + "-refuse"
        harness.ctl("set_policy", name, "^%s\\.delay\\.0$" % self.ns.replace(".", "\\."),
                    '{"max-length": 0, "overflow": "reject-publish"}', "--apply-to", "queues")
        self.addCleanup(self.clear_policy, name)
        harness.wait_for(lambda: name in harness.ctl("list_queues", "name", "policy", "-q"),
                         10, 0.1, "the policy applied")
        return name

    @staticmethod
    def clear_policy(name):
        if name in harness.ctl("list_policies", "-q"):
            harness.ctl("clear_policy", name)

    def test_refused_retry_copy_is_sent_again_then_parked(self):
        host = self.start(retry={"initial_delay": 1, "jitter": 0.0})
        self.refuse_delay_copies()
        job_id = harness.publish_raw(self.ns, "diag.fail", {"times": 1})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 30)
        self.assertEqual(props.message_id, job_id)
        self.assertEqual(header(props, "x-warren-dead-reason"), "rejected_by_broker")
        self.assertIn("retry copy refused", header(props, "x-warren-error"))
        # three more tries, a pause before each, before it was parked
        tries = [ln for ln in host.log_text().splitlines() if "job.retry_refused" in ln]
        self.assertEqual(len(tries), 3, tries)
        self.assertEqual(harness.queue_count(self.ns + ".default"), 0)

    def test_copy_refused_for_a_moment_still_retries(self):
        host = self.start(retry={"initial_delay": 1, "jitter": 0.0})
        policy = self.refuse_delay_copies()
        job_id = harness.publish_raw(self.ns, "diag.fail", {"times": 1})
        host.wait_log(r"job\.retry_refused: diag\.fail %s" % job_id, 20)
        self.clear_policy(policy)  # the queue takes copies again
        host.wait_log(r"job\.succeeded: diag\.fail %s succeeded \(attempt 2" % job_id, 20)
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 0)

    def test_third_party_publish_to_delay_level(self):
        """A client that knows the routing-key contract can delay a job
        without warren's library (no type property)."""
        self.start()
        key = ".".join(format(2, "028b")) + ".diag.record"
        t0 = time.time()
        harness.publish_raw(self.ns, "diag.record", {"raw": 1}, properties={"type": None},
                            exchange=self.ns + ".delay.27", routing_key=key)
        [r] = self.wait_records(1, 10)
        self.assertGreaterEqual(parse_at(r["at"]) - t0, 1.95)


class TestPriority(harness.WarrenTestCase):
    def test_priority_9_jumps_a_backlog(self):
        conf = self.write_config(name="cli.conf", host={"concurrency": 1, "prefetch": 1})
        rc, _, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)
        ch = harness.channel()
        for i in range(300):
            harness.publish_raw(self.ns, "diag.record", {"n": i}, ch=ch)
        urgent = harness.publish_raw(self.ns, "diag.record", {"urgent": True},
                                     properties={"priority": 9}, ch=ch)
        harness.close(ch)
        self.start_host(config=conf)
        recs = harness.wait_for(
            lambda: (lambda r: r if len(r) >= 10 else None)(harness.read_records(self.records)),
            30)
        order = [r["id"] for r in recs]
        self.assertIn(urgent, order[:2], "priority 9 job ran at position %s" %
                      (order.index(urgent) if urgent in order else "?"))


if __name__ == "__main__":
    harness.main()
