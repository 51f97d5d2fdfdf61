"""The scheduler without warrend: two or three sched_driver processes (the
scheduler of src/warrend/scheduler.c ticked every 100 ms, nothing else)
share one namespace. The fired jobs are read from a probe queue bound to
the jobs exchange, so no worker process is involved.

Covers: one fire per second with no duplicate ids across two processes,
failover after SIGKILL of the leader, max_count counted across a failover,
a cron schedule firing each second, catch-up (only the most recent missed
fire) from a state left by an earlier holder, a first start firing nothing
from the past, and a forked child (as a worker process is) not keeping
the lock alive after its parent died."""

import calendar
import datetime
import json
import os
import signal
import sys
import time

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DRIVER = os.path.join(harness.BUILD_DIR, "tests", "integration", "sched_driver")
WORKER = "diag.record"


def id_time(msg_id):
    """heartbeat@2026-05-01T02:00:00Z -> Unix seconds."""
    name, _, when = msg_id.partition("@")
    return calendar.timegm(datetime.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").timetuple())


class SchedulerDriverTest(harness.WarrenTestCase):
    require_binaries = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(DRIVER, os.X_OK):
            raise RuntimeError("%s is not built" % DRIVER)

    def setUp(self):
        super().setUp()
        self.probe = self.ns + ".probe"
        self.fired = []  # (message_id, properties, body) in arrival order
        harness.declare_entry(self.ns)
        ch = harness.channel(confirm=False)
        try:
            ch.queue_declare(self.probe, durable=True)
            ch.queue_bind(self.probe, self.ns, WORKER)
        finally:
            harness.close(ch)

    def start_driver(self, schedules, name=None, args=()):
        name = name or "driver%d" % (len(self.hosts) + 1)
        conf = self.write_config(name=name + ".conf", schedules=schedules,
                                 host={"name": "%s-%s" % (self.ns, name)})
        h = harness.Host(conf, self.tmpdir, name=name, binary=DRIVER, args=args)
        self.hosts.append(h)
        return h.start()

    def collect(self):
        for method, props, body in harness.get_all(self.probe):
            self.fired.append((props.message_id, props, body))
        return self.fired

    def wait_fires(self, count, timeout):
        return harness.wait_for(lambda: len(self.collect()) >= count and self.fired,
                                timeout, 0.2, "%d fire(s)" % count)

    def ids(self):
        return [m for m, _, _ in self.fired]

    def leader(self, hosts, timeout=15, since=None):
        """The host whose log says it took the lock (after byte since[h])."""
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
        return harness.wait_for(find, timeout, 0.1, "a leader")

    def assert_unique_consecutive(self, ids, name="heartbeat", max_gap=1):
        self.assertEqual(len(ids), len(set(ids)), "duplicate ids: %r" % ids)
        for i in ids:
            self.assertTrue(i.startswith(name + "@"), i)
        times = [id_time(i) for i in ids]
        self.assertEqual(times, sorted(times), "fires out of order: %r" % ids)
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertTrue(all(1 <= g <= max_gap for g in gaps), "gaps %r in %r" % (gaps, ids))
        return gaps

    def read_state(self):
        got = harness.get_all(self.ns + ".scheduler.state", ack=False)
        self.assertEqual(len(got), 1, "the state queue holds exactly one message")
        return json.loads(got[0][2])

    # ---------------------------------------------------------------- tests

    def test_two_processes_fire_once_a_second(self):
        sched = [{"name": "heartbeat", "worker": WORKER, "every": "1s",
                  "args": '{"n": 1}', "priority": 3}]
        a = self.start_driver(sched)
        b = self.start_driver(sched)
        leader = self.leader([a, b])
        other = b if leader is a else a
        other.wait_log(r"scheduler\.standby:", timeout=10)
        self.wait_fires(6, 20)
        self.assert_unique_consecutive(self.ids())
        _, props, body = self.fired[0]
        self.assertEqual(json.loads(body), {"n": 1})
        self.assertEqual(props.type, WORKER)
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(props.priority, 3)
        self.assertEqual(props.content_type, "application/json")
        self.assertEqual(harness.header(props, "x-warren-schedule"), "heartbeat")
        self.assertEqual(props.timestamp, id_time(props.message_id))
        self.assertNotIn("scheduler.leader:", other.log_text())
        # the lock is an exclusive queue: nobody else may declare it
        ch = harness.channel(confirm=False)
        try:
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
                ch.queue_declare(self.ns + ".scheduler.lock", exclusive=True)
            self.assertEqual(cm.exception.reply_code, 405)
        finally:
            harness.close(ch)
        state = self.read_state()
        entry = state["schedules"]["heartbeat"]
        self.assertGreaterEqual(entry["count"], 6)
        self.assertEqual(state["holder"], "%s-%s" % (self.ns, leader.name))
        print("fired %d: %s .. %s" % (len(self.fired), self.fired[0][0], self.fired[-1][0]))

    def test_failover_after_kill(self):
        sched = [{"name": "heartbeat", "worker": WORKER, "every": "1s"}]
        a = self.start_driver(sched)
        b = self.start_driver(sched)
        first = self.leader([a, b])
        second = b if first is a else a
        self.wait_fires(3, 15)
        mark = {second: second.mark()}
        killed_at = time.time()
        first.kill()
        self.leader([second], timeout=15, since=mark)
        took = time.time() - killed_at
        before = len(self.fired)
        self.wait_fires(before + 4, 20)
        gaps = self.assert_unique_consecutive(self.ids(), max_gap=8)
        print("takeover after %.1f s; gaps between fires %r" % (took, gaps))
        self.assertLess(took, 8)

    def test_max_count_across_failover(self):
        sched = [{"name": "heartbeat", "worker": WORKER, "every": "1s", "max_count": 5}]
        a = self.start_driver(sched)
        b = self.start_driver(sched)
        first = self.leader([a, b])
        second = b if first is a else a
        self.wait_fires(2, 15)
        mark = {second: second.mark()}
        first.kill()
        self.leader([second], timeout=15, since=mark)
        self.wait_fires(5, 20)
        second.wait_log(r"schedule\.done:", timeout=10)
        time.sleep(3)
        self.collect()
        self.assertEqual(len(self.ids()), 5, self.ids())
        self.assert_unique_consecutive(self.ids(), max_gap=8)
        self.assertEqual(self.read_state()["schedules"]["heartbeat"]["count"], 5)
        # a new process reads the count and fires nothing more
        second.stop()
        c = self.start_driver(sched)
        self.leader([c])
        time.sleep(3)
        self.collect()
        self.assertEqual(len(self.ids()), 5, self.ids())

    def test_cron_every_second(self):
        self.start_driver([{"name": "tick", "worker": WORKER, "cron": "* * * * * *"}])
        self.wait_fires(4, 15)
        self.assert_unique_consecutive(self.ids(), name="tick")

    def test_catch_up_fires_only_the_most_recent(self):
        # An earlier holder fired at T-30 s and vanished; fires at T-29 ..
        # T were missed. Only the most recent missed one is fired.
        now = int(time.time())
        last = now - 30
        fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        ch = harness.channel()
        try:
            ch.queue_declare(self.ns + ".scheduler.state", durable=True,
                             arguments={"x-max-length": 1, "x-overflow": "drop-head"})
            doc = {"version": 1, "schedules": {
                "heartbeat": {"last": fmt(last), "since": fmt(last - 100), "count": 7},
                "gone": {"last": fmt(last), "since": None, "count": 1}}}
            harness.publish_raw(self.ns, None, doc, exchange="",
                                routing_key=self.ns + ".scheduler.state", ch=ch,
                                properties={"type": None})
        finally:
            harness.close(ch)
        started = time.time()
        h = self.start_driver([{"name": "heartbeat", "worker": WORKER, "every": "1s"}])
        self.wait_fires(3, 15)
        times = [id_time(i) for i in self.ids()]
        self.assertGreaterEqual(times[0], int(started) - 1, "replayed an old fire: %r" % self.ids())
        self.assert_unique_consecutive(self.ids(), max_gap=2)
        h.wait_log(r"most recent of the fires missed since " + fmt(last + 1), timeout=1)
        state = self.read_state()
        self.assertGreaterEqual(state["schedules"]["heartbeat"]["count"], 7 + 3)
        self.assertEqual(state["schedules"]["gone"]["count"], 1, "other entries are kept")

    def test_first_start_fires_nothing_from_the_past(self):
        # A daily schedule at 00:00:00 UTC, first seen now: nothing fires
        # (today's midnight is in the past), and the state remembers since.
        h = self.start_driver([{"name": "daily", "worker": WORKER, "cron": "0 0 0 * * *"},
                               {"name": "heartbeat", "worker": WORKER, "every": "1s"}])
        self.wait_fires(2, 15)
        self.assertTrue(all(i.startswith("heartbeat@") for i in self.ids()), self.ids())
        state = self.read_state()
        self.assertIsNone(state["schedules"]["daily"]["last"])
        self.assertEqual(state["schedules"]["daily"]["count"], 0)
        self.assertTrue(state["schedules"]["daily"]["since"])
        h.stop()

    def test_reload_keeps_the_lock(self):
        sched = [{"name": "heartbeat", "worker": WORKER, "every": "1s"}]
        h = self.start_driver(sched, name="driver")
        self.leader([h])
        self.wait_fires(2, 15)
        harness.write_config(self.tmpdir, self.ns, name="driver.conf", record_file=self.records,
                             host={"name": "%s-driver" % self.ns},
                             schedules=sched + [{"name": "tick", "worker": WORKER,
                                                 "cron": "* * * * * *"}])
        mark = h.mark()
        h.send_signal(signal.SIGHUP)
        h.wait_log(r"driver\.reloaded:", timeout=5, since=mark)
        def tick_fired():
            self.collect()
            return any(i.startswith("tick@") for i in self.ids())
        harness.wait_for(tick_fired, 10, 0.2, "a tick fire")
        self.assertEqual(h.log_text().count("scheduler.leader:"), 1, "the lock was kept")
        beats = [i for i in self.ids() if i.startswith("heartbeat@")]
        self.assert_unique_consecutive(beats, max_gap=2)
        # a config without schedules keeps the lock (runtime schedules may
        # come, see test_fault_runtime_schedule.py) and fires nothing more
        harness.write_config(self.tmpdir, self.ns, name="driver.conf", record_file=self.records,
                             host={"name": "%s-driver" % self.ns})
        mark = h.mark()
        h.send_signal(signal.SIGHUP)
        h.wait_log(r"driver\.reloaded:", timeout=5, since=mark)
        time.sleep(1.5)
        self.collect()
        n = len(self.ids())
        time.sleep(2.5)
        self.collect()
        self.assertEqual(len(self.ids()), n, "fired after its schedules were removed")
        self.assertNotIn("scheduler.released:", h.log_text())
        self.assertEqual(h.log_text().count("scheduler.leader:"), 1, "the lock was kept")

    def test_forked_child_does_not_hold_the_lock(self):
        sched = [{"name": "heartbeat", "worker": WORKER, "every": "1s"}]
        a = self.start_driver(sched, args=["--child"])
        self.leader([a])
        a.wait_log(r"^child \d+", timeout=5)
        b = self.start_driver(sched)
        b.wait_log(r"scheduler\.standby:", timeout=10)
        killed_at = time.time()
        os.kill(a.pid, signal.SIGKILL)  # the parent only: its child lives on
        a.proc.wait(10)
        self.leader([b], timeout=15)
        took = time.time() - killed_at
        print("takeover after %.1f s with the child still running" % took)
        self.assertLess(took, 8)
        a.kill()  # the child (same process group)


if __name__ == "__main__":
    harness.main()
