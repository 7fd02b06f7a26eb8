#!/usr/bin/python3
"""Tokens the API rejects, admin revokes, refreshes that gain nothing, and min_ttl,
end to end with the real daemon, cl-tokenctl and the fake auth server."""
# ctest-timeout: 180

import json
import time
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, wait_for
from resilience import credential_status, error_of, in_parallel, jwt_claims, timed
from validate import validate

IT = fake_harness.INTEGRATION_CLIENT_ID
SC = fake_harness.SALES_CHANNEL_CLIENT_ID


class Invalidation(DaemonTestCase):
    fake_rate_limit = 0

    def test_50_reports_of_a_revoked_token_cost_one_request_and_get_one_new_token(self):
        d = self.daemon()
        d.wait_ready()
        old = d.get("/v1/tokens/backoffice").json()["access_token"]
        # Someone revoked it behind the daemon's back: the Core API now says INVALID_TOKEN.
        self.assertEqual(self.fake.revoke(old, IT, fake_harness.INTEGRATION_CLIENT_SECRET)[0], 200)
        status, body = self.fake.check(old)
        self.assertEqual((status, body["errors"][0]["code"]), (401, "INVALID_TOKEN"))
        before = self.token_requests(IT)
        self.fake.control(mode="slow", delay_ms=800, count=1)  # every report arrives during the fetch

        def report(_: int):
            return d.post("/v1/tokens/backoffice/invalidate", {"access_token": old})
        answers = in_parallel(50, report)
        self.assertEqual(self.token_requests(IT) - before, 1)
        tokens = set()
        for r in answers:
            self.assertEqual(r.status, 200, r)
            validate(r.json(), "token")
            tokens.add(r.json()["access_token"])
        self.assertEqual(len(tokens), 1)
        new = tokens.pop()
        self.assertNotEqual(new, old)
        self.assertEqual(self.fake.check(new)[0], 200)

        # A late report of the old token: the current one at once, no request.
        r, took = timed(lambda: d.post("/v1/tokens/backoffice/invalidate", {"access_token": old}))
        self.assertEqual(r.json()["access_token"], new)
        self.assertLess(took, 0.5)
        self.assertEqual(self.token_requests(IT) - before, 1)
        self.assertIn("token reported invalid by a client", d.read_log())
        self.assertNotIn(old, d.read_log())
        self.assertNotIn(new, d.read_log())

    def test_cl_tokenctl_invalidate_prints_the_token_to_use_now(self):
        d = self.daemon()
        d.wait_ready()
        old = d.get("/v1/tokens/storefront-eu").json()["access_token"]
        self.reject(old)
        # On the command line the token would be readable by every user: refused.
        r = d.ctl("invalidate", "storefront-eu", old)
        self.assertEqual(r.returncode, 2, r)
        self.assertNotIn(old, r.stderr)
        r = d.ctl("invalidate", "storefront-eu", input=old + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        new = r.stdout.strip()
        self.assertNotEqual(new, old)
        self.assertEqual(jwt_claims(new)["application"]["client_id"], SC)
        self.assertEqual(d.get("/v1/tokens/storefront-eu").json()["access_token"], new)
        # The same report again, on stdin: the current token, no new request.
        before = self.token_requests(SC)
        r = d.ctl("invalidate", "storefront-eu", input=old + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), new)
        self.assertEqual(self.token_requests(SC), before)
        self.reject(new)
        j = d.ctl("--json", "invalidate", "storefront-eu", input=new + "\n")
        self.assertEqual(j.returncode, 0, j.stderr)
        doc = json.loads(j.stdout)
        validate(doc, "token")
        self.assertNotEqual(doc["access_token"], new)


class Revoke(DaemonTestCase):
    fake_rate_limit = 0

    def test_revoke_revokes_upstream_drops_and_refetches_on_next_demand(self):
        d = self.daemon()
        d.wait_ready()
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        before = self.token_requests(IT)
        r = d.ctl("revoke", "backoffice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.fake.stats()["revoked"], 1)
        self.assertEqual(self.fake.check(token)[0], 401)
        st = credential_status(d, "backoffice")
        self.assertEqual(st["state"], "empty")
        self.assertIsNone(st["expires_in"])
        self.assertIsNone(st["next_refresh_in"])  # nothing until someone asks
        self.assertEqual(self.token_requests(IT), before)
        self.assertEqual(d.get("/v1/health").status, 503)
        r = d.get("/v1/tokens/backoffice")
        self.assertEqual(r.status, 200, r)
        new = r.json()["access_token"]
        self.assertNotEqual(new, token)
        self.assertEqual(self.fake.check(new)[0], 200)
        self.assertEqual(self.token_requests(IT), before + 1)
        self.assertEqual(credential_status(d, "backoffice")["state"], "fresh")

    def test_revoke_over_http_needs_admin_and_reports_upstream_failure(self):
        d = self.daemon(server={"admin": ["uid:0"]})
        d.wait_ready()
        token = d.get("/v1/tokens/storefront-eu").json()["access_token"]
        r = d.ctl("revoke", "storefront-eu", user=65534)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(self.fake.check(token)[0], 200)
        self.fake.stop()  # the auth server is away: the token stays
        r = d.post("/v1/tokens/storefront-eu/revoke")
        self.assertEqual(r.status, 503, r)
        self.assertIn("revoke failed, the token is kept", error_of(r)["message"])
        self.assertEqual(d.get("/v1/tokens/storefront-eu").json()["access_token"], token)
        self.fake.start()
        r = d.post("/v1/tokens/storefront-eu/revoke")
        self.assertEqual((r.status, r.json()), (200, {"revoked": True}))


class NoGain(DaemonTestCase):
    fake_clients = fake_harness.default_clients(integration_lifetime=8, sales_channel_lifetime=3600)
    fake_rate_limit = 0

    def test_refreshes_that_return_the_same_token_back_off_and_never_loop(self):
        d = self.daemon(refresh={"at": 0.5, "jitter": 0.0, "min_ttl": 0, "backoff_initial_ms": 200,
                                 "backoff_max_ms": 2000})
        d.wait_ready()
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        exp = jwt_claims(token)["exp"]
        self.fake.reset()
        self.fake.control(mode="same_token", clients=[IT])
        # From the refresh at 4 s to expiry at 8 s the fake keeps handing back the same
        # token; the daemon keeps serving it and asks again only after growing pauses.
        c = d.client()
        while time.time() < exp - 1.5:
            r = c.get("/v1/tokens/backoffice")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["access_token"], token)
            time.sleep(0.05)  # the client's own pace
        c.close()
        stats = self.fake.stats()
        same = [r["t"] for r in stats["requests"] if r["mode"] == "same_token"]
        self.assertGreaterEqual(len(same), 2)
        # 200 ms, 400, 800, 1600 ms steps (at least half each): a handful, not a loop.
        self.assertLessEqual(len(same), 6, same)
        for a, b in zip(same, same[1:]):
            self.assertGreaterEqual(b - a, 0.1)
        st = credential_status(d, "backoffice")
        self.assertEqual(st["last_error"], "auth server returned the current token again (no newer token to be had yet)")
        self.assertIn(st["state"], ("stale", "refreshing"))
        self.assertIn("refresh gave no gain", d.read_log())
        self.fake.control(mode="normal")
        wait_for(lambda: d.get("/v1/tokens/backoffice").json()["access_token"] != token, 10, "a real new token")


class MinTtl(DaemonTestCase):
    fake_clients = fake_harness.default_clients(integration_lifetime=20, sales_channel_lifetime=3600)
    fake_rate_limit = 0

    def test_min_ttl_refreshes_first_within_the_deadline_and_falls_back_to_the_valid_token(self):
        d = self.daemon(refresh={"at": 0.9, "jitter": 0.0, "min_ttl": 0, "backoff_initial_ms": 500,
                                 "backoff_max_ms": 2000},
                        upstream={"request_timeout_ms": 4000}, server={"request_timeout_ms": 1500})
        d.wait_ready()
        first = d.get("/v1/tokens/backoffice").json()
        self.assertIn(credential_status(d, "backoffice")["next_refresh_in"], (16, 17))  # at 0.9 of 20 s
        # Enough left: served as it is.
        r = d.get("/v1/tokens/backoffice?min_ttl=10")
        self.assertEqual(r.json()["access_token"], first["access_token"])
        # Wait until the token has less than 15 s left (its own clock).
        wait_for(lambda: d.get("/v1/tokens/backoffice").json()["expires_in"] < 15, 10, "the token to age")
        before = self.token_requests(IT)
        r = d.get("/v1/tokens/backoffice?min_ttl=15")
        self.assertEqual(r.status, 200, r)
        second = r.json()
        self.assertNotEqual(second["access_token"], first["access_token"])
        self.assertGreaterEqual(second["expires_in"], 17)
        self.assertEqual(self.token_requests(IT), before + 1)
        # cl-tokenctl asks the same way.
        t = d.ctl("token", "backoffice", "--min-ttl", "15")
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertEqual(t.stdout.strip(), second["access_token"])

        # The upstream fails: the still-valid token comes back with its real expires_in.
        wait_for(lambda: d.get("/v1/tokens/backoffice").json()["expires_in"] < 15, 10, "the new token to age")
        self.fake.control(mode="500", clients=[IT])
        r = d.get("/v1/tokens/backoffice?min_ttl=15")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["access_token"], second["access_token"])
        self.assertLess(r.json()["expires_in"], 15)

        # The upstream hangs: bounded by the request deadline (1.5 s), same fallback. While
        # the backoff after the 500 runs, such requests are answered at once; the first one
        # after it waits for the hanging refresh, up to the deadline.
        self.fake.control(mode="hang", clients=[IT])

        def held_until_the_deadline():
            r, took = timed(lambda: d.get("/v1/tokens/backoffice?min_ttl=15"))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["access_token"], second["access_token"])
            self.assertLess(took, 2.5)
            return took >= 1.2
        wait_for(held_until_the_deadline, 8, "a min_ttl request to wait for the hanging refresh")
        self.assertTrue(any(r["mode"] == "hang" for r in self.fake.stats()["requests"]))
        self.fake.control(mode="normal")

    def test_the_configured_min_ttl_moves_the_scheduled_refresh(self):
        d = self.daemon(refresh={"at": 0.9, "jitter": 0.0, "min_ttl": 8})
        d.wait_ready()
        # Refresh when 8 s are left, not at 0.9 of the lifetime (2 s left).
        nr = credential_status(d, "backoffice")["next_refresh_in"]
        self.assertIn(nr, (10, 11))


if __name__ == "__main__":
    unittest.main(verbosity=2)
