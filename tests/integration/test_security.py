"""Signed jobs and secrets.

With security.require_signature, a job that is unsigned, forged, or a
signed job replayed with its body (or worker) changed is parked as
bad_signature and never reaches its handler; jobs signed by `warren
publish` with the key run, also after a retry and after a delay. With a
key but without require_signature, unsigned jobs run and wrong signatures
are still parked. Passwords and keys never show up in output, logs,
dead letters or process titles, and secret files that others can read
are reported by name.

See docs/security.md. The host-side checks need the signature check
wired into warrend (worker.c) and warrend's start-up check (main.c)."""

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import threading
import time

import harness
from harness import header

KEY = "k3y-for-warren-signature-tests-do-not-print"
SIG_ZERO = "v1=" + "0" * 64


def write_secret(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)  # whatever the umask did
    return path


class SigningCase(harness.WarrenTestCase):
    required = True

    def setUp(self):
        super().setUp()
        self.key = write_secret(os.path.join(self.tmpdir, "signing.key"), KEY + "\n")
        self.security = {"signing_key_file": self.key,
                         "require_signature": self.required}
        self.cli_conf = self.write_config(name="cli.conf", security=self.security)
        self.dead = self.ns + ".default.dead"

    def start(self, **kw):
        self.host = self.start_host(security=self.security,
                                    retry={"initial_delay": "1s", "jitter": 0.0}, **kw)
        self.host.wait_log(r"worker\.ready", timeout=20)
        return self.host

    def publish_signed(self, worker, args, *extra):
        rc, out, err = harness.cli("publish", worker, args, "-c", self.cli_conf, *extra)
        self.assertEqual(rc, 0, err)
        self.assertNotIn(KEY, out + err)
        return out.strip()

    def capture_signed(self, worker, args):
        """A job signed by `warren publish`, taken back before any host
        runs: with no queue bound yet it waits in <ns>.unroutable.
        Returns (properties, body)."""
        job_id = self.publish_signed(worker, args)
        [(_, props, body)] = harness.wait_messages(self.ns + ".unroutable", 1, 10)
        self.assertEqual(props.message_id, job_id)
        self.assertRegex(header(props, "x-warren-signature"), r"^v1=[0-9a-f]{64}$")
        return props, body

    def parked(self, count, timeout=20):
        """The dead letters, by message id."""
        got = harness.wait_messages(self.dead, count, timeout)
        return {p.message_id: (p, b) for _, p, b in got}

    def recs(self):
        return harness.read_records(self.records)

    def assert_bad_signature(self, props, error):
        self.assertEqual(header(props, "x-warren-dead-reason"), "bad_signature")
        self.assertEqual(header(props, "x-warren-error"), error)
        self.assertNotIn(KEY, str(props.headers))


class TestRequiredSignature(SigningCase):
    required = True

    def test_unsigned_forged_and_tampered_never_run(self):
        signed, body = self.capture_signed("diag.record", '{"n": "original"}')
        sig = header(signed, "x-warren-signature")
        self.start()

        def send(case, worker="diag.record", data=body, **props):
            """The captured job with one thing changed; x-test (unsigned,
            like every header but the signature) names the case."""
            fields = {"message_id": signed.message_id, "timestamp": signed.timestamp,
                      "headers": {"x-warren-signature": sig, "x-test": case}}
            fields.update(props)
            harness.publish_raw(self.ns, worker, data, properties=fields)

        send("unsigned", headers={"x-test": "unsigned"})
        send("forged", headers={"x-warren-signature": SIG_ZERO, "x-test": "forged"})
        send("body", data=b'{"n": "modified"}')
        send("worker", worker="diag.echo")
        send("id", message_id=signed.message_id + "-2")
        send("no id", message_id=None)
        send("timestamp", timestamp=signed.timestamp + 1)
        send("no timestamp", timestamp=None)
        # Uppercase hex spells the same digest, and is still refused.
        send("uppercase", headers={"x-warren-signature": "v1=" + sig[3:].upper(),
                                   "x-test": "uppercase"})

        got = harness.wait_messages(self.dead, 9, 30)
        dead = {header(p, "x-test"): (p, b) for _, p, b in got}
        self.assert_bad_signature(dead["unsigned"][0], "missing signature")
        for case in ("forged", "body", "worker", "id", "no id", "timestamp", "no timestamp",
                     "uppercase"):
            self.assert_bad_signature(dead[case][0], "signature does not match")
        self.assertEqual(dead["body"][1], b'{"n": "modified"}')  # parked as it came

        # An identical copy of the signed job is valid (docs/security.md:
        # a signature does not stop replay): it runs, and it alone ever ran.
        harness.publish_raw(self.ns, "diag.record", body, properties=signed)
        recs = harness.wait_for(self.recs, 15)
        time.sleep(1)
        self.assertEqual([(r["id"], r["args"]) for r in self.recs()],
                         [(signed.message_id, {"n": "original"})])
        self.assertEqual(len(recs), 1)
        self.assertEqual(harness.queue_count(self.dead), 0)
        text = self.host.log_text()
        self.assertNotIn(KEY, text)
        self.assertIn("missing signature", text)
        self.assertIn("signature does not match", text)

    def test_signed_by_cli_runs_also_after_retry_and_delay(self):
        self.start()
        first = self.publish_signed("diag.record", '{"n": 1}')
        delayed = self.publish_signed("diag.record", '{"n": 2}', "--delay", "1s")
        # Fails once, so its second attempt is a copy that went through the
        # delay levels: the signature must survive the hand-off.
        retried = self.publish_signed("diag.fail", '{"times": 1}', "--id", "retried-job")
        recs = harness.wait_for(lambda: len(self.recs()) >= 2 and self.recs(), 20)
        self.assertEqual(sorted(r["id"] for r in recs), sorted([first, delayed]))
        self.host.wait_log(r"diag\.fail retried-job succeeded \(attempt 2", timeout=20)
        self.assertEqual(retried, "retried-job")
        self.assertEqual(harness.queue_count(self.dead), 0)

    def test_batch_from_stdin_is_signed(self):
        self.start()
        lines = "".join('{"i": %d}\n' % i for i in range(20))
        rc, out, err = harness.cli("publish", "diag.record", "-", "-c", self.cli_conf,
                                   input=lines)
        self.assertEqual(rc, 0, err)
        recs = harness.wait_for(lambda: len(self.recs()) >= 20 and self.recs(), 30)
        self.assertEqual(sorted(r["args"]["i"] for r in recs), list(range(20)))
        self.assertEqual(harness.queue_count(self.dead), 0)

    def test_job_signed_in_python_runs(self):
        """The spec's recipe with Python's hmac module (as in
        docs/security.md): any client can sign jobs."""
        self.start()
        body = json.dumps({"from": "python"}).encode()
        mid, ts = "py-%d" % time.time_ns(), int(time.time())
        text = b"\n".join([b"diag.record", mid.encode(), str(ts).encode(), body])
        sig = "v1=" + hmac.new(KEY.encode(), text, hashlib.sha256).hexdigest()
        harness.publish_raw(self.ns, "diag.record", body,
                            properties={"message_id": mid, "timestamp": ts,
                                        "headers": {"x-warren-signature": sig}})
        recs = harness.wait_for(self.recs, 15)
        self.assertEqual(recs[0]["id"], mid)

    def test_wrong_key_is_refused(self):
        self.start()
        other = write_secret(os.path.join(self.tmpdir, "other.key"), "another key\n")
        conf = self.write_config(name="other.conf", security={"signing_key_file": other})
        rc, out, err = harness.cli("publish", "diag.record", '{"n": 1}', "-c", conf)
        self.assertEqual(rc, 0, err)
        [(_, props, _)] = harness.wait_messages(self.dead, 1, 20)
        self.assert_bad_signature(props, "signature does not match")
        self.assertEqual(self.recs(), [])

    def test_relative_key_path_is_the_config_folders(self):
        """security.signing_key_file = "signing.key" is read next to the
        config file, whatever the working directory of warren/warrend."""
        self.security = {"signing_key_file": "signing.key", "require_signature": True}
        self.cli_conf = self.write_config(name="cli-rel.conf", security=self.security)
        self.start()
        job = subprocess.run([harness.WARREN, "publish", "diag.record", '{"rel": 1}',
                              "-c", self.cli_conf], cwd="/", capture_output=True, text=True,
                             env=harness.base_env(), timeout=60)
        self.assertEqual(job.returncode, 0, job.stderr)
        recs = harness.wait_for(self.recs, 15)
        self.assertEqual(recs[0]["id"], job.stdout.strip())

    def test_key_rotation_with_reload(self):
        """The rotation of docs/security.md: the key file is replaced and
        the host reloaded (SIGHUP); jobs signed with the new key run, jobs
        still signed with the old one are parked."""
        self.start()
        old_job = self.publish_signed("diag.record", '{"key": "old"}')
        harness.wait_for(self.recs, 15)
        write_secret(self.key, "the-new-key\n")
        mark = self.host.mark()
        self.host.send_signal(signal.SIGHUP)
        self.host.wait_log(r"config\.reloaded", timeout=30, since=mark)
        # Wait until the workers started before the reload are gone.
        harness.wait_for(lambda: len(self.host.pids()) == 2, 30)
        time.sleep(1)
        new_job = self.publish_signed("diag.record", '{"key": "new"}')
        stale = write_secret(os.path.join(self.tmpdir, "old.key"), KEY + "\n")
        conf = self.write_config(name="stale.conf", security={"signing_key_file": stale})
        rc, out, err = harness.cli("publish", "diag.record", '{"key": "stale"}', "-c", conf)
        self.assertEqual(rc, 0, err)
        [(_, props, _)] = harness.wait_messages(self.dead, 1, 20)
        self.assertEqual(props.message_id, out.strip())
        self.assert_bad_signature(props, "signature does not match")
        recs = harness.wait_for(lambda: len(self.recs()) >= 2 and self.recs(), 15)
        self.assertEqual([r["id"] for r in recs], [old_job, new_job])
        self.assertNotIn("the-new-key", self.host.log_text())

    def test_missing_key_file_stops_the_host(self):
        os.unlink(self.key)
        host = self.start_host(security=self.security)
        self.assertEqual(host.wait(30), 2)
        self.assertIn(self.key, host.log_text())
        rc, out, err = harness.cli("publish", "diag.record", "{}", "-c", self.cli_conf)
        self.assertNotEqual(rc, 0)
        self.assertIn(self.key, err)


class TestOptionalSignature(SigningCase):
    """A key without require_signature: unsigned jobs run (a fleet being
    moved to signing), wrong signatures never do."""
    required = False

    def test_unsigned_runs_forged_is_parked(self):
        self.start()
        unsigned = harness.publish_raw(self.ns, "diag.record", {"n": "unsigned"})
        signed = self.publish_signed("diag.record", '{"n": "signed"}')
        forged = harness.publish_raw(self.ns, "diag.record", {"n": "forged"},
                                     headers={"x-warren-signature": SIG_ZERO})
        bad_prefix = harness.publish_raw(self.ns, "diag.record", {"n": "prefix"},
                                         headers={"x-warren-signature": "sha256=abc"})
        not_text = harness.publish_raw(self.ns, "diag.record", {"n": "int"},
                                       headers={"x-warren-signature": 42})
        dead = self.parked(3)
        for mid in (forged, bad_prefix, not_text):
            self.assert_bad_signature(dead[mid][0], "signature does not match")
        recs = harness.wait_for(lambda: len(self.recs()) >= 2 and self.recs(), 15)
        self.assertEqual(sorted(r["id"] for r in recs), sorted([unsigned, signed]))


class _SilentServer:
    """Accepts TCP connections and never answers: a client trying to log
    in waits there, long enough to look at its process."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


class TestSecrets(harness.WarrenTestCase):
    PW = "S3CRETPW-never-print-me"

    def assert_clean(self, *texts):
        for t in texts:
            self.assertNotIn(self.PW, t)

    def test_cli_errors_hide_the_password(self):
        url = "amqp://guest:%s@127.0.0.1:1/" % self.PW
        rc, out, err = harness.cli("publish", "diag.echo", "{}", "--url", url)
        self.assertNotEqual(rc, 0)
        self.assertIn("guest:***@127.0.0.1:1", err)
        self.assert_clean(out, err)
        # From WARREN_URL, and as a bad URL
        rc, out, err = harness.cli("publish", "diag.echo", "{}", url=url)
        self.assertNotEqual(rc, 0)
        self.assert_clean(out, err)
        for bad in ("amqp://guest:%s@127.0.0.1:1/?x=1", "amqp://guest:%s",
                    "amqp://guest:%s/vhost"):
            rc, out, err = harness.cli("publish", "diag.echo", "{}", "--url", bad % self.PW)
            self.assertEqual(rc, 2, err)
            self.assertIn("bad broker URL" if "@" not in bad else "query string", err)
            self.assert_clean(out, err)

    def test_cli_hides_the_password_from_ps(self):
        server = _SilentServer()
        self.addCleanup(server.close)
        url = "amqp://guest:%s@127.0.0.1:%d/" % (self.PW, server.port)
        proc = subprocess.Popen([harness.WARREN, "publish", "diag.echo", "{}", "--url", url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=harness.base_env())
        try:
            harness.wait_for(lambda: server.conns, 10, message="the CLI to connect")
            with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
            self.assertIn("127.0.0.1:%d" % server.port, cmdline)
            self.assert_clean(cmdline)
        finally:
            proc.kill()
            out, err = proc.communicate(timeout=10)
        self.assert_clean(out.decode(), err.decode())

    def test_host_with_bad_password(self):
        url = harness.TEST_URL.replace("guest:guest@", "guest:%s@" % self.PW)
        self.assertIn(self.PW, url)
        host = self.start_host(broker={"urls": [url]})
        host.wait_log(r"cannot log in", timeout=30)
        host.wait_log(r"retrying in", timeout=30)
        self.assertIn("guest:***@", host.log_text())
        for pid in [host.pid] + host.pids():
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                self.assert_clean(f.read().decode("utf-8", "replace"))
        host.stop()
        self.assert_clean(host.log_text())

    def test_password_file_never_printed(self):
        """broker.password_file replaces the URL's password; a wrong one
        is refused without being shown, and a right one is used even when
        the URL holds another (which is not shown either)."""
        pwfile = write_secret(os.path.join(self.tmpdir, "amqp.pw"), self.PW + "\n")
        host = self.start_host(broker={"password_file": pwfile})
        host.wait_log(r"cannot log in", timeout=30)
        host.stop()
        self.assert_clean(host.log_text())

        good = write_secret(os.path.join(self.tmpdir, "good.pw"), "guest\n")
        url = harness.TEST_URL.replace("guest:guest@", "guest:%s@" % self.PW)
        conf = self.write_config(name="pwfile.conf", broker={"urls": [url],
                                                            "password_file": good})
        for args in (("topology", "-c", conf), ("publish", "diag.echo", "{}", "-c", conf),
                     ("config", "check", conf)):
            rc, out, err = harness.cli(*args)
            self.assertEqual(rc, 0, "%s: %s" % (args[0], err))
            self.assert_clean(out, err)

    def test_topology_with_wrong_password(self):
        url = harness.TEST_URL.replace("guest:guest@", "guest:%s@" % self.PW)
        conf = self.write_config(name="bad.conf", broker={"urls": [url]})
        rc, out, err = harness.cli("topology", "-c", conf)
        self.assertNotEqual(rc, 0)
        self.assertIn("cannot log in", err)
        self.assert_clean(out, err)

    def test_world_readable_key_warns_with_its_name(self):
        key = write_secret(os.path.join(self.tmpdir, "open.key"), KEY + "\n", 0o644)
        pw = write_secret(os.path.join(self.tmpdir, "open.pw"), "guest\n", 0o640)
        conf = self.write_config(broker={"password_file": pw},
                                 security={"signing_key_file": key})
        rc, out, err = harness.cli("config", "check", conf)
        self.assertEqual(rc, 0, err)  # a warning, not an error
        self.assertRegex(err, r"%s: warning: security\.signing_key_file .*0644" % key)
        self.assertRegex(err, r"%s: warning: broker\.password_file .*0640" % pw)
        self.assertNotIn(KEY, out + err)

        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", timeout=20)
        self.assertRegex(host.log_text(), r"security\.permissions.*%s" % key)
        host.stop()
        self.assertNotIn(KEY, host.log_text())

        os.chmod(key, 0o600)
        os.chmod(pw, 0o600)
        rc, out, err = harness.cli("config", "check", conf)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("warning", err)

    def test_config_file_holding_a_password(self):
        url = harness.TEST_URL.replace("guest:guest@", "guest:%s@" % self.PW)
        conf = self.write_config(name="pw.conf", broker={"urls": [url]})
        os.chmod(conf, 0o644)
        rc, out, err = harness.cli("config", "check", conf, env={"WARREN_URL": None})
        self.assertEqual(rc, 0, err)
        self.assertIn("%s: warning" % conf, err)
        self.assertIn("holds a broker password", err)
        self.assert_clean(out, err)
        os.chmod(conf, 0o600)
        rc, out, err = harness.cli("config", "check", conf)
        self.assertNotIn("warning", err)


if __name__ == "__main__":
    harness.main()
