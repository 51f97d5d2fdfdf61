"""`warren web`'s broker side over HTTP: /api/dead groups the dead letters
of each queue by worker, reason and error; POST /api/dead/replay and
/api/dead/purge act on exactly one group (a group whose error contains
another's is left alone), need the token of web.token_file, a JSON body and
a same-origin request; replayed letters run again on a host; /api/schedules
lists config and runtime schedules with their next fire."""

import json
import os
import urllib.error
import urllib.request

import harness
import test_dead
from test_history import Web, free_port

TOKEN = "s3cret-token-for-the-web-actions-test"


class WebActionsCase(test_dead.DeadCase):
    def start_web(self, token=True, **kw):
        self.port = free_port()
        web = {"db": "hist/warren.db"}
        if token:
            path = os.path.join(self.tmpdir, "web.token")
            with open(path, "w") as f:
                f.write(TOKEN + "\n")
            os.chmod(path, 0o600)
            web["token_file"] = path
        self.web_conf = self.write_config(name="web.conf", events={"enabled": True}, web=web,
                                          **kw)
        w = Web(self.web_conf, self.tmpdir, name="web",
                args=["--listen", "127.0.0.1:%d" % self.port])
        self.hosts.append(w)
        w.start()
        w.wait_log(r"listening on", 10)
        return w

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=30) as r:
            return json.loads(r.read())

    def post(self, path, body, token=TOKEN, headers=None, raw=None):
        """(status, reply) of a POST; the body is JSON unless raw bytes."""
        h = {"Content-Type": "application/json"}
        if token is not None:
            h["X-Warren-Token"] = token
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        data = raw if raw is not None else json.dumps(body).encode()
        req = urllib.request.Request(self.url(path), data=data, headers=h, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def groups(self):
        [q] = self.get("/api/dead")["queues"]
        return q["groups"]


def group(worker, reason, error, queue="default"):
    return {"queue": queue, "worker": worker, "reason": reason, "error": error}


class TestDeadGroups(WebActionsCase):
    def test_groups_listed_largest_first_nothing_taken(self):
        self.declare()
        self.letters(3, worker="diag.record", reason="permanent_failure", error="boom")
        self.letters(2, worker="diag.record", reason="permanent_failure", error="boom!")
        self.letters(1, worker="diag.echo", reason="max_attempts", error="<script>x</script>")
        self.start_web()
        reply = self.get("/api/dead")
        self.assertTrue(reply["actions"])
        [q] = reply["queues"]
        self.assertEqual((q["queue"], q["dead_queue"], q["count"], q["scanned"]),
                         ("default", self.dead, 6, 6))
        self.assertEqual(q["groups"], [
            {"worker": "diag.record", "reason": "permanent_failure", "error": "boom",
             "count": 3},
            {"worker": "diag.record", "reason": "permanent_failure", "error": "boom!",
             "count": 2},
            {"worker": "diag.echo", "reason": "max_attempts", "error": "<script>x</script>",
             "count": 1},
        ])
        self.assertEqual(harness.queue_count(self.dead), 6)

    def test_replay_a_group_runs_exactly_its_jobs_again(self):
        self.declare()
        ids = self.letters(3, worker="diag.record", reason="permanent_failure", error="boom")
        others = self.letters(2, worker="diag.record", reason="permanent_failure",
                              error="boom!")
        self.start_web()
        status, reply = self.post("/api/dead/replay",
                                  group("diag.record", "permanent_failure", "boom"))
        self.assertEqual(status, 200, reply)
        self.assertEqual((reply["replayed"], reply["refused"], reply["present"]), (3, 0, 5))
        self.assertEqual(self.dead_ids(), others)
        host = self.start_host()
        host.wait_log(r"consum", timeout=15)
        recs = harness.wait_for(
            lambda: len(harness.read_records(self.records)) >= 3 and
            harness.read_records(self.records), 20, 0.2, "3 replayed jobs ran")
        self.assertEqual(sorted(r["id"] for r in recs), sorted(ids))
        self.assertTrue(all(r["attempt"] == 1 for r in recs), recs)
        self.assertEqual([g["error"] for g in self.groups()], ["boom!"])
        self.assertRegex(self.hosts[0].log_text(), r"dead\.replay.*web 127\.0\.0\.1")

    def test_purge_a_group_removes_only_it(self):
        self.declare()
        self.letters(2, worker="diag.echo", reason="max_attempts", error="slow")
        keep = self.letters(1, worker="diag.echo", reason="malformed", error="slow")
        self.start_web()
        status, reply = self.post("/api/dead/purge", group("diag.echo", "max_attempts", "slow"))
        self.assertEqual((status, reply["purged"]), (200, 2), reply)
        self.assertEqual(self.dead_ids(), keep)
        self.assertRegex(self.hosts[0].log_text(), r"dead\.purge")


class TestActionSafety(WebActionsCase):
    def test_refused_without_token_or_from_another_site(self):
        self.declare()
        ids = self.letters(2, worker="diag.record", reason="permanent_failure", error="boom")
        self.start_web()
        g = group("diag.record", "permanent_failure", "boom")
        cases = [
            ({"token": None}, 401),
            ({"token": "wrong"}, 401),
            ({"token": TOKEN[:-1]}, 401),
            ({"headers": {"Origin": "http://evil.example"}}, 403),
            ({"headers": {"Origin": "http://127.0.0.1:1"}}, 403),
            ({"headers": {"Sec-Fetch-Site": "cross-site"}}, 403),
            ({"headers": {"Content-Type": "text/plain"}}, 415),
            ({"headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
        ]
        for kw, want in cases:
            for path in ("/api/dead/replay", "/api/dead/purge"):
                status, reply = self.post(path, g, **kw)
                self.assertEqual(status, want, (path, kw, reply))
                self.assertIn("error", reply)
        # The page's own requests pass: same origin, token, JSON.
        status, reply = self.post("/api/dead/purge", group("nobody", "max_attempts", "x"),
                                  headers={"Origin": "http://127.0.0.1:%d" % self.port,
                                           "Sec-Fetch-Site": "same-origin"})
        self.assertEqual((status, reply["purged"]), (200, 0), reply)
        self.assertEqual(self.dead_ids(), ids)

    def test_actions_off_without_token_file(self):
        self.declare()
        ids = self.letters(1)
        self.start_web(token=False)
        self.assertFalse(self.get("/api/dead")["actions"])
        status, reply = self.post("/api/dead/purge",
                                  group("diag.record", "permanent_failure", "boom"))
        self.assertEqual(status, 403)
        self.assertIn("web.token_file", reply["error"])
        self.assertEqual(self.dead_ids(), ids)

    def test_bad_bodies(self):
        self.declare()
        ids = self.letters(1)
        self.start_web()
        self.assertEqual(self.post("/api/dead/replay", None, raw=b"{nope")[0], 400)
        self.assertEqual(self.post("/api/dead/replay", [1, 2])[0], 400)
        self.assertEqual(self.post("/api/dead/replay", {"queue": "default"})[0], 400)
        status, reply = self.post("/api/dead/replay", group("diag.record", "x", "y", "other"))
        self.assertEqual(status, 400)
        self.assertIn("queue", reply["error"])
        self.assertEqual(self.post("/api/dead/replay", None, raw=b"x" * 100000)[0], 413)
        self.assertEqual(self.post("/api/dead/nothing", group("a", "b", "c"))[0], 404)
        self.assertEqual(self.dead_ids(), ids)

    def test_token_file_missing_is_a_clear_error(self):
        conf = self.write_config(name="bad.conf",
                                 web={"token_file": os.path.join(self.tmpdir, "absent")})
        rc, out, err = harness.cli("web", "-c", conf, "--listen", "127.0.0.1:0", timeout=20)
        self.assertEqual(rc, 2, err)
        self.assertIn("web.token_file", err)
        self.assertIn("absent", err)


class TestSchedules(WebActionsCase):
    def test_config_and_runtime_schedules(self):
        self.start_web(schedules=[{"name": "nightly", "worker": "diag.noop",
                                   "cron": "0 0 3 * * *"}])
        rc, _, err = harness.cli("schedule", "add", "pulse", "diag.echo", "--every", "5m",
                                 "--args", '{"n": 1}', "-c", self.web_conf)
        self.assertEqual(rc, 0, err)
        rows = {r["name"]: r for r in self.get("/api/schedules")["schedules"]}
        self.assertEqual(set(rows), {"nightly", "pulse"})
        self.assertEqual((rows["nightly"]["source"], rows["nightly"]["worker"]),
                         ("config", "diag.noop"))
        self.assertEqual((rows["pulse"]["source"], rows["pulse"]["every_ms"]),
                         ("runtime", 300000))
        for r in rows.values():
            self.assertRegex(r["next_fire"], r"^\d{4}-\d\d-\d\dT")


if __name__ == "__main__":
    harness.main()
