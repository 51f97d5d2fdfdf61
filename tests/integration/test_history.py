"""Job history: a host with events enabled and `warren web` keeping the
history in SQLite. A mix of outcomes (success, retry then success, dead)
has the right state and timeline in `warren job ID --json`, `warren jobs`
and `/api/jobs/ID`; `warren web` killed with kill -9 in the middle of a
stream loses no event (every job ends in its terminal state with its full
timeline); `warren report` adds up; the page is served and escapes; a
dead job replayed with `warren dead replay` shows its new run (replay N),
not the old `dead`."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import harness


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Web(harness.Host):
    """`warren web -c CONFIG ARGS` as a Host (stop, kill, logs)."""

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([harness.WARREN, "web", "-c", self.config] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        return self


class TestHistory(harness.WarrenTestCase):
    def start_web(self, config, name="web"):
        web = Web(config, self.tmpdir, name=name, args=["--listen", "127.0.0.1:%d" % self.port])
        self.hosts.append(web)
        web.start()
        web.wait_log(r"listening on", 10)
        return web

    def setup_run(self, host=None, **kw):
        self.port = free_port()
        retry = {"max_attempts": 2, "initial_delay": 1, "multiplier": 1.0, "jitter": 0.0}
        self.conf = self.write_config(
            name="warren.conf",
            host=host or {"concurrency": 4, "prefetch": 4, "name": self.ns + "-h"},
            events={"enabled": True}, retry=retry, web={"db": "hist/warren.db"}, **kw)
        return self.conf

    def api(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                    timeout=10) as r:
            return r.status, r.headers, r.read()

    def job(self, job_id):
        rc, out, err = harness.cli("job", job_id, "--json", "-c", self.conf)
        if rc != 0:
            return None
        return json.loads(out)

    def wait_state(self, ids, want, timeout=60):
        def done():
            return all((self.job(i) or {}).get("state") == want[i] for i in ids)
        harness.wait_for(done, timeout, 0.5, "job states %s" % want)

    def test_mix_of_outcomes(self):
        conf = self.setup_run()
        web = self.start_web(conf)
        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", 20)
        ok = harness.publish_raw(self.ns, "diag.noop", {})
        once = harness.publish_raw(self.ns, "diag.fail", {"times": 1})
        perm = harness.publish_raw(self.ns, "diag.fail", {"permanent": True})
        xss = harness.publish_raw(self.ns, "diag.fail",
                                  {"permanent": True, "note": "<script>alert(1)</script>"})
        want = {ok: "succeeded", once: "succeeded", perm: "dead", xss: "dead"}
        self.wait_state(want, want)
        timelines = {
            ok: [("started", 1), ("succeeded", 1)],
            once: [("started", 1), ("failed", 1), ("retrying", 1), ("started", 2),
                   ("succeeded", 2)],
            perm: [("started", 1), ("failed", 1), ("dead", 1)],
        }
        for job_id, expected in timelines.items():
            j = self.job(job_id)
            self.assertEqual([(e["event"], e["attempt"]) for e in j["timeline"]], expected)
            self.assertEqual(j["worker"], "diag.noop" if job_id == ok else "diag.fail")
            self.assertEqual(j["queue"], "default")
            for e in j["timeline"]:
                self.assertEqual(e["host"], self.ns + "-h")
                if e["event"] in ("succeeded", "failed"):
                    self.assertIsInstance(e["duration_ms"], int)
            # The API answers the same record.
            status, headers, body = self.api("/api/jobs/" + job_id)
            self.assertEqual(status, 200)
            self.assertEqual(headers["Content-Type"], "application/json")
            self.assertEqual(json.loads(body), j)
        self.assertEqual(self.job(once)["attempt"], 2)
        self.assertTrue(self.job(perm)["error"])
        retry = [e for e in self.job(once)["timeline"] if e["event"] == "retrying"][0]
        self.assertEqual(retry["delay_ms"], 1000)

        # Lists and filters, from the CLI and the API.
        rc, out, err = harness.cli("jobs", "--state", "dead", "--json", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertEqual({j["id"] for j in json.loads(out)["jobs"]}, {perm, xss})
        rc, out, err = harness.cli("jobs", "--worker", "diag.noop", "--since", "1h", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertIn(ok, out)
        self.assertNotIn(perm, out)
        status, _, body = self.api("/api/jobs?state=succeeded&limit=10")
        self.assertEqual({j["id"] for j in json.loads(body)["jobs"]}, {ok, once})
        rc, out, err = harness.cli("job", "no-such-job", "-c", conf)
        self.assertEqual(rc, 1)
        for bad in (["jobs", "--state", "nope"], ["jobs", "--limit", "0"], ["report", "--format",
                    "xml"], ["report", "--since", "soon"], ["job"]):
            rc, out, err = harness.cli(*bad, "-c", conf)
            self.assertEqual(rc, 2, bad)

        # The report adds up: 2 succeeded, 1 retried, 2 dead.
        rc, out, err = harness.cli("report", "--since", "1h", "--format", "json", "-c", conf)
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        by = {w["worker"]: w for w in r["workers"]}
        self.assertEqual((by["diag.noop"]["succeeded"], by["diag.noop"]["started"]), (1, 1))
        f = by["diag.fail"]
        self.assertEqual((f["started"], f["succeeded"], f["retried"], f["dead"], f["failed"]),
                         (4, 1, 1, 2, 3))
        self.assertAlmostEqual(f["failure_rate"], 3 / 4)
        self.assertIsNotNone(f["p50_ms"])
        hours = r["hours"]
        self.assertEqual(sum(h["succeeded"] for h in hours), 2)
        self.assertEqual(sum(h["dead"] for h in hours), 2)
        self.assertEqual(r["states"], {"succeeded": 2, "dead": 2})
        rc, out, err = harness.cli("report", "--format", "csv", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("kind,key,started"))
        self.assertIn('worker,"diag.fail",4,1,1,2,3,', out)
        rc, out, err = harness.cli("report", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"diag\.fail\s+4\s+1\s+1\s+2\s+75\.0%")

        # The page and the queues.
        status, headers, body = self.api("/")
        self.assertEqual(status, 200)
        self.assertIn(b"<script src=\"/app.js\">", body)
        self.assertIn("default-src 'self'", headers["Content-Security-Policy"])
        status, _, body = self.api("/app.js")
        self.assertNotIn(b"innerHTML", body)
        status, _, body = self.api("/api/queues")
        q = json.loads(body)["queues"][0]
        self.assertEqual((q["name"], q["exists"], q["consumers"], q["dead"]),
                         ("default", True, 4, 2))
        # Job data is sent as JSON data, never as markup: the page shows it
        # with textContent (checked in a browser by test_web_page.py).
        status, _, body = self.api("/api/jobs/" + xss)
        self.assertEqual(json.loads(body)["id"], xss)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.api("/api/jobs/nope")
        self.assertEqual(cm.exception.code, 404)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.api("/../CMakeLists.txt")
        self.assertEqual(cm.exception.code, 404)
        self.assertTrue(os.path.exists(os.path.join(self.tmpdir, "hist", "warren.db")))
        web.stop()

    def test_crashing_job_ends_dead_with_each_run_in_its_timeline(self):
        """A job that kills its worker process (SIGSEGV) is run max_crashes
        times and parked as `crashed`: the history shows each start and the
        dead event with that reason, while a job beside it succeeds."""
        conf = self.setup_run(host={"concurrency": 2, "prefetch": 1, "max_crashes": 2,
                                    "name": self.ns + "-h"})
        self.start_web(conf)
        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", 20)
        poison = harness.publish_raw(self.ns, "diag.crash", {})
        fine = harness.publish_raw(self.ns, "diag.noop", {})
        self.wait_state([poison, fine], {poison: "dead", fine: "succeeded"}, 60)
        j = self.job(poison)
        events = [e["event"] for e in j["timeline"]]
        self.assertEqual(events.count("started"), 2, events)
        self.assertEqual(events[-1], "dead", events)
        self.assertEqual(j["timeline"][-1]["reason"], "crashed")
        self.assertIn("signal", j["error"])
        status, _, body = self.api("/api/jobs/" + poison)
        self.assertEqual((status, json.loads(body)["state"]), (200, "dead"))

    def replay_and_wait(self, conf, job_id, replay, state):
        """`warren dead replay default --id JOB`, then waits until the
        history has the replayed run's `state` event."""
        rc, out, err = harness.cli("dead", "replay", "default", "--id", job_id, "-c", conf)
        self.assertEqual(rc, 0, out + err)

        def ended():
            j = self.job(job_id) or {}
            return any((e["event"], e["replay"]) == (state, replay)
                       for e in j.get("timeline", []))
        harness.wait_for(ended, 60, 0.5, "%s of replay %d" % (state, replay))
        return self.job(job_id)

    def test_replayed_job_shows_its_new_run(self):
        """A job dead at attempt 2 and replayed (x-warren-replay 1) that
        fails again is dead in replay 1 (the host carried the header onto
        its retry copy and its dead letter); replayed again (replay 2) once
        the cause is gone, it succeeds at attempt 1, and the history says
        succeeded although the first runs reached attempt 2."""
        later = os.path.join(self.tmpdir, "later")
        conf = self.setup_run(modules=[{"path": "diag", "config": {
            "record_file": os.path.join(later, "records.jsonl")}}])
        self.start_web(conf)
        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", 20)
        job_id = harness.publish_raw(self.ns, "diag.record", {})
        self.wait_state([job_id], {job_id: "dead"}, 60)
        self.assertEqual((self.job(job_id)["attempt"], self.job(job_id)["replay"]), (2, 0))

        j = self.replay_and_wait(conf, job_id, 1, "dead")
        self.assertEqual((j["state"], j["attempt"], j["replay"]), ("dead", 2, 1))
        run = [(e["event"], e["attempt"]) for e in j["timeline"] if e["replay"] == 1]
        self.assertEqual(run, [("started", 1), ("failed", 1), ("retrying", 1),
                               ("started", 2), ("failed", 2), ("dead", 2)])

        os.mkdir(later)
        j = self.replay_and_wait(conf, job_id, 2, "succeeded")
        self.assertEqual((j["state"], j["attempt"], j["replay"]), ("succeeded", 1, 2))
        self.assertEqual([(e["event"], e["attempt"]) for e in j["timeline"] if e["replay"] == 2],
                         [("started", 1), ("succeeded", 1)])
        self.assertEqual(sorted(set(e["replay"] for e in j["timeline"])), [0, 1, 2])
        self.assertEqual(len(j["timeline"]), 6 + 6 + 2)
        status, _, body = self.api("/api/jobs/" + job_id)
        self.assertEqual((status, json.loads(body)), (200, j))
        rc, out, err = harness.cli("job", job_id, "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^state +succeeded\nattempt +1\nreplay +2$")
        self.assertEqual(len(re.findall(r"\(replay 2\)$", out, re.M)), 2, out)

    def test_kill_9_loses_no_event(self):
        conf = self.setup_run()
        web = self.start_web(conf)
        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", 20)
        n = 300
        ids = []
        # Three rounds: publish 100 jobs, let events stream, kill -9 warren
        # web in the middle and start it again on the same database.
        for round_ in range(3):
            web.wait_log(r"consuming", 10)
            for i in range(100):
                args = {"times": 1} if i % 10 == 0 else {}
                ids.append(harness.publish_raw(self.ns, "diag.fail" if args else "diag.noop",
                                               args))
            time.sleep(0.3)
            os.killpg(web.pid, signal.SIGKILL)
            web.proc.wait(10)
            web._close_log()
            web = self.start_web(conf, name="web%d" % (round_ + 2))

        def all_done():
            rc, out, err = harness.cli("jobs", "--state", "succeeded", "--limit", "100000",
                                       "--json", "-c", conf)
            return rc == 0 and len(json.loads(out)["jobs"]) == n
        harness.wait_for(all_done, 90, 0.5, "all %d jobs succeeded in the history" % n)
        for k, job_id in enumerate(ids):
            if k % 10 == 0:
                j = self.job(job_id)
                self.assertEqual([e["event"] for e in j["timeline"]],
                                 ["started", "failed", "retrying", "started", "succeeded"])
            elif k % 7 == 0:
                j = self.job(job_id)
                self.assertEqual([e["event"] for e in j["timeline"]], ["started", "succeeded"])
        rc, out, err = harness.cli("report", "--since", "1h", "--format", "json", "-c", conf)
        r = json.loads(out)
        # Every event stored exactly once: started per run, succeeded per job.
        self.assertEqual(sum(w["started"] for w in r["workers"]), n + n // 10)
        self.assertEqual(sum(w["succeeded"] for w in r["workers"]), n)
        self.assertEqual(sum(w["retried"] for w in r["workers"]), n // 10)
        self.assertEqual(harness.queue_count(self.ns + ".history"), 0)
        web.stop()


if __name__ == "__main__":
    harness.main()
