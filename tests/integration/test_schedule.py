"""Schedules in warrend (SPEC "Scheduling"): two hosts share an
`every = "1s"` schedule and fire it once a second with no duplicate ids;
killing the leader (SIGKILL to its supervisor and workers) hands the lock
to the other host within a few seconds; max_count is counted across a
failover; SIGTERM to the leader hands the lock over at once; a cron
schedule with seconds fires each second.

Each fired job is seen twice: in diag.record's records (it ran through a
host) and in a probe queue the test binds to the jobs exchange for the
same worker, which gets one copy per publish. Uniqueness of fires is
checked on the probe: after a kill, a job the dead host had recorded but
not acked comes back and is recorded again (at-least-once delivery, not a
second fire), so records may repeat an id there."""

import calendar
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WORKER = "diag.record"


def id_time(msg_id):
    """heartbeat@2026-05-01T02:00:00Z -> Unix seconds."""
    _, _, when = msg_id.partition("@")
    return calendar.timegm(datetime.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").timetuple())


class ScheduleTest(harness.WarrenTestCase):

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

    def start(self, schedules, name=None):
        # The work queue and its binding exist before any scheduler fires:
        # the probe queue would otherwise take a fire that no work queue was
        # bound for yet, and the records would miss it.
        name = name or "host%d" % (len(self.hosts) + 1)
        conf = self.write_config(name=name + ".conf", schedules=schedules,
                                 host={"concurrency": 1, "name": "%s-%s" % (self.ns, name)})
        rc, _, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)
        return self.start_host(config=conf, name=name)

    def collect(self):
        for _, props, _ in harness.get_all(self.probe):
            self.fired.append(props.message_id)
        return self.fired

    def wait_fires(self, count, timeout):
        return harness.wait_for(lambda: len(self.collect()) >= count and self.fired,
                                timeout, 0.2, "%d fire(s)" % count)

    def record_ids(self):
        return [r["id"] for r in harness.read_records(self.records)]

    def wait_recorded(self, ids, timeout=20):
        want = set(ids)
        harness.wait_for(lambda: want <= set(self.record_ids()), timeout, 0.2,
                         "records of %d fired job(s)" % len(want))

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

    def assert_unique_consecutive(self, ids, name="heartbeat", max_gap=1):
        self.assertEqual(len(ids), len(set(ids)), "duplicate ids: %r" % ids)
        for i in ids:
            self.assertTrue(i.startswith(name + "@"), i)
        times = sorted(id_time(i) for i in ids)
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertTrue(all(1 <= g <= max_gap for g in gaps), "gaps %r in %r" % (gaps, ids))
        return gaps

    # ---------------------------------------------------------------- tests

    def test_two_hosts_fire_once_a_second(self):
        sched = [{"name": "heartbeat", "worker": WORKER, "every": "1s", "args": '{"n": 1}'}]
        a = self.start(sched)
        b = self.start(sched)
        first = self.leader([a, b])
        other = b if first is a else a
        self.wait_fires(6, 25)
        self.assert_unique_consecutive(self.fired)
        self.wait_recorded(self.fired)
        recs = [r for r in harness.read_records(self.records) if r["id"] in set(self.fired)]
        ids = [r["id"] for r in recs]
        self.assert_unique_consecutive(ids)
        self.assertEqual(recs[0]["args"], {"n": 1})
        self.assertEqual(recs[0]["worker"], WORKER)
        self.assertNotIn("scheduler.leader:", other.log_text())
        print("fired %s .. %s" % (self.fired[0], self.fired[-1]))

    def test_failover_when_the_leader_is_killed(self):
        sched = [{"name": "heartbeat", "worker": WORKER, "every": "1s"}]
        a = self.start(sched)
        b = self.start(sched)
        first = self.leader([a, b])
        second = b if first is a else a
        self.wait_fires(3, 20)
        mark = {second: second.mark()}
        killed_at = time.time()
        first.kill()
        self.leader([second], timeout=20, since=mark)
        took = time.time() - killed_at
        before = len(self.fired)
        self.wait_fires(before + 4, 20)
        gaps = self.assert_unique_consecutive(self.fired, max_gap=8)
        print("takeover after %.1f s; gaps between fires %r" % (took, gaps))
        self.assertLess(took, 8)
        # every fire after the takeover ran on the surviving host
        self.wait_recorded(self.fired[before:])

    def test_stopping_the_leader_hands_over(self):
        sched = [{"name": "heartbeat", "worker": WORKER, "every": "1s"}]
        a = self.start(sched)
        b = self.start(sched)
        first = self.leader([a, b])
        second = b if first is a else a
        self.wait_fires(2, 20)
        mark = {second: second.mark()}
        stopped_at = time.time()
        self.assertEqual(first.stop(), 0)
        self.leader([second], timeout=10, since=mark)
        took = time.time() - stopped_at
        before = len(self.fired)
        self.wait_fires(before + 3, 20)
        self.assert_unique_consecutive(self.fired, max_gap=5)
        print("takeover %.1f s after SIGTERM" % took)
        self.assertIn("scheduler.released:", first.log_text())

    def test_max_count_across_failover(self):
        sched = [{"name": "heartbeat", "worker": WORKER, "every": "1s", "max_count": 5}]
        a = self.start(sched)
        b = self.start(sched)
        first = self.leader([a, b])
        second = b if first is a else a
        self.wait_fires(2, 20)
        mark = {second: second.mark()}
        first.kill()
        self.leader([second], timeout=20, since=mark)
        self.wait_fires(5, 20)
        time.sleep(3)
        self.collect()
        self.assertEqual(len(self.fired), 5, self.fired)
        self.assert_unique_consecutive(self.fired, max_gap=8)
        self.wait_recorded(self.fired[2:])

    def test_cron_fires_each_second(self):
        self.start([{"name": "tick", "worker": WORKER, "cron": "* * * * * *"}])
        self.wait_fires(4, 20)
        self.assert_unique_consecutive(self.fired, name="tick")
        self.wait_recorded(self.fired)
        recorded = [i for i in self.record_ids() if i.startswith("tick@")]
        self.assert_unique_consecutive(recorded, name="tick")


if __name__ == "__main__":
    harness.main()
