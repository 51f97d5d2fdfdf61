"""amqps:// for the CLI, the C producer (through the CLI) and warrend.

Starts its OWN RabbitMQ node (`scripts/broker start --fresh tls`) with a
TLS listener whose certificates tests/integration/tls/make-ca.sh makes,
and stops it in the class clean-up, also when a test or the start failed.
Each class starts the node with its own ssl_options:

  TestTLS                client certificates optional (verify_peer,
                         fail_if_no_peer_cert = false)
  TestClientCertificate  client certificate required (fail_if_no_peer_cert = true)

The TLS listener is on 127.0.0.1 and 127.0.0.2 (both loopback): the
broker's certificate names localhost and 127.0.0.1 only, so connecting to
127.0.0.2 is the hostname-mismatch case. The expired-certificate case
uses a small TLS server in this process, since a node has one certificate.

Ports: WARREN_TEST_TLS_PORT (AMQP; +1 Erlang distribution, +5 TLS), else
the first free block found from 31000 on (below the ephemeral range)."""

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading

import harness

NODE = "tls"
BROKER = os.path.join(harness.SOURCE_DIR, "scripts", "broker")
MAKE_CA = os.path.join(harness.HERE, "tls", "make-ca.sh")


def _free(port, host="127.0.0.1"):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_ports():
    """(amqp, dist, tls) ports that are free now."""
    fixed = os.environ.get("WARREN_TEST_TLS_PORT")
    bases = [int(fixed)] if fixed else range(31000, 32700, 20)
    for base in bases:
        if all(_free(p) for p in (base, base + 1, base + 5)) and _free(base + 5, "127.0.0.2"):
            return base, base + 1, base + 5
    raise RuntimeError("no free ports for the TLS node (set WARREN_TEST_TLS_PORT)")


def broker(cmd, env=None, timeout=180):
    r = subprocess.run([BROKER, cmd, NODE] + (["--fresh"] if cmd == "start" else []),
                       capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("scripts/broker %s %s failed: %s" % (cmd, NODE, r.stderr.strip()))


class TLSNodeCase(harness.WarrenTestCase):
    """Starts the private TLS node for the class; stops it in a class
    clean-up, which unittest runs even when setUpClass fails."""

    require_peer_cert = False

    @classmethod
    def setUpClass(cls):
        for b in (harness.WARREND, harness.WARREN):
            if not os.access(b, os.X_OK):
                raise RuntimeError("%s is not built (run scripts/build)" % b)
        cls.certs = tempfile.mkdtemp(prefix="warren-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        os.chmod(cls.certs, 0o755)  # the node runs as the rabbitmq user
        subprocess.run([MAKE_CA, cls.certs], check=True, capture_output=True, timeout=60)
        rabbit = pwd.getpwnam("rabbitmq")
        os.chown(cls.cert("server.key"), rabbit.pw_uid, rabbit.pw_gid)

        cls.amqp_port, dist_port, cls.tls_port = pick_ports()
        extra = cls.cert("rabbitmq-tls.conf")
        with open(extra, "w") as f:
            f.write("listeners.ssl.1 = 127.0.0.1:%d\n" % cls.tls_port)
            f.write("listeners.ssl.2 = 127.0.0.2:%d\n" % cls.tls_port)
            f.write("ssl_options.cacertfile = %s\n" % cls.cert("ca.pem"))
            f.write("ssl_options.certfile = %s\n" % cls.cert("server.pem"))
            f.write("ssl_options.keyfile = %s\n" % cls.cert("server.key"))
            f.write("ssl_options.verify = verify_peer\n")
            f.write("ssl_options.fail_if_no_peer_cert = %s\n"
                    % ("true" if cls.require_peer_cert else "false"))
        os.chmod(extra, 0o644)
        env = dict(os.environ, WARREN_BROKER_EXTRA_CONF=extra,
                   WARREN_TEST_AMQP_PORT=str(cls.amqp_port),
                   WARREN_TEST_DIST_PORT=str(dist_port), WARREN_TEST_MANAGEMENT="0")
        cls.addClassCleanup(broker, "stop", env)
        broker("start", env)
        cls.plain_url = "amqp://guest:guest@127.0.0.1:%d/" % cls.amqp_port
        harness.require_broker(cls.plain_url)

    @classmethod
    def cert(cls, name):
        return os.path.join(cls.certs, name)

    def amqps(self, host="127.0.0.1", port=None):
        return "amqps://guest:guest@%s:%d/" % (host, port or self.tls_port)

    def tls_conf(self, name="cli.conf", host="127.0.0.1", port=None, **tls):
        tls.setdefault("ca_cert", self.cert("ca.pem"))
        tls = {k: v for k, v in tls.items() if v is not None}
        return self.write_config(name=name, broker={"urls": [self.amqps(host, port)],
                                                    "tls": tls})

    def publish(self, conf, expect_ok=True):
        rc, out, err = harness.cli("publish", "diag.echo", '{"tls": true}', "-c", conf)
        if expect_ok:
            self.assertEqual(rc, 0, err)
            self.assertRegex(out, r"^[0-9a-f-]{36}\n$")
        else:
            self.assertEqual(rc, 1, "should have been refused: %s%s" % (out, err))
            self.assertEqual(out, "")
        print("\n    warren publish: rc %d %s" % (rc, (err or out).strip()))
        return err

    def unroutable(self):
        return harness.queue_count(self.ns + ".unroutable", url=self.plain_url)

    def run_host(self, **tls):
        """A warrend over amqps handles one job from `warren publish`."""
        tls.setdefault("ca_cert", self.cert("ca.pem"))
        host = self.start_host(broker={"urls": [self.amqps()], "tls": tls},
                               host={"concurrency": 1})
        host.wait_log(r"worker\.ready", timeout=30)
        self.assertIn("amqps://guest:***@127.0.0.1:%d" % self.tls_port, host.log_text())
        conf = self.tls_conf(**tls)
        rc, out, err = harness.cli("publish", "diag.record", '{"over": "tls"}', "-c", conf)
        self.assertEqual(rc, 0, err)
        recs = harness.wait_for(lambda: harness.read_records(self.records), 20)
        self.assertEqual(recs[0]["id"], out.strip())
        self.assertEqual(recs[0]["args"], {"over": "tls"})
        self.assertEqual(host.stop(), 0)


class _ExpiredServer:
    """A TLS server with the expired certificate (same CA, same names)."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as t:
                    t.recv(8)
            except (OSError, ssl.SSLError):
                pass

    def close(self):
        self.sock.close()


class TestTLS(TLSNodeCase):
    require_peer_cert = False

    def test_publish_verified(self):
        self.publish(self.tls_conf())
        self.assertEqual(self.unroutable(), 1)  # no host: kept, never dropped

    def test_publish_by_name(self):
        """localhost is a DNS name of the certificate's SAN."""
        self.publish(self.tls_conf(host="localhost"))

    def test_wrong_ca_refused(self):
        err = self.publish(self.tls_conf(ca_cert=self.cert("other-ca.pem")), expect_ok=False)
        self.assertIn("127.0.0.1:%d" % self.tls_port, err)
        self.assertIn("certificate verification failed", err)
        self.assertIn(self.cert("other-ca.pem"), err)
        self.assertIn("broker.tls.ca_cert", err)
        self.assertIsNone(self.unroutable())  # nothing was declared

    def test_system_cas_refused(self):
        """Without ca_cert the system's CAs are used: a private CA fails."""
        err = self.publish(self.tls_conf(ca_cert=None), expect_ok=False)
        self.assertIn("certificate verification failed", err)
        self.assertIn("system's CAs", err)

    def test_hostname_mismatch_refused(self):
        err = self.publish(self.tls_conf(host="127.0.0.2"), expect_ok=False)
        self.assertIn("127.0.0.2:%d" % self.tls_port, err)
        self.assertIn("hostname verification failed", err)
        self.assertIn("not valid for '127.0.0.2'", err)

    def test_hostname_check_off(self):
        self.publish(self.tls_conf(host="127.0.0.2", verify_hostname=False))

    def test_verification_off(self):
        self.publish(self.tls_conf(ca_cert=None, verify_peer=False, verify_hostname=False))

    def test_expired_certificate_refused(self):
        server = _ExpiredServer(self.cert("expired.pem"), self.cert("expired.key"))
        self.addCleanup(server.close)
        err = self.publish(self.tls_conf(port=server.port), expect_ok=False)
        self.assertIn("127.0.0.1:%d" % server.port, err)
        self.assertIn("certificate has expired", err)

    def test_plain_port_is_not_tls(self):
        err = self.publish(self.tls_conf(port=self.amqp_port), expect_ok=False)
        self.assertIn("TLS handshake failed", err)

    def test_unreadable_ca_file(self):
        conf = self.tls_conf(ca_cert=self.cert("missing.pem"))
        rc, out, err = harness.cli("publish", "diag.echo", "{}", "-c", conf)
        self.assertEqual(rc, 2, err)
        self.assertIn(self.cert("missing.pem"), err)
        self.assertIn("No such file", err)

    def test_optional_client_certificate(self):
        self.publish(self.tls_conf(cert=self.cert("client.pem"), key=self.cert("client.key")))

    def test_host_over_amqps(self):
        self.run_host()


class TestClientCertificate(TLSNodeCase):
    require_peer_cert = True

    def test_with_certificate_works(self):
        self.publish(self.tls_conf(cert=self.cert("client.pem"), key=self.cert("client.key")))
        self.assertEqual(self.unroutable(), 1)

    def test_without_certificate_refused(self):
        err = self.publish(self.tls_conf(), expect_ok=False)
        # The broker's alert ("certificate required") is named when it
        # arrives before the broker resets the connection; the hint always.
        self.assertIn("may require a client certificate", err)
        self.assertIn("broker.tls.cert", err)

    def test_certificate_of_another_ca_refused(self):
        err = self.publish(self.tls_conf(cert=self.cert("other-client.pem"),
                                         key=self.cert("other-client.key")), expect_ok=False)
        # As above: the broker's "unknown CA" alert can be lost when it
        # resets the connection first (TLS 1.3); the certificate is named
        # either way.
        self.assertTrue("unknown CA" in err or "refused the client certificate" in err, err)
        self.assertIn(self.cert("other-client.pem"), err)

    def test_key_not_matching_certificate(self):
        conf = self.tls_conf(cert=self.cert("client.pem"), key=self.cert("other-client.key"))
        rc, out, err = harness.cli("publish", "diag.echo", "{}", "-c", conf)
        self.assertEqual(rc, 2, err)
        self.assertIn("does not match", err)

    def test_host_with_client_certificate(self):
        self.run_host(cert=self.cert("client.pem"), key=self.cert("client.key"))

    def test_host_without_certificate_keeps_retrying(self):
        host = self.start_host(broker={"urls": [self.amqps()],
                                       "tls": {"ca_cert": self.cert("ca.pem")}})
        host.wait_log(r"cannot log in .*client certificate", timeout=30)
        self.assertTrue(host.alive())


if __name__ == "__main__":
    harness.main()
