"""valgrind memcheck over a whole host: a warrend with one worker process
handles a few hundred jobs of each outcome (1700 in all), is stopped with SIGTERM, and
every process of it (supervisor, the module pre-flight child, the worker
process; valgrind follows fork() by itself) reports no error and no leak
that is definitely lost.

Outcomes: success, transient failure then success (a retry through the
delay levels), permanent failure, max attempts (retries with a 1 s
delay), malformed body, unknown worker, arguments failing the schema,
and a forged signature. Each job is counted: handled (diag.record's
record file, or the host's log for diag.fail) or parked (dead letters,
by reason).

Suppressions are in valgrind.supp beside this file, one comment per
entry, for third-party code only. Needs valgrind (apt-get install
valgrind); WARREN_TEST_VALGRIND_JOBS scales the job counts (default 1.0)."""

import collections
import glob
import os
import re
import shutil
import subprocess
import time
import unittest

import harness
from harness import header

SCALE = float(os.environ.get("WARREN_TEST_VALGRIND_JOBS", "1.0"))
COUNTS = {  # outcome -> jobs
    "success": int(300 * SCALE),
    "retry_then_success": int(200 * SCALE),
    "permanent_failure": int(200 * SCALE),
    "max_attempts": int(200 * SCALE),
    "malformed": int(200 * SCALE),
    "unknown_worker": int(200 * SCALE),
    "invalid_args": int(200 * SCALE),
    "bad_signature": int(200 * SCALE),
}
SUPP = os.path.join(harness.HERE, "valgrind.supp")


def sanitized_build():
    try:
        with open(os.path.join(harness.BUILD_DIR, "CMakeCache.txt")) as f:
            return re.search(r"^WARREN_SANITIZE:BOOL=(ON|1|TRUE|YES)$", f.read(), re.M | re.I)
    except OSError:
        return False


class ValgrindHost(harness.Host):
    """A Host whose warrend runs under valgrind, one log per process."""

    def __init__(self, config, tmpdir, **kw):
        super().__init__(config, tmpdir, name="valgrind-host", **kw)
        self.vg_logs = os.path.join(tmpdir, "vg.%p.log")

    def start(self):
        self._log = open(self.log_path, "ab")
        cmd = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
               "--error-exitcode=99", "--trace-children=yes", "--num-callers=30",
               "--suppressions=" + SUPP, "--log-file=" + self.vg_logs,
               self.binary, "-c", self.config]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        return self


class TestValgrind(harness.WarrenTestCase):
    @classmethod
    def setUpClass(cls):
        if sanitized_build():
            # valgrind cannot run AddressSanitizer binaries; the plain build
            # of the same suite runs this test.
            raise unittest.SkipTest("%s is a sanitizer build" % harness.BUILD_DIR)
        super().setUpClass()
        if not shutil.which("valgrind"):
            raise RuntimeError("valgrind is not installed (apt-get install valgrind)")

    def publish_all(self):
        """Publishes every job on one channel; returns the expected dead
        letters by reason and the ids of the fail-once jobs."""
        ch = harness.channel()
        self.addCleanup(harness.close, ch)
        ns, work = self.ns, self.ns + ".default"
        fail_once = []
        for i in range(COUNTS["success"]):
            harness.publish_raw(ns, "diag.record", {"i": i}, ch=ch)
        for i in range(COUNTS["retry_then_success"]):
            fail_once.append(harness.publish_raw(ns, "diag.fail", {"times": 1}, ch=ch))
        for i in range(COUNTS["permanent_failure"]):
            harness.publish_raw(ns, "diag.fail", {"permanent": True}, ch=ch)
        for i in range(COUNTS["max_attempts"]):
            harness.publish_raw(ns, "diag.fail", {"always": True}, ch=ch,
                                headers={"x-warren-max-attempts": 2})
        for i in range(COUNTS["malformed"]):
            bodies = (b'{"unclosed": ', b"[1, 2]", b'{"a": "\xc0\xaf"}',
                      b'{"a":' + b"[" * 70 + b"]" * 70 + b"}")
            harness.publish_raw(ns, "diag.record", bodies[i % len(bodies)], ch=ch)
        for i in range(COUNTS["unknown_worker"]):
            harness.publish_raw(ns, "no.such.worker", {"i": i}, exchange="", routing_key=work,
                                ch=ch)
        for i in range(COUNTS["invalid_args"]):
            harness.publish_raw(ns, "diag.sleep", {"ms": "soon"}, ch=ch)
        for i in range(COUNTS["bad_signature"]):
            harness.publish_raw(ns, "diag.record", {"forged": i}, ch=ch,
                                headers={"x-warren-signature": "v1=" + "%064x" % i})
        dead = {k: v for k, v in COUNTS.items()
                if k not in ("success", "retry_then_success") and v}
        return dead, fail_once

    def test_host_under_valgrind(self):
        key = os.path.join(self.tmpdir, "signing.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("valgrind-test-key\n")
        conf = self.write_config(
            host={"concurrency": 1, "prefetch": 20, "shutdown_timeout": "60s",
                  "log_level": "info"},
            retry={"initial_delay": "1s", "max_delay": "1s", "jitter": 0.0},
            security={"signing_key_file": key, "require_signature": False})
        host = ValgrindHost(conf, self.tmpdir)
        self.hosts.append(host)
        host.start()
        host.wait_log(r"worker\.ready", timeout=180)

        t0 = time.monotonic()
        expected_dead, fail_once = self.publish_all()
        total = sum(COUNTS.values())
        dead_q = self.ns + ".default.dead"
        parked = []

        def all_done():
            parked.extend(harness.get_all(dead_q))
            recs = harness.read_records(self.records)
            log = host.log_text()
            retried_ok = sum(1 for i in fail_once
                             if re.search(r"diag\.fail %s succeeded" % re.escape(i), log))
            return (len(parked) >= sum(expected_dead.values()) and
                    len(recs) >= COUNTS["success"] and retried_ok == len(fail_once))

        harness.wait_for(all_done, timeout=240, interval=1.0,
                         message="all %d jobs handled or parked" % total)
        print("\n    %d jobs handled or parked under valgrind in %.1f s"
              % (total, time.monotonic() - t0))

        by_reason = collections.Counter(header(p, "x-warren-dead-reason") for _, p, _ in parked)
        self.assertEqual(dict(by_reason), expected_dead)
        recs = harness.read_records(self.records)
        self.assertEqual(sorted(r["args"]["i"] for r in recs), list(range(COUNTS["success"])))
        self.assertEqual(harness.queue_count(self.ns + ".default"), 0)

        rc = host.stop(timeout=180)
        self.assertEqual(rc, 0, "warrend under valgrind exited %s\n%s" % (rc, host.log_tail()))
        self.check_valgrind_logs()

    def check_valgrind_logs(self):
        logs = sorted(glob.glob(os.path.join(self.tmpdir, "vg.*.log")))
        # supervisor, the pre-flight child and at least one worker process
        self.assertGreaterEqual(len(logs), 3, logs)
        problems = []
        for path in logs:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            summaries = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
            if not summaries:
                problems.append("%s: no ERROR SUMMARY (did the process finish?)" % path)
            elif any(n != "0" for n in summaries):
                problems.append("%s: ERROR SUMMARY %s" % (path, summaries))
            if re.search(r"definitely lost: [1-9]|are definitely lost", text):
                problems.append("%s: definitely lost memory" % path)
            if problems and problems[-1].startswith(path):
                problems.append(text[-6000:])
        if problems:
            self.fail("valgrind found problems (logs kept in %s):\n%s"
                      % (self.tmpdir, "\n".join(problems)))
        print("    %d valgrind log(s) clean: %s" % (len(logs), ", ".join(
            os.path.basename(p) for p in logs)))


if __name__ == "__main__":
    harness.main()
