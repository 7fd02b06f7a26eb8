#!/usr/bin/python3
"""The guarantees, end to end: real daemon, real socket, fake auth server over TLS."""
# ctest-timeout: 240

import base64
import json
import os
import re
import subprocess
import threading
import time
import unittest

from cltoken_harness import (CL_TOKEND, DaemonTestCase, fake_harness, make_workdir, wait_for)
from validate import validate

IT = fake_harness.INTEGRATION_CLIENT_ID
SC = fake_harness.SALES_CHANNEL_CLIENT_ID


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class ColdBurst(DaemonTestCase):
    def test_200_clients_on_two_cold_credentials_cost_two_upstream_requests(self):
        # The fake answers slowly, so every client arrives while the first fetch is in flight.
        self.fake.control(mode="slow", delay_ms=1500)
        # 200 connections of one uid: over the default max_connections_per_peer (128),
        # raised as for any service with that many processes.
        d = self.daemon(server={"max_connections_per_peer": 200})
        results: list = [None] * 200
        barrier = threading.Barrier(200)

        def one(i: int) -> None:
            name = "backoffice" if i % 2 == 0 else "storefront-eu"
            c = d.client(timeout=30)
            try:
                barrier.wait()
                results[i] = (name, c.get(f"/v1/tokens/{name}"))
            finally:
                c.close()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(self.token_requests(IT), 1)
        self.assertEqual(self.token_requests(SC), 1)
        tokens = {}
        for name, r in results:
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            validate(doc, "token")
            self.assertEqual(doc["credential"], name)
            self.assertGreater(doc["expires_in"], 0)
            tokens.setdefault(name, set()).add(doc["access_token"])
        self.assertEqual({k: len(v) for k, v in tokens.items()}, {"backoffice": 1, "storefront-eu": 1})
        for token_set in tokens.values():
            status, body = self.fake.check(next(iter(token_set)))
            self.assertEqual(status, 200, body)


class RefreshUnderPolling(DaemonTestCase):
    fake_clients = fake_harness.default_clients(integration_lifetime=6, sales_channel_lifetime=6)

    def test_polling_every_50ms_for_30s_never_sees_an_error_or_an_expired_token(self):
        d = self.daemon(refresh={"at": 0.5, "jitter": 0.0, "min_ttl": 0})
        d.wait_ready()
        c = d.client()
        start = time.time()
        seen = set()
        requests_before = self.token_requests(IT)
        polls = 0
        while time.time() - start < 30:
            r = c.get("/v1/tokens/backoffice")
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            claims = jwt_claims(doc["access_token"])
            self.assertGreater(claims["exp"], time.time(), "an expired token was served")
            self.assertGreater(doc["expires_in"], 0)
            seen.add(doc["access_token"])
            polls += 1
            time.sleep(0.05)  # the client's own pace, not a wait for the daemon
        c.close()
        elapsed = time.time() - start
        upstream = self.token_requests(IT) - requests_before
        # One refresh per 3 s (half of 6 s): about 10 in 30 s.
        self.assertGreaterEqual(upstream, int(elapsed / 3) - 1, f"{upstream} upstream requests")
        self.assertLessEqual(upstream, int(elapsed / 3) + 2, f"{upstream} upstream requests")
        self.assertGreaterEqual(len(seen), upstream - 1)
        self.assertGreater(polls, 300)


class ControlClient(DaemonTestCase):
    def test_status_lists_every_credential_and_token_prints_a_token_the_api_accepts(self):
        d = self.daemon()
        d.wait_ready()
        r = d.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in ("backoffice", "storefront-eu"):
            row = next((line for line in r.stdout.splitlines() if line.startswith(name)), None)
            self.assertIsNotNone(row, r.stdout)
            self.assertIn("fresh", row)
            self.assertRegex(row, r"\d+h \d+m|\d+m \d+s")  # time to expiry
        j = d.ctl("--json", "status")
        self.assertEqual(j.returncode, 0, j.stderr)
        validate(json.loads(j.stdout), "status")
        t = d.ctl("token", "backoffice")
        self.assertEqual(t.returncode, 0, t.stderr)
        token = t.stdout
        self.assertTrue(token.endswith("\n") and token.count("\n") == 1)
        status, body = self.fake.check(token.strip())
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("client_id"), IT)
        missing = d.ctl("token", "nope")
        self.assertEqual(missing.returncode, 3)
        self.assertRegex(missing.stderr, r"^cl-tokenctl: .*nope")


class Documents(DaemonTestCase):
    def test_every_document_on_the_socket_matches_its_schema(self):
        d = self.daemon()
        d.wait_ready()
        validate(d.get("/v1/tokens/backoffice").json(), "token")
        validate(d.get("/v1/tokens/storefront-eu?min_ttl=10").json(), "token")
        status = d.get("/v1/status").json()
        validate(status, "status")
        self.assertEqual([c["name"] for c in status["credentials"]], ["backoffice", "storefront-eu"])
        validate(d.get("/v1/health").json(), "health")
        for path, code in (("/v1/tokens/nope", 404), ("/v1/tokens/backoffice?min_ttl=x", 400), ("/nowhere", 404)):
            r = d.get(path)
            self.assertEqual(r.status, code, path)
            validate(r.json(), "error")
        metrics = d.get("/metrics")
        self.assertEqual(metrics.status, 200)
        self.assertTrue(metrics.headers["content-type"].startswith("text/plain; version=0.0.4"))
        self.assertIn("cl_tokend_tokens_served_total{credential=\"backoffice\"} 1", metrics.body.decode())
        # Status and metrics never carry a token or the secret.
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        for path in ("/v1/status", "/metrics", "/v1/health"):
            body = d.get(path).body.decode()
            self.assertNotIn(token[-16:], body)
            self.assertNotIn(fake_harness.INTEGRATION_CLIENT_SECRET, body)


class BadConfigs(unittest.TestCase):
    """Each bad config exits 2 with cl-tokend: <file>:<line>: <what is wrong>."""

    def setUp(self):
        self.dir = make_workdir()

    def check(self, text: str, line: int, message: str, mode: int = 0o600) -> None:
        path = os.path.join(self.dir, "bad.toml")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        r = subprocess.run([CL_TOKEND, "--check", "-c", path], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertRegex(r.stderr.strip(), rf"^cl-tokend: {re.escape(path)}:{line}: .*{message}")
        self.assertEqual(r.stderr.count("\n"), 1)

    def test_bad_configs(self):
        cred = '[credentials.x]\nkind = "integration"\nclient_id = "a"\n'
        self.check('[credentials.x]\nkind = "integration"\nallow = ["*"]\n', 1, "missing credentials.x.client_id")
        self.check('[credentials.x]\nkind = "robot"\nclient_id = "a"\nallow = ["*"]\n', 2, 'unknown credentials.x.kind "robot"')
        self.check('[upstream]\nauth_url = "http://auth.example.com"\n', 2, "plain http:// to a host that is not loopback")
        self.check(cred + 'client_secret = "inline"\nallow = ["*"]\n', 4, "chmod 600", mode=0o644)
        self.check(cred + 'client_secret_file = "/nonexistent/secret"\nallow = ["*"]\n', 4, "cannot open /nonexistent/secret")
        self.check(cred + 'client_secret = "s"\nallow = ["wizard:merlin"]\n', 5, 'unknown principal "wizard:merlin"')
        self.check(cred + 'client_secret = "s"\nallow = ["user:no-such-user-here"]\n', 5, 'no user named "no-such-user-here"')
        self.check('[server]\nsocket = "/tmp/x.sock"\n[[broken\n', 3, "")
        secret = os.path.join(self.dir, "open.secret")
        with open(secret, "w") as f:
            f.write("s")
        os.chmod(secret, 0o644)
        self.check(cred + f'client_secret_file = "{secret}"\nallow = ["*"]\n', 4, f"chmod 600 {re.escape(secret)}")

    def test_missing_config_file(self):
        r = subprocess.run([CL_TOKEND, "--check", "-c", "/nonexistent/cl.toml"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cl-tokend: /nonexistent/cl.toml:0: cannot read config", r.stderr)

    def test_check_prints_a_line_per_credential_and_never_a_secret(self):
        path = os.path.join(self.dir, "good.toml")
        with open(path, "w") as f:
            f.write('[credentials.x]\nkind = "integration"\nclient_id = "a"\nclient_secret = "top-secret-value"\nallow = ["*"]\n'
                    '[credentials.y]\nkind = "sales_channel"\nclient_id = "b"\nscope = "market:all"\nallow = ["*"]\n')
        os.chmod(path, 0o600)
        r = subprocess.run([CL_TOKEND, "--check", "-c", path], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("top-secret-value", r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^x: integration client_id=a secret=inline")
        self.assertRegex(r.stdout, r"(?m)^y: sales_channel client_id=b secret=none scope=market:all")


if __name__ == "__main__":
    unittest.main(verbosity=2)
