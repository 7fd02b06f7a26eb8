#!/usr/bin/python3
# ctest-timeout: 180
"""Token verification through the real binaries: every token the fake answers is checked
before the daemon serves it (each misbehaviour of the fake is caught and named in
`cl-tokenctl status`), the fake's key rotation is followed, and POST /v1/verify /
`cl-tokenctl verify` answer valid or a reason for hostile input without an upstream
request for a known kid, while a flood of them from another uid leaves other clients
served."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, metric, wait_for
from validate import validate

NOBODY = 65534
OTHER_USER_PYTHON = "/usr/bin/python3"  # any user can run it

# What `cl-tokenctl status` must say for each misbehaviour of the fake.
CAUGHT = {
    "foreign_key": "signed with a key the auth server does not publish",
    "other_application": "token issued to another application",
    "other_scope": "token scope differs from the configured scope",
    "other_issuer": "token issued by another auth server",
    "wrong_exp": "token exp contradicts the expires_in",
}


def b64(data: bytes | dict) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict]:
    h, p, _ = token.split(".")
    return (json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4))),
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))))


class TokenVerification(DaemonTestCase):
    fake_rate_limit = 0  # this test counts its own requests; the budget is tested elsewhere

    def start(self, **upstream):
        d = self.daemon(upstream={"jwks_min_interval_s": 1, **upstream}, server={"max_body_bytes": 2 * 1024 * 1024},
                        log_level="info")
        d.wait_ready()
        return d

    def test_each_misbehaviour_of_the_auth_server_is_caught_and_named(self):
        d = self.start()
        it = fake_harness.INTEGRATION_CLIENT_ID
        for mode, said in CAUGHT.items():
            with self.subTest(mode=mode):
                token = d.get("/v1/tokens/backoffice").json()["access_token"]
                self.fake.control(mode=mode, clients=[it])
                self.reject(token)  # revoked upstream: the next request brings a new token
                r = d.post("/v1/tokens/backoffice/invalidate", {"access_token": token})
                # The bad token is never served: the reported one is not handed back either.
                if r.status == 200:
                    self.assertNotEqual(r.json()["access_token"], token)
                    self.fail(f"{mode}: a token was served while the auth server misbehaved: {r}")
                self.assertEqual(r.status, 503, r)

                def named():
                    out = d.ctl("status", "--json").stdout
                    cred = next(c for c in json.loads(out)["credentials"] if c["name"] == "backoffice")
                    return said in (cred["last_error"] or "") and cred
                cred = wait_for(named, 10, f"status to name the {mode} failure")
                table = d.ctl("status").stdout
                self.assertIn("token refused", table)
                self.assertNotIn(token, table)
                self.fake.control(mode="normal")
                wait_for(lambda: d.get("/v1/tokens/backoffice").status == 200, 10, "a good token after the misbehaviour")
        metrics = d.get("/metrics").body.decode()
        self.assertGreaterEqual(metric(metrics, "cl_tokend_upstream_requests_total",
                                       'credential="backoffice",outcome="invalid_token"'), len(CAUGHT))
        self.assertNotIn(token, d.read_log())

    def test_an_unknown_kid_waits_for_the_key_set_interval_instead_of_spending_token_requests(self):
        d = self.daemon(upstream={"jwks_min_interval_s": 20}, log_level="info")
        d.wait_ready()
        it = fake_harness.INTEGRATION_CLIENT_ID
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        self.fake.control(mode="foreign_key", clients=[it])
        self.reject(token)
        self.assertEqual(d.post("/v1/tokens/backoffice/invalidate", {"access_token": token}).status, 503)
        before = self.token_requests(it)
        # The harness's backoff starts at 200 ms: without the wait, several more requests
        # would go out in these 3 s, each answered with the same unverifiable token.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            self.assertEqual(d.get("/v1/tokens/backoffice").status, 503)
            time.sleep(0.2)  # pacing the client, not waiting for the daemon
        self.assertEqual(self.token_requests(it), before)
        cred = next(c for c in json.loads(d.ctl("status", "--json").stdout)["credentials"] if c["name"] == "backoffice")
        self.assertIn("unknown kid", cred["last_error"])
        self.assertGreater(cred["next_refresh_in"], 10)

    def test_verify_endpoint_answers_from_cached_keys_and_refuses_hostile_input(self):
        d = self.start()
        good = d.get("/v1/tokens/storefront-eu").json()["access_token"]
        status, jwks = self.fake._json("GET", "/.well-known/jwks.json")
        self.assertEqual(status, 200)
        public_jwk = json.dumps(jwks["keys"][0])
        jwks_before = self.fake.stats()["jwks_requests"]
        r = d.post("/v1/verify", {"access_token": good})
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertTrue(doc["valid"], doc)
        validate(doc, "verify-result")
        self.assertEqual(doc["claims"]["application"]["client_id"], fake_harness.SALES_CHANNEL_CLIENT_ID)
        self.assertEqual(doc["claims"]["scope"], fake_harness.SALES_CHANNEL_SCOPE)
        self.assertNotIn(good.split(".")[2], r.body.decode())  # the answer never carries the token
        out = d.ctl("verify", input=good + "\n")
        self.assertEqual(out.returncode, 0, out)
        self.assertIn("valid: sales_channel " + fake_harness.SALES_CHANNEL_CLIENT_ID, out.stdout)

        header, claims = parts(good)
        signature = good.split(".")[2]
        hostile = {
            "not three parts": ("a.b", "malformed"),
            "bad base64": ("!!.$$.%%", "malformed"),
            "1 MB": ("a" * (1024 * 1024), "malformed"),
            "alg none": (f"{b64(dict(header, alg='none'))}.{b64(claims)}.", "unsupported_alg"),
            "HS512 keyed by the public key": (f"{b64(dict(header, alg='HS512'))}.{b64(claims)}.{b64(public_jwk.encode())}",
                                              "unsupported_alg"),
            "kid with path characters": (f"{b64(dict(header, kid='../../jwks'))}.{b64(claims)}.{signature}", "malformed"),
            "changed claims": (f"{good.split('.')[0]}.{b64(dict(claims, scope='market:all'))}.{signature}", "bad_signature"),
            "unknown kid": (f"{b64(dict(header, kid='no-such-key'))}.{b64(claims)}.{signature}", "unknown_kid"),
        }
        for what, (token, reason) in hostile.items():
            with self.subTest(what):
                r = d.post("/v1/verify", {"access_token": token})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json(), {"valid": False, "reason": reason, "message": r.json()["message"]})
                validate(r.json(), "verify-result")
        out = d.ctl("verify", input="a.b\n")
        self.assertEqual(out.returncode, 3, out)
        self.assertIn("not valid: malformed", out.stdout)
        # On the command line a token is readable by every local user: refused.
        out = d.ctl("verify", "a.b")
        self.assertEqual(out.returncode, 2, out)
        self.assertIn("reads the token from stdin only", out.stderr)
        self.assertEqual(d.post("/v1/verify", b"not json").status, 400)
        # Known kids cost nothing upstream; the unknown one at most one key-set request.
        self.assertLessEqual(self.fake.stats()["jwks_requests"] - jwks_before, 1)
        self.assertEqual(d.proc.poll(), None)

    def test_a_key_rotation_is_followed_and_old_tokens_still_verify(self):
        d = self.start()
        old = d.get("/v1/tokens/backoffice").json()["access_token"]
        rotated = self.fake.rotate_key()
        self.reject(old)
        d.post("/v1/tokens/backoffice/invalidate", {"access_token": old})
        # The new kid is unknown until the key set is fetched again, which waits for
        # jwks_min_interval_s after the last fetch: the first try may be refused, a retry
        # after the backoff brings it.
        r = wait_for(lambda: (lambda r: r.status == 200 and r)(d.get("/v1/tokens/backoffice")), 10,
                     "a token signed by the new key")
        new = r.json()["access_token"]
        self.assertEqual(parts(new)[0]["kid"], rotated["kid"])
        # The old token was signed by a key still published: it verifies until it expires
        # (it was revoked, which only the Core API knows).
        self.assertTrue(d.post("/v1/verify", {"access_token": new}).json()["valid"])
        self.assertTrue(d.post("/v1/verify", {"access_token": old}).json()["valid"])
        metrics = d.get("/metrics").body.decode()
        self.assertEqual(metric(metrics, "cl_tokend_jwks_requests_total", 'outcome="ok"'), 2)

    def test_a_withdrawn_key_stops_verifying_within_the_key_set_max_age(self):
        d = self.start(jwks_max_age_s=5)
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        self.assertTrue(d.post("/v1/verify", {"access_token": token}).json()["valid"])
        ok_before = metric(d.get("/metrics").body.decode(), "cl_tokend_jwks_requests_total", 'outcome="ok"')
        # The key leaked: the auth server publishes a new one and drops the old at once.
        self.fake.rotate_key(withdraw=True)
        self.assertEqual(self.fake.check(token)[0], 401)
        withdrawn_at = time.monotonic()
        answer = wait_for(lambda: (lambda doc: not doc["valid"] and doc)(
            d.post("/v1/verify", {"access_token": token}).json()), 15, "the withdrawn key to stop verifying")
        self.assertEqual(answer["reason"], "unknown_kid")
        # Within max_age (5 s) of the last fetch, plus one key-set request's time (generous:
        # under a sanitizer on a loaded machine); without the age check, never.
        self.assertLess(time.monotonic() - withdrawn_at, 5 + 5)
        # One request per max_age, however many verifications asked meanwhile.
        ok_after = metric(d.get("/metrics").body.decode(), "cl_tokend_jwks_requests_total", 'outcome="ok"')
        self.assertEqual(ok_after - ok_before, 1)

    def test_a_verify_flood_from_another_uid_does_not_stop_other_clients(self):
        d = self.start()
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        header, claims = parts(token)
        bad = f"{b64(dict(header, kid='flood'))}.{b64(claims)}.{token.split('.')[2]}"
        flood = (
            "import json, socket, sys, time\n"
            "path, bad = sys.argv[1], sys.argv[2]\n"
            "body = json.dumps({'access_token': bad}).encode()\n"
            "req = b'POST /v1/verify HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: '"
            " + str(len(body)).encode() + b'\\r\\n\\r\\n' + body\n"
            "end, n = time.monotonic() + 3, 0\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(path)\n"
            "while time.monotonic() < end:\n"
            "    s.sendall(req * 8); got = b''\n"
            "    while got.count(b'HTTP/1.1 ') < 8 or not got.endswith(b'}'):\n"
            "        chunk = s.recv(65536)\n"
            "        if not chunk: sys.exit('closed')\n"
            "        got += chunk\n"
            "    n += 8\n"
            "print(n)\n")
        attacker = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                     OTHER_USER_PYTHON, "-c", flood, d.socket, bad],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        served, slowest = 0, 0.0
        good = d.client(timeout=5)
        while attacker.poll() is None:
            t0 = time.monotonic()
            r = good.get("/v1/tokens/backoffice")
            slowest = max(slowest, time.monotonic() - t0)
            self.assertEqual(r.status, 200, r)
            served += 1
        good.close()
        out, err = attacker.communicate(timeout=10)
        self.assertEqual(attacker.returncode, 0, err)
        sys.stderr.write(f"\nflood: {out.strip()} verify requests from uid {NOBODY}; "
                         f"other client: {served} tokens, slowest {slowest * 1000:.1f} ms\n")
        self.assertGreater(int(out), 100)
        self.assertGreater(served, 10)
        self.assertLess(slowest, 1.0)
        # Unknown kids in a flood: key-set requests held to one per jwks_min_interval_s.
        self.assertLessEqual(self.fake.stats()["jwks_requests"], 1 + 4 + 1)

    def test_an_adopted_customer_token_is_verified_before_a_session_holds_it(self):
        d = self.start()
        sc = fake_harness.SALES_CHANNEL_CLIENT_ID
        login = dict(grant_type="password", client_id=sc, scope=fake_harness.SALES_CHANNEL_SCOPE,
                     username=fake_harness.CUSTOMER_USERNAME, password=fake_harness.CUSTOMER_PASSWORD)
        status, genuine = self.fake.token(**login)
        self.assertEqual(status, 200, genuine)
        self.fake.control(mode="foreign_key", count=1)
        status, forged = self.fake.token(**login)
        self.assertEqual(status, 200, forged)
        path = "/v1/customers/storefront-eu/sessions"
        r = d.post(path, {"access_token": forged["access_token"]})
        self.assertEqual(r.status, 400, r)
        self.assertIn("does not verify: unknown_kid", r.json()["error"]["message"])
        self.assertNotIn(forged["access_token"], r.body.decode())
        r = d.post(path, {"access_token": genuine["access_token"]})
        self.assertEqual(r.status, 201, r)

    def test_verify_allow_restricts_the_route_like_any_other(self):
        d = self.daemon(server={"verify_allow": ["uid:0"]}, log_level="info")
        d.wait_ready()
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        self.assertTrue(d.post("/v1/verify", {"access_token": token}).json()["valid"])
        ask = ("import http.client, json, socket, sys\n"
               "c = http.client.HTTPConnection('localhost')\n"
               "c.sock = socket.socket(socket.AF_UNIX); c.sock.connect(sys.argv[1])\n"
               "c.request('POST', '/v1/verify', json.dumps({'access_token': sys.argv[2]}))\n"
               "r = c.getresponse(); print(r.status, r.read().decode())\n")
        out = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                              OTHER_USER_PYTHON, "-c", ask, d.socket, token],
                             capture_output=True, text=True, timeout=30, cwd="/")
        self.assertTrue(out.stdout.startswith("403 "), out)
        self.assertIn('"forbidden"', out.stdout)
        self.assertNotIn(token, out.stdout)


if __name__ == "__main__":
    unittest.main()
