#!/usr/bin/python3
"""The operator's controls: what a person running cl-tokend reaches for when something is off.

- A secret handed over in the environment is gone from /proc/PID/environ once loaded, and a
  reload still finds it.
- A reload applies a changed log format, not only the level.
- Requests refused before routing (400, 408, 413, 429) are counted in /metrics.
"""
# ctest-timeout: 120

import json
import socket
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, metric

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


if __name__ == "__main__":
    unittest.main()
