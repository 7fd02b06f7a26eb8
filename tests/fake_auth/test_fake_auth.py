#!/usr/bin/python3
"""Self-test of the fake Commerce Layer auth server (ctest: fake_auth.selftest).

Every grant, the error shapes, JWT verification against the JWKS with python3-cryptography,
revoke + /api/check, the rate limit and each misbehaviour mode, over real HTTPS with
verification on. Servers are started with the harness and stopped by pid.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True           # keep the source tree free of __pycache__
sys.path.insert(0, HERE)

import fake_auth  # noqa: E402  (the module under test, for its pure parts)
from harness import (CUSTOMER_ID, CUSTOMER_PASSWORD, CUSTOMER_USERNAME,  # noqa: E402
                     INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET, MARKET_EUROPE_ID,
                     ORGANIZATION_ID, ORGANIZATION_SLUG, PYTHON, SALES_CHANNEL_CLIENT_ID,
                     SALES_CHANNEL_SCOPE, FakeAuth, client, default_clients, make_test_ca,
                     max_requests_in_window)

from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

WORKDIR = ""
SHORT_CLIENT_ID = "it-short-lived"      # 1 s tokens, for expiry
SHORT_CLIENT_SECRET = "short-secret-value"
CONFIDENTIAL_SC_ID = "sc-confidential"  # a sales channel with a secret, for jwt-bearer
CONFIDENTIAL_SC_SECRET = "sc-confidential-secret"


def setUpModule() -> None:
    global WORKDIR
    WORKDIR = tempfile.mkdtemp(prefix="fake_auth_selftest.")


def tearDownModule() -> None:
    if os.environ.get("FAKE_AUTH_KEEP"):
        print(f"kept {WORKDIR}", file=sys.stderr)
    else:
        shutil.rmtree(WORKDIR, ignore_errors=True)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def make_assertion(owner_id: str) -> str:
    """What js-auth's createAssertion() builds: HS512 with the key "cl"."""
    header = b64url(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"https://commercelayer.io/claims": {
        "owner": {"type": "Customer", "id": owner_id}}, "iat": int(time.time())}).encode())
    sig = hmac.new(b"cl", f"{header}.{payload}".encode(), hashlib.sha512).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def poll(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class FakeAuthCase(unittest.TestCase):
    """One server for the class; every test starts from reset() (stats, mode, window)."""

    fake: FakeAuth
    server_kwargs: dict = {}

    @classmethod
    def setUpClass(cls) -> None:
        clients = default_clients() + [
            client(SHORT_CLIENT_ID, "integration", SHORT_CLIENT_SECRET, token_lifetime=1),
            client(CONFIDENTIAL_SC_ID, "sales_channel", CONFIDENTIAL_SC_SECRET,
                   token_lifetime=5, scope="market:all"),
        ]
        kwargs = dict(clients=clients, rate_limit_per_minute=1000, name=cls.__name__)
        kwargs.update(cls.server_kwargs)
        cls.fake = FakeAuth(os.path.join(WORKDIR, cls.__name__), **kwargs).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.fake.stop()

    def setUp(self) -> None:
        self.fake.reset()

    # helpers ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def reissue_window(self, seconds: int):
        """The fake's reissue window set to `seconds` for the block, then back to 900."""
        self.fake.control(reissue_window=seconds)
        try:
            yield
        finally:
            self.fake.control(reissue_window=fake_auth.DEFAULT_REISSUE_WINDOW_S)

    def integration_token(self, **extra) -> dict:
        status, doc = self.fake.token(grant_type="client_credentials",
                                      client_id=INTEGRATION_CLIENT_ID,
                                      client_secret=INTEGRATION_CLIENT_SECRET, **extra)
        self.assertEqual(status, 200, doc)
        return doc

    def customer_token(self, client_id: str = SALES_CHANNEL_CLIENT_ID) -> dict:
        status, doc = self.fake.token(grant_type="password", client_id=client_id,
                                      username=CUSTOMER_USERNAME, password=CUSTOMER_PASSWORD,
                                      scope=SALES_CHANNEL_SCOPE)
        self.assertEqual(status, 200, doc)
        return doc

    def assertOAuthError(self, result, status: int, title: str, code: str) -> None:
        got_status, doc = result
        self.assertEqual(got_status, status, doc)
        self.assertIsInstance(doc["errors"], list, doc)
        self.assertEqual(len(doc["errors"]), 1, doc)
        err = doc["errors"][0]
        self.assertEqual(set(err), {"code", "title", "status", "detail"}, err)
        self.assertEqual(err["title"], title)
        self.assertEqual(err["code"], code)
        self.assertEqual(err["status"], status)   # a number on the auth API
        self.assertIsInstance(err["detail"], str)

    def connection(self, timeout: float = 10.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("localhost", self.fake.port, timeout=timeout,
                                           context=self.fake.ssl_context())

    def post_token(self, conn: http.client.HTTPConnection, **params):
        conn.request("POST", "/oauth/token", body=json.dumps(params),
                     headers={"Content-Type": "application/json"})
        return conn.getresponse()


class GrantTests(FakeAuthCase):
    def test_integration_client_credentials_success_shape(self) -> None:
        before = int(time.time())
        # An earlier test's token would come back with less left: ask for a new one.
        with self.reissue_window(100000):
            doc = self.integration_token()
        self.assertEqual(set(doc), {"access_token", "token_type", "expires_in", "scope",
                                    "created_at"})
        self.assertEqual(doc["token_type"], "bearer")
        self.assertEqual(doc["expires_in"], 7200)          # upstream default, integration
        self.assertEqual(doc["scope"], "market:all")
        self.assertTrue(before <= doc["created_at"] <= int(time.time()) + 1)
        _, claims = jwt_parts(doc["access_token"])
        self.assertEqual(claims["application"]["kind"], "integration")
        self.assertIs(claims["application"]["public"], False)
        self.assertNotIn("market", claims)
        self.assertNotIn("owner", claims)

    def test_form_encoded_and_basic_auth(self) -> None:
        status, _, data = self.fake.request(
            "POST", "/oauth/token",
            body=f"grant_type=client_credentials&client_id={INTEGRATION_CLIENT_ID}"
                 f"&client_secret={INTEGRATION_CLIENT_SECRET}",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, data)
        basic = base64.b64encode(
            f"{INTEGRATION_CLIENT_ID}:{INTEGRATION_CLIENT_SECRET}".encode()).decode()
        status, _, data = self.fake.request(
            "POST", "/oauth/token", body={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"})
        self.assertEqual(status, 200, data)

    def test_chunked_request_body(self) -> None:
        conn = self.connection()
        body = json.dumps({"grant_type": "client_credentials", "client_id":
                           INTEGRATION_CLIENT_ID, "client_secret": INTEGRATION_CLIENT_SECRET})
        conn.request("POST", "/oauth/token", body=iter([body[:10].encode(),
                                                        body[10:].encode()]),
                     headers={"Content-Type": "application/json"}, encode_chunked=True)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200, resp.read())
        resp.read()
        conn.close()

    def test_unknown_fields_are_ignored(self) -> None:
        self.integration_token(unexpected="x", another={"nested": True})

    def test_integration_client_errors(self) -> None:
        base = {"grant_type": "client_credentials", "client_id": INTEGRATION_CLIENT_ID}
        self.assertOAuthError(self.fake.token(**base), 401, "invalid_client", "UNAUTHORIZED")
        self.assertOAuthError(self.fake.token(**base, client_secret="wrong"), 401,
                              "invalid_client", "UNAUTHORIZED")
        self.assertOAuthError(self.fake.token(grant_type="client_credentials",
                                              client_id="nobody", client_secret="x"),
                              401, "invalid_client", "UNAUTHORIZED")
        self.assertOAuthError(self.fake.token(grant_type="client_credentials"), 401,
                              "invalid_client", "UNAUTHORIZED")

    def test_sales_channel_client_credentials(self) -> None:
        with self.reissue_window(100000):
            status, doc = self.fake.token(grant_type="client_credentials",
                                          client_id=SALES_CHANNEL_CLIENT_ID,
                                          scope=SALES_CHANNEL_SCOPE)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["expires_in"], 14400)          # upstream default, sales channel
        self.assertEqual(doc["scope"], SALES_CHANNEL_SCOPE)
        _, claims = jwt_parts(doc["access_token"])
        self.assertEqual(claims["application"]["kind"], "sales_channel")
        self.assertIs(claims["application"]["public"], True)
        self.assertEqual(claims["market"]["id"], [MARKET_EUROPE_ID])
        for key in ("price_list_id", "stock_location_ids", "geocoder_id",
                    "allows_external_prices"):
            self.assertIn(key, claims["market"])
        # Without a scope the client's configured one applies.
        status, doc = self.fake.token(grant_type="client_credentials",
                                      client_id=SALES_CHANNEL_CLIENT_ID)
        self.assertEqual((status, doc["scope"]), (200, SALES_CHANNEL_SCOPE))
        for scope in (f"market:id:{MARKET_EUROPE_ID}", "market:all",
                      "market:code:europe stock_location:code:eu_warehouse"):
            status, doc = self.fake.token(grant_type="client_credentials",
                                          client_id=SALES_CHANNEL_CLIENT_ID, scope=scope)
            self.assertEqual((status, doc.get("scope")), (200, scope), doc)
        _, claims = jwt_parts(self.fake.token(grant_type="client_credentials",
                                              client_id=SALES_CHANNEL_CLIENT_ID,
                                              scope="market:all")[1]["access_token"])
        self.assertEqual(len(claims["market"]["id"]), 2)

    def test_bad_scopes(self) -> None:
        for scope in ("market:code:atlantis", "market:id:nope", "everything", "market:",
                      "market:code:europe bogus"):
            self.assertOAuthError(self.fake.token(grant_type="client_credentials",
                                                  client_id=SALES_CHANNEL_CLIENT_ID,
                                                  scope=scope),
                                  400, "invalid_scope", "BAD_REQUEST")

    def test_sales_channel_rejects_a_wrong_secret(self) -> None:
        self.assertOAuthError(self.fake.token(grant_type="client_credentials",
                                              client_id=SALES_CHANNEL_CLIENT_ID,
                                              client_secret="not-its-secret"),
                              401, "invalid_client", "UNAUTHORIZED")

    def test_password_grant(self) -> None:
        doc = self.customer_token()
        self.assertEqual(set(doc), {"access_token", "token_type", "expires_in", "scope",
                                    "created_at", "refresh_token", "owner_id", "owner_type"})
        self.assertEqual(doc["owner_id"], CUSTOMER_ID)
        self.assertEqual(doc["owner_type"], "customer")
        _, claims = jwt_parts(doc["access_token"])
        self.assertEqual(claims["owner"], {"id": CUSTOMER_ID, "type": "Customer"})
        self.assertEqual(self.fake.check(doc["access_token"])[1]["owner_id"], CUSTOMER_ID)

    def test_password_grant_errors(self) -> None:
        base = {"grant_type": "password", "client_id": SALES_CHANNEL_CLIENT_ID,
                "username": CUSTOMER_USERNAME}
        self.assertOAuthError(self.fake.token(**base, password="wrong horse"), 401,
                              "invalid_grant", "UNAUTHORIZED")
        self.assertOAuthError(self.fake.token(**dict(base, username="eve@example.com"),
                                              password="x"),
                              401, "invalid_grant", "UNAUTHORIZED")
        self.assertOAuthError(self.fake.token(**base), 400, "invalid_request", "BAD_REQUEST")
        self.assertOAuthError(self.fake.token(grant_type="password",
                                              client_id=INTEGRATION_CLIENT_ID,
                                              client_secret=INTEGRATION_CLIENT_SECRET,
                                              username=CUSTOMER_USERNAME,
                                              password=CUSTOMER_PASSWORD),
                              401, "unauthorized_client", "UNAUTHORIZED")

    def test_refresh_token_rotates(self) -> None:
        first = self.customer_token()
        status, second = self.fake.token(grant_type="refresh_token",
                                         client_id=SALES_CHANNEL_CLIENT_ID,
                                         refresh_token=first["refresh_token"])
        self.assertEqual(status, 200, second)
        self.assertNotEqual(second["refresh_token"], first["refresh_token"])
        self.assertNotEqual(second["access_token"], first["access_token"])
        self.assertEqual((second["owner_id"], second["owner_type"]), (CUSTOMER_ID, "customer"))
        self.assertEqual(second["scope"], first["scope"])
        self.assertEqual(self.fake.check(second["access_token"])[0], 200)
        # The previous access token lives on until it expires.
        self.assertEqual(self.fake.check(first["access_token"])[0], 200)
        # A rotated refresh token is spent.
        self.assertOAuthError(self.fake.token(grant_type="refresh_token",
                                              client_id=SALES_CHANNEL_CLIENT_ID,
                                              refresh_token=first["refresh_token"]),
                              401, "invalid_grant", "UNAUTHORIZED")

    def test_refresh_token_errors(self) -> None:
        doc = self.customer_token()
        self.assertOAuthError(self.fake.token(grant_type="refresh_token",
                                              client_id=SALES_CHANNEL_CLIENT_ID,
                                              refresh_token="made-up"),
                              401, "invalid_grant", "UNAUTHORIZED")
        # Issued to another client.
        self.assertOAuthError(self.fake.token(grant_type="refresh_token",
                                              client_id=CONFIDENTIAL_SC_ID,
                                              client_secret=CONFIDENTIAL_SC_SECRET,
                                              refresh_token=doc["refresh_token"]),
                              401, "invalid_grant", "UNAUTHORIZED")
        self.assertOAuthError(self.fake.token(grant_type="refresh_token",
                                              client_id=SALES_CHANNEL_CLIENT_ID),
                              400, "invalid_request", "BAD_REQUEST")

    def test_jwt_bearer(self) -> None:
        grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
        status, doc = self.fake.token(grant_type=grant, client_id=CONFIDENTIAL_SC_ID,
                                      client_secret=CONFIDENTIAL_SC_SECRET,
                                      assertion=make_assertion(CUSTOMER_ID))
        self.assertEqual(status, 200, doc)
        self.assertEqual((doc["owner_id"], doc["owner_type"]), (CUSTOMER_ID, "customer"))
        self.assertIn("refresh_token", doc)
        # Needs a client secret.
        self.assertOAuthError(self.fake.token(grant_type=grant,
                                              client_id=SALES_CHANNEL_CLIENT_ID,
                                              assertion=make_assertion(CUSTOMER_ID)),
                              401, "invalid_client", "UNAUTHORIZED")
        self.assertOAuthError(self.fake.token(grant_type=grant, client_id=CONFIDENTIAL_SC_ID,
                                              client_secret=CONFIDENTIAL_SC_SECRET,
                                              assertion=make_assertion("cust-unknown")),
                              401, "invalid_grant", "UNAUTHORIZED")
        self.assertOAuthError(self.fake.token(grant_type=grant, client_id=CONFIDENTIAL_SC_ID,
                                              client_secret=CONFIDENTIAL_SC_SECRET),
                              400, "invalid_request", "BAD_REQUEST")

    def test_unsupported_and_malformed_requests(self) -> None:
        self.assertOAuthError(self.fake.token(grant_type="authorization_code",
                                              client_id=SALES_CHANNEL_CLIENT_ID, code="x"),
                              400, "unsupported_grant_type", "BAD_REQUEST")
        self.assertOAuthError(self.fake.token(grant_type="implicit",
                                              client_id=SALES_CHANNEL_CLIENT_ID),
                              400, "unsupported_grant_type", "BAD_REQUEST")
        self.assertOAuthError(self.fake.token(client_id=SALES_CHANNEL_CLIENT_ID), 400,
                              "invalid_request", "BAD_REQUEST")
        status, _, data = self.fake.request("POST", "/oauth/token", body="{not json",
                                            headers={"Content-Type": "application/json"})
        self.assertOAuthError((status, json.loads(data)), 400, "invalid_request",
                              "BAD_REQUEST")

    def test_tokens_never_collide(self) -> None:
        with self.reissue_window(0):       # a new token on every request
            tokens = {self.integration_token()["access_token"] for _ in range(5)}
        self.assertEqual(len(tokens), 5)
        jtis = {jwt_parts(t)[1]["jti"] for t in tokens}
        self.assertEqual(len(jtis), 5)


class ReissueTests(FakeAuthCase):
    """Commerce Layer hands back the current client_credentials token until it has the
    reissue window (15 minutes) left; only then does a request get a new one."""

    def tearDown(self) -> None:
        self.fake.control(reissue_window=fake_auth.DEFAULT_REISSUE_WINDOW_S)

    def test_same_token_until_the_window_then_a_new_one(self) -> None:
        self.assertEqual(self.fake.stats()["reissue_window"], 900)
        # A window wider than any token's life: this request gets a new token.
        self.fake.control(reissue_window=100000)
        first = self.integration_token()
        # 7200 s tokens: far from the default window, so the same token comes back with
        # expires_in counting down and its own created_at.
        self.fake.control(reissue_window=900)
        again = self.integration_token()
        self.assertEqual(again["access_token"], first["access_token"])
        self.assertEqual(again["created_at"], first["created_at"])
        self.assertLessEqual(again["expires_in"], first["expires_in"])
        self.assertGreaterEqual(again["expires_in"], first["expires_in"] - 2)
        stats = self.fake.stats()
        self.assertEqual((stats["tokens_issued"], stats["tokens_reused"]), (1, 1))
        # With a window wider than what is left, the next request issues a new token, and
        # the old one stays valid (both are, in the overlap).
        self.fake.control(reissue_window=first["expires_in"] + 10)
        new = self.integration_token()
        self.assertNotEqual(new["access_token"], first["access_token"])
        self.assertEqual(self.fake.check(first["access_token"])[0], 200)
        self.assertEqual(self.fake.check(new["access_token"])[0], 200)
        # Inside the window every request issues another one.
        self.assertNotEqual(self.integration_token()["access_token"], new["access_token"])

    def test_window_zero_issues_every_time(self) -> None:
        self.fake.control(reissue_window=0)
        a, b = self.integration_token(), self.integration_token()
        self.assertNotEqual(a["access_token"], b["access_token"])

    def test_per_client_and_scope(self) -> None:
        europe = self.fake.token(grant_type="client_credentials",
                                 client_id=SALES_CHANNEL_CLIENT_ID, scope=SALES_CHANNEL_SCOPE)[1]
        europe_again = self.fake.token(grant_type="client_credentials",
                                       client_id=SALES_CHANNEL_CLIENT_ID,
                                       scope=SALES_CHANNEL_SCOPE)[1]
        everywhere = self.fake.token(grant_type="client_credentials",
                                     client_id=SALES_CHANNEL_CLIENT_ID, scope="market:all")[1]
        self.assertEqual(europe_again["access_token"], europe["access_token"])
        self.assertNotEqual(everywhere["access_token"], europe["access_token"])
        self.assertNotEqual(self.integration_token()["access_token"], europe["access_token"])

    def test_revoked_token_is_never_handed_back(self) -> None:
        first = self.integration_token()
        self.fake.revoke(first["access_token"], INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET)
        second = self.integration_token()
        self.assertNotEqual(second["access_token"], first["access_token"])
        self.assertEqual(self.fake.check(second["access_token"])[0], 200)
        self.assertEqual(self.integration_token()["access_token"], second["access_token"])

    def test_customer_grants_always_issue(self) -> None:
        a, b = self.customer_token(), self.customer_token()
        self.assertNotEqual(a["access_token"], b["access_token"])
        status, refreshed = self.fake.token(grant_type="refresh_token",
                                            client_id=SALES_CHANNEL_CLIENT_ID,
                                            refresh_token=b["refresh_token"])
        self.assertEqual(status, 200, refreshed)
        self.assertNotEqual(refreshed["access_token"], b["access_token"])

    def test_control_validation(self) -> None:
        for bad in (-1, "900", True, 1.5):
            status, doc = self.fake._json("POST", "/_fake/control", {"reissue_window": bad})
            self.assertEqual(status, 400, (bad, doc))
        self.assertEqual(self.fake.control(reissue_window=30)["reissue_window"], 30)


class LedgerTests(FakeAuthCase):
    """GET /_fake/ledger and clock_jump_s (a server of its own: the jump is for good)."""

    def test_every_issue_and_revoke_in_order_with_real_times(self) -> None:
        start = self.fake.ledger()["next"]
        before = time.time()
        doc = self.customer_token()
        claims = jwt_parts(doc["access_token"])[1]
        self.fake.revoke(doc["access_token"], SALES_CHANNEL_CLIENT_ID)
        events = self.fake.ledger(start)
        self.assertEqual(events["next"], start + 2)
        issued, revoked = events["events"]
        self.assertEqual((issued["event"], issued["jti"], issued["client_id"], issued["owner_id"]),
                         ("issued", claims["jti"], SALES_CHANNEL_CLIENT_ID, CUSTOMER_ID))
        self.assertEqual(issued["exp"], claims["exp"])
        # Real time: the fake's exp less how far its clock has jumped (the other test).
        self.assertEqual(issued["expires_real"], claims["exp"] - events["clock_offset_s"])
        self.assertGreaterEqual(issued["t"], before - 1)
        self.assertEqual((revoked["event"], revoked["jti"]), ("revoked", claims["jti"]))
        self.assertEqual(self.fake.ledger(start + 2)["events"], [])

    def test_a_clock_jump_shortens_what_is_handed_back_not_what_was_issued(self) -> None:
        self.fake.control(reissue_window=100000)
        first = self.integration_token()
        self.fake.control(reissue_window=1)
        self.assertEqual(self.fake.control(clock_jump_s=30)["clock_offset_s"], 30)
        again = self.integration_token()
        self.assertEqual(again["access_token"], first["access_token"])
        self.assertLessEqual(again["expires_in"], first["expires_in"] - 30)
        events = [e for e in self.fake.ledger()["events"] if e["event"] == "issued"]
        self.assertEqual(len(events), 1)  # handed back, not issued again
        self.fake.control(reissue_window=100000)
        new = self.integration_token()
        claims = jwt_parts(new["access_token"])[1]
        last = self.fake.ledger()["events"][-1]
        self.assertEqual(claims["exp"] - claims["iat"], new["expires_in"])
        self.assertEqual(last["expires_real"], claims["exp"] - 30)
        self.assertGreaterEqual(claims["iat"], time.time() + 28)
        for bad in (-1, "5", True, 1.5):
            status, body = self.fake._json("POST", "/_fake/control", {"clock_jump_s": bad})
            self.assertEqual(status, 400, (bad, body))


class JwtTests(FakeAuthCase):
    def jwks_key(self, kid: str) -> rsa.RSAPublicKey:
        status, _, data = self.fake.request("GET", "/.well-known/jwks.json")
        self.assertEqual(status, 200)
        keys = json.loads(data)["keys"]
        key = next(k for k in keys if k["kid"] == kid)
        self.assertEqual((key["kty"], key["alg"], key["use"]), ("RSA", "RS512", "sig"))
        n = int.from_bytes(b64url_decode(key["n"]), "big")
        e = int.from_bytes(b64url_decode(key["e"]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()

    def verify(self, token: str) -> dict:
        header, claims = jwt_parts(token)
        self.assertEqual(header["alg"], "RS512")
        self.assertEqual(header["typ"], "JWT")
        key = self.jwks_key(header["kid"])
        signing_input, _, sig = token.rpartition(".")
        key.verify(b64url_decode(sig), signing_input.encode(), padding.PKCS1v15(),
                   hashes.SHA512())
        return claims

    def test_integration_token_verifies_and_has_the_claims(self) -> None:
        doc = self.integration_token()
        claims = self.verify(doc["access_token"])
        self.assertEqual(claims["organization"], {"id": ORGANIZATION_ID,
                                                  "slug": ORGANIZATION_SLUG,
                                                  "enterprise": False, "region": "eu-west-1"})
        self.assertEqual(set(claims["application"]), {"id", "client_id", "kind", "public"})
        self.assertEqual(claims["application"]["client_id"], INTEGRATION_CLIENT_ID)
        self.assertEqual(claims["scope"], "market:all")
        self.assertEqual(claims["exp"] - claims["iat"], 7200)
        self.assertEqual(claims["iat"], doc["created_at"])
        self.assertIs(claims["test"], True)
        self.assertEqual(claims["iss"], self.fake.url)
        self.assertIn("jti", claims)

    def test_customer_token_verifies(self) -> None:
        claims = self.verify(self.customer_token()["access_token"])
        self.assertEqual(claims["owner"]["id"], CUSTOMER_ID)
        self.assertIn("market", claims)

    def test_tampered_token_fails_verification(self) -> None:
        token = self.integration_token()["access_token"]
        header, payload, sig = token.split(".")
        claims = json.loads(b64url_decode(payload))
        claims["scope"] = "market:id:stolen"
        forged = f"{header}.{b64url(json.dumps(claims).encode())}.{sig}"
        with self.assertRaises(InvalidSignature):
            self.verify(forged)
        status, doc = self.fake.check(forged)
        self.assertEqual(status, 401)

    def test_rotation_publishes_the_new_key_and_keeps_the_old(self) -> None:
        self.fake.control(reissue_window=0)
        old = self.integration_token()["access_token"]
        old_kid = jwt_parts(old)[0]["kid"]
        rotated = self.fake.rotate_key()
        self.assertNotEqual(rotated["kid"], old_kid)
        self.assertEqual(rotated["published"], [old_kid, rotated["kid"]])
        new = self.integration_token()["access_token"]
        self.assertEqual(jwt_parts(new)[0]["kid"], rotated["kid"])
        self.verify(new)
        self.verify(old)  # still published: verifiable until it expires
        self.assertEqual(self.fake.check(old)[0], 200)
        self.assertGreaterEqual(self.fake.stats()["jwks_requests"], 2)

    def test_a_withdrawing_rotation_drops_the_old_keys(self) -> None:
        old = self.integration_token()["access_token"]
        old_kid = jwt_parts(old)[0]["kid"]
        rotated = self.fake.rotate_key(withdraw=True)
        self.assertEqual(rotated["published"], [rotated["kid"]])
        self.assertNotEqual(rotated["kid"], old_kid)
        self.assertEqual(self.fake.check(old)[0], 401)
        status, _, data = self.fake.request("GET", "/.well-known/jwks.json")
        self.assertEqual([k["kid"] for k in json.loads(data)["keys"]], [rotated["kid"]])
        status, doc = self.fake._json("POST", "/_fake/rotate_key", {"withdraw": "yes"})
        self.assertEqual(status, 400, doc)

    def test_the_key_set_endpoint_fails_on_demand_and_tokens_still_come(self) -> None:
        self.fake.control(jwks="503")
        status, _, _ = self.fake.request("GET", "/.well-known/jwks.json")
        self.assertEqual(status, 503)
        self.fake.control(jwks="empty")
        status, _, data = self.fake.request("GET", "/.well-known/jwks.json")
        self.assertEqual((status, json.loads(data)), (200, {"keys": []}))
        self.assertIn("access_token", self.integration_token())  # tokens unaffected
        self.assertEqual(self.fake.stats()["jwks"], "empty")
        self.fake.control(jwks="normal")
        status, _, data = self.fake.request("GET", "/.well-known/jwks.json")
        self.assertEqual(status, 200)
        self.assertTrue(json.loads(data)["keys"])
        self.assertEqual(self.fake.stats()["jwks_requests"], 3)
        status, doc = self.fake._json("POST", "/_fake/control", {"jwks": "sometimes"})
        self.assertEqual(status, 400, doc)

    def test_token_misbehaviours_hand_out_tokens_a_verifier_must_refuse(self) -> None:
        altered = {
            "other_application": lambda c: self.assertEqual(c["application"]["client_id"], "another-application-client-id"),
            "other_scope": lambda c: self.assertEqual(c["scope"], "market:code:elsewhere"),
            "other_issuer": lambda c: self.assertEqual(c["iss"], "https://auth.elsewhere.example"),
            "wrong_exp": lambda c: self.assertEqual(c["exp"] - c["iat"], 7200 + 3600),
        }
        for mode, check in altered.items():
            with self.subTest(mode=mode):
                self.fake.control(mode=mode, count=1)
                doc = self.integration_token()
                check(self.verify(doc["access_token"]))  # still signed by a published key
        self.fake.control(mode="foreign_key", count=1)
        token = self.integration_token()["access_token"]
        with self.assertRaises(StopIteration):  # its kid is in no JWKS
            self.verify(token)
        self.assertEqual(self.fake.check(token)[0], 401)


class RevokeAndCheckTests(FakeAuthCase):
    def assertInvalidToken(self, result) -> None:
        status, doc = result
        self.assertEqual(status, 401, doc)
        err = doc["errors"][0]
        self.assertEqual((err["title"], err["code"], err["status"]),
                         ("Invalid token", "INVALID_TOKEN", "401"))   # status is a string

    def test_check_valid_token(self) -> None:
        doc = self.integration_token()
        status, body = self.fake.check(doc["access_token"])
        self.assertEqual(status, 200)
        self.assertEqual((body["ok"], body["client_id"], body["owner_id"]),
                         (True, INTEGRATION_CLIENT_ID, None))

    def test_check_rejects_missing_and_garbage_tokens(self) -> None:
        status, _, data = self.fake.request("GET", "/api/check")
        self.assertInvalidToken((status, json.loads(data)))
        self.assertInvalidToken(self.fake.check("not-a-jwt"))
        self.assertInvalidToken(self.fake.check("a.b.c"))

    def test_revoke_access_token(self) -> None:
        doc = self.integration_token()
        self.assertEqual(self.fake.revoke(doc["access_token"], INTEGRATION_CLIENT_ID,
                                          INTEGRATION_CLIENT_SECRET), (200, {}))
        self.assertInvalidToken(self.fake.check(doc["access_token"]))
        self.assertEqual(self.fake.stats()["revoked"], 1)
        # Revoking again, or an unknown token, is still 200 {} (RFC 7009) and counts nothing.
        self.assertEqual(self.fake.revoke(doc["access_token"], INTEGRATION_CLIENT_ID,
                                          INTEGRATION_CLIENT_SECRET), (200, {}))
        self.assertEqual(self.fake.revoke("unknown", INTEGRATION_CLIENT_ID,
                                          INTEGRATION_CLIENT_SECRET), (200, {}))
        stats = self.fake.stats()
        self.assertEqual((stats["revoked"], stats["revoke_requests_total"]), (1, 3))

    def test_revoke_refresh_token_revokes_its_grant(self) -> None:
        doc = self.customer_token()
        self.assertEqual(self.fake.revoke(doc["refresh_token"], SALES_CHANNEL_CLIENT_ID),
                         (200, {}))
        self.assertInvalidToken(self.fake.check(doc["access_token"]))
        self.assertOAuthError(self.fake.token(grant_type="refresh_token",
                                              client_id=SALES_CHANNEL_CLIENT_ID,
                                              refresh_token=doc["refresh_token"]),
                              401, "invalid_grant", "UNAUTHORIZED")

    def test_revoke_needs_the_owning_client(self) -> None:
        doc = self.integration_token()
        self.assertOAuthError(self.fake.revoke(doc["access_token"], INTEGRATION_CLIENT_ID,
                                               "wrong"), 401, "invalid_client", "UNAUTHORIZED")
        # Another client's token: answered 200 but left alone.
        self.assertEqual(self.fake.revoke(doc["access_token"], SALES_CHANNEL_CLIENT_ID),
                         (200, {}))
        self.assertEqual(self.fake.check(doc["access_token"])[0], 200)
        status, _, data = self.fake.request("POST", "/oauth/revoke",
                                            body={"client_id": INTEGRATION_CLIENT_ID,
                                                  "client_secret": INTEGRATION_CLIENT_SECRET})
        self.assertOAuthError((status, json.loads(data)), 400, "invalid_request",
                              "BAD_REQUEST")

    def test_expired_token_is_rejected(self) -> None:
        status, doc = self.fake.token(grant_type="client_credentials",
                                      client_id=SHORT_CLIENT_ID,
                                      client_secret=SHORT_CLIENT_SECRET)
        self.assertEqual((status, doc["expires_in"]), (200, 1))
        poll(lambda: self.fake.check(doc["access_token"])[0] == 401, timeout=5)
        status, body = self.fake.check(doc["access_token"])
        self.assertInvalidToken((status, body))
        self.assertIn("expired", body["errors"][0]["detail"])


class RateLimitTests(FakeAuthCase):
    server_kwargs = {"rate_limit_per_minute": 3}

    def request_token(self):
        return self.fake.request("POST", "/oauth/token", body={
            "grant_type": "client_credentials", "client_id": INTEGRATION_CLIENT_ID,
            "client_secret": INTEGRATION_CLIENT_SECRET})

    def test_configured_limit_then_429_with_retry_after(self) -> None:
        self.assertEqual(self.fake.stats()["rate_limit_per_minute"], 3)
        for _ in range(3):
            self.assertEqual(self.request_token()[0], 200)
        status, headers, data = self.request_token()
        self.assertOAuthError((status, json.loads(data)), 429, "Too many requests",
                              "TOO_MANY_REQUESTS")
        self.assertTrue(1 <= int(headers["retry-after"]) <= 60, headers)
        # Control and stats endpoints are never limited.
        for _ in range(5):
            stats = self.fake.stats()
        self.assertEqual((stats["token_requests_total"], stats["rejected_429"]), (4, 1))
        self.assertEqual([r["status"] for r in stats["requests"]], [200, 200, 200, 429])
        times = [r["t"] for r in stats["requests"]]
        self.assertEqual(times, sorted(times))
        # reset() clears the window.
        self.fake.reset()
        self.assertEqual(self.request_token()[0], 200)

    def test_limit_can_change_at_runtime(self) -> None:
        self.fake.control(rate_limit_per_minute=1)
        self.assertEqual(self.request_token()[0], 200)
        self.assertEqual(self.request_token()[0], 429)
        self.fake.control(rate_limit_per_minute=0)          # 0: no limit
        self.assertEqual(self.request_token()[0], 200)
        self.fake.control(rate_limit_per_minute=3)

    def test_max_requests_in_window(self) -> None:
        reqs = [{"t": t, "client_id": c} for t, c in
                ((0.0, "a"), (10.0, "b"), (59.0, "a"), (60.0, "a"), (61.0, "a"), (200.0, "a"))]
        self.assertEqual(max_requests_in_window(reqs), 4)        # 10, 59, 60, 61
        self.assertEqual(max_requests_in_window(reqs, client_id="a"), 3)
        self.assertEqual(max_requests_in_window(reqs, window_s=1.0), 1)   # 1 s apart: not
        self.assertEqual(max_requests_in_window(reqs, window_s=1.5), 2)   # in one window
        self.assertEqual(max_requests_in_window([]), 0)

    def test_window_slides(self) -> None:
        """The limiter on its own with a made-up clock: no 60 s wait."""
        limiter = fake_auth.RateLimiter(2)
        self.assertEqual(limiter.admit("ip", 100.0), (True, 0))
        self.assertEqual(limiter.admit("ip", 130.0), (True, 0))
        self.assertEqual(limiter.admit("ip", 131.0), (False, 29))
        self.assertEqual(limiter.admit("other", 131.0), (True, 0))   # per client IP
        self.assertEqual(limiter.admit("ip", 159.5), (False, 1))
        self.assertEqual(limiter.admit("ip", 160.0), (True, 0))      # first one left
        self.assertEqual(limiter.admit("ip", 161.0), (False, 29))


class MisbehaviourTests(FakeAuthCase):
    def token_request(self, client_id: str = INTEGRATION_CLIENT_ID, timeout: float = 10.0):
        params = {"grant_type": "client_credentials", "client_id": client_id}
        if client_id == INTEGRATION_CLIENT_ID:
            params["client_secret"] = INTEGRATION_CLIENT_SECRET
        return self.fake.request("POST", "/oauth/token", body=params, timeout=timeout)

    def test_429_with_retry_after_seconds_date_or_none(self) -> None:
        date = "Wed, 21 Oct 2037 07:28:00 GMT"
        for retry_after, expected in (("4", "4"), (date, date), (None, None)):
            kw = {"mode": "429", "count": 1}
            if retry_after is not None:
                kw["retry_after"] = retry_after
            self.fake.control(**kw)
            status, headers, data = self.token_request()
            self.assertEqual(status, 429)
            self.assertEqual(headers.get("retry-after"), expected)
            self.assertEqual(json.loads(data)["errors"][0]["status"], 429)
            self.assertEqual(self.token_request()[0], 200)    # count=1: back to normal
        self.assertEqual(self.fake.stats()["rejected_429"], 3)

    def test_500_and_other_5xx(self) -> None:
        self.fake.control(mode="500")
        for _ in range(2):
            status, _, data = self.token_request()
            self.assertEqual(status, 500)
            self.assertEqual(json.loads(data)["errors"][0]["code"], "INTERNAL_SERVER_ERROR")
        self.fake.control(mode="500", status=503, count=1)
        self.assertEqual(self.token_request()[0], 503)
        self.assertEqual(self.token_request()[0], 200)

    def test_count_then_back_to_normal(self) -> None:
        self.fake.control(mode="500", count=2)
        self.assertEqual([self.token_request()[0] for _ in range(3)], [500, 500, 200])
        self.assertEqual(self.fake.stats()["mode"]["mode"], "normal")

    def test_clients_filter(self) -> None:
        self.fake.control(mode="500", clients=[SALES_CHANNEL_CLIENT_ID])
        self.assertEqual(self.token_request(INTEGRATION_CLIENT_ID)[0], 200)
        self.assertEqual(self.token_request(SALES_CHANNEL_CLIENT_ID)[0], 500)

    def test_hang_holds_until_the_client_gives_up(self) -> None:
        self.fake.control(mode="hang", count=1)
        started = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.token_request(timeout=0.5)
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        # The held request is in the stats, and others are served meanwhile.
        stats = self.fake.stats()
        self.assertEqual(stats["requests"][-1]["mode"], "hang")
        self.assertEqual(self.token_request()[0], 200)
        # Once the client went away the fake lets go of the connection.
        poll(lambda: "mode=hang (released)" in self.fake.log_text(), timeout=5)

    def test_reset_closes_the_connection_abruptly(self) -> None:
        self.fake.control(mode="reset", count=1)
        with self.assertRaises(ConnectionResetError):
            self.token_request()
        self.assertEqual(self.fake.stats()["requests"][-1]["mode"], "reset")
        self.assertEqual(self.token_request()[0], 200)

    def test_garbage(self) -> None:
        self.fake.control(mode="garbage", count=1)
        status, headers, data = self.token_request()
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]), len(data))
        with self.assertRaises(ValueError):
            json.loads(data)

    def test_truncated(self) -> None:
        self.fake.control(mode="truncated", count=1)
        with self.assertRaises(http.client.IncompleteRead):
            self.token_request()
        self.assertEqual(self.token_request()[0], 200)

    def test_errors_object(self) -> None:
        self.fake.control(mode="errors_object", count=1)
        status, _, data = self.token_request()
        self.assertEqual(status, 401)
        errors = json.loads(data)["errors"]
        self.assertIsInstance(errors, dict)
        self.assertEqual((errors["title"], errors["code"], errors["status"]),
                         ("invalid_client", "UNAUTHORIZED", 401))

    def test_same_token(self) -> None:
        first = json.loads(self.token_request()[2])
        self.fake.control(mode="same_token")
        again = json.loads(self.token_request()[2])
        self.assertEqual(again["access_token"], first["access_token"])
        self.assertEqual(again["created_at"], first["created_at"])
        self.assertLessEqual(again["expires_in"], first["expires_in"])
        self.assertGreaterEqual(again["expires_in"], first["expires_in"] - 2)
        # A client that never had a token gets a fresh one, and then that one again.
        sc1 = json.loads(self.token_request(SALES_CHANNEL_CLIENT_ID)[2])
        sc2 = json.loads(self.token_request(SALES_CHANNEL_CLIENT_ID)[2])
        self.assertEqual(sc1["access_token"], sc2["access_token"])
        # Back to normal with no reissue window: a request issues a new token at once.
        self.fake.control(mode="normal")
        with self.reissue_window(0):
            self.assertNotEqual(json.loads(self.token_request()[2])["access_token"],
                                first["access_token"])

    def test_slow(self) -> None:
        self.fake.control(mode="slow", delay_ms=600, count=1)
        started = time.monotonic()
        self.assertEqual(self.token_request()[0], 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.6)

    def test_control_validation(self) -> None:
        for body in ({"mode": "explode"}, {"mode": "429", "count": 0}, {"colour": "red"},
                     {"count": 3}, {"mode": "500", "status": 418}):
            status, _, data = self.fake.request("POST", "/_fake/control", body=body)
            self.assertEqual(status, 400, (body, data))

    def test_runtime_clients_and_users(self) -> None:
        self.fake.add_client("it-new", client_secret="first-secret", token_lifetime=3)
        status, doc = self.fake.token(grant_type="client_credentials", client_id="it-new",
                                      client_secret="first-secret")
        self.assertEqual((status, doc.get("expires_in")), (200, 3))
        self.fake.add_client("it-new", client_secret="second-secret")
        self.assertOAuthError(self.fake.token(grant_type="client_credentials",
                                              client_id="it-new",
                                              client_secret="first-secret"),
                              401, "invalid_client", "UNAUTHORIZED")
        self.fake.remove_client("it-new")
        self.assertOAuthError(self.fake.token(grant_type="client_credentials",
                                              client_id="it-new",
                                              client_secret="second-secret"),
                              401, "invalid_client", "UNAUTHORIZED")
        self.fake.add_user("bob@example.com", "hunter22", "cust-bob")
        status, doc = self.fake.token(grant_type="password", client_id=SALES_CHANNEL_CLIENT_ID,
                                      username="bob@example.com", password="hunter22")
        self.assertEqual((status, doc.get("owner_id")), (200, "cust-bob"))

    def test_stats_per_client_and_grant(self) -> None:
        self.token_request()
        self.token_request(SALES_CHANNEL_CLIENT_ID)
        self.fake.token(grant_type="password", client_id=SALES_CHANNEL_CLIENT_ID,
                        username=CUSTOMER_USERNAME, password="nope")
        stats = self.fake.stats()
        self.assertEqual(stats["token_requests_total"], 3)
        self.assertEqual(stats["token_requests"], {INTEGRATION_CLIENT_ID: 1,
                                                   SALES_CHANNEL_CLIENT_ID: 2})
        self.assertEqual(stats["by_grant"], {"client_credentials": 2, "password": 1})
        self.assertEqual([r["status"] for r in stats["requests"]], [200, 200, 401])
        self.assertEqual(set(stats["requests"][0]), {"t", "client_id", "grant_type",
                                                     "status", "mode"})


class HttpTests(FakeAuthCase):
    def test_keep_alive_reuses_one_connection(self) -> None:
        conn = self.connection()
        resp = self.post_token(conn, grant_type="client_credentials",
                               client_id=INTEGRATION_CLIENT_ID,
                               client_secret=INTEGRATION_CLIENT_SECRET)
        token = json.loads(resp.read())["access_token"]
        sock = conn.sock
        self.assertIsNotNone(sock)
        for _ in range(3):
            conn.request("GET", "/api/check", headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertIsNotNone(resp.getheader("Content-Length"))
            resp.read()
            # An error answer keeps the connection too.
            conn.request("GET", "/nowhere")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 404)
            resp.read()
        self.assertIs(conn.sock, sock)   # never reconnected
        conn.close()

    def test_not_found_and_method_not_allowed(self) -> None:
        status, headers, data = self.fake.request("GET", "/oauth/nothing")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(data)["errors"][0]["status"], 404)
        status, headers, data = self.fake.request("GET", "/oauth/token")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "POST")
        self.assertEqual(json.loads(data)["errors"][0]["code"], "METHOD_NOT_ALLOWED")
        status, headers, data = self.fake.request("DELETE", "/_fake/stats")
        self.assertEqual((status, headers["allow"]), (405, "GET"))
        status, headers, data = self.fake.request("HEAD", "/nowhere")
        self.assertEqual((status, data), (404, b""))

    def test_oversized_body(self) -> None:
        status, headers, data = self.fake.request("POST", "/oauth/token",
                                                  body=b"x" * (fake_auth.MAX_BODY + 1),
                                                  headers={"Content-Type":
                                                           "application/json"})
        self.assertEqual(status, 413)
        self.assertEqual(headers.get("connection"), "close")

    def test_verified_by_ip_address_too(self) -> None:
        ctx = ssl.create_default_context(cafile=self.fake.ca_file)
        conn = http.client.HTTPSConnection("127.0.0.1", self.fake.port, context=ctx,
                                           timeout=10)
        conn.request("GET", "/.well-known/jwks.json")
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()

    def test_log_never_shows_secrets_or_tokens(self) -> None:
        doc = self.customer_token()
        integ = self.integration_token()
        self.fake.check(integ["access_token"])
        self.fake.revoke(integ["access_token"], INTEGRATION_CLIENT_ID,
                         INTEGRATION_CLIENT_SECRET)
        log = poll(lambda: (lambda t: t if "POST /oauth/revoke" in t else None)(
            self.fake.log_text()), timeout=5)
        for secret in (INTEGRATION_CLIENT_SECRET, CUSTOMER_PASSWORD, doc["access_token"],
                       doc["refresh_token"], integ["access_token"],
                       integ["access_token"][-20:]):
            self.assertNotIn(secret, log)
        self.assertIn("POST /oauth/token -> 200", log)


class WrongHostTests(unittest.TestCase):
    def test_wronghost_certificate_fails_hostname_verification(self) -> None:
        with FakeAuth(os.path.join(WORKDIR, "wronghost"), cert="wronghost") as fake:
            ctx = ssl.create_default_context(cafile=fake.ca_file)
            conn = http.client.HTTPSConnection("localhost", fake.port, context=ctx, timeout=10)
            with self.assertRaises(ssl.SSLCertVerificationError) as cm:
                conn.request("GET", "/.well-known/jwks.json")
            self.assertIn("Hostname mismatch", str(cm.exception))
            conn.close()
            # Same CA: only the name is wrong.
            ctx.check_hostname = False
            conn = http.client.HTTPSConnection("localhost", fake.port, context=ctx, timeout=10)
            conn.request("GET", "/.well-known/jwks.json")
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()


class NonRotatingRefreshTests(FakeAuthCase):
    server_kwargs = {"rotate_refresh_tokens": False}

    def test_same_refresh_token_comes_back(self) -> None:
        first = self.customer_token()
        for _ in range(2):
            status, doc = self.fake.token(grant_type="refresh_token",
                                          client_id=SALES_CHANNEL_CLIENT_ID,
                                          refresh_token=first["refresh_token"])
            self.assertEqual(status, 200, doc)
            self.assertEqual(doc["refresh_token"], first["refresh_token"])
            self.assertNotEqual(doc["access_token"], first["access_token"])


class ProcessTests(unittest.TestCase):
    """The command line contract of fake_auth.py itself."""

    def setUp(self) -> None:
        self.dir = os.path.join(WORKDIR, f"process-{self._testMethodName}")
        os.makedirs(self.dir, exist_ok=True)
        make_test_ca(os.path.join(WORKDIR, "tls"))
        self.tls = os.path.join(WORKDIR, "tls")

    def spawn(self, *extra: str) -> subprocess.Popen:
        proc = subprocess.Popen([PYTHON, fake_auth.__file__, "--cert",
                                 os.path.join(self.tls, "server.pem"), "--key",
                                 os.path.join(self.tls, "server.key"), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self._reap, proc)
        return proc

    @staticmethod
    def _reap(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

    def test_listening_line_port_file_and_sigterm(self) -> None:
        port_file = os.path.join(self.dir, "port")
        proc = self.spawn("--listen", "127.0.0.1:0", "--port-file", port_file)
        line = proc.stdout.readline().strip()          # blocks until listening
        self.assertRegex(line, r"^LISTENING \d+$")
        port = int(line.split()[1])
        with open(port_file, encoding="ascii") as fh:
            self.assertEqual(int(fh.read()), port)
        # SIGTERM stops it promptly even while a request is held by "hang".
        ctx = ssl.create_default_context(cafile=os.path.join(self.tls, "ca.pem"))
        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
        conn.request("POST", "/_fake/control", body=json.dumps({"mode": "hang"}))
        conn.getresponse().read()
        holder = threading.Thread(target=self._hold, args=(port, ctx), daemon=True)
        holder.start()
        poll(lambda: self._stats(conn)["token_requests_total"] == 1, timeout=5)
        conn.close()
        proc.terminate()
        self.assertEqual(proc.wait(timeout=5), 0)
        holder.join(timeout=5)
        self.assertFalse(holder.is_alive())

    @staticmethod
    def _stats(conn: http.client.HTTPSConnection) -> dict:
        conn.request("GET", "/_fake/stats")
        return json.loads(conn.getresponse().read())

    @staticmethod
    def _hold(port: int, ctx: ssl.SSLContext) -> None:
        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
        try:
            conn.request("POST", "/oauth/token", body=json.dumps(
                {"grant_type": "client_credentials"}))
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def test_refuses_non_loopback_and_bad_config(self) -> None:
        proc = self.spawn("--listen", "0.0.0.0:0")
        self.assertEqual(proc.wait(timeout=10), 2)
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w", encoding="utf-8") as fh:
            json.dump({"clients": [{"client_id": "x", "kind": "integration"}]}, fh)
        proc = self.spawn("--config", bad)
        self.assertEqual(proc.wait(timeout=10), 2)
        self.assertIn("integration always has a secret", proc.communicate()[1])
        proc = self.spawn("--reissue-window", "-1")
        self.assertEqual(proc.wait(timeout=10), 2)
        self.assertIn("--reissue-window must be >= 0", proc.communicate()[1])

    def test_make_test_ca_is_idempotent_and_names_the_hosts(self) -> None:
        tls = os.path.join(self.dir, "tls")
        make_test_ca(tls)
        before = {f: open(os.path.join(tls, f), "rb").read() for f in os.listdir(tls)
                  if f.endswith((".pem", ".key"))}
        self.assertEqual(set(before), {"ca.pem", "ca.key", "server.pem", "server.key",
                                       "wronghost.pem", "wronghost.key"})
        make_test_ca(tls)
        after = {f: open(os.path.join(tls, f), "rb").read() for f in before}
        self.assertEqual(before, after)

        def sans(name: str) -> str:
            return subprocess.run(["openssl", "x509", "-in", os.path.join(tls, name),
                                   "-noout", "-ext", "subjectAltName"], check=True,
                                  capture_output=True, text=True).stdout

        self.assertIn("DNS:localhost", sans("server.pem"))
        self.assertIn("IP Address:127.0.0.1", sans("server.pem"))
        self.assertIn("DNS:wrong.example", sans("wronghost.pem"))
        self.assertNotIn("localhost", sans("wronghost.pem"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
