"""/healthz and warren_broker_connected follow the broker: 503 naming the
workers that lost it while the broker is down, 200 again once every
worker process has reconnected and consumes, and jobs flow again.
Stops and starts the test broker (a fault test: run alone)."""

import http.client
import threading
import time

import harness


def http_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8")
    finally:
        c.close()


def connected(port):
    for line in http_get(port, "/metrics")[1].splitlines():
        if line.startswith("warren_broker_connected "):
            return int(float(line.split()[1]))
    return None


class TestHealthFollowsBroker(harness.WarrenTestCase):
    def test_healthz_503_while_broker_down_then_200(self):
        host = self.start_host(host={"concurrency": 2, "metrics_listen": "127.0.0.1:0"})
        port = int(host.wait_log(r"metrics on 127\.0\.0\.1:(\d+)", 20).group(1))
        harness.wait_for(lambda: http_get(port, "/healthz")[0] == 200, 30, 0.2, "healthy")
        self.assertEqual(connected(port), 1)

        harness.broker_command("stop")
        try:
            status, body = harness.wait_for(
                lambda: (lambda r: r if r[0] == 503 else None)(http_get(port, "/healthz")),
                30, 0.2, "/healthz 503 with the broker stopped")
            self.assertIn("worker 1: not connected to the broker", body)
            self.assertIn("worker 2: not connected to the broker", body)
            self.assertEqual(connected(port), 0)
        finally:
            harness.broker_command("start")
        t0 = time.monotonic()
        harness.require_broker()
        # Workers back off up to 30 s between attempts: allow for it.
        harness.wait_for(lambda: http_get(port, "/healthz") == (200, "ok\n"), 90, 0.5,
                         "/healthz 200 after the broker came back")
        print("healthy again %.1f s after the broker started" % (time.monotonic() - t0))
        self.assertEqual(connected(port), 1)
        harness.publish_raw(self.ns, "diag.record", {"after": "restart"})
        recs = harness.wait_for(lambda: harness.read_records(self.records), 20)
        self.assertEqual(recs[0]["args"], {"after": "restart"})

    def test_restart_seen_by_healthz(self):
        """A broker restart (stop and start in one go): /healthz answers 503
        while it happens, and 200 after."""
        host = self.start_host(host={"concurrency": 1, "metrics_listen": "127.0.0.1:0"})
        port = int(host.wait_log(r"metrics on 127\.0\.0\.1:(\d+)", 20).group(1))
        harness.wait_for(lambda: http_get(port, "/healthz")[0] == 200, 30, 0.2, "healthy")
        seen = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    seen.append(http_get(port, "/healthz")[0])
                except OSError as e:
                    seen.append(str(e))
                time.sleep(0.1)

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        try:
            harness.broker_command("restart")
        finally:
            stop.set()
            t.join(15)
        self.assertIn(503, seen)
        self.assertEqual([x for x in seen if x not in (200, 503)], [])
        harness.wait_for(lambda: http_get(port, "/healthz") == (200, "ok\n"), 90, 0.5,
                         "/healthz 200 after the restart")
        self.assertEqual(connected(port), 1)


if __name__ == "__main__":
    harness.main()
