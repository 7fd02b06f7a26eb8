#!/usr/bin/python3
# ctest-timeout: 240
"""The reissue window through the real binaries: the fake answers a client-credentials
request with the current token until it has `reissue_window` left, as Commerce Layer does.

Two daemons run side by side on two integration clients with 16 s tokens and a 5 s window:
one told about the window (refresh.reissue_window_s = 5), one not (0, an upstream that
issues a new token on every request). A client polls both for 40 s and checks every token
it gets. The first costs one upstream request per token lifetime and never a wasted one;
the second asks too early, gets the same token back, and pays for it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import unittest

from cltoken_harness import CL_TOKEND, DaemonTestCase, fake_harness, metric, wait_for
from resilience import in_parallel

LIFETIME = 16
WINDOW = 5
RUN_S = 40.0

AWARE, UNAWARE = "it-window-aware", "it-window-unaware"
SECRET = "window-secret"

CREDENTIAL = """
[credentials.{name}]
kind = "integration"
client_id = "{client_id}"
client_secret_file = "{{secret_file}}"
allow = ["*"]
"""


def jwt_exp(token: str) -> int:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


class ReissueWindow(DaemonTestCase):
    fake_clients = [fake_harness.client(AWARE, "integration", SECRET, token_lifetime=LIFETIME),
                    fake_harness.client(UNAWARE, "integration", SECRET, token_lifetime=LIFETIME)]
    # The daemon unaware of the window spends more than the real limit would allow two
    # daemons on one host; the point here is to count, not to meet 429.
    fake_rate_limit = 200

    def start_daemon(self, client_id: str, window: int):
        d = self.daemon(start=False, credentials=CREDENTIAL.format(name="backoffice", client_id=client_id),
                        refresh={"at": 0.5, "jitter": 0.05, "reissue_window_s": window})
        with open(d.secret_file, "w") as f:
            f.write(SECRET + "\n")
        d.start()
        return d

    def test_one_upstream_request_per_token_lifetime(self):
        self.fake.control(reissue_window=WINDOW)
        aware = self.start_daemon(AWARE, WINDOW)
        unaware = self.start_daemon(UNAWARE, 0)
        started = time.monotonic()
        served = {AWARE: 0, UNAWARE: 0}
        errors: list[str] = []
        clients = {AWARE: aware.client(), UNAWARE: unaware.client()}
        try:
            while time.monotonic() - started < RUN_S:
                for cid, c in clients.items():
                    r = c.get("/v1/tokens/backoffice")
                    if r.status != 200:
                        errors.append(f"{cid}: {r.status} {r.body[:200]!r}")
                        continue
                    doc = r.json()
                    # Never an expired token: the JWT's own exp is still ahead.
                    if jwt_exp(doc["access_token"]) <= time.time() or doc["expires_in"] <= 0:
                        errors.append(f"{cid}: expired token served (expires_in {doc['expires_in']})")
                    served[cid] += 1
                time.sleep(0.1)  # a polling client's pace, not a wait for time to pass
            elapsed = time.monotonic() - started
        finally:
            for c in clients.values():
                c.close()

        self.assertEqual(errors, [])
        self.assertGreater(min(served.values()), 100)
        stats = self.fake.stats()
        aware_requests = stats["token_requests"].get(AWARE, 0)
        unaware_requests = stats["token_requests"].get(UNAWARE, 0)
        # A token is refreshed when its last WINDOW seconds begin: one request per
        # LIFETIME - WINDOW seconds (plus the margin and the jitter's spread), and the first.
        period = LIFETIME - WINDOW
        expected = 1 + elapsed / period
        self.assertLessEqual(aware_requests, expected + 1, stats)
        self.assertGreaterEqual(aware_requests, expected - 2, stats)
        # Every one of them brought a new token: none came back as the current one.
        aware_log = [r for r in stats["requests"] if r["client_id"] == AWARE]
        self.assertTrue(all(r["status"] == 200 for r in aware_log), aware_log)
        metrics_aware = aware.get("/metrics").body.decode()
        self.assertEqual(metric(metrics_aware, "cl_tokend_upstream_requests_total",
                                'credential="backoffice",outcome="no_gain"'), 0)
        self.assertEqual(metric(metrics_aware, "cl_tokend_upstream_requests_total",
                                'credential="backoffice",outcome="ok"'), aware_requests)
        status = aware.get("/v1/status").json()["credentials"][0]
        self.assertEqual(status["upstream_failures"], 0, status)

        # The daemon that does not know about the window asked at half the lifetime, got the
        # same token back, and backed off until the window opened: more requests, counted.
        metrics_unaware = unaware.get("/metrics").body.decode()
        no_gain = metric(metrics_unaware, "cl_tokend_upstream_requests_total",
                         'credential="backoffice",outcome="no_gain"')
        self.assertGreater(no_gain, 0)
        self.assertGreater(unaware_requests, aware_requests, stats)
        print(f"\n{elapsed:.0f} s of {LIFETIME} s tokens, {WINDOW} s window: "
              f"{aware_requests} upstream requests with reissue_window_s = {WINDOW} "
              f"({aware_requests / expected:.2f} per lifetime), {unaware_requests} with 0 "
              f"({int(no_gain)} of them answered with the current token)")

    def test_min_ttl_beyond_the_window_costs_no_request(self):
        self.fake.control(reissue_window=WINDOW)
        d = self.start_daemon(AWARE, WINDOW)
        wait_for(lambda: d.get("/v1/tokens/backoffice").status == 200, 15, "a first token")
        before = self.token_requests(AWARE)
        # Right after a fetch the token has about 15 s left, more than the window: a client
        # asking for 15 s gets it at once, and the upstream is not asked (it would hand back
        # the same token). Many such clients, still nothing.
        for _ in range(20):
            r = d.get(f"/v1/tokens/backoffice?min_ttl={LIFETIME - 1}")
            self.assertEqual(r.status, 200, r)
            self.assertLess(r.json()["expires_in"], LIFETIME - 1)
        self.assertEqual(self.token_requests(AWARE), before)

    def test_check_warns_about_a_refresh_the_upstream_cannot_honour(self):
        d = self.daemon(start=False, refresh={"at": 0.5, "min_ttl": 1200, "reissue_window_s": 900})
        r = subprocess.run([CL_TOKEND, "--check", "-c", d.config_path], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        warnings = [line for line in r.stdout.splitlines() if line.startswith("warning: ")]
        self.assertEqual(len(warnings), 2, r.stdout)
        self.assertIn("refresh.at = 0.5", warnings[0])
        self.assertIn("at most 900 s to ride out an outage", warnings[0])
        self.assertIn("refresh.min_ttl = 1200 s is longer than the reissue window", warnings[1])
        # The example config's defaults say nothing.
        d.write_config(refresh={"at": 0.75, "min_ttl": 60})
        r = subprocess.run([CL_TOKEND, "--check", "-c", d.config_path], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning:", r.stdout)


class InvalidateALiveToken(DaemonTestCase):
    """A client reports the current token refused although the auth server still vouches for
    it (a glitch, a buggy or hostile client): the auth server hands it back until its window
    opens, which would leave every client without a token for up to 1 h 45 min. The daemon
    revokes it once and gets a new one: one request more, and everyone is served."""

    def test_a_token_handed_back_after_a_report_is_revoked_and_replaced(self):
        d = self.daemon()
        d.wait_ready()
        old = d.get("/v1/tokens/backoffice").json()["access_token"]
        before = self.token_requests(fake_harness.INTEGRATION_CLIENT_ID)
        self.fake.control(mode="slow", delay_ms=500, count=1)  # the reports arrive during the fetch

        def report(_: int):
            return d.post("/v1/tokens/backoffice/invalidate", {"access_token": old})
        answers = in_parallel(20, report)
        self.assertEqual({a.status for a in answers}, {200}, [a for a in answers if a.status != 200][:2])
        new = {a.json()["access_token"] for a in answers}
        self.assertEqual(len(new), 1)
        new_token = new.pop()
        self.assertNotEqual(new_token, old)
        self.assertEqual(self.fake.check(new_token)[0], 200)
        self.assertEqual(self.fake.check(old)[0], 401)   # revoked at the auth server
        stats = self.fake.stats()
        # The token request that got the old one back, the revoke, the one that got a new one.
        self.assertEqual(self.token_requests(fake_harness.INTEGRATION_CLIENT_ID) - before, 2, stats)
        self.assertEqual(stats["revoked"], 1)
        self.assertEqual(d.get("/v1/tokens/backoffice").json()["access_token"], new_token)
        status = d.get("/v1/status").json()["credentials"][0]
        self.assertEqual(status["state"], "fresh", status)
        self.assertIn("revoking it so that the next request brings a new one", d.read_log())


if __name__ == "__main__":
    unittest.main()
