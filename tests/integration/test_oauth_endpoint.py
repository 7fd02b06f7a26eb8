#!/usr/bin/python3
"""POST /oauth/token on the socket: Commerce Layer's own request and documents, from the
cache, to the peers a credential allows; and what a peer the credential does not allow
(another uid on the same shared socket) gets: Commerce Layer's error shape and nothing more."""
# ctest-timeout: 180

import json
import urllib.parse

from cltoken_harness import DaemonTestCase, fake_harness, wait_for
from test_security_access import NOBODY, run_as
from validate import validate

SECRET = fake_harness.INTEGRATION_CLIENT_SECRET
IT_ID = fake_harness.INTEGRATION_CLIENT_ID
SC_ID = fake_harness.SALES_CHANNEL_CLIENT_ID
SC_SCOPE = fake_harness.SALES_CHANNEL_SCOPE
WRONG_SECRET = "s3cr3t-backoffice-valuf"  # one character off

CREDENTIALS = """
[credentials.backoffice]
kind = "integration"
client_id = "{it_id}"
client_secret_file = "{secret_file}"
allow = ["uid:0"]

[credentials.storefront-eu]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["*"]

[credentials.ghost]
kind = "integration"
client_id = "it-not-known-upstream"
client_secret_file = "{secret_file}"
allow = ["*"]
"""


class OAuthEndpoint(DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.d = self.daemon(credentials=CREDENTIALS)
        wait_for(lambda: self.d.get("/v1/tokens/backoffice").status == 200, 15, "the backoffice token")
        wait_for(lambda: self.d.get("/v1/tokens/storefront-eu").status == 200, 15, "the storefront token")
        self.tokens = {name: self.d.get(f"/v1/tokens/{name}").json()["access_token"]
                       for name in ("backoffice", "storefront-eu")}
        self.upstream_before = self.fake.stats()["token_requests"]

    def oauth(self, body, content_type="application/json"):
        c = self.d.client()
        try:
            data = body if isinstance(body, str) else json.dumps(body)
            return c.request("POST", "/oauth/token", data, {"Content-Type": content_type})
        finally:
            c.close()

    def assert_error(self, r, status, title):
        self.assertEqual(r.status, status, r.body)
        doc = r.json()
        validate(doc, "oauth-error")
        self.assertEqual(doc["errors"][0]["status"], status)
        self.assertEqual(doc["errors"][0]["title"], title)
        for token in self.tokens.values():
            self.assertNotIn(token, r.body.decode())
        self.assertNotIn(SECRET, r.body.decode())
        self.assertNotIn(WRONG_SECRET, r.body.decode())
        return doc

    def test_commerce_layer_requests_get_the_cached_token_in_commerce_layers_shape(self):
        json_body = {"grant_type": "client_credentials", "client_id": IT_ID, "client_secret": SECRET}
        form_body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": SC_ID, "scope": SC_SCOPE})
        for what, r, name in (
                ("integration, JSON", self.oauth(json_body), "backoffice"),
                ("integration, JSON, market:all", self.oauth(dict(json_body, scope="market:all")), "backoffice"),
                ("sales channel, form", self.oauth(form_body, "application/x-www-form-urlencoded"), "storefront-eu")):
            with self.subTest(what):
                self.assertEqual(r.status, 200, r.body)
                doc = r.json()
                validate(doc, "oauth-token")
                self.assertEqual(list(doc), ["access_token", "token_type", "expires_in", "scope", "created_at"])
                self.assertEqual(doc["access_token"], self.tokens[name])
                status, check = self.fake.check(doc["access_token"])
                self.assertEqual(status, 200, check)
                self.assertGreater(doc["expires_in"], 0)
                self.assertLessEqual(abs(doc["created_at"] + doc["expires_in"] - check["exp"]), 2)
        self.assertEqual(self.fake.stats()["token_requests"], self.upstream_before, "served from the cache")

    def test_refusals_in_commerce_layers_shape(self):
        base = {"grant_type": "client_credentials", "client_id": IT_ID}
        self.assert_error(self.oauth(dict(base, client_secret=WRONG_SECRET)), 401, "invalid_client")
        self.assert_error(self.oauth(base), 401, "invalid_client")
        self.assert_error(self.oauth(dict(base, client_secret=SECRET, scope="market:code:europe")), 401, "invalid_client")
        self.assert_error(self.oauth(dict(base, client_id="it-unknown", client_secret=SECRET)), 401, "invalid_client")
        self.assert_error(self.oauth("{not json"), 400, "invalid_request")
        self.assert_error(self.oauth({"client_id": IT_ID}), 400, "invalid_request")
        doc = self.assert_error(self.oauth({"grant_type": "password", "client_id": SC_ID, "scope": SC_SCOPE,
                                            "username": "ada@example.com", "password": "correct horse"}),
                                400, "unsupported_grant_type")
        self.assertIn("/v1/customers/{name}/sessions", doc["errors"][0]["detail"])
        self.assertNotIn("correct horse", json.dumps(doc))
        # No valid token to be had: upstream refuses this client. 503 with Retry-After.
        wait_for(lambda: self.d.get("/v1/tokens/ghost").status == 503, 15, "the ghost credential to fail")
        r = self.oauth({"grant_type": "client_credentials", "client_id": "it-not-known-upstream", "client_secret": SECRET})
        self.assert_error(r, 503, "upstream_rejected")
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        log = self.d.read_log()
        self.assertNotIn(SECRET, log)
        self.assertNotIn(WRONG_SECRET, log)
        for token in self.tokens.values():
            self.assertNotIn(token, log)
        metrics = self.d.get("/metrics").body.decode()
        self.assertIn('route="oauth_token"', metrics)

    def test_a_peer_the_credential_does_not_allow_learns_nothing(self):
        """nobody (uid 65534) shares the socket: backoffice allows uid 0 only."""
        right = json.dumps({"grant_type": "client_credentials", "client_id": IT_ID, "client_secret": SECRET})
        wrong = json.dumps({"grant_type": "client_credentials", "client_id": IT_ID, "client_secret": WRONG_SECRET})
        answers = []
        for body in (right, wrong):
            r = run_as(self.d.socket, NOBODY, NOBODY, None, "POST", "/oauth/token", body)
            self.assertEqual(r["status"], 403, r)
            doc = json.loads(r["body"])
            validate(doc, "oauth-error")
            self.assertEqual(doc["errors"][0]["title"], "forbidden")
            for token in self.tokens.values():
                self.assertNotIn(token, r["body"])
            self.assertNotIn(SECRET, r["body"])
            answers.append(r["body"])
        # The same answer with the right secret and a wrong one: the socket does not tell
        # a peer that may not use the credential whether a secret is right.
        self.assertEqual(answers[0], answers[1])
        # What it may use, it gets; what it may not, GET /v1/credentials does not show.
        r = run_as(self.d.socket, NOBODY, NOBODY, None, "POST", "/oauth/token",
                   json.dumps({"grant_type": "client_credentials", "client_id": SC_ID, "scope": SC_SCOPE}))
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(json.loads(r["body"])["access_token"], self.tokens["storefront-eu"])
        r = run_as(self.d.socket, NOBODY, NOBODY, None, "GET", "/v1/credentials")
        self.assertEqual(r["status"], 200, r)
        listed = json.loads(r["body"])
        validate(listed, "credentials")
        self.assertEqual([c["name"] for c in listed["credentials"]], ["ghost", "storefront-eu"])
        self.assertNotIn(IT_ID, r["body"])
        mine = self.d.get("/v1/credentials").json()
        validate(mine, "credentials")
        self.assertEqual(mine["credentials"][0], {"name": "backoffice", "kind": "integration", "client_id": IT_ID,
                                                  "scope": None})
        self.assertNotIn(SECRET, json.dumps(mine))
        log = self.d.read_log()
        self.assertIn("access denied: uid=65534", log)
        self.assertNotIn(SECRET, log)
        self.assertNotIn(WRONG_SECRET, log)


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)
