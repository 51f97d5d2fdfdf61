"""`warren new-handler NAME`: in a copy of the source tree it writes a
module that builds with no edit, whose unit test passes, and which that
copy's warrend loads by its bare name and runs when a job is published.
A bad name, an existing module or a missing folder is refused with exit 2
and nothing written."""

import os
import re
import shutil
import subprocess
import time

import harness

NAME = "resize_image"


def run(cmd, cwd=None, timeout=600):
    """Runs cmd; returns stdout + stderr. Fails with its output when it fails."""
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode,
                                                          r.stdout[-4000:], r.stderr[-4000:]))
    return r.stdout + r.stderr


def new_handler(*args, cwd):
    r = subprocess.run([harness.WARREN, "new-handler"] + list(args), cwd=cwd,
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def tree(path):
    """Every file and folder under path (hidden ones included), sorted."""
    out = []
    for root, dirs, files in os.walk(path):
        out += [os.path.relpath(os.path.join(root, n), path) for n in dirs + files]
    return sorted(out)


def copy_source(dest):
    """Copies the source tree as a fresh clone would have it: no build
    folders, no .git."""
    def ignore(folder, names):
        if os.path.abspath(folder) != os.path.abspath(harness.SOURCE_DIR):
            return []
        return [n for n in names if n.startswith("build") or n == ".git"]
    shutil.copytree(harness.SOURCE_DIR, dest, ignore=ignore, symlinks=True)


class TestRefusals(harness.WarrenTestCase):
    def setUp(self):
        super().setUp()
        self.handlers = os.path.join(self.tmpdir, "handlers")
        os.mkdir(self.handlers)

    def test_bad_names_write_nothing(self):
        for bad in ("Resize", "9lives", "_x", "with-dash", "dot.ted", "a" * 65, ""):
            rc, out, err = new_handler(bad, cwd=self.tmpdir)
            self.assertEqual(rc, 2, (bad, out, err))
            self.assertIn("[a-z][a-z0-9_]{0,63}", err)
            self.assertEqual(tree(self.handlers), [])
        rc, _, _ = new_handler("a" * 64, cwd=self.tmpdir)
        self.assertEqual(rc, 0)

    def test_existing_module_is_refused_untouched(self):
        rc, out, _ = new_handler(NAME, cwd=self.tmpdir)
        self.assertEqual(rc, 0)
        before = tree(self.handlers)
        source = os.path.join(self.handlers, NAME, NAME + ".c")
        with open(source, "a") as f:
            f.write("/* edited */\n")
        rc, out, err = new_handler(NAME, cwd=self.tmpdir)
        self.assertEqual(rc, 2)
        self.assertIn("already exists", err)
        self.assertEqual(out, "")
        self.assertEqual(tree(self.handlers), before)  # no temporary folder left either
        with open(source) as f:
            self.assertTrue(f.read().endswith("/* edited */\n"))
        # A plain file of that name is just as taken.
        open(os.path.join(self.handlers, "taken"), "w").close()
        self.assertEqual(new_handler("taken", cwd=self.tmpdir)[0], 2)

    def test_missing_folder_and_usage(self):
        rc, _, err = new_handler(NAME, "--dir", "nowhere", cwd=self.tmpdir)
        self.assertEqual(rc, 2)
        self.assertIn("nowhere", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmpdir, "nowhere")))
        self.assertEqual(new_handler(cwd=self.tmpdir)[0], 2)
        self.assertEqual(new_handler("a", "b", cwd=self.tmpdir)[0], 2)
        self.assertEqual(new_handler("a", "--bogus", cwd=self.tmpdir)[0], 2)
        rc, out, _ = new_handler("--help", cwd=self.tmpdir)
        self.assertEqual(rc, 0)
        self.assertIn("usage: warren new-handler", out)
        self.assertEqual(tree(self.handlers), [])

    def test_dir_option(self):
        other = os.path.join(self.tmpdir, "mods")
        os.mkdir(other)
        rc, out, _ = new_handler("thumb", "--dir", other, cwd=self.tmpdir)
        self.assertEqual(rc, 0)
        self.assertEqual(sorted(os.listdir(os.path.join(other, "thumb"))),
                         ["CMakeLists.txt", "test_thumb.c", "thumb.c"])
        # Outside a folder that picks modules up, it says how to add it.
        self.assertIn("add_subdirectory(", out)


class TestFromFreshTree(harness.WarrenTestCase):
    def test_generated_module_builds_passes_its_test_and_runs(self):
        t_start = time.monotonic()
        src = os.path.join(self.tmpdir, "src")
        copy_source(src)
        self.assertFalse(os.path.exists(os.path.join(src, "handlers", NAME)))

        rc, out, err = new_handler(NAME, cwd=src)
        self.assertEqual(rc, 0, err)
        mod = os.path.join(src, "handlers", NAME)
        self.assertEqual(sorted(os.listdir(mod)),
                         ["CMakeLists.txt", NAME + ".c", "test_%s.c" % NAME])
        self.assertEqual([n for n in os.listdir(os.path.join(src, "handlers"))
                          if n.startswith(".")], [])
        self.assertIn('modules = ( { path = "%s"; ' % NAME, out)
        self.assertIn("ctest", out)
        with open(os.path.join(mod, NAME + ".c")) as f:
            self.assertLessEqual(len(f.read().splitlines()), 65)

        # One configure of the whole copy, as after a fresh clone, and one
        # build of what this test needs (the module, its unit test and the
        # copy's own warrend): the rest of the tree is the main build's
        # business, and a failure there must not be blamed on new-handler.
        build = os.path.join(src, "build")
        t0 = time.monotonic()
        run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Debug"])
        log = run(["cmake", "--build", build, "-j2", "--target", "warrend", NAME + "_module",
                   "unit_module_" + NAME])
        print("configured and built in %.1f s" % (time.monotonic() - t0))
        warnings = [l for l in log.splitlines() if "warning:" in l and NAME in l]
        self.assertEqual(warnings, [])

        out = run(["ctest", "--test-dir", build, "-R", NAME, "--output-on-failure"])
        self.assertIn("100% tests passed", out)
        self.assertRegex(out, r"unit_module_%s \.+ +Passed" % NAME)

        # The copy's warrend finds the module by its bare name in its own
        # build tree (WARREN_MODULE_DIR unset) and reads its config.
        conf = self.write_config(modules=[{"path": NAME, "config": {"max_size": 50}}])
        host = harness.Host(conf, self.tmpdir, name="host",
                            binary=os.path.join(build, "src", "warrend"),
                            env={"WARREN_MODULE_DIR": None})
        self.hosts.append(host)
        host.start()
        host.wait_log(r"worker\.ready", 20)
        harness.publish_raw(self.ns, NAME, {"input": "cat.png", "size": 20})
        host.wait_log(r"%s\.log: %s done: cat\.png at size 20" % (NAME, NAME), 15)
        harness.publish_raw(self.ns, NAME, {"input": "cat.png", "size": 99})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 15)
        self.assertEqual(harness.header(props, "x-warren-dead-reason"), "permanent_failure")
        self.assertEqual(harness.header(props, "x-warren-error"), "size 99 is outside 1..50")
        print("new-handler to a job run in a host: %.1f s" % (time.monotonic() - t_start))


if __name__ == "__main__":
    harness.main()
