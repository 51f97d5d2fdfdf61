"""warrend as a process tree: workers replaced when they die, SIGTERM and
Ctrl-C drain the running job, refusals at start (config, modules, topology
drift) exit with the spec's codes, SIGHUP reloads or refuses a bad file."""

import os
import signal
import subprocess
import time

import pika

import harness


def bad_module(name):
    return os.path.join(harness.BUILD_DIR, "tests", "unit", "modules", name + ".so")


class TestProcesses(harness.WarrenTestCase):
    def test_killed_idle_worker_is_replaced(self):
        host = self.start_host(host={"concurrency": 2})
        host.wait_log(r"worker\.ready", 20)
        before = host.wait_workers(2)
        victim = host.kill_worker(signal.SIGKILL)
        host.wait_log(r"worker \d exited \(signal 9", 10)
        after = harness.wait_for(
            lambda: (lambda p: p if len(p) == 2 and victim not in p else None)(host.pids()), 15)
        self.assertEqual(len(set(after) - set(before)), 1)
        # the replacement takes jobs
        for i in range(4):
            harness.publish_raw(self.ns, "diag.record", {"n": i})
        harness.wait_for(lambda: len(harness.read_records(self.records)) == 4, 20)
        self.assertTrue(host.alive())

    def drain_with(self, sig):
        host = self.start_host(host={"concurrency": 1, "shutdown_timeout": "20s"})
        host.wait_log(r"worker\.ready", 20)
        job_id = harness.publish_raw(self.ns, "diag.record", {"sleep_ms": 1500})
        time.sleep(0.5)
        rc = host.stop(sig, timeout=30)
        self.assertEqual(rc, 0)
        recs = harness.read_records(self.records)
        self.assertEqual([r["id"] for r in recs], [job_id])
        self.assertIn("started", recs[0])
        self.assertEqual(harness.queue_count(self.ns + ".default"), 0)
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 0)
        self.assertEqual(host.pids(), [])

    def test_sigterm_finishes_running_job_and_exits_0(self):
        self.drain_with(signal.SIGTERM)

    def test_sigint_behaves_like_sigterm(self):
        self.drain_with(signal.SIGINT)

    def test_prefetched_jobs_go_back_untouched_on_stop(self):
        host = self.start_host(host={"concurrency": 1, "prefetch": 5})
        host.wait_log(r"worker\.ready", 20)
        first = harness.publish_raw(self.ns, "diag.record", {"sleep_ms": 1000})
        for i in range(4):
            harness.publish_raw(self.ns, "diag.record", {"n": i})
        time.sleep(0.4)
        self.assertEqual(host.stop(timeout=30), 0)
        recs = harness.read_records(self.records)
        self.assertEqual(recs[0]["id"], first)
        left = len(harness.get_all(self.ns + ".default"))
        self.assertEqual(len(recs) + left, 5)
        self.assertGreaterEqual(left, 1)

    def test_shutdown_timeout_stops_long_job_and_requeues_it(self):
        host = self.start_host(host={"concurrency": 1, "shutdown_timeout": "1s"})
        host.wait_log(r"worker\.ready", 20)
        job_id = harness.publish_raw(self.ns, "diag.sleep", {"ms": 20000})
        time.sleep(0.5)
        self.assertEqual(host.stop(timeout=20), 0)
        self.assertIn("shutdown_timeout", host.log_text())
        [(method, props, _)] = harness.get_all(self.ns + ".default")
        self.assertEqual(props.message_id, job_id)
        self.assertTrue(method.redelivered)


class TestRefusals(harness.WarrenTestCase):
    def test_config_error_exits_2_with_file_and_line(self):
        conf = self.write_config(extra='bogus_key = 1;\n')
        host = self.start_host(config=conf)
        self.assertEqual(host.wait(20), 2)
        self.assertRegex(host.log_text(), r"%s:\d+: .*bogus_key" % conf)

    def test_missing_config_flag_is_usage_error(self):
        r = subprocess.run([harness.WARREND], capture_output=True, text=True, timeout=10,
                           env=harness.base_env())
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)

    def test_module_of_other_abi_refused_with_both_versions(self):
        conf = self.write_config(modules=[{"path": bad_module("bad_abi")}])
        host = self.start_host(config=conf)
        self.assertEqual(host.wait(20), 2)
        text = host.log_text()
        self.assertRegex(text, r"%s:\d+: " % conf)
        self.assertRegex(text, r"ABI version \d+.*\b1\b")

    def test_module_not_found_names_places_tried(self):
        conf = self.write_config(modules=[{"path": "no_such_module"}])
        host = self.start_host(config=conf)
        self.assertEqual(host.wait(20), 2)
        self.assertIn("no_such_module", host.log_text())

    def test_module_init_failure_reported_with_line(self):
        # send_email refuses to start without a spool folder it can use
        conf = self.write_config(modules=[{"path": "generate_report", "config": {}}])
        host = self.start_host(config=conf)
        self.assertEqual(host.wait(20), 2)
        self.assertRegex(host.log_text(), r"%s:\d+: .*generate_report" % conf)

    def test_topology_drift_refused_naming_the_argument(self):
        ch = harness.channel(confirm=False)
        ch.queue_declare(self.ns + ".default", durable=True, arguments={"x-max-priority": 3})
        harness.close(ch)
        host = self.start_host()
        self.assertEqual(host.wait(30), 1)
        self.assertIn("x-max-priority", host.log_text())


class TestReload(harness.WarrenTestCase):
    def test_bad_reload_keeps_old_config(self):
        conf = self.write_config(name="live.conf")
        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", 20)
        pids = host.wait_workers(2)
        with open(conf, "a") as f:
            f.write("bogus = 1;\n")
        mark = host.mark()
        host.send_signal(signal.SIGHUP)
        host.wait_log(r"reload refused", 10, since=mark)
        self.assertRegex(host.log_text(), r"%s:\d+: .*bogus" % conf)
        time.sleep(0.5)
        self.assertEqual(host.pids(), pids)

    def test_reload_with_a_module_that_fails_is_refused(self):
        conf = self.write_config(name="live.conf")
        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", 20)
        pids = host.wait_workers(2)
        self.write_config(name="live.conf", modules=[{"path": bad_module("bad_abi")}])
        mark = host.mark()
        host.send_signal(signal.SIGHUP)
        host.wait_log(r"reload refused: a module does not load", 10, since=mark)
        time.sleep(0.5)
        self.assertTrue(host.alive())
        self.assertEqual(host.pids(), pids)

    def test_good_reload_replaces_workers_without_losing_jobs(self):
        conf = self.write_config(name="live.conf", host={"concurrency": 2, "prefetch": 5})
        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", 20)
        old = set(host.wait_workers(2))
        ch = harness.channel()
        for i in range(50):
            harness.publish_raw(self.ns, "diag.record", {"sleep_ms": 20, "n": i}, ch=ch)
        harness.close(ch)
        host.send_signal(signal.SIGHUP)
        host.wait_log(r"config\.reloaded", 10)
        harness.wait_for(lambda: not (set(host.pids()) & old), 20)
        recs = harness.wait_for(
            lambda: (lambda r: r if len({x["args"]["n"] for x in r}) == 50 else None)(
                harness.read_records(self.records)), 60)
        self.assertEqual({x["args"]["n"] for x in recs}, set(range(50)))
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 0)


if __name__ == "__main__":
    harness.main()
