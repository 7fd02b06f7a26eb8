"""Finds promtool for the tests: $PROMTOOL, else PATH, else /usr/local/bin (where
install_promtool.sh puts it). A missing promtool fails the test with how to get it; it is
never a reason to skip."""

import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
RULES = os.path.join(SOURCE_DIR, "docs", "prometheus", "cl-tokend-alerts.yml")
INSTALL_HINT = "promtool not found: run tests/observability/install_promtool.sh (as root) or set PROMTOOL"


def find_promtool() -> str:
    for candidate in (os.environ.get("PROMTOOL"), shutil.which("promtool"), "/usr/local/bin/promtool"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise AssertionError(INSTALL_HINT)
