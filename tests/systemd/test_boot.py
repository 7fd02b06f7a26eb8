#!/usr/bin/python3
"""The package end to end under a real systemd: builds the .deb with CPack, boots systemd as
PID 1 in private namespaces over an overlay of / (systemd_ns.py), and runs
inside_boot.py in there: dpkg -i, systemctl start (socket activation), status, unit
principals with transient units (same uid, DynamicUser=), reload,
restart under load, the watchdog, stop, purge. The fake auth server runs inside too.
Skips only where namespaces (or root) are not available."""
# ctest-timeout: 300

import glob
import os
import shutil
import subprocess
import unittest

from sd_harness import BUILD_DIR, SOURCE_DIR, make_workdir
from systemd_ns import SystemdNamespace

HERE = os.path.dirname(os.path.abspath(__file__))


class PackageUnderRealSystemd(unittest.TestCase):
    def setUp(self) -> None:
        reason = SystemdNamespace.unavailable()
        if reason:
            self.skipTest(f"cannot boot systemd in a namespace here: {reason}")
        self.workdir = make_workdir("cltok-boot-")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.share = os.path.join(self.workdir, "share")
        os.makedirs(self.share)

    def build_package(self) -> str:
        cpack = shutil.which("cpack")
        self.assertIsNotNone(cpack, "cpack (from cmake) is needed to build the package")
        r = subprocess.run([cpack, "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-B",
                            os.path.join(self.workdir, "cpack")], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, f"cpack failed:\n{r.stdout}\n{r.stderr}")
        debs = glob.glob(os.path.join(self.workdir, "cpack", "cl-tokend_*.deb"))
        self.assertEqual(len(debs), 1, r.stdout)
        shutil.copy(debs[0], self.share)
        return debs[0]

    def test_package_lifecycle_under_systemd(self):
        self.build_package()
        ns = SystemdNamespace(self.workdir, self.share, SOURCE_DIR)
        self.addCleanup(ns.cleanup)
        ns.boot()
        inside = ns.run("/usr/bin/python3", "/srv/cltokend-src/tests/systemd/inside_boot.py", timeout=240)
        if inside.returncode != 0:
            journal = ns.run("journalctl", "--no-pager", "-n", "150", "-o", "short-precise").stdout
            self.fail(f"the scenario failed inside the namespace:\n{inside.stdout}\n{inside.stderr}\n"
                      f"--- journal (last 150 lines) ---\n{journal}")
        print(inside.stdout + inside.stderr)
        ns.poweroff()


if __name__ == "__main__":
    unittest.main()
