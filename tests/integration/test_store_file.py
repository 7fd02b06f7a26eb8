#!/usr/bin/python3
"""store.backend = "file": restarts cost no upstream request, the state file is sealed as
docs/store.md says, and a tampered, foreign or stale file is refused, logged and replaced."""
# ctest-timeout: 300

import base64
import json
import os
import stat
import unittest

from cltoken_harness import DEFAULT_CREDENTIALS, DaemonTestCase, fake_harness, wait_for
from store_harness import identity_fingerprint, store_section, unseal

IT = fake_harness.INTEGRATION_CLIENT_ID
SC = fake_harness.SALES_CHANNEL_CLIENT_ID
STORE_KEY = b"store-key-for-tests-0123456789abcdef"


class FileStoreCase(DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.state = os.path.join(self.workdir, "state", "cl-tokend.state")
        os.makedirs(os.path.dirname(self.state), mode=0o700)
        self.key_file = os.path.join(self.workdir, "store.key")
        with open(self.key_file, "wb") as f:
            f.write(STORE_KEY + b"\n")
        os.chmod(self.key_file, 0o600)
        self.store = store_section(backend="file", path=self.state, key_file=self.key_file)

    def started(self, **kw):
        d = self.daemon(extra=self.store, **kw)
        d.wait_ready()
        return d

    def tokens(self, d) -> dict:
        out = {}
        for name in ("backoffice", "storefront-eu"):
            r = d.get(f"/v1/tokens/{name}")
            self.assertEqual(r.status, 200, r)
            out[name] = r.json()["access_token"]
        return out

    def restart(self, d):
        self.assertEqual(d.stop(), 0)
        d.start()
        d.wait_ready()
        return d

    def status_requests(self, d) -> dict:
        return {c["name"]: c["upstream_requests"] for c in d.get("/v1/status").json()["credentials"]}

    def wait_saved(self) -> None:
        wait_for(lambda: os.path.exists(self.state) and len(self.read_state()["records"]) == 2, 10,
                 "both tokens in the state file")

    def read_state(self) -> dict:
        with open(self.state) as f:
            return json.load(f)

    def write_state(self, doc: dict) -> None:
        with open(self.state, "w") as f:
            json.dump(doc, f)


class Restart(FileStoreCase):
    def test_a_restart_while_tokens_are_valid_costs_no_upstream_request(self):
        d = self.started()
        before = self.tokens(d)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))
        self.wait_saved()

        self.restart(d)
        # Ready with the loaded tokens, and the scheduler's first pass started no fetch.
        self.assertEqual(self.status_requests(d), {"backoffice": 0, "storefront-eu": 0})
        self.assertEqual(self.tokens(d), before)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))
        self.assertIn("backoffice: stored token loaded", d.read_log())
        for token in before.values():
            status, body = self.fake.check(token)
            self.assertEqual(status, 200, body)

    def test_the_state_file_is_private_and_sealed_as_documented(self):
        d = self.started()
        served = self.tokens(d)
        self.wait_saved()
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o600)
        with open(self.state, "rb") as f:
            raw = f.read()
        for token in served.values():
            self.assertNotIn(token.encode(), raw)
            self.assertNotIn(token[-20:].encode(), raw)
        self.assertNotIn(IT.encode(), raw)  # the identity is a keyed hash, not the client_id
        # No temporary file left behind by the atomic replacement.
        self.assertEqual(os.listdir(os.path.dirname(self.state)), ["cl-tokend.state"])

        doc = self.read_state()
        self.assertEqual((doc["format"], doc["version"]), ("cl-tokend state", 1))
        records = {r["credential"]: r for r in doc["records"]}
        materials = {"backoffice": fake_harness.INTEGRATION_CLIENT_SECRET.encode(), "storefront-eu": STORE_KEY}
        identities = {
            "backoffice": identity_fingerprint(materials["backoffice"], "integration", IT,
                                               fake_harness.INTEGRATION_SCOPE, self.fake.url),
            "storefront-eu": identity_fingerprint(STORE_KEY, "sales_channel", SC,
                                                  fake_harness.SALES_CHANNEL_SCOPE, self.fake.url),
        }
        for name, r in records.items():
            with self.subTest(credential=name):
                self.assertEqual(r["identity"], identities[name])
                record = unseal(base64.b64decode(r["sealed"]), materials[name], name, r["identity"])
                self.assertEqual(record["access_token"], served[name])
                self.assertEqual(record["credential"], name)
                self.assertEqual(record["expires_at_ms"], r["expires_at_ms"])
                claims = json.loads(base64.urlsafe_b64decode(served[name].split(".")[1] + "=="))
                # Expiry is counted from when the request was sent: at most a few seconds early.
                self.assertLessEqual(abs(record["expires_at_ms"] / 1000 - claims["exp"]), 5)


class Refused(FileStoreCase):
    def test_a_tampered_record_is_refused_logged_and_replaced(self):
        d = self.started()
        first = self.tokens(d)
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        doc = self.read_state()
        for r in doc["records"]:
            if r["credential"] == "backoffice":
                blob = bytearray(base64.b64decode(r["sealed"]))
                blob[60] ^= 0x01
                r["sealed"] = base64.b64encode(bytes(blob)).decode()
        self.write_state(doc)

        d.start()
        d.wait_ready()
        second = self.tokens(d)
        # Fetched afresh (the request counted below); the auth server hands back the token it
        # already issued, which has far more than its reissue window left.
        self.assertEqual(second["backoffice"], first["backoffice"])
        self.assertEqual(second["storefront-eu"], first["storefront-eu"])  # the intact record loads
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (2, 1))
        log = d.read_log()
        self.assertIn("credential backoffice: stored token in", log)
        self.assertIn("refused: token record failed authentication", log)
        # The next save replaced the bad record with one that opens.
        wait_for(lambda: any(r["credential"] == "backoffice" and
                             unseal(base64.b64decode(r["sealed"]), fake_harness.INTEGRATION_CLIENT_SECRET.encode(),
                                    "backoffice", r["identity"])["access_token"] == second["backoffice"]
                             for r in self.read_state()["records"]), 10, "the new token in the state file")

    def test_a_file_that_is_not_a_state_file_is_ignored(self):
        with open(self.state, "wb") as f:
            f.write(b"\x00\x01 this is not the state file you are looking for")
        os.chmod(self.state, 0o600)
        d = self.started()
        self.tokens(d)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))
        self.assertIn(f"state file {self.state} refused, starting without stored tokens", d.read_log())
        wait_for(lambda: len(self.read_state()["records"]) == 2, 10, "a valid state file")

    def test_a_record_moved_to_another_credential_does_not_open(self):
        d = self.started()
        self.tokens(d)
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        doc = self.read_state()
        records = {r["credential"]: r for r in doc["records"]}
        # The sales channel's sealed record, relabelled as the integration's: the label
        # and identity say backoffice, the associated data inside does not.
        records["backoffice"]["sealed"] = records["storefront-eu"]["sealed"]
        self.write_state(doc)
        d.start()
        d.wait_ready()
        self.tokens(d)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (2, 1))
        self.assertIn("refused: token record failed authentication", d.read_log())

    def test_a_changed_identity_never_loads_the_old_token(self):
        d = self.started()
        first = self.tokens(d)
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        d.write_config(extra=self.store, credentials=DEFAULT_CREDENTIALS.replace(
            'scope = "{it_scope}"', 'scope = "market:code:europe"'))
        d.start()
        d.wait_ready()
        second = self.tokens(d)
        self.assertNotEqual(second["backoffice"], first["backoffice"])
        self.assertEqual(second["storefront-eu"], first["storefront-eu"])
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (2, 1))
        self.assertIn("credential backoffice: the stored token was obtained for another identity", d.read_log())

    def test_a_revoked_token_does_not_come_back_after_a_restart(self):
        d = self.started()
        first = self.tokens(d)
        r = d.post("/v1/tokens/backoffice/revoke")
        self.assertEqual(r.status, 200, r)
        wait_for(lambda: [x["credential"] for x in self.read_state()["records"]] == ["storefront-eu"], 10,
                 "the revoked token gone from the state file")
        self.restart(d)
        second = self.tokens(d)
        self.assertNotEqual(second["backoffice"], first["backoffice"])
        self.assertEqual(self.fake.check(first["backoffice"])[0], 401)
        self.assertEqual(self.fake.check(second["backoffice"])[0], 200)


if __name__ == "__main__":
    unittest.main()
