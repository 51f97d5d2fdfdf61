"""The host's /metrics and /healthz (host.metrics_listen): exact counters
after a known mix of outcomes, the duration histogram, crashes and
restarts, health, port 0 logged, a port in use refused with exit 1, and
the exposition checked by promtool when it is installed."""

import http.client
import os
import re
import shutil
import socket
import subprocess

import harness


def http_get(port, path, method="GET"):
    """(status, body text) of one request to the host's endpoint."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8"), dict(r.getheaders())
    finally:
        c.close()


def parse(text):
    """{'name{labels}': value} of every sample of an exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def jobs(m, worker, outcome, queue="default"):
    return m.get('warren_jobs_total{queue="%s",worker="%s",outcome="%s"}'
                 % (queue, worker, outcome))


def hist(m, suffix, worker, le=None):
    if le is not None:
        return m.get('warren_job_duration_seconds_bucket{worker="%s",le="%s"}' % (worker, le))
    return m.get('warren_job_duration_seconds_%s{worker="%s"}' % (suffix, worker))


def promtool():
    return os.environ.get("WARREN_PROMTOOL") or shutil.which("promtool")


class MetricsCase(harness.WarrenTestCase):
    def start_metrics_host(self, **kw):
        kw.setdefault("host", {})
        kw["host"] = dict({"concurrency": 2, "metrics_listen": "127.0.0.1:0"}, **kw["host"])
        host = self.start_host(**kw)
        m = host.wait_log(r"metrics on 127\.0\.0\.1:(\d+)", 20)
        port = int(m.group(1))
        self.assertGreater(port, 0)
        return host, port

    def metrics(self, port):
        status, text, headers = http_get(port, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        return text

    def wait_metrics(self, port, cond, timeout=30, message=None):
        """Polls /metrics until cond(samples) holds; returns (samples, text)."""
        last = {}

        def ready():
            text = self.metrics(port)
            last["m"], last["text"] = parse(text), text
            return cond(last["m"])

        harness.wait_for(ready, timeout, 0.2, message or "metrics")
        return last["m"], last["text"]

    def wait_healthy(self, port, timeout=30):
        return harness.wait_for(lambda: http_get(port, "/healthz")[0] == 200, timeout, 0.2,
                                "/healthz 200")


class TestMetrics(MetricsCase):
    def test_counters_after_a_known_mix(self):
        N, M, K = 5, 3, 2
        host, port = self.start_metrics_host(
            retry={"max_attempts": 3, "initial_delay": 1, "multiplier": 1.0, "jitter": 0.0})
        self.wait_healthy(port)
        for _ in range(N):
            harness.publish_raw(self.ns, "diag.noop", {})
        for _ in range(M):
            harness.publish_raw(self.ns, "diag.fail", {"permanent": True})
        for _ in range(K):
            harness.publish_raw(self.ns, "diag.fail", {"times": 1})
        # A worker this host does not know, straight into its queue: counted
        # with worker="" (names from the wire never make series).
        harness.publish_raw(self.ns, "no.such.worker", {}, exchange="",
                            routing_key=self.ns + ".default")

        def done(m):
            return (jobs(m, "diag.noop", "succeeded") == N
                    and jobs(m, "diag.fail", "dead") == M
                    and jobs(m, "diag.fail", "succeeded") == K
                    and jobs(m, "", "dead") == 1)

        m, text = self.wait_metrics(port, done, 40, "all %d jobs counted" % (N + M + K + 1))
        self.assertEqual(jobs(m, "diag.noop", "retried"), 0)
        self.assertEqual(jobs(m, "diag.noop", "dead"), 0)
        self.assertEqual(jobs(m, "diag.noop", "crashed"), 0)
        self.assertEqual(jobs(m, "diag.fail", "retried"), K)
        self.assertEqual(jobs(m, "diag.fail", "crashed"), 0)
        self.assertEqual(jobs(m, "", "succeeded"), 0)
        self.assertNotIn("no.such.worker", text)
        # One observation per handler run: M permanent, K failed + K retried.
        self.assertEqual(hist(m, "count", "diag.noop"), N)
        self.assertEqual(hist(m, "count", "diag.fail"), M + 2 * K)
        for w in ("diag.noop", "diag.fail"):
            self.assertEqual(hist(m, None, w, "+Inf"), hist(m, "count", w))
            self.assertGreaterEqual(hist(m, "sum", w), 0)
            buckets = [v for k, v in m.items()
                       if k.startswith('warren_job_duration_seconds_bucket{worker="%s"' % w)]
            self.assertEqual(len(buckets), 15)
            self.assertEqual(buckets, sorted(buckets))
        self.assertIsNone(hist(m, "count", ""))
        self.assertEqual(m["warren_jobs_in_flight"], 0)
        self.assertEqual(m["warren_broker_connected"], 1)
        self.assertEqual(m["warren_worker_restarts_total"], 0)
        self.assertEqual(http_get(port, "/healthz")[:2], (200, "ok\n"))
        print("histogram sum: diag.noop %.6f s, diag.fail %.6f s"
              % (hist(m, "sum", "diag.noop"), hist(m, "sum", "diag.fail")))
        tool = promtool()
        if tool:
            r = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        else:
            print("promtool not installed: exposition not linted")

    def test_crashes_and_restarts(self):
        host, port = self.start_metrics_host(host={"max_crashes": 2})
        self.wait_healthy(port)
        harness.publish_raw(self.ns, "diag.crash", {})
        m, _ = self.wait_metrics(port, lambda m: jobs(m, "diag.crash", "dead") == 1, 40,
                                 "diag.crash parked")
        self.assertEqual(jobs(m, "diag.crash", "crashed"), 2)
        self.assertEqual(m["warren_worker_restarts_total"], 2)
        self.assertEqual(hist(m, "count", "diag.crash"), 0)
        self.wait_healthy(port)

    def test_endpoints(self):
        host, port = self.start_metrics_host()
        self.wait_healthy(port)
        self.assertEqual(http_get(port, "/nope")[0], 404)
        self.assertEqual(http_get(port, "/metrics", "POST")[0], 405)
        self.assertEqual(http_get(port, "/healthz", "DELETE")[0], 405)
        status, body, _ = http_get(port, "/metrics", "HEAD")
        self.assertEqual((status, body), (200, ""))
        # Worker processes do not hold the port: after the host stops it
        # can be bound again at once.
        self.assertEqual(host.stop(), 0)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.close()

    def test_health_names_the_worker_that_is_not_running(self):
        # A killed worker process: /healthz says which one until it is back.
        host, port = self.start_metrics_host(host={"concurrency": 1})
        self.wait_healthy(port)
        pid = host.wait_workers(1)[0]
        os.kill(pid, 9)
        status, body, _ = harness.wait_for(
            lambda: (lambda r: r if r[0] == 503 else None)(http_get(port, "/healthz")), 10,
            0.02, "/healthz 503")
        self.assertRegex(body, r"^worker 1: (not running|not connected to the broker)\n$")
        self.wait_healthy(port)

    def test_port_in_use_is_exit_1(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            host = self.start_host(host={"metrics_listen": "127.0.0.1:%d" % port})
            self.assertEqual(host.wait(30), 1)
            self.assertIn("Address already in use", host.log_text())
            self.assertEqual(host.pids(), [])
        finally:
            s.close()

    def test_empty_listen_serves_nothing(self):
        host = self.start_host(host={"metrics_listen": ""})
        host.wait_log(r"worker\.ready", 20)
        self.assertNotIn("metrics on", host.log_text())


if __name__ == "__main__":
    harness.main()
