#!/usr/bin/python3
"""The shipped alert rules: promtool accepts them, each fires in the situation it is named for
(tests/observability/*.test.yml, `promtool test rules`), and none is left without such a test."""

import glob
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promtool import HERE, RULES, find_promtool  # noqa: E402

TEST_FILES = sorted(glob.glob(os.path.join(HERE, "*.test.yml")))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([find_promtool(), *args], capture_output=True, text=True, timeout=120)


class AlertRules(unittest.TestCase):
    def test_promtool_check_rules_accepts_the_rules(self):
        r = run("check", "rules", RULES)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_every_rule_test_passes(self):
        self.assertTrue(TEST_FILES, "no *.test.yml beside this script")
        r = run("test", "rules", *TEST_FILES)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_every_alert_has_a_firing_case_and_a_quiet_case(self):
        with open(RULES) as f:
            alerts = re.findall(r"^\s*- alert:\s*(\S+)", f.read(), re.M)
        self.assertGreaterEqual(len(alerts), 10)
        firing: set[str] = set()
        quiet: set[str] = set()
        for path in TEST_FILES:
            with open(path) as f:
                text = f.read()
            # Each "- eval_time:" block names one alert and says whether it is expected.
            for block in re.split(r"\n\s*- eval_time:", text)[1:]:
                name = re.search(r"alertname:\s*(\S+)", block)
                if not name:
                    continue
                (quiet if re.search(r"exp_alerts:\s*\[\]", block) else firing).add(name.group(1))
        self.assertEqual(sorted(set(alerts) - firing), [], "alerts never shown to fire")
        self.assertEqual(sorted(set(alerts) - quiet), [], "alerts never shown to stay quiet")
        self.assertEqual(sorted((firing | quiet) - set(alerts)), [], "tests of alerts that do not exist")


if __name__ == "__main__":
    unittest.main()
