#!/usr/bin/python3
"""Runs every README snippet marked `<!-- readme-test: NAME -->` against a live daemon,
so the client examples in the docs cannot drift from the product."""
# ctest-timeout: 240

import json
import os
import re
import shutil
import subprocess
import unittest

from cltoken_harness import CL_TOKENCTL, SOURCE_DIR, DaemonTestCase, fake_harness

README = os.path.join(SOURCE_DIR, "README.md")
DOC_SOCKET = "/run/cl-tokend/cl-tokend.sock"
RUNNERS = {"sh": ["bash", "-euo", "pipefail", "-c"], "python": ["/usr/bin/python3", "-c"], "js": ["node", "-e"],
           "go": ["go", "run"]}
# The placeholders the README's POST /oauth/token snippets use, and what the test daemon holds.
PLACEHOLDERS = {"your-sales-channel-client-id": fake_harness.SALES_CHANNEL_CLIENT_ID,
                "market:code:europe": fake_harness.SALES_CHANNEL_SCOPE}


def snippets() -> dict[str, tuple[str, str]]:
    with open(README) as f:
        text = f.read()
    found = re.findall(r"<!-- readme-test: (\w+) -->\n```(\w+)\n(.*?)```", text, re.S)
    return {name: (lang, code) for name, lang, code in found}


class ReadmeSnippets(DaemonTestCase):
    def test_the_readme_has_the_client_oauth_and_verify_snippets(self):
        self.assertEqual(sorted(snippets()), ["curl", "node", "oauth_curl", "oauth_go", "oauth_node", "oauth_python",
                                              "python", "shell", "verify_curl", "verify_node", "verify_python",
                                              "verify_shell"])

    def run_snippets(self, d, verify: bool, extra_env: dict | None = None):
        """Runs the client snippets (or the verify ones) against daemon `d`; yields
        (name, stdout) inside a subTest per snippet."""
        bindir = os.path.join(self.workdir, "bin")
        os.makedirs(bindir, exist_ok=True)
        if not os.path.exists(os.path.join(bindir, "cl-tokenctl")):
            os.symlink(CL_TOKENCTL, os.path.join(bindir, "cl-tokenctl"))
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"],
                   GOCACHE=os.path.join(self.workdir, "gocache"), GO111MODULE="off", **(extra_env or {}))
        for name, (lang, code) in snippets().items():
            if name.startswith("verify_") != verify:
                continue
            with self.subTest(snippet=name):
                self.assertIn(DOC_SOCKET, code, "snippets use the documented socket path")
                self.assertIsNotNone(shutil.which(RUNNERS[lang][0]), f"{RUNNERS[lang][0]} is needed for {name}")
                code = code.replace(DOC_SOCKET, d.socket)
                for placeholder, value in PLACEHOLDERS.items():
                    code = code.replace(placeholder, value)
                argument = code
                if lang == "go":  # go run takes a file
                    argument = os.path.join(self.workdir, f"{name}.go")
                    with open(argument, "w") as f:
                        f.write(code)
                r = subprocess.run(RUNNERS[lang] + [argument], capture_output=True, text=True, timeout=90, env=env)
                self.assertEqual(r.returncode, 0, r.stderr)
                yield name, r.stdout.strip()

    def test_every_snippet_fetches_a_token_the_api_accepts(self):
        d = self.daemon()
        d.wait_ready()
        # What a service has today for Commerce Layer's token endpoint: its client id and secret.
        env = {"CL_CLIENT_ID": fake_harness.INTEGRATION_CLIENT_ID,
               "CL_CLIENT_SECRET": fake_harness.INTEGRATION_CLIENT_SECRET}
        for _, out in self.run_snippets(d, verify=False, extra_env=env):
            if out.startswith("{"):
                token = json.loads(out)["access_token"]
            else:
                m = re.fullmatch(r"Authorization: Bearer (\S+)", out)
                self.assertIsNotNone(m, out)
                token = m.group(1)
            status, body = self.fake.check(token)
            self.assertEqual(status, 200, body)

    def test_every_verify_snippet_says_a_served_token_is_valid(self):
        d = self.daemon()
        d.wait_ready()
        token = d.get("/v1/tokens/storefront-eu").json()["access_token"]
        for _, out in self.run_snippets(d, verify=True, extra_env={"TOKEN": token}):
            self.assertNotIn(token, out)
            if out.startswith("{"):
                doc = json.loads(out)
                self.assertIs(doc["valid"], True, doc)
                self.assertEqual(doc["claims"]["application"]["kind"], "sales_channel")
            else:
                self.assertRegex(out, r"^valid: sales_channel ")


if __name__ == "__main__":
    unittest.main(verbosity=2)
