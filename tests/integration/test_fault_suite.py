"""The fault suite: publish jobs with known ids, apply a fault, then prove
BY COUNTING that every confirmed id was handled (a line in diag.record's
file, or a `job.succeeded` log line for diag.fail) or parked in
<ns>.default.dead with a reason. Duplicates are allowed (at-least-once)
but counted and printed; a missing id fails the test.

    (a) broker restart mid-stream, 2 hosts x 2 workers, a publisher that
        keeps publishing through the restart (pika, confirms, retries with
        the same message_id)
    (b) kill -9 of random worker processes every ~0.5 s during a drain
    (c) crashing handlers (diag.crash) among good jobs: each parked as
        `crashed`, every good job handled
    (d) hanging handlers over their time_limit among good jobs: each
        retried, then parked as `max_attempts` ("time limit 1s exceeded")
    (e) supervisor SIGTERM under load, then a new host: nothing lost
    (f) SIGKILL of a whole host under load; another host finishes
    (g) SIGKILL of the supervisor alone: its workers finish and leave
    (h) every connection closed by the broker (rabbitmqctl
        close_all_connections) a few times under load
    (i) a worker frozen (SIGSTOP) past two heartbeats, then thawed
    (j) `warren publish -` while the broker closes its connection

Every test prints one `fault-summary: {json}` line (published, handled,
parked by reason, duplicates, timings). WARREN_TEST_LONG=1 multiplies the
job counts by 10 and the fault counts by 3. Broker restarts and rabbitmqctl
act on the node named by WARREN_TEST_BROKER_NAME (scripts/test's `test`
node under ctest). WARREN_FAULT_SEED replays a run's random choices (each
test prints its seed); WARREN_FAULT_REPORT=FILE appends every summary to
FILE. Run alone with:

    eval "$(scripts/broker env NAME)"; /usr/bin/python3 tests/integration/test_fault_suite.py
"""

import collections
import json
import os
import random
import re
import signal
import sys
import subprocess
import threading
import time
import uuid

import pika

import harness
from harness import header

LONG = harness.LONG
JOBS = 10 if LONG else 1          # job counts are multiplied by this
FAULTS = 3 if LONG else 1         # and fault counts by this
SUCCEEDED_RX = re.compile(rb"job\.succeeded: (\S+) (\S+) succeeded \(attempt (\d+)")
CRASHED_RX = re.compile(rb"job\.crashed: worker \d+ died running job (\S+) ")


# Hosts of the tests running now, and what else to undo, for a test run
# stopped by SIGTERM or Ctrl-C: unittest would leave them running (hosts
# start in their own session, cluster nodes are daemons).
LIVE_HOSTS = []
AT_EXIT = []


def stop_everything(signum, frame):
    for hosts in list(LIVE_HOSTS):
        for h in list(hosts):
            try:
                h.kill()
            except Exception:
                pass
    for fn in AT_EXIT:
        try:
            fn()
        except Exception:
            pass
    os._exit(128 + signum)


def on_signals():
    """Installs stop_everything for SIGTERM and SIGINT (main thread)."""
    signal.signal(signal.SIGTERM, stop_everything)
    signal.signal(signal.SIGINT, stop_everything)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------- jobs

class Job:
    __slots__ = ("id", "worker", "args", "kind")

    def __init__(self, job_id, worker, args, kind):
        self.id, self.worker, self.args, self.kind = job_id, worker, args, kind


def make_jobs(label, n, rng, sleep_share=0.1, flaky_share=0.0, sleep_ms=(50, 300)):
    """n jobs with known ids: diag.record {"n": i}, a share with a sleep,
    a share of diag.fail {"times": 1} (fails once, then succeeds)."""
    jobs = []
    for i in range(n):
        job_id = "%s-%06d-%s" % (label, i, uuid.uuid4().hex[:8])
        r = rng.random()
        if r < flaky_share:
            jobs.append(Job(job_id, "diag.fail", {"times": 1}, "flaky"))
        elif r < flaky_share + sleep_share:
            jobs.append(Job(job_id, "diag.record",
                            {"n": i, "sleep_ms": rng.randint(*sleep_ms)}, "good"))
        else:
            jobs.append(Job(job_id, "diag.record", {"n": i}, "good"))
    return jobs


def job_properties(job):
    return pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                type=job.worker, message_id=job.id,
                                timestamp=int(time.time()))


# -------------------------------------------------------------- ledger

class _Tail:
    """New complete lines of a file that only grows."""

    def __init__(self, path):
        self.path, self.offset, self.rest = path, 0, b""

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        parts = (self.rest + data).split(b"\n")
        self.rest = parts.pop()
        return parts


class Ledger:
    """What was published (confirmed ids and what each should end as) and
    what became of it: runs counted from diag.record's file and from the
    hosts' `job.succeeded` lines (diag.fail records nothing), dead letters
    taken from <ns>.default.dead (with reason, error and attempts)."""

    def __init__(self, ns, records, hosts, url=None):
        self.ns = ns
        self.hosts = hosts                # the test's Host list (it may grow)
        self.url = url                    # a str, or a callable giving a live node's URL
        self.kinds = {}                   # confirmed id -> "good" | "flaky" | "crash" | "hang"
        self.unconfirmed = set()          # ids sent whose confirm never came
        self.runs = collections.Counter()  # id -> completed runs
        self.run_attempts = collections.defaultdict(list)
        self.dead = collections.defaultdict(list)  # id -> [(reason, error, attempts)]
        self.crashes = collections.Counter()       # id -> job.crashed lines
        self._records = _Tail(records)
        self._logs = {}
        self._lock = threading.Lock()

    def _url(self):
        return self.url() if callable(self.url) else self.url

    def confirmed(self, job):
        with self._lock:
            self.kinds[job.id] = job.kind
            self.unconfirmed.discard(job.id)

    def sent_unconfirmed(self, job):
        with self._lock:
            if job.id not in self.kinds:
                self.unconfirmed.add(job.id)

    def published(self):
        with self._lock:
            return dict(self.kinds)

    def refresh(self):
        for line in self._records.lines():
            if line.strip():
                rec = json.loads(line)
                self.runs[rec["id"]] += 1
                self.run_attempts[rec["id"]].append(rec.get("attempt"))
        for h in list(self.hosts):
            tail = self._logs.setdefault(h.log_path, _Tail(h.log_path))
            for line in tail.lines():
                m = SUCCEEDED_RX.search(line)
                if m and m.group(1) == b"diag.fail":
                    job_id = m.group(2).decode()
                    self.runs[job_id] += 1
                    self.run_attempts[job_id].append(int(m.group(3)))
                    continue
                m = CRASHED_RX.search(line)
                if m:
                    self.crashes[m.group(1).decode()] += 1
        try:
            got = harness.get_all(self.ns + ".default.dead", url=self._url())
        except Exception as e:   # a node going down mid-read: next time
            log("ledger: could not read dead letters: %s" % e)
            got = []
        for _, props, _ in got:
            self.dead[props.message_id].append((header(props, "x-warren-dead-reason"),
                                                header(props, "x-warren-error"),
                                                header(props, "x-warren-attempts")))

    def missing(self):
        self.refresh()
        return sorted(i for i in self.published() if not self.runs[i] and not self.dead.get(i))

    def handled_count(self):
        self.refresh()
        return sum(1 for i in self.published() if self.runs[i])

    def wait_all(self, timeout, what="all jobs", tick=None):
        """Waits until every confirmed id is handled or parked; returns the
        seconds it took, or None at the timeout."""
        t0 = time.monotonic()
        shown = t0
        while True:
            if tick:
                tick()
            miss = self.missing()
            if not miss:
                return time.monotonic() - t0
            now = time.monotonic()
            if now - t0 >= timeout:
                return None
            if now - shown >= 15:
                shown = now
                log("waiting for %s: %d of %d accounted for" % (
                    what, len(self.published()) - len(miss), len(self.published())))
            time.sleep(0.5)

    def summary(self, label, **extra):
        """Counts everything, prints it (a readable block and one
        `fault-summary: {json}` line) and returns it as a dict."""
        self.refresh()
        pub = self.published()
        by_kind = collections.Counter(pub.values())
        outcome = collections.Counter()
        parked = collections.Counter()
        duplicates = 0
        dup_ids = []
        missing = []
        for job_id, kind in pub.items():
            runs, dead = self.runs[job_id], self.dead.get(job_id, [])
            if runs:
                outcome[kind + ":handled"] += 1
            for reason, _, _ in dead:
                parked[reason or "(no reason)"] += 1
            if dead:
                outcome["%s:parked:%s" % (kind, dead[0][0])] += 1
            if not runs and not dead:
                missing.append(job_id)
            extra_runs = runs + len(dead) - 1
            if extra_runs > 0:
                duplicates += extra_runs
                dup_ids.append(job_id)
        strays = sorted(i for i in self.runs if i not in pub)
        s = {
            "test": label,
            "published": len(pub),
            "kinds": dict(by_kind),
            "handled": sum(1 for i in pub if self.runs[i]),
            "parked": dict(parked),
            "outcomes": dict(outcome),
            "duplicates": duplicates,
            "duplicate_ids": len(dup_ids),
            "missing": len(missing),
            "unconfirmed_sent": len(self.unconfirmed),
            "ran_unconfirmed": len(strays),
        }
        s.update(extra)
        sys.stdout.write(
            "\n=== %s\n  published (confirmed): %d %s\n  handled: %d   parked: %s\n"
            "  duplicates (runs beyond the first, at-least-once): %d over %d ids%s\n"
            "  missing: %d%s\n  %s\n" % (
                label, s["published"], dict(by_kind), s["handled"], dict(parked) or "none",
                duplicates, len(dup_ids),
                (" e.g. %s attempts %s" % (dup_ids[0], self.run_attempts.get(dup_ids[0])))
                if dup_ids else "",
                len(missing), (" e.g. %s" % missing[:5]) if missing else "",
                " ".join("%s=%s" % (k, v) for k, v in extra.items())))
        print("fault-summary: " + json.dumps(s, sort_keys=True), flush=True)
        report = os.environ.get("WARREN_FAULT_REPORT")
        if report:
            with open(report, "a") as f:
                f.write(json.dumps(s, sort_keys=True) + "\n")
        s["missing_ids"] = missing
        return s


# ----------------------------------------------------------- publisher

RETRYABLE = (pika.exceptions.AMQPError, OSError, AttributeError, AssertionError)


class Publisher(threading.Thread):
    """Publishes jobs with publisher confirms, surviving broker restarts
    and node loss: on any connection error it reconnects (rotating through
    `urls`) and publishes the same job again with the same message_id (a
    publish whose confirm was lost may so reach the queue twice: a
    duplicate, counted). Only confirmed jobs enter the ledger. `rate`
    paces publishing (jobs per second); `pause` (an Event) holds it."""

    def __init__(self, ns, jobs, ledger, urls=None, rate=None, give_up_s=240):
        super().__init__(daemon=True)
        self.ns, self.jobs, self.ledger = ns, jobs, ledger
        self.urls = list(urls or [harness.TEST_URL])
        self.rate = rate
        self.give_up_s = give_up_s
        self.url_index = 0
        self.conn = self.ch = None
        self.confirmed = 0
        self.retries = 0          # publishes repeated after an error
        self.reconnects = 0
        self.stalls = []          # seconds between an error and the next confirm
        self.error = None         # set when it gave up
        self.confirm_timeout_s = 10
        self.last_error = None
        self.nacks = 0
        self.confirm_timeouts = 0 # publishes whose confirm did not come in time
        self.stop_flag = threading.Event()

    def _params(self):
        p = harness.connection_params(self.urls[self.url_index % len(self.urls)])
        p.connection_attempts = 1
        p.socket_timeout = 5
        p.stack_timeout = 10
        return p

    def _close(self):
        try:
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        except Exception:
            pass
        self.conn = self.ch = None

    def _connect(self):
        self.conn = pika.BlockingConnection(self._params())
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def url(self):
        return self.urls[self.url_index % len(self.urls)]

    def run(self):
        t0 = time.monotonic()
        try:
            for k, job in enumerate(self.jobs):
                if self.stop_flag.is_set():
                    break
                self._publish(job)
                if self.error:
                    break
                if self.rate:
                    ahead = t0 + (k + 1) / self.rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
        finally:
            self._close()

    def _publish_with_timeout(self, job, body, props):
        """basic_publish, waiting for the confirm at most confirm_timeout_s:
        a confirm can be lost with a node (a quorum queue whose leader was
        killed), and pika would wait for it forever. The watchdog closes
        the connection from the pika thread, which makes basic_publish
        raise; the job is then published again (same id)."""
        conn = self.conn
        fired = []

        def expire():
            fired.append(True)
            try:
                conn.add_callback_threadsafe(lambda: conn.close() if conn.is_open else None)
            except Exception:
                pass

        timer = threading.Timer(self.confirm_timeout_s, expire)
        timer.daemon = True
        timer.start()
        try:
            self.ch.basic_publish(self.ns, job.worker, body, props)
        except Exception as e:
            if fired:
                self.confirm_timeouts += 1
                raise pika.exceptions.AMQPConnectionError(
                    "no confirm within %.0f s: %r" % (self.confirm_timeout_s, e))
            raise
        finally:
            timer.cancel()
        if fired:   # the confirm came just as the watchdog fired
            self._close()

    def _publish(self, job):
        body = json.dumps(job.args).encode()
        props = job_properties(job)
        first_error = None
        backoff = 0.1
        while not self.stop_flag.is_set():
            try:
                if self.ch is None:
                    self._connect()
                    if first_error is not None:
                        self.reconnects += 1
                self._publish_with_timeout(job, body, props)
                self.ledger.confirmed(job)
                self.confirmed += 1
                if first_error is not None:
                    self.stalls.append(time.monotonic() - first_error)
                return
            except RETRYABLE as e:
                now = time.monotonic()
                what = "%s: %s" % (type(e).__name__, str(e)[:160] or "-")
                if first_error is None or what != self.last_error:
                    log("publisher: %s; retrying %s with the same id" % (what, job.id))
                self.last_error = what
                if first_error is None:
                    first_error = now
                self.ledger.sent_unconfirmed(job)
                self.retries += 1
                if now - first_error > self.give_up_s:
                    self.error = "gave up on %s after %.0f s: %r" % (job.id, now - first_error, e)
                    return
                # A nack too: a channel that published to a quorum queue
                # whose leader died may go on nacking (seen with RabbitMQ
                # 3.10 after a node was killed); a new connection does not.
                self.nacks += isinstance(e, pika.exceptions.NackError)
                self._close()
                self.url_index += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 1.0)


def broker_ctl(*args, timeout=60):
    """rabbitmqctl ARGS on the test node (the one broker_command acts on)."""
    name = os.environ.get("WARREN_TEST_BROKER_NAME", "test")
    r = subprocess.run([harness.BROKER_SCRIPT, "ctl", name] + list(args), capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("rabbitmqctl %s on %s failed: %s" % (" ".join(args), name,
                                                               r.stderr.strip()))
    return r.stdout


def publish_all(ns, jobs, ledger, url=None):
    """Publishes jobs on one confirmed channel (no fault expected)."""
    ch = harness.channel(url)
    try:
        for job in jobs:
            ch.basic_publish(ns, job.worker, json.dumps(job.args).encode(), job_properties(job))
            ledger.confirmed(job)
    finally:
        harness.close(ch)


# ---------------------------------------------------------------- tests

class FaultCase(harness.WarrenTestCase):
    """Starts hosts with the suite's defaults and checks a ledger."""

    seed = None

    def setUp(self):
        super().setUp()
        seed = int(os.environ.get("WARREN_FAULT_SEED") or random.randrange(1 << 30))
        self.rng = random.Random(seed)
        log("%s: namespace %s, seed %d%s" % (self.id(), self.ns, seed,
                                             " (LONG)" if LONG else ""))
        self.ledger = Ledger(self.ns, self.records, self.hosts)
        LIVE_HOSTS.append(self.hosts)
        self.addCleanup(LIVE_HOSTS.remove, self.hosts)

    def host(self, name, concurrency=2, prefetch=10, **kw):
        host = dict(kw.pop("host", {}))
        host.setdefault("concurrency", concurrency)
        host.setdefault("prefetch", prefetch)
        host.setdefault("max_crashes", 3)
        host.setdefault("log_level", "info")
        kw.setdefault("retry", {"max_attempts": 5, "initial_delay": 1, "jitter": 0.0})
        return self.start_host(name=name, host=host, **kw)

    def ready(self, *hosts, timeout=30):
        for h in hosts:
            h.wait_log(r"worker\.ready", timeout)

    def left_over(self):
        return {"left_in_queue": harness.queue_count(self.ns + ".default"),
                "unroutable": harness.queue_count(self.ns + ".unroutable")}

    def check(self, s, expect=None, allow_parked=()):
        """Fails on a missing id; `expect` maps a kind to the outcome every
        job of that kind must have ("handled" or "parked:<reason>");
        `allow_parked` lists reasons a good job may also end with."""
        self.assertEqual(s["missing"], 0, "jobs lost: %s" % s["missing_ids"][:20])
        expect = expect or {}
        for key, n in s["outcomes"].items():
            kind, outcome = key.split(":", 1)
            want = expect.get(kind, "handled")
            if outcome == want:
                continue
            if outcome.startswith("parked:") and outcome[7:] in allow_parked:
                continue
            if outcome == "handled" and want.startswith("parked:"):
                # a job may run, lose its ack and then be parked: allowed,
                # counted as a duplicate, but only beside the parking
                continue
            self.fail("%d %s job(s) ended %s, expected %s" % (n, kind, outcome, want))
        for kind, want in expect.items():
            if want.startswith("parked:"):
                self.assertEqual(s["outcomes"].get("%s:%s" % (kind, want), 0),
                                 s["kinds"].get(kind, 0), "every %s job %s" % (kind, want))
        for k in ("left_in_queue", "unroutable"):
            if k in s:
                self.assertEqual(s[k], 0, "%s: %s" % (k, s[k]))

    # ----------------------------------------------------------- (a)

    def test_a_broker_restart_mid_stream(self):
        n = 3000 * JOBS
        restarts = FAULTS
        a = self.host("a")
        b = self.host("b")
        self.ready(a, b)
        jobs = make_jobs("a", n, self.rng, sleep_share=0.3, flaky_share=0.05,
                         sleep_ms=(20, 100))
        pub = Publisher(self.ns, jobs, self.ledger, rate=300)
        t0 = time.monotonic()
        pub.start()
        outages = []
        for r in range(restarts):
            target = n * (r + 1) // (restarts + 2)
            harness.wait_for(lambda: pub.confirmed >= target or not pub.is_alive(), 300,
                             0.2, "%d confirmed publishes" % target)
            before = self.ledger.handled_count()
            marks = [h.mark() for h in (a, b)]
            log("restarting the broker (%d/%d) after %d confirmed, %d handled" % (
                r + 1, restarts, pub.confirmed, before))
            t1 = time.monotonic()
            harness.broker_command("restart")
            t2 = time.monotonic()
            for h, m in zip((a, b), marks):
                h.wait_log(r"worker\.ready", 120, since=m)
            t3 = time.monotonic()
            outages.append({"restart_s": round(t2 - t1, 1),
                            "hosts_back_after_s": round(t3 - t2, 1)})
            log("broker back after %.1f s; both hosts consuming %.1f s later" % (
                t2 - t1, t3 - t2))
        pub.join(600)
        self.assertFalse(pub.is_alive(), "publisher still running")
        self.assertIsNone(pub.error, pub.error)
        self.assertEqual(pub.confirmed, n)
        took = self.ledger.wait_all(240)
        time.sleep(2)   # late duplicates
        s = self.ledger.summary(
            "a: broker restart mid-stream", restarts=restarts, outages=outages,
            publisher_retries=pub.retries, publisher_reconnects=pub.reconnects,
            publisher_stall_s=[round(x, 1) for x in pub.stalls],
            total_s=round(time.monotonic() - t0, 1),
            drain_after_publish_s=None if took is None else round(took, 1),
            **self.left_over())
        self.check(s)
        self.assertTrue(a.alive() and b.alive())

    # ----------------------------------------------------------- (b)

    def test_b_kill9_random_workers_during_drain(self):
        n = 2000 * JOBS
        max_kills = 25 * FAULTS
        a = self.host("a", prefetch=10)
        b = self.host("b", prefetch=10)
        self.ready(a, b)
        jobs = make_jobs("b", n, self.rng, sleep_share=0.15, sleep_ms=(50, 300))
        publish_all(self.ns, jobs, self.ledger)
        kills = []
        state = {"next": time.monotonic() + 0.5, "end": None}

        def killer():
            now = time.monotonic()
            if now < state["next"] or len(kills) >= max_kills:
                return
            state["next"] = now + self.rng.uniform(0.3, 0.7)
            pids = [p for h in (a, b) for p in h.pids()]
            if not pids:
                return
            try:
                os.kill(self.rng.choice(pids), signal.SIGKILL)
                kills.append(now)
            except ProcessLookupError:
                return
            if len(kills) == max_kills:
                state["end"] = (now, self.ledger.handled_count())

        t0 = time.monotonic()
        took = self.ledger.wait_all(300 * JOBS, tick=killer)
        kill_phase = {}
        if kills:
            end_t, end_handled = state["end"] or (time.monotonic(), self.ledger.handled_count())
            kill_phase = {"kill_phase_s": round(end_t - t0, 1),
                          "handled_per_s_while_killing": round(end_handled / max(end_t - t0,
                                                                                 0.1))}
        log("drain under kill -9 took %s s with %d kills" % (took and round(took, 1), len(kills)))
        time.sleep(2)
        text = a.log_text() + b.log_text()
        backoffs = [int(x) for x in re.findall(r"worker\.exited: .*restarting in (\d+) ms", text)]
        s = self.ledger.summary("b: kill -9 of random workers", kills=len(kills),
                                crashes_counted=sum(self.ledger.crashes.values()),
                                max_restart_backoff_ms=max(backoffs or [0]),
                                drain_s=None if took is None else round(took, 1),
                                **kill_phase, **self.left_over())
        self.check(s, allow_parked=("crashed",))
        self.assertGreaterEqual(len(kills), min(10, max_kills), "too few kills to mean anything")
        self.assertTrue(a.alive() and b.alive())
        # the hosts still have all their workers
        a.wait_workers(2, 60)
        b.wait_workers(2, 60)

    # ----------------------------------------------------------- (c)

    def test_c_crashing_handlers_parked_others_handled(self):
        good = 500 * JOBS
        bad = 5 * FAULTS
        a = self.host("a", prefetch=5)
        b = self.host("b", prefetch=5)
        self.ready(a, b)
        jobs = make_jobs("c", good, self.rng, sleep_share=0.1, sleep_ms=(10, 50))
        for i in range(bad):
            jobs.insert(self.rng.randrange(len(jobs) + 1),
                        Job("c-crash-%03d-%s" % (i, uuid.uuid4().hex[:8]), "diag.crash", {},
                            "crash"))
        t0 = time.monotonic()
        publish_all(self.ns, jobs, self.ledger)
        took = self.ledger.wait_all(300 * FAULTS)
        time.sleep(1)
        crash_counts = [self.ledger.crashes[i] for i, k in self.ledger.published().items()
                        if k == "crash"]
        s = self.ledger.summary(
            "c: crashing handlers", crash_jobs=bad,
            crashes_before_parking=[min(crash_counts), max(crash_counts)],
            drain_s=None if took is None else round(took, 1),
            total_s=round(time.monotonic() - t0, 1), **self.left_over())
        self.check(s, expect={"crash": "parked:crashed"})
        for job_id, kind in self.ledger.published().items():
            if kind == "crash":
                reason, error, _ = self.ledger.dead[job_id][0]
                self.assertIn("signal 11", error)
                # counted per host for classic queues: at least max_crashes
                # (3) on one host; at most 3 on each of the two hosts, plus
                # one per other worker of a host, which may be handed the
                # message before the supervisor has reaped the last crash
                self.assertGreaterEqual(self.ledger.crashes[job_id], 3)
                self.assertLessEqual(self.ledger.crashes[job_id], 2 * (3 + 2 - 1))
        self.assertTrue(a.alive() and b.alive())

    # ----------------------------------------------------------- (d)

    def test_d_hanging_handlers_time_limited(self):
        good = 300 * JOBS
        hang = 10 * FAULTS
        conf = {"retry": {"max_attempts": 2, "initial_delay": 1, "jitter": 0.0},
                "workers": [{"name": "diag.sleep", "time_limit": "1s"}]}
        a = self.host("a", prefetch=5, **conf)
        b = self.host("b", prefetch=5, **conf)
        self.ready(a, b)
        jobs = make_jobs("d", good, self.rng, sleep_share=0.1, sleep_ms=(10, 50))
        for i in range(hang):
            jobs.insert(self.rng.randrange(len(jobs) + 1),
                        Job("d-hang-%03d-%s" % (i, uuid.uuid4().hex[:8]), "diag.sleep",
                            {"ms": 60000}, "hang"))
        t0 = time.monotonic()
        publish_all(self.ns, jobs, self.ledger)
        took = self.ledger.wait_all(120 * FAULTS)
        time.sleep(1)
        s = self.ledger.summary("d: hanging handlers with time_limit 1s", hang_jobs=hang,
                                drain_s=None if took is None else round(took, 1),
                                total_s=round(time.monotonic() - t0, 1), **self.left_over())
        self.check(s, expect={"hang": "parked:max_attempts"})
        for job_id, kind in self.ledger.published().items():
            if kind == "hang":
                reason, error, attempts = self.ledger.dead[job_id][0]
                self.assertIn("time limit 1s exceeded", error)
                self.assertEqual(attempts, 2)
        text = a.log_text() + b.log_text()
        self.assertNotIn("job.crashed", text)
        self.assertNotIn("worker.overdue", text)
        self.assertTrue(a.alive() and b.alive())

    # ----------------------------------------------------------- (e)

    def test_e_sigterm_under_load_then_new_host(self):
        n = 1000 * JOBS
        a = self.host("a", prefetch=10, host={"shutdown_timeout": "10s"})
        self.ready(a)
        jobs = make_jobs("e", n, self.rng, sleep_share=0.2, sleep_ms=(50, 300))
        pub = Publisher(self.ns, jobs, self.ledger, rate=200)
        pub.start()
        harness.wait_for(lambda: self.ledger.handled_count() >= n // 4, 120, 0.2,
                         "a quarter of the jobs handled")
        pids = a.pids()
        handled_before = self.ledger.handled_count()
        t1 = time.monotonic()
        rc = a.stop(signal.SIGTERM, timeout=30)
        stop_s = time.monotonic() - t1
        log("host a stopped by SIGTERM in %.1f s (exit %s) after %d handled" % (
            stop_s, rc, handled_before))
        self.assertEqual(rc, 0)
        self.assertLess(stop_s, 10 + 5)
        for p in pids:
            self.assertFalse(harness.pid_alive(p), "worker %d outlived its host" % p)
        self.assertNotIn("host.shutdown_timeout", a.log_text())
        b = self.host("b", prefetch=10)
        self.ready(b)
        pub.join(300)
        self.assertIsNone(pub.error, pub.error)
        took = self.ledger.wait_all(180)
        time.sleep(1)
        s = self.ledger.summary("e: supervisor SIGTERM under load", stop_s=round(stop_s, 1),
                                handled_before_stop=handled_before,
                                drain_s=None if took is None else round(took, 1),
                                **self.left_over())
        self.check(s)
        self.assertNotIn("job.crashed", a.log_text() + b.log_text())

    # ----------------------------------------------------------- (f)

    def test_f_sigkill_whole_host_other_host_finishes(self):
        n = 1000 * JOBS
        a = self.host("a", prefetch=10)
        b = self.host("b", prefetch=10)
        self.ready(a, b)
        jobs = make_jobs("f", n, self.rng, sleep_share=0.2, sleep_ms=(50, 300))
        pub = Publisher(self.ns, jobs, self.ledger, rate=200)
        pub.start()
        kills = 0
        for k in range(FAULTS):
            victim = a if k % 2 == 0 else b
            other = b if victim is a else a
            harness.wait_for(
                lambda: self.ledger.handled_count() >= n * (k + 1) // (FAULTS + 3), 180, 0.2,
                "jobs handled before kill %d" % (k + 1))
            pids = [victim.pid] + victim.pids()
            log("SIGKILL to host %s (pids %s)" % (victim.name, pids))
            victim.kill()
            kills += 1
            time.sleep(0.5)
            for p in pids:
                self.assertFalse(harness.pid_alive(p), "pid %d survived the kill" % p)
            self.assertTrue(other.alive())
            if k + 1 < FAULTS:   # long variant: bring it back for the next round
                new = self.host(victim.name + "%d" % (k + 2), prefetch=10)
                self.ready(new)
                if victim is a:
                    a = new
                else:
                    b = new
        pub.join(300)
        self.assertIsNone(pub.error, pub.error)
        took = self.ledger.wait_all(180)
        time.sleep(1)
        s = self.ledger.summary("f: SIGKILL of a whole host", host_kills=kills,
                                drain_s=None if took is None else round(took, 1),
                                **self.left_over())
        self.check(s)

    # ----------------------------------------------------------- (g)

    def test_g_sigkill_of_supervisor_alone(self):
        """The supervisor dies alone (SIGKILL): its worker processes get
        SIGTERM (PR_SET_PDEATHSIG), finish their job and leave; nothing is
        lost and no worker outlives it for long."""
        n = 1000 * JOBS
        a = self.host("a", prefetch=10)
        b = self.host("b", prefetch=10)
        self.ready(a, b)
        jobs = make_jobs("g", n, self.rng, sleep_share=0.2, sleep_ms=(50, 300))
        pub = Publisher(self.ns, jobs, self.ledger, rate=200)
        pub.start()
        harness.wait_for(lambda: self.ledger.handled_count() >= n // 4, 120, 0.2,
                         "a quarter of the jobs handled")
        workers = a.pids()
        self.assertEqual(len(workers), 2)
        t1 = time.monotonic()
        os.kill(a.pid, signal.SIGKILL)
        a.proc.wait(10)
        harness.wait_for(lambda: not any(harness.pid_alive(p) for p in workers), 20, 0.1,
                         "the orphaned workers of host a to exit")
        orphan_s = time.monotonic() - t1
        pub.join(300)
        self.assertIsNone(pub.error, pub.error)
        took = self.ledger.wait_all(180)
        time.sleep(1)
        s = self.ledger.summary("g: SIGKILL of the supervisor alone",
                                orphans_gone_after_s=round(orphan_s, 2),
                                drain_s=None if took is None else round(took, 1),
                                **self.left_over())
        self.check(s)
        self.assertTrue(b.alive())

    # ----------------------------------------------------------- (h)

    def test_h_connections_reset_by_broker(self):
        """rabbitmqctl close_all_connections (every client connection,
        publisher included, closed by the broker) a few times under load."""
        n = 2000 * JOBS
        resets = 2 * FAULTS
        a = self.host("a", prefetch=10)
        b = self.host("b", prefetch=10)
        self.ready(a, b)
        jobs = make_jobs("h", n, self.rng, sleep_share=0.3, flaky_share=0.05,
                         sleep_ms=(20, 100))
        pub = Publisher(self.ns, jobs, self.ledger, rate=300)
        pub.start()
        back = []
        for r in range(resets):
            target = n * (r + 1) // (resets + 2)
            harness.wait_for(lambda: pub.confirmed >= target or not pub.is_alive(), 300,
                             0.2, "%d confirmed publishes" % target)
            marks = [h.mark() for h in (a, b)]
            t1 = time.monotonic()
            broker_ctl("close_all_connections", "warren fault suite: connection reset")
            for h, m in zip((a, b), marks):
                h.wait_log(r"worker\.ready(.|\n)*worker\.ready", 60, since=m)
            back.append(round(time.monotonic() - t1, 1))
            log("connections reset (%d/%d); both hosts consuming again after %.1f s" % (
                r + 1, resets, back[-1]))
        pub.join(600)
        self.assertIsNone(pub.error, pub.error)
        took = self.ledger.wait_all(240)
        time.sleep(2)
        text = a.log_text() + b.log_text()
        s = self.ledger.summary("h: connections reset by the broker", resets=resets,
                                hosts_back_after_s=back, publisher_retries=pub.retries,
                                lost_acks_remembered=text.count("job.already_done"),
                                drain_s=None if took is None else round(took, 1),
                                **self.left_over())
        self.check(s)

    # ----------------------------------------------------------- (i)

    def test_i_missed_heartbeats_of_a_frozen_worker(self):
        """A worker process frozen (SIGSTOP) past two heartbeat intervals
        loses its connection; its jobs go to the others; thawed (SIGCONT),
        it finishes the job it was running (a duplicate, counted),
        reconnects and goes on."""
        n = 400 * JOBS
        freezes = 2 * FAULTS
        a = self.host("a", concurrency=3, prefetch=2, broker={"heartbeat": 1})
        self.ready(a)
        jobs = make_jobs("i", n, self.rng, sleep_share=1.0, sleep_ms=(50, 150))
        publish_all(self.ns, jobs, self.ledger)
        frozen = []
        for k in range(freezes):
            harness.wait_for(lambda: self.ledger.handled_count() >= n * (k + 1) // (freezes + 2),
                             120, 0.1, "jobs handled before freeze %d" % (k + 1))
            pid = self.rng.choice(a.wait_workers(3, 60))
            mark = a.mark()
            os.kill(pid, signal.SIGSTOP)
            time.sleep(4)
            os.kill(pid, signal.SIGCONT)
            frozen.append(pid)
            a.wait_log(r"\[%d worker \d\] worker\.ready" % pid, 60, since=mark)
        took = self.ledger.wait_all(180)
        time.sleep(1)
        text = a.log_text()
        s = self.ledger.summary("i: frozen worker misses heartbeats", freezes=freezes,
                                lost_acks_remembered=text.count("job.already_done"),
                                drain_s=None if took is None else round(took, 1),
                                **self.left_over())
        self.check(s)
        self.assertNotIn("job.crashed", text)

    # ----------------------------------------------------------- (j)

    # `warren publish -` (the C producer) reconnects after its connection is
    # closed and publishes again, with the same ids, what was not confirmed
    # (test_fault_publish.py does the same across a broker restart).
    def test_j_cli_publisher_survives_connection_resets(self):
        n = 15000 * JOBS
        a = self.host("a")            # declares the queue and its bindings
        self.ready(a)
        a.stop()
        lines = "".join('{"n": %d}\n' % i for i in range(n))
        proc = subprocess.Popen([harness.WARREN, "publish", "diag.record", "-", "-c", a.config],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=harness.base_env(), text=True)
        out = []
        reader = threading.Thread(target=lambda: out.append(proc.communicate(lines)))
        reader.start()
        resets = 0
        while reader.is_alive() and resets < 20:
            time.sleep(0.3)
            if proc.poll() is None:
                broker_ctl("close_all_connections", "warren fault suite: publisher reset")
                resets += 1
        reader.join(300)
        stdout, stderr = out[0]
        printed = stdout.split()
        queued = collections.Counter(
            p.message_id for _, p, _ in harness.get_all(self.ns + ".default"))
        log("warren publish: exit %s after %d connection resets, %d ids printed, %d in the "
            "queue (%d distinct); stderr: %s" % (proc.returncode, resets, len(printed),
                                                 sum(queued.values()), len(queued),
                                                 stderr.strip()[-300:]))
        s = {"test": "j: warren publish across connection resets", "published": n,
             "resets": resets, "exit": proc.returncode, "confirmed": len(printed),
             "in_queue": sum(queued.values()), "distinct_in_queue": len(queued),
             "duplicates": sum(queued.values()) - len(queued),
             "missing": len(set(printed) - set(queued))}
        print("fault-summary: " + json.dumps(s, sort_keys=True), flush=True)
        report = os.environ.get("WARREN_FAULT_REPORT")
        if report:
            with open(report, "a") as f:
                f.write(json.dumps(s, sort_keys=True) + "\n")
        self.assertEqual(s["missing"], 0, "a confirmed id is not in the queue")
        self.assertGreater(resets, 0)
        self.assertEqual(proc.returncode, 0, stderr)
        self.assertEqual(len(printed), n)
        self.assertEqual(len(set(printed)), n)
        self.assertEqual(len(queued), n)


if __name__ == "__main__":
    on_signals()
    harness.main()
