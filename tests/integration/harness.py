"""Helpers for warren's integration tests (Python 3 stdlib + pika 1.2).

Run tests with Debian's interpreter, /usr/bin/python3 (it has python3-pika):

    /usr/bin/python3 tests/integration/test_harness.py

Environment (ctest sets the last three; scripts/test and
`eval "$(scripts/broker env)"` set the first ones):
    WARREN_TEST_URL    broker for the tests (default amqp://guest:guest@127.0.0.1:21672/,
                       the private node of scripts/broker)
    WARREN_TEST_CTL    "rabbitmqctl -n NODE" of that node (optional: lists queues)
    WARREN_TEST_BROKER scripts/broker (restart/kill for fault tests)
    WARREN_TEST_LONG   "1" for the long variants
    WARREN_BUILD_DIR, WARREN_SOURCE_DIR, WARREN_MODULE_DIR

Every test works in its own namespace (`new_namespace()`), so tests can run
in parallel against one broker and never see each other's queues.

A typical test:

    import harness

    class TestEcho(harness.WarrenTestCase):
        def test_echo(self):
            host = self.start_host()                  # diag with record_file
            host.wait_log(r"consum", timeout=15)
            harness.publish_raw(self.ns, "diag.record", {"x": 1})
            recs = harness.wait_for(lambda: harness.read_records(self.records), 10)
            self.assertEqual(recs[0]["args"], {"x": 1})

    if __name__ == "__main__":
        harness.main()
"""

import json
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import pika

logging.getLogger("pika").setLevel(
    logging.DEBUG if os.environ.get("WARREN_TEST_DEBUG") else logging.CRITICAL)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEST_URL = "amqp://guest:guest@127.0.0.1:21672/"
TEST_URL = os.environ.get("WARREN_TEST_URL") or DEFAULT_TEST_URL
SOURCE_DIR = os.environ.get("WARREN_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("WARREN_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
MODULE_DIR = os.environ.get("WARREN_MODULE_DIR") or os.path.join(BUILD_DIR, "modules")
WARREND = os.path.join(BUILD_DIR, "src", "warrend")
WARREN = os.path.join(BUILD_DIR, "src", "warren")
BROKER_SCRIPT = os.environ.get("WARREN_TEST_BROKER") or os.path.join(SOURCE_DIR, "scripts", "broker")
LONG = os.environ.get("WARREN_TEST_LONG") == "1"


# --------------------------------------------------------------- waiting

def wait_for(cond, timeout=10.0, interval=0.1, message=None):
    """Calls cond() until it returns something truthy; returns that value.
    Raises AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                "timed out after %.1f s waiting for %s (last value: %r)"
                % (timeout, message or getattr(cond, "__name__", "condition"), last))
        time.sleep(interval)


# ---------------------------------------------------------------- broker

def connection_params(url=None):
    params = pika.URLParameters(url or TEST_URL)
    params.heartbeat = 0            # tests sleep while holding connections
    params.connection_attempts = 3
    params.retry_delay = 0.5
    params.socket_timeout = 10
    params.blocked_connection_timeout = 60
    return params


def connect(url=None):
    """A new pika.BlockingConnection to the test broker."""
    return pika.BlockingConnection(connection_params(url))


def channel(url=None, confirm=True):
    """A channel on a new connection (reach it with ch.connection; close it
    with close(ch)). Publisher confirms are on unless confirm=False."""
    ch = connect(url).channel()
    if confirm:
        ch.confirm_delivery()
    return ch


def close(ch):
    """Closes a channel's connection, ignoring errors."""
    try:
        if ch.connection.is_open:
            ch.connection.close()
    except Exception:
        pass


def broker_reachable(url=None):
    try:
        connect(url).close()
        return True
    except Exception:
        return False


def require_broker(url=None):
    """Raises a clear error when the test broker does not answer (tests
    fail, never skip, without a broker: a silent skip would hide it)."""
    if not broker_reachable(url):
        raise RuntimeError(
            "no RabbitMQ at %s: start one with `scripts/broker start` and "
            "`eval \"$(scripts/broker env)\"`, or run scripts/test" % (url or TEST_URL))


def ctl_command():
    """The rabbitmqctl command (a list) for the test node, or None."""
    ctl = os.environ.get("WARREN_TEST_CTL")
    return shlex.split(ctl) if ctl else None


def ctl(*args, timeout=60):
    """Runs `rabbitmqctl -n NODE ARGS` on the test node; returns stdout.
    Raises when WARREN_TEST_CTL is not set or the command fails."""
    cmd = ctl_command()
    if not cmd:
        raise RuntimeError("WARREN_TEST_CTL is not set (eval \"$(scripts/broker env)\")")
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd + list(args)), r.returncode,
                                                  r.stderr.strip() or r.stdout.strip()))
    return r.stdout


def _ctl_names(kind):
    """Names of all queues or exchanges of vhost / (needs WARREN_TEST_CTL)."""
    out = ctl("list_" + kind, "name", "--formatter", "json", "-q")
    try:
        return [row["name"] for row in json.loads(out or "[]")]
    except ValueError:
        return [l.strip() for l in out.splitlines() if l.strip()]


def list_queues():
    return _ctl_names("queues")


def list_exchanges():
    return _ctl_names("exchanges")


def queue_count(queue, url=None):
    """Ready messages in a queue, or None when the queue does not exist."""
    ch = channel(url, confirm=False)
    try:
        return ch.queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        close(ch)


def queue_consumers(queue, url=None):
    """Consumers on a queue, or None when the queue does not exist."""
    ch = channel(url, confirm=False)
    try:
        return ch.queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        close(ch)


def new_namespace():
    """A namespace no other test uses, e.g. 't3f9a0c1d'."""
    return "t" + secrets.token_hex(4)


def _in_namespace(name, ns):
    return name == ns or name.startswith(ns + ".")


def delete_namespace(ns, queues=(), exchanges=(), url=None):
    """Deletes the queues and exchanges of a namespace: those named, plus
    every one whose name is `ns` or starts with `ns.` when WARREN_TEST_CTL
    can list them."""
    qs, xs = set(queues), set(exchanges)
    if ctl_command():
        try:
            qs.update(q for q in list_queues() if _in_namespace(q, ns))
            xs.update(x for x in list_exchanges() if _in_namespace(x, ns))
        except Exception as e:  # listing is best effort
            print("harness: could not list broker objects: %s" % e, file=sys.stderr)
    _delete(qs, xs, url)


def purge_all(prefix="warren", url=None):
    """Deletes every queue and exchange whose name starts with `prefix`
    (needs WARREN_TEST_CTL). Prefer a namespace per test."""
    qs = [q for q in list_queues() if q.startswith(prefix)]
    xs = [x for x in list_exchanges() if x.startswith(prefix) and not x.startswith("amq.")]
    _delete(qs, xs, url)
    return qs, xs


def _delete(queues, exchanges, url=None):
    if not queues and not exchanges:
        return
    conn = connect(url)
    try:
        ch = conn.channel()
        for kind, names in (("queue", queues), ("exchange", exchanges)):
            for name in sorted(names):
                if not name or name.startswith("amq."):
                    continue
                try:
                    if kind == "queue":
                        ch.queue_delete(name)
                    else:
                        ch.exchange_delete(name)
                except pika.exceptions.ChannelClosedByBroker:
                    ch = conn.channel()
    finally:
        try:
            conn.close()
        except Exception:
            pass


def declare_entry(ns, url=None):
    """Declares the namespace's entry exchange `ns` (direct, durable,
    alternate-exchange ns.unroutable) and the `ns.unroutable` fanout exchange,
    exactly as the wire contract says, so jobs can be published before a
    host ran. Declares no queue."""
    ch = channel(url, confirm=False)
    try:
        ch.exchange_declare(ns + ".unroutable", "fanout", durable=True)
        ch.exchange_declare(ns, "direct", durable=True,
                            arguments={"alternate-exchange": ns + ".unroutable"})
    finally:
        close(ch)


def publish_raw(ns, worker, body=b"{}", properties=None, routing_key=None, exchange=None,
                headers=None, url=None, mandatory=False, ch=None):
    """Publishes one job with pika, publisher confirms on; returns its
    message_id (None when the properties have none).

    body: bytes, str, or anything json.dumps takes (dict, list, ...).
    properties: a pika.BasicProperties used as is, or a dict of overrides on
    the defaults (content_type application/json, delivery_mode 2, type =
    worker, a new message_id, timestamp now); a value of None removes it.
    exchange defaults to `ns`, routing_key to `worker`.
    Raises pika.exceptions.NackError / UnroutableError when the broker
    refuses it."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode("utf-8")
    if isinstance(properties, pika.BasicProperties):
        props = properties
    else:
        fields = {
            "content_type": "application/json",
            "delivery_mode": 2,
            "type": worker,
            "message_id": str(uuid.uuid4()),
            "timestamp": int(time.time()),
        }
        if headers is not None:
            fields["headers"] = dict(headers)
        for k, v in (properties or {}).items():
            fields[k] = v
        props = pika.BasicProperties(**{k: v for k, v in fields.items() if v is not None})
    own = ch is None
    if own:
        ch = channel(url)
    try:
        ch.basic_publish(exchange if exchange is not None else ns,
                         routing_key if routing_key is not None else (worker or ""),
                         bytes(body), props, mandatory=mandatory)
    finally:
        if own:
            close(ch)
    return props.message_id


def get_all(queue, ack=True, limit=100000, url=None):
    """Takes every ready message of a queue with basic.get; returns a list
    of (method, properties, body). With ack=False they go back to the queue
    (as redelivered) when the connection closes."""
    ch = channel(url, confirm=False)
    out = []
    try:
        while len(out) < limit:
            method, props, body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                break
            out.append((method, props, body))
        if ack and out:
            ch.basic_ack(out[-1][0].delivery_tag, multiple=True)
    finally:
        close(ch)
    return out


def wait_messages(queue, count, timeout=10.0, url=None):
    """Waits until `count` messages could be taken (acked) from a queue;
    returns them as get_all does."""
    got = []

    def more():
        got.extend(get_all(queue, url=url))
        return len(got) >= count

    wait_for(more, timeout, 0.1, "%d message(s) in %s" % (count, queue))
    return got


def header(props, name, default=None):
    """A header of a message's properties (None-safe), str for bytes."""
    h = (props.headers or {}).get(name, default) if props is not None else default
    if isinstance(h, bytes):
        return h.decode("utf-8", "replace")
    return h


# ------------------------------------------------------------- records

def read_records(path):
    """The lines diag.record appended to `path`, as dicts ([] when missing)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


# -------------------------------------------------------------- config

def _conf_value(v, indent="  "):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        return r if ("." in r or "e" in r) else r + ".0"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # libconfig knows \\ \" \n \t \r
    if isinstance(v, dict):
        inner = " ".join("%s = %s;" % (k, _conf_value(x, indent)) for k, x in v.items())
        return "{ %s }" % inner
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, dict) for x in v):   # a list of groups
            return "(\n%s%s\n)" % (indent, (",\n" + indent).join(_conf_value(x, indent) for x in v))
        return "[%s]" % ", ".join(_conf_value(x, indent) for x in v)
    raise TypeError("no libconfig form for %r" % (v,))


def conf_text(settings):
    """libconfig text for a dict of top-level settings."""
    return "".join("%s = %s;\n" % (k, _conf_value(v)) for k, v in settings.items())


def write_config(tmpdir, ns, extra="", url=None, record_file=None, name="warren.conf",
                 modules=None, **groups):
    """Writes a warren.conf for a test into tmpdir; returns its path.

    Defaults: namespace ns; broker.urls [url or the test URL];
    host { name "<ns>-host", concurrency 2, prefetch 1, shutdown_timeout
    "10s", metrics_listen "" (off), log_level "debug", log_format "text" };
    modules: diag with record_file (default tmpdir/records.jsonl).
    Keyword groups: broker= and host= dicts are merged into the defaults;
    any other keyword (retry=, queues=, workers=, schedules=, security=,
    events=, web=, ...) is written as given; a value of None leaves the
    setting out. modules= replaces the module list. `extra` is libconfig
    text appended as is (it must not repeat a setting written above)."""
    record_file = record_file or os.path.join(tmpdir, "records.jsonl")
    broker = {"urls": [url or TEST_URL], "heartbeat": 10}
    broker.update(groups.pop("broker", None) or {})
    host = {"name": ns + "-host", "concurrency": 2, "prefetch": 1,
            "shutdown_timeout": "10s", "metrics_listen": "", "log_level": "debug",
            "log_format": "text"}
    host.update(groups.pop("host", None) or {})
    if modules is None:
        modules = [{"path": "diag", "config": {"record_file": record_file}}]
    settings = {"namespace": ns, "broker": broker, "host": host, "modules": modules}
    settings.update(groups)
    settings = {k: v for k, v in settings.items() if v is not None}
    path = os.path.join(tmpdir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("# written by tests/integration/harness.py\n")
        f.write(conf_text(settings))
        if extra:
            f.write(extra if extra.endswith("\n") else extra + "\n")
    return path


# ------------------------------------------------------- processes

def base_env(env=None, url=None):
    """The environment for warren programs in tests: WARREN_URL removed
    (configs name the broker) unless url is given; WARREN_MODULE_DIR set."""
    e = dict(os.environ)
    e.pop("WARREN_URL", None)
    e.setdefault("WARREN_MODULE_DIR", MODULE_DIR)
    if url:
        e["WARREN_URL"] = url
    if env:
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
    return e


def cli(*args, input=None, env=None, timeout=60, url=None):
    """Runs build/src/warren ARGS; returns (rc, stdout, stderr) as str."""
    r = subprocess.run([WARREN] + [str(a) for a in args], input=input, capture_output=True,
                       text=True, env=base_env(env, url), timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def children(pid):
    """PIDs of the direct children of pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(pid) and fields[0] != "Z":
            out.append(int(d))
    return sorted(out)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("utf-8", "replace")
        return stat[stat.rfind(")") + 2:].split()[0] != "Z"
    except OSError:
        return False


class Host:
    """One warrend process tree started from a config file.

        h = Host(conf, tmpdir).start()
        h.wait_log(r"consuming")
        rc = h.stop()
    """

    def __init__(self, config, tmpdir=None, name="host", env=None, args=(), binary=None,
                 url=None):
        self.config = config
        self.tmpdir = tmpdir or os.path.dirname(os.path.abspath(config))
        self.name = name
        self.log_path = os.path.join(self.tmpdir, "%s.log" % name)
        self.env = base_env(env, url)
        self.args = list(args)
        self.binary = binary or WARREND
        self.proc = None
        self._log = None

    # lifecycle
    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", self.config] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def returncode(self):
        return self.proc.poll() if self.proc else None

    def wait(self, timeout=30):
        """Waits for the host to exit; returns its exit code."""
        return self.proc.wait(timeout)

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends sig (SIGTERM) and waits up to timeout; returns the exit code
        (negative for a signal). A host still running then is killed with
        its whole process group and AssertionError raised."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("%s did not exit within %s s of %s\n%s" % (
                    self.name, timeout, signal.Signals(sig).name, self.log_tail()))
        self._reap_group()
        self._close_log()
        return self.proc.returncode

    def kill(self):
        """SIGKILL to the host's whole process group (supervisor and workers)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._close_log()

    def _reap_group(self):
        # Workers left behind by a supervisor that exited are a bug the test
        # may look for; here they are only cleaned up.
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    # workers
    def pids(self):
        """PIDs of the supervisor's child processes (its worker processes)."""
        return children(self.proc.pid) if self.alive() else []

    def wait_workers(self, count, timeout=15):
        """Waits until the supervisor has `count` children; returns their pids."""
        return wait_for(lambda: (lambda p: p if len(p) == count else None)(self.pids()),
                        timeout, 0.1, "%d worker processes of %s" % (count, self.name))

    def kill_worker(self, sig=signal.SIGKILL, pid=None):
        """Sends sig to one worker process (the first, or pid); returns its pid."""
        pids = self.pids()
        if pid is None:
            if not pids:
                raise AssertionError("%s has no worker process" % self.name)
            pid = pids[0]
        os.kill(pid, sig)
        return pid

    # log
    def log_text(self):
        try:
            with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def mark(self):
        """The log's current length: pass it as since= to wait_log to look
        only at what comes after."""
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def wait_log(self, regex, timeout=10.0, since=0, flags=re.M):
        """Waits until the log (from byte `since`) matches regex; returns the
        match. Fails early when the host exited."""
        rx = re.compile(regex, flags)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(since)
                    text = f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                text = ""
            m = rx.search(text)
            if m:
                return m
            exited = not self.alive()
            if exited or time.monotonic() >= deadline:
                raise AssertionError("%s: no log line matching %r %s\n--- %s (tail)\n%s" % (
                    self.name, regex,
                    "(host exited with %s)" % self.returncode() if exited
                    else "within %.1f s" % timeout,
                    self.log_path, self.log_tail()))
            time.sleep(0.05)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        if self.alive():
            try:
                self.stop(timeout=30)
            except AssertionError:
                pass
        return False


# ---------------------------------------------------------- broker faults

def broker_command(cmd, timeout=180):
    """Runs `scripts/broker CMD NAME` for the test node (restart, kill,
    start, stop); raises on failure."""
    name = os.environ.get("WARREN_TEST_BROKER_NAME", "test")
    r = subprocess.run([BROKER_SCRIPT, cmd, name], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("scripts/broker %s %s failed: %s" % (cmd, name, r.stderr.strip()))
    return r.stderr


# ------------------------------------------------------------ test case

class WarrenTestCase(unittest.TestCase):
    """A TestCase with a fresh namespace (self.ns), a temporary folder
    (self.tmpdir) and diag's record file (self.records). Hosts started
    with start_host() are stopped and the namespace deleted afterwards;
    on failure the hosts' log tails are printed and the folder is kept."""

    require_binaries = True

    @classmethod
    def setUpClass(cls):
        require_broker()
        if cls.require_binaries:
            for b in (WARREND, WARREN):
                if not os.access(b, os.X_OK):
                    raise RuntimeError("%s is not built (run scripts/build)" % b)

    def setUp(self):
        self.ns = new_namespace()
        self.tmpdir = tempfile.mkdtemp(prefix="warren-it-%s-" % self.ns)
        self.records = os.path.join(self.tmpdir, "records.jsonl")
        self.hosts = []
        self.addCleanup(self._cleanup)

    def write_config(self, extra="", name="warren.conf", **kw):
        return write_config(self.tmpdir, self.ns, extra, record_file=self.records,
                            name=name, **kw)

    def start_host(self, config=None, name=None, env=None, args=(), **kw):
        """Starts warrend on config (written with write_config(**kw) when
        None); returns the Host."""
        name = name or "host%d" % (len(self.hosts) + 1)
        if config is None:
            kw.setdefault("host", {})
            kw["host"] = dict(kw["host"])
            kw["host"].setdefault("name", "%s-%s" % (self.ns, name))
            config = self.write_config(name=name + ".conf", **kw)
        h = Host(config, self.tmpdir, name=name, env=env, args=args)
        self.hosts.append(h)
        return h.start()

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        errors = getattr(outcome, "errors", None)          # Python <= 3.10
        if errors is not None:
            return any(exc for _, exc in errors)
        result = getattr(outcome, "result", None)          # Python >= 3.11
        if result is None:
            return False
        return any(t is self for t, _ in list(result.failures) + list(result.errors))

    def _cleanup(self):
        failed = self._failed()
        for h in self.hosts:
            if h.alive():
                try:
                    h.stop(timeout=30)
                except AssertionError as e:
                    print(e, file=sys.stderr)
                    failed = True
            else:
                h.kill()  # workers a dead supervisor left behind
        if failed:
            for h in self.hosts:
                sys.stderr.write("\n--- %s: %s (last lines)\n%s\n" % (
                    self.id(), h.log_path, h.log_tail(80)))
            sys.stderr.write("--- kept %s\n" % self.tmpdir)
        try:
            delete_namespace(self.ns)
        except Exception as e:
            print("harness: could not delete namespace %s: %s" % (self.ns, e), file=sys.stderr)
        if not failed and not os.environ.get("WARREN_TEST_KEEP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def main():
    """unittest.main with verbose output; exits non-zero on failure."""
    unittest.main(verbosity=2)
