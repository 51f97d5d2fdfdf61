"""The web page in a real browser: Debian's chromium, headless, driven by
Debian's python3-selenium (4.8) through /usr/bin/chromedriver.

A host with events enabled runs a mix of jobs (published with `warren
publish`, so `queued` events and args reach the history) and `warren web`
keeps their history; the test then reads the DOM after the page's scripts
ran:
  - the overview's state cards show the counts of /api/report and of the
    run, the queues table lists the queue with its dead letters, and on a
    phone-sized screen the body does not overflow sideways;
  - the jobs list shows the jobs, filtered by state and by worker;
  - a job's detail shows its state, attempt, last error and timeline;
  - args, errors, worker and host names that hold markup are shown as text:
    nothing they hold runs (window.pwned stays undefined);
  - the dead-letter page lists the groups, and a group replayed from the
    page (token entered in the page) goes back to work on a host, while a
    purge asks first and removes only its group;
  - the browser console logs no error.

Chromium, chromedriver and selenium come from `scripts/deps --test`
(scripts/test runs it); without them the test fails and says so, it does
not skip. With WARREN_SCREENSHOTS=DIR it saves overview.png, jobs.png,
job.png, overview-phone.png and dead.png there (docs/img/ holds a set)."""

import json
import os
import re
import time
import unittest
import urllib.request

import harness
from test_history import Web, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = (1280, 900)
PHONE = (390, 844)
TOKEN = "page-test-token-0123456789abcdef"
SCREENSHOTS = os.environ.get("WARREN_SCREENSHOTS")
XSS_ARGS = {"html": "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"}
WAIT = 20  # seconds for the page to show what the API already has

try:
    from selenium import webdriver
    from selenium.common.exceptions import (JavascriptException, NoAlertPresentException,
                                            NoSuchElementException,
                                            StaleElementReferenceException, TimeoutException,
                                            WebDriverException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    SELENIUM_ERROR = None
except ImportError as e:  # reported by start_browser(), as a failure
    SELENIUM_ERROR = e


def start_browser():
    """A headless Chromium under chromedriver; raises with what to install
    when something is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if SELENIUM_ERROR is not None:
        missing.append("selenium for /usr/bin/python3 (%s)" % SELENIUM_ERROR)
    if missing:
        raise RuntimeError("the browser test needs Debian's chromium, chromium-driver and "
                           "python3-selenium; missing: %s. Run scripts/deps --test (as root "
                           "or with sudo), which installs them." % ", ".join(missing))
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=%d,%d" % DESKTOP, "--no-proxy-server", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--lang=en-US"):
        opts.add_argument(arg)
    # Console messages, read back with get_log("browser").
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def screen(driver, size, mobile=False):
    """Sets the page's viewport to exactly size (a headless window's
    viewport is smaller than the window)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": mobile})


# JavaScript that reads a view in one go (the overview re-renders itself
# every 10 s, so elements found one by one could go stale in between).
JS_CARDS = """
const cards = document.querySelectorAll('#state-counts .card');
return Array.from(cards).map(c => [c.querySelector('.state').textContent,
                                   c.querySelector('.n').textContent]);"""
JS_TABLE_AFTER = """
// The rows of the first table after the <h2> whose text is arguments[0].
const h = Array.from(document.querySelectorAll('#main h2'))
  .find(x => x.textContent === arguments[0]);
if (!h) return null;
let n = h.nextElementSibling;
while (n && !n.querySelector('table') && n.tagName !== 'TABLE') n = n.nextElementSibling;
if (!n) return null;
const t = n.tagName === 'TABLE' ? n : n.querySelector('table');
return Array.from(t.querySelectorAll('tbody tr'))
  .map(r => Array.from(r.cells).map(c => c.textContent));"""
JS_FIELDS = """
const dl = document.getElementById('job-fields');
if (!dl) return null;
const out = {};
for (const dt of dl.querySelectorAll('dt'))
  out[dt.textContent] = dt.nextElementSibling.textContent;
return out;"""
JS_DEAD_GROUPS = """
const t = document.getElementById('dead-groups');
if (!t) return null;
return Array.from(t.querySelectorAll('tr.dead-group')).map(r => ({
  queue: r.dataset.queue, worker: r.dataset.worker, reason: r.dataset.reason,
  error: r.dataset.error, count: r.querySelector('td.count').textContent.trim(),
  text: r.textContent}));"""


DRIVER = None


def setUpModule():
    # One browser for the whole module (it is the heaviest process of the
    # suite), quit however the tests end.
    global DRIVER
    DRIVER = start_browser()
    unittest.addModuleCleanup(DRIVER.quit)


class PageCase(harness.WarrenTestCase):
    @property
    def driver(self):
        return DRIVER

    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.base = "http://127.0.0.1:%d/" % self.port
        screen(self.driver, DESKTOP)
        self.driver.get("about:blank")
        self.driver.get_log("browser")  # what an earlier test left

    # ------------------------------------------------------------ run
    def config(self, name="warren.conf", **kw):
        retry = {"max_attempts": 2, "initial_delay": 1, "multiplier": 1.0, "jitter": 0.0}
        kw.setdefault("host", {"concurrency": 4, "prefetch": 4, "name": self.ns + "-h"})
        kw.setdefault("retry", retry)
        return self.write_config(name=name, events={"enabled": True}, **kw)

    def start_web(self, conf):
        web = Web(conf, self.tmpdir, name="web", args=["--listen", "127.0.0.1:%d" % self.port])
        self.hosts.append(web)
        web.start()
        web.wait_log(r"listening on", 15)
        web.wait_log(r"consuming", 15)   # the history queue is bound: no event is lost
        return web

    def publish(self, conf, worker, *args_list, opts=()):
        """Publishes one job per args dict with `warren publish` (events
        on: a `queued` event carries the args); returns their ids."""
        lines = "".join(json.dumps(a) + "\n" for a in args_list)
        rc, out, err = harness.cli("publish", worker, "-", "-c", conf, *opts, input=lines)
        self.assertEqual(rc, 0, err)
        ids = out.split()
        self.assertEqual(len(ids), len(args_list), out)
        return ids

    def api(self, path):
        with urllib.request.urlopen(self.base.rstrip("/") + path, timeout=30) as r:
            return json.loads(r.read())

    def wait_states(self, want, timeout=60):
        def settled():
            try:
                return all(self.api("/api/jobs/" + i)["state"] == s for i, s in want.items())
            except OSError:  # 404 while a job has no event yet
                return False
        harness.wait_for(settled, timeout, 0.3, "job states %s" % want)

    # -------------------------------------------------------- browser
    def wait(self, cond, message, timeout=WAIT):
        """Waits until cond(driver) is truthy (stale elements and script
        errors while the page re-renders count as not yet); returns it."""
        last = [None]

        def attempt(d):
            try:
                last[0] = cond(d)
            except (StaleElementReferenceException, JavascriptException,
                    NoSuchElementException) as e:
                last[0] = e
                return None
            return last[0]
        try:
            return WebDriverWait(self.driver, timeout, 0.1).until(attempt)
        except TimeoutException:
            raise AssertionError("page: timed out after %s s waiting for %s (last: %r)\n"
                                 "page text:\n%s" % (timeout, message, last[0],
                                                     self.page_text())) from None

    def page_text(self):
        try:
            return self.driver.find_element(By.TAG_NAME, "body").text[:3000]
        except WebDriverException:
            return "(no page)"

    def open(self, route):
        """Loads the page afresh at a hash route, the way a bookmark
        would (not a same-document hash change: no view left over)."""
        self.driver.get("about:blank")
        self.driver.get(self.base + "#" + route)

    def alert(self):
        """The window.confirm the page opened."""
        self.wait(lambda d: self._alert(), "a confirmation dialog", 10)
        return self.driver.switch_to.alert

    def _alert(self):
        try:
            return self.driver.switch_to.alert
        except NoAlertPresentException:
            return None

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, name):
        if not SCREENSHOTS:
            return
        os.makedirs(SCREENSHOTS, exist_ok=True)
        time.sleep(0.3)  # the canvas and fonts settle
        path = os.path.join(SCREENSHOTS, name)
        self.assertTrue(self.driver.save_screenshot(path), path)
        print("screenshot: %s (%d bytes)" % (path, os.path.getsize(path)))

    def assert_no_console_errors(self, expected=()):
        """No error or warning in the browser's console since the last
        look, but one message matching each regex of `expected`."""
        try:
            logs = self.driver.get_log("browser")
        except WebDriverException as e:  # a chromedriver without the log endpoint
            print("note: browser console not checked: %s" % e)
            return
        bad = [l["message"] for l in logs if l.get("level") in ("SEVERE", "WARNING")]
        for rx in expected:
            found = [m for m in bad if re.search(rx, m)]
            self.assertEqual(len(found), 1, "one console message matching %r in %s"
                             % (rx, bad))
            bad.remove(found[0])
        self.assertEqual(bad, [], "the browser console logged errors")

    def assert_not_run(self):
        """Nothing from job data ran: every script on the page is app.js."""
        self.assertIsNone(self.js("return window.pwned"))
        self.assertEqual(self.js("return Array.from(document.scripts).map(s => s.src)"),
                         [self.base + "app.js"])
        self.assertEqual(self.js("return document.querySelectorAll('#main img').length"), 0)


class TestPage(PageCase):
    def test_overview_jobs_and_job_detail(self):
        conf = self.config(web={"db": "hist/warren.db"})
        self.start_web(conf)
        host = self.start_host(config=conf)
        host.wait_log(r"worker\.ready", 20)
        echo = self.publish(conf, "diag.echo", {"n": 1}, {"n": 2}, {"n": 3})
        noop = self.publish(conf, "diag.noop", {})
        once = self.publish(conf, "diag.fail", {"times": 1})[0]
        perm = self.publish(conf, "diag.fail", {"permanent": True}, {"permanent": True})
        always = self.publish(conf, "diag.fail", {"always": True})[0]
        xss = self.publish(conf, "diag.echo", XSS_ARGS)[0]
        later = self.publish(conf, "diag.echo", {"n": 4}, opts=("--delay", "1h"))[0]
        want = {i: "succeeded" for i in echo + noop + [once, xss]}
        want.update({i: "dead" for i in perm + [always]})
        want[later] = "scheduled"
        self.wait_states(want)
        counts = {"queued": 0, "scheduled": 1, "running": 0, "retrying": 0, "succeeded": 6,
                  "dead": 3}
        report = self.api("/api/report?since=24h")
        self.assertEqual({s: report["states"].get(s, 0) for s in counts}, counts)
        queues = self.api("/api/queues")["queues"]
        self.assertEqual([(q["name"], q["dead"]) for q in queues], [("default", 3)])

        # Overview: cards as in /api/report, the queue with its dead letters.
        self.open("/")
        cards = self.wait(lambda d: self.js(JS_CARDS), "the state cards")
        self.assertEqual(dict(cards), {s: str(n) for s, n in counts.items()})
        self.assertEqual([c[0] for c in cards], list(counts))
        qrows = self.wait(lambda d: self.js(JS_TABLE_AFTER, "Queues"), "the queues table")
        self.assertEqual(qrows, [[q["name"], str(q["ready"]), str(q["consumers"]),
                                  str(q["dead"])] for q in queues])
        self.assertEqual(qrows[0][3], "3")
        wrows = self.js(JS_TABLE_AFTER, "Workers (last 24 h)")
        self.assertEqual(sorted(r[0] for r in wrows), ["diag.echo", "diag.fail", "diag.noop"])
        fail = [r for r in wrows if r[0] == "diag.fail"][0]
        self.assertEqual(fail[1:4], ["1", "2", "3"])  # succeeded, retried, dead
        self.assertTrue(self.js("return document.getElementById('chart').width > 0"))
        self.shot("overview.png")

        # A phone: nothing wider than the screen.
        screen(self.driver, PHONE, mobile=True)
        self.open("/")
        self.wait(lambda d: self.js(JS_CARDS), "the state cards on a phone")
        widths = self.js("return [document.documentElement.clientWidth,"
                         " document.documentElement.scrollWidth, document.body.scrollWidth]")
        self.assertEqual(widths[0], PHONE[0])
        self.assertLessEqual(max(widths[1:]), widths[0], "the page overflows sideways")
        self.shot("overview-phone.png")
        screen(self.driver, DESKTOP)

        # Jobs: all of them, then filtered by state and by worker.
        def ids_listed(d):
            rows = self.js(JS_TABLE_AFTER, "Jobs")
            return rows and {r[0]: r for r in rows}
        self.open("/jobs")
        rows = self.wait(lambda d: (lambda r: r if r and len(r) == len(want) else None)(
            ids_listed(d)), "every job in the list")
        self.assertEqual(set(rows), set(want))
        for i, state in want.items():
            self.assertEqual(rows[i][1:3], [self.api("/api/jobs/" + i)["worker"], state])
        self.assertEqual(rows[always][3], "2")
        self.shot("jobs.png")
        self.open("/jobs?state=dead")
        rows = self.wait(lambda d: (lambda r: r if r and set(r) == set(perm + [always])
                                    else None)(ids_listed(d)), "the dead jobs only")
        self.assertEqual(self.js("return document.querySelector('select[name=state]').value"),
                         "dead")
        self.open("/jobs?worker=diag.echo")
        self.wait(lambda d: (lambda r: r if r and set(r) == set(echo + [xss, later])
                             else None)(ids_listed(d)), "diag.echo's jobs only")

        # A job that failed, retried and died: fields and timeline.
        job = self.api("/api/jobs/" + always)
        self.open("/job/" + always)
        fields = self.wait(lambda d: (lambda f: f if f and f.get("id") == always else None)(
            self.js(JS_FIELDS)), "the job's fields")
        self.assertEqual((fields["worker"], fields["queue"], fields["state"], fields["attempt"]),
                         ("diag.fail", "default", "dead", "2"))
        self.assertEqual(fields["last error"], job["error"])
        self.assertIn("transient failure (attempt 2)", fields["last error"])
        self.assertEqual(job["args"], {"always": True})
        self.assertEqual(json.loads(self.driver.find_element(By.ID, "job-args").text),
                         {"always": True})
        timeline = self.js(JS_TABLE_AFTER, "Timeline")
        self.assertEqual([(r[2], r[1]) for r in timeline],
                         [(e["event"], str(e["attempt"])) for e in job["timeline"]])
        self.assertEqual([r[2] for r in timeline], ["queued", "started", "failed", "retrying",
                                                    "started", "failed", "dead"])
        self.assertEqual({r[3] for r in timeline[1:]}, {self.ns + "-h"})
        self.assertIn("transient failure (attempt 1)", timeline[3][5])
        self.assertIn("(next in 1000 ms)", timeline[3][5])
        self.shot("job.png")

        # A job whose args hold markup shows them as text; nothing runs.
        self.open("/job/" + xss)
        self.wait(lambda d: (lambda f: f if f and f.get("id") == xss else None)(
            self.js(JS_FIELDS)), "the job with markup in its args")
        self.assertEqual(self.api("/api/jobs/" + xss)["args"], XSS_ARGS)
        shown = self.driver.find_element(By.ID, "job-args").text
        self.assertEqual(json.loads(shown), XSS_ARGS)
        self.assertIn(XSS_ARGS["html"], shown)
        self.assert_not_run()
        self.assert_no_console_errors()

    def test_markup_from_events_is_text(self):
        """Events are anyone's to publish: args, a worker name, host, error
        and reason holding markup are text in every view."""
        conf = self.config(web={"db": "hist/warren.db"})
        self.start_web(conf)
        bad = {"worker": "<img src=x onerror=window.pwned=3>",
               "host": "<script>window.pwned=4</script>",
               "error": "<b>bold</b><svg onload=window.pwned=5>",
               "reason": "<i>why</i>"}
        job_id = "page-test-" + self.ns
        ch = harness.channel()
        try:
            now = time.time()
            for event, at in (("queued", now - 2), ("started", now - 1), ("dead", now)):
                body = {"id": job_id, "worker": bad["worker"], "queue": "default",
                        "args": XSS_ARGS if event == "queued" else None,
                        "attempt": 1, "event": event,
                        "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) +
                        ".%03dZ" % (int(at * 1000) % 1000),
                        "host": bad["host"], "duration_ms": None,
                        "error": bad["error"] if event == "dead" else "",
                        "reason": bad["reason"] if event == "dead" else None}
                ch.basic_publish(self.ns + ".events", "x." + event,
                                 json.dumps({k: v for k, v in body.items() if v is not None}))
        finally:
            harness.close(ch)
        self.wait_states({job_id: "dead"}, 30)

        self.open("/")
        wrows = self.wait(lambda d: self.js(JS_TABLE_AFTER, "Workers (last 24 h)"),
                          "the workers table")
        self.assertEqual(wrows[0][0], bad["worker"])
        self.assertIn(bad["error"], wrows[0][-1])
        self.assert_not_run()
        self.open("/jobs")
        rows = self.wait(lambda d: self.js(JS_TABLE_AFTER, "Jobs"), "the jobs list")
        self.assertEqual(rows[0][:3], [job_id, bad["worker"], "dead"])
        self.assertEqual(rows[0][5], bad["error"])
        self.assert_not_run()
        self.open("/job/" + job_id)
        fields = self.wait(lambda d: self.js(JS_FIELDS), "the job's fields")
        self.assertEqual((fields["worker"], fields["last error"]), (bad["worker"], bad["error"]))
        timeline = self.js(JS_TABLE_AFTER, "Timeline")
        self.assertEqual([r[2] for r in timeline], ["queued", "started", "dead"])
        self.assertEqual([r[3] for r in timeline], [bad["host"]] * 3)
        self.assertEqual(timeline[2][5], "%s [%s]" % (bad["error"], bad["reason"]))
        shown = self.driver.find_element(By.ID, "job-args").text
        self.assertEqual(json.loads(shown), XSS_ARGS)
        self.assertIn(XSS_ARGS["html"], shown)
        self.assert_not_run()
        self.assert_no_console_errors()


class TestDeadPage(PageCase):
    def test_replay_and_purge_from_the_page(self):
        """Jobs that died because their host lacked a record_file are
        replayed from the page to a host that has one, and run; the other
        group is purged after the page asked for confirmation."""
        with open(os.path.join(harness.SOURCE_DIR, "web", "app.js"), encoding="utf-8") as f:
            if "dead-groups" not in f.read():
                self.fail("web/app.js has no dead-letter page yet (#dead-groups)")
        token_file = os.path.join(self.tmpdir, "web.token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token_file, 0o600)
        web = {"db": "hist/warren.db", "token_file": token_file}
        bare = self.config(name="bare.conf", web=web, modules=[{"path": "diag"}])
        self.start_web(bare)
        host = self.start_host(config=bare, name="bare")
        host.wait_log(r"worker\.ready", 20)
        lost = self.publish(bare, "diag.record", {"n": 1}, {"n": 2}, {"n": 3})
        perm = self.publish(bare, "diag.fail", {"permanent": True}, {"permanent": True})
        self.wait_states({i: "dead" for i in lost + perm})
        dead_queue = self.ns + ".default.dead"
        harness.wait_for(lambda: harness.queue_count(dead_queue) == 5, 10, 0.2,
                         "5 letters in " + dead_queue)
        host.stop()
        # The same jobs' host, now with a record_file: diag.record works.
        full = self.config(name="full.conf", web=web,
                           host={"concurrency": 2, "prefetch": 2, "name": self.ns + "-full"})
        full_host = self.start_host(config=full, name="full")
        full_host.wait_log(r"worker\.ready", 20)

        [q] = self.api("/api/dead")["queues"]
        self.assertEqual((q["queue"], q["dead_queue"], q["count"]), ("default", dead_queue, 5))
        by_worker = {g["worker"]: g for g in q["groups"]}
        self.assertEqual({w: g["count"] for w, g in by_worker.items()},
                         {"diag.record": 3, "diag.fail": 2})

        self.open("/dead")
        groups = self.wait(lambda d: (lambda g: g if g and len(g) == 2 else None)(
            self.js(JS_DEAD_GROUPS)), "two dead-letter groups")
        for g in groups:
            api = by_worker[g["worker"]]
            self.assertEqual((g["queue"], g["reason"], g["error"], g["count"]),
                             ("default", api["reason"], api["error"], str(api["count"])))
            self.assertIn(api["error"], g["text"])
        self.assertIn("record_file", by_worker["diag.record"]["error"])
        self.shot("dead.png")

        # A wrong token is refused and changes nothing.
        self.save_token("not-the-token")
        self.click_group("diag.record", "replay")
        result = self.wait(lambda d: self.js("return document.getElementById('action-result')"
                                             ".textContent"), "the refusal")
        self.assertNotRegex(result, r"replayed \d")
        self.assertEqual(harness.queue_count(dead_queue), 5)
        # The refusal itself is the only thing in the console.
        self.assert_no_console_errors([r"/api/dead/replay - .* 401 \(Unauthorized\)"])
        self.save_token(TOKEN)

        # Replay the diag.record group: its jobs run again on the full host.
        started = time.monotonic()
        self.click_group("diag.record", "replay")
        result = self.wait(lambda d: re.search(r"replayed 3\b", self.js(
            "return document.getElementById('action-result').textContent")) and self.js(
            "return document.getElementById('action-result').textContent"), "replayed 3")
        self.wait(lambda d: (lambda g: g if g is not None and [x["worker"] for x in g] ==
                             ["diag.fail"] else None)(self.js(JS_DEAD_GROUPS)),
                  "the groups reloaded without the replayed one")
        recs = harness.wait_for(
            lambda: (lambda r: r if len(r) >= 3 else None)(harness.read_records(self.records)),
            30, 0.2, "the 3 replayed jobs recorded")
        self.assertEqual(sorted(r["id"] for r in recs), sorted(lost))
        self.assertEqual({r["attempt"] for r in recs}, {1})
        print("replayed jobs ran within %.1f s of the click" % (time.monotonic() - started))
        self.wait_states({i: "succeeded" for i in lost}, 30)
        for i in lost:
            # A replay starts again at attempt 1: the timeline (ordered by
            # attempt and place in the lifecycle) has the second run beside
            # the first; its events came from the full host after the death.
            # (The producer's `queued` is stamped when the broker confirmed
            # the job, which may be after the first run ended: left out.)
            timeline = self.api("/api/jobs/" + i)["timeline"]
            [died] = [e["at"] for e in timeline if e["event"] == "dead"]
            again = [(e["event"], e["host"]) for e in timeline
                     if e["at"] > died and e["event"] != "queued"]
            self.assertEqual(again, [("started", self.ns + "-full"),
                                     ("succeeded", self.ns + "-full")], timeline)
        self.assertEqual(harness.queue_count(dead_queue), 2)
        self.assertEqual(harness.queue_count(self.ns + ".default"), 0)

        # The page shows the replay: on the job, and on the new run's rows.
        self.open("/job/" + lost[0])
        fields = self.wait(lambda d: (lambda f: f if f and f.get("id") == lost[0] else None)(
            self.js(JS_FIELDS)), "the replayed job's fields")
        self.assertEqual((fields["state"], fields["attempt"], fields.get("replay")),
                         ("succeeded", "1", "1"), fields)
        rows = self.js(JS_TABLE_AFTER, "Timeline")
        self.assertEqual([r[1] for r in rows if r[2] == "succeeded"], ["1 (replay 1)"], rows)
        self.assertIn("dead", [r[2] for r in rows if "replay" not in r[1]], rows)
        self.open("/dead")

        # Purge the other group: the page asks first; "cancel" does nothing.
        self.click_group("diag.fail", "purge")
        self.alert().dismiss()
        time.sleep(0.5)
        self.assertEqual(harness.queue_count(dead_queue), 2)
        self.click_group("diag.fail", "purge")
        self.alert().accept()
        self.wait(lambda d: re.search(r"purged 2\b", self.js(
            "return document.getElementById('action-result').textContent")), "purged 2")
        self.wait(lambda d: self.js(JS_DEAD_GROUPS) == [], "no group left")
        self.assertEqual(harness.queue_count(dead_queue), 0)
        self.assertEqual(len(harness.read_records(self.records)), 3)
        for i in perm:
            self.assertEqual(self.api("/api/jobs/" + i)["state"], "dead")
        self.assert_no_console_errors()

    def save_token(self, token):
        box = self.wait(lambda d: d.find_element(By.ID, "token"), "the token field")
        box.clear()
        box.send_keys(token)
        self.driver.find_element(By.ID, "token-save").click()

    def click_group(self, worker, action):
        """Clicks button.<action> of the group of `worker` (a CSS attribute
        selector with the name as a JSON string, which is a CSS string)."""
        def button(d):
            rows = d.find_elements(By.CSS_SELECTOR, "#dead-groups tr.dead-group[data-worker=%s]"
                                   % json.dumps(worker))
            if len(rows) != 1:
                return None
            b = rows[0].find_element(By.CSS_SELECTOR, "button." + action)
            return b if b.is_enabled() else None
        self.wait(button, "the %s button of %s" % (action, worker)).click()


if __name__ == "__main__":
    harness.main()
