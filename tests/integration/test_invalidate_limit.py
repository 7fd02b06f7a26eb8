#!/usr/bin/python3
"""One peer cannot spend the host's upstream budget by reporting tokens invalid.

Each report of a credential's current token costs an upstream request (three when the auth
server hands the token back and the daemon revokes it). A peer that reports every new token
it gets is held to server.invalidate_burst, then one per invalidate_interval_ms; another
peer's reports, and the admins', are not affected, and reports of older tokens cost nothing.
"""
# ctest-timeout: 120

import json
import unittest

from cltoken_harness import DaemonTestCase
from test_security_access import NOBODY, STRANGER, run_as

SALES_CHANNEL = """
[credentials.storefront-eu]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["*"]
"""


class InvalidateLimit(DaemonTestCase):
    def report(self, d, uid: int) -> dict:
        """As `uid`: read the current token, have the API 'refuse' it (revoked at the fake),
        and report it."""
        r = run_as(d.socket, uid, uid, None, "GET", "/v1/tokens/storefront-eu")
        self.assertEqual(r["status"], 200, r)
        token = json.loads(r["body"])["access_token"]
        self.reject(token)
        answer = run_as(d.socket, uid, uid, None, "POST", "/v1/tokens/storefront-eu/invalidate",
                        json.dumps({"access_token": token}))
        answer["reported"] = token
        return answer

    def test_a_peer_reporting_every_new_token_is_held_to_its_share(self):
        d = self.daemon(credentials=SALES_CHANNEL, server={"invalidate_burst": 3, "invalidate_interval_ms": 600000})
        d.wait_ready()
        before = self.token_requests()
        # The attacker (nobody) reports each new token: 3 are honoured, the 4th is refused
        # with 429 and the token is kept (no upstream request).
        answers = [self.report(d, NOBODY) for _ in range(4)]
        self.assertEqual([a["status"] for a in answers], [200, 200, 200, 429], answers)
        refused = answers[-1]
        self.assertEqual(json.loads(refused["body"])["error"]["code"], "rate_limited")
        self.assertNotIn(refused["reported"], refused["body"])
        self.assertEqual(self.token_requests() - before, 3)
        # Another uid is not held by the attacker's limit: its report gets a new token.
        other = self.report(d, STRANGER)
        self.assertEqual(other["status"], 200, other)
        self.assertNotEqual(json.loads(other["body"])["access_token"], other["reported"])
        self.assertEqual(self.token_requests() - before, 4)
        # An older token costs nothing and is answered with the current one, even for the
        # peer over its limit.
        late = run_as(d.socket, NOBODY, NOBODY, None, "POST", "/v1/tokens/storefront-eu/invalidate",
                      json.dumps({"access_token": answers[0]["reported"]}))
        self.assertEqual(late["status"], 200, late)
        self.assertEqual(self.token_requests() - before, 4)
        # Root (an admin) is not limited.
        for _ in range(4):
            token = d.get("/v1/tokens/storefront-eu").json()["access_token"]
            self.reject(token)
            r = d.post("/v1/tokens/storefront-eu/invalidate", {"access_token": token})
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.token_requests() - before, 8)
        self.assertIn("invalidate over the peer's limit", d.read_log())


if __name__ == "__main__":
    unittest.main()
