"""The `warren` command line against the private broker: publish (one,
batch, errors), config check, topology, stats, unroutable replay, URL
precedence and exit codes."""

import json

import harness


class TestCli(harness.WarrenTestCase):
    def conf(self, **kw):
        return self.write_config(name="cli.conf", **kw)

    def test_usage_errors_exit_2(self):
        for args in ([], ["nope"], ["publish"], ["publish", "bad name!"],
                     ["publish", "diag.echo", "[1]"], ["publish", "diag.echo", "{"],
                     ["publish", "diag.echo", "--priority", "12"],
                     ["publish", "diag.echo", "-", "--id", "x"],
                     ["config"], ["config", "check"], ["stats", "--bogus"],
                     ["unroutable"], ["topology", "extra"]):
            rc, out, err = harness.cli(*args)
            self.assertEqual(rc, 2, "%s: rc %d, %s" % (args, rc, err))
            self.assertTrue(err.strip(), args)

    def test_help_goes_to_stdout(self):
        for args in (["--help"], ["publish", "--help"], ["stats", "--help"]):
            rc, out, _ = harness.cli(*args)
            self.assertEqual(rc, 0)
            self.assertIn("usage", out)

    def test_publish_prints_given_id_and_sets_properties(self):
        rc, out, err = harness.cli("publish", "diag.echo", '{"a":1}', "--id", "fixed-1",
                                   "--priority", "5", "--max-attempts", "2", "-c", self.conf())
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "fixed-1")
        [(method, props, body)] = harness.get_all(self.ns + ".unroutable")
        self.assertEqual(method.routing_key, "diag.echo")
        self.assertEqual(props.message_id, "fixed-1")
        self.assertEqual(props.priority, 5)
        self.assertEqual(props.type, "diag.echo")
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(harness.header(props, "x-warren-max-attempts"), 2)
        self.assertEqual(json.loads(body), {"a": 1})

    def test_publish_default_args_is_empty_object(self):
        rc, _, err = harness.cli("publish", "diag.echo", "-c", self.conf())
        self.assertEqual(rc, 0, err)
        [(_, _, body)] = harness.get_all(self.ns + ".unroutable")
        self.assertEqual(json.loads(body), {})

    def test_batch_with_a_bad_line_publishes_nothing(self):
        lines = '{"n": 1}\n\n{"n": 2\n[3]\n{"n": 4}\n'
        rc, out, err = harness.cli("publish", "diag.echo", "-", "-c", self.conf(), input=lines)
        self.assertEqual(rc, 2)
        self.assertIn("stdin:3:", err)
        self.assertIn("stdin:4:", err)
        self.assertEqual(out, "")
        self.assertEqual(harness.queue_count(self.ns + ".unroutable"), 0)

    def test_batch_publishes_every_line(self):
        lines = "".join('{"n": %d}\n' % i for i in range(300))
        rc, out, err = harness.cli("publish", "diag.echo", "-", "-c", self.conf(), input=lines)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(set(out.split())), 300)
        self.assertEqual(harness.queue_count(self.ns + ".unroutable"), 300)

    def test_unreachable_broker_exits_1(self):
        rc, _, err = harness.cli("publish", "diag.echo", "--url",
                                 "amqp://guest:secret@127.0.0.1:1/")
        self.assertEqual(rc, 1)
        self.assertIn("127.0.0.1", err)
        self.assertNotIn("secret", err)

    def test_url_flag_beats_environment_and_config(self):
        conf = self.conf(broker={"urls": ["amqp://guest:guest@127.0.0.1:1/"]})
        rc, _, err = harness.cli("publish", "diag.echo", "-c", conf, "--url", harness.TEST_URL,
                                 env={"WARREN_URL": "amqp://guest:guest@127.0.0.1:2/"})
        self.assertEqual(rc, 0, err)
        rc, _, err = harness.cli("publish", "diag.echo", "-c", conf,
                                 env={"WARREN_URL": harness.TEST_URL})
        self.assertEqual(rc, 0, err)
        rc, _, err = harness.cli("publish", "diag.echo", "-c", conf)
        self.assertEqual(rc, 1)

    def test_query_string_in_url_refused(self):
        rc, _, err = harness.cli("publish", "diag.echo", "--url",
                                 harness.TEST_URL.rstrip("/") + "/?heartbeat=5")
        self.assertEqual(rc, 2)
        self.assertIn("query", err)

    def test_vhost_slash_forms(self):
        base = harness.TEST_URL.rstrip("/")
        conf = self.conf()
        for url in (base, base + "/", base + "/%2f"):
            rc, _, err = harness.cli("publish", "diag.echo", "--url", url, "-c", conf)
            self.assertEqual(rc, 0, "%s: %s" % (url, err))

    def test_config_check(self):
        good = self.conf()
        rc, out, err = harness.cli("config", "check", good)
        self.assertEqual(rc, 0, err)
        bad = self.write_config(name="bad.conf", extra="host2 = { x = 1; };\n",
                                host={"concurrency": 0})
        rc, out, err = harness.cli("config", "check", bad)
        self.assertEqual(rc, 2)
        self.assertRegex(err, r"%s:\d+: .*concurrency" % bad)
        self.assertRegex(err, r"%s:\d+: .*host2" % bad)

    def test_shipped_config_checks(self):
        import os
        path = os.path.join(harness.SOURCE_DIR, "config", "warren.conf")
        rc, out, err = harness.cli("config", "check", path)
        self.assertEqual(rc, 0, err)

    def test_topology_declares_and_prints(self):
        conf = self.conf(queues=[{"name": "default"}, {"name": "bulk", "max_priority": 3}],
                         workers=[{"name": "diag.sleep", "queue": "bulk"}])
        rc, out, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)
        for name in (self.ns, self.ns + ".unroutable", self.ns + ".default",
                     self.ns + ".default.dead", self.ns + ".bulk", self.ns + ".bulk.dead"):
            self.assertIn(name, out)
        self.assertIn("x-max-priority=3", out)
        # idempotent
        rc, out2, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)
        # the binding routes diag.sleep to bulk
        harness.publish_raw(self.ns, "diag.sleep", {"ms": 1})
        self.assertEqual(harness.queue_count(self.ns + ".bulk"), 1)
        self.assertEqual(harness.queue_count(self.ns + ".default"), 0)

    def test_topology_check_declares_nothing_and_names_drift(self):
        conf = self.conf()
        rc, out, err = harness.cli("topology", "--check", "-c", conf)
        self.assertEqual(rc, 1, err)
        self.assertIn("queue '%s.default' is missing" % self.ns, out)
        rc, _, err = harness.cli("stats", "--json", "-c", conf)
        self.assertFalse(json.loads(_)["queues"][0]["exists"])  # --check created nothing
        rc, _, err = harness.cli("topology", "-c", conf)
        self.assertEqual(rc, 0, err)
        rc, out, err = harness.cli("topology", "--check", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertIn("matches", out)
        drifted = self.write_config(name="drift.conf",
                                    queues=[{"name": "default", "max_priority": 5}])
        rc, out, err = harness.cli("topology", "--check", "-c", drifted)
        self.assertEqual(rc, 1, err)
        self.assertIn("x-max-priority", out)

    def test_stats_and_unroutable_replay(self):
        conf = self.conf()
        for i in range(3):
            rc, _, err = harness.cli("publish", "diag.record", '{"n": %d}' % i, "-c", conf)
            self.assertEqual(rc, 0, err)
        rc, out, err = harness.cli("stats", "--json", "-c", conf)
        self.assertEqual(rc, 0, err)
        stats = json.loads(out)
        self.assertEqual(stats["unroutable"], 3)
        # a host that serves diag.record arrives; replay hands the jobs over
        host = self.start_host()
        host.wait_log(r"worker\.ready", 20)
        rc, out, err = harness.cli("unroutable", "replay", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertIn("replayed 3", out)
        recs = harness.wait_for(lambda: (lambda r: r if len(r) == 3 else None)(
            harness.read_records(self.records)), 20)
        self.assertEqual(sorted(r["args"]["n"] for r in recs), [0, 1, 2])
        rc, out, err = harness.cli("stats", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertIn("unroutable: 0", out)
        self.assertRegex(out, r"default\s+0\s+-\s+2\s+0")

    def test_replay_keeps_unserved_jobs(self):
        conf = self.conf()
        harness.cli("publish", "nobody.home", "-c", conf)
        rc, out, err = harness.cli("unroutable", "replay", "-c", conf)
        self.assertEqual(rc, 0, err)
        self.assertEqual(harness.queue_count(self.ns + ".unroutable"), 1)


if __name__ == "__main__":
    harness.main()
