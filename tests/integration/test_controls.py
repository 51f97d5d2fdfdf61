"""Job controls on a real broker: snooze, locks across hosts (lock_by),
unique jobs (unique_by / unique_for)."""

import datetime
import os
import re
import signal
import time

import harness
from harness import header


def ts(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class TestSnooze(harness.WarrenTestCase):
    def test_snoozed_job_runs_later_without_using_an_attempt(self):
        host = self.start_host(retry={"max_attempts": 1})
        host.wait_log(r"worker\.ready", 20)
        t0 = time.time()
        job_id = harness.publish_raw(self.ns, "diag.snooze", {"times": 2, "ms": 1000})
        host.wait_log(r"diag\.snooze: done after 2 snooze", 20)
        took = time.time() - t0
        print("two 1 s snoozes took %.2f s" % took)
        self.assertGreaterEqual(took, 1.9)
        text = host.log_text()
        self.assertEqual(len(re.findall(r"job\.snoozed: diag\.snooze %s" % job_id, text)), 2)
        self.assertRegex(text, r"job\.succeeded: diag\.snooze %s succeeded \(attempt 1" % job_id)
        self.assertNotIn("job.failed", text)
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 0)

    def test_max_snoozes_parks_the_job(self):
        host = self.start_host(workers=[{"name": "diag.snooze", "max_snoozes": 2}])
        host.wait_log(r"worker\.ready", 20)
        job_id = harness.publish_raw(self.ns, "diag.snooze", {"times": 10, "ms": 1})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 20)
        self.assertEqual(props.message_id, job_id)
        self.assertEqual(header(props, "x-warren-dead-reason"), "max_attempts")
        self.assertIn("max_snoozes 2", header(props, "x-warren-error"))
        self.assertEqual(header(props, "x-warren-snoozes"), 2)


class TestLocks(harness.WarrenTestCase):
    def start_hosts(self, n=2, **kw):
        out = []
        for i in range(n):
            h = self.start_host(host={"concurrency": 2, "prefetch": 2},
                                workers=[{"name": "diag.record", "lock_by": ["k"],
                                          "lock_timeout": "2m"}], **kw)
            out.append(h)
        for h in out:
            h.wait_log(r"worker\.ready", 20)
        return out

    def test_shared_key_never_overlaps_distinct_keys_run_in_parallel(self):
        self.start_hosts(2)
        ch = harness.channel()
        for i in range(20):
            harness.publish_raw(self.ns, "diag.record", {"k": "same", "n": i, "sleep_ms": 150},
                                ch=ch)
            harness.publish_raw(self.ns, "diag.record", {"k": "k%d" % i, "n": i,
                                                         "sleep_ms": 150}, ch=ch)
        harness.close(ch)
        recs = harness.wait_for(
            lambda: (lambda r: r if len(r) >= 40 else None)(harness.read_records(self.records)),
            120)
        self.assertEqual(len(recs), 40)
        shared = sorted((ts(r["started"]), ts(r["at"])) for r in recs
                        if r["args"]["k"] == "same")
        self.assertEqual(len(shared), 20)
        for (s1, e1), (s2, e2) in zip(shared, shared[1:]):
            self.assertGreaterEqual(s2, e1 - 0.001, "shared-key jobs overlapped")
        distinct = sorted((ts(r["started"]), ts(r["at"])) for r in recs
                          if r["args"]["k"] != "same")
        overlaps = sum(1 for (s1, e1), (s2, e2) in zip(distinct, distinct[1:]) if s2 < e1)
        print("distinct-key jobs overlapping their neighbour: %d of 19" % overlaps)
        self.assertGreater(overlaps, 0, "distinct keys never ran in parallel")
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 0)

    def test_killed_holder_frees_the_key(self):
        host = self.start_host(host={"concurrency": 2, "prefetch": 1, "max_crashes": 1},
                               workers=[{"name": "diag.record", "lock_by": ["k"]}])
        host.wait_log(r"worker\.ready", 20)
        holder = harness.publish_raw(self.ns, "diag.record", {"k": "x", "sleep_ms": 60000})
        time.sleep(1.0)
        waiter = harness.publish_raw(self.ns, "diag.record", {"k": "x", "n": 1})
        host.wait_log(r"job\.snoozed: diag\.record %s" % waiter, 10)
        for pid in host.pids():  # kill -9 the holder (and its sibling)
            os.kill(pid, signal.SIGKILL)
        recs = harness.wait_for(lambda: harness.read_records(self.records), 30)
        self.assertEqual([r["id"] for r in recs], [waiter])
        # the holder crashed its process: redelivered, then parked at max_crashes 1
        dead = harness.wait_messages(self.ns + ".default.dead", 1, 30)
        # at-least-once: a copy may be parked twice, but only the holder is
        self.assertEqual({p.message_id for _, p, _ in dead}, {holder})
        self.assertEqual({header(p, "x-warren-dead-reason") for _, p, _ in dead}, {"crashed"})

    def test_lock_timeout_is_a_transient_failure(self):
        self.start_host(host={"concurrency": 2},
                        retry={"max_attempts": 1},
                        workers=[{"name": "diag.record", "lock_by": ["k"],
                                  "lock_timeout": "2s"}]).wait_log(r"worker\.ready", 20)
        harness.publish_raw(self.ns, "diag.record", {"k": "x", "sleep_ms": 30000})
        time.sleep(0.5)
        waiter = harness.publish_raw(self.ns, "diag.record", {"k": "x"})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 30)
        self.assertEqual(props.message_id, waiter)
        self.assertIn("lock held longer than 2s", header(props, "x-warren-error"))


class TestUnique(harness.WarrenTestCase):
    def test_duplicate_within_window_is_acked_unrun(self):
        host = self.start_host(host={"concurrency": 2},
                               workers=[{"name": "diag.record", "unique_by": ["k"],
                                         "unique_for": "30s"}])
        host.wait_log(r"worker\.ready", 20)
        first = harness.publish_raw(self.ns, "diag.record", {"k": "x", "sleep_ms": 2000})
        time.sleep(0.5)
        dup = harness.publish_raw(self.ns, "diag.record", {"k": "x", "sleep_ms": 1})
        other = harness.publish_raw(self.ns, "diag.record", {"k": "y"})
        host.wait_log(r"job\.duplicate: diag\.record %s" % dup, 10)
        recs = harness.wait_for(
            lambda: (lambda r: r if len(r) >= 2 else None)(harness.read_records(self.records)),
            20)
        self.assertEqual(sorted(r["id"] for r in recs), sorted([first, other]))
        # once the first has finished (and let go of its key), the key is free again
        host.wait_log(r"job\.succeeded: diag\.record %s" % first, 10)
        again = harness.publish_raw(self.ns, "diag.record", {"k": "x"})
        harness.wait_for(lambda: again in [r["id"] for r in harness.read_records(self.records)],
                         15)
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 0)


if __name__ == "__main__":
    harness.main()
