#!/usr/bin/python3
# ctest-timeout: 240
"""upstream.verify when the auth server's key set cannot be had (its endpoint answers 503 or
a set without a usable key from the start), as docs/security.md says: "required" serves
nothing and says why; "when_available" serves tokens whose claims match and says, in
/v1/status and /metrics, that their signature was not checked. Both recover on their own
once the key set can be had."""

from __future__ import annotations

import json
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, metric, wait_for
from validate import validate

IT = fake_harness.INTEGRATION_CLIENT_ID
NAMES = ("backoffice", "storefront-eu")


def gauge(text: str, name: str) -> float:
    """A sample without labels."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name} in /metrics")


class KeySetUnavailable(DaemonTestCase):
    fake_rate_limit = 0  # counted below, not limited

    def started(self, mode: str):
        return self.daemon(upstream={"verify": mode, "jwks_min_interval_s": 1}, log_level="info")

    def status(self, d) -> dict:
        doc = d.get("/v1/status").json()
        validate(doc, "status.schema.json")
        return doc

    def credential(self, d, name: str) -> dict:
        return next(c for c in self.status(d)["credentials"] if c["name"] == name)

    def test_required_serves_nothing_and_names_the_reason(self):
        for jwks_mode, said in (("503", "key set could not be fetched"), ("empty", "no usable key in the set")):
            with self.subTest(jwks=jwks_mode):
                self.fake.reset()
                self.fake.control(jwks=jwks_mode)
                d = self.started("required")
                for name in NAMES:
                    r = d.get(f"/v1/tokens/{name}")
                    self.assertEqual(r.status, 503, r)
                    self.assertNotIn(b"eyJ", r.body)  # no token, not even in an error
                    self.assertIn("retry-after", r.headers)
                for name in NAMES:
                    err = wait_for(lambda: self.credential(d, name)["last_error"], 10, "last_error")
                    self.assertIn("token refused (keys_unavailable)", err)
                    self.assertIn(said, err)
                table = d.ctl("status")
                self.assertIn("keys_unavailable", table.stdout)
                self.assertEqual(table.returncode, 3, table)  # answered, degraded
                self.assertEqual(d.get("/v1/health").status, 503)
                v = self.status(d)["verification"]
                self.assertEqual((v["mode"], v["keys"], v["unverified_tokens"]), ("required", 0, 0))
                self.assertIn(said, v["key_set_error"])
                metrics = d.get("/metrics").body.decode()
                self.assertEqual(gauge(metrics, "cl_tokend_signing_keys"), 0)
                self.assertEqual(gauge(metrics, "cl_tokend_unverified_tokens_total"), 0)
                self.assertGreaterEqual(metric(metrics, "cl_tokend_upstream_requests_total",
                                               'credential="backoffice",outcome="invalid_token"'), 1)
                # The token the auth server did answer was never served: every 200 is absent.
                self.assertNotIn('route="token",code="200"', metrics)

                # The key endpoint comes back: tokens flow, verified, with no operator action.
                self.fake.control(jwks="normal")
                for name in NAMES:
                    wait_for(lambda: d.get(f"/v1/tokens/{name}").status == 200, 20, f"{name} served once keys are had")
                v = self.status(d)["verification"]
                self.assertEqual((v["keys"], v["unverified_tokens"], v["key_set_error"]), (1, 0, None))
                token = d.get("/v1/tokens/backoffice").json()["access_token"]
                self.assertTrue(d.post("/v1/verify", {"access_token": token}).json()["valid"])
                self.assertEqual(d.stop(), 0)

    def test_when_available_serves_and_says_the_signature_was_not_checked(self):
        self.fake.control(jwks="503")
        d = self.started("when_available")
        d.wait_ready()
        tokens = {}
        for name in NAMES:
            r = d.get(f"/v1/tokens/{name}")
            self.assertEqual(r.status, 200, r)
            tokens[name] = r.json()["access_token"]
        v = self.status(d)["verification"]
        self.assertEqual((v["mode"], v["keys"], v["unverified_tokens"]), ("when_available", 0, 2))
        self.assertIn("key set could not be fetched", v["key_set_error"])
        metrics = d.get("/metrics").body.decode()
        self.assertEqual(gauge(metrics, "cl_tokend_signing_keys"), 0)
        self.assertEqual(gauge(metrics, "cl_tokend_unverified_tokens_total"), 2)
        self.assertIn("token signature not checked", d.read_log())
        # POST /v1/verify never vouches for a signature it could not check.
        r = d.post("/v1/verify", {"access_token": tokens["backoffice"]})
        self.assertEqual((r.json()["valid"], r.json()["reason"]), (False, "keys_unavailable"))

        # Claims are still checked without keys: another application's token is refused.
        self.fake.control(mode="other_application", clients=[IT])
        self.reject(tokens["backoffice"])
        r = d.post("/v1/tokens/backoffice/invalidate", {"access_token": tokens["backoffice"]})
        self.assertEqual(r.status, 503, r)
        self.assertIn("token issued to another application",
                      wait_for(lambda: self.credential(d, "backoffice")["last_error"], 10, "last_error"))
        self.fake.control(mode="normal")

        # Keys come back: the next verification checks the signature, and nothing more is unverified.
        self.fake.control(jwks="normal")
        wait_for(lambda: d.post("/v1/verify", {"access_token": tokens["storefront-eu"]}).json()["valid"], 10,
                 "a signature checked once keys can be had")
        v = self.status(d)["verification"]
        self.assertEqual((v["keys"], v["key_set_error"]), (1, None))
        unverified_before = v["unverified_tokens"]
        wait_for(lambda: d.get("/v1/tokens/backoffice").status == 200, 20, "backoffice served again")
        self.assertEqual(self.status(d)["verification"]["unverified_tokens"], unverified_before)


if __name__ == "__main__":
    unittest.main()
