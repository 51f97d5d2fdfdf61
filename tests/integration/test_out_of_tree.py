"""Out-of-tree modules: install the build into a temporary prefix, build
examples/out-of-tree/ against that install alone (CMake find_package and
make + pkg-config), and load the result into the installed warrend; a
module built for another ABI version is refused with both numbers."""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

import harness

EXAMPLE = os.path.join(harness.SOURCE_DIR, "examples", "out-of-tree")


def run(cmd, cwd=None, env=None, timeout=300):
    """Runs cmd; returns stdout. Fails with its output when it fails."""
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode,
                                                          r.stdout[-3000:], r.stderr[-3000:]))
    return r.stdout


class TestOutOfTree(harness.WarrenTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prefix = tempfile.mkdtemp(prefix="warren-prefix-")
        t0 = time.monotonic()
        run(["cmake", "--install", harness.BUILD_DIR, "--prefix", cls.prefix])
        print("installed into %s in %.1f s" % (cls.prefix, time.monotonic() - t0))
        # Debian's libdir may be lib/x86_64-linux-gnu: look for the .pc.
        pcs = glob.glob(os.path.join(cls.prefix, "**", "pkgconfig", "warren.pc"), recursive=True)
        if len(pcs) != 1:
            raise AssertionError("expected one installed warren.pc, found %r" % pcs)
        cls.pc_dir = os.path.dirname(pcs[0])
        cls.warrend = os.path.join(cls.prefix, "bin", "warrend")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prefix, ignore_errors=True)

    def pkg_env(self):
        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = self.pc_dir
        return env

    def pkg_config(self, *args):
        return run(["pkg-config"] + list(args) + ["warren"], env=self.pkg_env()).strip()

    def serve(self, module_path, name="host"):
        """Starts the installed warrend with the module at module_path
        (absolute) and its config; returns the host once it consumes."""
        conf = self.write_config(name=name + ".conf", modules=[
            {"path": module_path, "config": {"greeting": "howdy"}}])
        host = harness.Host(conf, self.tmpdir, name=name, binary=self.warrend)
        self.hosts.append(host)
        host.start()
        host.wait_log(r"worker\.ready", 20)
        return host

    def check_greets(self, host):
        harness.publish_raw(self.ns, "hello.greet", {"name": "ada"})
        # The line comes from warrend's own logger (its role "worker N" and
        # the module's msgid): the module's warren_* calls bound to the
        # host's exported copies, not to the libwarren.so it links.
        host.wait_log(r"\[\d+ worker \d+\] hello\.log: howdy, ada \(attempt 1\)", 15)
        # Its permanent failure path: a dead letter at once.
        harness.publish_raw(self.ns, "hello.greet", {"name": ""})
        [(_, props, _)] = harness.wait_messages(self.ns + ".default.dead", 1, 15)
        self.assertEqual(harness.header(props, "x-warren-dead-reason"), "permanent_failure")
        self.assertEqual(harness.header(props, "x-warren-error"), "no one to greet")

    def test_installed_pkg_config_file(self):
        libdir = self.pkg_config("--variable=libdir")
        self.assertTrue(os.path.realpath(libdir).startswith(os.path.realpath(self.prefix)))
        self.assertTrue(glob.glob(os.path.join(libdir, "libwarren.so*")))
        cflags = self.pkg_config("--cflags")
        inc = re.search(r"-I(\S+)", cflags).group(1)
        self.assertTrue(os.path.isfile(os.path.join(inc, "warren", "warren.h")))
        self.assertEqual(self.pkg_config("--modversion"), harness.cli("--version")[1].split()[-1])
        moduledir = self.pkg_config("--variable=moduledir")
        self.assertTrue(os.path.isfile(os.path.join(moduledir, "diag.so")))
        # Only the public API leaves the shared library.
        syms = run(["nm", "-D", "--defined-only", glob.glob(os.path.join(libdir, "libwarren.so.*.*"))[0]])
        names = [l.split()[-1] for l in syms.splitlines() if l.split()[-2:-1] == ["T"]]
        self.assertTrue(names)
        self.assertEqual([n for n in names if not n.startswith("warren_")], [])

    def test_cmake_find_package_build_runs_in_host(self):
        build = os.path.join(self.tmpdir, "cmake-build")
        t0 = time.monotonic()
        run(["cmake", "-S", EXAMPLE, "-B", build, "-DCMAKE_PREFIX_PATH=" + self.prefix])
        run(["cmake", "--build", build])
        print("cmake example built in %.1f s" % (time.monotonic() - t0))
        module = os.path.join(build, "hello.so")
        self.assertIn("libwarren.so", run(["readelf", "-d", module]))
        self.check_greets(self.serve(module))

    def test_make_pkg_config_build_runs_in_host(self):
        src = os.path.join(self.tmpdir, "make-build")
        os.mkdir(src)
        for f in ("hello.c", "Makefile"):
            shutil.copy(os.path.join(EXAMPLE, f), src)
        run(["make", "PKG_CONFIG_PATH=" + self.pc_dir], cwd=src)
        module = os.path.join(src, "hello.so")
        self.assertIn("libwarren.so", run(["readelf", "-d", module]))
        self.check_greets(self.serve(module))

    def test_module_built_for_another_abi_is_refused(self):
        src = os.path.join(self.tmpdir, "old_abi.c")
        with open(src, "w") as f:
            f.write("#include <warren/warren.h>\n"
                    "static warren_status init(warren_registry *r, const json_t *c,\n"
                    "                          warren_error *e)\n"
                    "{ (void)r; (void)c; (void)e; return WARREN_OK; }\n"
                    "WARREN_MODULE_EXPORT const struct warren_module warren_module = {\n"
                    "    .abi_version = WARREN_MODULE_ABI_VERSION + 1,\n"
                    "    .struct_size = sizeof(struct warren_module),\n"
                    "    .name = \"old_abi\", .init = init };\n")
        module = os.path.join(self.tmpdir, "old_abi.so")
        flags = self.pkg_config("--cflags", "--libs").split()
        run(["cc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-o", module, src] + flags)
        conf = self.write_config(name="abi.conf", modules=[{"path": module}])
        host = harness.Host(conf, self.tmpdir, name="abi", binary=self.warrend)
        self.hosts.append(host)
        host.start()
        self.assertEqual(host.wait(20), 2)
        text = host.log_text()
        self.assertRegex(text, r"%s:\d+: " % re.escape(conf))
        m = re.search(r"built for ABI version (\d+), this host needs (\d+)", text)
        self.assertIsNotNone(m, text)
        self.assertEqual(int(m.group(1)), int(m.group(2)) + 1)


if __name__ == "__main__":
    harness.main()
