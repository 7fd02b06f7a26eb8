#!/usr/bin/env python3
# ctest-timeout: 240
"""Customer sessions (docs/customer-sessions.md) against the fake auth server:
password, refresh-token and adopted logins; refresh before expiry while in use; logout
revokes upstream; a session is its creator's alone; idle sessions cost no upstream
request; evictions over max_sessions are counted."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, wait_for
from validate import validate

NOBODY = 65534
SC = fake_harness.SALES_CHANNEL_CREDENTIAL
SC_ID = fake_harness.SALES_CHANNEL_CLIENT_ID
USER = fake_harness.CUSTOMER_USERNAME
PASSWORD = fake_harness.CUSTOMER_PASSWORD
SESSIONS = f"/v1/customers/{SC}/sessions"
HANDLE = re.compile(r"^cs_[A-Za-z0-9_-]{43}$")


class CustomerSessionCase(DaemonTestCase):
    # A customer token lives 6 s here, so a refresh period fits in a test.
    fake_clients = fake_harness.default_clients(sales_channel_lifetime=6)
    fake_rate_limit = 0

    def grants(self, grant: str) -> int:
        return self.fake.stats()["by_grant"].get(grant, 0)

    def login(self, d, username=USER, password=PASSWORD):
        c = d.client()
        try:
            return c.request("POST", SESSIONS, {"username": username, "password": password})
        finally:
            c.close()

    def request(self, d, method, path, body=None):
        c = d.client()
        try:
            return c.request(method, path, body)
        finally:
            c.close()

    def fake_login(self) -> dict:
        status, doc = self.fake.token(grant_type="password", client_id=SC_ID, username=USER, password=PASSWORD)
        self.assertEqual(status, 200, doc)
        return doc

    def read_once_refresh_helps(self, client, path: str, first_token: str):
        """Reads with a min_ttl a new token can meet (4 s of a 6 s token) until the answer is
        not the first token: a read refreshes only once that helps (about 2 s in)."""
        def read():
            r = client.request("GET", f"{path}?min_ttl=4")
            return r if r.status != 200 or r.json()["access_token"] != first_token else None
        return wait_for(read, 15, "a read that refreshes", interval=0.1)

    def status_customers(self, d) -> dict:
        return d.get("/v1/status").json()["customers"]


class Logins(CustomerSessionCase):
    def test_password_login_read_and_logout(self):
        d = self.daemon(upstream={"max_requests_per_minute": 100})
        r = self.login(d)
        self.assertEqual(r.status, 201, r)
        doc = r.json()
        self.assertRegex(doc["session"], HANDLE)
        self.assertEqual(doc["owner_id"], fake_harness.CUSTOMER_ID)
        self.assertEqual(doc["credential"], SC)
        self.assertEqual(doc["kind"], "sales_channel")
        self.assertNotIn("refresh_token", doc)
        validate(doc, "session-created")
        self.assertEqual(self.fake.check(doc["access_token"])[0], 200)
        path = f"{SESSIONS}/{doc['session']}"
        got = d.get(path)
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json()["access_token"], doc["access_token"])
        self.assertNotIn("refresh_token", got.json())
        validate(got.json(), "token")
        validate(d.get("/v1/status").json(), "status")
        self.assertEqual(self.status_customers(d)["sessions"], 1)
        # The handle never reaches the log, nor the token.
        log = d.read_log()
        self.assertNotIn(doc["session"], log)
        self.assertNotIn(doc["access_token"], log)
        self.assertNotIn(PASSWORD, log)

        ended = self.request(d, "DELETE", path)
        self.assertEqual(ended.status, 200, ended)
        self.assertEqual(ended.json(), {"ended": True})
        validate(ended.json(), "session-ended")
        status, body = self.fake.check(doc["access_token"])
        self.assertEqual(status, 401, body)
        self.assertEqual(body["errors"][0]["code"], "INVALID_TOKEN")
        self.assertEqual(d.get(path).status, 404)
        self.assertEqual(self.status_customers(d)["sessions"], 0)

    def test_wrong_password_is_401_at_once_without_retry(self):
        d = self.daemon(upstream={"max_requests_per_minute": 100})
        before = self.grants("password")
        r = self.login(d, password="wrong horse")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"]["code"], "invalid_credentials")
        validate(r.json(), "error")
        self.assertEqual(self.grants("password"), before + 1)
        # Still one after the daemon had every chance to retry: a later login is answered
        # after anything it might have queued.
        self.assertEqual(self.login(d).status, 201)
        self.assertEqual(self.grants("password"), before + 2)
        self.assertNotIn("wrong horse", d.read_log())

    def test_per_peer_login_limit(self):
        d = self.daemon(upstream={"max_requests_per_minute": 100})
        codes = [self.login(d, password="wrong").status for _ in range(12)]
        self.assertEqual(codes[:10], [401] * 10)
        self.assertEqual(codes[10:], [429, 429])
        r = self.login(d)
        self.assertEqual(r.status, 429)
        self.assertIn("retry-after", r.headers)

    def test_refresh_token_grant_and_adopt(self):
        d = self.daemon(upstream={"max_requests_per_minute": 100})
        outside = self.fake_login()
        r = self.request(d, "POST", SESSIONS, {"refresh_token": outside["refresh_token"]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["owner_id"], fake_harness.CUSTOMER_ID)
        self.assertNotEqual(r.json()["access_token"], outside["access_token"])
        # A used (rotated) refresh token is refused: 401, no session.
        again = self.request(d, "POST", SESSIONS, {"refresh_token": outside["refresh_token"]})
        self.assertEqual(again.status, 401, again)

        other = self.fake_login()
        before = self.fake.stats()["token_requests_total"]
        adopted = self.request(d, "POST", SESSIONS,
                               {"access_token": other["access_token"], "refresh_token": other["refresh_token"]})
        self.assertEqual(adopted.status, 201, adopted)
        self.assertEqual(adopted.json()["access_token"], other["access_token"])
        self.assertEqual(adopted.json()["owner_id"], fake_harness.CUSTOMER_ID)
        self.assertEqual(self.fake.stats()["token_requests_total"], before, "adopting costs no upstream request")
        # min_ttl longer than the token lives: no new token could meet it, so none is asked for.
        before = self.grants("refresh_token")
        got = d.get(f"{SESSIONS}/{adopted.json()['session']}?min_ttl=3600")
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json()["access_token"], other["access_token"])
        self.assertEqual(self.grants("refresh_token"), before)
        c = d.client()
        try:
            got = self.read_once_refresh_helps(c, f"{SESSIONS}/{adopted.json()['session']}", other["access_token"])
        finally:
            c.close()
        self.assertEqual(got.status, 200, got)  # refreshed on demand (the token lives 6 s)
        self.assertNotEqual(got.json()["access_token"], other["access_token"])
        bad = self.request(d, "POST", SESSIONS, {"access_token": "not-a-jwt"})
        self.assertEqual(bad.status, 400)
        # Another application's customer token: this credential could never refresh it.
        self.fake.add_client("sc-other", "sales_channel", scope=fake_harness.SALES_CHANNEL_SCOPE)
        status, foreign = self.fake.token(grant_type="password", client_id="sc-other", username=USER, password=PASSWORD)
        self.assertEqual(status, 200, foreign)
        bad = self.request(d, "POST", SESSIONS, {"access_token": foreign["access_token"]})
        self.assertEqual(bad.status, 400, bad)
        self.assertEqual(self.request(d, "POST", SESSIONS, {"username": USER}).status, 400)

    def test_assertion_grant_needs_a_credential_with_a_secret(self):
        self.fake.add_client("sc-confidential", "sales_channel", client_secret="sc-confidential-secret",
                             scope=fake_harness.SALES_CHANNEL_SCOPE)
        secret_file = os.path.join(self.workdir, "confidential.secret")
        with open(secret_file, "w") as f:
            f.write("sc-confidential-secret\n")
        os.chmod(secret_file, 0o600)
        credentials = '''
[credentials.storefront-eu]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["*"]

[credentials.confidential]
kind = "sales_channel"
client_id = "sc-confidential"
client_secret_file = "%s"
allow = ["*"]
''' % secret_file
        d = self.daemon(credentials=credentials, upstream={"max_requests_per_minute": 100})
        # What js-auth's createAssertion() makes, as the fake reads it (signature unchecked).
        payload = {"https://commercelayer.io/claims": {"owner": {"type": "Customer", "id": fake_harness.CUSTOMER_ID}}}
        assertion = json.dumps(payload)
        r = self.request(d, "POST", "/v1/customers/confidential/sessions", {"assertion": assertion})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["owner_id"], fake_harness.CUSTOMER_ID)
        # A public sales channel has no secret to sign the grant with.
        r = self.request(d, "POST", SESSIONS, {"assertion": assertion})
        self.assertEqual(r.status, 400, r)
        payload["https://commercelayer.io/claims"]["owner"]["id"] = "cust-nobody"
        r = self.request(d, "POST", "/v1/customers/confidential/sessions", {"assertion": json.dumps(payload)})
        self.assertEqual(r.status, 401, r)

    def test_integration_credential_has_no_sessions_and_405_says_allow(self):
        d = self.daemon()
        r = self.request(d, "POST", "/v1/customers/backoffice/sessions", {"username": USER, "password": PASSWORD})
        self.assertEqual(r.status, 404)
        r = self.request(d, "PUT", f"{SESSIONS}/abc")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["allow"], "GET, DELETE")
        r = self.request(d, "GET", SESSIONS)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["allow"], "POST")
        self.assertEqual(d.get(f"{SESSIONS}/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").status, 404)


class Refresh(CustomerSessionCase):
    def test_refreshed_before_expiry_while_in_use(self):
        d = self.daemon(upstream={"max_requests_per_minute": 100})
        doc = self.login(d).json()
        path = f"{SESSIONS}/{doc['session']}"
        seen = {doc["access_token"]}
        refreshes = self.grants("refresh_token")

        def poll():
            r = d.get(path)
            self.assertEqual(r.status, 200, r)
            token = r.json()
            self.assertGreater(token["expires_in"], 0)
            if token["access_token"] not in seen:
                self.assertEqual(self.fake.check(token["access_token"])[0], 200)
                seen.add(token["access_token"])
            return len(seen) >= 3

        # Two refreshes of a 6 s token, each answered with a valid token.
        wait_for(poll, 30, "two refreshes of the customer token", interval=0.2)
        self.assertGreaterEqual(self.grants("refresh_token") - refreshes, 2)

    def test_refused_refresh_ends_the_session_410(self):
        d = self.daemon(upstream={"max_requests_per_minute": 100})
        outside = self.fake_login()
        doc = self.request(d, "POST", SESSIONS, {"access_token": outside["access_token"],
                                                  "refresh_token": outside["refresh_token"]}).json()
        # The refresh token is used elsewhere (rotated away): the session cannot go on.
        status, _ = self.fake.token(grant_type="refresh_token", client_id=SC_ID,
                                    refresh_token=outside["refresh_token"])
        self.assertEqual(status, 200)
        c = d.client()
        try:
            r = self.read_once_refresh_helps(c, f"{SESSIONS}/{doc['session']}", outside["access_token"])
        finally:
            c.close()
        self.assertEqual(r.status, 410, r)
        self.assertEqual(r.json()["error"]["code"], "session_expired")
        self.assertEqual(d.get(f"{SESSIONS}/{doc['session']}").status, 404)

    def test_idle_sessions_cost_no_upstream_request(self):
        # Adopting counts against the per-uid login limit: raised for 1,000 adopts.
        d = self.daemon(upstream={"max_requests_per_minute": 100}, extra="[customers]\nlogin_burst = 2000\n")
        c = d.client()
        try:
            outside, at = self.fake_login(), time.monotonic()
            for _ in range(1000):
                # The token lives 6 s: a slow (sanitized, loaded) run must not adopt it expired.
                if time.monotonic() - at > 2.5:
                    outside, at = self.fake_login(), time.monotonic()
                r = c.request("POST", SESSIONS, {"access_token": outside["access_token"],
                                                 "refresh_token": outside["refresh_token"]})
                self.assertEqual(r.status, 201, r)
        finally:
            c.close()
        self.assertEqual(self.status_customers(d)["sessions"], 1000)
        before = self.grants("refresh_token")
        # The guest token of the same credential (6 s, refreshed at 75 %) marks the time:
        # two of its refreshes span more than a customer token's refresh period.
        guest = self.fake.stats()["token_requests"].get(SC_ID, 0)
        wait_for(lambda: self.fake.stats()["token_requests"].get(SC_ID, 0) >= guest + 2 + 0, 30,
                 "two refreshes of the guest token", interval=0.2)
        self.assertEqual(self.grants("refresh_token"), before, "idle sessions were refreshed")
        self.assertEqual(self.status_customers(d)["sessions"], 1000)


    def test_logout_during_a_refresh_revokes_what_the_refresh_brought(self):
        d = self.daemon(upstream={"max_requests_per_minute": 100})
        doc = self.login(d).json()
        path = f"{SESSIONS}/{doc['session']}"
        # The refresh a read is about to start is held 2 s at the auth server.
        self.fake.control(mode="slow", delay_ms=2000, count=1)
        read = {}

        def reader():
            c = d.client()
            try:
                read["r"] = self.read_once_refresh_helps(c, path, doc["access_token"])
            finally:
                c.close()

        t = threading.Thread(target=reader)
        t.start()
        try:
            wait_for(lambda: self.fake.stats()["slow_waiting"] == 1, 10, "the refresh held at the auth server")
            ended = self.request(d, "DELETE", path)
        finally:
            t.join(15)
        self.assertEqual(ended.status, 200, ended)
        r = read["r"]
        self.assertEqual(r.status, 200, r)
        fresh = r.json()["access_token"]
        self.assertNotEqual(fresh, doc["access_token"])
        # The logout waited for the refresh and revoked what it brought: the session's
        # current token is dead upstream. (The one the refresh replaced stays valid until it
        # expires, as after any refresh: clients may still be using it.)
        self.assertEqual(self.fake.check(fresh)[0], 401)
        self.assertEqual(d.get(path).status, 404)


class Ownership(CustomerSessionCase):
    def test_another_uid_cannot_read_or_end_a_session(self):
        d = self.daemon(upstream={"max_requests_per_minute": 100})
        doc = self.login(d).json()
        handle = doc["session"]
        read = d.ctl("customer", "token", SC, handle, user=NOBODY)
        self.assertEqual(read.returncode, 3, read)
        self.assertEqual(read.stdout, "")
        end = d.ctl("customer", "logout", SC, handle, user=NOBODY)
        self.assertEqual(end.returncode, 3, end)
        # A made-up handle gets the very same answer.
        made_up = d.ctl("customer", "token", SC, "cs_" + "A" * 43, user=NOBODY)
        self.assertEqual(made_up.returncode, 3)
        self.assertEqual(made_up.stderr.replace("cs_" + "A" * 43, handle), read.stderr)
        # The owner still has it, and the token was never revoked.
        mine = d.ctl("customer", "token", SC, handle)
        self.assertEqual(mine.returncode, 0, mine)
        self.assertEqual(mine.stdout.strip(), doc["access_token"])
        self.assertEqual(self.fake.check(doc["access_token"])[0], 200)
        # cl-tokenctl as the owner: login (password on stdin), token, logout.
        login = d.ctl("customer", "login", SC, "--username", USER, input=PASSWORD + "\n")
        self.assertEqual(login.returncode, 0, login)
        other = login.stdout.strip()
        self.assertRegex(other, HANDLE)
        self.assertEqual(d.ctl("customer", "logout", SC, other, user=NOBODY).returncode, 3)
        self.assertEqual(d.ctl("customer", "logout", SC, other).returncode, 0)
        self.assertEqual(d.ctl("customer", "token", SC, other).returncode, 3)


class Limits(CustomerSessionCase):
    def test_eviction_over_max_sessions_is_counted(self):
        d = self.daemon(upstream={"max_requests_per_minute": 100}, extra="[customers]\nmax_sessions = 3\n")
        outside = self.fake_login()
        handles = []
        for _ in range(5):
            r = self.request(d, "POST", SESSIONS, {"access_token": outside["access_token"]})
            self.assertEqual(r.status, 201, r)
            handles.append(r.json()["session"])
        customers = self.status_customers(d)
        self.assertEqual(customers["sessions"], 3)
        self.assertEqual(customers["evicted_lru"], 2)
        self.assertEqual(d.get(f"{SESSIONS}/{handles[0]}").status, 404)
        self.assertEqual(d.get(f"{SESSIONS}/{handles[4]}").status, 200)
        metrics = d.get("/metrics").body.decode()
        self.assertIn('cl_tokend_customer_session_evictions_total{reason="lru"} 2', metrics)
        self.assertIn("cl_tokend_customer_sessions 3", metrics)
        for h in handles:
            self.assertNotIn(h, metrics)

    def test_a_session_flood_from_one_uid_evicts_only_its_own(self):
        # As another uid: adopts JWT-shaped tokens with no valid signature, as fast as it
        # can, then one the size of a 46 KB token.
        flood = r"""
import base64, json, socket, sys, time
path, sessions, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
def post(token):
    body = json.dumps({"access_token": token}).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"POST " + sessions.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data[9:12].decode()
codes = {}
for i in range(count):
    claims = {"exp": int(time.time()) + 3600, "owner": {"id": f"forged-{i}", "type": "Customer"}}
    code = post(b64({"alg": "none"}) + "." + b64(claims) + ".forged")
    codes[code] = codes.get(code, 0) + 1
big = b64({"exp": int(time.time()) + 3600, "owner": {"id": "x" * 34000, "type": "Customer"}})
print(json.dumps({"codes": codes, "big": post(b64({"alg": "none"}) + "." + big + ".forged")}))
"""
        # Verification off: with it (the default) a forged token is refused outright
        # (test_token_verification.py); the session bounds must hold without it too.
        d = self.daemon(upstream={"max_requests_per_minute": 100, "verify": "off"},
                        extra="[customers]\nmax_sessions = 50\nlogin_burst = 200\nlogin_interval_ms = 3600000\n",
                        server={"max_body_bytes": 65536})
        mine = self.login(d)
        self.assertEqual(mine.status, 201, mine)
        path = f"{SESSIONS}/{mine.json()['session']}"
        p = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/usr/bin/python3",
                            "-c", flood, d.socket, SESSIONS, "300"], capture_output=True, text=True, cwd="/", timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        seen = json.loads(p.stdout)
        sys.stderr.write(f"\nflood as uid {NOBODY}: {seen}\n")
        # 200 adopted (the burst; no refill within the hour), then the login limit.
        self.assertEqual(seen["codes"], {"201": 200, "429": 100}, seen)
        self.assertEqual(seen["big"], "400")  # over the token size cap, refused before the limit
        customers = self.status_customers(d)
        self.assertEqual(customers["sessions"], 50)
        self.assertEqual(customers["evicted_lru"], 151)
        # The other uid's session, the least recently used of all, was never evicted.
        self.assertEqual(d.get(path).status, 200)


if __name__ == "__main__":
    unittest.main()
