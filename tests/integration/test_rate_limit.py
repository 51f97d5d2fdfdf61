"""rate_limit holds for the whole host: two worker processes together never
start more jobs of a worker per second than its limit (10 % tolerance over
any 10 s window), and jobs over the limit wait instead of failing."""

import datetime

import harness


def at(rec):
    return datetime.datetime.strptime(rec["started"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class TestRateLimit(harness.WarrenTestCase):
    def test_rate_holds_across_processes(self):
        rate = 10
        host = self.start_host(host={"concurrency": 2, "prefetch": 20},
                               workers=[{"name": "diag.record", "rate_limit": float(rate)}])
        host.wait_log(r"worker\.ready", 20)
        n = 130
        ch = harness.channel()
        for i in range(n):
            harness.publish_raw(self.ns, "diag.record", {"n": i, "sleep_ms": 0}, ch=ch)
        harness.close(ch)
        recs = harness.wait_for(
            lambda: (lambda r: r if len(r) >= n else None)(harness.read_records(self.records)),
            40)
        starts = sorted(at(r) for r in recs)
        worst = 0
        for i, t in enumerate(starts):
            in_window = sum(1 for u in starts[i:] if u < t + 10.0)
            worst = max(worst, in_window)
        span = starts[-1] - starts[0]
        print("%d jobs in %.2f s (%.2f/s); most in any 10 s window: %d (limit %d)" %
              (n, span, (n - 1) / span, worst, rate * 10))
        self.assertLessEqual(worst, rate * 10 * 1.1)
        self.assertGreaterEqual(worst, rate * 10 * 0.8, "rate far below the limit")
        self.assertEqual(harness.queue_count(self.ns + ".default.dead"), 0)
        self.assertEqual(len({r["args"]["n"] for r in recs}), n)

    def test_unlimited_worker_is_not_slowed(self):
        host = self.start_host(host={"concurrency": 2, "prefetch": 20},
                               workers=[{"name": "diag.sleep", "rate_limit": 1.0}])
        host.wait_log(r"worker\.ready", 20)
        ch = harness.channel()
        for i in range(50):
            harness.publish_raw(self.ns, "diag.record", {"n": i}, ch=ch)
        harness.close(ch)
        harness.wait_for(lambda: len(harness.read_records(self.records)) >= 50, 10)


if __name__ == "__main__":
    harness.main()
