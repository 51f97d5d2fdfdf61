"""Cluster failover on a real three-node RabbitMQ cluster on this machine.

tests/cluster/failover.sh starts three private nodes (c1, c2, c3 by
default; their own ports from WARREN_CLUSTER_PORT, default 24700) and
joins c2 and c3 to c1 with RabbitMQ's own stop_app / join_cluster /
start_app. Two warrend hosts consume a quorum work queue with
broker.urls listing all three nodes, c1 first, so every worker process is
connected to c1. A pika publisher (confirms, fails over between the three
URLs, same message_id on a retry) publishes continuously. Then:

    c1 is stopped            the hosts must reconnect to c2/c3 and keep
                             handling jobs while c1 is down
    a third host starts and a worker of the first is killed: both connect
                             (and declare the topology) while c1 is down
    publishing goes on
    c1 is started again      it must rejoin (the cluster sees 3 running nodes)
    publishing goes on, then stops

and every confirmed job must be handled (diag.record's file, or diag.fail's
`job.succeeded` line) or parked in <ns>.default.dead with a reason; the
duplicates and timings are printed as a `fault-summary:` line. The nodes
are stopped in tearDownClass, even on failure; the node of scripts/test
(`test`) is never touched. WARREN_CLUSTER_FAULT=kill SIGKILLs c1 instead
of stopping it.

    /usr/bin/python3 tests/integration/test_fault_cluster.py     (or tests/cluster/failover.sh run)
"""

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import harness
import test_fault_suite as fs

FAILOVER = os.path.join(harness.SOURCE_DIR, "tests", "cluster", "failover.sh")
FAULT = os.environ.get("WARREN_CLUSTER_FAULT", "stop")
SCALE = 3 if harness.LONG else 1
log = fs.log


def failover(*args, timeout=240):
    t0 = time.monotonic()
    r = subprocess.run([FAILOVER] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        raise RuntimeError("failover.sh %s failed (%d): %s" % (
            " ".join(args), r.returncode, r.stderr.strip()[-2000:]))
    return r.stdout.strip(), time.monotonic() - t0


class TestClusterFailover(unittest.TestCase):
    urls = []

    @classmethod
    def setUpClass(cls):
        for b in (harness.WARREND, harness.WARREN):
            if not os.access(b, os.X_OK):
                raise RuntimeError("%s is not built (run scripts/build)" % b)
        # Stops the nodes even when starting them fails half-way, and when
        # the run is stopped by SIGTERM or Ctrl-C.
        cls.addClassCleanup(cls._down)
        fs.AT_EXIT.append(cls._down)
        _, cls.up_s = failover("up")
        cls.urls = failover("urls")[0].split(",")
        log("cluster up in %.1f s: %s" % (cls.up_s, cls.urls))

    @classmethod
    def _down(cls):
        try:
            failover("down", timeout=180)
        except Exception as e:
            print("could not stop the cluster: %s" % e, file=sys.stderr)

    def setUp(self):
        self.ns = harness.new_namespace()
        self.tmpdir = tempfile.mkdtemp(prefix="warren-cluster-%s-" % self.ns)
        self.records = os.path.join(self.tmpdir, "records.jsonl")
        self.hosts = []
        fs.LIVE_HOSTS.append(self.hosts)
        self.addCleanup(fs.LIVE_HOSTS.remove, self.hosts)
        self.down = set()   # indexes of nodes stopped by the test
        self.rng = random.Random(int(os.environ.get("WARREN_FAULT_SEED")
                                     or random.randrange(1 << 30)))

    def tearDown(self):
        failed = self._failed()
        for h in self.hosts:
            if h.alive():
                try:
                    h.stop(timeout=30)
                except AssertionError as e:
                    print(e, file=sys.stderr)
            else:
                h.kill()
        if failed:
            for h in self.hosts:
                sys.stderr.write("\n--- %s (last lines)\n%s\n" % (h.log_path, h.log_tail(60)))
            sys.stderr.write("--- kept %s\n" % self.tmpdir)
        elif not os.environ.get("WARREN_TEST_KEEP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _failed(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        errors = getattr(getattr(self, "_outcome", None), "errors", None)
        if errors is not None:
            return any(exc for _, exc in errors)
        if result is None:
            return False
        return any(t is self for t, _ in list(result.failures) + list(result.errors))

    def live_url(self):
        for i, u in enumerate(self.urls):
            if i not in self.down:
                return u
        raise RuntimeError("no cluster node up")

    def start_host(self, name):
        conf = harness.write_config(
            self.tmpdir, self.ns, record_file=self.records, name=name + ".conf",
            broker={"urls": self.urls, "heartbeat": 5},
            host={"name": "%s-%s" % (self.ns, name), "concurrency": 2, "prefetch": 10,
                  "max_crashes": 3, "log_level": "info"},
            retry={"max_attempts": 5, "initial_delay": 1, "jitter": 0.0},
            queues=[{"name": "default", "type": "quorum"}])
        h = harness.Host(conf, self.tmpdir, name=name)
        self.hosts.append(h)
        return h.start()

    def connected_to(self, host, since=0):
        """The URL each worker slot of the host last said it consumes
        from (since byte `since` of its log): {"worker 1": URL, ...}."""
        text = host.log_text()[since:]
        return dict(re.findall(r"\[\d+ (worker \d+)\] worker\.ready: consuming from (\S+)",
                               text))

    def test_node_loss_and_return_loses_nothing(self):
        t_start = time.monotonic()
        ledger = fs.Ledger(self.ns, self.records, self.hosts, url=self.live_url)
        a = self.start_host("a")
        b = self.start_host("b")
        for h in (a, b):
            h.wait_log(r"worker\.ready", 90)
            h.wait_workers(2)
        t_ready = time.monotonic()
        log("hosts consuming %.1f s after start" % (t_ready - t_start))
        first = self.urls[0].rsplit("@", 1)[1]
        for h in (a, b):
            self.assertTrue(all(first in u for u in self.connected_to(h).values()),
                            "hosts should start on the first URL: %s" % self.connected_to(h))

        n = 100000
        jobs = fs.make_jobs("k", n, self.rng, sleep_share=0.2, flaky_share=0.05,
                            sleep_ms=(20, 100))
        for i in range(2):
            jobs.insert(self.rng.randrange(50, 500),
                        fs.Job("k-crash-%d-%s" % (i, self.rng.getrandbits(32)), "diag.crash",
                               {}, "crash"))
        pub = fs.Publisher(self.ns, jobs, ledger, urls=self.urls, rate=100 * SCALE)
        pub.start()

        timings = {}
        harness.wait_for(lambda: ledger.handled_count() >= 300 * SCALE, 60, 0.2,
                         "300 jobs handled before the fault")
        marks = {h.name: h.mark() for h in (a, b)}
        handled0 = ledger.handled_count()
        log("%s c1 after %d confirmed, %d handled" % (FAULT, pub.confirmed, handled0))
        t0 = time.monotonic()
        timings["node_stop_s"] = round(failover(FAULT, "1")[1], 1)
        self.down.add(0)
        t1 = time.monotonic()
        # Every worker process of both hosts consumes again, from c2 or c3
        # (a worker restarted after a crash just before the stop may have
        # said it consumed from c1: only the last word of each counts).
        for h in (a, b):
            harness.wait_for(
                lambda: (lambda c: len(c) == 2 and all(first not in u for u in c.values()))(
                    self.connected_to(h, marks[h.name])), 90, 0.2,
                "both workers of %s consuming from another node" % h.name)
        timings["hosts_back_after_stop_s"] = round(time.monotonic() - t0, 1)
        # ... and jobs keep being handled while c1 is down.
        confirmed_during = pub.confirmed
        handled1 = ledger.handled_count()
        def state():
            try:
                ready = harness.queue_count(self.ns + ".default", url=self.live_url())
            except Exception as e:
                ready = repr(e)
            return "confirmed %d, handled %d, ready in the queue %s, publisher retries %d%s" % (
                pub.confirmed, ledger.handled_count(), ready, pub.retries,
                "" if pub.is_alive() else " (publisher ended: %s)" % pub.error)

        harness.wait_for(lambda: pub.confirmed >= confirmed_during + 200 * SCALE, 90, 0.2,
                         "jobs confirmed while c1 is down")
        try:
            harness.wait_for(lambda: ledger.handled_count() >= handled1 + 200 * SCALE, 90, 0.2,
                             "jobs handled while c1 is down")
        except AssertionError as e:
            raise AssertionError("%s; %s" % (e, state()))
        timings["handling_resumed_after_stop_s"] = round(time.monotonic() - t0, 1)
        # A process that connects while c1 is down declares the topology
        # against a cluster missing a node: a new host, and a worker of
        # host a killed and restarted.
        t2 = time.monotonic()
        c = self.start_host("c")
        mark_a = a.mark()
        a.kill_worker()
        c.wait_log(r"worker\.ready(.|\n)*worker\.ready", 90)
        a.wait_log(r"worker\.ready", 60, since=mark_a)
        timings["new_host_ready_during_outage_s"] = round(time.monotonic() - t2, 1)
        for u in list(self.connected_to(c).values()) + list(
                self.connected_to(a, mark_a).values()):
            self.assertNotIn(first, u)
        time.sleep(3)
        log("starting c1 again (down for %.1f s; %d confirmed, %d handled)" % (
            time.monotonic() - t1, pub.confirmed, ledger.handled_count()))
        timings["node_rejoin_s"] = round(failover("start", "1")[1], 1)
        self.down.discard(0)
        running, _ = failover("running", "2")
        self.assertEqual(len(running.split()), 3, "cluster after the rejoin: %s" % running)
        confirmed_back = pub.confirmed
        harness.wait_for(lambda: pub.confirmed >= confirmed_back + 300 * SCALE, 90, 0.2,
                         "jobs confirmed after c1 rejoined")
        pub.stop_flag.set()
        pub.join(120)
        self.assertFalse(pub.is_alive())
        self.assertIsNone(pub.error, pub.error)
        t_pub = time.monotonic()
        # After a kill, a retry copy that was being dead-lettered from a
        # quorum delay level to its work queue when the leaders moved waits
        # for RabbitMQ's at-least-once dead-letter worker to publish it
        # again: dead_letter_worker_publisher_confirm_timeout, 3 min by
        # default. Late, never lost. A stopped node can strand copies the
        # same way when they were in flight at the moment it stopped (seen:
        # 30 retry copies at 180 s), so both modes wait past that timeout.
        took = ledger.wait_all(420)
        timings["drain_after_publisher_stopped_s"] = None if took is None else round(took, 1)
        time.sleep(2)
        left = {"left_in_queue": harness.queue_count(self.ns + ".default", url=self.live_url()),
                "unroutable": harness.queue_count(self.ns + ".unroutable", url=self.live_url())}
        s = ledger.summary(
            "cluster: %s of the connected node, then rejoin" % FAULT, cluster_up_s=round(
                self.up_s, 1), publisher_retries=pub.retries,
            publisher_reconnects=pub.reconnects, publisher_confirm_timeouts=pub.confirm_timeouts,
            publisher_nacks=pub.nacks,
            publisher_stall_s=[round(x, 1) for x in pub.stalls],
            total_s=round(time.monotonic() - t_start, 1), **timings, **left)
        del t_pub
        self.assertEqual(s["missing"], 0, "jobs lost: %s" % s["missing_ids"][:20])
        for key, count in s["outcomes"].items():
            kind, outcome = key.split(":", 1)
            if kind == "crash":
                self.assertIn(outcome, ("parked:crashed", "handled"), key)
            else:
                self.assertEqual(outcome, "handled", "%d %s" % (count, key))
        self.assertEqual(s["outcomes"].get("crash:parked:crashed"), 2)
        self.assertEqual(left["left_in_queue"], 0)
        self.assertIn(left["unroutable"], (0, None))
        for h in (a, b, c):
            self.assertTrue(h.alive(), "%s died" % h.name)


if __name__ == "__main__":
    fs.on_signals()
    unittest.main(verbosity=2)
