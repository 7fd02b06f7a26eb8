#!/usr/bin/python3
"""No secret and no token in logs, status, metrics or errors, even at trace level.

One run fetches, serves, invalidates, fails upstream in every way the fake knows, is
refused, revokes and reloads; afterwards the daemon's whole log is searched for the client
secret and for any piece of any token it handed out. The only token text allowed is the
debug fingerprint: the first 4 and the last 4 characters.
"""
# ctest-timeout: 180

import json
import re
import subprocess
import sys
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, wait_for

NOBODY = 65534
OTHER_USER_PYTHON = "/usr/bin/python3"  # any user can run it (a virtualenv under /root may not be)
SECRET = fake_harness.INTEGRATION_CLIENT_SECRET
JWT_PIECE = re.compile(r"eyJ[A-Za-z0-9_\-]{5,}")  # more of a JWT than the 4-character fingerprint prefix

CREDENTIALS = """
[credentials.backoffice]
kind = "integration"
client_id = "{it_id}"
client_secret_file = "{secret_file}"
scope = "{it_scope}"
allow = ["uid:0"]

[credentials.storefront-eu]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["uid:0"]
"""


def windows(text: str, size: int) -> set[str]:
    return {text[i:i + size] for i in range(0, len(text) - size + 1)}


class NoSecretsInLogs(DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.seen_tokens: set[str] = set()
        self.bodies: list[str] = []

    def token(self, d, name: str) -> str:
        r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(d.get(f"/v1/tokens/{name}")), 20, f"a {name} token")
        t = r.json()["access_token"]
        self.seen_tokens.add(t)
        return t

    def keep(self, r) -> None:
        self.bodies.append(r.body.decode(errors="replace"))
        if r.status == 200 and r.body.startswith(b"{") and "access_token" in r.json():
            self.seen_tokens.add(r.json()["access_token"])

    def invalidate(self, d, name: str, token: str) -> None:
        self.reject(token)
        r = d.post(f"/v1/tokens/{name}/invalidate", {"access_token": token})
        self.keep(r)

    def test_trace_log_status_metrics_and_errors_hold_no_secret_or_token(self):
        d = self.daemon(credentials=CREDENTIALS, log_level="trace",
                        refresh={"backoff_initial_ms": 100, "backoff_max_ms": 300})
        d.wait_ready()
        bo = self.token(d, "backoffice")
        self.token(d, "storefront-eu")

        # Invalidate, then make the upstream fail in each way while the daemon refetches.
        for mode, extra in (("normal", {}), ("500", {}), ("garbage", {}), ("truncated", {}),
                            ("errors_object", {}), ("429", {"retry_after": "1"}), ("reset", {})):
            if mode != "normal":
                self.fake.control(mode=mode, count=1, clients=[fake_harness.INTEGRATION_CLIENT_ID], **extra)
            self.invalidate(d, "backoffice", bo)
            bo = self.token(d, "backoffice")
        # Requests that fail on our side, some quoting what the client sent.
        self.keep(d.post("/v1/tokens/backoffice/invalidate", b'{"access_token": "' + bo.encode() + b'"'))
        self.keep(d.post("/v1/tokens/backoffice/invalidate", {"access_token": 42, "x": bo}))
        c = d.client()
        self.keep(c.request("GET", f"/v1/tokens/backoffice?min_ttl={bo}"))
        c.close()
        # A credential name that is a piece of a token: the 404 may echo the client's own
        # input back to it, but the log must not keep it.
        self.assertEqual(d.get(f"/v1/tokens/{bo[:60]}").status, 404)
        self.assertEqual(d.post(f"/v1/tokens/{bo[-60:]}/revoke").status, 404)
        # A refused peer, a revoke, a reload, and the documents any peer can read.
        refused = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                  OTHER_USER_PYTHON, "-c",
                                  "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                                  "s.sendall(b'GET /v1/tokens/backoffice HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n');"
                                  "print(s.recv(4096).decode())", d.socket],
                                 capture_output=True, text=True, timeout=30, cwd="/")
        self.assertIn(" 403 ", refused.stdout)
        self.bodies.append(refused.stdout)
        r = d.post("/v1/tokens/storefront-eu/revoke")
        self.assertEqual(r.status, 200, r)
        self.keep(r)
        self.token(d, "storefront-eu")
        self.keep(d.post("/v1/reload"))
        for path in ("/v1/status", "/metrics", "/v1/health"):
            self.keep(d.get(path))
        self.assertEqual(d.stop(), 0)

        log = d.read_log()
        self.assertGreater(len(self.seen_tokens), 8)
        # The run did log what it should: failures, a denial, and token fingerprints.
        for expected in ("refresh failed", "access denied", "reported invalid", "revoked", "request uid=0"):
            self.assertIn(expected, log)
        fingerprints = re.findall(r"new token (\S{4})…(\S{4})", log)
        self.assertTrue(fingerprints, "no debug fingerprint in the log")
        for first, last in fingerprints:
            self.assertTrue(any(t.startswith(first) and t.endswith(last) for t in self.seen_tokens), (first, last))

        # And nothing more: no JWT beyond its first four characters, no 12-character piece
        # of any token, no piece of the client secret.
        for where, text in [("log", log)] + [(f"answer {i}", b) for i, b in enumerate(self.bodies)]:
            with self.subTest(where=where):
                self.assertNotIn(SECRET[:8], text)
                for piece in windows(SECRET, 12):
                    self.assertNotIn(piece, text)
                if where == "log":
                    self.assertEqual(JWT_PIECE.findall(text), [])
                    for t in self.seen_tokens:
                        leaked = [p for p in windows(t, 12) if p in text]
                        self.assertEqual(leaked, [], "a piece of a token is in the log")
                elif '"access_token"' not in text:  # token documents carry the token itself, by design
                    self.assertEqual(JWT_PIECE.findall(text), [], text)


if __name__ == "__main__":
    unittest.main()
