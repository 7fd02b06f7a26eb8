#!/usr/bin/env python3
# ctest-timeout: 300
"""Customer sessions in the file store (docs/customer-sessions.md, "Sessions in the
store"): 1,000 sessions survive a restart with no upstream request, each read back with
its own token; a session ended before the restart stays ended; the journal holds neither a
handle nor a token; a journal that cannot be read means no sessions, said in the log."""
import os
import sys
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, wait_for
from store_harness import store_section

SC = fake_harness.SALES_CHANNEL_CREDENTIAL
SESSIONS = f"/v1/customers/{SC}/sessions"
N = 1000


class SessionRestart(DaemonTestCase):
    fake_rate_limit = 0

    def setUp(self) -> None:
        super().setUp()
        self.key_file = os.path.join(self.workdir, "store.key")
        with open(self.key_file, "wb") as f:
            f.write(b"restart-store-key-0123456789abcdef-xyz")
        os.chmod(self.key_file, 0o600)
        self.state = os.path.join(self.workdir, "state")
        self.journal = os.path.join(self.workdir, "sessions")

    def make(self):
        extra = (f"[customers]\nlogin_burst = {N + 100}\nmax_sessions_per_peer = 0\n" +
                 store_section(backend="file", path=self.state, key_file=self.key_file))
        return self.daemon(upstream={"max_requests_per_minute": 100}, extra=extra)

    def upstream_requests(self) -> tuple:
        st = self.fake.stats()
        return st["token_requests_total"], st["jwks_requests"]

    def test_a_thousand_sessions_survive_a_restart_without_an_upstream_request(self):
        d = self.make()
        d.wait_ready()
        status, login = self.fake.token(grant_type="password", client_id=fake_harness.SALES_CHANNEL_CLIENT_ID,
                                        username=fake_harness.CUSTOMER_USERNAME, password=fake_harness.CUSTOMER_PASSWORD)
        self.assertEqual(status, 200, login)
        # Adopting one real login N times: N sessions with real-sized tokens, no upstream request.
        body = {"access_token": login["access_token"], "refresh_token": login["refresh_token"]}
        c = d.client()
        handles = []
        for _ in range(N):
            r = c.request("POST", SESSIONS, body)
            self.assertEqual(r.status, 201, r)
            handles.append(r.json()["session"])
        ended = c.request("DELETE", f"{SESSIONS}/{handles[-1]}")
        self.assertEqual(ended.status, 200, ended)
        c.close()
        with open(self.journal, "rb") as f:
            journal = f.read()
        self.assertNotIn(login["access_token"].encode(), journal)
        self.assertNotIn(login["refresh_token"].encode(), journal)
        for h in handles[:50]:
            self.assertNotIn(h.encode(), journal)
        sys.stderr.write(f"\njournal: {len(journal)} bytes for {N} sessions ({len(journal) / N:.0f} bytes each)\n")

        d.stop()
        before = self.upstream_requests()
        d2 = self.make()
        d2.wait_ready()
        c = d2.client()
        for h in handles[:-1]:
            r = c.request("GET", f"{SESSIONS}/{h}")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["access_token"], login["access_token"])
        self.assertEqual(c.request("GET", f"{SESSIONS}/{handles[-1]}").status, 404, "ended before the restart")
        c.close()
        self.assertEqual(self.upstream_requests(), before, "no token or key-set request after the restart")
        self.assertEqual(d2.get("/v1/status").json()["customers"]["from_store"], N - 1)

    def test_a_journal_that_cannot_be_read_means_no_sessions_and_says_so(self):
        d = self.make()
        d.wait_ready()
        status, login = self.fake.token(grant_type="password", client_id=fake_harness.SALES_CHANNEL_CLIENT_ID,
                                        username=fake_harness.CUSTOMER_USERNAME, password=fake_harness.CUSTOMER_PASSWORD)
        self.assertEqual(status, 200, login)
        c = d.client()
        r = c.request("POST", SESSIONS, {"access_token": login["access_token"], "refresh_token": login["refresh_token"]})
        c.close()
        self.assertEqual(r.status, 201, r)
        d.stop()
        with open(self.journal, "wb") as f:
            f.write(b"\x00not a journal\n")
        os.chmod(self.journal, 0o600)
        d2 = self.make()
        d2.wait_ready()
        self.assertEqual(d2.get(f"{SESSIONS}/{r.json()['session']}").status, 404)
        log = d2.read_log()
        self.assertIn("session journal", log)
        self.assertIn("starting with no stored sessions", log)
        # Moved aside, not destroyed: someone may want to look at it.
        self.assertTrue(any(n.startswith("sessions.refused-") for n in os.listdir(self.workdir)), os.listdir(self.workdir))


if __name__ == "__main__":
    unittest.main()
