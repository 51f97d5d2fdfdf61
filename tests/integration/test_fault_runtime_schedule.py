"""Runtime schedules (SPEC "Job controls", issue 11 item 4): `warren
schedule add|list|pause|resume|remove` stores schedules in the broker
(<ns>.scheduler.runtime) and the host holding the scheduler lock fires
them, with hosts whose config has no `schedules` at all.

- --every 1s --max-count 5 fires five times across a failover (the leader
  is killed after two fires) and stops; ids unique; list shows count 5.
- pause stops fires, resume restarts them, remove stops them.
- a runtime schedule survives a broker restart and a restart of every host.
- names from the config are refused; usage errors exit 2.
It restarts the broker, hence test_fault_* (run serially)."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WORKER = "diag.record"


class RuntimeScheduleTest(harness.WarrenTestCase):

    def setUp(self):
        super().setUp()
        self.probe = self.ns + ".probe"
        self.fired = []
        harness.declare_entry(self.ns)
        ch = harness.channel(confirm=False)
        try:
            ch.queue_declare(self.probe, durable=True)
            ch.queue_bind(self.probe, self.ns, WORKER)
        finally:
            harness.close(ch)
        self.conf = self.write_config(name="cli.conf")
        # the work queue is bound before anything fires (see test_schedule.py)
        rc, _, err = harness.cli("topology", "-c", self.conf)
        self.assertEqual(rc, 0, err)

    def sched(self, *args):
        return harness.cli("schedule", *args, "-c", self.conf)

    def ok(self, *args):
        rc, out, err = self.sched(*args)
        self.assertEqual(rc, 0, "schedule %r: %s%s" % (args, out, err))
        return out

    def listing(self):
        rows = json.loads(self.ok("list", "--json"))
        return {r["name"]: r for r in rows}

    def start(self, name=None):
        return self.start_host(name=name, host={"concurrency": 1})

    def collect(self):
        for _, props, _ in harness.get_all(self.probe):
            self.fired.append(props.message_id)
        return self.fired

    def wait_fires(self, count, timeout):
        return harness.wait_for(lambda: len(self.collect()) >= count and self.fired,
                                timeout, 0.2, "%d fire(s)" % count)

    def leader(self, hosts, timeout=20, since=None):
        def find():
            for h in hosts:
                if not h.alive():
                    continue
                try:
                    h.wait_log(r"scheduler\.leader:", timeout=0.01,
                               since=(since or {}).get(h, 0))
                    return h
                except AssertionError:
                    pass
            return None
        return harness.wait_for(find, timeout, 0.1, "a host holding the scheduler lock")

    # ---------------------------------------------------------------- tests

    def test_max_count_across_failover(self):
        a = self.start()
        b = self.start()
        first = self.leader([a, b])
        second = b if first is a else a
        self.ok("add", "tick", WORKER, "--every", "1s", "--max-count", "5",
                "--args", '{"n": 7}')
        added = time.time()
        self.wait_fires(1, 5)
        self.assertLess(time.time() - added, 3.5, "first fire too late")
        self.wait_fires(2, 10)
        mark = {second: second.mark()}
        first.kill()
        self.leader([second], timeout=20, since=mark)
        self.wait_fires(5, 30)
        time.sleep(4)
        self.collect()
        self.assertEqual(len(self.fired), 5, self.fired)
        self.assertEqual(len(set(self.fired)), 5, self.fired)
        self.assertTrue(all(i.startswith("tick@") for i in self.fired), self.fired)
        row = harness.wait_for(lambda: (lambda r: r if r["count"] == 5 else None)(
            self.listing()["tick"]), 10, 0.3, "count 5 in the list")
        self.assertEqual(row["status"], "finished")
        self.assertEqual(row["source"], "runtime")
        self.assertEqual(row["max_count"], 5)
        self.assertIsNone(row["next_fire"])
        recs = [r for r in harness.read_records(self.records) if r["id"] in set(self.fired)]
        self.assertTrue(recs and recs[0]["args"] == {"n": 7}, recs[:1])

    def test_pause_resume_remove(self):
        a = self.start()
        self.leader([a])
        self.ok("add", "beat", WORKER, "--every", "1s")
        self.wait_fires(2, 10)
        self.ok("pause", "beat")
        time.sleep(2)  # a fire may be in flight when the pause is read
        n = len(self.collect())
        time.sleep(3)
        self.assertEqual(len(self.collect()), n, "fired while paused")
        self.assertEqual(self.listing()["beat"]["status"], "paused")
        self.ok("resume", "beat")
        self.wait_fires(n + 2, 10)
        self.ok("remove", "beat")
        time.sleep(2)
        n = len(self.collect())
        time.sleep(3)
        self.assertEqual(len(self.collect()), n, "fired after remove")
        self.assertNotIn("beat", self.listing())
        self.assertEqual(len(self.fired), len(set(self.fired)), self.fired)
        rc, _, err = self.sched("remove", "beat")
        self.assertEqual(rc, 1, err)
        rc, _, err = self.sched("pause", "nothing")
        self.assertEqual(rc, 1, err)

    def test_survives_broker_and_host_restarts(self):
        self.ok("add", "keep", WORKER, "--every", "1s", "--priority", "2")
        # listed with no host running
        self.assertEqual(self.listing()["keep"]["status"], "active")
        a = self.start()
        self.wait_fires(2, 10)
        a.stop()
        harness.broker_command("restart")
        self.assertIn("keep", self.listing())
        self.fired = []
        harness.get_all(self.probe)
        b = self.start()
        self.wait_fires(2, 30)
        self.assertTrue(all(i.startswith("keep@") for i in self.fired), self.fired)
        self.assertGreaterEqual(self.listing()["keep"]["count"], 4)
        b.stop()

    def test_config_names_and_usage_errors(self):
        conf = self.write_config(name="sched.conf", schedules=[
            {"name": "nightly", "worker": WORKER, "cron": "0 0 2 * * *"}])
        for args in (("add", "nightly", WORKER, "--every", "1s"), ("pause", "nightly"),
                     ("resume", "nightly"), ("remove", "nightly")):
            rc, _, err = harness.cli("schedule", *args, "-c", conf)
            self.assertEqual(rc, 2, (args, err))
            self.assertIn("schedule 'nightly' comes from the config file", err)
        rc, out, err = harness.cli("schedule", "list", "--json", "-c", conf)
        self.assertEqual(rc, 0, err)
        rows = {r["name"]: r for r in json.loads(out)}
        self.assertEqual(rows["nightly"]["source"], "config")
        self.assertEqual(rows["nightly"]["cron"], "0 0 2 * * *")
        for args in (("add", "x", WORKER),
                     ("add", "x", WORKER, "--every", "1s", "--cron", "* * * * *"),
                     ("add", "x", WORKER, "--every", "500ms"),
                     ("add", "x", WORKER, "--cron", "0 61 * * *"),
                     ("add", "x y", WORKER, "--every", "1s"),
                     ("add", "x", "bad worker!", "--every", "1s"),
                     ("add", "x", WORKER, "--every", "1s", "--args", "[1]"),
                     ("add", "x", WORKER, "--every", "1s", "--priority", "10"),
                     ("add", "x"), ("frobnicate",), ("pause",), ("list", "extra")):
            rc, _, err = self.sched(*args)
            self.assertEqual(rc, 2, (args, err))
        rc, _, err = self.sched("add", "x", WORKER, "--cron", "0 61 * * *")
        self.assertIn("hour field '61'", err)


if __name__ == "__main__":
    harness.main()
