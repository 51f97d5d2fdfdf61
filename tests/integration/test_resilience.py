"""Crash isolation, poison messages, time limits, heartbeats during long
jobs and process recycling, each on a real broker."""

import re
import signal
import time

import harness
from harness import header


class TestCrashes(harness.WarrenTestCase):
    def test_segfaulting_job_parked_as_crashed_while_others_run(self):
        host = self.start_host(host={"concurrency": 2, "prefetch": 5, "max_crashes": 3})
        host.wait_log(r"worker\.ready", 20)
        poison = harness.publish_raw(self.ns, "diag.crash", {})
        ch = harness.channel()
        for i in range(100):
            harness.publish_raw(self.ns, "diag.record", {"n": i}, ch=ch)
        harness.close(ch)
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 60)
        self.assertEqual(props.message_id, poison)
        self.assertEqual(header(props, "x-warren-dead-reason"), "crashed")
        self.assertIn("signal 11", header(props, "x-warren-error"))
        recs = harness.wait_for(
            lambda: (lambda r: r if len({x["args"]["n"] for x in r}) == 100 else None)(
                harness.read_records(self.records)), 60)
        self.assertEqual({x["args"]["n"] for x in recs}, set(range(100)))
        self.assertEqual(len(re.findall(r"job\.crashed: .*%s" % poison, host.log_text())), 3)
        self.assertTrue(host.alive())

    def test_killed_idle_worker_is_no_crash(self):
        host = self.start_host(host={"concurrency": 1, "prefetch": 5})
        host.wait_log(r"worker\.ready", 20)
        host.kill_worker(signal.SIGKILL)
        host.wait_log(r"worker 1 exited", 10)
        self.assertNotIn("job.crashed", host.log_text())


class TestTimeLimits(harness.WarrenTestCase):
    def test_overrunning_job_retried_then_parked(self):
        host = self.start_host(host={"concurrency": 1},
                               retry={"max_attempts": 2, "initial_delay": 1, "jitter": 0.0},
                               workers=[{"name": "diag.sleep", "time_limit": "1s"}])
        host.wait_log(r"worker\.ready", 20)
        t0 = time.time()
        job_id = harness.publish_raw(self.ns, "diag.sleep", {"ms": 30000})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 30)
        print("time-limited job parked after %.1f s" % (time.time() - t0))
        self.assertEqual(props.message_id, job_id)
        self.assertEqual(header(props, "x-warren-dead-reason"), "max_attempts")
        self.assertIn("time limit 1s exceeded", header(props, "x-warren-error"))
        self.assertEqual(header(props, "x-warren-attempts"), 2)
        self.assertNotIn("job.crashed", host.log_text())
        # the replaced process serves the next job
        harness.publish_raw(self.ns, "diag.record", {"after": True})
        harness.wait_for(lambda: harness.read_records(self.records), 15)


class TestLongJobs(harness.WarrenTestCase):
    def test_heartbeats_flow_while_a_long_job_runs(self):
        host = self.start_host(broker={"heartbeat": 1}, host={"concurrency": 1})
        host.wait_log(r"worker\.ready", 20)
        job_id = harness.publish_raw(self.ns, "diag.record", {"sleep_ms": 6000})
        recs = harness.wait_for(lambda: harness.read_records(self.records), 20)
        self.assertEqual(recs[0]["id"], job_id)
        time.sleep(0.5)
        text = host.log_text()
        self.assertNotIn("broker.lost", text)
        self.assertEqual(len(re.findall(r"worker\.ready", text)), 1)
        self.assertEqual(harness.queue_count(self.ns + ".default"), 0)


class TestRecycling(harness.WarrenTestCase):
    def test_max_jobs_per_process_replaces_workers_without_loss(self):
        host = self.start_host(host={"concurrency": 1, "prefetch": 3,
                                     "max_jobs_per_process": 5})
        host.wait_log(r"worker\.ready", 20)
        first = host.wait_workers(1)
        ch = harness.channel()
        for i in range(20):
            harness.publish_raw(self.ns, "diag.record", {"n": i}, ch=ch)
        harness.close(ch)
        recs = harness.wait_for(
            lambda: (lambda r: r if len({x["args"]["n"] for x in r}) == 20 else None)(
                harness.read_records(self.records)), 40)
        self.assertEqual({x["args"]["n"] for x in recs}, set(range(20)))
        self.assertGreaterEqual(len(re.findall(r"worker\.recycle", host.log_text())), 3)
        self.assertNotEqual(host.wait_workers(1), first)
        self.assertNotIn("job.crashed", host.log_text())


if __name__ == "__main__":
    harness.main()
