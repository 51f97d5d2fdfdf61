"""`warren dead list|replay|purge` against the private broker: fields and
JSON, --group, --limit, replay by id and by filter (headers cleaned, attempt
1, id and signature kept), ids not found, dry runs, purge with and without
filters, --since and --error, audit lines, usage errors, and a replay
killed midway that loses nothing."""

import datetime
import json
import os
import signal
import subprocess
import time
import uuid

import pika

import harness

DEAD_HEADERS = ("x-warren-dead-reason", "x-warren-error", "x-warren-attempts",
                "x-warren-failed-at", "x-warren-queue", "x-warren-host",
                "x-warren-original-exchange", "x-warren-original-routing-key",
                "x-warren-last-error")


def rfc3339(seconds_ago=0.0):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class DeadCase(harness.WarrenTestCase):
    """Helpers: a config, the namespace's topology and fabricated letters."""

    def setUp(self):
        super().setUp()
        self.conf = self.write_config(name="cli.conf")
        self.dead = self.ns + ".default.dead"
        self.work = self.ns + ".default"

    def declare(self):
        rc, _, err = harness.cli("topology", "-c", self.conf)
        self.assertEqual(rc, 0, err)

    def dead_cli(self, *args, env=None):
        return harness.cli("dead", *args, "-c", self.conf, env=env)

    def letter(self, worker="diag.record", reason="permanent_failure", error="boom",
               attempts=1, failed_at=None, body=None, msg_id=None, typed=True,
               original_exchange=None, headers=None, ch=None):
        """Publishes one dead letter, as a host would write it, straight into
        the dead queue; returns its message_id."""
        h = {
            "x-warren-dead-reason": reason,
            "x-warren-error": error,
            "x-warren-attempts": attempts,
            "x-warren-failed-at": failed_at if failed_at is not None else rfc3339(),
            "x-warren-queue": "default",
            "x-warren-host": "host-a",
            "x-warren-original-exchange": self.ns if original_exchange is None
            else original_exchange,
            "x-warren-original-routing-key": worker,
        }
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        props = {"message_id": msg_id or str(uuid.uuid4()), "type": worker if typed else None}
        return harness.publish_raw(self.ns, worker, {"n": 1} if body is None else body,
                                   properties=props, headers=h, exchange="",
                                   routing_key=self.dead, ch=ch)

    def letters(self, n, **kw):
        ch = harness.channel()
        try:
            return [self.letter(ch=ch, **kw) for _ in range(n)]
        finally:
            harness.close(ch)

    def dead_ids(self):
        """The ids in the dead queue, in order; the letters stay."""
        return [p.message_id for _, p, _ in harness.get_all(self.dead, ack=False)]

    def list_json(self, *args):
        rc, out, err = self.dead_cli("list", "default", "--json", *args)
        self.assertEqual(rc, 0, err)
        return json.loads(out)


class TestList(DeadCase):
    def test_list_shows_fields_and_removes_nothing(self):
        self.declare()
        when = rfc3339(5)
        a = self.letter(worker="diag.record", reason="permanent_failure", error="it broke",
                        attempts=1, failed_at=when, body={"x": [1, 2]})
        b = self.letter(worker="diag.echo", reason="malformed", error="body is not valid JSON",
                        attempts=3, body=b"{not json")
        c = self.letter(worker="diag.fail", reason="max_attempts", error="gave up", attempts=5,
                        typed=False)
        before = self.dead_ids()
        rows = self.list_json()
        self.assertEqual([r["id"] for r in rows], [a, b, c])
        self.assertEqual(rows[0], {"id": a, "worker": "diag.record",
                                   "reason": "permanent_failure", "error": "it broke",
                                   "attempts": 1, "failed_at": when, "queue": "default",
                                   "host": "host-a", "args": {"x": [1, 2]}})
        self.assertEqual(rows[1]["args"], "{not json")
        self.assertEqual(rows[1]["attempts"], 3)
        # No type property: the original routing key on the jobs exchange names it.
        self.assertEqual(rows[2]["worker"], "diag.fail")
        rc, out, err = self.dead_cli("list", "default")
        self.assertEqual(rc, 0, err)
        for text in (a, b, c, "diag.record", "malformed", "it broke", when):
            self.assertIn(text, out)
        self.assertIn("listed 3 letter(s)", out)
        self.assertEqual(harness.queue_count(self.dead), 3)
        self.assertEqual(self.dead_ids(), before)

    def test_worker_unknown_when_not_from_jobs_exchange(self):
        self.declare()
        self.letter(worker="diag.echo", typed=False, original_exchange="elsewhere")
        [row] = self.list_json()
        self.assertEqual(row["worker"], "")

    def test_real_dead_letters_from_a_host(self):
        host = self.start_host(retry={"max_attempts": 2, "initial_delay": "1s", "jitter": 0.0})
        host.wait_log(r"consum", timeout=15)
        perm = harness.publish_raw(self.ns, "diag.fail", {"permanent": True})
        always = harness.publish_raw(self.ns, "diag.fail", {"always": True})
        bad = harness.publish_raw(self.ns, "diag.echo", b"{oops")
        harness.wait_for(lambda: harness.queue_count(self.dead) == 3, 20, 0.2,
                         "3 dead letters")
        rows = {r["id"]: r for r in self.list_json()}
        self.assertEqual(rows[perm]["reason"], "permanent_failure")
        self.assertEqual(rows[perm]["worker"], "diag.fail")
        self.assertEqual(rows[perm]["args"], {"permanent": True})
        self.assertEqual(rows[always]["reason"], "max_attempts")
        self.assertEqual(rows[always]["attempts"], 2)
        self.assertEqual(rows[bad]["reason"], "malformed")
        self.assertEqual(rows[bad]["args"], "{oops")
        for r in rows.values():
            self.assertEqual(r["queue"], "default")
            self.assertTrue(r["host"])
            self.assertTrue(r["error"])
            self.assertRegex(r["failed_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(harness.queue_count(self.dead), 3)

    def test_limit(self):
        self.declare()
        ids = self.letters(5)
        rows = self.list_json("--limit", "2")
        self.assertEqual([r["id"] for r in rows], ids[:2])
        self.assertEqual(harness.queue_count(self.dead), 5)
        self.assertEqual(self.dead_ids(), ids)

    def test_default_limit_is_100(self):
        self.declare()
        self.letters(105)
        self.assertEqual(len(self.list_json()), 100)
        self.assertEqual(harness.queue_count(self.dead), 105)

    def test_group_counts(self):
        self.declare()
        self.letters(3, worker="diag.record", reason="permanent_failure", error="boom")
        self.letters(2, worker="diag.echo", reason="max_attempts", error="slow")
        self.letters(1, worker="diag.record", reason="permanent_failure", error="other")
        self.letters(4, worker="diag.fail", reason="malformed", error="bad json")
        groups = self.list_json("--group")
        self.assertEqual(groups, [
            {"worker": "diag.fail", "reason": "malformed", "error": "bad json", "count": 4},
            {"worker": "diag.record", "reason": "permanent_failure", "error": "boom", "count": 3},
            {"worker": "diag.echo", "reason": "max_attempts", "error": "slow", "count": 2},
            {"worker": "diag.record", "reason": "permanent_failure", "error": "other",
             "count": 1},
        ])
        rc, out, err = self.dead_cli("list", "default", "--group")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertRegex(lines[1], r"^\s*4\s+diag\.fail\s+malformed\s+bad json$")
        self.assertRegex(lines[4], r"^\s*1\s+diag\.record\s+permanent_failure\s+other$")
        self.assertIn("10 letter(s) in 4 group(s)", out)
        # --group counts every letter, not only the first --limit.
        groups = self.list_json("--group", "--limit", "1")
        self.assertEqual(groups, [{"worker": "diag.fail", "reason": "malformed",
                                   "error": "bad json", "count": 4}])
        self.assertEqual(harness.queue_count(self.dead), 10)

    def test_filters_since_error_worker_reason(self):
        self.declare()
        old = self.letter(error="disk full on /var", failed_at=rfc3339(7200))
        recent = self.letter(error="timeout talking to smtp", failed_at=rfc3339(10))
        other = self.letter(worker="diag.echo", reason="max_attempts",
                            error="timeout again", failed_at=rfc3339(30))
        self.letter(error="no time", failed_at=None, headers={"x-warren-failed-at": None})
        ids = lambda *a: [r["id"] for r in self.list_json(*a)]
        self.assertEqual(ids("--since", "1m"), [recent, other])
        self.assertEqual(ids("--since", "3h"), [old, recent, other])
        self.assertEqual(ids("--error", "timeout"), [recent, other])
        self.assertEqual(ids("--error", "disk"), [old])
        self.assertEqual(ids("--error", "timeout", "--worker", "diag.echo"), [other])
        self.assertEqual(ids("--since", "1m", "--reason", "permanent_failure"), [recent])
        self.assertEqual(ids("--worker", "nobody"), [])
        self.assertEqual(harness.queue_count(self.dead), 4)

    def test_table_never_prints_control_characters(self):
        self.declare()
        self.letter(error="evil\x1b[2J\nsecond line\x07")
        rc, out, err = self.dead_cli("list", "default")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\x07", out)
        self.assertEqual(len(out.splitlines()), 3)  # header, one row, summary

    def test_unknown_queue_exits_1(self):
        self.declare()
        for sub in (["list"], ["replay", "--all"], ["purge", "--yes"]):
            rc, out, err = self.dead_cli(sub[0], "nope", *sub[1:])
            self.assertEqual(rc, 1, sub)
            self.assertIn("no queue 'nope'", err)


class TestReplay(DeadCase):
    def test_replay_one_id_cleans_headers_and_keeps_the_rest(self):
        self.declare()
        sig = "v1=" + "ab" * 32
        extra = {"x-warren-attempt": 3, "x-warren-last-error": "earlier",
                 "x-warren-max-attempts": 7, "x-warren-signature": sig, "x-custom": "kept",
                 "x-death": [{"queue": "q", "reason": "expired", "count": 1,
                              "exchange": "", "routing-keys": ["q"]}],
                 "x-first-death-queue": "q", "x-last-death-reason": "expired"}
        a, b, c = [self.letter(worker="diag.record", body={"k": i}, headers=extra)
                   for i in range(3)]
        rc, out, err = self.dead_cli("replay", "default", "--id", b)
        self.assertEqual(rc, 0, err)
        self.assertIn("replayed 1 letter(s)", out)
        self.assertEqual(self.dead_ids(), [a, c])
        [(method, props, body)] = harness.get_all(self.work)
        self.assertEqual(method.exchange, self.ns)
        self.assertEqual(method.routing_key, "diag.record")
        self.assertEqual(props.message_id, b)
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(props.type, "diag.record")
        self.assertEqual(json.loads(body), {"k": 1})
        h = props.headers or {}
        for name in DEAD_HEADERS + ("x-death", "x-first-death-queue", "x-last-death-reason"):
            self.assertNotIn(name, h)
        self.assertEqual(h["x-warren-attempt"], 1)
        self.assertEqual(harness.header(props, "x-warren-signature"), sig)
        self.assertEqual(h["x-warren-max-attempts"], 7)
        self.assertEqual(harness.header(props, "x-custom"), "kept")

    def test_replayed_job_runs_with_attempt_1_and_its_id(self):
        host = self.start_host()
        host.wait_log(r"consum", timeout=15)
        job = self.letter(worker="diag.record", body={"parked": True}, typed=False,
                          headers={"x-warren-attempt": 4,
                                   "x-death": [{"queue": self.work, "reason": "rejected",
                                                "count": 1, "exchange": self.ns,
                                                "routing-keys": ["diag.record"]}]})
        keep = self.letter(worker="diag.record", body={"parked": "still"})
        rc, out, err = self.dead_cli("replay", "default", "--id", job)
        self.assertEqual(rc, 0, err)
        recs = harness.wait_for(lambda: harness.read_records(self.records), 15)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["id"], job)
        self.assertEqual(recs[0]["attempt"], 1)
        self.assertEqual(recs[0]["worker"], "diag.record")
        self.assertEqual(recs[0]["args"], {"parked": True})
        self.assertEqual(self.dead_ids(), [keep])

    def test_replay_all_with_worker_and_reason(self):
        self.declare()
        r1 = self.letter(worker="diag.record", reason="permanent_failure")
        self.letter(worker="diag.record", reason="max_attempts")
        self.letter(worker="diag.echo", reason="permanent_failure")
        r2 = self.letter(worker="diag.record", reason="permanent_failure")
        rc, out, err = self.dead_cli("replay", "default", "--all", "--worker", "diag.record",
                                     "--reason", "permanent_failure")
        self.assertEqual(rc, 0, err)
        self.assertIn("replayed 2 letter(s)", out)
        self.assertEqual([p.message_id for _, p, _ in harness.get_all(self.work)], [r1, r2])
        rows = self.list_json()
        self.assertEqual([(r["worker"], r["reason"]) for r in rows],
                         [("diag.record", "max_attempts"), ("diag.echo", "permanent_failure")])

    def test_replay_all_with_since_and_error(self):
        self.declare()
        self.letter(error="smtp timeout", failed_at=rfc3339(7200))
        new = self.letter(error="smtp timeout", failed_at=rfc3339(5))
        self.letter(error="disk full", failed_at=rfc3339(5))
        rc, out, err = self.dead_cli("replay", "default", "--all", "--since", "10m",
                                     "--error", "smtp")
        self.assertEqual(rc, 0, err)
        self.assertIn("replayed 1 letter(s)", out)
        self.assertEqual([p.message_id for _, p, _ in harness.get_all(self.work)], [new])
        self.assertEqual(harness.queue_count(self.dead), 2)

    def test_missing_id_exits_1_after_the_others(self):
        self.declare()
        a = self.letter()
        b = self.letter()
        rc, out, err = self.dead_cli("replay", "default", "--id", "nope-1", "--id", a)
        self.assertEqual(rc, 1)
        self.assertIn("replayed 1 letter(s)", out)
        self.assertIn("warren dead replay: id nope-1 not found", err)
        self.assertEqual([p.message_id for _, p, _ in harness.get_all(self.work)], [a])
        self.assertEqual(self.dead_ids(), [b])

    def test_id_filtered_out_is_kept_and_exits_1(self):
        self.declare()
        a = self.letter(reason="malformed")
        rc, out, err = self.dead_cli("replay", "default", "--id", a, "--reason", "max_attempts")
        self.assertEqual(rc, 1)
        self.assertIn("does not match", err)
        self.assertEqual(self.dead_ids(), [a])

    def test_letter_without_worker_is_kept_with_a_warning(self):
        self.declare()
        lost = self.letter(worker="diag.echo", typed=False, original_exchange="other")
        fine = self.letter(worker="diag.echo")
        rc, out, err = self.dead_cli("replay", "default", "--all")
        self.assertEqual(rc, 0, err)
        self.assertIn("replayed 1 letter(s)", out)
        self.assertIn("no usable worker name", err)
        self.assertEqual(self.dead_ids(), [lost])
        self.assertEqual([p.message_id for _, p, _ in harness.get_all(self.work)], [fine])

    def test_unserved_worker_goes_to_unroutable(self):
        self.declare()
        a = self.letter(worker="nobody.serves")
        rc, out, err = self.dead_cli("replay", "default", "--all")
        self.assertEqual(rc, 0, err)
        [(_, props, _)] = harness.get_all(self.ns + ".unroutable")
        self.assertEqual(props.message_id, a)

    def test_dry_run_changes_nothing(self):
        self.declare()
        ids = self.letters(3, worker="diag.record")
        other = self.letter(worker="diag.echo")
        rc, out, err = self.dead_cli("replay", "default", "--all", "--worker", "diag.record",
                                     "--dry-run")
        self.assertEqual(rc, 0, err)
        for i in ids:
            self.assertIn(i, out)
        self.assertNotIn(other, out)
        self.assertIn("would replay 3 letter(s)", out)
        self.assertNotIn("dead.replay", err)
        rc, out, err = self.dead_cli("replay", "default", "--all", "--dry-run", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual([r["id"] for r in json.loads(out)], ids + [other])
        self.assertEqual(harness.queue_count(self.work), 0)
        self.assertEqual(self.dead_ids(), ids + [other])

    def test_audit_line_per_replayed_letter(self):
        self.declare()
        ids = self.letters(3)
        rc, out, err = self.dead_cli("replay", "default", "--all", "--reason",
                                     "permanent_failure", env={"USER": "auditor"})
        self.assertEqual(rc, 0, err)
        lines = [l for l in err.splitlines() if "dead.replay" in l]
        self.assertEqual(len(lines), 3, err)
        for line, i in zip(lines, ids):
            fields = json.loads(line[line.index("{"):])
            self.assertEqual(fields["user"], "auditor")
            self.assertEqual(fields["queue"], "default")
            self.assertEqual(fields["id"], i)
            self.assertEqual(fields["filter"], {"all": True, "reason": "permanent_failure"})

    def test_replay_killed_midway_loses_nothing(self):
        self.declare()
        ids = set(self.letters(200, worker="diag.record"))
        env = harness.base_env({"WARREN_URL": None})
        proc = subprocess.Popen([harness.WARREN, "dead", "replay", "default", "--all", "-c",
                                 self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env)
        seen = 0
        deadline = time.monotonic() + 0.2
        for line in proc.stderr:   # kill once some were replayed, or after ~0.2 s
            seen += b"dead.replay" in line
            if seen >= 20 or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()
        # Unacked letters return to the queue once the broker sees the
        # connection gone.
        harness.wait_for(lambda: harness.queue_count(self.dead) +
                         harness.queue_count(self.work) >= 200, 15, 0.2,
                         "200 letters accounted for")
        dead = [p.message_id for _, p, _ in harness.get_all(self.dead)]
        replayed = [p.message_id for _, p, _ in harness.get_all(self.work)]
        print("\nkilled after %d audit line(s): %d still dead, %d replayed"
              % (seen, len(dead), len(replayed)))
        self.assertGreaterEqual(len(dead) + len(replayed), 200)
        self.assertEqual(set(dead) | set(replayed), ids)
        self.assertGreater(len(dead), 0, "the replay finished before it was killed")


class TestPurge(DeadCase):
    def test_purge_needs_yes(self):
        self.declare()
        self.letters(2)
        rc, out, err = self.dead_cli("purge", "default")
        self.assertEqual(rc, 2)
        self.assertIn("--yes", err)
        self.assertEqual(harness.queue_count(self.dead), 2)

    def test_purge_yes_empties_and_audits(self):
        self.declare()
        self.letters(4)
        rc, out, err = self.dead_cli("purge", "default", "--yes", env={"USER": "auditor"})
        self.assertEqual(rc, 0, err)
        self.assertIn("purged 4 letter(s)", out)
        self.assertEqual(harness.queue_count(self.dead), 0)
        [line] = [l for l in err.splitlines() if "dead.purge" in l]
        fields = json.loads(line[line.index("{"):])
        self.assertEqual((fields["user"], fields["queue"], fields["count"]),
                         ("auditor", "default", 4))

    def test_purge_with_filter_removes_only_matching(self):
        self.declare()
        keep1 = self.letter(reason="max_attempts")
        gone1 = self.letter(reason="malformed")
        keep2 = self.letter(reason="permanent_failure")
        gone2 = self.letter(reason="malformed")
        rc, out, err = self.dead_cli("purge", "default", "--yes", "--reason", "malformed")
        self.assertEqual(rc, 0, err)
        self.assertIn("purged 2 letter(s)", out)
        self.assertEqual(self.dead_ids(), [keep1, keep2])
        [line] = [l for l in err.splitlines() if "dead.purge" in l]
        fields = json.loads(line[line.index("{"):])
        self.assertEqual(fields["ids"], [gone1, gone2])
        self.assertEqual(fields["filter"], {"reason": "malformed"})

    def test_purge_since_and_error(self):
        self.declare()
        old = self.letter(error="quota", failed_at=rfc3339(86400 * 2))
        self.letter(error="quota", failed_at=rfc3339(60))
        new_other = self.letter(error="other", failed_at=rfc3339(60))
        rc, out, err = self.dead_cli("purge", "default", "--yes", "--since", "1h",
                                     "--error", "quota")
        self.assertEqual(rc, 0, err)
        self.assertIn("purged 1 letter(s)", out)
        self.assertEqual(self.dead_ids(), [old, new_other])

    def test_purge_dry_run_removes_nothing(self):
        self.declare()
        ids = self.letters(3, reason="malformed")
        rc, out, err = self.dead_cli("purge", "default", "--dry-run")
        self.assertEqual(rc, 0, err)
        self.assertIn("would purge 3 letter(s)", out)
        rc, out, err = self.dead_cli("purge", "default", "--dry-run", "--json", "--reason",
                                     "malformed")
        self.assertEqual(rc, 0, err)
        self.assertEqual([r["id"] for r in json.loads(out)], ids)
        self.assertNotIn("dead.purge", err)
        self.assertEqual(self.dead_ids(), ids)


class TestUsage(DeadCase):
    def test_usage_errors_exit_2(self):
        for args in (["dead"], ["dead", "bogus"], ["dead", "list"],
                     ["dead", "list", "default", "--limit", "0"],
                     ["dead", "list", "default", "--limit", "x"],
                     ["dead", "list", "default", "--since", "yesterday"],
                     ["dead", "list", "default", "--reason", "because"],
                     ["dead", "list", "default", "--id", "x"],
                     ["dead", "list", "Bad.Queue"],
                     ["dead", "list", "default", "extra"],
                     ["dead", "replay", "default"],
                     ["dead", "replay", "default", "--worker", "diag.echo"],
                     ["dead", "replay", "default", "--all", "--json"],
                     ["dead", "replay", "default", "--id"],
                     ["dead", "purge", "default"],
                     ["dead", "purge", "default", "--reason", "malformed"]):
            rc, out, err = harness.cli(*args, "-c", self.conf)
            self.assertEqual(rc, 2, "%s: rc %d, %s" % (args, rc, err))
            self.assertIn("usage", err, args)
            self.assertEqual(out, "", args)

    def test_help_goes_to_stdout(self):
        for args in (["dead", "--help"], ["dead", "list", "--help"],
                     ["dead", "replay", "-h"], ["dead", "purge", "default", "--help"]):
            rc, out, err = harness.cli(*args)
            self.assertEqual(rc, 0, args)
            self.assertIn("usage: warren dead", out)
            self.assertIn("--dry-run", out)

    def test_listed_in_warren_help(self):
        rc, out, _ = harness.cli("--help")
        self.assertEqual(rc, 0)
        self.assertIn("dead", out)

    def test_broker_unreachable_exits_1(self):
        rc, _, err = harness.cli("dead", "list", "default", "--url",
                                 "amqp://guest:guest@127.0.0.1:1/")
        self.assertEqual(rc, 1)
        self.assertTrue(err.strip())


if __name__ == "__main__":
    harness.main()
