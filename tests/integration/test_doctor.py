"""`warren doctor`: a healthy namespace passes (exit 0); each problem it
finds makes it exit 1 and names what is wrong: a queue argument that
drifted, a missing binding or dead-letter exchange of the delay levels, a
time limit not below the consumer timeout, jobs the history waits for that
are not on the broker; an unreachable broker is a finding, usage errors
exit 2. Bindings, delay-queue arguments and unacked counts come from the
management API (WARREN_TEST_MANAGEMENT_URL: scripts/test starts its node
with it); without it those parts are skipped, not failed."""

import base64
import json
import os
import re
import secrets
import time
import unittest
import urllib.parse
import urllib.request

import harness
from test_history import Web, free_port

MGMT = os.environ.get("WARREN_TEST_MANAGEMENT_URL")
LEVELS = 28


def mgmt_call(method, path, body=None):
    """One request to the management API as the test URL's user."""
    url = urllib.parse.urlsplit(harness.TEST_URL)
    auth = base64.b64encode(("%s:%s" % (urllib.parse.unquote(url.username or "guest"),
                                        urllib.parse.unquote(url.password or "guest")))
                            .encode()).decode()
    req = urllib.request.Request(MGMT.rstrip("/") + "/api/" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Basic " + auth,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def password_file_user(test, name):
    """A broker user whose password is only in a password file: returns
    (a URL of the test broker naming the user without a password, the
    file, the password). The user is deleted at the test's end."""
    password = secrets.token_hex(16)
    mgmt_call("PUT", "users/" + urllib.parse.quote(name, safe=""),
              {"password": password, "tags": "management"})
    test.addCleanup(mgmt_call, "DELETE", "users/" + urllib.parse.quote(name, safe=""))
    vhost = urllib.parse.urlsplit(harness.TEST_URL).path[1:] or "/"
    mgmt_call("PUT", "permissions/%s/%s" % (urllib.parse.quote(vhost, safe=""),
                                            urllib.parse.quote(name, safe="")),
              {"configure": ".*", "write": ".*", "read": ".*"})
    path = os.path.join(test.tmpdir, name + ".pw")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    url = re.sub(r"//[^@/]*@", "//%s@" % name, harness.TEST_URL)
    return url, path, password


def level_key(level, bit):
    """The binding key of delay level `level` for bit `bit` (as delay.c)."""
    return "*." * (LEVELS - 1 - level) + bit + ".#"


class TestDoctor(harness.WarrenTestCase):
    def conf(self, name="doctor.conf", mgmt=True, broker=None, **kw):
        broker = dict(broker or {})
        if mgmt and MGMT:
            broker["management_url"] = MGMT
        return self.write_config(name=name, broker=broker, **kw)

    def doctor(self, conf, *args):
        return harness.cli("doctor", "-c", conf, *args, timeout=120)

    def findings(self, conf, *args):
        rc, out, err = self.doctor(conf, "--json", *args)
        self.assertIn(rc, (0, 1), err)
        return rc, json.loads(out)

    def declare(self, conf):
        rc, _, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)

    def start_web(self, conf):
        web = Web(conf, self.tmpdir, name="web",
                  args=["--listen", "127.0.0.1:%d" % free_port()])
        self.hosts.append(web)
        web.start()
        web.wait_log(r"listening on", 15)
        return web

    def publish(self, conf, worker, count, *opts, args='{"n": %d}'):
        lines = "".join((args % i if "%d" in args else args) + "\n" for i in range(count))
        rc, out, err = harness.cli("publish", worker, "-", "-c", conf, *opts, input=lines)
        self.assertEqual(rc, 0, err)
        return out.split()

    def states(self, conf, ids):
        rc, out, err = harness.cli("jobs", "--json", "--limit", "1000", "-c", conf)
        if rc != 0:
            return {}
        return {j["id"]: j["state"] for j in json.loads(out)["jobs"] if j["id"] in ids}

    def wait_states(self, conf, ids, state, timeout=30):
        harness.wait_for(lambda: (lambda s: len(s) == len(ids) and
                                  all(v == state for v in s.values()))(self.states(conf, ids)),
                         timeout, 0.3, "%d jobs %s in the history" % (len(ids), state))

    def fails(self, report, check):
        return [f for f in report["findings"] if f["check"] == check and f["status"] == "FAIL"]

    # ---------------------------------------------------------------- healthy

    def test_healthy_namespace_passes(self):
        conf = self.conf(events={"enabled": True}, web={"db": "hist/warren.db"},
                         workers=[{"name": "diag.sleep", "time_limit": "1m"}])
        self.start_web(conf)
        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", 20)
        ids = self.publish(conf, "diag.noop", 3)
        self.wait_states(conf, ids, "succeeded")
        rc, out, err = self.doctor(conf, "--grace", "1s")
        print("\n" + out)
        self.assertEqual(rc, 0, out + err)
        self.assertNotIn("FAIL", out)
        self.assertRegex(out, r"ok +topology: every exchange and queue exists")
        self.assertRegex(out, r"ok +capabilities: RabbitMQ 3\.\d+\.\d+ announces publisher_confirms")
        self.assertRegex(out, r"ok +consumer-timeout: 1 time limit is below "
                              r"broker.consumer_timeout 30m \(longest: diag.sleep 1m\)")
        self.assertRegex(out, r"ok +balance: diag.noop: published 3 = succeeded 3 \+ dead 0 "
                              r"\+ in flight 0 \+ waiting 0")
        if MGMT:
            self.assertRegex(out, r"ok +bindings: \d+ bindings in place")
            self.assertNotRegex(out, r"(?m)^skip")
        self.assertRegex(out, r"doctor: 0 problems, 0 warnings")
        rc, report = self.findings(conf, "--grace", "1s")
        self.assertEqual(rc, 0)
        self.assertTrue(report["ok"])
        self.assertEqual(report["problems"], 0)
        bal = [f for f in report["findings"] if f.get("worker") == "diag.noop"][0]
        self.assertEqual((bal["published"], bal["succeeded"], bal["waiting"]), (3, 3, 0))

    def test_without_management_bindings_are_skipped(self):
        conf = self.conf(mgmt=False)
        self.declare(conf)
        rc, out, err = self.doctor(conf)
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"skip +bindings: not checked: broker.management_url is not set")
        self.assertRegex(out, r"skip +balance: no history at ")
        down = self.conf(name="down.conf", mgmt=False,
                         broker={"management_url": "http://127.0.0.1:1/"})
        rc, out, err = self.doctor(down)
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"skip +bindings: not checked: management API at "
                              r"http://127.0.0.1:1/: ")

    @unittest.skipUnless(MGMT, "WARREN_TEST_MANAGEMENT_URL is not set (broker without management)")
    def test_management_logs_in_with_password_file(self):
        """broker.password_file gives the management API its password, as
        it does the AMQP connection: with a URL that holds none, the
        bindings and delay queues are read, not skipped."""
        url, pwfile, password = password_file_user(self, self.ns + "-doctor")
        self.assertNotIn(":", urllib.parse.urlsplit(url).netloc.split("@")[0])
        conf = self.conf(name="pwfile.conf", url=url, broker={"password_file": pwfile})
        self.declare(conf)
        rc, out, err = self.doctor(conf)
        print("\n" + out)
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"ok +bindings: \d+ bindings in place")
        self.assertNotRegex(out, r"(?m)^skip +bindings")
        self.assertNotIn(password, out + err)

    # ------------------------------------------------------- drifted argument

    def test_drifted_queue_argument(self):
        conf = self.conf()
        self.declare(conf)
        ch = harness.channel(confirm=False)
        try:
            ch.queue_delete(self.ns + ".default")
            ch.queue_declare(self.ns + ".default", durable=True,
                             arguments={"x-max-priority": 5})
            ch.queue_delete(self.ns + ".default.dead")
            ch.queue_declare(self.ns + ".default.dead", durable=True,
                             arguments={"x-queue-type": "quorum"})
        finally:
            harness.close(ch)
        rc, out, err = self.doctor(conf)
        print("\n" + out)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("FAIL  topology: queue '%s.default': x-max-priority is '5' on the broker "
                      "but '10' in the configuration" % self.ns, out)
        self.assertIn("FAIL  topology: queue '%s.default.dead': x-queue-type is 'quorum' on the "
                      "broker but not set in the configuration" % self.ns, out)
        rc, report = self.findings(conf)
        drift = {f["object"]: f for f in self.fails(report, "topology")}
        d = drift[self.ns + ".default"]
        self.assertEqual((d["argument"], d["expected"], d["actual"]), ("x-max-priority", "10", "5"))
        self.assertFalse(report["ok"])

    def test_missing_objects_are_named(self):
        conf = self.conf()
        rc, out, err = self.doctor(conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("exchange '%s' is missing" % self.ns, out)
        self.assertIn("queue '%s.default' is missing" % self.ns, out)
        self.assertIn("56 of the 56 exchanges and queues of the delay levels", out)

    # ----------------------------------------------- bindings and dead letters

    @unittest.skipUnless(MGMT, "WARREN_TEST_MANAGEMENT_URL is not set (broker without management)")
    def test_missing_dead_letter_binding(self):
        conf = self.conf()
        self.declare(conf)
        rc, out, err = self.doctor(conf)
        self.assertEqual(rc, 0, out + err)
        ns = self.ns
        ch = harness.channel(confirm=False)
        try:
            # Level 1's queue dead-letters into exchange delay.0, whose queue
            # binding takes the jobs that wait there 1 s.
            ch.queue_unbind(ns + ".delay.0", ns + ".delay.0", level_key(0, "1"))
            # Retries and delayed jobs reach the work queue through this one.
            ch.queue_unbind(ns + ".default", ns + ".delay.deliver", "*." * LEVELS + "diag.echo")
            # A level queue that dead-letters to the wrong exchange: the
            # topology check cannot see it (level queues are only looked up).
            ch.queue_delete(ns + ".delay.3")
            ch.queue_declare(ns + ".delay.3", durable=True,
                             arguments={"x-message-ttl": 8000,
                                        "x-dead-letter-exchange": ns + ".delay.1"})
            ch.queue_bind(ns + ".delay.3", ns + ".delay.3", level_key(3, "1"))
        finally:
            harness.close(ch)
        rc, out, err = self.doctor(conf)
        print("\n" + out)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("FAIL  bindings: queue %s.delay.0 is not bound to exchange %s.delay.0 with "
                      "'<27 *>.1.#'" % (ns, ns), out)
        self.assertIn("FAIL  bindings: queue %s.default is not bound to exchange %s.delay.deliver "
                      "with '<28 *>.diag.echo'" % (ns, ns), out)
        self.assertIn("FAIL  bindings: queue %s.delay.3 dead-letters to '%s.delay.1', not to "
                      "'%s.delay.2'" % (ns, ns, ns), out)
        self.assertRegex(out, r"ok +topology")
        rc, report = self.findings(conf)
        missing = {(f["source"], f["destination"], f["routing_key"])
                   for f in self.fails(report, "bindings") if "source" in f}
        self.assertEqual(missing, {(ns + ".delay.0", ns + ".delay.0", level_key(0, "1")),
                                   (ns + ".delay.deliver", ns + ".default",
                                    "*." * LEVELS + "diag.echo")})

    @unittest.skipUnless(MGMT, "WARREN_TEST_MANAGEMENT_URL is not set (broker without management)")
    def test_worker_bound_to_two_queues(self):
        queues = [{"name": "default"}, {"name": "other"}]
        old = self.conf(name="old.conf", queues=queues)
        self.declare(old)
        moved = self.conf(queues=queues, workers=[{"name": "diag.echo", "queue": "other"}])
        self.declare(moved)
        rc, out, err = self.doctor(moved)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out, r"FAIL +bindings: jobs for diag.echo go to both %s\.\w+ and "
                              r"%s\.\w+, so each runs twice" % (self.ns, self.ns))

    # ------------------------------------------------------ consumer timeout

    def test_time_limit_above_consumer_timeout(self):
        conf = self.conf(broker={"consumer_timeout": "5m"},
                         workers=[{"name": "diag.sleep", "time_limit": "10m"},
                                  {"name": "diag.echo", "time_limit": "1m"}])
        self.declare(conf)
        rc, out, err = self.doctor(conf)
        print("\n" + out)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out, r"FAIL +consumer-timeout: %s:\d+: worker diag.sleep has time_limit "
                              r"10m, not below broker.consumer_timeout 5m" % conf)
        self.assertNotIn("worker diag.echo", out)
        rc, report = self.findings(conf)
        f = self.fails(report, "consumer-timeout")
        self.assertEqual([(x["worker"], x["time_limit_ms"], x["consumer_timeout_ms"]) for x in f],
                         [("diag.sleep", 600000, 300000)])
        ok = self.conf(name="ok.conf", broker={"consumer_timeout": "30m"},
                       workers=[{"name": "diag.sleep", "time_limit": "10m"}])
        rc, out, err = self.doctor(ok)
        self.assertEqual(rc, 0, out + err)

    # --------------------------------------------------------------- balance

    def test_jobs_that_do_not_balance(self):
        conf = self.conf(events={"enabled": True}, web={"db": "hist/warren.db"})
        self.declare(conf)
        self.start_web(conf)
        ids = self.publish(conf, "diag.echo", 3)
        self.wait_states(conf, ids, "queued")
        time.sleep(1.2)
        # Waiting in their queue: they balance.
        rc, out, err = self.doctor(conf, "--grace", "1s")
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"ok +balance: diag.echo: published 3 = succeeded 0 \+ dead 0 \+ "
                              r"in flight 0 \+ waiting 3")
        ch = harness.channel(confirm=False)
        try:
            self.assertEqual(ch.queue_purge(self.ns + ".default").method.message_count, 3)
        finally:
            harness.close(ch)
        # Gone from the broker, but within the grace: not judged yet.
        rc, out, err = self.doctor(conf)
        self.assertEqual(rc, 0, out + err)
        time.sleep(1.2)
        rc, out, err = self.doctor(conf, "--grace", "1s")
        print("\n" + out)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("FAIL  balance: diag.echo: published 3 = succeeded 0 + dead 0 + in flight 0 "
                      "+ waiting 3; but 3 had no event for 1s, more than %s.default (0) and the "
                      "delay levels and unroutable (0) hold" % self.ns, out)
        self.assertIn("FAIL  balance: 3 jobs the history waits for (no event for 1s) are not on "
                      "the broker: %s.default holds 0 (ready 0, unacked 0) of the 3 its workers "
                      "wait for (diag.echo 3)" % self.ns, out)
        rc, report = self.findings(conf, "--grace", "1s")
        self.assertEqual(rc, 1)
        f = [x for x in self.fails(report, "balance") if x.get("worker") == "diag.echo"][0]
        self.assertEqual((f["published"], f["waiting"], f["held"], f["queue"]),
                         (3, 3, 3, "default"))
        self.assertEqual([x["missing"] for x in self.fails(report, "balance") if "missing" in x],
                         [3])

    def test_backlog_drained_while_checking_is_not_flagged(self):
        """Jobs older than the grace move from their queue to a host, and on
        a retry through the delay levels, while doctor reads the broker and
        the history: none may be counted as missing."""
        retry = {"max_attempts": 3, "initial_delay": 1, "multiplier": 1.0, "jitter": 0.0}
        conf = self.conf(events={"enabled": True}, web={"db": "hist/warren.db"}, retry=retry,
                         host={"concurrency": 2, "prefetch": 10})
        self.declare(conf)
        self.start_web(conf)
        ids = self.publish(conf, "diag.sleep", 200, args='{"ms": 50}')
        ids += self.publish(conf, "diag.fail", 30, args='{"times": 1}')
        self.wait_states(conf, ids, "queued")
        time.sleep(1.5)
        self.start_host(config=conf)
        runs, deadline = 0, time.monotonic() + 120
        while True:
            states = self.states(conf, ids)
            done = sum(1 for v in states.values() if v == "succeeded")
            rc, out, err = self.doctor(conf, "--grace", "1s")
            runs += 1
            self.assertEqual(rc, 0, "run %d, %d of %d done:\n%s%s" % (runs, done, len(ids), out,
                                                                       err))
            if done == len(ids) or time.monotonic() > deadline:
                break
        self.assertEqual(done, len(ids))
        print("doctor ran %d times while %d jobs drained" % (runs, len(ids)))
        self.assertGreaterEqual(runs, 3)

    def test_history_behind_is_not_judged(self):
        conf = self.conf(events={"enabled": True}, web={"db": "hist/warren.db"})
        self.declare(conf)
        web = self.start_web(conf)
        ids = self.publish(conf, "diag.echo", 2)
        self.wait_states(conf, ids, "queued")
        web.stop()
        self.publish(conf, "diag.echo", 2)  # their events wait in <ns>.history
        ch = harness.channel(confirm=False)
        try:
            ch.queue_purge(self.ns + ".default")
        finally:
            harness.close(ch)
        time.sleep(1.2)
        rc, out, err = self.doctor(conf, "--grace", "1s")
        self.assertEqual(rc, 0, out + err)
        # 2 events, or 4 when web stopped between its commit and its ack.
        m = re.search(r"WARN +balance: not compared: the history is behind, (\d+) events wait "
                      r"in %s.history \(is warren web running\?\)" % self.ns, out)
        self.assertTrue(m, out)
        self.assertGreaterEqual(int(m.group(1)), 2)

    # ------------------------------------------------------- errors and usage

    def test_unreachable_broker_is_a_finding(self):
        conf = self.conf(mgmt=False, url="amqp://guest:guest@127.0.0.1:1/")
        rc, out, err = self.doctor(conf)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out, r"FAIL +broker: .*127\.0\.0\.1:1")
        self.assertRegex(out, r"ok +consumer-timeout")

    def test_usage_errors(self):
        conf = self.conf(mgmt=False)
        for args in (["--bogus"], ["--grace", "soon"], ["--grace"], ["-c"], ["extra"]):
            rc, out, err = harness.cli("doctor", *args)
            self.assertEqual(rc, 2, args)
            self.assertIn("usage: warren doctor", err, args)
        bad = os.path.join(self.tmpdir, "bad.conf")
        with open(bad, "w") as f:
            f.write('namespace = "%s";\nhost = { concurrency = "many"; };\n' % self.ns)
        rc, out, err = harness.cli("doctor", "-c", bad)
        self.assertEqual(rc, 2)
        self.assertIn("%s:2:" % bad, err)
        rc, out, err = harness.cli("doctor", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: warren doctor", out)
        rc, out, err = harness.cli("doctor", "--url", "amqp://h/?x=1", "-c", conf)
        self.assertEqual(rc, 2, out + err)


if __name__ == "__main__":
    harness.main()
