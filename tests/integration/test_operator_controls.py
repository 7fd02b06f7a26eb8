#!/usr/bin/python3
"""The operator's controls: what a person running cl-tokend reaches for when something is off.

- A secret handed over in the environment is gone from /proc/PID/environ once loaded, and a
  reload still finds it.
- A reload applies a changed log format, not only the level.
- Requests refused before routing (400, 408, 413, 429) are counted in /metrics.
- `cl-tokenctl refresh NAME` fetches now instead of waiting out a failing credential's
  slow retry, and a reload that changes a credential's secret retries it at once.
"""
# ctest-timeout: 180

import json
import socket
import subprocess
import sys
import time
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, metric, wait_for

NOBODY = 65534
# Long enough that a test passing within it cannot be the slow retry of a refused
# credential (rejected credentials are retried after backoff_max).
SLOW_RETRY = {"backoff_max_ms": 600000}

SECRET_FROM_ENV = """
[credentials.backoffice]
kind = "integration"
client_id = "{it_id}"
client_secret_env = "BACKOFFICE_SECRET"
scope = "{it_scope}"
allow = ["*"]
"""


class SecretFromEnvironment(DaemonTestCase):
    def test_the_secret_leaves_the_environment_block_and_reloads_still_work(self):
        secret = fake_harness.INTEGRATION_CLIENT_SECRET
        d = self.daemon(credentials=SECRET_FROM_ENV, env={"BACKOFFICE_SECRET": secret, "UNRELATED": "kept"})
        d.wait_ready()
        self.assertEqual(d.get("/v1/tokens/backoffice").status, 200)
        with open(f"/proc/{d.proc.pid}/environ", "rb") as f:
            block = f.read()
        # The check can fail: the variable was there at exec, and other variables stay.
        self.assertIn(b"UNRELATED=kept", block)
        self.assertNotIn(secret.encode(), block)
        # A reload reads the config again; the secret is answered from what was loaded.
        r = d.post("/v1/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"reloaded": True})
        status = d.get("/v1/status").json()
        self.assertEqual(status["credentials"][0]["name"], "backoffice")
        self.assertNotIn("reload refused", d.read_log())
        self.assertNotIn(secret, d.read_log())


class LogFormatReload(DaemonTestCase):
    def test_a_reload_switches_text_lines_to_json(self):
        d = self.daemon(extra='[log]\nformat = "text"\n')
        d.wait_ready()
        before = len(d.read_log().splitlines())
        d.write_config(extra='[log]\nformat = "json"\n')
        r = d.post("/v1/reload")
        self.assertEqual(r.status, 200, r)
        lines = d.read_log().splitlines()
        self.assertFalse(lines[0].startswith("{"), lines[0])
        reloaded = [ln for ln in lines[before:] if "config reloaded" in ln]
        self.assertEqual(len(reloaded), 1, lines[before:])
        self.assertEqual(json.loads(reloaded[0])["level"], "info")
        # And back: the next reload's line is text again.
        d.write_config(extra='[log]\nformat = "text"\n')
        self.assertEqual(d.post("/v1/reload").status, 200)
        last = [ln for ln in d.read_log().splitlines() if "config reloaded" in ln][-1]
        self.assertFalse(last.startswith("{"), last)


class RefusedRequests(DaemonTestCase):
    def raw(self, d, data: bytes) -> bytes:
        """Sends bytes on a connection of its own and returns all the daemon answers until
        it closes the connection (each refusal closes it)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(d.socket)
        try:
            s.sendall(data)
            answer = b""
            try:
                while chunk := s.recv(65536):
                    answer += chunk
            except ConnectionResetError:
                # The daemon closed with bytes of ours unread (an oversized request): the
                # kernel resets, and may drop the answer it had sent. The counter is what
                # this test is about.
                pass
            return answer
        finally:
            s.close()

    def refused(self, d) -> dict[str, float]:
        text = d.get("/metrics").body.decode()
        return {code: metric(text, "cl_tokend_requests_refused_total", f'code="{code}"') for code in ("400", "408", "413", "429")}

    def test_each_refusal_before_routing_is_counted_by_code(self):
        d = self.daemon(server={"request_timeout_ms": 300, "max_header_bytes": 1024})
        d.wait_ready()
        self.assertEqual(self.refused(d), {"400": 0, "408": 0, "413": 0, "429": 0})
        self.assertIn(b" 400 ", self.raw(d, b"GET /v1/health HTTP/1.1\r\nHost x\r\n\r\n"))
        answer = self.raw(d, b"GET /v1/health HTTP/1.1\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n")
        self.assertTrue(answer == b"" or b" 413 " in answer, answer)
        # Half a request, then nothing: the deadline answers 408 (no sleep: the read blocks
        # until the daemon answers).
        self.assertIn(b" 408 ", self.raw(d, b"GET /v1/health HTTP/1.1\r\n"))
        self.assertEqual(self.refused(d), {"400": 1, "408": 1, "413": 1, "429": 0})
        # Routed answers, errors included, are not refusals.
        self.assertEqual(d.get("/v1/nothing-here").status, 404)
        self.assertEqual(self.refused(d), {"400": 1, "408": 1, "413": 1, "429": 0})


class AdminRefresh(DaemonTestCase):
    """A credential the auth server refused, then fixed on the dashboard."""

    def refused_credential(self, **kw):
        it = fake_harness.INTEGRATION_CLIENT_ID
        self.fake.remove_client(it)
        d = self.daemon(refresh=SLOW_RETRY, **kw)
        wait_for(lambda: self.state(d)["last_error"], 15, "the refused credential's first failure")
        self.assertEqual(self.state(d)["state"], "failing")
        return d

    def state(self, d) -> dict:
        return next(c for c in d.get("/v1/status").json()["credentials"] if c["name"] == "backoffice")

    def fix_on_the_dashboard(self):
        self.fake.add_client(fake_harness.INTEGRATION_CLIENT_ID, "integration", fake_harness.INTEGRATION_CLIENT_SECRET,
                             scope=fake_harness.INTEGRATION_SCOPE)

    def test_refresh_fetches_now_instead_of_after_the_slow_retry(self):
        d = self.refused_credential()
        r = d.ctl("refresh", "backoffice")
        # Still refused upstream: one more request, the reason, exit 3 (refused).
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("refuses credential", r.stderr)
        self.assertEqual(self.token_requests(fake_harness.INTEGRATION_CLIENT_ID), 2)
        self.fix_on_the_dashboard()
        r = d.ctl("refresh", "backoffice")
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout, r"^refreshed backoffice: token valid for 1h 59m\n$")
        self.assertEqual(self.token_requests(fake_harness.INTEGRATION_CLIENT_ID), 3)
        self.assertEqual(self.state(d)["state"], "fresh")
        self.assertEqual(d.get("/v1/tokens/backoffice").status, 200)
        # Now the auth server would hand the same token back: nothing is fetched.
        r = d.ctl("--json", "refresh", "backoffice")
        self.assertEqual(r.returncode, 0, r)
        doc = json.loads(r.stdout)
        self.assertFalse(doc["refreshed"])
        self.assertGreater(doc["expires_in"], 7000)
        self.assertNotIn("access_token", r.stdout)
        self.assertEqual(self.token_requests(fake_harness.INTEGRATION_CLIENT_ID), 3)
        log = d.read_log()
        self.assertIn("credential backoffice: refresh asked by an admin", log)
        text = d.get("/metrics").body.decode()
        self.assertEqual(metric(text, "cl_tokend_requests_total", 'route="refresh",code="200"'), 2)

    def test_a_peer_that_is_not_admin_is_refused_however_often_and_costs_nothing(self):
        d = self.refused_credential()
        before = self.token_requests()
        # 300 refreshes on one connection from another uid, while root asks for tokens.
        flood = subprocess.Popen(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c", FLOOD,
             d.socket, "300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        for _ in range(20):
            self.assertEqual(d.get("/v1/tokens/storefront-eu").status, 200)
        out, err = flood.communicate(timeout=60)
        self.assertEqual(flood.returncode, 0, err)
        self.assertEqual(json.loads(out), {"403": 300})
        self.assertEqual(self.token_requests(), before)
        self.assertEqual(self.state(d)["state"], "failing")

    def test_a_reload_with_a_new_secret_retries_at_once(self):
        d = self.refused_credential()
        self.assertEqual(self.token_requests(fake_harness.INTEGRATION_CLIENT_ID), 1)
        # The secret was rotated on the dashboard and the new one put in the secret file.
        new_secret = "rotated-" + fake_harness.INTEGRATION_CLIENT_SECRET
        self.fake.add_client(fake_harness.INTEGRATION_CLIENT_ID, "integration", new_secret,
                             scope=fake_harness.INTEGRATION_SCOPE)
        with open(d.secret_file, "w") as f:
            f.write(new_secret + "\n")
        reloaded_at = time.monotonic()
        self.assertEqual(d.post("/v1/reload").status, 200)
        wait_for(lambda: self.state(d)["state"] == "fresh", 10, "the credential with its new secret to hold a token")
        # Within the upstream's answer time, not after the 600 s retry.
        self.assertLess(time.monotonic() - reloaded_at, 10)
        self.assertEqual(self.token_requests(fake_harness.INTEGRATION_CLIENT_ID), 2)
        self.assertNotIn(new_secret, d.read_log())


# Runs as another uid: POSTs refresh N times on one keep-alive connection and prints the
# count of each status code.
FLOOD = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
codes = {}
buf = b""
for _ in range(int(sys.argv[2])):
    s.sendall(b"POST /v1/tokens/backoffice/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, buf = buf.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(buf) < length:
        buf += s.recv(65536)
    buf = buf[length:]
    code = head.split(b" ")[1].decode()
    codes[code] = codes.get(code, 0) + 1
print(json.dumps(codes))
"""


if __name__ == "__main__":
    unittest.main()
